//! Watching the hard dependency every stage has: the Kafka brokers.
//!
//! A stage's own Kafka clients retry forever and hide an outage (that is what
//! keeps it lossless), so `/ready` cannot learn of one from them. A small
//! separate client asks the brokers for metadata every few seconds instead.

use std::time::Duration;

use logpipe_config::KafkaConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::ops::Readiness;
use crate::shutdown::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps `ready`'s `"kafka"` entry up to date until `shutdown`, on a thread of its own.
pub fn watch_kafka(k: &KafkaConfig, ready: Readiness, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut cfg = crate::kafka::client_config(k);
    // Only metadata requests: keep the client quiet while the brokers are down.
    cfg.set("reconnect.backoff.max.ms", "5000").set("log_level", "3");
    let client: BaseProducer = cfg.create()?;
    let brokers = k.brokers.clone();
    std::thread::Builder::new().name("kafka-health".into()).spawn(move || {
        while !shutdown.is_cancelled() {
            let state = client
                .client()
                .fetch_metadata(None, TIMEOUT)
                .map(|_| ())
                .map_err(|e| format!("Kafka at kafka.brokers `{brokers}` does not answer: {e}"));
            metrics::gauge!("logpipe_dependency_up", "dependency" => "kafka").set(state.is_ok() as u8 as f64);
            ready.set("kafka", state);
            std::thread::sleep(EVERY);
        }
    })?;
    Ok(())
}
