//! Handing lines to Kafka. Delivery plumbing (acks routed back per file) is
//! shared with the other stages in `logpipe_core::delivery`; what is specific
//! to the shipper is the raw-topic headers of a line.

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

/// Builds the raw-topic headers of a line: `logpipe.src` is the file's
/// prefix (see `raw::source_prefix`, prepared once per file by the caller)
/// followed by the line's offset; `logpipe.truncated` only on a cut line.
pub fn line_headers(prefix: &[u8], offset: u64, truncated: Option<u64>) -> OwnedHeaders {
    let mut num = Digits::default();
    let digits = num.format(offset);
    // The value is assembled on the stack for any usual path length; librdkafka
    // copies it into the header anyway.
    let mut stack = [0u8; 512];
    let mut heap = Vec::new();
    let n = prefix.len() + digits.len();
    let value: &mut [u8] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap
    };
    value[..prefix.len()].copy_from_slice(prefix);
    value[prefix.len()..].copy_from_slice(digits);
    let mut h = OwnedHeaders::new_with_capacity(1 + truncated.is_some() as usize);
    h = h.insert(Header {
        key: raw::HEADER_SOURCE,
        value: Some(&*value),
    });
    if let Some(total) = truncated {
        h = h.insert(Header {
            key: raw::HEADER_TRUNCATED,
            value: Some(num.format(total)),
        });
    }
    h
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
    fn headers_carry_the_source() {
        let prefix = raw::source_prefix("web-1", 7, "/var/log/a b.log");
        for (offset, truncated) in [(0, None), (123_456, Some(99_999)), (u64::MAX, None)] {
            let h = line_headers(prefix.as_bytes(), offset, truncated);
            let got: Vec<(&str, Option<&[u8]>)> = h.iter().map(|h| (h.key, h.value)).collect();
            let meta = raw::SourceMeta::from_headers(got.iter().copied()).unwrap();
            assert_eq!(
                (meta.host, meta.path, meta.fingerprint, meta.offset),
                ("web-1", "/var/log/a b.log", 7, offset)
            );
            let cut = got
                .iter()
                .find(|(k, _)| *k == raw::HEADER_TRUNCATED)
                .map(|(_, v)| v.unwrap());
            assert_eq!(cut, truncated.map(|t| t.to_string()).as_deref().map(str::as_bytes));
        }
        let long = raw::source_prefix("web-1", 7, &"/x".repeat(400));
        let h = line_headers(long.as_bytes(), 5, None);
        let got: Vec<(&str, Option<&[u8]>)> = h.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(raw::SourceMeta::from_headers(got.iter().copied()).unwrap().offset, 5);
    }

    #[test]
    fn digits() {
        let mut d = Digits::default();
        for v in [0, 7, 10, 1_795_341_600_000, u64::MAX] {
            assert_eq!(d.format(v), v.to_string().as_bytes());
        }
    }
}
