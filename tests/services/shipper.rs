//! Helpers for the shipper's fault tests: a shipper-only config, line
//! writers whose lines say which stream and sequence number they are, and a
//! check of what reached the raw topic, read back with a plain consumer.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logpipe_schemas::raw::{self, SourceMeta};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{unique, Services};

/// A shipper-only config with its own topic, data dir and logs dir.
pub struct ShipSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub logs: PathBuf,
    pub data: PathBuf,
    pub topic: String,
    pub kafka: String,
}

impl ShipSetup {
    /// `include` patterns are relative to the logs dir; `extra` goes into `[shipper]`.
    pub fn new(s: &Services, include: &[&str], extra: &str) -> ShipSetup {
        Self::with_kafka(&s.kafka, include, extra, "")
    }

    /// Like [`new`](Self::new), with `kafka_extra` in `[kafka]` and sections after `[shipper]`.
    pub fn with_kafka(kafka: &str, include: &[&str], extra: &str, tail: &str) -> ShipSetup {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let data = dir.path().join("data");
        let topic = format!("raw-{}", unique("s").replace('-', ""));
        let include: Vec<String> = include.iter().map(|p| format!("\"{}/{p}\"", logs.display())).collect();
        let config = dir.path().join("logpipe.toml");
        let text = format!(
            r#"
[host]
name = "test-host"

[kafka]
brokers = "{kafka}"
raw_topic = "{topic}"
partitions = 2

[shipper]
data_dir = "{data}"
poll_interval_ms = 100
{extra}
[[shipper.inputs]]
include = [{include}]
[shipper.ops]
listen = "127.0.0.1:0"
{tail}
"#,
            data = data.display(),
            include = include.join(", "),
        );
        std::fs::write(&config, text).unwrap();
        ShipSetup {
            dir,
            config,
            logs,
            data,
            topic,
            kafka: kafka.to_string(),
        }
    }
}

/// Line `seq` of stream `stream`: about 150 bytes, unique, and self-describing.
pub fn line(stream: &str, seq: u64) -> String {
    format!(
        "2026-11-23T08:00:00.000Z host-1 {stream}[{}]: seq={seq:09} request finished status=200 bytes={} user=u{} path=/api/v1/items/{}",
        seq % 97,
        seq * 7 % 100_000,
        seq % 1000,
        seq % 10_007
    )
}

/// Parses `(stream, seq)` back out of a line made by [`line`].
pub fn parse_line(bytes: &[u8]) -> Option<(String, u64)> {
    let s = std::str::from_utf8(bytes).ok()?;
    let mut words = s.split(' ');
    let _ts = words.next()?;
    let _host = words.next()?;
    let stream = words.next()?.split('[').next()?.to_string();
    let seq = words.next()?.strip_prefix("seq=")?.parse().ok()?;
    Some((stream, seq))
}

/// Buffers whole lines and writes them in one `write` each batch, so a reader
/// never sees half a line unless it is meant to.
pub struct LineWriter {
    pub path: PathBuf,
    file: std::fs::File,
    buf: Vec<u8>,
}

impl LineWriter {
    pub fn create(path: &Path) -> LineWriter {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        LineWriter {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    pub fn push(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        if self.buf.len() >= 60 * 1024 {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).unwrap();
            self.buf.clear();
        }
    }

    /// Reopens the path (after a rename rotation made it a new file).
    pub fn reopen(&mut self) {
        self.flush();
        *self = LineWriter::create(&self.path.clone());
    }
}

/// Paces a writer to `per_sec` lines per second.
pub struct Pace {
    start: Instant,
    per_sec: f64,
}

impl Pace {
    pub fn new(per_sec: u64) -> Pace {
        Pace {
            start: Instant::now(),
            per_sec: per_sec as f64,
        }
    }

