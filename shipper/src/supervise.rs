//! Runs the tailer (`service`, on its own thread, untouched) beside the
//! archive side: rotation of owned files, the uploader (its own tokio runtime
//! on this thread), the spot-notice watcher, and the drain that ties them
//! together when the instance is about to disappear.
//!
//! Drain (spot notice, or SIGTERM with `spot.drain_on_sigterm`), all within
//! `spot.drain_deadline_secs`:
//! 1. force-rotate every owned file, so its bytes become a finished file;
//! 2. let the tailer ship the rotated files to Kafka while the archive uploads
//!    them (oldest first, in parallel; a file Kafka does not have yet stays on
//!    disk until it does), for up to half the deadline;
//! 3. stop the tailer: it flushes the Kafka producer and writes its final
//!    checkpoints;
//! 4. upload everything still pending, whether Kafka has it or not (the disk
//!    is about to vanish), and the not-yet-archived tail of every live file;
//! 5. write a manifest object: what was archived, and the offset up to which
//!    each file reached Kafka.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logpipe_config::{KafkaConfig, ShipperConfig};
use logpipe_core::now_ms;
use logpipe_core::shutdown::CancellationToken;

use crate::archive::{self, Archive};
use crate::checkpoint::Checkpoints;
use crate::rotate::{self, Rotator};
use crate::{service, spot};

/// Rotated files are taken only once nobody wrote to them for this long: an
/// application that has not reopened its file yet still writes to the old one.
const SETTLE: Duration = Duration::from_secs(2);

