//! The raw topic: one Kafka record per line read by the shipper.
//!
//! * value: the line's bytes exactly as read, without the line terminator and
//!   without any re-encoding (invalid UTF-8 and binary bytes pass through);
//! * key: [`record_key`], stable for one source file, so that the default
//!   partitioner keeps one file's lines on one partition and in order;
//! * timestamp: when the shipper read the line (librdkafka stamps it at
//!   enqueue time), which becomes `event.ingested`;
//! * headers: [`HEADER_SOURCE`], whose value is [`SourceMeta`] as text, and
//!   [`HEADER_TRUNCATED`] on a line that was cut.
//!
//! Where the line came from travels in one header rather than one per field
//! because librdkafka allocates every header separately, on the producing
//! and the consuming side: at 500,000 lines/s, six headers per line cost the
//! shipper more CPU than reading, framing and compressing the lines, and most
//! of its memory.

/// Header names. They are namespaced so they never clash with other producers'.
pub const HEADER_SOURCE: &str = "logpipe.src";
/// Set when the shipper had to cut a line at `max_line_bytes`; the value is the
/// line's full length in bytes.
pub const HEADER_TRUNCATED: &str = "logpipe.truncated";

/// Where a line came from. Together with the host, `(fingerprint, offset)`
/// identifies a line for ever, whatever happens to the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMeta<'a> {
    pub host: &'a str,
    /// Source path at the time of reading (informational: files get renamed).
    pub path: &'a str,
    /// Content fingerprint of the source file (see the shipper's `fingerprint`).
    pub fingerprint: u64,
    /// Byte offset of the first byte of the line in the source file.
    pub offset: u64,
}

/// The Kafka key of every line from one source file.
pub fn record_key(host: &str, fingerprint: u64) -> String {
    format!("{host}/{fingerprint:016x}")
}

/// Formats a fingerprint the way it appears in headers, ids and archive keys.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// The part of a [`HEADER_SOURCE`] value that is the same for every line of
/// one file: `<wire version> <host> <fingerprint> <path> `. A line's value is
/// this prefix followed by the line's offset in decimal ASCII, so a producer
/// builds it once per file and appends digits per line, and kcat users can
/// read it (`-f '%h'`). The path may contain spaces (it sits between the
/// third space and the last one); host names cannot.
pub fn source_prefix(host: &str, fingerprint: u64, path: &str) -> String {
    format!("{} {host} {fingerprint:016x} {path} ", crate::WIRE_VERSION)
}

impl<'a> SourceMeta<'a> {
    /// The [`HEADER_SOURCE`] value.
    pub fn header_value(&self) -> String {
        let mut v = source_prefix(self.host, self.fingerprint, self.path);
        v.push_str(&self.offset.to_string());
        v
    }

    /// Reads a [`HEADER_SOURCE`] value. `None` for anything malformed or of
    /// another wire version.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        let rest = text.strip_prefix(crate::WIRE_VERSION)?.strip_prefix(' ')?;
        let (host, rest) = rest.split_once(' ')?;
        let (fp, rest) = rest.split_once(' ')?;
        let (path, offset) = rest.rsplit_once(' ')?;
        if host.is_empty() || fp.len() != 16 {
            return None;
        }
        Some(SourceMeta {
            host,
            path,
            fingerprint: u64::from_str_radix(fp, 16).ok()?,
            offset: offset.parse().ok()?,
        })
    }

    /// Finds and reads the [`HEADER_SOURCE`] header among a record's headers.
    /// Returns `None` when a record does not carry it (it came from rsyslog or
    /// kcat, say); if it is repeated, the last one counts.
    pub fn from_headers(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Option<Self> {
        let mut found = None;
        for (name, value) in headers {
            if name == HEADER_SOURCE {
                found = value;
            }
        }
        Self::parse(found?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for path in [
            "/var/log/app.log",
            "/srv/my logs/a b.log",
            "syslog/tcp/127.0.0.1:5514",
            "",
        ] {
            let meta = SourceMeta {
                host: "web-1",
                path,
                fingerprint: 0xdead_beef_0000_0001,
                offset: 1234,
            };
            let value = meta.header_value();
            assert_eq!(SourceMeta::parse(value.as_bytes()), Some(meta), "{value}");
            let headers = [("other", Some(&b"x"[..])), (HEADER_SOURCE, Some(value.as_bytes()))];
            assert_eq!(SourceMeta::from_headers(headers), Some(meta));
        }
    }

    #[test]
    fn readable_value() {
        let meta = SourceMeta {
            host: "web-1",
            path: "/var/log/app.log",
            fingerprint: 1,
            offset: 42,
        };
        assert_eq!(
            meta.header_value(),
            format!("{} web-1 0000000000000001 /var/log/app.log 42", crate::WIRE_VERSION)
        );
    }

    #[test]
    fn malformed_or_foreign_values_are_rejected() {
        assert_eq!(SourceMeta::from_headers([("other", Some(&b"x"[..]))]), None);
        assert_eq!(SourceMeta::from_headers([(HEADER_SOURCE, None)]), None);
        for bad in [
            &b""[..],
            b"2",
            b"1 web-1 0000000000000001 /a 42",   // another wire version
            b"2 web-1 00000001 /a 42",           // short fingerprint
            b"2 web-1 000000000000000g /a 42",   // not hex
            b"2  0000000000000001 /a 42",        // empty host
            b"2 web-1 0000000000000001 /a x42",  // offset not a number
            b"2 web-1 0000000000000001 /a",      // no offset
            b"2 web-1 0000000000000001 /a \xff", // not UTF-8
        ] {
            assert_eq!(SourceMeta::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
