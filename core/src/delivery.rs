//! Producing to Kafka with acknowledgements routed back to their source.
//!
//! librdkafka calls [`AckContext::delivery`] on its own thread once a record
//! is acknowledged by the brokers (or has failed for good); the context turns
//! that into an [`Ack`] on a channel that the stage's loop drains. The opaque
//! value carried through librdkafka is a plain `usize` — (source slot,
//! sequence) packed — so nothing is allocated per record for it.

use crossbeam_channel::{Receiver, Sender};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::ack::Seq;

/// Bits of the opaque used for the sequence number; the rest hold the slot.
const SEQ_BITS: u32 = 44;
/// The largest slot an opaque holds.
pub const MAX_SLOT: usize = (1 << (usize::BITS - SEQ_BITS)) - 1;

pub fn pack(slot: usize, seq: Seq) -> usize {
    debug_assert!(slot <= MAX_SLOT);
    (slot << SEQ_BITS) | (seq as usize & ((1 << SEQ_BITS) - 1))
}

pub fn unpack(opaque: usize) -> (usize, Seq) {
    (opaque >> SEQ_BITS, (opaque & ((1 << SEQ_BITS) - 1)) as Seq)
}

/// The result of one delivery, routed back to the source it came from.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub slot: usize,
    pub seq: Seq,
    pub ok: bool,
}

pub struct AckContext {
    tx: Sender<Ack>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (slot, seq) = unpack(opaque);
        if let Err((e, _)) = result {
            tracing::warn!(error = %e, "delivery failed; the source will be re-sent from its last acknowledged position");
        }
        // The stage loop may be gone during shutdown; nothing to do then.
        let _ = self.tx.send(Ack {
            slot,
            seq,
            ok: result.is_ok(),
        });
    }
}

pub type AckProducer = ThreadedProducer<AckContext>;

pub fn ack_channel() -> (AckContext, Receiver<Ack>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (AckContext { tx }, rx)
}

/// Why a record was not enqueued.
#[derive(Debug)]
pub enum SendError {
    /// The local queue is full: offer the same record again later.
    QueueFull,
    Fatal(KafkaError),
}

/// Enqueues one record. Never blocks. Without `timestamp_ms`, librdkafka
/// stamps the record with the current time; without `partition`, its
/// partitioner picks one from the key (at random without a key).
#[allow(clippy::too_many_arguments)]
pub fn send(
    producer: &AckProducer,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    payload: &[u8],
    headers: Option<OwnedHeaders>,
    timestamp_ms: Option<i64>,
    opaque: usize,
) -> Result<(), SendError> {
    let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, opaque).payload(payload);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(h) = headers {
        record = record.headers(h);
    }
    if let Some(ms) = timestamp_ms {
        record = record.timestamp(ms);
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    match producer.send(record) {
        Ok(()) => Ok(()),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Err(SendError::QueueFull),
        Err((e, _)) => Err(SendError::Fatal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_round_trip() {
        for (slot, seq) in [(0, 0), (1, 5), (65_535, (1 << SEQ_BITS) - 1)] {
            assert_eq!(unpack(pack(slot, seq)), (slot, seq));
        }
    }
}
