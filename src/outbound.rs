//! Every call Sesame makes to another server — a provider's discovery, keys,
//! token, profile and address endpoints, and back-channel logouts — goes
//! through one client: no redirects followed, a timeout on the whole call,
//! and a bounded read of the answer (`MAX_BYTES`), so a hostile or broken
//! server can make Sesame wait at most the timeout and hold at most that
//! much memory per call.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

/// The most an answer may hold; every document Sesame reads is far smaller.
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct Outbound {
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The server could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the answer is larger than {MAX_BYTES} bytes")]
    TooLarge,
}

impl OutboundError {
    fn from_reqwest(e: reqwest::Error) -> OutboundError {
        if e.is_timeout() || e.is_connect() || e.is_request() {
            OutboundError::Unreachable(e.to_string())
        } else {
            OutboundError::Invalid(e.to_string())
        }
    }
}

/// An answer read in full (within `MAX_BYTES`).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Outbound {
    pub fn new(timeout: Duration) -> anyhow::Result<Outbound> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("sesame/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound { http })
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.post(url)
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `req` and reads the answer, refusing one past `MAX_BYTES`
    /// (by its Content-Length, or as it streams in).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, OutboundError> {
        let mut resp = req.send().await.map_err(OutboundError::from_reqwest)?;
        if resp.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
            return Err(OutboundError::TooLarge);
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(OutboundError::from_reqwest)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(OutboundError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body })
    }

    /// The HTTP client of `oauth2` / `openidconnect` requests (code
    /// exchanges): the same bounded read (`request_async(&outbound)`).
    pub async fn oauth(&self, req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, OutboundError> {
        let (parts, body) = req.into_parts();
        let mut r = self.http.request(parts.method, parts.uri.to_string()).body(body);
        for (k, v) in &parts.headers {
            r = r.header(k, v);
        }
        let a = self.send(r).await?;
        let mut out = oauth2::HttpResponse::new(a.body);
        *out.status_mut() = a.status;
        *out.headers_mut() = a.headers;
        Ok(out)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.oauth(request))
    }
}
