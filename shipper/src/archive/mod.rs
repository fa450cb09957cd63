//! Raw archives: every rotated file, once Kafka has all of it, goes to S3
//! compressed and byte-exact, and only then leaves the disk.
//!
//! The archive's contract with the tailer is the durable checkpoint: a rotated
//! file is ready when `checkpoints.json` says its fingerprint was acknowledged
//! up to the file's length (the tailer only writes positions Kafka
//! acknowledged). The archive never talks to the tailer's thread; it reads the
//! checkpoint file, so a file is removed only after its last line is durable
//! both in Kafka and in S3.
//!
//! Per job: stage (compress + SHA-256 into `data_dir/archive-staging/`),
//! upload (single PUT or resumable multipart), then remove the local file.
//! Every step is recorded in `archive.json` first (see [`state`]).

pub mod audit;
pub mod compress;
pub mod key;
pub mod s3;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logpipe_config::ArchiveConfig;
use logpipe_schemas::raw;

use crate::checkpoint::Checkpoints;
use crate::fingerprint;
use s3::{S3Error, S3};
use state::{Job, State};

/// One finished upload, for the drain's manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub key: String,
    pub path: PathBuf,
    pub live_path: PathBuf,
    pub fingerprint: String,
    pub start: u64,
    pub end: u64,
    pub sha256: String,
    pub compressed_bytes: u64,
    pub rotated: bool,
}

struct Inner {
    state: State,
    running: HashSet<String>,
    /// Key → earliest next attempt, after a failure.
    retry_at: HashMap<String, (Instant, Duration)>,
    /// Uploads finished, kept for the manifest of a drain.
    uploaded: Vec<Uploaded>,
    last_error: Option<S3Error>,
}

#[derive(Clone)]
pub struct Archive {
    cfg: Arc<ArchiveConfig>,
    data_dir: PathBuf,
    host: String,
    template: String,
    pub s3: S3,
    inner: Arc<Mutex<Inner>>,
}

