//! The indexer loop: consume, batch, `_bulk`, retry, dead-letter, commit.
//!
//! One batch is written at a time, and consumption waits while it is: a slow
//! or failing Elasticsearch stops the indexer consuming instead of filling
//! memory. An offset is stored for commit only once every document up to it
//! was indexed (or already there) or dead-lettered.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use elasticsearch::{BulkParts, Elasticsearch};
use logpipe_config::{ElasticsearchConfig, IndexerConfig, KafkaConfig};
use logpipe_core::ack::PartitionAcks;
use logpipe_core::kafka;
use logpipe_core::ops::Readiness;
use logpipe_core::shutdown::CancellationToken;
use logpipe_schemas::{dead_letter, event, time};
use rand::Rng;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::batch::{Batch, Doc};
use crate::bulk::{self, Outcome};
use crate::client;

pub async fn run(
    cfg: &IndexerConfig,
    k: &KafkaConfig,
    es: &ElasticsearchConfig,
    ready: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let es_client = client::build(es)?;
    client::check(&es_client, es).await?;
    if cfg.install_template {
        client::install_template(&es_client).await?;
    }
    let consumer: StreamConsumer = kafka::consumer_config(k, &cfg.group_id)
        .create()
        .context("creating the Kafka consumer")?;
    consumer
        .subscribe(&[&k.parsed_topic])
        .with_context(|| format!("subscribing to {}", k.parsed_topic))?;
    let dlq: FutureProducer = kafka::producer_config(k)
        .create()
        .context("creating the dead-letter producer")?;
    ready.set_ready();
    tracing::info!(topic = %k.parsed_topic, group = %cfg.group_id, url = %es.url, "indexer consuming");

    let mut acks = PartitionAcks::default();
    let mut batch = Batch::new(
        cfg.batch_max_events,
        cfg.batch_max_bytes,
        Duration::from_millis(cfg.batch_max_age_ms),
    );
    let writer = Writer {
        es: &es_client,
        dlq: &dlq,
        dlq_topic: &k.dead_letter_topic,
        shutdown: &shutdown,
        ready: &ready,
    };

    loop {
        let deadline = batch.deadline();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sleep_until(deadline), if deadline.is_some() => {}
            msg = consumer.recv() => match msg {
                Ok(m) => batch.push(to_doc(&m, &mut acks, &cfg.index_pattern)),
                Err(e) => tracing::warn!(error = %e, "consume error"),
            },
        }
        let due = batch
            .deadline()
            .is_some_and(|d| d <= tokio::time::Instant::now().into_std());
        if batch.is_full() || due {
            writer.write(batch.take(), &mut acks).await;
            kafka::store_acked(&consumer, &mut acks);
        }
    }

    tracing::info!("draining: writing the open batch and committing");
    let drain = Duration::from_secs(cfg.drain_timeout_secs);
    // The drain writes the open batch with its own (bounded) patience.
    let drain_token = CancellationToken::new();
    let drain_writer = Writer {
        shutdown: &drain_token,
        ..writer
    };
    let canceller = drain_token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        canceller.cancel();
    });
    drain_writer.write(batch.take(), &mut acks).await;
    kafka::store_acked(&consumer, &mut acks);
    kafka::final_commit(&consumer);
    tracing::info!("indexer stopped");
    Ok(())
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}

fn to_doc(m: &BorrowedMessage<'_>, acks: &mut PartitionAcks, pattern: &str) -> Doc {
    let (slot, seq) = acks.register(m.topic(), m.partition(), m.offset());
    let mut headers = Vec::new();
    let mut event_ms = None;
    if let Some(h) = m.headers() {
        for h in h.iter() {
            if h.key == event::HEADER_EVENT_MS {
                event_ms = h
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<i64>().ok());
            }
            headers.push((h.key.to_string(), h.value.unwrap_or_default().to_vec()));
        }
    }
    let ts_ms = event_ms
        .or_else(|| m.timestamp().to_millis())
        .unwrap_or_else(logpipe_core::now_ms);
    let id = match m.key() {
        Some(k) if !k.is_empty() => String::from_utf8_lossy(k).into_owned(),
        // A record without a key has no id of its own: its Kafka coordinates are.
        _ => logpipe_schemas::id::kafka_record_id(m.topic(), m.partition(), m.offset()),
    };
    Doc {
        slot,
        seq,
        index: time::expand_date_pattern(pattern, ts_ms * 1000),
        id,
        source: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        headers,
        origin: dead_letter::origin(m.topic(), m.partition(), m.offset()),
    }
}

#[derive(Clone, Copy)]
struct Writer<'a> {
    es: &'a Elasticsearch,
    dlq: &'a FutureProducer,
    dlq_topic: &'a str,
    /// Retrying stops when this is cancelled (the drain deadline).
    shutdown: &'a CancellationToken,
    ready: &'a Readiness,
}

