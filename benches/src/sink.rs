//! A `_bulk` endpoint for the pipeline benches, in two modes:
//!
//! * [`Mode::Instant`]: answers every document at once as Elasticsearch would
//!   (201 created, or 409 for an id it has seen), so a bench measures
//!   logpipe's own capacity rather than the search engine's;
//! * [`Mode::Forward`]: passes every request to a real Elasticsearch (or the
//!   stand-in) and reads its per-item answers.
//!
//! Either way it sees each document as it is accepted, and records in a
//! [`Tally`] its marker (see [`crate::gen`]): which line it is and how long
//! after being written it was accepted.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use memchr::memmem::Finder;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

#[derive(Debug, Clone)]
pub enum Mode {
    Instant,
    /// Base URL of the Elasticsearch to forward to.
    Forward(String),
}

/// What the endpoint saw. Shared with the bench's sampler thread.
#[derive(Debug, Default)]
pub struct Tally {
    /// Documents newly stored (201).
    pub accepted: u64,
    /// Documents answered 409: already stored by an earlier delivery.
    pub duplicates: u64,
    /// Documents answered anything else (retried or dead-lettered by the indexer).
    pub other: u64,
    /// Accepted documents without a marker.
    pub unmarked: u64,
    /// End-to-end lag (ms) of documents accepted since the last [`Tally::take_lags`].
    pub lags_ms: Vec<u32>,
    /// Ids stored; a 201 for an id already here would be a duplicate document.
    pub ids: HashSet<u128, BuildHasherDefault<IdHasher>>,
    pub duplicate_ids: u64,
    /// Bit per line sequence number accepted, to find lines never indexed.
    seqs: Vec<u64>,
    pub seqs_seen_twice: u64,
}

impl Tally {
    fn record_created(&mut self, id: u128, mark: Option<(u64, i64)>, now_ms: i64) {
        self.accepted += 1;
        if !self.ids.insert(id) {
            self.duplicate_ids += 1;
        }
        match mark {
            Some((seq, written)) => {
                self.lags_ms.push((now_ms - written).clamp(0, u32::MAX as i64) as u32);
                let (word, bit) = ((seq / 64) as usize, seq % 64);
                if word >= self.seqs.len() {
                    self.seqs.resize(word + 1 + word / 2, 0);
                }
                if self.seqs[word] & (1 << bit) != 0 {
                    self.seqs_seen_twice += 1;
                }
                self.seqs[word] |= 1 << bit;
            }
            None => self.unmarked += 1,
        }
    }

    pub fn take_lags(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.lags_ms)
    }

    /// Sequence numbers below `n` never accepted.
    pub fn missing_below(&self, n: u64) -> Vec<u64> {
        (0..n)
            .filter(|s| {
                let w = (s / 64) as usize;
                self.seqs.get(w).is_none_or(|word| word & (1 << (s % 64)) == 0)
            })
            .collect()
    }
}

/// logpipe's ids are xxh3-128 hashes already: their low 64 bits are as good
/// a hash as any, and SipHash over 16 million of them was a visible part of
/// the sink's CPU, which the bench's machine shares with logpipe.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64;
    }
}

pub type SharedTally = Arc<Mutex<Tally>>;

/// Serves on `127.0.0.1:0` in the current tokio runtime; returns the address.
pub async fn serve(mode: Mode, tally: SharedTally) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (mode, tally, client) = (mode.clone(), tally.clone(), client.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| handle(req, mode.clone(), tally.clone(), client.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

type Resp = Response<Full<Bytes>>;

async fn handle(
    req: Request<Incoming>,
    mode: Mode,
    tally: SharedTally,
    client: reqwest::Client,
) -> Result<Resp, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let gzip = parts
        .headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let is_bulk = parts.uri.path().ends_with("/_bulk");
    Ok(match mode {
        Mode::Instant => instant(
            parts.method.as_str(),
            parts.uri.path(),
            filtered(parts.uri.query()),
            &body,
            gzip,
            &tally,
        ),
        Mode::Forward(base) => {
            let url = format!(
                "{base}{}",
                parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut up = client.request(parts.method.clone(), url).body(body.clone());
            for (k, v) in &parts.headers {
                // The answer is read here, so it must come uncompressed.
                if k != "host" && k != "accept-encoding" {
                    up = up.header(k, v);
                }
            }
            match up.send().await {
                Err(e) => reply(StatusCode::BAD_GATEWAY, format!("{{\"error\":\"{e}\"}}")),
                Ok(r) => {
                    let status = r.status();
                    let text = r.bytes().await.unwrap_or_default();
                    if is_bulk && status.is_success() {
                        let plain = unzip(&body, gzip);
                        let docs = bulk_docs(&plain);
                        let statuses = item_statuses(&text);
                        let now = now_ms();
                        let mut t = tally.lock().unwrap();
                        for (doc, status) in docs.iter().zip(statuses) {
                            match status {
                                201 | 200 => t.record_created(doc.id, doc.mark, now),
                                409 => t.duplicates += 1,
                                _ => t.other += 1,
                            }
                        }
                    }
                    let mut resp = Response::new(Full::new(text));
                    *resp.status_mut() = status;
                    resp.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    resp.headers_mut()
                        .insert("x-elastic-product", "Elasticsearch".parse().unwrap());
                    resp
                }
            }
        }
    })
}

/// Whether the request asks for items cut down to their status and error
/// (`filter_path=errors,items.*.status,items.*.error`, as the indexer and
/// Filebeat send). Only that filter is understood; any other is answered
/// in full, which is what a client that reads its fields can take.
fn filtered(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| {
            kv.strip_prefix("filter_path=").is_some_and(|v| {
                let mut f: Vec<&str> = v.split(',').flat_map(|p| p.split("%2C")).collect();
                f.sort_unstable();
                f == ["errors", "items.*.error", "items.*.status"]
            })
        })
    })
}

