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
    let mut num = itoa(offset);
    h = h.insert(Header {
        key: logpipe_schemas::raw::HEADER_OFFSET,
        value: Some(num.as_str()),
    });
    num = itoa(ingest_ms as u64);
    h = h.insert(Header {
        key: logpipe_schemas::raw::HEADER_INGEST_MS,
        value: Some(num.as_str()),
    });
    if let Some(total) = truncated {
        num = itoa(total);
        h = h.insert(Header {
            key: logpipe_schemas::raw::HEADER_TRUNCATED,
            value: Some(num.as_str()),
        });
    }
    h
}

fn itoa(v: u64) -> String {
    v.to_string()
}
