//! A batch of documents waiting for one `_bulk` request, closed by count,
//! bytes or age, whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logpipe_core::ack::Seq;
use rdkafka::message::OwnedHeaders;

/// One document and where its acknowledgement goes.
#[derive(Debug, Clone)]
pub struct Doc {
    pub slot: usize,
    pub seq: Seq,
    /// Shared between the documents of one day: no allocation per document.
    pub index: Arc<str>,
    pub id: String,
    pub source: bytes::Bytes,
    /// The consumed record's headers, for a dead letter.
    pub headers: Option<OwnedHeaders>,
    /// Where the record was consumed from, for a dead letter's origin.
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
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
        std::mem::take(&mut self.docs)
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
            id: "x".into(),
            source: bytes::Bytes::from(vec![b'a'; n]),
            headers: None,
            topic: "t".into(),
            partition: 0,
            offset: 0,
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
}
