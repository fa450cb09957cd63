//! The indexer loop: consume, batch, `_bulk`, retry, dead-letter, commit.
//!
//! Up to `max_in_flight_requests` batches are written at once, each by its
//! own task that retries until every document is indexed or dead-lettered.
//! When all are busy the loop stops consuming, so a slow or failing
//! Elasticsearch makes the indexer wait instead of filling memory: at most
//! `max_in_flight_requests + 1` batches (plus librdkafka's bounded prefetch)
//! are held. Batches finish out of order; the per-partition ack tracker moves
//! the committed offset only over a prefix of documents that are all done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use futures_util::{FutureExt, StreamExt};
use logpipe_config::{ElasticsearchConfig, IndexerConfig, KafkaConfig};
use logpipe_core::ack::{PartitionAcks, Seq};
use logpipe_core::kafka;
use logpipe_core::ops::Readiness;
use logpipe_core::shutdown::CancellationToken;
use logpipe_schemas::{dead_letter, event, parsed};
use rand::Rng;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use tokio::task::JoinSet;

use crate::batch::{self, Arena, Batch, Doc};
use crate::bulk::{self, Outcome};
use crate::client;
use crate::health::Health;
use crate::index::{self, Namer, Target};

/// Longest wait between two attempts of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub async fn run(
    cfg: &IndexerConfig,
    k: &KafkaConfig,
    es: &ElasticsearchConfig,
    ready: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if cfg.max_in_flight_requests == 0 {
        bail!("indexer.max_in_flight_requests must be at least 1");
    }
    if cfg.compression_level > 9 {
        bail!(
            "indexer.compression_level must be 0 (off) to 9, not {}",
            cfg.compression_level
        );
    }
    let es_client = client::build(es)?;
    client::check(&es_client, es).await?;
    let target = Target::from_config(cfg);
    if cfg.install_template {
        index::install(&es_client, cfg, &target).await?;
    }
    let mut consumer_cfg = kafka::consumer_config(k, &cfg.group_id);
    // The loop stops polling on purpose while Elasticsearch is down; without
    // this librdkafka would leave the group after 5 minutes and rebalance for
    // nothing. A dead process is still noticed by the session timeout.
    if !k.options.contains_key("max.poll.interval.ms") {
        consumer_cfg.set("max.poll.interval.ms", "86400000");
    }
    let consumer: Arc<StreamConsumer> = Arc::new(consumer_cfg.create().context("creating the Kafka consumer")?);
    consumer
        .subscribe(&[&k.parsed_topic])
        .with_context(|| format!("subscribing to {}", k.parsed_topic))?;
    let dlq: FutureProducer = kafka::producer_config(k)
        .create()
        .context("creating the dead-letter producer")?;
    let health = Health::new(ready);
    health.es_ok();
    health.kafka_ok();
    tracing::info!(
        topic = %k.parsed_topic,
        group = %cfg.group_id,
        url = %client::redacted_url(&es.url),
        target = ?target,
        in_flight = cfg.max_in_flight_requests,
        "indexer consuming"
    );

    let mut intake = Intake {
        acks: PartitionAcks::default(),
        namer: Namer::new(target),
        topic: k.parsed_topic.as_str().into(),
        arena: Arena::default(),
        scratch: Vec::new(),
    };
    let mut batch = Batch::new(
        cfg.batch_max_events,
        cfg.batch_max_bytes,
        Duration::from_millis(cfg.batch_max_age_ms),
    );
    // Cancelled at the drain deadline: writers then stop retrying.
    let stop_writers = CancellationToken::new();
    let writer = Writer {
        es: es_client,
        dlq,
        dlq_topic: k.dead_letter_topic.as_str().into(),
        level: cfg.compression_level,
        stop: stop_writers.clone(),
        health: health.clone(),
    };
    let mut tasks: JoinSet<Vec<(usize, Seq)>> = JoinSet::new();
    let mut lag_tick = tokio::time::interval(Duration::from_secs(5));
    let mut lag_job = None;
    // One stream and one timer for the whole loop: building them per message
    // (a waker slot, a timer-wheel entry) cost more than handling the message.
    let mut stream = consumer.stream();
    let age_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(age_timer);
    let mut armed: Option<Instant> = None;

    loop {
        let saturated = tasks.len() >= cfg.max_in_flight_requests;
        let deadline = batch.deadline();
        if deadline != armed {
            if let Some(d) = deadline {
                age_timer.as_mut().reset(d.into());
            }
            armed = deadline;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                apply(&consumer, &mut intake.acks, done);
            }
            _ = lag_tick.tick() => {
                metrics::gauge!("logpipe_indexer_documents_in_flight").set(intake.acks.in_flight() as f64);
                let c = consumer.clone();
                // Watermarks are a broker round trip: off the loop, and a
                // tick that finds the previous one still running is skipped.
                if lag_job.as_ref().is_none_or(|j: &tokio::task::JoinHandle<()>| j.is_finished()) {
                    lag_job = Some(tokio::task::spawn_blocking(move || report_lag(&c)));
                }
            }
            _ = &mut age_timer, if deadline.is_some() && !saturated => {}
            Some(msg) = stream.next(), if !saturated => {
                let mut next = Some(msg);
                let mut ok_reported = false;
                // Take what librdkafka already holds without going round the
                // select for each message, up to a full batch (a batch record
                // of the parser's may take it one record past full).
                while let Some(msg) = next {
                    match msg {
                        Ok(m) => {
                            if !ok_reported {
                                health.kafka_ok();
                                ok_reported = true;
                            }
                            push_docs(&m, &mut intake, &mut batch);
                        }
                        Err(e) => {
                            health.kafka_failed(&e.to_string());
                            tracing::warn!(error = %e, "consume error");
                            break;
                        }
                    }
                    if batch.is_full() {
                        break;
                    }
                    next = stream.next().now_or_never().flatten();
                }
            },
        }
        let due = batch.deadline().is_some_and(|d| d <= Instant::now());
        if (batch.is_full() || due) && tasks.len() < cfg.max_in_flight_requests {
            tasks.spawn(writer.clone().write(batch.take()));
        }
    }

    tracing::info!(
        in_flight = tasks.len(),
        "draining: writing the open batch and committing"
    );
    if !batch.is_empty() {
        tasks.spawn(writer.clone().write(batch.take()));
    }
    let drain = Duration::from_secs(cfg.drain_timeout_secs);
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => apply(&consumer, &mut intake.acks, done),
                None => break,
            },
            _ = &mut deadline, if !stop_writers.is_cancelled() => stop_writers.cancel(),
        }
    }
    kafka::store_acked(&*consumer, &mut intake.acks);
    kafka::final_commit(&*consumer);
    tracing::info!("indexer stopped");
    Ok(())
}