fn instant(method: &str, path: &str, filtered: bool, body: &[u8], gzip: bool, tally: &SharedTally) -> Resp {
    if path == "/" && method != "POST" {
        return reply(
            StatusCode::OK,
            r#"{"name":"bench-sink","cluster_name":"bench","version":{"number":"8.15.0","build_flavor":"default"},"tagline":"You Know, for Search"}"#.into(),
        );
    }
    if !path.ends_with("/_bulk") {
        // Templates, policies, refreshes: accepted and forgotten.
        return reply(StatusCode::OK, r#"{"acknowledged":true}"#.into());
    }
    reply(StatusCode::OK, bulk_answer(&unzip(body, gzip), filtered, tally))
}

/// The answer to a `_bulk` body: each new id created, each known one a 409.
fn bulk_answer(body: &[u8], filtered: bool, tally: &SharedTally) -> String {
    let docs = bulk_docs(body);
    let now = now_ms();
    // Written piece by piece: a `format!` per item was most of this function.
    let mut out = String::with_capacity(64 + docs.len() * 112);
    // `errors` comes first in the answer but is known only at the end: a
    // placeholder of the same length as `false` or ` true` is patched.
    out.push_str(if filtered {
        r#"{"errors":false,"items":["#
    } else {
        r#"{"took":0,"errors":false,"items":["#
    });
    let errors_at = out.len() - r#"false,"items":["#.len();
    let mut any_error = false;
    let mut t = tally.lock().unwrap();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let fresh = !t.ids.contains(&doc.id);
        let item_start = |out: &mut String, op: &str| {
            out.push_str("{\"");
            out.push_str(op);
            if filtered {
                out.push_str("\":{");
            } else {
                out.push_str("\":{\"_index\":\"");
                out.push_str(doc.index);
                out.push_str("\",\"_id\":\"");
                out.push_str(doc.id_text);
                out.push_str("\",");
            }
        };
        if fresh || doc.op != "create" {
            if fresh {
                t.record_created(doc.id, doc.mark, now);
            }
            item_start(&mut out, doc.op);
            if !filtered {
                out.push_str(r#""_version":1,"result":"created","#);
            }
            out.push_str(r#""status":201}}"#);
        } else {
            t.duplicates += 1;
            any_error = true;
            item_start(&mut out, "create");
            out.push_str(r#""status":409,"error":{"type":"version_conflict_engine_exception","reason":"["#);
            out.push_str(doc.id_text);
            out.push_str(r#"]: version conflict, document already exists (current version [1])"}}}"#);
        }
    }
    out.push_str("]}");
    if any_error {
        out.replace_range(errors_at..errors_at + 5, " true");
    }
    out
}

fn reply(status: StatusCode, body: String) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-elastic-product", "Elasticsearch")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

fn unzip(body: &[u8], gzip: bool) -> Vec<u8> {
    use std::io::Read;
    if !gzip {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len() * 8);
    let _ = flate2::read::GzDecoder::new(body).read_to_end(&mut out);
    out
}

/// One document of a `_bulk` body, borrowing from it.
#[derive(Debug)]
pub struct BulkDoc<'a> {
    pub op: &'a str,
    pub index: &'a str,
    /// The `_id` as a number: logpipe's ids are 32 hex digits.
    pub id: u128,
    /// The `_id` as sent, for the answer.
    pub id_text: &'a str,
    pub mark: Option<(u64, i64)>,
}

/// The documents of a `_bulk` body: action lines each followed by a source
/// line (every action logpipe sends has a source).
pub fn bulk_docs(body: &[u8]) -> Vec<BulkDoc<'_>> {
    let mut lines = memchr::memchr_iter(b'\n', body)
        .scan(0, |start, nl| {
            let line = &body[*start..nl];
            *start = nl + 1;
            Some(line)
        })
        .filter(|l| !l.is_empty());
    let mut docs = Vec::with_capacity(body.len() / 512);
    while let (Some(action), Some(source)) = (lines.next(), lines.next()) {
        // Searchers built once: building one per search cost more than searching.
        static OP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"{\""));
        static INDEX: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"_index\":\""));
        static ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"_id\":\""));
        let op = quoted_after(action, &OP).unwrap_or("index");
        let index = quoted_after(action, &INDEX).unwrap_or("");
        let id_text = quoted_after(action, &ID).unwrap_or("");
        let id = u128::from_str_radix(id_text, 16)
            .ok()
            // Not one of logpipe's ids: hash what there is, so it still counts once.
            .unwrap_or_else(|| xxhash_rust::xxh3::xxh3_128(action));
        docs.push(BulkDoc {
            op,
            index,
            id,
            id_text,
            mark: crate::gen::find_mark(source),
        });
    }
    docs
}

