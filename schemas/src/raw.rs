//! The raw topic: one Kafka record per line read by the shipper.
//!
//! * value: the line's bytes exactly as read, without the line terminator and
//!   without any re-encoding (invalid UTF-8 and binary bytes pass through);
//! * key: [`SourceMeta`] as text (`<version> <host> <fingerprint> <path>
//!   <offset>`): where the line came from, which is also what its document id
//!   is made of;
//! * partition: chosen by the shipper, the same for every line of one file
//!   ([`partition_key`]), so one file's lines stay in order;
//! * timestamp: when the shipper read the line, which becomes `event.ingested`;
//! * headers: none, except [`HEADER_TRUNCATED`] on a line that was cut.
//!
//! The source travels in the key rather than in headers because librdkafka
//! allocates every header separately, on the producing and the consuming
//! side: one header per line cost the shipper a sixth of its CPU (1.24 ->
//! 1.02 µs per line without it), six headers (version 1) more than reading,
//! framing and compressing the lines together.

/// Set when the shipper had to cut a line at `max_line_bytes`; the value is the
/// line's full length in bytes.
pub const HEADER_TRUNCATED: &str = "logpipe.truncated";
/// On a dead letter of a raw record: the raw record's key (its source), since
/// the dead letter's own key is the document id.
pub const HEADER_SOURCE: &str = "logpipe.src";

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

/// What the partition of every line from one source file is computed from
/// (as librdkafka's default partitioner would: CRC-32 modulo the partition
/// count). It was the record key of wire versions 1 and 2, so files keep
/// their partitions across the change.
pub fn partition_key(host: &str, fingerprint: u64) -> String {
    format!("{host}/{fingerprint:016x}")
}

/// Formats a fingerprint the way it appears in headers, ids and archive keys.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// The part of a raw record's key that is the same for every line of one
/// file: `<wire version> <host> <fingerprint> <path> `. A line's key is this
/// prefix followed by the line's offset in decimal ASCII, so a producer
/// builds it once per file and appends digits per line, and kcat users can
/// read it (`-f '%k'`). The path may contain spaces (it sits between the
/// third space and the last one); host names cannot.
pub fn source_prefix(host: &str, fingerprint: u64, path: &str) -> String {
    format!("{} {host} {fingerprint:016x} {path} ", crate::WIRE_VERSION)
}

impl<'a> SourceMeta<'a> {
    /// The raw record key.
    pub fn key(&self) -> String {
        let mut v = source_prefix(self.host, self.fingerprint, self.path);
        v.push_str(&self.offset.to_string());
        v
    }

    /// Reads a raw record key. `None` for anything malformed or of another
    /// wire version: records from other producers (rsyslog, kcat) have no
    /// key or one of their own.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trip() {
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
            let key = meta.key();
            assert_eq!(SourceMeta::parse(key.as_bytes()), Some(meta), "{key}");
        }
    }

    #[test]
    fn readable_key() {
        let meta = SourceMeta {
            host: "web-1",
            path: "/var/log/app.log",
            fingerprint: 1,
            offset: 42,
        };
        assert_eq!(
            meta.key(),
            format!("{} web-1 0000000000000001 /var/log/app.log 42", crate::WIRE_VERSION)
        );
    }

    #[test]
    fn malformed_or_foreign_values_are_rejected() {
        for bad in [
            &b""[..],
            b"3",
            b"2 web-1 0000000000000001 /a 42",   // another wire version
            b"web-1/0000000000000001",           // a version 2 key
            b"3 web-1 00000001 /a 42",           // short fingerprint
            b"3 web-1 000000000000000g /a 42",   // not hex
            b"3  0000000000000001 /a 42",        // empty host
            b"3 web-1 0000000000000001 /a x42",  // offset not a number
            b"3 web-1 0000000000000001 /a",      // no offset
            b"3 web-1 0000000000000001 /a \xff", // not UTF-8
        ] {
            assert_eq!(SourceMeta::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