/// Acknowledges what a writer finished and stores the offsets that moved.
fn apply(consumer: &StreamConsumer, acks: &mut PartitionAcks, done: Result<Vec<(usize, Seq)>, tokio::task::JoinError>) {
    match done {
        Ok(acked) => {
            for (slot, seq) in acked {
                acks.ack(slot, seq);
            }
            kafka::store_acked(consumer, acks);
        }
        // A panicking writer acknowledged nothing: its documents are not
        // committed and come again after a restart.
        Err(e) => tracing::error!(error = %e, "bulk writer failed"),
    }
    metrics::gauge!("logpipe_indexer_documents_in_flight").set(acks.in_flight() as f64);
}

/// Records not consumed yet per partition: high watermark minus position.
fn report_lag(consumer: &StreamConsumer) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for e in positions.elements() {
        let rdkafka::Offset::Offset(pos) = e.offset() else {
            continue;
        };
        if let Ok((_, high)) = consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2)) {
            if high >= 0 {
                metrics::gauge!(
                    "logpipe_indexer_consumer_lag",
                    "topic" => e.topic().to_string(),
                    "partition" => e.partition().to_string()
                )
                .set((high - pos).max(0) as f64);
            }
        }
    }
}

/// What the loop keeps between records to turn each into a [`Doc`] cheaply.
struct Intake {
    acks: PartitionAcks,
    namer: Namer,
    /// The consumed topic's name, shared by its documents.
    topic: Arc<str>,
    arena: Arena,
    scratch: Vec<u8>,
}

