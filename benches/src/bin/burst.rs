//! The 166K events/s burst, end to end (issue 5).
//!
//! A generator writes realistic mixed lines (RFC 5424, RFC 3164, combined
//! access, JSON) into four files on a schedule — the base rate, a ramp to the
//! peak, the peak held, a ramp back down, the base rate again — renaming each
//! file away (follow-mode rotation) every few seconds. The shipper, two
//! parsers and the indexer run as separate release processes against a local
//! noida-db broker; the indexer writes to a bulk endpoint in this program
//! (`logpipe_benches::sink`) that either accepts at once (logpipe's own
//! capacity) or forwards to the Elasticsearch stand-in (at a rate it takes).
//!
//! Every second it samples each stage's rate, the end-to-end lag of the
//! documents accepted in that second (line written → bulk item accepted), and
//! each daemon's CPU and memory. At the end it reconciles: lines written =
//! documents indexed + dead letters, no line missing, no duplicate.
//!
//! Run with `scripts/bench-burst` (see the README); `--help` lists the knobs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use logpipe_benches::gen::{self, Kind};
use logpipe_benches::services::{self, Noida};
use logpipe_benches::sink::{self, Mode, SharedTally};
use logpipe_benches::{proc_stats, scrape};

#[derive(Parser, Debug, Clone)]
#[command(about = "End-to-end burst benchmark: files → shipper → Kafka → 2 parsers → indexer → bulk endpoint")]
struct Args {
    /// Which runs: `instant` (a bulk endpoint that accepts at once), `standin`
    /// (the Elasticsearch stand-in behind it), or both, comma-separated.
    #[arg(long, default_value = "instant,standin")]
    runs: String,
    /// Events/s before and after the burst.
    #[arg(long, default_value_t = 33_000.0)]
    base_rate: f64,
    /// Events/s at the plateau.
    #[arg(long, default_value_t = 166_000.0)]
    peak_rate: f64,
    /// The stand-in run uses the same schedule with every rate multiplied by this.
    #[arg(long, default_value_t = 0.1)]
    standin_scale: f64,
    #[arg(long, default_value_t = 30)]
    base_secs: u64,
    #[arg(long, default_value_t = 20)]
    ramp_secs: u64,
    #[arg(long, default_value_t = 60)]
    plateau_secs: u64,
    /// Each file is renamed away and recreated this often (staggered across files).
    #[arg(long, default_value_t = 20)]
    rotate_secs: u64,
    /// After writing stops, the longest wait for the pipeline to catch up.
    /// The wait also ends after --stall-secs without progress.
    #[arg(long, default_value_t = 900)]
    settle_secs: u64,
    /// After writing stops, give up once nothing was indexed for this long.
    /// The stand-in broker pauses for tens of seconds while it builds one
    /// fetch answer holding a large backlog, so this is generous.
    #[arg(long, default_value_t = 120)]
    stall_secs: u64,
    /// Partitions of the raw and parsed topics.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// The stand-in answers a fetch at once instead of holding it for
    /// `fetch.wait.max.ms`, so librdkafka, which sends the next fetch as soon
    /// as an answer is in, asks it thousands of times a second for a few
    /// records each. With this > 0 the daemons get `queued.min.messages` = 1
    /// and `fetch.queue.backoff.ms` = this: a partition whose last answer is
    /// still being consumed waits this long before fetching again, so each
    /// fetch brings what arrived meanwhile. 0: librdkafka's defaults.
    #[arg(long, default_value_t = 20)]
    fetch_backoff_ms: u64,
    /// Every this many seconds, delete the records of the raw and parsed
    /// topics that their consumer group has committed (Kafka's DeleteRecords,
    /// what retention does on a real cluster). The stand-in rewrites its whole
    /// state as one JSON file every few seconds (7.5 GB by the end of a full
    /// run when nothing is deleted) and stalls while it does. Only records
    /// the next stage committed are deleted, so a commit that came before its
    /// acknowledgement would show as lines missing. 0: keep everything.
    #[arg(long, default_value_t = 5)]
    trim_secs: u64,
    /// The indexer's `compression_level` for `_bulk` bodies: 1 (gzip, the
    /// default, as Filebeat's) or 0 (none, Vector's default; what an indexer
    /// next to its Elasticsearch would use). gzip is about 45% of the
    /// indexer's CPU; the bench's endpoint is on loopback.
    #[arg(long, default_value_t = 1)]
    bulk_compression_level: u32,
    #[arg(long, default_value = "target/release/logpipe")]
    logpipe: PathBuf,
    #[arg(long, default_value = ".venv/bin/noida-db-server")]
    noida: PathBuf,
    /// Where the CSV, PNG and summary go (one subfolder per run).
    #[arg(long, default_value = "target/burst")]
    out: PathBuf,
}

