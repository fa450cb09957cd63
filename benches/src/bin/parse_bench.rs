//! Parser service throughput: prefills a raw topic with realistic mixed lines
//! (RFC 3164 from loghub's Linux and OpenSSH samples, combined access logs
//! from elastic's examples, RFC 5424 built from the OpenSSH messages, a few
//! JSON lines; all read in place from `../shared/corpus`), keyed and
//! timestamped as the shipper sends them, then runs one `logpipe parse` (release build, format
//! `auto`) against the local noida-db broker and measures raw -> parsed:
//! events/s, CPU-seconds per million events and peak RSS of the parser
//! process, between 10% and 100% of the events (start-up and the group join
//! excluded).
//!
//! The stand-in's own rates are measured too, so a limit that is not
//! logpipe's shows: how fast the prefill was accepted, and how fast `kcat`
//! (Debian's) alone consumes the raw topic.
//!
//! Usage (after `cargo build --release -p logpipe -p logpipe-benches --bins`):
//!   target/release/parse_bench [events] [partitions]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logpipe_benches::inputs::corpus_lines;
use logpipe_benches::proc_stats;
use logpipe_benches::scrape;
use logpipe_benches::services::{free_port, noida_bin, send_waiting, spawn_logpipe, Noida};
use logpipe_schemas::raw::SourceMeta;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const RAW: &str = "bench-raw";
const PARSED: &str = "bench-parsed";
const DLQ: &str = "bench-dlq";

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let partitions: i32 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(4);
    let bin_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let noida = Noida::start(&noida_bin(), dir.path(), false).expect("starting noida-db");
    let brokers = noida.kafka.clone();
    create_topics(&brokers, partitions);

    let lines = mixed_lines();
    let bytes: usize = (0..events).map(|i| lines[i % lines.len()].len()).sum();
    eprintln!(
        "{} distinct lines; {events} events, {:.1} MiB of lines, {partitions} partitions",
        lines.len(),
        bytes as f64 / 1048576.0
    );
    let started = Instant::now();
    produce(&brokers, &lines, events, partitions);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "stand-in produce (prefill, lz4, one rdkafka producer): {:.0} events/s",
        events as f64 / secs
    );
    kcat_consume(&brokers, events);

    run_parser(&bin_dir, dir.path(), &brokers, events, partitions);
    drop(noida);
}

fn create_topics(brokers: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic> = [RAW, PARSED, DLQ]
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .expect("create topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// About a third each of RFC 3164, access and RFC 5424, and a few JSON lines,
/// interleaved so every batch the parser sees is mixed.
fn mixed_lines() -> Vec<String> {
    let linux = corpus_lines("loghub/Linux_2k.log");
    let ssh = corpus_lines("loghub/OpenSSH_2k.log");
    let access = corpus_lines("access/apache_combined.log");
    let rfc5424: Vec<String> = ssh
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            // "Dec 10 06:55:46 LabSZ sshd[24200]: message" -> RFC 5424, same message.
            let (head, msg) = l.split_once("]: ")?;
            let pid = head.rsplit_once('[')?.1;
            Some(format!(
                "<38>1 2026-11-22T10:{:02}:{:02}.{:06}Z web-{}.example.com sshd {pid} - {} {msg}",
                i / 60 % 60,
                i % 60,
                i * 7919 % 1_000_000,
                i % 16,
                if i % 4 == 0 {
                    format!("[origin@32473 ip=\"10.0.{}.{}\" seq=\"{i}\"]", i % 250, i % 200)
                } else {
                    "-".into()
                }
            ))
        })
        .collect();
    let json: Vec<String> = (0..500)
        .map(|i| {
            format!(
                r#"{{"time":"2026-11-22T10:00:{:02}Z","level":"info","msg":"request served","status":{},"duration_ms":{},"path":"/api/v1/items/{i}"}}"#,
                i % 60,
                if i % 9 == 0 { 500 } else { 200 },
                i % 97
            )
        })
        .collect();
    let syslog: Vec<&String> = linux.iter().chain(&ssh).collect();
    let n = syslog.len().max(access.len()).max(rfc5424.len());
    let mut out = Vec::with_capacity(3 * n + json.len());
    for i in 0..n {
        out.push(syslog[i % syslog.len()].clone());
        out.push(access[i % access.len()].clone());
        out.push(rfc5424[i % rfc5424.len()].clone());
        if i % 20 == 0 {
            out.push(json[i / 20 % json.len()].clone());
        }
    }
    out
}

