//! The raw archive against real servers: noida-db (Kafka) and moto's S3.
//! Rotation under write load, a crash in the middle of a multipart upload,
//! S3 unreachable for 30 s, and a bucket that is missing or forbidden.

mod services;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use services::s3::{archive_section, spot_section, Moto};
use services::{wait_for, Daemon, Services, Setup};

const BUCKET: &str = "archive-test";

/// One test at a time: each runs Kafka, S3 and a shipper, and the machine
/// has two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn rotation(max_bytes: u64) -> String {
    format!(
        r#"
[shipper.inputs.rotation]
policy = "own"
max_bytes = {max_bytes}
max_age_secs = 0
"#
    )
}

/// Rotated files (`*.log.<timestamp>`) in `dir`.
fn rotated_on_disk(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().contains(".log.2"))
        .collect();
    v.sort();
    v
}

/// Appends lines like an application that reopens its file for every batch.
struct Writer {
    path: PathBuf,
    written: Vec<u8>,
    seq: usize,
}

impl Writer {
    fn new(path: PathBuf) -> Writer {
        Writer {
            path,
            written: Vec::new(),
            seq: 0,
        }
    }

    fn batch(&mut self, lines: usize) {
        let mut buf = Vec::new();
        for _ in 0..lines {
            writeln!(
                buf,
                "2026-11-23T08:00:00.000Z host=web-1 level=info seq={} msg=\"request served\" path=/api/v1/items/{}",
                self.seq,
                self.seq * 7919 % 100_003
            )
            .unwrap();
            self.seq += 1;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        f.write_all(&buf).unwrap();
        self.written.extend_from_slice(&buf);
    }
}

/// The archived objects of one live file, decompressed (SHA-256 checked),
/// in rotation order, each starting where the previous one ended.
fn archived_bytes(moto: &Moto) -> Vec<u8> {
    let mut objects: Vec<(String, u64, Vec<u8>)> = moto
        .keys(BUCKET, "raw/")
        .into_iter()
        .filter(|k| !k.contains("/manifests/"))
        .map(|k| {
            let (raw, meta) = moto.get_raw(BUCKET, &k);
            let start = meta["logpipe-start-offset"].parse().unwrap();
            (meta["logpipe-rotated-at"].clone(), start, raw)
        })
        .collect();
    objects.sort();
    let mut out = Vec::new();
    for (_, start, raw) in objects {
        assert_eq!(start, 0, "a rotated file is archived whole");
        out.extend_from_slice(&raw);
    }
    out
}

fn archive_json(data: &Path) -> serde_json::Value {
    std::fs::read(data.join("archive.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn jobs_pending(data: &Path) -> usize {
    archive_json(data)["jobs"].as_array().map_or(0, |a| a.len())
}

#[test]
fn rotation_under_write_load_archives_every_byte() {
    let _serial = serial();
    let services = Services::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let extra = format!(
        "{}{}{}",
        rotation(256 * 1024),
        archive_section(&moto, BUCKET, ""),
        spot_section(None, 10)
    );
    let setup = Setup::new(&services, &extra);
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let live = setup.logs.join("app.log");
    let mut w = Writer::new(live.clone());
    // ~3 MB at a steady rate: about a dozen rotations while writing.
    for _ in 0..250 {
        w.batch(100);
        std::thread::sleep(Duration::from_millis(10));
    }
    let data = setup.dir.path().join("data");
    let done = wait_for(Duration::from_secs(120), || {
        shipper.assert_running();
        rotated_on_disk(&setup.logs).is_empty() && jobs_pending(&data) == 0 && moto.keys(BUCKET, "raw/").len() >= 4
    });
    assert!(
        done,
        "rotated files left: {:?}, jobs: {}\n{}",
        rotated_on_disk(&setup.logs),
        jobs_pending(&data),
        shipper.log()
    );
    let mut all = archived_bytes(&moto);
    all.extend_from_slice(&std::fs::read(&live).unwrap());
    assert_eq!(all.len(), w.written.len(), "archived + live bytes vs written");
    assert!(
        all == w.written,
        "archived objects + live file differ from what was written"
    );

    // The auditor's commands: filters by host and date, get, verify.
    let keys: Vec<String> = moto.keys(BUCKET, "raw/");
    let today = utc_today();
    let (ok, out) = cli(&setup.config, &["ls", "--host", "test-host", "--date", &today]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), keys.len(), "{out}");
    let (ok, out) = cli(&setup.config, &["ls", "--host", "other-host"]);
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, out) = cli(&setup.config, &["ls", "--to", "2000-01-01"]);
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, out) = cli(&setup.config, &["ls", "--date", "yesterday"]);
    assert!(!ok && out.contains("expected YYYY-MM-DD"), "{out}");
    let got = setup.dir.path().join("got.log");
    let (ok, out) = cli(&setup.config, &["get", &keys[0], "-o", got.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(&got).unwrap(), moto.get_raw(BUCKET, &keys[0]).0);
    let (ok, out) = cli(&setup.config, &["verify"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK\t")).count(),
        keys.len(),
        "{out}"
    );
    assert!(shipper.terminate(Duration::from_secs(60)), "{}", shipper.log());
}

/// Lines of pseudo-random hex, so they compress only about 2:1 and the
/// object needs several 5 MiB parts.
fn incompressible_lines(bytes: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(bytes + 70_000);
    let mut n = 0u64;
    while out.len() < bytes {
        write!(out, "{n:08} ").unwrap();
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            write!(out, "{:016x}", x).unwrap();
        }
        out.push(b'\n');
        n += 1;
    }
    out
}

#[test]
fn crash_in_the_middle_of_a_multipart_upload_resumes_to_exactly_one_object() {
    let _serial = serial();
    let services = Services::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let extra = format!(
        "{}{}{}",
        rotation(32 * 1024 * 1024),
        archive_section(
            &moto,
            BUCKET,
            "part_size_bytes = 5242880\nmultipart_threshold_bytes = 5242880\nparallel_uploads = 1"
        ),
        spot_section(None, 10)
    );
    let setup = Setup::new(&services, &extra);
    let data = setup.dir.path().join("data");
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let live = setup.logs.join("app.log");
    let content = incompressible_lines(48 * 1024 * 1024);
    std::fs::write(&live, &content).unwrap();

    // Kill -9 as soon as the state says a multipart upload is under way.
    let mut caught = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let st = archive_json(&data);
        if st["jobs"]
            .as_array()
            .is_some_and(|j| j.iter().any(|j| j["upload_id"].as_str().is_some()))
        {
            shipper.kill9();
            caught = true;
            break;
        }
        shipper.assert_running();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(caught, "never saw a multipart upload in progress\n{}", shipper.log());
    assert_eq!(rotated_on_disk(&setup.logs).len(), 1, "the rotated file waits on disk");

    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let done = wait_for(Duration::from_secs(180), || {
        shipper.assert_running();
        rotated_on_disk(&setup.logs).is_empty() && jobs_pending(&data) == 0
    });
    assert!(done, "not archived after the restart\n{}", shipper.log());
    let keys = moto.keys(BUCKET, "raw/");
    assert_eq!(keys.len(), 1, "exactly one object: {keys:?}");
    let (raw, meta) = moto.get_raw(BUCKET, &keys[0]);
    assert!(raw == content, "the object is the file, byte for byte");
    assert_eq!(meta["logpipe-raw-bytes"], content.len().to_string());
    assert!(moto.open_uploads(BUCKET).is_empty(), "no multipart upload left behind");
    // The auditor's command agrees.
    let out = Command::new(env!("CARGO_BIN_EXE_logpipe"))
        .args(["archive", "verify", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("OK\t") && stdout.lines().count() == 1, "{stdout}");
    assert!(shipper.terminate(Duration::from_secs(60)), "{}", shipper.log());
}

#[test]
fn s3_unreachable_for_30s_files_wait_then_everything_uploads() {
    let _serial = serial();
    let services = Services::start();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let extra = format!(
        "{}{}{}",
        rotation(64 * 1024),
        archive_section(&moto, BUCKET, ""),
        spot_section(None, 10)
    );
    let setup = Setup::new(&services, &extra);
    let data = setup.dir.path().join("data");
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let live = setup.logs.join("app.log");
    let mut w = Writer::new(live.clone());

    moto.pause();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(30) {
        if w.written.len() < 800 * 1024 {
            w.batch(50);
        }
        std::thread::sleep(Duration::from_millis(50));
        shipper.assert_running();
    }
    let waiting = rotated_on_disk(&setup.logs);
    assert!(waiting.len() >= 5, "rotated files wait on disk: {waiting:?}");
    let on_disk: usize = waiting
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len() as usize)
        .sum::<usize>()
        + std::fs::metadata(&live).unwrap().len() as usize;
    assert_eq!(on_disk, w.written.len(), "nothing was deleted while S3 was down");
    moto.resume();

    let done = wait_for(Duration::from_secs(120), || {
        shipper.assert_running();
        rotated_on_disk(&setup.logs).is_empty() && jobs_pending(&data) == 0
    });
    assert!(done, "not everything uploaded after S3 came back\n{}", shipper.log());
    let mut all = archived_bytes(&moto);
    all.extend_from_slice(&std::fs::read(&live).unwrap());
    assert!(all == w.written, "archived + live differ from written");
    assert!(shipper.terminate(Duration::from_secs(60)), "{}", shipper.log());
}

fn utc_today() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn cli(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_logpipe"))
        .arg("archive")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Rotates a few files into a bucket that cannot take them; they must stay.
fn files_stay_with(moto: &Moto, bucket: &str, expect: &str) {
    let _serial = serial();
    let services = Services::start();
    let extra = format!(
        "{}{}{}",
        rotation(64 * 1024),
        archive_section(moto, bucket, ""),
        spot_section(None, 10)
    );
    let setup = Setup::new(&services, &extra);
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let live = setup.logs.join("app.log");
    let mut w = Writer::new(live.clone());
    for _ in 0..30 {
        w.batch(50);
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = wait_for(Duration::from_secs(30), || shipper.log().contains(expect));
    assert!(seen, "expected `{expect}` in the log\n{}", shipper.log());
    // Several scan rounds later, still nothing removed.
    std::thread::sleep(Duration::from_secs(3));
    let waiting = rotated_on_disk(&setup.logs);
    assert!(waiting.len() >= 2, "{waiting:?}");
    let on_disk: usize = waiting
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len() as usize)
        .sum::<usize>()
        + std::fs::metadata(&live).unwrap().len() as usize;
    assert_eq!(on_disk, w.written.len(), "every byte still on disk");
    let (ok, out) = cli(&setup.config, &["ls"]);
    assert!(!ok, "ls must fail: {out}");
    assert!(out.contains(expect), "{out}");
    assert!(shipper.terminate(Duration::from_secs(60)), "{}", shipper.log());
}

#[test]
fn a_missing_bucket_is_a_clear_error_and_keeps_the_files() {
    let moto = Moto::start();
    files_stay_with(&moto, "no-such-bucket", "S3 bucket `no-such-bucket` does not exist");
}

#[test]
fn access_denied_is_a_clear_error_and_keeps_the_files() {
    // moto with IAM enforced: the test credentials belong to no user.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    files_stay_with(
        &moto,
        "forbidden-bucket",
        "access denied to S3 bucket `forbidden-bucket`",
    );
}
