//! Handing lines to Kafka. Delivery plumbing (acks routed back per file) is
//! shared with the other stages in `logpipe_core::delivery`; what is specific
//! to the shipper is the raw-topic headers of a line.

use rdkafka::message::{Header, OwnedHeaders};

pub use logpipe_core::delivery::{ack_channel, pack, send as send_line, Ack, AckProducer as Producer, SendError};

/// Builds the raw-topic headers of a line. The constant ones are prepared once
/// per file by the caller; offset and ingest time change per line.
pub fn line_headers(
    fixed: &[(&'static str, String)],
    offset: u64,
    ingest_ms: i64,
    truncated: Option<u64>,
) -> OwnedHeaders {
    let mut h = OwnedHeaders::new_with_capacity(fixed.len() + 3);
    for (k, v) in fixed {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let mut num = Digits::default();
    h = h.insert(Header {
        key: logpipe_schemas::raw::HEADER_OFFSET,
        value: Some(num.format(offset)),
    });
    h = h.insert(Header {
        key: logpipe_schemas::raw::HEADER_INGEST_MS,
        value: Some(num.format(ingest_ms as u64)),
    });
    if let Some(total) = truncated {
        h = h.insert(Header {
            key: logpipe_schemas::raw::HEADER_TRUNCATED,
            value: Some(num.format(total)),
        });
    }
    h
}

/// Decimal digits of a number, on the stack: two headers per line need one,
/// and a `String` each would be two allocations per line for nothing.
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

    #[test]
    fn digits() {
        let mut d = Digits::default();
        for v in [0, 7, 10, 1_795_341_600_000, u64::MAX] {
            assert_eq!(d.format(v), v.to_string().as_bytes());
        }
    }
}