/// The write schedule: rate (events/s) at `t` seconds, and events due by `t`.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    base: f64,
    peak: f64,
    base_s: f64,
    ramp_s: f64,
    plateau_s: f64,
}

impl Schedule {
    fn total_secs(&self) -> f64 {
        2.0 * self.base_s + 2.0 * self.ramp_s + self.plateau_s
    }

    /// `(phase, rate)` at `t`.
    fn at(&self, t: f64) -> (&'static str, f64) {
        let s = self;
        let ramp = |x: f64| s.base + (s.peak - s.base) * (x / s.ramp_s).clamp(0.0, 1.0);
        let up = s.base_s;
        let plateau = up + s.ramp_s;
        let down = plateau + s.plateau_s;
        let cool = down + s.ramp_s;
        if t < up {
            ("base", s.base)
        } else if t < plateau {
            ("ramp-up", ramp(t - up))
        } else if t < down {
            ("plateau", s.peak)
        } else if t < cool {
            ("ramp-down", ramp(cool - t))
        } else {
            ("base", s.base)
        }
    }

    /// Events due by `t` (the integral of the rate), by 10 ms steps.
    fn due(&self, t: f64) -> u64 {
        let t = t.min(self.total_secs());
        let step = 0.01;
        let mut n = 0.0;
        let mut x = 0.0;
        while x + step <= t {
            n += self.at(x + step / 2.0).1 * step;
            x += step;
        }
        n += self.at(x).1 * (t - x);
        n as u64
    }

    fn plateau_window(&self) -> (f64, f64) {
        let start = self.base_s + self.ramp_s;
        (start, start + self.plateau_s)
    }
}

