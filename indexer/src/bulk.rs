//! The `_bulk` wire format: building the request body and reading the
//! per-item results. Plain functions, no I/O.
//!
//! Documents are written with `create`, not `index`: the id is derived from
//! the line's source, so a document that already exists *is* this line,
//! delivered again (after a crash, a rebalance, a retry). `create` answers
//! 409 for it and leaves the stored document alone, which we count as
//! success; `index` would rewrite it, bump its version and cost a full
//! re-index for nothing. `create` is also the only op type a data stream
//! accepts, so one code path serves both index modes.

use std::io::Write;

use bytes::Bytes;
use serde::Deserialize;

use crate::batch::Doc;

/// Why a document cannot be sent at all (it would break the request framing
/// or can never be accepted): it is dead-lettered without a request.
pub fn unsendable(source: &[u8]) -> Option<&'static str> {
    let trimmed = source.trim_ascii();
    if trimmed.is_empty() {
        return Some("empty document");
    }
    // An action line followed by anything but one JSON object makes
    // Elasticsearch reject the whole request, which would block the batch.
    if trimmed[0] != b'{' || trimmed[trimmed.len() - 1] != b'}' {
        return Some("not a JSON object");
    }
    None
}

/// Appends one `create` action and its source, each ending in `\n`, so the
/// body ends with the newline Elasticsearch requires.
pub fn push_doc(out: &mut Vec<u8>, index: &str, id: &[u8], source: &[u8]) {
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    logpipe_schemas::event::push_json_str(out, index.as_bytes());
    out.extend_from_slice(b",\"_id\":");
    logpipe_schemas::event::push_json_str(out, id);
    out.extend_from_slice(b"}}\n");
    let start = out.len();
    out.extend_from_slice(source);
    // A raw newline can only be whitespace between JSON tokens (inside a
    // string it must be escaped), so a pretty-printed document stays the
    // same document on one line. Most documents have none: memchr finds
    // that faster than a byte loop.
    for i in memchr::memchr2_iter(b'\n', b'\r', source) {
        out[start + i] = b' ';
    }
    out.push(b'\n');
}

/// Bytes [`push_doc`] writes for a document, or a little more.
fn doc_len(d: &Doc) -> usize {
    // The fixed part of the action line is 33 bytes; escaping may add a few.
    d.source.len() + d.index.len() + d.id.len() + 48
}

/// Plain body bytes collected before they are handed to the compressor:
/// large enough that zlib's per-call cost vanishes, small enough to stay in cache.
const CHUNK: usize = 64 << 10;

/// The whole request body for `docs`, gzip-compressed at `level` (1-9) or
/// plain when `level` is 0. `buf` is reused between requests.
///
/// The plain body is never held whole when compressing: it goes to the
/// compressor in [`CHUNK`]s, and the output is allocated once at about its
/// final size, because growing multi-megabyte buffers (copies, page faults)
/// cost as much as the compression itself.
pub fn body(docs: &[Doc], level: u32, buf: &mut Vec<u8>) -> Bytes {
    let plain: usize = docs.iter().map(doc_len).sum();
    if level == 0 {
        let mut out = Vec::with_capacity(plain);
        for d in docs {
            push_doc(&mut out, &d.index, &d.id, &d.source);
        }
        return Bytes::from(out);
    }
    // Log documents deflate to well under a third even at level 1.
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain / 3 + 64),
        flate2::Compression::new(level.min(9)),
    );
    buf.clear();
    for d in docs {
        push_doc(buf, &d.index, &d.id, &d.source);
        if buf.len() >= CHUNK {
            gz.write_all(buf).expect("writing to a Vec");
            buf.clear();
        }
    }
    gz.write_all(buf).expect("writing to a Vec");
    buf.clear();
    Bytes::from(gz.finish().expect("writing to a Vec"))
}

/// What happened to one document of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Indexed,
    /// Already stored by an earlier delivery (409 on `create`): success.
    Duplicate,
    /// Try again later (429, 503).
    Retry(String),
    /// Elasticsearch will never accept it as it is: dead-letter it with the reason.
    Rejected(String),
}

/// The `filter_path` of every `_bulk` request: the answer keeps only what
/// [`outcomes`] reads (Filebeat asks for the same). A full answer repeats
/// each document's index, id, version, shard counts and sequence numbers,
/// ~190 bytes per document that Elasticsearch would build and send and the
/// indexer would receive, copy and parse for nothing; filtered, a created
/// document is `{"create":{"status":201}}`.
pub const FILTER_PATH: &str = "errors,items.*.status,items.*.error";

// Typed views of the response, not a `serde_json::Value` tree: only
// `items[].<op>.status` and the error are read, the rest (`_index`,
// `_shards`, ...) is skipped without allocating.
#[derive(Deserialize)]
struct Response {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: Option<ItemResult>,
}

