//! Deterministic document ids.
//!
//! The id of a line is a hash of where the line came from, never of when it was
//! sent, so every re-delivery of the same line (a shipper restart, a parser
//! rebalance, an indexer retry) lands on the same Elasticsearch document.

use xxhash_rust::xxh3::xxh3_128;

/// Id of a line shipped by logpipe: hash of (host, file fingerprint, offset).
pub fn line_id(host: &str, fingerprint: u64, offset: u64) -> String {
    let mut buf = Vec::with_capacity(host.len() + 17);
    buf.extend_from_slice(host.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&fingerprint.to_be_bytes());
    buf.extend_from_slice(&offset.to_be_bytes());
    hex128(xxh3_128(&buf))
}

/// Id of a record that came from another producer (rsyslog's omkafka, kcat):
/// its Kafka coordinates are the only stable identity it has.
pub fn kafka_record_id(topic: &str, partition: i32, offset: i64) -> String {
    let mut buf = Vec::with_capacity(topic.len() + 13);
    buf.push(b'k');
    buf.extend_from_slice(topic.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&partition.to_be_bytes());
    buf.extend_from_slice(&offset.to_be_bytes());
    hex128(xxh3_128(&buf))
}

/// 32 lowercase hex digits: safe in URLs and as an Elasticsearch `_id`.
fn hex128(v: u128) -> String {
    format!("{v:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_source_same_id() {
        assert_eq!(line_id("h", 1, 2), line_id("h", 1, 2));
        assert_ne!(line_id("h", 1, 2), line_id("h", 1, 3));
        assert_ne!(line_id("h", 1, 2), line_id("g", 1, 2));
        assert_ne!(line_id("h", 1, 2), line_id("h", 2, 2));
        assert_eq!(line_id("h", 1, 2).len(), 32);
    }

    #[test]
    fn kafka_ids_differ_from_line_ids() {
        assert_ne!(kafka_record_id("t", 0, 5), kafka_record_id("t", 1, 5));
        assert_ne!(kafka_record_id("t", 0, 5), kafka_record_id("t", 0, 6));
    }
}