impl Writer<'_> {
    /// Writes the documents until each one is indexed or dead-lettered, then
    /// acknowledges them. Retries without limit, with exponential backoff and
    /// jitter, unless the stop token is cancelled: then unwritten documents stay
    /// unacknowledged, so their offsets are not committed and they come again.
    async fn write(&self, mut docs: Vec<Doc>, acks: &mut PartitionAcks) {
        let mut attempt = 0u32;
        while !docs.is_empty() {
            let started = std::time::Instant::now();
            let result = self.bulk(&docs).await;
            metrics::histogram!("logpipe_indexer_bulk_seconds").record(started.elapsed().as_secs_f64());
            let retry: Vec<Doc> = match result {
                Ok(outcomes) => {
                    self.ready.set_ready();
                    let mut retry = Vec::new();
                    let (mut indexed, mut duplicate, mut rejected) = (0u64, 0u64, 0u64);
                    for (doc, outcome) in docs.into_iter().zip(outcomes) {
                        match outcome {
                            Outcome::Indexed => {
                                indexed += 1;
                                acks.ack(doc.slot, doc.seq);
                            }
                            Outcome::Duplicate => {
                                duplicate += 1;
                                acks.ack(doc.slot, doc.seq);
                            }
                            Outcome::Retry(_) => retry.push(doc),
                            Outcome::Rejected(reason) => {
                                rejected += 1;
                                if self.dead_letter(&doc, &reason).await {
                                    acks.ack(doc.slot, doc.seq);
                                }
                            }
                        }
                    }
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "indexed")
                        .increment(indexed);
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "duplicate")
                        .increment(duplicate);
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "dead_letter")
                        .increment(rejected);
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "retried")
                        .increment(retry.len() as u64);
                    retry
                }
                Err((why, docs)) => {
                    self.ready.set_not_ready(format!("Elasticsearch: {why}"));
                    tracing::warn!(error = %why, docs = docs.len(), "bulk request failed; retrying");
                    docs
                }
            };
            docs = retry;
            if docs.is_empty() {
                break;
            }
            attempt += 1;
            let backoff = backoff(attempt);
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    tracing::warn!(docs = docs.len(), "stopping with unwritten documents; their offsets stay uncommitted");
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// One `_bulk` request. A whole-request failure returns the documents.
    async fn bulk(&self, docs: &[Doc]) -> Result<Vec<Outcome>, (String, Vec<Doc>)> {
        let fail = |why: String| Err((why, docs.to_vec()));
        let resp = match self.es.bulk(BulkParts::None).body(bulk::body(docs)).send().await {
            Ok(r) => r,
            Err(e) => return fail(format!("request error: {e}")),
        };
        let status = resp.status_code().as_u16();
        if status != 200 {
            let text = resp.text().await.unwrap_or_default();
            return fail(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
        }
        let json: serde_json::Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => return fail(format!("unreadable _bulk response: {e}")),
        };
        bulk::outcomes(&json, docs.len()).or_else(fail)
    }

    /// Produces a dead letter and waits for Kafka's acknowledgement.
    async fn dead_letter(&self, doc: &Doc, reason: &str) -> bool {
        tracing::warn!(id = %doc.id, %reason, "document rejected by Elasticsearch; dead-lettering it");
        loop {
            let mut h = OwnedHeaders::new();
            for (k, v) in &doc.headers {
                h = h.insert(Header { key: k, value: Some(v) });
            }
            h = h
                .insert(Header {
                    key: dead_letter::HEADER_STAGE,
                    value: Some(dead_letter::Stage::Index.as_str()),
                })
                .insert(Header {
                    key: dead_letter::HEADER_REASON,
                    value: Some(reason),
                })
                .insert(Header {
                    key: dead_letter::HEADER_ORIGIN,
                    value: Some(doc.origin.as_str()),
                });
            let record = FutureRecord::to(self.dlq_topic)
                .key(doc.id.as_str())
                .payload(&doc.source[..])
                .headers(h);
            match self.dlq.send(record, Duration::from_secs(30)).await {
                Ok(_) => return true,
                Err((e, _)) => {
                    tracing::warn!(error = %e, "dead-letter produce failed; retrying");
                    if self.shutdown.is_cancelled() {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Exponential backoff from 100 ms, capped at 30 s, with full jitter in the
/// upper half so many indexers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(9)).min(30_000);
    let jitter = rand::rng().random_range(0..=base / 2);
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let b = backoff(attempt);
            let cap = 100u64.saturating_mul(1 << attempt.min(9)).min(30_000);
            assert!(b >= Duration::from_millis(cap / 2) && b <= Duration::from_millis(cap));
        }
        assert!(backoff(30) <= Duration::from_secs(30));
    }
}