/// One logpipe daemon of the run.
struct Daemon {
    name: String,
    child: Child,
    ops: String,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One second of the run.
#[derive(Debug, Default, Clone)]
struct Sample {
    t: f64,
    phase: &'static str,
    target_rate: f64,
    written: u64,
    shipped: f64,
    parsed: f64,
    indexed: f64,
    accepted: u64,
    lag_p50: f64,
    lag_p99: f64,
    lag_max: f64,
    /// CPU cores used in this second, per daemon name.
    cpu: BTreeMap<String, f64>,
    rss_mib: BTreeMap<String, f64>,
}

struct RunResult {
    name: String,
    summary: String,
    ok: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.logpipe.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release --bin logpipe` (scripts/bench-burst does)",
            args.logpipe.display()
        );
    }
    let mut results = Vec::new();
    for run in args.runs.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let scale = match run {
            "instant" => 1.0,
            "standin" => args.standin_scale,
            other => bail!("--runs: unknown run `{other}` (expected instant, standin)"),
        };
        let schedule = Schedule {
            base: args.base_rate * scale,
            peak: args.peak_rate * scale,
            base_s: args.base_secs as f64,
            ramp_s: args.ramp_secs as f64,
            plateau_s: args.plateau_secs as f64,
        };
        results.push(run_once(&args, run, schedule).with_context(|| format!("the `{run}` run"))?);
    }
    let mut report = String::new();
    for r in &results {
        report.push_str(&r.summary);
        report.push('\n');
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("summary.md"), &report)?;
    println!("\n{report}");
    println!(
        "written: {}/summary.md and per run <run>/burst.csv, <run>/burst.png",
        args.out.display()
    );
    if results.iter().any(|r| !r.ok) {
        bail!(
            "reconciliation failed in {}",
            results
                .iter()
                .filter(|r| !r.ok)
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn run_once(args: &Args, run: &str, schedule: Schedule) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&args.out)?;
    let dir = std::fs::canonicalize(&args.out)?.join(run);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    println!(
        "== {run}: {:.0} → {:.0} events/s, plateau {} s; output in {}",
        schedule.base,
        schedule.peak,
        schedule.plateau_s,
        dir.display()
    );

    // The broker (and, for the stand-in run, Elasticsearch).
    let noida = Noida::start(&args.noida, &dir, run == "standin")?;
    let brokers = noida.kafka.clone();
    let es = noida.es.clone();
    // Owns every process of the run, and kills what is left when the run ends, however it ends.
    let mut procs = Procs {
        _noida: noida,
        daemons: Vec::new(),
    };

    // The bulk endpoint, on its own small runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let tally = SharedTally::default();
    let mode = if run == "standin" {
        Mode::Forward(format!("http://{}", es.as_deref().expect("started with Elasticsearch")))
    } else {
        Mode::Instant
    };
    let sink_addr = rt.block_on(sink::serve(mode, tally.clone()))?;

    let config = dir.join("logpipe.toml");
    std::fs::write(
        &config,
        format!(
            r#"[host]
name = "burst-host"
[kafka]
brokers = "{brokers}"
partitions = {partitions}
{fetch_pacing}[elasticsearch]
url = "http://{sink_addr}"
[shipper]
data_dir = "{data}"
[[shipper.inputs]]
include = ["{logs}/*.log"]
[parser]
[indexer]
compression_level = {level}
"#,
            level = args.bulk_compression_level,
            partitions = args.partitions,
            fetch_pacing = match args.fetch_backoff_ms {
                0 => String::new(),
                ms =>
                    format!("[kafka.options]\n\"queued.min.messages\" = \"1\"\n\"fetch.queue.backoff.ms\" = \"{ms}\"\n"),
            },
            data = dir.join("shipper").display(),
            logs = logs.display(),
        ),
    )?;

    let start = |role: &str, name: &str, section: &str| -> anyhow::Result<Daemon> {
        let ops = format!("127.0.0.1:{}", services::free_port());
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new(&args.logpipe)
            .args([role, "--config"])
            .arg(&config)
            .env(format!("LOGPIPE__{section}__OPS__LISTEN"), &ops)
            // BURST_RUST_LOG passes a filter to the daemons (e.g. librdkafka=debug).
            .env(
                "RUST_LOG",
                std::env::var("BURST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            ops,
        })
    };
    // Downstream first, so nothing waits on a consumer that is not there yet.
    procs.daemons.push(start("index", "indexer", "INDEXER")?);
    procs.daemons.push(start("parse", "parser-1", "PARSER")?);
    procs.daemons.push(start("parse", "parser-2", "PARSER")?);
    procs.daemons.push(start("ship", "shipper", "SHIPPER")?);
    let daemons = &mut procs.daemons;
    for d in daemons.iter() {
        wait_for_metrics(d, Duration::from_secs(60))?;
    }
    // Let both parsers join the group before the first line.
    std::thread::sleep(Duration::from_secs(5));

    // The generator.
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let trim_stop = Arc::new(AtomicBool::new(false));
    let trimmer = (args.trim_secs > 0).then(|| {
        let (brokers, handle, stop) = (brokers.clone(), rt.handle().clone(), trim_stop.clone());
        let (every, partitions) = (Duration::from_secs(args.trim_secs), args.partitions);
        std::thread::spawn(move || trim_committed(&brokers, partitions, every, &handle, &stop))
    });
    let gen_thread = {
        let (written, done, logs) = (written.clone(), done.clone(), logs.clone());
        let rotate = Duration::from_secs(args.rotate_secs.max(1));
        std::thread::spawn(move || generate(&logs, schedule, rotate, &written, &done))
    };

    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut last_cpu: BTreeMap<String, Duration> = BTreeMap::new();
    let mut last = (0u64, 0.0f64, 0.0f64, 0.0f64, 0u64);
    // Every accepted document's lag, for the run's and the plateau's percentiles.
    let (mut run_lags, mut plateau_lags) = (Vec::<u32>::new(), Vec::<u32>::new());
    let (p_start, p_end) = schedule.plateau_window();
    let mut settle_started: Option<Instant> = None;
    let mut last_progress = Instant::now();
    loop {
        let tick = t0 + Duration::from_secs(samples.len() as u64 + 1);
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        let t = t0.elapsed().as_secs_f64();
        let w = written.load(Ordering::Relaxed);
        let (shipped, parsed, indexed) = stage_totals(daemons);
        let (accepted, mut lags) = {
            let mut tl = tally.lock().unwrap();
            (tl.accepted, tl.take_lags())
        };
        lags.sort_unstable();
        let pct = |p: f64| percentile(&lags, p);
        run_lags.extend_from_slice(&lags);
        if t > p_start && t <= p_end + 1.0 {
            plateau_lags.extend_from_slice(&lags);
        }
        let (phase, target) = if done.load(Ordering::Relaxed) {
            ("settle", 0.0)
        } else {
            schedule.at(t)
        };
        let mut s = Sample {
            t,
            phase,
            target_rate: target,
            written: w - last.0,
            shipped: shipped - last.1,
            parsed: parsed - last.2,
            indexed: indexed - last.3,
            accepted: accepted - last.4,
            lag_p50: pct(0.5),
            lag_p99: pct(0.99),
            lag_max: pct(1.0),
            ..Default::default()
        };
        for d in daemons.iter() {
            if let Some(c) = proc_stats::cpu_time(d.pid()) {
                let prev = last_cpu.insert(d.name.clone(), c).unwrap_or_default();
                s.cpu.insert(d.name.clone(), (c - prev).as_secs_f64());
            }
            if let Some((now, _)) = proc_stats::rss(d.pid()) {
                s.rss_mib.insert(d.name.clone(), now as f64 / 1048576.0);
            }
        }
        if s.accepted > 0 || s.shipped > 0.0 || s.parsed > 0.0 {
            last_progress = Instant::now();
        }
        last = (w, shipped, parsed, indexed, accepted);
        println!(
            "{:>5.0}s {:<9} target {:>7.0}/s  written {:>7}  shipped {:>7.0}  parsed {:>7.0}  indexed {:>7.0}  accepted {:>7}  lag p50 {:>5.2}s p99 {:>5.2}s  cpu {:.2}",
            s.t,
            s.phase,
            s.target_rate,
            s.written,
            s.shipped,
            s.parsed,
            s.indexed,
            s.accepted,
            s.lag_p50,
            s.lag_p99,
            s.cpu.values().sum::<f64>()
        );
        samples.push(s);
        if let Some(dead) = daemons
            .iter_mut()
            .find_map(|d| d.child.try_wait().ok().flatten().map(|st| (d.name.clone(), st)))
        {
            bail!(
                "{} exited during the run ({}); see its log in {}",
                dead.0,
                dead.1,
                dir.display()
            );
        }
        if done.load(Ordering::Relaxed) {
            let started = *settle_started.get_or_insert_with(Instant::now);
            let dead_letters = dead_letter_total(daemons);
            if accepted as f64 + dead_letters >= w as f64 && last_progress.elapsed() > Duration::from_secs(3) {
                break;
            }
            if started.elapsed() > Duration::from_secs(args.settle_secs)
                || last_progress.elapsed() > Duration::from_secs(args.stall_secs)
            {
                println!("stopped waiting: the pipeline made no progress or the settle time ran out");
                break;
            }
        }
    }
    gen_thread.join().expect("generator thread")?;
    trim_stop.store(true, Ordering::Relaxed);
    if let Some(t) = trimmer {
        t.join().expect("trim thread");
    }

    // Totals, then the drain.
    let mut cpu_total = BTreeMap::new();
    let mut peak_rss = BTreeMap::new();
    for d in daemons.iter() {
        cpu_total.insert(
            d.name.clone(),
            proc_stats::cpu_time(d.pid()).unwrap_or_default().as_secs_f64(),
        );
        peak_rss.insert(
            d.name.clone(),
            proc_stats::rss(d.pid()).map_or(0.0, |r| r.1 as f64 / 1048576.0),
        );
    }
    let mut exits = Vec::new();
    for d in daemons.iter_mut() {
        let _ = Command::new("kill").args(["-TERM", &d.pid().to_string()]).status();
    }
    for d in daemons.iter_mut() {
        let status = wait_timeout(&mut d.child, Duration::from_secs(60));
        exits.push((d.name.clone(), status));
    }

    let total_written = written.load(Ordering::Relaxed);
    let dead = count_dead_letters(&brokers);
    let es_count = es.as_deref().and_then(|addr| rt.block_on(es_count(addr)).ok());
    drop(rt);

    let tl = tally.lock().unwrap();
    let mut dead_missing_ok = 0u64;
    let missing = tl.missing_below(total_written);
    // A line may be missing from the indexed set because it is a dead letter.
    let dead_seqs: std::collections::HashSet<u64> = dead.seqs.iter().copied().collect();
    let truly_missing: Vec<u64> = missing
        .iter()
        .copied()
        .filter(|s| {
            let dl = dead_seqs.contains(s);
            dead_missing_ok += dl as u64;
            !dl
        })
        .collect();
    let distinct = tl.ids.len() as u64;
    let reconciled = total_written == distinct + dead.count
        && truly_missing.is_empty()
        && tl.duplicate_ids == 0
        && tl.seqs_seen_twice == 0
        && es_count.is_none_or(|c| c == distinct);

    // The figures.
    let plateau: Vec<&Sample> = samples.iter().filter(|s| s.t > p_start + 1.0 && s.t <= p_end).collect();
    let plateau_cpu: f64 =
        plateau.iter().map(|s| s.cpu.values().sum::<f64>()).sum::<f64>() / plateau.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Sample) -> f64| plateau.iter().map(|s| f(s)).sum::<f64>() / plateau.len().max(1) as f64;
    let worst = |f: &dyn Fn(&Sample) -> f64| {
        plateau
            .iter()
            .map(|s| f(s))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    };
    run_lags.sort_unstable();
    plateau_lags.sort_unstable();

    let mut out = String::new();
    let machine = machine_line();
    let _ = writeln!(out, "### Burst run `{run}` ({machine})");
    let _ = writeln!(
        out,
        "Schedule: {:.0} events/s for {} s, ramp over {} s to {:.0} events/s, held {} s, back down; files rotated every {} s.\n",
        schedule.base, schedule.base_s, schedule.ramp_s, schedule.peak, schedule.plateau_s, args.rotate_secs
    );
    let _ = writeln!(
        out,
        "Settings: {} partitions, fetch backoff {} ms, trim every {} s, indexer compression_level {}.\n",
        args.partitions, args.fetch_backoff_ms, args.trim_secs, args.bulk_compression_level
    );
    let _ = writeln!(out, "| plateau (mean of each second) | events/s |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(out, "| written | {:.0} |", mean(&|s| s.written as f64));
    let _ = writeln!(out, "| shipped (acked by Kafka) | {:.0} |", mean(&|s| s.shipped));
    let _ = writeln!(out, "| parsed (2 parsers) | {:.0} |", mean(&|s| s.parsed));
    let _ = writeln!(out, "| indexed | {:.0} |", mean(&|s| s.indexed));
    let _ = writeln!(
        out,
        "| accepted by the bulk endpoint | {:.0} |",
        mean(&|s| s.accepted as f64)
    );
    let _ = writeln!(out, "\n| end-to-end lag, written → accepted | p50 | p99 | max |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (name, lags) in [("plateau", &plateau_lags), ("whole run", &run_lags)] {
        let _ = writeln!(
            out,
            "| {name} | {:.2} s | {:.2} s | {:.2} s |",
            percentile(lags, 0.5),
            percentile(lags, 0.99),
            percentile(lags, 1.0)
        );
    }
    let _ = writeln!(
        out,
        "| worst second of the plateau | | {:.2} s | |\n",
        worst(&|s| s.lag_p99)
    );
    let _ = writeln!(
        out,
        "| daemon | CPU-seconds (run) | cores on the plateau | peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for d in cpu_total.keys() {
        let _ = writeln!(
            out,
            "| {d} | {:.1} | {:.2} | {:.0} |",
            cpu_total[d],
            mean(&|s| s.cpu.get(d).copied().unwrap_or(0.0)),
            peak_rss[d]
        );
    }
    let _ = writeln!(
        out,
        "| **all logpipe daemons** | {:.1} | **{:.2}** | |\n",
        cpu_total.values().sum::<f64>(),
        plateau_cpu
    );
    let _ = writeln!(
        out,
        "Reconciliation: lines written {total_written} = documents indexed {distinct} + dead letters {} → {}",
        dead.count,
        if total_written == distinct + dead.count {
            "equal"
        } else {
            "NOT EQUAL"
        }
    );
    let _ = writeln!(
        out,
        "lines not indexed when the bench stopped waiting {}, duplicate ids {}, lines stored twice {}, 409 answers (re-deliveries absorbed) {}{}; daemons' exits: {}",
        truly_missing.len(),
        tl.duplicate_ids,
        tl.seqs_seen_twice,
        tl.duplicates,
        es_count.map(|c| format!(", Elasticsearch _count {c}")).unwrap_or_default(),
        exits.iter().map(|(n, s)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(out, "Result: {}", if reconciled { "RECONCILED" } else { "FAILED" });
    if !truly_missing.is_empty() {
        let _ = writeln!(
            out,
            "first sequence numbers not indexed: {:?}",
            &truly_missing[..truly_missing.len().min(20)]
        );
    }
    drop(tl);

    write_csv(&dir.join("burst.csv"), &samples)?;
    if let Err(e) = chart(&dir.join("burst.png"), run, &samples, &schedule) {
        println!("chart not drawn: {e:#}");
    }
    Ok(RunResult {
        name: run.to_string(),
        summary: out,
        ok: reconciled,
    })
}

/// Writes lines on the schedule into one file per kind, rotating each
/// (rename + recreate) every `rotate`, staggered so one file rotates at a time.
fn generate(
    logs: &Path,
    schedule: Schedule,
    rotate: Duration,
    written: &AtomicU64,
    done: &AtomicBool,
) -> anyhow::Result<()> {
    struct Out {
        kind: Kind,
        file: std::fs::File,
        buf: Vec<u8>,
        rotations: u32,
        next_rotate: Instant,
    }
    let t0 = Instant::now();
    let stagger = rotate / Kind::ALL.len() as u32;
    let mut outs: Vec<Out> = Kind::ALL
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join(kind.file_name()))?;
            Ok(Out {
                kind,
                file,
                buf: Vec::with_capacity(1 << 20),
                rotations: 0,
                next_rotate: t0 + rotate + stagger * i as u32,
            })
        })
        .collect::<std::io::Result<_>>()?;
    // The mix: two access lines for each line of the other kinds.
    const MIX: [usize; 5] = [2, 0, 2, 1, 3];
    let total = schedule.due(schedule.total_secs());
    let mut seq = 0u64;
    while seq < total {
        let t = t0.elapsed().as_secs_f64();
        let due = schedule.due(t);
        let now_ms = sink::now_ms();
        while seq < due {
            let o = &mut outs[MIX[(seq % MIX.len() as u64) as usize]];
            gen::line(&mut o.buf, o.kind, seq, now_ms);
            seq += 1;
        }
        for o in outs.iter_mut() {
            if !o.buf.is_empty() {
                o.file.write_all(&o.buf)?;
                o.buf.clear();
            }
            if Instant::now() >= o.next_rotate {
                // What logrotate's default (create) mode does: rename, then a new file.
                o.rotations += 1;
                let path = logs.join(o.kind.file_name());
                std::fs::rename(&path, logs.join(format!("{}.{}", o.kind.file_name(), o.rotations)))?;
                o.file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                o.next_rotate += rotate;
            }
        }
        written.store(seq, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    }
    done.store(true, Ordering::Relaxed);
    Ok(())
}

/// Totals so far: (shipped and acked, parsed incl. dead letters, indexed incl. dead letters).
fn stage_totals(daemons: &[Daemon]) -> (f64, f64, f64) {
    let (mut shipped, mut parsed, mut indexed) = (0.0, 0.0, 0.0);
    for d in daemons {
        let Some(text) = scrape::metrics(&d.ops) else { continue };
        if d.name == "shipper" {
            shipped += scrape::sum(
                &text,
                "logpipe_events_total",
                &[("stage", "ship"), ("outcome", "acked")],
            );
        } else if d.name.starts_with("parser") {
            parsed += scrape::sum(&text, "logpipe_events_total", &[("stage", "parse")]);
        } else {
            indexed += ["indexed", "duplicate", "dead_letter"]
                .iter()
                .map(|o| scrape::sum(&text, "logpipe_events_total", &[("stage", "index"), ("outcome", o)]))
                .sum::<f64>();
        }
    }
    (shipped, parsed, indexed)
}

fn dead_letter_total(daemons: &[Daemon]) -> f64 {
    daemons
        .iter()
        .filter_map(|d| scrape::metrics(&d.ops))
        .map(|t| scrape::sum(&t, "logpipe_events_total", &[("outcome", "dead_letter")]))
        .sum()
}

struct DeadLetters {
    count: u64,
    seqs: Vec<u64>,
}

/// Reads the dead-letter topic to its end.
fn count_dead_letters(brokers: &str) -> DeadLetters {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let mut out = DeadLetters {
        count: 0,
        seqs: Vec::new(),
    };
    let consumer: BaseConsumer = match rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "burst-dead-letter-count")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
    {
        Ok(c) => c,
        Err(_) => return out,
    };
    if consumer.subscribe(&["logpipe-dead-letter"]).is_err() {
        return out;
    }
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.count += 1;
            if let Some((seq, _)) = m.payload().and_then(gen::find_mark) {
                out.seqs.push(seq);
            }
            idle = Instant::now();
        }
    }
    out
}

async fn es_count(addr: &str) -> anyhow::Result<u64> {
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    client.post(format!("{base}/logpipe-*/_refresh")).send().await?;
    let body = client
        .get(format!("{base}/logpipe-*/_count"))
        .send()
        .await?
        .bytes()
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["count"].as_u64().context("no count in the _count answer")
}

/// The `p` quantile (0..=1) of sorted lags in ms, in seconds; NaN if there are none.
fn percentile(sorted_ms: &[u32], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    sorted_ms[((sorted_ms.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn write_csv(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let names: Vec<String> = samples
        .iter()
        .flat_map(|s| s.cpu.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        f,
        "t_s,phase,target_rate,written,shipped,parsed,indexed,accepted,lag_p50_s,lag_p99_s,lag_max_s"
    )?;
    for n in &names {
        write!(f, ",cpu_{n},rss_mib_{n}")?;
    }
    writeln!(f)?;
    for s in samples {
        write!(
            f,
            "{:.1},{},{:.0},{},{:.0},{:.0},{:.0},{},{:.3},{:.3},{:.3}",
            s.t,
            s.phase,
            s.target_rate,
            s.written,
            s.shipped,
            s.parsed,
            s.indexed,
            s.accepted,
            s.lag_p50,
            s.lag_p99,
            s.lag_max
        )?;
        for n in &names {
            write!(
                f,
                ",{:.3},{:.1}",
                s.cpu.get(n).copied().unwrap_or(0.0),
                s.rss_mib.get(n).copied().unwrap_or(0.0)
            )?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// Rates per stage (top) and lag (bottom) over time.
fn chart(path: &Path, run: &str, samples: &[Sample], schedule: &Schedule) -> anyhow::Result<()> {
    use plotters::prelude::*;
    register_font()?;
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(520);
    let t_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let r_max = samples
        .iter()
        .flat_map(|s| [s.written as f64, s.shipped, s.parsed, s.indexed, s.accepted as f64])
        .fold(schedule.peak, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&top)
        .caption(format!("logpipe burst ({run}): events/s per stage"), ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)?;
    c.configure_mesh().x_desc("seconds").y_desc("events/s").draw()?;
    type Series = (&'static str, RGBColor, Box<dyn Fn(&Sample) -> f64>);
    let series: [Series; 5] = [
        ("written", BLACK, Box::new(|s: &Sample| s.written as f64)),
        ("shipped", BLUE, Box::new(|s: &Sample| s.shipped)),
        ("parsed", GREEN, Box::new(|s: &Sample| s.parsed)),
        ("indexed", MAGENTA, Box::new(|s: &Sample| s.indexed)),
        ("accepted", RED, Box::new(|s: &Sample| s.accepted as f64)),
    ];
    for (name, color, f) in series {
        c.draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, f(s))),
            color.stroke_width(2),
        ))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.target_rate)),
        RGBColor(150, 150, 150).stroke_width(1),
    ))?
    .label("schedule")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(150, 150, 150)));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;

    let l_max = samples
        .iter()
        .flat_map(|s| [s.lag_p99, s.lag_max])
        .filter(|v| v.is_finite())
        .fold(2.5, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&bottom)
        .caption(
            "end-to-end lag (line written → document accepted), seconds",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..l_max)?;
    c.configure_mesh().x_desc("seconds").y_desc("lag (s)").draw()?;
    let finite = |f: fn(&Sample) -> f64| {
        samples
            .iter()
            .filter(move |s| f(s).is_finite())
            .map(move |s| (s.t, f(s)))
    };
    c.draw_series(LineSeries::new(finite(|s| s.lag_p50), BLUE.stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    c.draw_series(LineSeries::new(finite(|s| s.lag_p99), RED.stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(3)));
    c.draw_series(LineSeries::new(
        finite(|s| s.lag_max),
        RGBColor(120, 120, 120).stroke_width(1),
    ))?
    .label("max")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(120, 120, 120)));
    c.draw_series(LineSeries::new([(0.0, 2.0), (t_max, 2.0)], BLACK.mix(0.5)))?
        .label("2 s goal")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// plotters draws text with ab_glyph, which needs a font given to it: Debian's
/// DejaVu Sans (fonts-dejavu-core, installed by scripts/setup).
fn register_font() -> anyhow::Result<()> {
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(FONT).with_context(|| format!("{FONT} (Debian package fonts-dejavu-core)"))?;
    plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    Ok(())
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}, {}", chrono_date())
}

fn chrono_date() -> String {
    let days = sink::now_ms().div_euclid(86_400_000);
    let (y, m, d) = logpipe_schemas::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn wait_for_metrics(d: &Daemon, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if scrape::metrics(&d.ops).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{} did not serve /metrics on {} within {limit:?}", d.name, d.ops)
}

fn wait_timeout(child: &mut Child, limit: Duration) -> String {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(st)) = child.try_wait() {
            return st.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    "killed after the drain timeout".into()
}

/// The processes of one run. Dropping it kills whatever still runs, so a
/// failed run leaves no broker or daemon behind.
struct Procs {
    /// Killed by its own guard, after the daemons (fields drop after `drop`).
    _noida: Noida,
    daemons: Vec<Daemon>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.daemons.iter_mut().map(|d| &mut d.child) {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The loop behind `--trim-secs`: deletes, in each of the raw and parsed
/// topics, the records before its consumer group's committed offsets.
fn trim_committed(brokers: &str, partitions: i32, every: Duration, rt: &tokio::runtime::Handle, stop: &AtomicBool) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let client = |group: Option<&str>| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers);
        if let Some(g) = group {
            // Only asks for the group's offsets; never subscribes, so never joins.
            c.set("group.id", g);
        }
        c
    };
    let Ok(admin) = client(None).create::<AdminClient<DefaultClientContext>>() else {
        eprintln!("trim: cannot create an admin client; nothing is deleted");
        return;
    };
    let groups: Vec<(&str, BaseConsumer)> = [("logpipe-raw", "logpipe-parser"), ("logpipe-parsed", "logpipe-indexer")]
        .into_iter()
        .filter_map(|(topic, group)| Some((topic, client(Some(group)).create().ok()?)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut reported = false;
    let mut next = Instant::now() + every;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + every;
        for (topic, consumer) in &groups {
            let mut asked = TopicPartitionList::new();
            for p in 0..partitions {
                asked.add_partition(topic, p);
            }
            let Ok(committed) = consumer.committed_offsets(asked, Duration::from_secs(10)) else {
                continue;
            };
            let mut below = TopicPartitionList::new();
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    if o > 0 {
                        let _ = below.add_partition_offset(topic, e.partition(), Offset::Offset(o));
                    }
                }
            }
            if below.count() == 0 {
                continue;
            }
            let failed = match rt.block_on(admin.delete_records(&below, &opts)) {
                Ok(result) => result
                    .elements()
                    .iter()
                    .find_map(|e| e.error().err().map(|e| e.to_string())),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                if !reported {
                    eprintln!("trim: deleting committed records of {topic} failed: {e}");
                    reported = true;
                }
            }
        }
    }
}