impl Archive {
    pub async fn open(cfg: &ArchiveConfig, data_dir: &Path, host: &str) -> anyhow::Result<Archive> {
        std::fs::create_dir_all(data_dir.join("archive-staging"))?;
        let state = State::load(data_dir)?;
        let s3 = S3::connect(cfg).await;
        Ok(Archive {
            cfg: Arc::new(cfg.clone()),
            data_dir: data_dir.to_path_buf(),
            host: host.to_string(),
            template: cfg.key_template(),
            s3,
            inner: Arc::new(Mutex::new(Inner {
                state,
                running: HashSet::new(),
                retry_at: HashMap::new(),
                uploaded: Vec::new(),
                last_error: None,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("archive state poisoned")
    }

    fn persist(&self, inner: &Inner) {
        if let Err(e) = inner.state.persist(&self.data_dir) {
            tracing::error!(error = %e, "cannot write the archive state");
        }
    }

    /// Whether the file is already known (queued, or uploaded and kept).
    pub fn knows(&self, path: &Path) -> bool {
        self.lock().state.has_path(path)
    }

    fn key_for(&self, live_path: &Path, rotated_at_ms: i64, fp: &str) -> String {
        let file = live_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        key::render(
            &self.template,
            &key::KeyVars {
                prefix: &self.cfg.prefix,
                host: &self.host,
                file: &file,
                rotated_at_ms,
                fingerprint: fp,
                ext: self.cfg.compression.extension(),
            },
        )
    }

    /// Queues a rotated file (`path`, rotated away from `live_path`).
    pub fn enqueue_rotated(&self, path: &Path, live_path: &Path, rotated_at_ms: i64) -> anyhow::Result<()> {
        let file = std::fs::File::open(path)?;
        let Some(fp) = fingerprint::of_file(&file)? else {
            // No complete first line: nothing was ever shipped from it.
            tracing::info!(path = %path.display(), "rotated file is empty; nothing to archive");
            return Ok(());
        };
        let fp = raw::fingerprint_hex(fp);
        let key = self.key_for(live_path, rotated_at_ms, &fp);
        let mut inner = self.lock();
        if inner.state.has_path(path) {
            return Ok(());
        }
        let start = inner.state.archived_upto.get(&fp).copied().unwrap_or(0);
        tracing::info!(path = %path.display(), %key, "queued for the archive");
        inner.state.jobs.push(Job {
            key,
            path: path.to_path_buf(),
            live_path: live_path.to_path_buf(),
            fingerprint: fp,
            rotated_at_ms,
            start,
            end: None,
            rotated: true,
            staged: None,
            upload_id: None,
            uploaded: false,
            attempts: 0,
            last_error: None,
        });
        self.persist(&inner);
        Ok(())
    }

    /// Queues the part of a live file not in S3 yet (spot drain).
    pub fn enqueue_tail(&self, live_path: &Path, now_ms: i64) -> anyhow::Result<()> {
        let file = std::fs::File::open(live_path)?;
        let len = file.metadata()?.len();
        let Some(fp) = fingerprint::of_file(&file)? else {
            // No newline yet: the bytes are few but still bytes the host wrote.
            if len == 0 {
                return Ok(());
            }
            return self.enqueue_tail_fp(live_path, "0000000000000000".into(), len, now_ms);
        };
        self.enqueue_tail_fp(live_path, raw::fingerprint_hex(fp), len, now_ms)
    }

    fn enqueue_tail_fp(&self, live_path: &Path, fp: String, len: u64, now_ms: i64) -> anyhow::Result<()> {
        let mut inner = self.lock();
        let start = inner.state.archived_upto.get(&fp).copied().unwrap_or(0);
        if start >= len {
            return Ok(());
        }
        let key = self.key_for(live_path, now_ms, &fp);
        tracing::info!(path = %live_path.display(), start, end = len, %key, "queued the live file's tail for the archive");
        inner.state.jobs.push(Job {
            key,
            path: live_path.to_path_buf(),
            live_path: live_path.to_path_buf(),
            fingerprint: fp,
            rotated_at_ms: now_ms,
            start,
            end: Some(len),
            rotated: false,
            staged: None,
            upload_id: None,
            uploaded: false,
            attempts: 0,
            last_error: None,
        });
        self.persist(&inner);
        Ok(())
    }

    /// Files and bytes waiting to leave the disk.
    pub fn backlog(&self) -> (usize, u64) {
        let inner = self.lock();
        let bytes = inner
            .state
            .jobs
            .iter()
            .map(|j| match j.end {
                Some(e) => e.saturating_sub(j.start),
                None => std::fs::metadata(&j.path)
                    .map(|m| m.len())
                    .unwrap_or(0)
                    .saturating_sub(j.start),
            })
            .sum();
        (inner.state.jobs.len(), bytes)
    }

    pub fn pending_jobs(&self) -> Vec<Job> {
        self.lock().state.jobs.clone()
    }

    pub fn uploaded_since(&self, n: usize) -> Vec<Uploaded> {
        self.lock().uploaded[n..].to_vec()
    }

    pub fn uploaded_count(&self) -> usize {
        self.lock().uploaded.len()
    }

    pub fn last_error(&self) -> Option<S3Error> {
        self.lock().last_error.clone()
    }

    /// Starts uploads of jobs that may go now, oldest first, up to the
    /// parallel limit. With `force`, rotated files go up before Kafka has all
    /// of them (spot drain: the disk is about to vanish); they are still kept
    /// on disk until Kafka has them.
    pub fn schedule(&self, force: bool) -> usize {
        let positions = Checkpoints::load(&self.data_dir).ok();
        let mut started = 0;
        let mut inner = self.lock();
        let mut order: Vec<usize> = (0..inner.state.jobs.len()).collect();
        order.sort_by_key(|&i| (inner.state.jobs[i].rotated_at_ms, inner.state.jobs[i].key.clone()));
        let now = Instant::now();
        for i in order {
            if inner.running.len() >= self.cfg.parallel_uploads {
                break;
            }
            let job = inner.state.jobs[i].clone();
            if inner.running.contains(&job.key) {
                continue;
            }
            // A drain cannot wait out a long backoff, but still paces its retries.
            let pace = |(t, d): &(Instant, Duration)| {
                if force {
                    now < (*t - *d) + Duration::from_millis(500).min(*d)
                } else {
                    now < *t
                }
            };
            if inner.retry_at.get(&job.key).is_some_and(pace) {
                continue;
            }
            let shipped = !job.rotated || is_shipped(positions.as_ref(), &job);
            if job.uploaded && !shipped {
                continue; // in S3 already; waits for Kafka before the file goes
            }
            if !shipped && !force {
                continue;
            }
            inner.running.insert(job.key.clone());
            started += 1;
            let me = self.clone();
            tokio::spawn(async move {
                let key = job.key.clone();
                let result = me.run_job(job, shipped).await;
                let mut inner = me.lock();
                inner.running.remove(&key);
                match result {
                    Ok(()) => {
                        inner.retry_at.remove(&key);
                        inner.last_error = None;
                    }
                    Err(e) => {
                        metrics::counter!("logpipe_shipper_archive_upload_failures_total").increment(1);
                        let prev = inner.retry_at.get(&key).map(|(_, d)| *d);
                        let max = Duration::from_millis(me.cfg.retry_max_backoff_ms);
                        let next = if e.permanent {
                            max
                        } else {
                            prev.map(|d| (d * 2).min(max))
                                .unwrap_or(Duration::from_millis(me.cfg.retry_initial_backoff_ms))
                        };
                        tracing::error!(%key, error = %e, retry_in_ms = next.as_millis() as u64, "archive upload failed; the file stays on disk");
                        inner.retry_at.insert(key.clone(), (Instant::now() + next, next));
                        if let Some(j) = inner.state.job_mut(&key) {
                            j.attempts += 1;
                            j.last_error = Some(e.message.clone());
                        }
                        inner.last_error = Some(e);
                        me.persist(&inner);
                    }
                }
            });
        }
        started
    }

    /// Whether any upload is running.
    pub fn busy(&self) -> bool {
        !self.lock().running.is_empty()
    }

    fn staging_path(&self, key: &str) -> PathBuf {
        let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        self.data_dir.join("archive-staging").join(format!("{h:016x}"))
    }

    async fn run_job(&self, job: Job, shipped: bool) -> Result<(), S3Error> {
        let local = |e: std::io::Error, what: &str| S3Error {
            message: format!("{what} {}: {e}", job.path.display()),
            permanent: false,
        };
        let staged_path = self.staging_path(&job.key);
        if !job.uploaded {
            // 1. Stage (once: a resumed upload needs the same bytes).
            let staged = match (&job.staged, staged_path.exists()) {
                (Some(s), true) => s.clone(),
                _ => {
                    let end = match job.end {
                        Some(e) => e,
                        None => std::fs::metadata(&job.path).map_err(|e| local(e, "reading"))?.len(),
                    };
                    let (src, dst, codec, level, start) = (
                        job.path.clone(),
                        staged_path.clone(),
                        self.cfg.compression,
                        self.cfg.zstd_level,
                        job.start,
                    );
                    let s = tokio::task::spawn_blocking(move || {
                        compress::compress_range(&src, start, end, &dst, codec, level)
                    })
                    .await
                    .map_err(|e| S3Error {
                        message: format!("compression task: {e}"),
                        permanent: false,
                    })?
                    .map_err(|e| local(e, "compressing"))?;
                    let mut inner = self.lock();
                    if let Some(j) = inner.state.job_mut(&job.key) {
                        j.staged = Some(s.clone());
                        j.end = Some(job.start + s.raw_len);
                        j.upload_id = None;
                    }
                    self.persist(&inner);
                    s
                }
            };
            let meta = HashMap::from([
                (s3::META_SHA256.to_string(), staged.sha256.clone()),
                (s3::META_RAW_BYTES.to_string(), staged.raw_len.to_string()),
                (s3::META_START.to_string(), job.start.to_string()),
                (s3::META_FINGERPRINT.to_string(), job.fingerprint.clone()),
                (s3::META_HOST.to_string(), self.host.clone()),
                (s3::META_PATH.to_string(), job.live_path.display().to_string()),
                (
                    s3::META_COMPRESSION.to_string(),
                    compress::codec_name(self.cfg.compression).to_string(),
                ),
                (s3::META_ROTATED_AT.to_string(), key::timestamp(job.rotated_at_ms)),
            ]);

            // 2. Upload, unless a run before a crash already finished it.
            let there = self.s3.head(&job.key).await?;
            let same = there.as_ref().is_some_and(|m| {
                m.get(s3::META_SHA256) == Some(&staged.sha256) && m.get(s3::META_START) == Some(&job.start.to_string())
            });
            if same {
                tracing::info!(key = %job.key, "already in S3 (uploaded before a restart)");
                self.s3.abort_all(&job.key).await;
            } else {
                let t = Instant::now();
                let me = self.clone();
                let k = job.key.clone();
                self.s3
                    .upload(
                        &job.key,
                        &staged_path,
                        staged.compressed_len,
                        meta,
                        job.upload_id.clone(),
                        move |id| {
                            let mut inner = me.lock();
                            if let Some(j) = inner.state.job_mut(&k) {
                                j.upload_id = id;
                            }
                            me.persist(&inner);
                        },
                    )
                    .await?;
                let secs = t.elapsed().as_secs_f64();
                metrics::counter!("logpipe_shipper_archive_bytes_total", "kind" => "raw").increment(staged.raw_len);
                metrics::counter!("logpipe_shipper_archive_bytes_total", "kind" => "compressed")
                    .increment(staged.compressed_len);
                metrics::histogram!("logpipe_shipper_archive_upload_seconds").record(secs);
                tracing::info!(key = %job.key, raw = staged.raw_len, compressed = staged.compressed_len, secs, "archived");
            }
            let mut inner = self.lock();
            inner.uploaded.push(Uploaded {
                key: job.key.clone(),
                path: job.path.clone(),
                live_path: job.live_path.clone(),
                fingerprint: job.fingerprint.clone(),
                start: job.start,
                end: job.start + staged.raw_len,
                sha256: staged.sha256.clone(),
                compressed_bytes: staged.compressed_len,
                rotated: job.rotated,
            });
            if let Some(j) = inner.state.job_mut(&job.key) {
                j.uploaded = true;
                j.upload_id = None;
                j.last_error = None;
            }
            if !job.rotated {
                // A live file's tail: its next archive starts after it.
                let end = job.start + staged.raw_len;
                let e = inner.state.archived_upto.entry(job.fingerprint.clone()).or_insert(0);
                *e = (*e).max(end);
                inner.state.jobs.retain(|j| j.key != job.key);
            }
            self.persist(&inner);
            drop(inner);
            let _ = std::fs::remove_file(&staged_path);
        }

        // 3. The local file goes once it is in S3 and in Kafka.
        if job.rotated && shipped {
            let mut inner = self.lock();
            if self.cfg.keep_local {
                inner.state.kept.insert(job.path.clone(), job.key.clone());
            } else {
                match std::fs::remove_file(&job.path) {
                    Ok(()) => tracing::info!(path = %job.path.display(), "removed after archiving"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(local(e, "removing")),
                }
            }
            inner.state.archived_upto.remove(&job.fingerprint);
            inner.state.jobs.retain(|j| j.key != job.key);
            self.persist(&inner);
            let _ = std::fs::remove_file(&staged_path);
        }
        Ok(())
    }

    /// Forgets kept files that are gone (deleted by retention or by hand).
    pub fn forget_missing_kept(&self) {
        let mut inner = self.lock();
        let before = inner.state.kept.len();
        inner.state.kept.retain(|p, _| p.exists());
        if inner.state.kept.len() != before {
            self.persist(&inner);
        }
    }

    /// Whether `path` is archived (kept after upload), for retention.
    pub fn is_archived(&self, path: &Path) -> bool {
        self.lock().state.kept.contains_key(path)
    }

    pub fn publish_metrics(&self) {
        let (files, bytes) = self.backlog();
        metrics::gauge!("logpipe_shipper_archive_backlog_files").set(files as f64);
        metrics::gauge!("logpipe_shipper_archive_backlog_bytes").set(bytes as f64);
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn prefix(&self) -> &str {
        &self.cfg.prefix
    }
}

/// The durable checkpoint of the job's file reached the file's end.
fn is_shipped(positions: Option<&Checkpoints>, job: &Job) -> bool {
    let Some(p) = positions else { return false };
    let Ok(fp) = u64::from_str_radix(&job.fingerprint, 16) else {
        return false;
    };
    let Ok(len) = std::fs::metadata(&job.path).map(|m| m.len()) else {
        // Gone: nothing left to wait for.
        return true;
    };
    p.get(fp).is_some_and(|off| off >= len)
}

/// Whether the file at `path` was fully shipped to Kafka, per the durable
/// checkpoints in `data_dir` (the query the rotation's retention uses too).
pub fn fully_shipped(data_dir: &Path, path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let (Ok(Some(fp)), Ok(meta)) = (fingerprint::of_file(&file), file.metadata()) else {
        return false;
    };
    Checkpoints::load(data_dir)
        .ok()
        .and_then(|c| c.get(fp))
        .is_some_and(|off| off >= meta.len())
}
