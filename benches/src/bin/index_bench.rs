//! Indexer throughput: fills a parsed topic with realistic ECS documents and
//! runs one `logpipe index` (release build) against (a) the Elasticsearch
//! stand-in and (b) `bulk_sink`, an endpoint that accepts instantly.
//! Reports events/s and CPU-seconds per million events of the indexer
//! process, measured between 10% and 100% of the documents (start-up and
//! template install excluded).
//!
//! Also reports how fast the stand-in hands the same topic to a plain
//! consumer that does nothing with it (`source`): the most any consumer of
//! this stand-in can reach, whatever it does.
//!
//! Usage (after `cargo build --release -p logpipe -p logpipe-benches --bins`):
//!   LOGPIPE_NOIDA_DB=.venv/bin/noida-db-server target/release/index_bench [events] [sink|standin|both]
//! `INDEX_BENCH_INDEXER="compression_level = 6"` adds lines to the
//! indexer's `[indexer]` section.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logpipe_benches::proc_stats;
use logpipe_benches::services::{free_port, noida_bin, send_waiting, spawn_logpipe, KillOnDrop, Noida};
use logpipe_schemas::parsed;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let which = std::env::args().nth(2).unwrap_or_else(|| "both".into());
    let bin_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let noida = Noida::start(&noida_bin(), dir.path(), true).expect("starting noida-db");
    let brokers = noida.kafka.clone();
    let es = noida.es.clone().expect("started with Elasticsearch");
    // Up is not ready: wait until its Elasticsearch API answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&es, "/").is_none() {
        assert!(Instant::now() < deadline, "noida-db did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let topic = "bench-parsed";
    let started = Instant::now();
    produce(&brokers, topic, events);
    eprintln!(
        "produced {events} documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    source_rate(&brokers, topic, events);
    let others = [("noida-db", noida.process.id())];

    if which == "sink" || which == "both" {
        let port = free_port();
        let _sink = KillOnDrop(
            Command::new(bin_dir.join("bulk_sink"))
                .arg(port.to_string())
                .stderr(Stdio::null())
                .spawn()
                .expect("bulk_sink (build it with --bins)"),
        );
        let sink_pid = _sink.id();
        let sink = format!("127.0.0.1:{port}");
        let up = Instant::now() + Duration::from_secs(10);
        while get(&sink, "/").is_none() {
            assert!(Instant::now() < up, "bulk_sink did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        run(
            "minimal bulk endpoint",
            &bin_dir,
            dir.path(),
            &brokers,
            topic,
            &sink,
            events,
            &[others[0], ("bulk_sink", sink_pid)],
            || count(&get(&sink, "/_count")?),
        );
    }
    if which == "standin" || which == "both" {
        run(
            "noida-db stand-in",
            &bin_dir,
            dir.path(),
            &brokers,
            topic,
            &es,
            events,
            &others,
            || {
                let _ = post(&es, "/bench-*/_refresh");
                count(&get(&es, "/bench-*/_count")?)
            },
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    name: &str,
    bin_dir: &Path,
    dir: &Path,
    brokers: &str,
    topic: &str,
    es: &str,
    events: usize,
    others: &[(&str, u32)],
    mut count: impl FnMut() -> Option<u64>,
) {
    let extra = std::env::var("INDEX_BENCH_INDEXER").unwrap_or_default();
    let group = format!("bench-{}", name.replace(' ', "-"));
    let config = dir.join(format!("{group}.toml"));
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nparsed_topic = \"{topic}\"\ndead_letter_topic = \"bench-dlq\"\n\n\
             [elasticsearch]\nurl = \"http://{es}\"\n\n[indexer]\ngroup_id = \"{group}\"\n\
             index_pattern = \"bench-%Y.%m.%d\"\n{extra}\n[indexer.ops]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let child = spawn_logpipe(bin_dir, "index", &config, &dir.join(format!("{group}.log")));
    let pid = child.0.id();
    let target = events as u64;
    let from = target / 10;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, u64, f64, Vec<f64>)> = None;
    loop {
        let n = count().unwrap_or(0);
        if first.is_none() && n >= from {
            let o = others.iter().map(|(_, p)| cpu_seconds(*p)).collect();
            first = Some((Instant::now(), n, cpu_seconds(pid), o));
        }
        if n >= target {
            break;
        }
        assert!(Instant::now() < deadline, "{name}: only {n} of {target} after 30 min");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (t0, n0, cpu0, others0) = first.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let docs = (target - n0) as f64;
    let mut rest = String::new();
    for ((who, p), c0) in others.iter().zip(others0) {
        rest += &format!(", {who} {:.2}", (cpu_seconds(*p) - c0) / docs * 1e6);
    }
    println!(
        "{name}: {:.0} events/s, {:.2} CPU-s per million events ({docs:.0} events in {secs:.2} s, indexer CPU {cpu:.2} s; \
         CPU-s per million of the others{rest})",
        docs / secs,
        cpu / docs * 1e6
    );
    drop(child);
}

/// Reads the whole topic with a plain consumer that only counts documents, twice (the
/// first read also warms the stand-in), and prints the faster rate.
fn source_rate(brokers: &str, topic: &str, events: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let mut best = 0f64;
    for _ in 0..2 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "bench-source")
            .set("enable.auto.commit", "false")
            .set("receive.message.max.bytes", "1000000000")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).expect("assign");
        let started = Instant::now();
        let mut n = 0usize;
        while n < events {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(m)) => {
                    use rdkafka::message::{Headers, Message};
                    // Documents, not records: the count a batch record's header gives.
                    n += m
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == parsed::HEADER_DOCS)?.value)
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                        .unwrap_or(1)
                }
                Some(Err(e)) => panic!("consuming {topic}: {e}"),
                None => panic!("{topic}: only {n} of {events} records after a 10 s wait"),
            }
        }
        best = best.max(n as f64 / started.elapsed().as_secs_f64());
    }
    println!("source (the stand-in to a plain consumer that only counts): {best:.0} events/s");
}

