//! Shipper throughput: one file of realistic ~130-200-byte lines (real log
//! lines from the shared corpus, read in place) shipped file -> Kafka by one
//! release `logpipe ship` process against the local broker (noida-db), and
//! the same file by rsyslog (`imfile` + `omkafka`, Debian's packages) and by
//! `kcat -P` (a plain producer: no tailing, no checkpoints; the broker's
//! reference rate) to the same broker.
//!
//! Per shipper: lines/s (from process start until the last line is in the
//! topic, by the topic's high watermark), CPU µs per line (user + system of
//! that process only, from /proc, whole run including start-up), peak RSS.
//!
//! ```sh
//! cargo build --release -p logpipe -p logpipe-benches --bins
//! target/release/ship_bench [lines, default 2000000] [all | logpipe,rsyslog,kcat]
//! ```

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logpipe_benches::proc_stats;
use logpipe_benches::services::{noida_bin, spawn_logpipe, KillOnDrop, Noida};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

struct Figures {
    name: &'static str,
    lines_per_s: f64,
    cpu_us_per_line: f64,
    peak_rss: u64,
    secs: f64,
}

fn main() {
    let lines: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    let which = std::env::args().nth(2).unwrap_or_else(|| "all".into());
    let want = |name: &str| which == "all" || which.split(',').any(|w| w == name);
    let bin_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let noida = Noida::start(&noida_bin(), dir.path(), false).expect("starting noida-db");
    let brokers = noida.kafka.clone();

    let file = dir.path().join("bench.log");
    let bytes = write_file(&file, lines);
    println!(
        "file: {lines} lines, {:.1} MiB, {:.0} bytes/line on average (corpus lines of 130-200 bytes)",
        bytes as f64 / 1048576.0,
        bytes as f64 / lines as f64
    );
    println!("broker: noida-db at {brokers}; machine: {} cores, shared", cores());

    let mut results = Vec::new();
    if want("kcat") {
        results.push(kcat(&brokers, &file, lines));
    }
    if want("logpipe") {
        results.push(logpipe(&bin_dir, dir.path(), &brokers, &file, lines));
    }
    if want("rsyslog") {
        results.push(rsyslog(dir.path(), &brokers, &file, lines));
    }
    println!();
    println!(
        "{:<8} {:>12} {:>16} {:>14} {:>8}",
        "shipper", "lines/s", "CPU µs/line", "peak RSS MiB", "wall s"
    );
    for r in &results {
        println!(
            "{:<8} {:>12.0} {:>16.3} {:>14.1} {:>8.2}",
            r.name,
            r.lines_per_s,
            r.cpu_us_per_line,
            r.peak_rss as f64 / 1048576.0,
            r.secs
        );
    }
    let by: HashMap<&str, &Figures> = results.iter().map(|r| (r.name, r)).collect();
    if let (Some(l), Some(r)) = (by.get("logpipe"), by.get("rsyslog")) {
        println!(
            "logpipe vs rsyslog: {:.2}x the lines/s, {:.2}x less CPU per line",
            l.lines_per_s / r.lines_per_s,
            r.cpu_us_per_line / l.cpu_us_per_line
        );
    }
    if let (Some(l), Some(k)) = (by.get("logpipe"), by.get("kcat")) {
        println!(
            "logpipe vs kcat: {:.2}x the lines/s, {:.2}x the CPU per line",
            l.lines_per_s / k.lines_per_s,
            l.cpu_us_per_line / k.cpu_us_per_line
        );
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// `shared/corpus` next to the checkout (or a worktree of it), or $LOGPIPE_CORPUS.
fn corpus() -> PathBuf {
    std::env::var_os("LOGPIPE_CORPUS")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|a| a.join("shared/corpus"))
                .find(|c| c.is_dir())
        })
        .expect("no shared/corpus above the workspace; set LOGPIPE_CORPUS")
}

/// Corpus lines of 130 to 200 bytes (CRLF made LF), in a scrambled order
/// repeated to `lines` lines, so consecutive lines come from different sources
/// as on a busy host and batches do not repeat exactly.
fn write_file(path: &Path, lines: u64) -> u64 {
    let root = corpus();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    for f in [
        "loghub/HDFS_2k.log",
        "loghub/Linux_2k.log",
        "loghub/OpenSSH_2k.log",
        "loghub/Spark_2k.log",
        "loghub/Thunderbird_2k.log",
        "loghub/Zookeeper_2k.log",
        "access/apache_combined.log",
    ] {
        let text = std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("{}: {e}", root.join(f).display()));
        for l in text.split(|&b| b == b'\n') {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if (130..=200).contains(&l.len()) {
                pool.push(l.to_vec());
            }
        }
    }
    assert!(pool.len() > 1000, "too few corpus lines: {}", pool.len());
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut bytes = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let l = &pool[(x % pool.len() as u64) as usize];
        out.write_all(l).unwrap();
        out.write_all(b"\n").unwrap();
        bytes += l.len() as u64 + 1;
    }
    out.flush().unwrap();
    bytes
}

fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = [NewTopic::new(topic, 1, TopicReplication::Fixed(1))];
    let res = rt
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .expect("create topic");
    for r in res {
        if let Err((t, e)) = r {
            panic!("creating {t}: {e}");
        }
    }
}

/// Lines in `topic` so far (one partition): its high watermark.
struct Counter {
    consumer: BaseConsumer,
    topic: String,
}

