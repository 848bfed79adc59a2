//! A browser stand-in: a cookie-keeping client that does not follow redirects,
//! and helpers to walk the login box and read authorization responses.

use reqwest::StatusCode;

pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Browser { http, base: base.to_string(), jar }
    }

    /// The value of the cookie `name` this browser would send to Sesame.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        let prefix = format!("{name}=");
        header.to_str().unwrap().split("; ").find_map(|c| c.strip_prefix(prefix.as_str()).map(str::to_string))
    }

    fn abs(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.abs(url)).send().await.unwrap()
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.abs(url)).form(form).send().await.unwrap()
    }

    /// Follows redirects within Sesame; returns the first response that is not a
    /// redirect to Sesame (a redirect to the client, or a page).
    pub async fn follow(&self, mut resp: reqwest::Response) -> reqwest::Response {
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                return resp;
            }
            let loc = location(&resp);
            if loc.starts_with('/') || loc.starts_with(&self.base) {
                resp = self.get(&loc).await;
            } else {
                return resp;
            }
        }
        panic!("redirect loop");
    }

    /// Opens an authorization URL and signs in on the login box.
    /// Returns the redirect back to the client.
    pub async fn authorize_with_login(&self, auth_url: &str, email: &str, password: &str) -> url::Url {
        let page = self.follow(self.get(auth_url).await).await;
        assert_eq!(page.status(), StatusCode::OK, "login page expected");
        let login_url = page.url().to_string();
        assert!(login_url.contains("/login?req="), "{login_url}");
        let html = page.text().await.unwrap();
        let resp = self.submit_login(&html, email, password).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login accepted");
        let resp = self.follow(resp).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "redirect to client");
        url::Url::parse(&location(&resp)).unwrap()
    }

    pub async fn submit_login(&self, html: &str, email: &str, password: &str) -> reqwest::Response {
        let csrf = hidden(html, "csrf");
        let req = hidden(html, "req");
        self.post_form("/login", &[("csrf", &csrf), ("req", &req), ("email", email), ("password", password)]).await
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The value of `<input type="hidden" name="NAME" value="…">` (HTML-unescaped enough for tokens).
pub fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// Query (or fragment) parameters of a redirect back to the client.
pub fn params(url: &url::Url) -> std::collections::HashMap<String, String> {
    let q = url.query().or(url.fragment()).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}
