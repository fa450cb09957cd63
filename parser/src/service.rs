//! The parser service: raw topic in, parsed and dead-letter topics out.
//!
//! Documents leave in batches, several to a parsed record
//! (`logpipe_schemas::parsed`); a dead letter leaves at once, one record each.
//! A consumed offset is stored for commit only once what was produced from
//! it — and from every earlier record of its partition — was acknowledged
//! by Kafka (see `logpipe_core::ack::PartitionAcks`). A crash or rebalance
//! therefore re-parses at most the unacknowledged window, and the document
//! ids, derived from the line's source and not from the run, make those
//! re-sends land on the same documents.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use logpipe_config::{KafkaConfig, ParserConfig};
use logpipe_core::ack::{PartitionAcks, Seq};
use logpipe_core::delivery::{self, AckProducer, SendError};
use logpipe_core::kafka;
use logpipe_core::shutdown::CancellationToken;
use logpipe_schemas::raw::{self, SourceMeta};
use logpipe_schemas::{dead_letter, id, parsed};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::Producer as _;
use rdkafka::{Message, Offset};

use crate::formats::{self, LineContext};
use crate::selection::FormatSelector;

/// Records consumed but not acknowledged before consumption pauses.
const MAX_IN_FLIGHT: usize = 200_000;
/// A batch record is sent once it holds this many documents or bytes (well
/// under Kafka's default 1 MB record limit), once it is this old, or as soon
/// as the consumer has nothing more at hand.
const BATCH_DOCS: usize = 1_000;
const BATCH_BYTES: usize = 256 * 1024;
const BATCH_AGE: Duration = Duration::from_millis(20);
/// A document that would take its batch past this goes into the next one,
/// so that batching never makes a record too large for Kafka (librdkafka's
/// default `message.max.bytes` is 1,000,000) where the documents alone fit.
const MAX_RECORD_BYTES: usize = 900_000;

pub fn run(cfg: &ParserConfig, k: &KafkaConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let formats = FormatSelector::from_config(cfg)?;
    let topics = raw_topics(cfg, k);
    let consumer: BaseConsumer = kafka::consumer_config(k, &cfg.group_id)
        .create()
        .context("creating the Kafka consumer")?;
    consumer
        .subscribe(&topics)
        .with_context(|| format!("subscribing to {}", topics.join(", ")))?;
    let (ctx, acks_rx) = delivery::ack_channel();
    let producer: AckProducer = kafka::producer_config(k)
        .create_with_context(ctx)
        .context("creating the Kafka producer")?;
    kafka::warm_up(producer.client(), &k.parsed_topic, Duration::from_secs(2));

    let mut acks = PartitionAcks::default();
    let mut outbox = Outbox::default();
    let (mut parsed, mut failed) = (0u64, 0u64);
    let mut last_store = Instant::now();
    tracing::info!(topics = %topics.join(","), group = %cfg.group_id, format = %cfg.format, rules = cfg.sources.len(), "parser consuming");

    while !shutdown.is_cancelled() {
        outbox.apply_acks(&acks_rx, &mut acks);
        if acks.in_flight() >= MAX_IN_FLIGHT {
            // What waits in the batch counts as in flight: send it, or the
            // acknowledgements that would free room never come.
            outbox.flush(&producer, &k.parsed_topic, &acks_rx, &mut acks);
            std::thread::sleep(Duration::from_millis(5));
            // Keep the group membership alive while paused.
            let _ = consumer
                .poll(Duration::ZERO)
                .map(|m| m.map(|m| seek_back(&consumer, &m)));
            continue;
        }
        // With a batch open, only what librdkafka already holds is taken;
        // when that runs out the batch goes.
        let wait = if outbox.is_empty() {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
            None => outbox.flush(&producer, &k.parsed_topic, &acks_rx, &mut acks),
            Some(Err(e)) => tracing::warn!(error = %e, "consume error"),
            Some(Ok(msg)) => {
                // Read once: each call measures and checks the C string.
                let topic = msg.topic();
                let route = acks.register(topic, msg.partition(), msg.offset());
                let ok = handle(
                    &msg,
                    topic,
                    &formats,
                    k,
                    &producer,
                    route,
                    &mut outbox,
                    &acks_rx,
                    &mut acks,
                );
                if ok {
                    parsed += 1
                } else {
                    failed += 1
                }
                if outbox.is_full() {
                    outbox.flush(&producer, &k.parsed_topic, &acks_rx, &mut acks);
                }
            }
        }
        // One clock read per pass: two per record were 3% of the parser.
        let now = Instant::now();
        if outbox.opened.is_some_and(|t| now.duration_since(t) >= BATCH_AGE) {
            outbox.flush(&producer, &k.parsed_topic, &acks_rx, &mut acks);
        }
        if now.duration_since(last_store) >= Duration::from_millis(200) {
            kafka::store_acked(&consumer, &mut acks);
            metrics::counter!("logpipe_events_total", "stage" => "parse", "outcome" => "parsed").increment(parsed);
            metrics::counter!("logpipe_events_total", "stage" => "parse", "outcome" => "dead_letter").increment(failed);
            (parsed, failed) = (0, 0);
            last_store = now;
        }
    }

    tracing::info!("draining: flushing the producer and committing");
    outbox.flush(&producer, &k.parsed_topic, &acks_rx, &mut acks);
    if let Err(e) = producer.flush(Duration::from_secs(cfg.drain_timeout_secs)) {
        tracing::warn!(error = %e, "not everything was acknowledged before the drain deadline; it will be consumed again");
    }
    outbox.apply_acks(&acks_rx, &mut acks);
    kafka::store_acked(&consumer, &mut acks);
    kafka::final_commit(&consumer);
    tracing::info!("parser stopped");
    Ok(())
}