/// Turns one consumed record into documents: the many of a batch record
/// (`logpipe_schemas::parsed`), or the one of any other record.
fn push_docs(m: &BorrowedMessage<'_>, intake: &mut Intake, batch: &mut Batch) {
    let payload = m.payload().unwrap_or_default();
    let headers = m.headers();
    let count = headers.and_then(|h| {
        h.iter()
            .find(|h| h.key == parsed::HEADER_DOCS)
            .map(|h| h.value.unwrap_or_default())
    });
    let ingest_ms = m.timestamp().to_millis().unwrap_or(0);
    let invalid = match count.map(|c| parsed::split(payload, c)) {
        None => None,
        Some(Ok(docs)) if !docs.is_empty() => {
            let Intake {
                acks,
                namer,
                topic,
                arena,
                ..
            } = intake;
            let (slot, first) = acks.register_parts(m.topic(), m.partition(), m.offset(), docs.len());
            let topic = shared_topic(topic, m.topic());
            // One copy of the record; each document is a view of it.
            let whole = arena.copy(payload);
            for (i, (id, source)) in docs.into_iter().enumerate() {
                let source = whole.slice(source);
                let ts_ms = event::leading_timestamp_ms(&source)
                    .unwrap_or_else(|| m.timestamp().to_millis().unwrap_or_else(logpipe_core::now_ms));
                let id = utf8_id(whole.slice(id));
                batch.push(Doc {
                    slot,
                    seq: first + i as Seq,
                    index: namer.index(ts_ms),
                    id,
                    source,
                    headers: None,
                    invalid: None,
                    topic: topic.clone(),
                    partition: m.partition(),
                    offset: m.offset(),
                    ingest_ms,
                });
            }
            return;
        }
        Some(Ok(_)) => Some(Arc::from("a parsed batch of no documents")),
        Some(Err(e)) => Some(Arc::from(e.to_string())),
    };
    let Intake {
        acks,
        namer,
        topic,
        arena,
        scratch,
    } = intake;
    let (slot, seq) = acks.register(m.topic(), m.partition(), m.offset());
    // The event time picks the daily index; a record of some other producer
    // has at least its own timestamp.
    let legacy_header = || {
        headers?
            .iter()
            .find(|h| h.key == event::HEADER_EVENT_MS)
            .and_then(|h| h.value)
    };
    let ts_ms = event::event_time_ms(payload, legacy_header)
        .or_else(|| m.timestamp().to_millis())
        .unwrap_or_else(logpipe_core::now_ms);
    let id = match m.key() {
        Some(k) if !k.is_empty() => utf8_id(arena.copy(k)),
        // A record without a key has no id of its own: its Kafka coordinates are.
        _ => logpipe_schemas::id::kafka_record_id(m.topic(), m.partition(), m.offset()).into(),
    };
    batch.push(Doc {
        slot,
        seq,
        index: namer.index(ts_ms),
        id,
        source: arena.copy(payload),
        headers: headers.map(|h| {
            scratch.clear();
            batch::pack_headers(scratch, h.iter().map(|h| (h.key, h.value)));
            arena.copy(scratch)
        }),
        invalid,
        topic: shared_topic(topic, m.topic()),
        partition: m.partition(),
        offset: m.offset(),
        ingest_ms,
    });
}

/// Why `doc` cannot go into a request at all, if so.
fn unsendable(doc: &Doc) -> Option<&str> {
    doc.invalid.as_deref().or_else(|| bulk::unsendable(&doc.source))
}