#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    /// Present only on failures, so the success path allocates nothing.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads the per-item results of a `_bulk` response body, in request order.
pub fn outcomes(response: &[u8], expected: usize) -> Result<Vec<Outcome>, String> {
    let resp: Response = serde_json::from_slice(response).map_err(|e| format!("unreadable _bulk response: {e}"))?;
    if resp.items.len() != expected {
        return Err(format!(
            "the _bulk response has {} items for {expected} documents",
            resp.items.len()
        ));
    }
    Ok(resp
        .items
        .into_iter()
        .map(|item| {
            let (status, error) = match item.create {
                Some(r) => (r.status, r.error),
                None => (0, None),
            };
            let reason = || match &error {
                Some(e) => match (e["type"].as_str(), e["reason"].as_str()) {
                    (Some(t), Some(r)) => format!("{status} {t}: {r}"),
                    _ => format!("{status} {e}"),
                },
                None => format!("{status} (no error given)"),
            };
            match status {
                200..=299 => Outcome::Indexed,
                409 => Outcome::Duplicate,
                // 429 and 503 are Elasticsearch saying "not now"; any other
                // status is about the document itself and retrying it would
                // block its partition forever. A missing status means we
                // cannot tell, so the document is not given up on.
                429 | 503 | 0 => Outcome::Retry(reason()),
                _ => Outcome::Rejected(reason()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn doc(index: &str, id: &str, source: &'static [u8]) -> Doc {
        Doc {
            slot: 0,
            seq: 0,
            index: index.into(),
            id: Bytes::copy_from_slice(id.as_bytes()),
            source: Bytes::from_static(source),
            headers: None,
            invalid: None,
            topic: "t".into(),
            partition: 0,
            offset: 0,
            ingest_ms: 0,
        }
    }

    #[test]
    fn body_has_action_then_source_and_ends_with_newline() {
        let mut buf = Vec::new();
        let docs = [
            doc("logpipe-2026.01.01", "abc", b"{\"message\":\"m\"}"),
            doc("logpipe-2026.01.01", "q\"x", b"{\n\"a\": 1\n}"),
        ];
        let body = body(&docs, 0, &mut buf);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
        assert_eq!(lines.len(), 4);
        let action: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            action,
            json!({"create": {"_index": "logpipe-2026.01.01", "_id": "abc"}})
        );
        assert_eq!(lines[1], "{\"message\":\"m\"}");
        let action: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(action["create"]["_id"], "q\"x");
        let source: Value = serde_json::from_str(lines[3]).unwrap();
        assert_eq!(source, json!({"a": 1}));
    }

    #[test]
    fn gzip_body_inflates_to_the_plain_body() {
        use std::io::Read;
        let docs = [doc("i", "1", b"{\"a\":1}"), doc("i", "2", b"{\"a\":2}")];
        let plain = body(&docs, 0, &mut Vec::new());
        let gz = body(&docs, 1, &mut Vec::new());
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);

        // Over several chunks, with a reused buffer holding leftovers.
        let big: &'static [u8] = Box::leak(
            format!("{{\"m\":\"{}\"}}", "x\\ny".repeat(4000))
                .into_bytes()
                .into_boxed_slice(),
        );
        let docs: Vec<Doc> = (0..50).map(|i| doc("i", &i.to_string(), big)).collect();
        let plain = body(&docs, 0, &mut Vec::new());
        assert!(plain.len() > 3 * CHUNK);
        let mut buf = b"left over".to_vec();
        for level in [1, 6, 9] {
            let gz = body(&docs, level, &mut buf);
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
            assert!(out == plain, "level {level}");
        }
    }

    #[test]
    fn raw_newlines_in_a_source_become_spaces() {
        let mut out = Vec::new();
        push_doc(&mut out, "i", b"1", b"{\r\n\"a\":\n1}");
        assert!(out.ends_with(b"\n{  \"a\": 1}\n"), "{}", String::from_utf8_lossy(&out));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 2);
    }

    #[test]
    fn unsendable_documents_are_caught_before_the_request() {
        assert_eq!(unsendable(b""), Some("empty document"));
        assert_eq!(unsendable(b" \n"), Some("empty document"));
        assert_eq!(unsendable(b"[1]"), Some("not a JSON object"));
        assert_eq!(unsendable(b"{\"a\":1} "), None);
    }

    #[test]
    fn classifies_items() {
        let resp = json!({"took": 3, "errors": true, "items": [
            {"create": {"_index": "i", "_id": "a", "status": 201, "_shards": {"total": 2}}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [x] \"q\""}}},
            {"create": {"status": 503, "error": "unavailable"}},
            {"index": {"status": 200}}
        ]});
        let bytes = serde_json::to_vec(&resp).unwrap();
        let o = outcomes(&bytes, 6).unwrap();
        assert_eq!(o[0], Outcome::Indexed);
        assert_eq!(o[1], Outcome::Duplicate);
        assert!(matches!(&o[2], Outcome::Retry(r) if r.contains("429")));
        assert_eq!(
            o[3],
            Outcome::Rejected("400 mapper_parsing_exception: failed to parse field [x] \"q\"".into())
        );
        assert!(matches!(&o[4], Outcome::Retry(r) if r.contains("unavailable")));
        assert_eq!(o[5], Outcome::Indexed);
        assert!(outcomes(&bytes, 5).is_err());
        assert!(outcomes(b"<html>", 1).is_err());
    }
}
