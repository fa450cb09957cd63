//! Archive benchmarks against the local stand-ins (moto's S3 server, noida-db
//! for Kafka), two numbers:
//!
//! 1. `throughput`: archive MiB/s. Rotated files already shipped (their
//!    checkpoints say so) are compressed and uploaded by the archive library,
//!    4 in parallel; raw bytes / wall time.
//! 2. `drain`: time from a spot notice to the finished drain with
//!    `PENDING` bytes of rotated, unarchived logs (default 1 GiB, the issue's
//!    figure), with the real `logpipe ship` daemon, an IMDSv2 stand-in and S3
//!    paused while the backlog builds.
//!
//! ```sh
//! cargo build --release --bin logpipe --bin archive_bench
//! target/release/archive_bench [throughput|drain|all]   # env: PENDING, THROUGHPUT_BYTES
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use logpipe_benches::services::{free_port, noida_bin, KillOnDrop, Noida};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn start_moto(dir: &Path) -> (KillOnDrop, String) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("moto.log")).unwrap();
    let child = KillOnDrop(
        Command::new(root().join(".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("moto_server (run scripts/setup)"),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if Command::new("curl")
            .args(["-fs", "-X", "PUT", &format!("{url}/bench")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return (child, url);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto did not start");
}

fn lines(bytes: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 200);
    let mut i = seed;
    while out.len() < bytes {
        writeln!(
            out,
            "2026-11-23T08:{:02}:{:02}.{:03}Z web-{} app[{}]: seq={i} GET /api/v1/items/{} 200 {}ms user={}",
            i / 60 % 60,
            i % 60,
            i % 1000,
            i % 7,
            1000 + i % 50,
            i * 7919 % 100_003,
            i % 250,
            i % 997
        )
        .unwrap();
        i += 1;
    }
    out
}

fn archive_cfg(url: &str) -> logpipe_config::ArchiveConfig {
    let text = format!(
        "[shipper]\ndata_dir = \"/tmp\"\n[[shipper.inputs]]\ninclude = [\"/x/*.log\"]\n[shipper.archive]\nbucket = \"bench\"\nendpoint_url = \"{url}\"\nforce_path_style = true\nscan_interval_ms = 50\n"
    );
    logpipe_config::load_str(Path::new("bench.toml"), &text, std::iter::empty())
        .unwrap()
        .shipper
        .unwrap()
        .archive
        .unwrap()
}

fn throughput() {
    let total: usize = std::env::var("THROUGHPUT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512 << 20);
    let dir = tempfile::tempdir().unwrap();
    let (_moto, url) = start_moto(dir.path());
    std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let data = dir.path().join("data");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let files = 8;
    let mut checkpoints = logpipe_shipper::checkpoint::Checkpoints::load(&data).unwrap();
    let mut paths = Vec::new();
    for n in 0..files {
        let p = logs.join(format!("app.log.2026112308{n:02}00000Z"));
        let body = lines(total / files, n * 10_000_000);
        std::fs::write(&p, &body).unwrap();
        let fp = logpipe_shipper::fingerprint::of_prefix(&body[..256]).unwrap();
        checkpoints.set(fp, body.len() as u64, &p.display().to_string(), 0);
        paths.push((p, n as i64));
    }
    checkpoints.persist().unwrap();
    let cfg = archive_cfg(&url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (secs, bytes) = rt.block_on(async {
        let ar = logpipe_shipper::archive::Archive::open(&cfg, &data, "bench-host")
            .await
            .unwrap();
        for (p, n) in &paths {
            ar.enqueue_rotated(p, &logs.join("app.log"), 1_795_420_000_000 + n)
                .unwrap();
        }
        let (_, bytes) = ar.backlog();
        let t = Instant::now();
        loop {
            ar.schedule(false);
            if ar.pending_jobs().is_empty() && !ar.busy() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (t.elapsed().as_secs_f64(), bytes)
    });
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "archive throughput: {mib:.0} MiB raw in {files} files, zstd level 3, 4 parallel uploads to moto: {secs:.2} s = {:.1} MiB/s",
        mib / secs
    );
}

/// IMDSv2 stand-in: token PUT, then instance-action (404 until `notice`).
fn imds(notice: Arc<Mutex<bool>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut req = String::new();
            let _ = r.read_line(&mut req);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let (status, body) = if req.starts_with("PUT /latest/api/token") {
                ("200 OK", "tok".to_string())
            } else if *notice.lock().unwrap() {
                (
                    "200 OK",
                    r#"{"action":"terminate","time":"2026-11-23T09:00:00Z"}"#.to_string(),
                )
            } else {
                ("404 Not Found", String::new())
            };
            let mut c = c;
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn drain() {
    let pending: usize = std::env::var("PENDING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let dir = tempfile::tempdir().unwrap();
    let (moto, s3) = start_moto(dir.path());
    let noida = Noida::start(&noida_bin(), dir.path(), true).expect("noida-db");
    let notice = Arc::new(Mutex::new(false));
    let imds_url = imds(notice.clone());
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = dir.path().join("logpipe.toml");
    std::fs::write(
        &config,
        format!(
            r#"[host]
name = "bench"
[kafka]
brokers = "{kafka}"
[shipper]
data_dir = "{data}"
[[shipper.inputs]]
include = ["{logs}/*.log"]
[shipper.inputs.rotation]
policy = "own"
max_bytes = 67108864
max_age_secs = 0
[shipper.ops]
listen = "127.0.0.1:0"
[shipper.archive]
bucket = "bench"
endpoint_url = "{s3}"
force_path_style = true
scan_interval_ms = 200
[shipper.spot]
enabled = true
imds_endpoint = "{imds_url}"
poll_interval_ms = 200
"#,
            kafka = noida.kafka,
            data = dir.path().join("data").display(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    let bin = std::env::var_os("LOGPIPE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/logpipe"));
    let shipper_log = std::fs::File::create(dir.path().join("ship.log")).unwrap();
    let mut ship = KillOnDrop(
        Command::new(bin)
            .args(["ship", "--config"])
            .arg(&config)
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(shipper_log.try_clone().unwrap())
            .stderr(shipper_log)
            .spawn()
            .expect("target/release/logpipe (cargo build --release --bin logpipe)"),
    );
    std::thread::sleep(Duration::from_secs(2));
    // The backlog: S3 away while the application writes `pending` bytes.
    unsafe { libc::kill(moto.0.id() as i32, libc::SIGSTOP) };
    let live = logs.join("app.log");
    let chunk = lines(8 << 20, 0);
    let mut written = 0;
    let t = Instant::now();
    while written < pending {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live)
            .unwrap();
        f.write_all(&chunk).unwrap();
        written += chunk.len();
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "wrote {} MiB in {:.1} s; waiting for rotation to catch up",
        written >> 20,
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(moto.0.id() as i32, libc::SIGCONT) };
    *notice.lock().unwrap() = true;
    let noticed = Instant::now();
    let manifest = dir.path().join("data/last-drain-manifest.json");
    while !manifest.exists() && noticed.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let secs = noticed.elapsed().as_secs_f64();
    let _ = ship.0.wait();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap_or_default()).unwrap_or_default();
    let archived = m["archived"].as_array().map(|a| a.len()).unwrap_or(0);
    let raw: u64 = m["archived"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["end"].as_u64().unwrap_or(0) - e["start"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    println!(
        "spot drain: {} MiB pending -> notice to manifest {secs:.1} s (deadline 90 s, met: {}); {archived} objects, {} MiB raw archived during the drain, {} not archived",
        pending >> 20,
        m["deadline_met"],
        raw >> 20,
        m["not_archived"].as_array().map(|a| a.len()).unwrap_or(0)
    );
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if what == "throughput" || what == "all" {
        throughput();
    }
    if what == "drain" || what == "all" {
        drain();
    }
}
