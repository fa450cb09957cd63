//! The raw topic: one Kafka record per line read by the shipper.
//!
//! * value: the line's bytes exactly as read, without the line terminator and
//!   without any re-encoding (invalid UTF-8 and binary bytes pass through);
//! * key: [`record_key`], stable for one source file, so that the default
//!   partitioner keeps one file's lines on one partition and in order;
//! * headers: [`SourceMeta`], named by the `HEADER_*` constants.

/// Header names. They are namespaced so they never clash with other producers'.
pub const HEADER_VERSION: &str = "logpipe.v";
pub const HEADER_HOST: &str = "logpipe.host";
pub const HEADER_PATH: &str = "logpipe.path";
pub const HEADER_FINGERPRINT: &str = "logpipe.fingerprint";
pub const HEADER_OFFSET: &str = "logpipe.offset";
pub const HEADER_INGEST_MS: &str = "logpipe.ingest_ms";
/// Set when the shipper had to cut a line at `max_line_bytes`; the value is the
/// line's full length in bytes.
pub const HEADER_TRUNCATED: &str = "logpipe.truncated";

/// Where a line came from. Together with the host, `(fingerprint, offset)`
/// identifies a line for ever, whatever happens to the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    pub host: String,
    /// Source path at the time of reading (informational: files get renamed).
    pub path: String,
    /// Content fingerprint of the source file (see the shipper's `fingerprint`).
    pub fingerprint: u64,
    /// Byte offset of the first byte of the line in the source file.
    pub offset: u64,
    /// When the shipper read the line, in milliseconds since the Unix epoch.
    pub ingest_ms: i64,
}

/// The Kafka key of every line from one source file.
pub fn record_key(host: &str, fingerprint: u64) -> String {
    format!("{host}/{fingerprint:016x}")
}

/// Formats a fingerprint the way it appears in headers, ids and archive keys.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

impl SourceMeta {
    /// Header (name, value) pairs, in a fixed order. Offsets and times are
    /// decimal ASCII so kcat users can read them.
    pub fn headers(&self) -> [(&'static str, String); 6] {
        [
            (HEADER_VERSION, crate::WIRE_VERSION.to_string()),
            (HEADER_HOST, self.host.clone()),
            (HEADER_PATH, self.path.clone()),
            (HEADER_FINGERPRINT, fingerprint_hex(self.fingerprint)),
            (HEADER_OFFSET, self.offset.to_string()),
            (HEADER_INGEST_MS, self.ingest_ms.to_string()),
        ]
    }

    /// Rebuilds the metadata from record headers. Returns `None` when a record
    /// does not carry logpipe's headers (it came from rsyslog or kcat, say).
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Self> {
        let (mut host, mut path, mut fp, mut off, mut ingest) = (None, None, None, None, None);
        for (name, value) in headers {
            let text = std::str::from_utf8(value).ok();
            match name {
                HEADER_HOST => host = text.map(str::to_owned),
                HEADER_PATH => path = text.map(str::to_owned),
                HEADER_FINGERPRINT => fp = text.and_then(|t| u64::from_str_radix(t, 16).ok()),
                HEADER_OFFSET => off = text.and_then(|t| t.parse().ok()),
                HEADER_INGEST_MS => ingest = text.and_then(|t| t.parse().ok()),
                _ => {}
            }
        }
        Some(SourceMeta {
            host: host?,
            path: path.unwrap_or_default(),
            fingerprint: fp?,
            offset: off?,
            ingest_ms: ingest.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let meta = SourceMeta {
            host: "web-1".into(),
            path: "/var/log/app.log".into(),
            fingerprint: 0xdead_beef_0000_0001,
            offset: 1234,
            ingest_ms: 1_700_000_000_123,
        };
        let headers = meta.headers();
        let parsed = SourceMeta::from_headers(headers.iter().map(|(k, v)| (*k, v.as_bytes()))).unwrap();
        assert_eq!(parsed, meta);
    }

    #[test]
    fn foreign_records_have_no_meta() {
        assert_eq!(SourceMeta::from_headers([("other", &b"x"[..])]), None);
    }
}