/// The `status` of every item of a `_bulk` response, in order.
pub fn item_statuses(resp: &[u8]) -> Vec<u16> {
    #[derive(serde::Deserialize)]
    struct R {
        items: Vec<std::collections::HashMap<String, Item>>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        status: u16,
    }
    serde_json::from_slice::<R>(resp)
        .map(|r| {
            r.items
                .into_iter()
                .map(|m| m.into_values().next().map_or(0, |i| i.status))
                .collect()
        })
        .unwrap_or_default()
}

/// The text from after what `start` finds up to the next `"`.
fn quoted_after<'a>(hay: &'a [u8], start: &Finder<'_>) -> Option<&'a str> {
    let from = start.find(hay)? + start.needle().len();
    let len = memchr::memchr(b'"', &hay[from..])?;
    std::str::from_utf8(&hay[from..from + len]).ok()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bulk_bodies_and_responses() {
        let body = b"{\"create\":{\"_index\":\"logpipe-2026.11.23\",\"_id\":\"000000000000000000000000000000ff\"}}\n\
            {\"message\":\"x lpmark:5:1000 y\"}\n\
            {\"create\":{\"_index\":\"logpipe-2026.11.23\",\"_id\":\"0000000000000000000000000000000a\"}}\n\
            {\"message\":\"no mark\"}\n";
        let docs = bulk_docs(body);
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].op, docs[0].id, docs[0].mark), ("create", 255, Some((5, 1000))));
        assert_eq!(docs[0].index, "logpipe-2026.11.23");
        assert_eq!((docs[1].id, docs[1].mark), (10, None));
        let resp = br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{}}}]}"#;
        assert_eq!(item_statuses(resp), vec![201, 409]);
    }

    #[test]
    fn instant_mode_answers_like_elasticsearch() {
        let tally = SharedTally::default();
        let body = b"{\"create\":{\"_index\":\"i\",\"_id\":\"01\"}}\n{\"m\":\"lpmark:0:1\"}\n";
        let first = instant("POST", "/_bulk", false, body, false, &tally);
        assert_eq!(first.status(), StatusCode::OK);
        instant("POST", "/_bulk", false, body, false, &tally);
        let t = tally.lock().unwrap();
        assert_eq!((t.accepted, t.duplicates, t.duplicate_ids), (1, 1, 0));
        assert_eq!(t.missing_below(1), Vec::<u64>::new());
        assert_eq!(t.missing_below(2), vec![1]);
    }

    #[test]
    fn bulk_answers_are_filtered_when_asked_and_flag_errors() {
        assert!(filtered(Some("filter_path=errors,items.*.status,items.*.error")));
        assert!(filtered(Some(
            "pretty&filter_path=items.*.error%2Citems.*.status%2Cerrors"
        )));
        assert!(!filtered(Some("filter_path=items.*._id")));
        assert!(!filtered(None));
        let tally = SharedTally::default();
        let body = b"{\"create\":{\"_index\":\"i\",\"_id\":\"01\"}}\n{\"m\":1}\n";
        let full = bulk_answer(body, false, &tally);
        let v: serde_json::Value = serde_json::from_str(&full).unwrap();
        assert_eq!(v["errors"], false, "{full}");
        assert_eq!(v["items"][0]["create"]["_id"], "01", "{full}");
        assert_eq!(v["items"][0]["create"]["status"], 201, "{full}");
        let again = bulk_answer(body, true, &tally);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&again).unwrap(),
            serde_json::json!({"errors": true, "items": [{"create": {"status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": "[01]: version conflict, document already exists (current version [1])"}}}]}),
            "{again}"
        );
    }
}
