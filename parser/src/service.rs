//! The parser service: raw topic in, parsed and dead-letter topics out.
//!
//! A consumed offset is stored for commit only once the record produced from
//! it — and from every earlier record of its partition — was acknowledged
//! by Kafka (see `logpipe_core::ack::PartitionAcks`). A crash or rebalance
//! therefore re-parses at most the unacknowledged window, and the document
//! ids, derived from the line's source and not from the run, make those
//! re-sends land on the same documents.

use std::time::{Duration, Instant};

use anyhow::Context;
use logpipe_config::{KafkaConfig, ParserConfig};
use logpipe_core::ack::PartitionAcks;
use logpipe_core::delivery::{self, AckProducer, SendError};
use logpipe_core::kafka;
use logpipe_core::shutdown::CancellationToken;
use logpipe_schemas::raw::{self, SourceMeta};
use logpipe_schemas::{dead_letter, id};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::Producer as _;
use rdkafka::{Message, Offset};

use crate::formats::{self, LineContext};
use crate::selection::FormatSelector;

/// Records consumed but not acknowledged before consumption pauses.
const MAX_IN_FLIGHT: usize = 200_000;

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
    let mut out = Vec::with_capacity(4096);
    let (mut parsed, mut failed) = (0u64, 0u64);
    let mut last_store = Instant::now();
    tracing::info!(topics = %topics.join(","), group = %cfg.group_id, format = %cfg.format, rules = cfg.sources.len(), "parser consuming");

    while !shutdown.is_cancelled() {
        apply_acks(&acks_rx, &mut acks);
        if acks.in_flight() >= MAX_IN_FLIGHT {
            std::thread::sleep(Duration::from_millis(5));
            // Keep the group membership alive while paused.
            let _ = consumer
                .poll(Duration::ZERO)
                .map(|m| m.map(|m| seek_back(&consumer, &m)));
            continue;
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Err(e)) => tracing::warn!(error = %e, "consume error"),
            Some(Ok(msg)) => {
                let (slot, seq) = acks.register(msg.topic(), msg.partition(), msg.offset());
                let opaque = delivery::pack(slot, seq);
                let ok = handle(&msg, &formats, k, &producer, opaque, &mut out, &acks_rx, &mut acks);
                if ok {
                    parsed += 1
                } else {
                    failed += 1
                }
            }
        }
        if last_store.elapsed() >= Duration::from_millis(200) {
            kafka::store_acked(&consumer, &mut acks);
            metrics::counter!("logpipe_events_total", "stage" => "parse", "outcome" => "parsed").increment(parsed);
            metrics::counter!("logpipe_events_total", "stage" => "parse", "outcome" => "dead_letter").increment(failed);
            (parsed, failed) = (0, 0);
            last_store = Instant::now();
        }
    }

    tracing::info!("draining: flushing the producer and committing");
    if let Err(e) = producer.flush(Duration::from_secs(cfg.drain_timeout_secs)) {
        tracing::warn!(error = %e, "not everything was acknowledged before the drain deadline; it will be consumed again");
    }
    apply_acks(&acks_rx, &mut acks);
    kafka::store_acked(&consumer, &mut acks);
    kafka::final_commit(&consumer);
    tracing::info!("parser stopped");
    Ok(())
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

/// Parses one record and enqueues the document or the dead letter. Returns
/// whether it parsed.
#[allow(clippy::too_many_arguments)]
fn handle(
    msg: &BorrowedMessage<'_>,
    formats: &FormatSelector,
    k: &KafkaConfig,
    producer: &AckProducer,
    opaque: usize,
    out: &mut Vec<u8>,
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
            foreign_id = id::kafka_record_id(msg.topic(), msg.partition(), msg.offset());
            foreign_id.as_bytes()
        }
    };
    let format = formats.select(msg.topic(), ctx.host, ctx.path);
    let parsed = formats::parse(format, line, &ctx);
    let ok = parsed.is_ok();
    // A document carries no header: all the indexer needs is in the JSON,
    // the event time first of all, and librdkafka allocates each header
    // separately. A dead letter keeps the raw record's headers, so it can be
    // replayed.
    let (topic, payload, extra): (&str, &[u8], Vec<(&str, String)>) = match parsed {
        Ok(ev) => {
            out.clear();
            ev.write_json(out);
            (&k.parsed_topic, out.as_slice(), Vec::new())
        }
        Err(e) => {
            let mut extra = vec![
                (
                    dead_letter::HEADER_STAGE,
                    dead_letter::Stage::Parse.as_str().to_string(),
                ),
                (dead_letter::HEADER_REASON, e.to_string()),
                (
                    dead_letter::HEADER_ORIGIN,
                    dead_letter::origin(msg.topic(), msg.partition(), msg.offset()),
                ),
            ];
            // The dead letter's key is the document id, so the source it came
            // from (the raw key) goes in a header.
            if let Some(m) = &meta {
                extra.push((raw::HEADER_SOURCE, m.key()));
            }
            (&k.dead_letter_topic, line, extra)
        }
    };
    // The parsed topic's key is the document id; the dead letter keeps the id
    // too, so a replayed dead letter lands on the same document.
    loop {
        // A failed send consumes the headers, so they are built per attempt.
        let headers = (!ok).then(|| with_headers(msg, &extra));
        // Both keep the ingest time as their timestamp, for `event.ingested`
        // on a replay and for the indexer's end-to-end lag.
        match delivery::send(producer, topic, None, doc_id, payload, headers, Some(ingest_ms), opaque) {
            Ok(()) => return ok,
            Err(SendError::QueueFull) => {
                // Backpressure from Kafka: apply acks while we wait for room.
                std::thread::sleep(Duration::from_millis(1));
                apply_acks(acks_rx, acks);
            }
            Err(SendError::Fatal(e)) => {
                tracing::error!(error = %e, "cannot enqueue to Kafka; retrying in 1s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
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

fn apply_acks(rx: &crossbeam_channel::Receiver<delivery::Ack>, acks: &mut PartitionAcks) {
    while let Ok(a) = rx.try_recv() {
        if a.ok {
            acks.ack(a.slot, a.seq);
        } else {
            // With no message timeout, a failed delivery is a permanent error
            // (e.g. a record over the broker's size limit). Not acking it holds
            // the partition's offset, so it is retried after a restart.
            tracing::error!("a parsed record was not accepted by Kafka; its offset is held");
        }
    }
}
