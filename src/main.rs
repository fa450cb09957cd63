//! `logpipe`: one binary, one subcommand per role. Wiring only: each role's
//! behaviour lives in its crate.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use logpipe_config::Config;
use logpipe_core::{ops, shutdown};

mod archive_cli;

/// jemalloc instead of glibc's malloc, for Rust and for librdkafka alike (the
/// crate's unprefixed feature exports `malloc`/`free` from this binary).
/// librdkafka allocates each record and its headers on the thread that
/// produces and frees them on its broker thread; with glibc that cross-thread
/// free takes the producing thread's arena lock, and the profile of `logpipe
/// ship` showed a third of its CPU in malloc, free and the futex wake-ups of
/// that lock. jemalloc's per-thread caches make it cheap (Vector, which also
/// embeds librdkafka, ships with jemalloc for the same kind of reason).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's built-in options (`MALLOC_CONF` in the environment still
/// overrides them). Freed pages go straight back to the kernel once they
/// have been unused for ten seconds (jemalloc's default delay; no lazy
/// `MADV_FREE` stage, whose pages would still count as resident). A one-second
/// delay kept RSS no lower in the burst bench (shipper peaks 34-40 MiB
/// with it, 35-45 MiB without) but returned pages that were needed again moments
/// later: 18,000 page faults a second across the daemons at 166K events/s
/// instead of 9,000, each a zeroed page (`clear_page_erms` was 4% of a parser).
#[allow(non_upper_case_globals)]
#[export_name = "malloc_conf"]
pub static malloc_conf: &[u8; 38] = b"dirty_decay_ms:10000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "logpipe",
    version,
    about = "Lossless log shipping: files and syslog to Kafka, parsed to ECS, indexed in Elasticsearch",
    long_about = "Lossless log shipping: files and syslog to Kafka, parsed to ECS, indexed in Elasticsearch.\n\n\
        Run `logpipe ship` on every host, and `logpipe parse` and `logpipe index` (as many as you\n\
        like, each group shares the work) anywhere that reaches Kafka and Elasticsearch. All three\n\
        read one TOML file (see config/examples/logpipe.toml); LOGPIPE__SECTION__KEY environment\n\
        variables override any key, e.g. LOGPIPE__KAFKA__BROKERS=10.0.0.5:9092."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tail files and ship every line to the Kafka raw topic.
    Ship {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Parse the raw topic into ECS documents on the parsed topic (or, with
    /// --stdin, parse standard input to standard output).
    Parse {
        #[arg(long, short, required_unless_present = "stdin")]
        config: Option<PathBuf>,
        /// Read lines from standard input and print one JSON document (or dead letter) per line.
        #[arg(long)]
        stdin: bool,
        /// With --stdin: auto, rfc5424, rfc3164, json, access, logfmt.
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Bulk-write the parsed topic to Elasticsearch.
    Index {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Read the raw archive in S3 (shipper.archive): list, fetch, verify.
    Archive {
        #[command(subcommand)]
        command: archive_cli::ArchiveCommand,
    },
    /// Check a config file and print every problem with its file, key and expectation.
    ValidateConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ValidateConfig { config } => validate(&config),
        Command::Parse {
            stdin: true, format, ..
        } => parse_stdin(&format),
        Command::Parse {
            config: Some(config), ..
        } => daemon(&config, Role::Parse),
        Command::Parse { config: None, .. } => unreachable!("clap requires --config without --stdin"),
        Command::Ship { config } => daemon(&config, Role::Ship),
        Command::Index { config } => daemon(&config, Role::Index),
        Command::Archive { command } => load(command.config()).and_then(|c| archive_cli::run(command, &c)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logpipe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    logpipe_config::load(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid configuration:\n  {}", lines.join("\n  "))
    })
}

fn validate(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let roles: Vec<&str> = [
        ("shipper", config.shipper.is_some()),
        ("parser", config.parser.is_some()),
        ("indexer", config.indexer.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    println!(
        "{}: OK (roles: {})",
        path.display(),
        if roles.is_empty() {
            "none".into()
        } else {
            roles.join(", ")
        }
    );
    Ok(())
}

fn parse_stdin(format: &str) -> anyhow::Result<()> {
    let format: logpipe_parser::Format = format.parse().map_err(|e: String| anyhow::anyhow!("--format: {e}"))?;
    let ingest = logpipe_core::now_ms() * 1000;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut doc = Vec::new();
    for line in stdin.split(b'\n') {
        let line = line.context("reading standard input")?;
        let ctx = logpipe_parser::LineContext {
            ingest,
            ..Default::default()
        };
        match logpipe_parser::parse(format, &line, &ctx) {
            Ok(event) => {
                doc.clear();
                event.write_json(&mut doc);
                out.write_all(&doc)?;
            }
            Err(e) => {
                let reason = e.to_string();
                let dl = logpipe_schemas::dead_letter::DeadLetterJson::new(
                    logpipe_schemas::dead_letter::Stage::Parse,
                    &reason,
                    &line,
                );
                serde_json::to_writer(&mut out, &dl)?;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Ship,
    Parse,
    Index,
}

/// Runs a daemon role: ops endpoint, topics, then the role's loop until SIGTERM.
fn daemon(path: &Path, role: Role) -> anyhow::Result<()> {
    logpipe_core::init_tracing();
    let config = load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let token = shutdown::on_signal();
        let kafka = config.kafka(path)?.clone();
        let ready = ops::Readiness::new("starting");
        logpipe_core::health::watch_kafka(&kafka, ready.clone(), token.clone())?;
        match role {
            Role::Ship => {
                let cfg = config.shipper(path)?.clone();
                ops::expire_idle_gauges(logpipe_shipper::IDLE_GAUGES);
                ops::serve(cfg.ops.listen.as_deref(), 9601, ready.clone()).await?;
                logpipe_core::kafka::ensure_topics(&kafka, &[&kafka.raw_topic]).await?;
                ready.set_ready();
                let host = config.host_name();
                tokio::task::spawn_blocking(move || logpipe_shipper::run(&cfg, &kafka, &host, token)).await?
            }
            Role::Parse => {
                let cfg = config.parser(path)?.clone();
                ops::serve(cfg.ops.listen.as_deref(), 9602, ready.clone()).await?;
                let mut topics = logpipe_parser::service::raw_topics(&cfg, &kafka);
                topics.extend([kafka.parsed_topic.as_str(), kafka.dead_letter_topic.as_str()]);
                logpipe_core::kafka::ensure_topics(&kafka, &topics).await?;
                ready.set_ready();
                tokio::task::spawn_blocking(move || logpipe_parser::service::run(&cfg, &kafka, token)).await?
            }
            Role::Index => {
                let cfg = config.indexer(path)?.clone();
                let es = config.elasticsearch(path)?.clone();
                ops::serve(cfg.ops.listen.as_deref(), 9603, ready.clone()).await?;
                logpipe_core::kafka::ensure_topics(&kafka, &[&kafka.parsed_topic, &kafka.dead_letter_topic]).await?;
                logpipe_indexer::run(&cfg, &kafka, &es, ready, token).await
            }
        }
    })
}
