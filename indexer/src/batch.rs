//! A batch of documents waiting for one `_bulk` request, closed by count,
//! bytes or age, whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use logpipe_core::ack::Seq;
use rdkafka::message::OwnedHeaders;

/// One document and where its acknowledgement goes.
#[derive(Debug, Clone)]
pub struct Doc {
    pub slot: usize,
    pub seq: Seq,
    /// Shared between the documents of one day: no allocation per document.
    pub index: Arc<str>,
    /// The document id, valid UTF-8.
    pub id: Bytes,
    pub source: Bytes,
    /// The consumed record's headers, for a dead letter, packed by
    /// [`pack_headers`]: librdkafka's own copy costs an allocation per header.
    pub headers: Option<Bytes>,
    /// Why the record cannot be indexed as it is (a batch record that does
    /// not read): it is dead-lettered whole, with this reason.
    pub invalid: Option<Arc<str>>,
    /// Where the record was consumed from, for a dead letter's origin.
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp: the parser sets it to when the shipper read
    /// the line, for the end-to-end lag. 0 when unknown.
    pub ingest_ms: i64,
}

impl Doc {
    /// The id for logs.
    pub fn id_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.id)
    }
}

/// Appends headers as `key length (u32 LE), key, value length (i32 LE,
/// -1 for no value), value` each.
pub fn pack_headers<'a>(out: &mut Vec<u8>, headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) {
    for (key, value) in headers {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        }
    }
}

/// The headers [`pack_headers`] wrote, in order.
pub fn unpack_headers(mut packed: &[u8]) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    std::iter::from_fn(move || {
        let (len, rest) = packed.split_first_chunk::<4>()?;
        let (key, rest) = rest.split_at_checked(u32::from_le_bytes(*len) as usize)?;
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let len = i32::from_le_bytes(*len);
        let (value, rest) = if len < 0 {
            (None, rest)
        } else {
            let (v, rest) = rest.split_at_checked(len as usize)?;
            (Some(v), rest)
        };
        packed = rest;
        // Keys were `&str` when packed.
        Some((std::str::from_utf8(key).unwrap_or_default(), value))
    })
}

impl Doc {
    /// The record's headers as librdkafka wants them for producing.
    pub fn owned_headers(&self) -> OwnedHeaders {
        let mut h = OwnedHeaders::new();
        for (key, value) in unpack_headers(self.headers.as_deref().unwrap_or_default()) {
            h = h.insert(rdkafka::message::Header { key, value });
        }
        h
    }

    /// The value of header `key`, if present with a value.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        unpack_headers(self.headers.as_deref()?).find(|(k, _)| *k == key)?.1
    }
}

/// Size of the blocks consumed records are copied into.
const BLOCK: usize = 1 << 20;

/// Copies of consumed records (ids, sources) carved out of shared blocks:
/// one allocation per block instead of two per document. A block is freed
/// when the last document cut from it is dropped, so what is held stays
/// proportional to the documents in flight.
#[derive(Debug, Default)]
pub struct Arena {
    block: BytesMut,
}

impl Arena {
    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        if self.block.capacity() - self.block.len() < data.len() {
            self.block = BytesMut::with_capacity(BLOCK.max(data.len()));
        }
        self.block.extend_from_slice(data);
        self.block.split().freeze()
    }
}

#[derive(Debug)]
pub struct Batch {
    pub docs: Vec<Doc>,
    bytes: usize,
    opened: Option<Instant>,
    max_docs: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Batch {
    pub fn new(max_docs: usize, max_bytes: usize, max_age: Duration) -> Self {
        Batch {
            docs: Vec::new(),
            bytes: 0,
            opened: None,
            max_docs,
            max_bytes,
            max_age,
        }
    }

    pub fn push(&mut self, doc: Doc) {
        self.opened.get_or_insert_with(Instant::now);
        self.bytes += doc.source.len() + doc.index.len() + doc.id.len() + 48;
        self.docs.push(doc);
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Closed by count or size: send now.
    pub fn is_full(&self) -> bool {
        self.docs.len() >= self.max_docs || self.bytes >= self.max_bytes
    }

    /// When the batch must be sent even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.max_age)
    }

    pub fn take(&mut self) -> Vec<Doc> {
        self.bytes = 0;
        self.opened = None;
        // The next batch is likely as large as this one: growing a vector
        // of thousands of documents by doubling copied it (and faulted in
        // fresh pages) several times per batch.
        let next = Vec::with_capacity(self.docs.len().min(self.max_docs));
        std::mem::replace(&mut self.docs, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Doc {
        Doc {
            slot: 0,
            seq: 0,
            index: "i".into(),
            id: Bytes::from_static(b"x"),
            source: Bytes::from(vec![b'a'; n]),
            headers: None,
            invalid: None,
            topic: "t".into(),
            partition: 0,
            offset: 0,
            ingest_ms: 0,
        }
    }

    #[test]
    fn closes_by_count_bytes_and_age() {
        let mut b = Batch::new(2, 1 << 20, Duration::from_secs(1));
        assert!(b.deadline().is_none());
        b.push(doc(1));
        assert!(!b.is_full());
        assert!(b.deadline().is_some());
        b.push(doc(1));
        assert!(b.is_full());
        assert_eq!(b.take().len(), 2);
        assert!(b.is_empty() && b.deadline().is_none());

        let mut b = Batch::new(100, 1000, Duration::from_secs(1));
        b.push(doc(1000));
        assert!(b.is_full(), "closed by bytes");
    }

    #[test]
    fn headers_pack_and_unpack_in_order() {
        let mut packed = Vec::new();
        let given: [(&str, Option<&[u8]>); 4] = [
            ("a", Some(b"1")),
            ("empty", Some(b"")),
            ("none", None),
            ("a", Some(b"2")),
        ];
        pack_headers(&mut packed, given.iter().copied());
        assert_eq!(unpack_headers(&packed).collect::<Vec<_>>(), given);
        let mut d = doc(1);
        d.headers = Some(Bytes::from(packed));
        assert_eq!(d.header("a"), Some(&b"1"[..]));
        assert_eq!(d.header("none"), None);
        assert_eq!(d.header("missing"), None);
        use rdkafka::message::Headers;
        let owned = d.owned_headers();
        assert_eq!(owned.count(), 4);
        assert_eq!(owned.get(2).key, "none");
        assert_eq!(owned.get(3).value, Some(&b"2"[..]));
        assert_eq!(unpack_headers(&[1, 0]).count(), 0, "a torn buffer ends the list");
    }

    #[test]
    fn arena_copies_are_independent_and_survive_new_blocks() {
        let mut a = Arena::default();
        let x = a.copy(b"first");
        let big = a.copy(&vec![b'b'; BLOCK + 10]);
        let y = a.copy(b"second");
        let empty = a.copy(b"");
        assert_eq!(&x[..], b"first");
        assert_eq!(big.len(), BLOCK + 10);
        assert_eq!(&y[..], b"second");
        assert!(empty.is_empty());
        drop(a);
        assert_eq!(&x[..], b"first", "a copy outlives the arena");
    }
}