/// The slot of [`delivery::pack`]ed opaques that name a batch record (its
/// sequence part is the batch's number) rather than one consumed record.
const BATCH_SLOT: usize = delivery::MAX_SLOT;

/// Documents waiting to leave as one batch record, and the batch records
/// sent and not yet acknowledged.
#[derive(Default)]
struct Outbox {
    value: Vec<u8>,
    docs: usize,
    /// Where the acknowledgement of each consumed record in the batch goes.
    sources: Vec<(usize, Seq)>,
    earliest_ingest_ms: i64,
    opened: Option<Instant>,
    next_batch: u64,
    /// Sent batches by number: the consumed records each one acknowledges.
    sent: HashMap<u64, Vec<(usize, Seq)>>,
    /// A document that did not fit the open batch: it opens the next one.
    carry: Option<Carried>,
}

struct Carried {
    framed: Vec<u8>,
    route: (usize, Seq),
    ingest_ms: i64,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.docs == 0
    }

    fn is_full(&self) -> bool {
        self.carry.is_some() || self.docs >= BATCH_DOCS || self.value.len() >= BATCH_BYTES
    }

    /// Adds one document, written by `write`, for the consumed record
    /// `route`. The caller sends the batch once it [`is_full`](Self::is_full).
    fn push(&mut self, route: (usize, Seq), doc_id: &[u8], ingest_ms: i64, write: impl FnOnce(&mut Vec<u8>)) {
        debug_assert!(self.carry.is_none(), "a full batch is sent before the next document");
        let before = self.value.len();
        parsed::push_doc(&mut self.value, doc_id, write);
        if self.docs > 0 && self.value.len() > MAX_RECORD_BYTES {
            let framed = self.value.split_off(before);
            self.carry = Some(Carried {
                framed,
                route,
                ingest_ms,
            });
            return;
        }
        self.add(route, ingest_ms);
    }

    /// Counts the document just framed into `value`.
    fn add(&mut self, route: (usize, Seq), ingest_ms: i64) {
        if self.docs == 0 {
            self.opened = Some(Instant::now());
            self.earliest_ingest_ms = ingest_ms;
        }
        self.earliest_ingest_ms = self.earliest_ingest_ms.min(ingest_ms);
        self.docs += 1;
        self.sources.push(route);
    }

    /// Ends the open batch (its number and the routes it acknowledges go to
    /// `sent`) and opens the next with the carried document, if any.
    fn sent_as(&mut self, n: u64) {
        self.sent.insert(n, std::mem::take(&mut self.sources));
        self.value.clear();
        self.docs = 0;
        self.opened = None;
        if let Some(c) = self.carry.take() {
            self.value.extend_from_slice(&c.framed);
            self.add(c.route, c.ingest_ms);
        }
    }

    /// Sends the open batch, waiting for room in librdkafka's queue.
    fn flush(
        &mut self,
        producer: &AckProducer,
        topic: &str,
        acks_rx: &crossbeam_channel::Receiver<delivery::Ack>,
        acks: &mut PartitionAcks,
    ) {
        if self.docs == 0 {
            return;
        }
        let n = self.next_batch;
        self.next_batch += 1;
        let opaque = delivery::pack(BATCH_SLOT, n);
        let count = self.docs.to_string();
        // Taken out for the send, which borrows it while waiting applies
        // acknowledgements through `self`.
        let (value, ts) = (std::mem::take(&mut self.value), self.earliest_ingest_ms);
        self.send_until_queued(acks_rx, acks, || {
            // A failed send consumes the headers, so they are built per attempt.
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: parsed::HEADER_DOCS,
                value: Some(count.as_str()),
            });
            // No key: the documents carry their ids, and the partitioner
            // spreads batches at random. The timestamp is the earliest ingest
            // time, for `event.ingested` on a replay and the indexer's lag.
            delivery::send(producer, topic, None, None, &value, Some(headers), Some(ts), opaque)
        });
        self.value = value;
        self.sent_as(n);
    }

    /// Calls `send` until librdkafka takes the record, applying
    /// acknowledgements while its queue is full (backpressure from Kafka).
    fn send_until_queued(
        &mut self,
        acks_rx: &crossbeam_channel::Receiver<delivery::Ack>,
        acks: &mut PartitionAcks,
        mut send: impl FnMut() -> Result<(), SendError>,
    ) {
        loop {
            match send() {
                Ok(()) => return,
                Err(SendError::QueueFull) => {
                    std::thread::sleep(Duration::from_millis(1));
                    self.apply_acks(acks_rx, acks);
                }
                Err(SendError::Fatal(e)) => {
                    tracing::error!(error = %e, "cannot enqueue to Kafka; retrying in 1s");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn apply_acks(&mut self, rx: &crossbeam_channel::Receiver<delivery::Ack>, acks: &mut PartitionAcks) {
        while let Ok(a) = rx.try_recv() {
            let sources = if a.slot == BATCH_SLOT {
                self.sent.remove(&a.seq).unwrap_or_default()
            } else {
                vec![(a.slot, a.seq)]
            };
            if a.ok {
                for (slot, seq) in sources {
                    acks.ack(slot, seq);
                }
            } else {
                // With no message timeout, a failed delivery is a permanent
                // error (e.g. a record over the broker's size limit). Not
                // acking it holds the partition's offset, so it is retried
                // after a restart.
                tracing::error!(
                    records = sources.len(),
                    "a parsed record was not accepted by Kafka; its offsets are held"
                );
            }
        }
    }
}

/// The topics to consume: `parser.topics`, or `kafka.raw_topic` when empty.
pub fn raw_topics<'c>(cfg: &'c ParserConfig, k: &'c KafkaConfig) -> Vec<&'c str> {
    if cfg.topics.is_empty() {
        vec![k.raw_topic.as_str()]
    } else {
        cfg.topics.iter().map(String::as_str).collect()
    }
}

/// A record polled while paused cannot be handled now: rewind the partition
/// to it so it is consumed again later.
fn seek_back(consumer: &BaseConsumer, msg: &BorrowedMessage<'_>) {
    let _ = consumer.seek(
        msg.topic(),
        msg.partition(),
        Offset::Offset(msg.offset()),
        Duration::from_secs(1),
    );
}

/// Parses one record: its document goes into the batch, or its dead letter
/// is enqueued. Returns whether it parsed.
#[allow(clippy::too_many_arguments)]
fn handle(
    msg: &BorrowedMessage<'_>,
    topic: &str,
    formats: &FormatSelector,
    k: &KafkaConfig,
    producer: &AckProducer,
    route: (usize, Seq),
    outbox: &mut Outbox,
    acks_rx: &crossbeam_channel::Receiver<delivery::Ack>,
    acks: &mut PartitionAcks,
) -> bool {
    let line = msg.payload().unwrap_or_default();
    // The shipper's records carry their source as their key; records of other
    // producers have no key, or one that does not read as a source.
    let meta = msg.key().and_then(SourceMeta::parse);
    // The raw record's timestamp is when the shipper read the line.
    let ingest_ms = msg
        .timestamp()
        .to_millis()
        .filter(|ms| *ms > 0)
        .unwrap_or_else(logpipe_core::now_ms);
    if meta.is_some() {
        logpipe_core::lag::observe("parse", || ingest_ms);
    }
    let ctx = LineContext {
        ingest: ingest_ms * 1000,
        host: meta.as_ref().map(|m| m.host),
        path: meta.as_ref().map(|m| m.path),
        offset: meta.as_ref().map(|m| m.offset),
    };
    let (id_buf, foreign_id);
    let doc_id: &[u8] = match &meta {
        Some(m) => {
            id_buf = id::line_id_hex(m.host, m.fingerprint, m.offset);
            &id_buf
        }
        None => {
            foreign_id = id::kafka_record_id(topic, msg.partition(), msg.offset());
            foreign_id.as_bytes()
        }
    };
    let format = formats.select(topic, ctx.host, ctx.path);
    let e = match formats::parse(format, line, &ctx) {
        Ok(ev) => {
            // A document carries no header of its own: all the indexer needs
            // is in the JSON, the event time first of all.
            outbox.push(route, doc_id, ingest_ms, |out| ev.write_json(out));
            return true;
        }
        Err(e) => e,
    };
    // A dead letter keeps the raw record's headers, so it can be replayed,
    // and has the document id as key, so a replay lands on the same document.
    let mut extra = vec![
        (
            dead_letter::HEADER_STAGE,
            dead_letter::Stage::Parse.as_str().to_string(),
        ),
        (dead_letter::HEADER_REASON, e.to_string()),
        (
            dead_letter::HEADER_ORIGIN,
            dead_letter::origin(topic, msg.partition(), msg.offset()),
        ),
    ];
    // The raw key is replaced by the document id: the source goes in a header.
    if let Some(m) = &meta {
        extra.push((raw::HEADER_SOURCE, m.key()));
    }
    let opaque = delivery::pack(route.0, route.1);
    outbox.send_until_queued(acks_rx, acks, || {
        // A failed send consumes the headers, so they are built per attempt.
        let headers = with_headers(msg, &extra);
        // The ingest time stays its timestamp, for `event.ingested` on a replay.
        delivery::send(
            producer,
            &k.dead_letter_topic,
            None,
            Some(doc_id),
            line,
            Some(headers),
            Some(ingest_ms),
            opaque,
        )
    });
    false
}

/// The consumed record's headers, plus `extra`.
fn with_headers(msg: &BorrowedMessage<'_>, extra: &[(&str, String)]) -> OwnedHeaders {
    let source = msg.headers();
    let n = source.map_or(0, |h| h.count());
    let mut h = OwnedHeaders::new_with_capacity(n + extra.len());
    if let Some(src) = source {
        for header in src.iter() {
            h = h.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    for (key, value) in extra {
        h = h.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs_of(value: &[u8], n: usize) -> Vec<Vec<u8>> {
        parsed::split(value, n.to_string().as_bytes())
            .unwrap()
            .into_iter()
            .map(|(_, d)| value[d].to_vec())
            .collect()
    }

    #[test]
    fn a_document_that_would_overfill_the_record_opens_the_next_batch() {
        let mut o = Outbox::default();
        o.push((0, 0), b"a", 10, |out| out.extend_from_slice(b"{\"n\":0}"));
        assert!(!o.is_full());
        let big = vec![b'x'; MAX_RECORD_BYTES];
        o.push((0, 1), b"b", 5, |out| out.extend_from_slice(&big));
        assert!(o.is_full(), "the big one waits for the next batch");
        assert_eq!((o.docs, o.sources.clone()), (1, vec![(0, 0)]));
        assert_eq!(docs_of(&o.value, 1), vec![b"{\"n\":0}".to_vec()]);
        assert_eq!(o.earliest_ingest_ms, 10);

        o.sent_as(7);
        assert_eq!(o.sent[&7], vec![(0, 0)]);
        assert_eq!((o.docs, o.sources.clone(), o.earliest_ingest_ms), (1, vec![(0, 1)], 5));
        assert_eq!(docs_of(&o.value, 1), vec![big.clone()]);
        // Alone, a document goes as it is, however large.
        o.sent_as(8);
        o.push((0, 2), b"c", 1, |out| out.extend_from_slice(&big));
        assert_eq!(o.docs, 1);
        assert!(o.carry.is_none());
    }
}
