//! Deterministic document ids.
//!
//! The id of a line is a hash of where the line came from, never of when it was
//! sent, so every re-delivery of the same line (a shipper restart, a parser
//! rebalance, an indexer retry) lands on the same Elasticsearch document.

use xxhash_rust::xxh3::xxh3_128;

/// Id of a line shipped by logpipe: hash of (host, file fingerprint, offset).
pub fn line_id(host: &str, fingerprint: u64, offset: u64) -> String {
    String::from_utf8(line_id_hex(host, fingerprint, offset).to_vec()).expect("hex digits")
}

/// [`line_id`] as 32 ASCII hex digits on the stack: the parser computes one
/// per record, and a host name fits a stack buffer.
pub fn line_id_hex(host: &str, fingerprint: u64, offset: u64) -> [u8; 32] {
    let n = host.len() + 17;
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap
    };
    buf[..host.len()].copy_from_slice(host.as_bytes());
    buf[host.len()] = 0;
    buf[host.len() + 1..host.len() + 9].copy_from_slice(&fingerprint.to_be_bytes());
    buf[host.len() + 9..].copy_from_slice(&offset.to_be_bytes());
    let v = xxh3_128(buf);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (k, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (124 - 4 * k)) & 15) as usize];
    }
    out
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

    /// The stack version is the same id (also for hosts too long for its buffer).
    #[test]
    fn line_id_hex_matches_the_hash() {
        for host in ["", "web-1", &"h".repeat(239), &"h".repeat(240), &"x".repeat(1000)] {
            let mut buf = host.as_bytes().to_vec();
            buf.push(0);
            buf.extend_from_slice(&7u64.to_be_bytes());
            buf.extend_from_slice(&99u64.to_be_bytes());
            let want = format!("{:032x}", xxh3_128(&buf));
            assert_eq!(line_id(host, 7, 99), want);
            assert_eq!(&line_id_hex(host, 7, 99), want.as_bytes());
        }
    }

    #[test]
    fn kafka_ids_differ_from_line_ids() {
        assert_ne!(kafka_record_id("t", 0, 5), kafka_record_id("t", 1, 5));
        assert_ne!(kafka_record_id("t", 0, 5), kafka_record_id("t", 0, 6));
    }
}
