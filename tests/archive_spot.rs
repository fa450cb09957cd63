//! The spot-interruption drain against real servers: noida-db (Kafka), moto
//! (S3) and an IMDSv2 server. A backlog of rotated files builds up while S3
//! is paused, the writer keeps writing at full rate, then the notice comes:
//! the drain must finish within the deadline, write a correct manifest, and
//! every line written before the notice must be in Kafka or in S3.
//!
//! The backlog is the 1 GiB (about 5 minutes at the 4 MiB/s write
//! rate, side by side with the rest of the suite);
//! `LOGPIPE_TEST_SPOT_PENDING_BYTES` changes it for a quicker local run.

mod services;

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use services::imds::Imds;
use services::s3::{archive_section, spot_section, Moto};
use services::{unique, wait_for, Daemon, Services, Setup};

const BUCKET: &str = "spot-test";
const DEADLINE_SECS: u64 = 90;

fn seq_of(line: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(line).ok()?;
    let rest = &s[s.find("seq=")? + 4..];
    rest[..rest.find(' ')?].parse().ok()
}

/// Writes numbered lines to `path` as fast as `rate` bytes/s allows,
/// reopening the file for every batch like an application that reopens after
/// rotation, until `stop`.
fn writer(path: PathBuf, rate: usize, stop: Arc<AtomicBool>, written_bytes: Arc<AtomicUsize>, seq: Arc<AtomicUsize>) {
    let start = Instant::now();
    let pad = "x".repeat(60);
    while !stop.load(Ordering::SeqCst) {
        let allowed = (start.elapsed().as_secs_f64() * rate as f64) as usize;
        if written_bytes.load(Ordering::SeqCst) >= allowed {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let mut buf = Vec::with_capacity(128 * 1000);
        for _ in 0..1000 {
            let n = seq.load(Ordering::SeqCst);
            writeln!(buf, "2026-11-23T08:00:00Z web-1 app: seq={n} {pad}").unwrap();
            seq.store(n + 1, Ordering::SeqCst);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&buf).unwrap();
        written_bytes.fetch_add(buf.len(), Ordering::SeqCst);
    }
}

#[test]
fn spot_notice_with_a_backlog_drains_within_the_deadline_and_loses_nothing() {
    let pending: usize = std::env::var("LOGPIPE_TEST_SPOT_PENDING_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    // "Full rate" for a busy application; LOGPIPE_TEST_SPOT_RATE (bytes/s) raises it.
    let rate: usize = std::env::var("LOGPIPE_TEST_SPOT_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 << 20);
    let services = Services::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let imds = Imds::start();
    let extra = format!(
        "\n[shipper.inputs.rotation]\npolicy = \"own\"\nmax_bytes = {}\nmax_age_secs = 0\n{}{}",
        8 << 20,
        archive_section(&moto, BUCKET, ""),
        spot_section(Some(&imds.url), DEADLINE_SECS)
    );
    let setup = Setup::new(&services, &extra);
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    assert!(
        wait_for(Duration::from_secs(20), || imds.polls.load(Ordering::SeqCst) > 0),
        "the shipper never asked IMDS (with a valid token)\n{}",
        shipper.log()
    );

    // Backlog: S3 away while the application writes.
    moto.pause();
    let stop = Arc::new(AtomicBool::new(false));
    let (bytes, seq) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let w = {
        let (p, s, b, q) = (setup.logs.join("app.log"), stop.clone(), bytes.clone(), seq.clone());
        std::thread::spawn(move || writer(p, rate, s, b, q))
    };
    while bytes.load(Ordering::SeqCst) < pending {
        shipper.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }

    // The notice, at full write rate.
    moto.resume();
    imds.set_notice("2026-11-23T09:00:00Z");
    let noticed = Instant::now();
    let before_notice = seq.load(Ordering::SeqCst);
    let manifest_path = setup.dir.path().join("data/last-drain-manifest.json");
    let drained = wait_for(Duration::from_secs(DEADLINE_SECS + 30), || manifest_path.exists());
    let drain_secs = noticed.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    w.join().unwrap();
    assert!(drained, "no manifest within the deadline\n{}", shipper.log());
    assert!(
        drain_secs <= DEADLINE_SECS as f64 + 1.0,
        "drain took {drain_secs:.1}s (deadline {DEADLINE_SECS}s)"
    );
    assert!(shipper.terminate(Duration::from_secs(30)), "{}", shipper.log());

    // The manifest is in S3 and says what is there.
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let mkeys = moto.keys(BUCKET, "raw/test-host/manifests/");
    assert_eq!(mkeys.len(), 1, "{mkeys:?}");
    let (body, _) = moto.get(BUCKET, &mkeys[0]);
    let in_s3: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(in_s3, manifest);
    assert_eq!(manifest["reason"], "spot");
    assert_eq!(manifest["deadline_met"], true, "{manifest:#}");
    assert_eq!(manifest["not_archived"].as_array().unwrap().len(), 0, "{manifest:#}");
    let archived = manifest["archived"].as_array().unwrap();
    assert!(!archived.is_empty());

    // Every line written before the notice is in S3 or in Kafka.
    let mut seen = HashSet::new();
    let all_keys: HashSet<String> = moto.keys(BUCKET, "raw/").into_iter().collect();
    for a in archived {
        let key = a["key"].as_str().unwrap();
        assert!(all_keys.contains(key), "manifest lists {key}, which is not in S3");
        let (raw, meta) = moto.get_raw(BUCKET, key);
        assert_eq!(meta["logpipe-sha256"], a["sha256"].as_str().unwrap());
        assert_eq!(
            raw.len() as u64,
            a["end"].as_u64().unwrap() - a["start"].as_u64().unwrap(),
            "{key}: manifest range"
        );
    }
    for key in all_keys.iter().filter(|k| !k.contains("/manifests/")) {
        let (raw, _) = moto.get_raw(BUCKET, key);
        seen.extend(raw.split(|b| *b == b'\n').filter_map(seq_of));
    }
    let in_s3_only = seen.len();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", unique("spot-check"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&setup.raw_topic]).unwrap();
    let mut last = Instant::now();
    let mut from_kafka = 0usize;
    while last.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            if let Some(s) = m.payload().and_then(seq_of) {
                seen.insert(s);
                from_kafka += 1;
            }
            last = Instant::now();
        }
    }
    let missing: Vec<usize> = (0..before_notice).filter(|s| !seen.contains(s)).take(10).collect();
    assert!(
        missing.is_empty(),
        "lines written before the notice in neither Kafka nor S3 (first 10): {missing:?}; {before_notice} written, {in_s3_only} in S3, {from_kafka} in Kafka"
    );
    eprintln!(
        "spot drain: {pending} bytes pending, drained in {drain_secs:.1}s; {before_notice} lines before the notice, {in_s3_only} in S3, {from_kafka} in Kafka"
    );
}
