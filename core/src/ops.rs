//! The operations endpoint every daemon serves.
//!
//! * `/metrics`: Prometheus text format, from the `metrics` facade;
//! * `/health`: liveness, 200 while the process serves requests;
//! * `/ready`: 200 only while the hard dependencies answer (the stage sets
//!   that through [`Readiness`]), 503 with the reason otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Whether the stage's hard dependencies are reachable, and if not, why.
///
/// Each dependency reports for itself (`"kafka"` from [`crate::health`], the
/// stage's own loop for the rest), so one coming back does not hide another
/// still down. Ready when none reports a problem.
#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<BTreeMap<&'static str, String>>>);

/// The dependency [`Readiness::set_ready`] and [`Readiness::set_not_ready`] speak for.
const STAGE: &str = "stage";

impl Readiness {
    /// Starts not ready, with the reason given.
    pub fn new(reason: &str) -> Self {
        let r = Readiness::default();
        r.set_not_ready(reason);
        r
    }
    pub fn set_ready(&self) {
        self.set(STAGE, Ok(()));
    }
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.set(STAGE, Err(reason.into()));
    }
    /// Records whether `dependency` is reachable.
    pub fn set(&self, dependency: &'static str, state: Result<(), String>) {
        let mut m = self.0.lock().expect("poisoned");
        match state {
            Ok(()) => m.remove(dependency),
            Err(why) => m.insert(dependency, why),
        };
    }
    /// `None` when ready, else every reason.
    pub fn reason(&self) -> Option<String> {
        let m = self.0.lock().expect("poisoned");
        (!m.is_empty()).then(|| m.values().cloned().collect::<Vec<_>>().join("; "))
    }
}

static IDLE_GAUGES: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Makes gauges that were not set for `after` disappear from `/metrics`.
/// This is how per-object series (the shipper's one per file) go away with
/// their object; a stage that calls it (before [`serve`]) sets every gauge
/// it wants to keep at least that often. Counters are never expired.
pub fn expire_idle_gauges(after: std::time::Duration) {
    let _ = IDLE_GAUGES.set(after);
}

/// Installs the Prometheus recorder and serves the endpoint on `listen`
/// (default `127.0.0.1:<default_port>`). Returns the bound address.
pub async fn serve(listen: Option<&str>, default_port: u16, ready: Readiness) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .idle_timeout(metrics_util::MetricKindMask::GAUGE, IDLE_GAUGES.get().copied())
        .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let addr: SocketAddr = match listen {
        Some(l) => l
            .parse()
            .with_context(|| format!("ops.listen `{l}` is not a socket address"))?,
        None => SocketAddr::from(([127, 0, 0, 1], default_port)),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the ops endpoint on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "ops endpoint: /metrics /health /ready");
    tokio::spawn(accept_loop(listener, handle, ready));
    Ok(bound)
}

async fn accept_loop(listener: tokio::net::TcpListener, handle: PrometheusHandle, ready: Readiness) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (handle, ready) = (handle.clone(), ready.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let resp = respond(req.uri().path(), &handle, &ready);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn respond(path: &str, handle: &PrometheusHandle, ready: &Readiness) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, handle.render()),
        "/health" => (StatusCode::OK, "ok\n".to_string()),
        "/ready" => match ready.reason() {
            None => (StatusCode::OK, "ready\n".to_string()),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => (StatusCode::NOT_FOUND, "try /metrics, /health or /ready\n".to_string()),
    };
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_dependency_is() {
        let r = Readiness::new("starting");
        assert_eq!(r.reason().as_deref(), Some("starting"));
        r.set("kafka", Err("brokers down".into()));
        r.set_ready();
        assert_eq!(r.reason().as_deref(), Some("brokers down"));
        r.set_not_ready("Elasticsearch: HTTP 503");
        r.set("kafka", Ok(()));
        assert_eq!(r.reason().as_deref(), Some("Elasticsearch: HTTP 503"));
        r.set_ready();
        assert_eq!(r.reason(), None);
    }
}
