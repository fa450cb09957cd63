//! Readiness from the two hard dependencies only: Kafka reachable and
//! Elasticsearch writable. Anything else (a dead-lettered document, a slow
//! request) is not a reason to take the indexer out of rotation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use logpipe_core::ops::Readiness;

/// `Readiness` keeps one reason per dependency; these are the indexer's own
/// (the daemon's metadata watcher reports under `"kafka"` besides).
const KAFKA: &str = "kafka-consumer";
const ELASTICSEARCH: &str = "elasticsearch";

#[derive(Clone)]
pub struct Health {
    ready: Readiness,
    /// Last state reported, so the per-record `kafka_ok` takes no lock.
    kafka_ok: Arc<AtomicBool>,
    es_ok: Arc<AtomicBool>,
}

impl Health {
    pub fn new(ready: Readiness) -> Health {
        ready.set(KAFKA, Err("starting".into()));
        ready.set(ELASTICSEARCH, Err("starting".into()));
        // From here on the two dependencies speak for the stage.
        ready.set_ready();
        Health {
            ready,
            kafka_ok: Arc::default(),
            es_ok: Arc::default(),
        }
    }

    /// Cheap when nothing changes: called for every consumed record.
    pub fn kafka_ok(&self) {
        if !self.kafka_ok.swap(true, Ordering::AcqRel) {
            self.ready.set(KAFKA, Ok(()));
        }
    }

    pub fn kafka_failed(&self, why: &str) {
        self.kafka_ok.store(false, Ordering::Release);
        self.ready.set(KAFKA, Err(format!("Kafka: {why}")));
    }

    pub fn es_ok(&self) {
        if !self.es_ok.swap(true, Ordering::AcqRel) {
            self.ready.set(ELASTICSEARCH, Ok(()));
        }
    }

    pub fn es_failed(&self, why: &str) {
        self.es_ok.store(false, Ordering::Release);
        self.ready.set(ELASTICSEARCH, Err(format!("Elasticsearch: {why}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_both_dependencies_are() {
        let ready = Readiness::new("starting");
        let h = Health::new(ready.clone());
        h.kafka_ok();
        assert!(ready.reason().is_some(), "Elasticsearch not checked yet");
        h.es_ok();
        assert_eq!(ready.reason(), None);
        h.es_failed("HTTP 503");
        assert_eq!(ready.reason().unwrap(), "Elasticsearch: HTTP 503");
        h.kafka_failed("all brokers down");
        assert!(ready.reason().unwrap().contains("Kafka: all brokers down"));
        h.es_ok();
        h.kafka_ok();
        assert_eq!(ready.reason(), None);
    }
}