/// A document id as [`Doc::id`] holds it: valid UTF-8, lossily decoded if
/// it was not (a record of some other producer).
fn utf8_id(id: Bytes) -> Bytes {
    match String::from_utf8_lossy(&id) {
        std::borrow::Cow::Borrowed(_) => id,
        std::borrow::Cow::Owned(fixed) => Bytes::from(fixed),
    }
}

/// One topic is consumed: its name is shared instead of copied per document.
fn shared_topic(current: &mut Arc<str>, topic: &str) -> Arc<str> {
    if &**current != topic {
        *current = topic.into();
    }
    current.clone()
}

#[derive(Clone)]
struct Writer {
    es: Elasticsearch,
    dlq: FutureProducer,
    dlq_topic: Arc<str>,
    level: u32,
    /// Retrying stops when this is cancelled (the drain deadline).
    stop: CancellationToken,
    health: Health,
}

/// What one `_bulk` request came back with.
enum Reply {
    Items(Vec<Outcome>),
    /// The request as a whole failed and may succeed later.
    Failed(String),
    /// Elasticsearch refused the request itself (400, 413): some document in
    /// it is at fault, or the request is too large.
    Refused(String),
}

impl Writer {
    /// Writes the documents until each one is indexed or dead-lettered and
    /// returns their acknowledgements. Retries without limit, with
    /// exponential backoff and jitter, unless the stop token is cancelled:
    /// then unwritten documents stay unacknowledged, so their offsets are
    /// not committed and they come again.
    async fn write(self, docs: Vec<Doc>) -> Vec<(usize, Seq)> {
        let mut acked = Vec::with_capacity(docs.len());
        let mut sendable = docs;
        for doc in sendable.extract_if(.., |d| unsendable(d).is_some()) {
            let why = unsendable(&doc).expect("extracted as unsendable");
            if self.dead_letter(&doc, why).await {
                acked.push((doc.slot, doc.seq));
            }
        }
        // Groups still to write; a refused request is split in two until the
        // document at fault is alone.
        let mut groups = vec![sendable];
        let mut buf = Vec::new();
        let mut attempt = 0u32;
        while let Some(docs) = groups.pop() {
            if docs.is_empty() {
                continue;
            }
            let body = bulk::body(&docs, self.level, &mut buf);
            let started = Instant::now();
            let reply = self.bulk(body, docs.len()).await;
            metrics::histogram!("logpipe_indexer_bulk_seconds").record(started.elapsed().as_secs_f64());
            let retry = match reply {
                Reply::Items(outcomes) => {
                    self.health.es_ok();
                    metrics::counter!("logpipe_indexer_bulk_requests_total", "result" => "ok").increment(1);
                    self.settle(docs, outcomes, &mut acked).await
                }
                Reply::Refused(why) if docs.len() > 1 => {
                    self.health.es_ok();
                    metrics::counter!("logpipe_indexer_bulk_requests_total", "result" => "refused").increment(1);
                    tracing::warn!(error = %why, docs = docs.len(), "bulk request refused; splitting it");
                    let mut docs = docs;
                    let second = docs.split_off(docs.len() / 2);
                    groups.push(second);
                    groups.push(docs);
                    continue;
                }
                Reply::Refused(why) => {
                    let doc = docs.into_iter().next().expect("one document");
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "dead_letter")
                        .increment(1);
                    if self.dead_letter(&doc, &why).await {
                        acked.push((doc.slot, doc.seq));
                    }
                    continue;
                }
                Reply::Failed(why) => {
                    self.health.es_failed(&why);
                    metrics::counter!("logpipe_indexer_bulk_requests_total", "result" => "failed").increment(1);
                    metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "retried")
                        .increment(docs.len() as u64);
                    tracing::warn!(error = %why, docs = docs.len(), attempt, "bulk request failed; retrying");
                    docs
                }
            };
            if retry.is_empty() {
                attempt = 0;
                continue;
            }
            groups.push(retry);
            attempt += 1;
            tokio::select! {
                _ = self.stop.cancelled() => {
                    let left: usize = groups.iter().map(Vec::len).sum();
                    tracing::warn!(docs = left, "stopping with unwritten documents; their offsets stay uncommitted");
                    return acked;
                }
                _ = tokio::time::sleep(backoff(attempt)) => {}
            }
        }
        acked
    }

    /// Acknowledges indexed and dead-lettered documents; returns those to retry.
    async fn settle(&self, docs: Vec<Doc>, outcomes: Vec<Outcome>, acked: &mut Vec<(usize, Seq)>) -> Vec<Doc> {
        let mut retry = Vec::new();
        let (mut indexed, mut duplicate, mut rejected) = (0u64, 0u64, 0u64);
        for (doc, outcome) in docs.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Indexed => {
                    indexed += 1;
                    logpipe_core::lag::observe("index", || doc.ingest_ms);
                    acked.push((doc.slot, doc.seq));
                }
                Outcome::Duplicate => {
                    duplicate += 1;
                    acked.push((doc.slot, doc.seq));
                }
                Outcome::Retry(_) => retry.push(doc),
                Outcome::Rejected(reason) => {
                    rejected += 1;
                    if self.dead_letter(&doc, &reason).await {
                        acked.push((doc.slot, doc.seq));
                    }
                }
            }
        }
        metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "indexed").increment(indexed);
        metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "duplicate").increment(duplicate);
        metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "dead_letter").increment(rejected);
        metrics::counter!("logpipe_events_total", "stage" => "index", "outcome" => "retried")
            .increment(retry.len() as u64);
        retry
    }

    /// One `_bulk` request with a ready-made body.
    async fn bulk(&self, body: Bytes, docs: usize) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        if self.level > 0 {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let resp = match self
            .es
            .transport()
            .send(
                Method::Post,
                "/_bulk",
                headers,
                Some(&[("filter_path", bulk::FILTER_PATH)]),
                Some(body),
                None,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Reply::Failed(format!("request error: {e}")),
        };
        let status = resp.status_code().as_u16();
        let text = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Reply::Failed(format!("reading the _bulk response: {e}")),
        };
        let excerpt = || String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
        match status {
            200 => match bulk::outcomes(&text, docs) {
                Ok(o) => Reply::Items(o),
                Err(e) => Reply::Failed(e),
            },
            400 | 413 => Reply::Refused(format!("HTTP {status}: {}", excerpt())),
            // 429, 5xx, and also 401/403/404 (credentials or a proxy being
            // fixed): keep the documents and try again.
            _ => Reply::Failed(format!("HTTP {status}: {}", excerpt())),
        }
    }

    /// Produces a dead letter and waits for Kafka's acknowledgement.
    async fn dead_letter(&self, doc: &Doc, reason: &str) -> bool {
        tracing::warn!(id = %doc.id_str(), %reason, "document rejected by Elasticsearch; dead-lettering it");
        let origin = dead_letter::origin(&doc.topic, doc.partition, doc.offset);
        loop {
            let h = doc
                .owned_headers()
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
                    value: Some(origin.as_str()),
                });
            let record = FutureRecord::to(&self.dlq_topic)
                .key(&doc.id[..])
                .payload(&doc.source[..])
                .headers(h);
            match self.dlq.send(record, Duration::from_secs(30)).await {
                Ok(_) => return true,
                Err((e, _)) => {
                    self.health.kafka_failed(&format!("dead-letter produce: {e}"));
                    tracing::warn!(error = %e, "dead-letter produce failed; retrying");
                    if self.stop.is_cancelled() {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Exponential backoff from 100 ms, capped at [`MAX_BACKOFF`], with jitter
/// in the upper half so many indexers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let cap = MAX_BACKOFF.as_millis() as u64;
    let base = 100u64.saturating_mul(1 << attempt.min(16)).min(cap);
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
            let cap = 100u64.saturating_mul(1 << attempt.min(16)).min(10_000);
            assert!(b >= Duration::from_millis(cap / 2) && b <= Duration::from_millis(cap));
        }
        assert!(backoff(30) <= MAX_BACKOFF);
        assert!(backoff(1) < Duration::from_millis(201));
    }
}