/// The shipper with rotation, archive and spot drain as configured; just the
/// tailer when none is.
pub fn run(cfg: &ShipperConfig, kafka: &KafkaConfig, host: &str, signal: CancellationToken) -> anyhow::Result<()> {
    let rotator = Rotator::new(&cfg.inputs);
    if cfg.archive.is_none() && rotator.is_empty() && !cfg.spot.enabled {
        return service::run(cfg, kafka, host, signal);
    }
    let service_stop = CancellationToken::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let svc = {
        let (c, k, h, t) = (cfg.clone(), kafka.clone(), host.to_string(), service_stop.clone());
        std::thread::Builder::new().name("tailer".into()).spawn(move || {
            let r = service::run(&c, &k, &h, t);
            let _ = done_tx.send(());
            r
        })?
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("archive")
        .build()?;
    let outcome = rt.block_on(supervise(cfg, host, rotator, signal, service_stop.clone(), done_rx));
    service_stop.cancel();
    let tailer = svc.join().map_err(|_| anyhow::anyhow!("the tailer thread panicked"))?;
    // Uploads cut short resume at the next start (state is on disk).
    rt.shutdown_timeout(Duration::from_secs(1));
    outcome.and(tailer)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Why {
    Spot,
    Sigterm,
}

async fn supervise(
    cfg: &ShipperConfig,
    host: &str,
    rotator: Rotator,
    signal: CancellationToken,
    service_stop: CancellationToken,
    mut tailer_done: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let archive = match &cfg.archive {
        Some(a) => {
            let ar = Archive::open(a, &cfg.data_dir, host).await?;
            // In the background: an unreachable S3 must not hold up rotation.
            let (s3, bucket) = (ar.s3.clone(), a.bucket.clone());
            tokio::spawn(async move {
                match s3.check_bucket().await {
                    Ok(()) => tracing::info!(%bucket, "archive: bucket reachable"),
                    Err(e) => tracing::error!("archive: {e}; rotated files stay on disk until this is fixed"),
                }
            });
            Some(ar)
        }
        None => None,
    };
    let rotator = Arc::new(Mutex::new(rotator));
    let notice = CancellationToken::new();
    let stop_watch = CancellationToken::new();
    if cfg.spot.enabled {
        tokio::spawn(spot::watch(cfg.spot.clone(), notice.clone(), stop_watch.clone()));
    }
    let tick = Duration::from_millis(
        cfg.archive
            .as_ref()
            .map_or(cfg.poll_interval_ms, |a| a.scan_interval_ms),
    );
    let why = loop {
        housekeeping(cfg, &rotator, archive.as_ref(), false).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = signal.cancelled() => break Why::Sigterm,
            _ = notice.cancelled() => break Why::Spot,
            _ = &mut tailer_done => {
                // The tailer stopped on its own (an error): stop too; run() reports it.
                stop_watch.cancel();
                return Ok(());
            }
        }
    };
    stop_watch.cancel();
    match archive {
        Some(ar) if why == Why::Spot || cfg.spot.drain_on_sigterm => {
            drain(cfg, &rotator, &ar, why, &service_stop, tailer_done).await
        }
        _ => {
            service_stop.cancel();
            let _ = tailer_done.await;
            Ok(())
        }
    }
}

/// One pass: rotate what is due, queue rotated files, start uploads, retention.
async fn housekeeping(cfg: &ShipperConfig, rotator: &Arc<Mutex<Rotator>>, archive: Option<&Archive>, force: bool) {
    let r = rotator.clone();
    let rotated = tokio::task::spawn_blocking(move || {
        let mut r = r.lock().expect("rotator poisoned");
        let mut out = r.tick(now_ms(), force);
        // Also rotated files from before a restart.
        out.extend(r.rotated_files());
        out
    })
    .await
    .unwrap_or_default();
    match archive {
        Some(ar) => {
            for f in rotated {
                if ar.knows(&f.path) {
                    continue;
                }
                let quiet = std::fs::metadata(&f.path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() >= SETTLE);
                if !(quiet || force) {
                    continue;
                }
                if let Err(e) = ar.enqueue_rotated(&f.path, &f.live, f.rotated_at_ms) {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot queue a rotated file");
                }
            }
            ar.schedule(force);
            ar.forget_missing_kept();
            ar.publish_metrics();
            let ar2 = ar.clone();
            let r = rotator.clone();
            let _ = tokio::task::spawn_blocking(move || {
                r.lock()
                    .expect("rotator poisoned")
                    .apply_retention(|p| ar2.is_archived(p))
            })
            .await;
        }
        None => {
            let dir = cfg.data_dir.clone();
            let r = rotator.clone();
            let _ = tokio::task::spawn_blocking(move || {
                r.lock()
                    .expect("rotator poisoned")
                    .apply_retention(|p| archive::fully_shipped(&dir, p))
            })
            .await;
        }
    }
}

#[derive(serde::Serialize)]
struct Manifest {
    host: String,
    reason: String,
    started_at: String,
    finished_at: String,
    deadline_secs: u64,
    deadline_met: bool,
    /// Objects written during the drain.
    archived: Vec<ManifestEntry>,
    /// Files that could not be archived before the deadline (still on disk).
    not_archived: Vec<ManifestEntry>,
    /// Every file's acknowledged position in Kafka (from the final checkpoints).
    kafka: Vec<KafkaPosition>,
}

#[derive(serde::Serialize)]
struct ManifestEntry {
    key: String,
    path: String,
    live_path: String,
    fingerprint: String,
    start: u64,
    end: Option<u64>,
    sha256: Option<String>,
    /// Bytes `0..kafka_offset` of this file are in Kafka.
    kafka_offset: Option<u64>,
}

#[derive(serde::Serialize)]
struct KafkaPosition {
    path: String,
    fingerprint: String,
    offset: u64,
}

async fn drain(
    cfg: &ShipperConfig,
    rotator: &Arc<Mutex<Rotator>>,
    ar: &Archive,
    why: Why,
    service_stop: &CancellationToken,
    tailer_done: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let started_ms = now_ms();
    let total = Duration::from_secs(cfg.spot.drain_deadline_secs);
    let deadline = t0 + total;
    let before = ar.uploaded_count();
    tracing::warn!(reason = ?why, deadline_secs = total.as_secs(), "drain: rotating every owned file and archiving everything");

    // 1-2. Rotate, then upload what Kafka has while the tailer keeps shipping.
    housekeeping(cfg, rotator, Some(ar), true).await;
    let phase_a = t0 + total / 2;
    while Instant::now() < phase_a {
        // Forced: files Kafka does not have yet go up too (and stay on disk
        // until it has them), so the deadline is spent uploading, not waiting.
        ar.schedule(true);
        if ar.pending_jobs().is_empty() && !ar.busy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 3. Stop the tailer: producer flushed, final checkpoints written.
    service_stop.cancel();
    let left = deadline.saturating_duration_since(Instant::now());
    if tokio::time::timeout(left.mul_f32(0.5), tailer_done).await.is_err() {
        tracing::warn!("drain: the tailer did not stop in time; archiving anyway");
    }

    // 4. Everything else, Kafka or not, and the tails of live files.
    let now = now_ms();
    for input in &cfg.inputs {
        let exclude: Vec<glob::Pattern> = input
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        for live in rotate::live_matches(&input.include, &exclude) {
            if let Err(e) = ar.enqueue_tail(&live, now) {
                tracing::warn!(path = %live.display(), error = %e, "cannot queue a live file's tail");
            }
        }
    }
    let margin = Duration::from_secs(2).min(total / 10);
    while Instant::now() + margin < deadline {
        ar.schedule(true);
        if ar.pending_jobs().iter().all(|j| j.uploaded) && !ar.busy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 5. The manifest.
    let positions = Checkpoints::load(&cfg.data_dir).ok();
    let kafka_offset = |fp: &str| {
        let fp = u64::from_str_radix(fp, 16).ok()?;
        positions.as_ref()?.get(fp)
    };
    let archived: Vec<ManifestEntry> = ar
        .uploaded_since(before)
        .into_iter()
        .map(|u| ManifestEntry {
            kafka_offset: kafka_offset(&u.fingerprint),
            key: u.key,
            path: u.path.display().to_string(),
            live_path: u.live_path.display().to_string(),
            fingerprint: u.fingerprint,
            start: u.start,
            end: Some(u.end),
            sha256: Some(u.sha256),
        })
        .collect();
    let not_archived: Vec<ManifestEntry> = ar
        .pending_jobs()
        .into_iter()
        .filter(|j| !j.uploaded)
        .map(|j| ManifestEntry {
            kafka_offset: kafka_offset(&j.fingerprint),
            key: j.key,
            path: j.path.display().to_string(),
            live_path: j.live_path.display().to_string(),
            fingerprint: j.fingerprint,
            start: j.start,
            end: j.end,
            sha256: None,
        })
        .collect();
    let kafka = positions
        .as_ref()
        .map(|p| {
            p.entries()
                .into_iter()
                .map(|e| KafkaPosition {
                    path: e.path,
                    fingerprint: e.fingerprint,
                    offset: e.offset,
                })
                .collect()
        })
        .unwrap_or_default();
    let finished_ms = now_ms();
    let manifest = Manifest {
        host: ar.host().to_string(),
        reason: format!("{why:?}").to_lowercase(),
        started_at: chrono_rfc3339(started_ms),
        finished_at: chrono_rfc3339(finished_ms),
        deadline_secs: total.as_secs(),
        deadline_met: Instant::now() <= deadline,
        archived,
        not_archived,
        kafka,
    };
    let key = manifest_key(ar.prefix(), ar.host(), started_ms);
    let body = serde_json::to_vec_pretty(&manifest)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    match tokio::time::timeout(left, ar.s3.put_bytes(&key, body.clone(), "application/json")).await {
        Ok(Ok(())) => tracing::info!(%key, "drain: manifest written"),
        Ok(Err(e)) => tracing::error!(error = %e, "drain: cannot write the manifest"),
        Err(_) => tracing::error!("drain: the manifest did not make the deadline"),
    }
    // A copy on disk too, for whoever looks at the volume later.
    let _ = std::fs::write(cfg.data_dir.join("last-drain-manifest.json"), &body);
    let secs = t0.elapsed().as_secs_f64();
    metrics::gauge!("logpipe_shipper_spot_drain_seconds").set(secs);
    tracing::warn!(
        secs,
        deadline_met = manifest.deadline_met,
        archived = manifest.archived.len(),
        not_archived = manifest.not_archived.len(),
        "drain finished"
    );
    Ok(())
}

/// `{prefix}/{host}/manifests/<timestamp>.json`.
pub fn manifest_key(prefix: &str, host: &str, ms: i64) -> String {
    let p = prefix.trim_matches('/');
    let base = format!("{host}/manifests/{}.json", archive::key::timestamp(ms));
    if p.is_empty() {
        base
    } else {
        format!("{p}/{base}")
    }
}

fn chrono_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
