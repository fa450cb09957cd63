//! Real services for the end-to-end and fault tests.
//!
//! Each test gets its own `noida-db` (Kafka and Elasticsearch 8 APIs) on free
//! loopback ports with a fresh data dir, killed when the test ends, so tests
//! run in parallel and a fault in one (a killed broker) never touches
//! another. Set `LOGPIPE_TEST_KAFKA` and `LOGPIPE_TEST_ES` to run against a
//! real cluster instead; topics and groups get unique names per test then.
#![allow(dead_code)]

pub mod imds;
pub mod s3;
pub mod shipper;
pub mod syslog;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Services {
    pub kafka: String,
    pub es: String,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

impl Services {
    pub fn start() -> Services {
        if let (Ok(kafka), Ok(es)) = (std::env::var("LOGPIPE_TEST_KAFKA"), std::env::var("LOGPIPE_TEST_ES")) {
            return Services {
                kafka,
                es,
                child: None,
                _data: None,
            };
        }
        let bin = noida_bin();
        let data = tempfile::tempdir().expect("tempdir");
        let (kp, ep) = (free_port(), free_port());
        let log = std::fs::File::create(data.path().join("noida.log")).unwrap();
        let child = Command::new(&bin)
            .args(["start", "--only", "kafka,elasticsearch", "--data-dir"])
            .arg(data.path().join("db"))
            .args(["--kafka-port", &kp.to_string(), "--elasticsearch-port", &ep.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (run scripts/setup first): {e}", bin.display()));
        let s = Services {
            kafka: format!("127.0.0.1:{kp}"),
            es: format!("http://127.0.0.1:{ep}"),
            child: Some(child),
            _data: Some(data),
        };
        s.wait_ready();
        s
    }

    /// The stand-in's process, to pause (SIGSTOP) or kill for a fault;
    /// `None` against a real cluster.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            let es_up = http
                .get(format!("{}/_cluster/health", self.es))
                .send()
                .is_ok_and(|r| r.status().is_success());
            let kafka_up = std::net::TcpStream::connect(&self.kafka).is_ok();
            if es_up && kafka_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("noida-db did not come up within 30 s");
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn noida_bin() -> PathBuf {
    std::env::var_os("LOGPIPE_NOIDA_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/noida-db-server"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A name no other test (or earlier run against a shared cluster) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One logpipe daemon, SIGTERM'd (then killed) on drop.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(role: &str, config: &Path, log_dir: &Path) -> Daemon {
        let log = log_dir.join(format!("{role}-{}.log", unique("run")));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_logpipe"))
            .args([role, "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawning logpipe");
        Daemon {
            name: role.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait; returns whether it exited 0 within `within`.
    pub fn terminate(&mut self, within: Duration) -> bool {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The ops endpoint's address, from the daemon's start-up log line
    /// (tests bind it to port 0).
    pub fn ops_addr(&self) -> Option<String> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains("ops endpoint"))?;
        let at = line.find("127.0.0.1:")?;
        let port: String = line[at + 10..].chars().take_while(char::is_ascii_digit).collect();
        Some(format!("127.0.0.1:{port}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the daemon's log if it already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("logpipe {} exited early ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Small Elasticsearch helpers over plain HTTP, independent of the code under test.
pub struct Es {
    pub url: String,
    http: reqwest::blocking::Client,
}

impl Es {
    pub fn new(url: &str) -> Es {
        Es {
            url: url.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn count(&self, index: &str) -> u64 {
        let _ = self.http.post(format!("{}/{index}/_refresh", self.url)).send();
        self.http
            .get(format!("{}/{index}/_count", self.url))
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0)
    }

    /// Every document of `index` (up to 10,000 per call, paged by `search_after` on `_id`... here by `from`).
    pub fn all_docs(&self, index: &str, expected: usize) -> Vec<serde_json::Value> {
        let _ = self.http.post(format!("{}/{index}/_refresh", self.url)).send();
        let mut out = Vec::new();
        let page = 5000;
        let mut from = 0;
        loop {
            let body = serde_json::json!({ "from": from, "size": page, "query": { "match_all": {} } });
            let v: serde_json::Value = self
                .http
                .post(format!("{}/{index}/_search", self.url))
                .json(&body)
                .send()
                .expect("search")
                .json()
                .expect("search JSON");
            let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
            let n = hits.len();
            out.extend(hits);
            from += n;
            if n < page || out.len() > expected + page {
                break;
            }
        }
        out
    }
}

/// Polls `f` until it returns true or `within` passes.
pub fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

/// A config for all three roles pointing at `s`, with unique topics and groups.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub logs: PathBuf,
    pub index_prefix: String,
    pub raw_topic: String,
    pub parsed_topic: String,
    pub dlq_topic: String,
}

impl Setup {
    pub fn new(s: &Services, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let id = unique("t").replace('-', "");
        let index_prefix = format!("logpipe-{id}");
        let (raw, parsed, dlq) = (format!("raw-{id}"), format!("parsed-{id}"), format!("dlq-{id}"));
        let config = dir.path().join("logpipe.toml");
        let text = format!(
            r#"
[host]
name = "test-host"

[kafka]
brokers = "{kafka}"
raw_topic = "{raw}"
parsed_topic = "{parsed}"
dead_letter_topic = "{dlq}"
partitions = 2

[elasticsearch]
url = "{es}"

[shipper]
data_dir = "{data}"
poll_interval_ms = 100
[[shipper.inputs]]
include = ["{logs}/*.log"]
[shipper.ops]
listen = "127.0.0.1:0"

[parser]
group_id = "parser-{id}"
[parser.ops]
listen = "127.0.0.1:0"

[indexer]
group_id = "indexer-{id}"
index_pattern = "{index_prefix}-%Y.%m.%d"
batch_max_age_ms = 200
install_template = true
[indexer.ops]
listen = "127.0.0.1:0"
{extra}
"#,
            kafka = s.kafka,
            es = s.es,
            data = dir.path().join("data").display(),
            logs = logs.display(),
        );
        std::fs::write(&config, text).unwrap();
        Setup {
            dir,
            config,
            logs,
            index_prefix,
            raw_topic: raw,
            parsed_topic: parsed,
            dlq_topic: dlq,
        }
    }

    pub fn index_glob(&self) -> String {
        format!("{}-*", self.index_prefix)
    }
}
pub mod indexer;
pub mod rsyslog;

/// The (document id, document) pairs of a parsed-topic record: the many of a
/// batch record (`logpipe_schemas::parsed`), or the key and value of any
/// other record (dead letters too). Panics on a batch that does not read.
pub fn documents(m: &rdkafka::message::BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    use logpipe_schemas::parsed;
    use rdkafka::message::{Headers, Message};
    let value = m.payload().unwrap_or_default();
    let count = m
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == parsed::HEADER_DOCS).and_then(|h| h.value));
    match count {
        Some(count) => parsed::split(value, count)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(id, doc)| (String::from_utf8(value[id].to_vec()).unwrap(), value[doc].to_vec()))
            .collect(),
        None => vec![(
            String::from_utf8(m.key().expect("keyed").to_vec()).unwrap(),
            value.to_vec(),
        )],
    }
}
