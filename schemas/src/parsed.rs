//! Parsed-topic records: several documents in one Kafka record.
//!
//! The parser writes one record per batch of documents, not per document:
//! librdkafka's cost per record (building, compressing, delivery reports on
//! the parser's side; fetching and handing over on the indexer's) was most of
//! both stages' CPU, far more than parsing. A batch record has:
//!
//! * the header [`HEADER_DOCS`], the number of documents, in decimal;
//! * no key, and as timestamp the earliest ingest time of its documents;
//! * as value, each document framed as `<id> <length>\n<document>\n`: the
//!   document id (no spaces), the document's length in bytes in decimal
//!   (written with leading zeros), a newline, the ECS JSON document
//!   ([`crate::event`]), a newline. The length, not the newline, ends a
//!   document: a document may contain raw newlines (JSON whitespace).
//!
//! A record without the header is one document with its id as key: what
//! older parsers wrote, and what any other producer may write. The indexer
//! reads both.

/// Header of a batch record: how many documents it holds.
pub const HEADER_DOCS: &str = "logpipe.docs";

/// Digits of the length field as the parser writes it: documents up to ~10 GB.
const LEN_DIGITS: usize = 10;

/// Appends one framed document to `out`: the id, then whatever `write`
/// appends as the document. Returns the document's length.
pub fn push_doc(out: &mut Vec<u8>, id: &[u8], write: impl FnOnce(&mut Vec<u8>)) -> usize {
    debug_assert!(!id.contains(&b' ') && !id.contains(&b'\n'));
    out.extend_from_slice(id);
    out.push(b' ');
    let len_at = out.len();
    out.extend_from_slice(&[b'0'; LEN_DIGITS]);
    out.push(b'\n');
    let start = out.len();
    write(out);
    let len = out.len() - start;
    // Filled in afterwards, so the document is written in place once.
    let mut v = len;
    for d in out[len_at..len_at + LEN_DIGITS].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.push(b'\n');
    len
}

/// Why a batch record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBatch(pub String);

impl std::fmt::Display for BadBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed parsed batch: {}", self.0)
    }
}

/// Where one document of a batch record's value is: its id's bytes and its own.
pub type Framed = (std::ops::Range<usize>, std::ops::Range<usize>);

/// The documents of a batch record's value, as (id, document) byte ranges of
/// `value`, checked against the count in its [`HEADER_DOCS`] header. All or
/// nothing: a record that does not read whole is an error.
pub fn split(value: &[u8], count: &[u8]) -> Result<Vec<Framed>, BadBatch> {
    let count: usize = std::str::from_utf8(count)
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            BadBatch(format!(
                "{HEADER_DOCS} header {:?} is not a count",
                String::from_utf8_lossy(count)
            ))
        })?;
    let mut out = Vec::with_capacity(count.min(value.len() / 4 + 1));
    let mut at = 0;
    while at < value.len() {
        let bad = |what: &str| BadBatch(format!("{what} at byte {at} of {}", value.len()));
        let line_end = memchr::memchr(b'\n', &value[at..]).ok_or_else(|| bad("no document header"))? + at;
        let header = &value[at..line_end];
        let space = memchr::memrchr(b' ', header).ok_or_else(|| bad("no length in the document header"))?;
        let len: usize = std::str::from_utf8(&header[space + 1..])
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| bad("a length that is not a number"))?;
        if space == 0 {
            return Err(bad("an empty id"));
        }
        let start = line_end + 1;
        let end = start
            .checked_add(len)
            .filter(|e| *e < value.len())
            .ok_or_else(|| bad("a document longer than the record"))?;
        if value[end] != b'\n' {
            return Err(bad("no newline after a document"));
        }
        out.push((at..at + space, start..end));
        at = end + 1;
    }
    if out.len() != count {
        return Err(BadBatch(format!(
            "{} documents, but the header says {count}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Docs<'a> = Vec<(&'a [u8], &'a [u8])>;

    fn docs<'a>(value: &'a [u8], count: &str) -> Result<Docs<'a>, BadBatch> {
        Ok(split(value, count.as_bytes())?
            .into_iter()
            .map(|(i, d)| (&value[i], &value[d]))
            .collect())
    }

    #[test]
    fn round_trip_including_raw_newlines_in_a_document() {
        let mut v = Vec::new();
        assert_eq!(push_doc(&mut v, b"abc", |o| o.extend_from_slice(b"{\"a\":1}")), 7);
        push_doc(&mut v, b"def", |o| o.extend_from_slice(b"{\"b\":\n2}"));
        push_doc(&mut v, b"g", |o| o.extend_from_slice(b"{}"));
        assert!(v.starts_with(b"abc 0000000007\n{\"a\":1}\ndef 0000000008\n"));
        assert_eq!(
            docs(&v, "3").unwrap(),
            vec![
                (&b"abc"[..], &b"{\"a\":1}"[..]),
                (&b"def"[..], &b"{\"b\":\n2}"[..]),
                (&b"g"[..], &b"{}"[..])
            ]
        );
    }

    #[test]
    fn lengths_without_leading_zeros_read_too() {
        assert_eq!(docs(b"x 2\n{}\ny 3\n{ }\n", "2").unwrap().len(), 2);
    }

    #[test]
    fn malformed_batches_are_errors_not_partial_reads() {
        let mut v = Vec::new();
        push_doc(&mut v, b"abc", |o| o.extend_from_slice(b"{\"a\":1}"));
        for (value, count) in [
            (&v[..], "2"),
            (&v[..], "x"),
            (&v[..v.len() - 1], "1"),
            (&v[..v.len() - 3], "1"),
            (&b"abc 99\n{}\n"[..], "1"),
            (&b"abc\n{}\n"[..], "1"),
            (&b" 2\n{}\n"[..], "1"),
            (&b"abc 2\n{}x"[..], "1"),
            (&b"abc -2\n{}\n"[..], "1"),
            (&b"abc 2"[..], "1"),
        ] {
            assert!(
                docs(value, count).is_err(),
                "{:?} / {count}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(docs(b"", "0").unwrap(), vec![]);
    }
}