/// The raw topic as the shipper fills it: each line keyed by its source
/// (host, fingerprint, path, offset), one partition per file, the read time
/// as the timestamp, lz4.
fn produce(brokers: &str, lines: &[String], events: usize, partitions: i32) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.codec", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut offsets = [0u64; 64];
    for i in 0..events {
        let line = &lines[i % lines.len()];
        let file = i % 64;
        let (host, path) = (format!("web-{}", file % 16), format!("/var/log/app-{}.log", file / 16));
        let meta = SourceMeta {
            host: &host,
            path: &path,
            fingerprint: 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(file as u64 + 1),
            offset: offsets[file],
        };
        offsets[file] += line.len() as u64 + 1;
        // As the shipper's records: the source as the key, one partition per
        // file, stamped with the time the line was read.
        let key = meta.key();
        let ingest_ms = 1_795_341_600_000 + (i / 1000) as i64;
        send_waiting(
            &producer,
            BaseRecord::to(RAW)
                .key(&key)
                .partition(file as i32 % partitions)
                .payload(line)
                .timestamp(ingest_ms),
        );
    }
    producer.flush(Duration::from_secs(600)).expect("flush");
}

/// How fast the stand-in serves the raw topic to a plain consumer.
fn kcat_consume(brokers: &str, events: usize) {
    let started = Instant::now();
    let out = Command::new("kcat")
        .args([
            "-b",
            brokers,
            "-C",
            "-t",
            RAW,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "\n",
        ])
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let n = o.stdout.iter().filter(|&&b| b == b'\n').count();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "stand-in consume (kcat -C, all partitions, {n} of {events} records): {:.0} events/s",
                n as f64 / secs
            );
        }
        Ok(o) => println!("kcat failed: {}", o.status),
        Err(e) => println!("kcat not run ({e}); scripts/setup installs it"),
    }
}

/// Sum of the high watermarks of `topic`'s partitions.
fn produced(c: &BaseConsumer, topic: &str, partitions: i32) -> u64 {
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(5))
                .map_or(0, |(_, hi)| hi.max(0) as u64)
        })
        .sum()
}

fn run_parser(bin_dir: &Path, dir: &Path, brokers: &str, events: usize, partitions: i32) {
    let config = dir.join("parse.toml");
    let ops = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nraw_topic = \"{RAW}\"\nparsed_topic = \"{PARSED}\"\n\
             dead_letter_topic = \"{DLQ}\"\npartitions = {partitions}\n\n\
             [parser]\ngroup_id = \"bench-parser\"\nformat = \"auto\"\n[parser.ops]\nlisten = \"{ops}\"\n"
        ),
    )
    .unwrap();
    let log_path = dir.join("parse.log");
    let child = spawn_logpipe(bin_dir, "parse", &config, &log_path);
    let pid = child.id();
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-watcher")
        .create()
        .expect("consumer");
    // Documents leave several to a parsed record, so records do not count
    // events: the parser's own counter does (updated every 200 ms; it counts
    // an event once parsed, a few ms before Kafka has it). Dead letters are
    // one record each.
    let count = || {
        let parsed = scrape::metrics(&ops).map_or(0.0, |t| {
            scrape::sum(&t, "logpipe_events_total", &[("stage", "parse"), ("outcome", "parsed")])
        });
        parsed as u64 + produced(&watcher, DLQ, partitions)
    };
    let target = events as u64;
    let from = target / 10;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, u64, Duration)> = None;
    let mut peak_rss = 0;
    loop {
        let n = count();
        if let Some((_, peak)) = proc_stats::rss(pid) {
            peak_rss = peak_rss.max(peak);
        }
        if first.is_none() && n >= from {
            first = Some((Instant::now(), n, proc_stats::cpu_time(pid).unwrap_or_default()));
        }
        if n >= target {
            break;
        }
        assert!(
            proc_stats::cpu_time(pid).is_some(),
            "the parser exited; see {}",
            log_path.display()
        );
        assert!(Instant::now() < deadline, "only {n} of {target} after 30 min");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (t0, n0, cpu0) = first.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (proc_stats::cpu_time(pid).unwrap_or_default() - cpu0).as_secs_f64();
    let done = (target - n0) as f64;
    let dead = produced(&watcher, DLQ, partitions);
    println!(
        "logpipe parse (one process, raw -> parsed): {:.0} events/s, {:.2} CPU-s per million events, \
         peak RSS {:.0} MiB ({done:.0} events in {secs:.2} s, parser CPU {cpu:.2} s; {dead} dead letters of {target})",
        done / secs,
        cpu / done * 1e6,
        peak_rss as f64 / 1048576.0
    );
    drop(child);
}
