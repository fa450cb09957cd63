//! Handing lines to Kafka. Delivery plumbing (acks routed back per file) is
//! shared with the other stages in `logpipe_core::delivery`; what is specific
//! to the shipper is a raw record's key, partition and header.

use logpipe_schemas::raw;
use rdkafka::message::{Header, OwnedHeaders};

pub use logpipe_core::delivery::{ack_channel, pack, send as send_line, Ack, AckProducer as Producer, SendError};

/// The partition librdkafka's default partitioner (`consistent_random`)
/// gives a non-empty `key`: CRC-32 of the key modulo the partition count.
/// A stage that sends many records with one key computes it once and names
/// the partition itself, sparing librdkafka a CRC per record.
pub fn default_partition(key: &[u8], partitions: i32) -> i32 {
    let mut crc = flate2::Crc::new();
    crc.update(key);
    (crc.sum() % partitions as u32) as i32
}

/// The partition of every record of one source (a file, or a syslog
/// stream): [`default_partition`] of its `raw::partition_key`, so that the
/// source's records stay in order.
pub fn source_partition(host: &str, fingerprint: u64, partitions: i32) -> i32 {
    default_partition(raw::partition_key(host, fingerprint).as_bytes(), partitions)
}

/// The raw record key of one line: its source's prefix (see
/// `raw::source_prefix`) followed by the line's offset (a byte offset, or a
/// syslog stream's sequence number). Kept per source so that a line's key
/// costs a few digits, not an allocation.
pub struct LineKey {
    buf: Vec<u8>,
    prefix: usize,
}

impl LineKey {
    pub fn new(host: &str, fingerprint: u64, path: &str) -> Self {
        let buf = raw::source_prefix(host, fingerprint, path).into_bytes();
        LineKey { prefix: buf.len(), buf }
    }

    /// The key of the line at `offset`.
    pub fn at(&mut self, offset: u64) -> &[u8] {
        self.buf.truncate(self.prefix);
        self.buf.extend_from_slice(Digits::default().format(offset));
        &self.buf
    }
}

/// `logpipe.truncated` with the full length, on a line cut at its maximum;
/// no headers at all on any other line.
pub fn line_headers(truncated: Option<u64>) -> Option<OwnedHeaders> {
    let total = truncated?;
    Some(OwnedHeaders::new_with_capacity(1).insert(Header {
        key: raw::HEADER_TRUNCATED,
        value: Some(Digits::default().format(total)),
    }))
}

/// Decimal digits of a number, on the stack: every line needs one, and a
/// `String` would be an allocation per line for nothing.
#[derive(Default)]
struct Digits([u8; 20]);

impl Digits {
    fn format(&mut self, mut v: u64) -> &[u8] {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                return &self.0[i..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partition computed here is the one librdkafka's own partitioner
    /// picks, asked of librdkafka's mock cluster for many keys.
    #[test]
    fn default_partition_agrees_with_librdkafka() {
        use rdkafka::config::ClientConfig;
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
        use std::sync::{Arc, Mutex};

        type Seen = Arc<Mutex<Vec<(Vec<u8>, i32)>>>;
        struct Record(Seen);
        impl rdkafka::ClientContext for Record {}
        impl rdkafka::producer::ProducerContext for Record {
            type DeliveryOpaque = ();
            fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
                let m = r.as_ref().expect("delivered");
                use rdkafka::Message;
                self.0.lock().unwrap().push((m.key().unwrap().to_vec(), m.partition()));
            }
        }

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 7, 1).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let producer: ThreadedProducer<Record> = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create_with_context(Record(seen.clone()))
            .unwrap();
        let keys: Vec<String> = (0..200).map(|i| format!("host-{i}/{:016x}", i * 7919)).collect();
        for k in &keys {
            producer
                .send(BaseRecord::<[u8], [u8]>::to("t").key(k.as_bytes()).payload(b"x"))
                .unwrap();
        }
        producer.flush(std::time::Duration::from_secs(10)).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), keys.len());
        let mut used = std::collections::HashSet::new();
        for (key, partition) in seen.iter() {
            assert_eq!(
                default_partition(key, 7),
                *partition,
                "{}",
                String::from_utf8_lossy(key)
            );
            used.insert(*partition);
        }
        assert!(used.len() > 1, "keys should spread over partitions");
    }
    use rdkafka::message::Headers;

    #[test]
    fn keys_carry_the_source() {
        let mut key = LineKey::new("web-1", 7, "/var/log/a b.log");
        for offset in [0, 123_456, 9, u64::MAX] {
            let meta = raw::SourceMeta::parse(key.at(offset)).unwrap();
            assert_eq!(
                (meta.host, meta.path, meta.fingerprint, meta.offset),
                ("web-1", "/var/log/a b.log", 7, offset)
            );
        }
    }

    #[test]
    fn only_a_cut_line_has_a_header() {
        assert!(line_headers(None).is_none());
        let h = line_headers(Some(99_999)).unwrap();
        let got: Vec<(&str, Option<&[u8]>)> = h.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(got, vec![(raw::HEADER_TRUNCATED, Some(&b"99999"[..]))]);
    }

    #[test]
    fn digits() {
        let mut d = Digits::default();
        for v in [0, 7, 10, 1_795_341_600_000, u64::MAX] {
            assert_eq!(d.format(v), v.to_string().as_bytes());
        }
    }
}
