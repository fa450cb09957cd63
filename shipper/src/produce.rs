//! Handing lines to Kafka. Delivery plumbing (acks routed back per file) is
//! shared with the other stages in `logpipe_core::delivery`; what is specific
//! to the shipper is the raw-topic headers of a line.

use logpipe_schemas::raw;
use rdkafka::message::{Header, OwnedHeaders};

pub use logpipe_core::delivery::{ack_channel, pack, send as send_line, Ack, AckProducer as Producer, SendError};

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