impl Counter {
    fn new(brokers: &str, topic: &str) -> Counter {
        create_topic(brokers, topic);
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "ship-bench-count")
            .create()
            .unwrap();
        Counter {
            consumer,
            topic: topic.into(),
        }
    }

    fn count(&self) -> u64 {
        self.consumer
            .fetch_watermarks(&self.topic, 0, Duration::from_secs(5))
            .map_or(0, |(_, high)| high.max(0) as u64)
    }

    /// Waits until `lines` are in; returns the time from `start`. Panics
    /// (with the shipper's log path) after 10 minutes.
    fn wait_for(&self, lines: u64, start: Instant, pid: u32, log: &Path) -> Duration {
        let deadline = start + Duration::from_secs(600);
        loop {
            let n = self.count();
            if n >= lines {
                assert_eq!(n, lines, "{}: more lines than written (duplicates)", self.topic);
                return start.elapsed();
            }
            assert!(
                proc_stats::cpu_time(pid).is_some(),
                "{}: shipper exited; see {}",
                self.topic,
                log.display()
            );
            assert!(
                Instant::now() < deadline,
                "{}: only {n} of {lines} lines after 10 minutes; see {}",
                self.topic,
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn figures(name: &'static str, lines: u64, wall: Duration, cpu: Duration, peak_rss: u64) -> Figures {
    let f = Figures {
        name,
        lines_per_s: lines as f64 / wall.as_secs_f64(),
        cpu_us_per_line: cpu.as_secs_f64() * 1e6 / lines as f64,
        peak_rss,
        secs: wall.as_secs_f64(),
    };
    eprintln!(
        "{name}: {lines} lines in {:.2} s, CPU {:.2} s",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
    f
}

fn logpipe(bin_dir: &Path, dir: &Path, brokers: &str, file: &Path, lines: u64) -> Figures {
    let topic = "ship-logpipe";
    let counter = Counter::new(brokers, topic);
    let config = dir.join("logpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\nname = \"bench\"\n\n[kafka]\nbrokers = \"{brokers}\"\nraw_topic = \"{topic}\"\npartitions = 1\n\n\
             [shipper]\ndata_dir = \"{data}\"\n{shipper_extra}\n[[shipper.inputs]]\ninclude = [\"{file}\"]\n\
             [shipper.ops]\nlisten = \"127.0.0.1:0\"\n{extra}",
            data = dir.join("logpipe-data").display(),
            file = file.display(),
            // For trying settings: TOML appended to the shipper's config,
            // e.g. SHIP_BENCH_TOML=$'[kafka.options]\n"linger.ms" = "5"'.
            extra = std::env::var("SHIP_BENCH_TOML").unwrap_or_default(),
            // Keys of the [shipper] table, e.g. SHIP_BENCH_SHIPPER='max_in_flight_lines = 400000'.
            shipper_extra = std::env::var("SHIP_BENCH_SHIPPER").unwrap_or_default(),
        ),
    )
    .unwrap();
    let log_path = dir.join("logpipe.log");
    let start = Instant::now();
    let child = spawn_logpipe(bin_dir, "ship", &config, &log_path);
    let pid = child.id();
    let wall = counter.wait_for(lines, start, pid, &log_path);
    let cpu = proc_stats::cpu_time(pid).unwrap();
    let (_, peak) = proc_stats::rss(pid).unwrap();
    drop(child);
    figures("logpipe", lines, wall, cpu, peak)
}

fn rsyslog(dir: &Path, brokers: &str, file: &Path, lines: u64) -> Figures {
    let topic = "ship-rsyslog";
    let counter = Counter::new(brokers, topic);
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    // The same producer settings as logpipe's where omkafka has them
    // (lz4, batching); acks are librdkafka's default (all).
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imfile")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
input(type="imfile" file="{file}" tag="bench" ruleset="tokafka" freshStartTail="off")
ruleset(name="tokafka") {{
  action(type="omkafka" broker=["{brokers}"] topic="{topic}" template="raw" partitions.number="1"
         confParam=["compression.codec=lz4", "linger.ms=5", "batch.num.messages=10000", "queue.buffering.max.messages=200000"])
}}
"#,
            work = work.display(),
            file = file.display(),
        ),
    )
    .unwrap();
    let log_path = dir.join("rsyslog.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let start = Instant::now();
    let child = KillOnDrop(
        Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rsyslogd (Debian packages rsyslog, rsyslog-kafka: scripts/setup)"),
    );
    let pid = child.id();
    let wall = counter.wait_for(lines, start, pid, &log_path);
    let cpu = proc_stats::cpu_time(pid).unwrap();
    let (_, peak) = proc_stats::rss(pid).unwrap();
    drop(child);
    figures("rsyslog", lines, wall, cpu, peak)
}

/// kcat exits once everything is acknowledged; its CPU and peak RSS come
/// from `wait4`.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child cannot see
fn kcat(brokers: &str, file: &Path, lines: u64) -> Figures {
    let topic = "ship-kcat";
    let counter = Counter::new(brokers, topic);
    let start = Instant::now();
    let child = Command::new("kcat")
        .args(["-P", "-b", brokers, "-t", topic, "-p", "0", "-z", "lz4"])
        .args(["-X", "linger.ms=5", "-X", "batch.num.messages=10000"])
        .args(["-X", "queue.buffering.max.messages=200000"])
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .expect("kcat (Debian package kcat: scripts/setup)");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(r > 0 && status == 0, "kcat failed (status {status})");
    let wall = start.elapsed();
    let n = counter.count();
    assert_eq!(n, lines, "kcat: lines in the topic");
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    figures("kcat", lines, wall, cpu, usage.ru_maxrss as u64 * 1024)
}