/// A parsed ECS document like the parser emits for a syslog line (~600 bytes).
fn produce(brokers: &str, topic: &str, events: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.codec", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    // As the parser writes them: batch records (`logpipe_schemas::parsed`)
    // of as many documents as fit in 256 KiB.
    let mut batch = Vec::new();
    let mut docs = 0usize;
    let flush = |batch: &mut Vec<u8>, docs: &mut usize| {
        if *docs == 0 {
            return;
        }
        let count = docs.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: parsed::HEADER_DOCS,
            value: Some(count.as_str()),
        });
        send_waiting(
            &producer,
            BaseRecord::<(), [u8]>::to(topic).payload(&batch[..]).headers(headers),
        );
        batch.clear();
        *docs = 0;
    };
    for i in 0..events {
        let key = format!(
            "web-{}:{:016x}:{}",
            i % 7,
            0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1),
            i * 187
        );
        let payload = format!(
            concat!(
                r#"{{"@timestamp":"2026-11-22T10:{:02}:{:02}.{:06}Z","message":"Accepted publickey for deploy from 10.0.{}.{} port {} ssh2: RSA SHA256:8Yx2k0Qv","#,
                r#""event":{{"original":"<38>Nov 22 10:{:02}:{:02} web-{} sshd[{}]: Accepted publickey for deploy from 10.0.{}.{} port {} ssh2","ingested":"2026-11-22T10:00:01.000000Z","dataset":"system.auth"}},"#,
                r#""host":{{"name":"web-{}"}},"log":{{"file":{{"path":"/var/log/auth.log"}},"offset":{},"syslog":{{"facility":{{"code":4}},"severity":{{"code":6}}}}}},"#,
                r#""process":{{"name":"sshd","pid":{}}},"ecs":{{"version":"8.11.0"}}}}"#
            ),
            (i / 60) % 60,
            i % 60,
            i % 1_000_000,
            i % 250,
            i % 200,
            40000 + i % 20000,
            (i / 60) % 60,
            i % 60,
            i % 7,
            1000 + i % 5000,
            i % 250,
            i % 200,
            40000 + i % 20000,
            i % 7,
            i * 187,
            1000 + i % 5000
        );
        parsed::push_doc(&mut batch, key.as_bytes(), |o| o.extend_from_slice(payload.as_bytes()));
        docs += 1;
        if batch.len() >= 256 * 1024 {
            flush(&mut batch, &mut docs);
        }
    }
    flush(&mut batch, &mut docs);
    producer.flush(Duration::from_secs(300)).expect("flush");
}

/// utime + stime of a process, in seconds; 0 once it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    proc_stats::cpu_time(pid).map_or(0.0, |d| d.as_secs_f64())
}

fn count(body: &str) -> Option<u64> {
    let i = body.find("\"count\":")? + 8;
    body[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn get(addr: &str, path: &str) -> Option<String> {
    http(addr, "GET", path)
}

fn post(addr: &str, path: &str) -> Option<String> {
    http(addr, "POST", path)
}

fn http(addr: &str, method: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}
