//! The local stand-ins the bench programs run against, started the same way
//! by each: noida-db (Kafka, and Elasticsearch when asked) on free loopback
//! ports with a fresh data dir, killed when the bench ends however it ends.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop. It is sent SIGCONT first, so one a bench
/// paused (SIGSTOP, to play an outage) dies too.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: a plain signal to our own child, which has not been reaped.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGCONT) };
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `logpipe ROLE --config CONFIG` from `bin_dir` (the release build
/// beside the bench), warnings only, its output appended to `log`.
pub fn spawn_logpipe(bin_dir: &Path, role: &str, config: &Path, log: &Path) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new(bin_dir.join("logpipe"))
            .args([role, "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("logpipe (build it with --release)"),
    )
}

/// Enqueues a record, waiting while the producer's local queue is full: a
/// prefill must not drop what it counts on.
pub fn send_waiting<K, P>(producer: &ThreadedProducer<DefaultProducerContext>, mut record: BaseRecord<'_, K, P>)
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    while let Err((_, r)) = producer.send(record) {
        record = r;
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `$LOGPIPE_NOIDA_DB`, else the binary scripts/setup links into the repo's `.venv`.
pub fn noida_bin() -> PathBuf {
    std::env::var_os("LOGPIPE_NOIDA_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("benches/ is inside the repo")
                .join(".venv/bin/noida-db-server")
        })
}

/// A running noida-db.
pub struct Noida {
    /// `127.0.0.1:port` of its Kafka listener.
    pub kafka: String,
    /// `127.0.0.1:port` of its Elasticsearch API, when started with it.
    pub es: Option<String>,
    pub process: KillOnDrop,
}

impl Noida {
    /// Starts `bin` with its data in `dir/db` and its output in `dir/noida.log`,
    /// and waits (up to 30 s) until its ports accept connections.
    pub fn start(bin: &Path, dir: &Path, with_elasticsearch: bool) -> anyhow::Result<Noida> {
        if !bin.exists() {
            bail!("{} not found: run scripts/setup first", bin.display());
        }
        let (kafka_port, es_port) = (free_port(), free_port());
        let log_path = dir.join("noida.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(bin);
        cmd.args(["start", "--data-dir"])
            .arg(dir.join("db"))
            .args(["--kafka-port", &kafka_port.to_string()]);
        // `--elasticsearch-port` is refused unless that service is enabled.
        if with_elasticsearch {
            cmd.args([
                "--only",
                "kafka,elasticsearch",
                "--elasticsearch-port",
                &es_port.to_string(),
            ]);
        } else {
            cmd.args(["--only", "kafka"]);
        }
        let child = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let noida = Noida {
            kafka: format!("127.0.0.1:{kafka_port}"),
            es: with_elasticsearch.then(|| format!("127.0.0.1:{es_port}")),
            process: KillOnDrop(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in std::iter::once(&noida.kafka).chain(&noida.es) {
            while TcpStream::connect(addr).is_err() {
                if Instant::now() > deadline {
                    bail!("noida-db did not open {addr} within 30 s; see {}", log_path.display());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(noida)
    }
}
