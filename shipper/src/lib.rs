//! The shipper: every line written to a watched file reaches the Kafka raw
//! topic, and its checkpoint moves only past lines Kafka acknowledged.
//!
//! Data flows one way: `discover` finds files, `tail` reads lines from them,
//! `produce` hands lines to Kafka; acknowledgements come back from `produce`
//! to each file's [`AckTracker`](logpipe_core::ack::AckTracker), and
//! `checkpoint` persists what they allow.

pub mod archive;
pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod multiline;
pub mod produce;
pub mod rotate;
pub mod service;
pub mod spot;
pub mod supervise;
pub mod syslog;
pub mod tail;

/// Gauges the shipper has not set for this long vanish from `/metrics`
/// (`logpipe_core::ops::expire_idle_gauges`): that is how a file's series go
/// away once the file is let go. Every gauge the shipper keeps is set at
/// least every `checkpoint_interval_ms` or every second.
pub const IDLE_GAUGES: std::time::Duration = std::time::Duration::from_secs(30);

/// The shipper as `logpipe ship` runs it: the tailer, plus rotation, archive
/// and spot drain when configured (see `supervise`), plus the syslog
/// listeners on their own thread when configured (see `syslog`).
pub fn run(
    cfg: &logpipe_config::ShipperConfig,
    kafka: &logpipe_config::KafkaConfig,
    host: &str,
    signal: logpipe_core::shutdown::CancellationToken,
) -> anyhow::Result<()> {
    let syslog_cfg = cfg.syslog.as_ref().filter(|y| syslog::enabled(y));
    let Some(syslog_cfg) = syslog_cfg else {
        return supervise::run(cfg, kafka, host, signal);
    };
    // A child token: the intake also stops when the tailer fails on its own.
    let stop = signal.child_token();
    let drain = std::time::Duration::from_secs(cfg.drain_timeout_secs);
    let intake = syslog::spawn(syslog_cfg, kafka, host, drain, stop.clone())?;
    let files = supervise::run(cfg, kafka, host, signal);
    stop.cancel();
    let syslog = intake.join();
    files.and(syslog)
}