    /// Sleeps while more than `written` lines would be ahead of the pace.
    pub fn wait(&self, written: u64) {
        let due = Duration::from_secs_f64(written as f64 / self.per_sec);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// One record of the raw topic, as a downstream consumer sees it.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub partition: i32,
    pub fingerprint: String,
    pub path: String,
    pub offset: u64,
    pub value: Vec<u8>,
}

/// Reads the whole topic from the beginning until `done` says the records
/// are complete (checked whenever the consumer is idle), or `within` passes.
pub fn consume_until(
    kafka: &str,
    topic: &str,
    within: Duration,
    mut done: impl FnMut(&[RawRecord]) -> bool,
) -> Vec<RawRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", unique("check"))
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        // The stand-in answers a consumer far behind with more than that at
        // once; librdkafka rejects such a response and retries forever.
        .set("receive.message.max.bytes", "1000000000")
        // It also ignores every fetch size limit: a consumer far behind gets
        // the whole backlog in one response, which can take longer to build
        // than librdkafka's default 60 s request timeout.
        .set("socket.timeout.ms", "300000")
        .create()
        .unwrap();
    let deadline = Instant::now() + within;
    let partitions = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n > 0 {
                break n;
            }
        }
        assert!(Instant::now() < deadline, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut last_check = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let source = m.key().and_then(SourceMeta::parse);
                out.push(RawRecord {
                    partition: m.partition(),
                    fingerprint: source.map(|s| raw::fingerprint_hex(s.fingerprint)).unwrap_or_default(),
                    path: source.map(|s| s.path.to_string()).unwrap_or_default(),
                    offset: source.map_or(u64::MAX, |s| s.offset),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
                if last_check.elapsed() > Duration::from_secs(2) {
                    last_check = Instant::now();
                    if done(&out) {
                        break;
                    }
                }
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            // Checking costs a sort of everything read: not at every idle poll.
            None if last_check.elapsed() > Duration::from_millis(500) => {
                last_check = Instant::now();
                if done(&out) {
                    break;
                }
            }
            None => {}
        }
    }
    out
}

/// What arrived, per stream.
#[derive(Debug, Default)]
pub struct Report {
    /// Records that repeat an earlier record's (fingerprint, offset): re-sent.
    pub resent: u64,
    /// Sequence numbers never seen, per stream (first few).
    pub missing: HashMap<String, Vec<u64>>,
    pub missing_total: u64,
    /// The same line at two different places: would be a real duplicate downstream.
    pub duplicated: u64,
    /// Records out of order within one file, or not from any stream.
    pub errors: Vec<String>,
}

impl Report {
    pub fn is_complete(&self) -> bool {
        self.missing_total == 0
    }
}

/// Checks records against `expected` lines per stream: every line present,
/// in order within its file (fingerprint), first occurrence per (fingerprint, offset).
pub fn check(records: &[RawRecord], expected: &[(&str, u64)]) -> Report {
    let mut report = Report::default();
    let mut seen: HashMap<&str, Vec<u8>> = expected.iter().map(|(s, n)| (*s, vec![0u8; *n as usize])).collect();
    let mut first_at: HashMap<(&str, u64), ()> = HashMap::new();
    // Per file: the last (offset, seq) shipped, to check order.
    let mut last: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for r in records {
        if first_at.insert((r.fingerprint.as_str(), r.offset), ()).is_some() {
            report.resent += 1;
            continue;
        }
        if *partition_of.entry(&r.fingerprint).or_insert(r.partition) != r.partition {
            report.errors.push(format!("file {} on two partitions", r.fingerprint));
        }
        let Some((stream, seq)) = parse_line(&r.value) else {
            report
                .errors
                .push(format!("not a test line: {:?}", String::from_utf8_lossy(&r.value)));
            continue;
        };
        let Some(marks) = seen.get_mut(stream.as_str()) else {
            report.errors.push(format!("unknown stream {stream}"));
            continue;
        };
        if r.value != line(&stream, seq).as_bytes() {
            report
                .errors
                .push(format!("corrupt line {:?}", String::from_utf8_lossy(&r.value)));
        }
        match marks.get_mut(seq as usize) {
            Some(m) => {
                *m += 1;
                if *m > 1 {
                    report.duplicated += 1;
                }
            }
            None => report.errors.push(format!("seq {seq} out of range in {stream}")),
        }
        if let Some((off, prev)) = last.insert(&r.fingerprint, (r.offset, seq)) {
            if r.offset <= off || seq <= prev {
                report.errors.push(format!(
                    "out of order in {} ({}): offset {off} seq {prev} then offset {} seq {seq}",
                    r.fingerprint, r.path, r.offset
                ));
            }
        }
    }
    for (stream, marks) in &seen {
        let missing: Vec<u64> = (0..marks.len() as u64).filter(|&i| marks[i as usize] == 0).collect();
        report.missing_total += missing.len() as u64;
        if !missing.is_empty() {
            report
                .missing
                .insert(stream.to_string(), missing.into_iter().take(20).collect());
        }
    }
    report.errors.truncate(20);
    report
}

/// Distinct lines seen per stream, for a cheap "is everything there yet" test.
pub fn distinct_lines(records: &[RawRecord]) -> usize {
    let mut keys: Vec<(&str, u64)> = records.iter().map(|r| (r.fingerprint.as_str(), r.offset)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// Peak resident set size (VmHWM) of a process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
