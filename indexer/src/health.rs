//! Readiness from the two hard dependencies only: Kafka reachable and
//! Elasticsearch writable. Anything else (a dead-lettered document, a slow
//! request) is not a reason to take the indexer out of rotation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use logpipe_core::ops::Readiness;

#[derive(Clone)]
pub struct Health(Arc<Inner>);

struct Inner {
    ready: Readiness,
    kafka_ok: AtomicBool,
    es_ok: AtomicBool,
    /// (Kafka's problem, Elasticsearch's problem); updated under one lock so
    /// the readiness reason always matches the flags.
    reasons: Mutex<(Option<String>, Option<String>)>,
}

impl Health {
    pub fn new(ready: Readiness) -> Health {
        Health(Arc::new(Inner {
            ready,
            kafka_ok: AtomicBool::new(false),
            es_ok: AtomicBool::new(false),
            reasons: Mutex::new((Some("starting".into()), Some("starting".into()))),
        }))
    }

    /// Cheap when nothing changes: called for every consumed record.
    pub fn kafka_ok(&self) {
        if !self.0.kafka_ok.swap(true, Ordering::AcqRel) {
            self.update(|r| r.0 = None);
        }
    }

    pub fn kafka_failed(&self, why: &str) {
        self.0.kafka_ok.store(false, Ordering::Release);
        let why = format!("Kafka: {why}");
        self.update(|r| r.0 = Some(why));
    }

    pub fn es_ok(&self) {
        if !self.0.es_ok.swap(true, Ordering::AcqRel) {
            self.update(|r| r.1 = None);
        }
    }

    pub fn es_failed(&self, why: &str) {
        self.0.es_ok.store(false, Ordering::Release);
        let why = format!("Elasticsearch: {why}");
        self.update(|r| r.1 = Some(why));
    }

    fn update(&self, f: impl FnOnce(&mut (Option<String>, Option<String>))) {
        let mut r = self.0.reasons.lock().expect("poisoned");
        f(&mut r);
        match (&r.0, &r.1) {
            (None, None) => self.0.ready.set_ready(),
            (Some(a), Some(b)) => self.0.ready.set_not_ready(format!("{a}; {b}")),
            (Some(a), None) | (None, Some(a)) => self.0.ready.set_not_ready(a.clone()),
        }
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
