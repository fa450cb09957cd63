//! Helpers for the indexer's fault tests: a small HTTP fault proxy in front of
//! Elasticsearch, stopping and starting noida-db's Elasticsearch service
//! (Kafka keeps running), producing parsed documents, and a process's RSS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Services;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forward every request to Elasticsearch.
    Pass = 0,
    /// Answer every request 429 Too Many Requests.
    TooMany = 1,
    /// Answer every request 503.
    Unavailable = 2,
    /// Wait 2 s, then forward.
    Slow = 3,
    /// Close the connection without answering.
    Close = 4,
    /// Answer 401 as Elasticsearch with security does for wrong credentials.
    Unauthorized = 5,
}

/// An HTTP/1.1 proxy with a switchable fault. One thread per connection,
/// one upstream connection per request: simple, and fast enough for tests.
pub struct FaultProxy {
    pub url: String,
    mode: Arc<AtomicU8>,
    /// Requests seen, and those whose body came `Content-Encoding: gzip`.
    pub requests: Arc<AtomicU64>,
    pub gzip_requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let proxy = FaultProxy {
            url,
            mode: Arc::new(AtomicU8::new(Mode::Pass as u8)),
            requests: Arc::default(),
            gzip_requests: Arc::default(),
            stop: Arc::default(),
        };
        let (mode, requests, gzip, stop) = (
            proxy.mode.clone(),
            proxy.requests.clone(),
            proxy.gzip_requests.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (mode, requests, gzip, stop, upstream) = (
                            mode.clone(),
                            requests.clone(),
                            gzip.clone(),
                            stop.clone(),
                            upstream.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = serve(client, &upstream, &mode, &requests, &gzip, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        proxy
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    mode: &AtomicU8,
    requests: &AtomicU64,
    gzip: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_millis(500)))?;
    loop {
        let request = loop {
            match read_message(&mut client) {
                Ok(Some(r)) => break r,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        };
        requests.fetch_add(1, Ordering::Relaxed);
        if header(&request, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
            gzip.fetch_add(1, Ordering::Relaxed);
        }
        let canned = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let answer = match mode.load(Ordering::SeqCst) {
            1 => canned(
                "429 Too Many Requests",
                r#"{"error":{"type":"es_rejected_execution_exception","reason":"fault proxy: 429"},"status":429}"#,
            )
            .into_bytes(),
            2 => canned(
                "503 Service Unavailable",
                r#"{"error":{"type":"unavailable_shards_exception","reason":"fault proxy: 503"},"status":503}"#,
            )
            .into_bytes(),
            4 => return Ok(()),
            5 => canned(
                "401 Unauthorized",
                r#"{"error":{"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/]"},"status":401}"#,
            )
            .into_bytes(),
            m => {
                if m == 3 {
                    std::thread::sleep(Duration::from_secs(2));
                }
                let mut up = TcpStream::connect(upstream)?;
                up.write_all(&request)?;
                match read_message(&mut up)? {
                    Some(r) => r,
                    None => return Ok(()),
                }
            }
        };
        client.write_all(&answer)?;
    }
}

/// One HTTP/1.1 message (head and body by content-length or chunked), or
/// `None` when the peer closed before sending anything.
fn read_message(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let chunked = header(&buf[..head_end], "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let len: usize = header(&buf[..head_end], "content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    loop {
        let done = if chunked {
            find(&buf[head_end..], b"0\r\n\r\n").is_some_and(|i| i == 0 || buf[head_end + i - 1] == b'\n')
        } else {
            buf.len() >= head_end + len
        };
        if done {
            return Ok(Some(buf));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header(msg: &[u8], name: &str) -> Option<String> {
    let end = find(msg, b"\r\n\r\n").unwrap_or(msg.len());
    let head = String::from_utf8_lossy(&msg[..end]);
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

impl Services {
    /// Stops noida-db's Elasticsearch service (its data is kept; Kafka runs on).
    pub fn stop_elasticsearch(&self) {
        self.noida_cli("stop");
    }

    pub fn start_elasticsearch(&self) {
        self.noida_cli("start");
        let http = reqwest::blocking::Client::new();
        let up = super::wait_for(Duration::from_secs(30), || {
            http.get(format!("{}/_cluster/health", self.es))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(up, "Elasticsearch did not come back");
    }

    fn noida_cli(&self, verb: &str) {
        let data = self._data.as_ref().expect("only with a noida-db started by the test");
        let status = std::process::Command::new(super::noida_bin())
            .arg(verb)
            .arg("elasticsearch")
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running noida-db");
        assert!(status.success(), "noida-db {verb} elasticsearch failed");
    }
}

/// Documents `range` of a test, with ids `doc-<i>`, as the parser writes
/// them: batch records of up to 100 documents (`logpipe_schemas::parsed`).
pub fn produce_docs(brokers: &str, topic: &str, range: std::ops::Range<usize>, mut body: impl FnMut(usize) -> String) {
    use logpipe_schemas::parsed;
    let producer = test_producer(brokers);
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(100) {
        let mut value = Vec::new();
        for &i in chunk {
            parsed::push_doc(&mut value, format!("doc-{i}").as_bytes(), |o| {
                o.extend_from_slice(body(i).as_bytes())
            });
        }
        let count = chunk.len().to_string();
        send_waiting(
            &producer,
            topic,
            None,
            &value,
            Some((parsed::HEADER_DOCS, count.as_str())),
        );
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).expect("flush");
}

/// Like [`produce_docs`], one document per record with its id as key: what
/// older parsers and other producers write.
pub fn produce_single_docs(
    brokers: &str,
    topic: &str,
    range: std::ops::Range<usize>,
    mut body: impl FnMut(usize) -> String,
) {
    let producer = test_producer(brokers);
    for i in range {
        let key = format!("doc-{i}");
        send_waiting(&producer, topic, Some(key.as_bytes()), body(i).as_bytes(), None);
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).expect("flush");
}

pub type TestProducer = rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>;

pub fn test_producer(brokers: &str) -> TestProducer {
    rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// Sends one record, waiting while librdkafka's queue is full.
pub fn send_waiting(
    producer: &TestProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
    header: Option<(&str, &str)>,
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    loop {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some((k, v)) = header {
            record = record.headers(OwnedHeaders::new().insert(Header { key: k, value: Some(v) }));
        }
        match producer.send(record) {
            Ok(()) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A plain document for event time 2026-11-22T10:00:00Z.
pub fn doc_body(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-22T10:00:00Z","message":"event {i} {}","labels":{{"seq":"{i}"}}}}"#,
        "x".repeat(200)
    )
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Every distinct `_id` of the indices matching `index`. Paged with
/// `search_after` on `labels.seq` (every test document has it), because
/// `from` stops at Elasticsearch's 10,000-hit window.
pub fn distinct_ids(es: &super::Es, index: &str) -> std::collections::HashSet<String> {
    let http = reqwest::blocking::Client::new();
    let _ = http.post(format!("{}/{index}/_refresh", es.url)).send();
    let mut ids = std::collections::HashSet::new();
    let mut after: Option<serde_json::Value> = None;
    loop {
        let mut body = serde_json::json!({
            "size": 5000,
            "query": { "match_all": {} },
            "sort": [{ "labels.seq": "asc" }],
            "_source": false
        });
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let v: serde_json::Value = http
            .post(format!("{}/{index}/_search", es.url))
            .json(&body)
            .send()
            .expect("search")
            .json()
            .expect("search JSON");
        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            return ids;
        }
        for h in &hits {
            ids.insert(h["_id"].as_str().expect("_id").to_string());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
}
