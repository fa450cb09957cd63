//! What every logpipe stage shares.
//!
//! * [`ack`]: the ordered acknowledgement tracker, the one idea that makes the
//!   pipeline lossless (see `DESIGN.md`);
//! * [`ops`]: the `/metrics`, `/health` and `/ready` endpoint of each daemon,
//!   and [`health`]: the Kafka reachability behind every stage's `/ready`;
//! * [`shutdown`]: SIGTERM/SIGINT as a cancellation token, for graceful drains;
//! * [`kafka`]: librdkafka client settings built from the typed config.

pub mod ack;
pub mod delivery;
pub mod health;
pub mod kafka;
pub mod lag;
pub mod ops;
pub mod shutdown;

/// Installs the `tracing` subscriber: JSON lines when `LOGPIPE_LOG_FORMAT=json`
/// (for log collectors), human text otherwise; filtered by `RUST_LOG`
/// (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOGPIPE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
