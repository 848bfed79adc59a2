//! Optional OpenTelemetry traces. With `[tracing] otlp_endpoint` set, every
//! request's span — route template, method, request id, client address — and
//! the spans under it go to that OTLP/HTTP endpoint (JSON), batched by the
//! SDK. Off by default: nothing is exported and nothing is paid.

use std::future::Future;
use std::pin::Pin;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::config::TracingConfig;

/// The exporter's handle: flushed and stopped when the server stops.
pub struct Traces(SdkTracerProvider);

impl Traces {
    /// Sends what is batched and stops the exporter (bounded: a collector
    /// that does not answer cannot hold the shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.0.shutdown_with_timeout(std::time::Duration::from_secs(5)) {
            tracing::warn!(error = %e, "traces not flushed at shutdown");
        }
    }
}

/// The tracing layer exporting spans, and its handle; None when traces are off.
pub fn layer<S>(
    c: &TracingConfig,
) -> anyhow::Result<Option<(tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>, Traces)>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if c.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("tracing.otlp_endpoint: traces need the server's runtime"))?;
    // The collector's answers are read as every outbound answer is: bounded.
    let http = crate::outbound::Outbound::new(std::time::Duration::from_secs(10))?;
    let client = Client { http, runtime };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(c.otlp_endpoint.clone())
        .with_timeout(std::time::Duration::from_secs(10))
        .with_http_client(client)
        .build()
        .map_err(|e| anyhow::anyhow!("tracing.otlp_endpoint: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(c.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("sesame");
    Ok(Some((tracing_opentelemetry::layer().with_tracer(tracer), Traces(provider))))
}

/// The exporter's HTTP client: Sesame's bounded outbound client, run on the
/// server's runtime (the SDK's batch thread has none of its own).
#[derive(Debug)]
struct Client {
    http: crate::outbound::Outbound,
    runtime: tokio::runtime::Handle,
}

impl HttpClient for Client {
    fn send_bytes<'a, 'f>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        let http = self.http.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut req = http.request(parts.method, &parts.uri.to_string()).body(body);
            for (name, value) in &parts.headers {
                req = req.header(name, value);
            }
            let answer = http.send(req).await?;
            let mut out = Response::new(Bytes::from(answer.body));
            *out.status_mut() = answer.status;
            Ok::<_, crate::outbound::OutboundError>(out)
        });
        Box::pin(async move {
            match task.await {
                Ok(r) => r.map_err(|e| Box::new(e) as HttpError),
                Err(e) => Err(Box::new(e) as HttpError),
            }
        })
    }
}
