//! logpipe's own rotation (`rotation.policy = "own"`): by size and by age,
//! `create` (rename, then an empty file in its place) or `copytruncate`
//! (copy, then truncate in place), a command or a signal to the application
//! afterwards, and a retention count.
//!
//! A rotated file is named `<live file>.<UTC timestamp>` (for example
//! `app.log.20261123T081910123Z`) in the live file's directory, so rotated
//! files sort by age, are found again after a restart, and never match a
//! `*.log` glob. The tailer follows a renamed file by its inode and reads it to
//! the end; the archive then takes it (see `archive`).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use logpipe_config::archive::{signal_number, RotateMode, RotationConfig, RotationPolicy};
use logpipe_config::FileInput;

use crate::archive::key;

/// A file this pass rotated away.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub path: PathBuf,
    pub live: PathBuf,
    pub rotated_at_ms: i64,
}

struct Owned {
    include: Vec<String>,
    exclude: Vec<glob::Pattern>,
    cfg: RotationConfig,
}

pub struct Rotator {
    inputs: Vec<Owned>,
    /// When each live file's current generation started (first seen, or last
    /// rotated), for rotation by age. A restart starts the clock again.
    started: HashMap<PathBuf, i64>,
}

impl Rotator {
    pub fn new(inputs: &[FileInput]) -> Self {
        let inputs = inputs
            .iter()
            .filter(|i| i.rotation.policy == RotationPolicy::Own)
            .map(|i| Owned {
                include: i.include.clone(),
                exclude: i.exclude.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect(),
                cfg: i.rotation.clone(),
            })
            .collect();
        Rotator {
            inputs,
            started: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Live files of the owned inputs (rotated names left out).
    pub fn live_files(&self) -> Vec<(PathBuf, usize)> {
        let mut out = Vec::new();
        for (n, input) in self.inputs.iter().enumerate() {
            for path in live_matches(&input.include, &input.exclude) {
                out.push((path, n));
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// Rotates every owned file that is due (or every non-empty one with `force`).
    pub fn tick(&mut self, now_ms: i64, force: bool) -> Vec<Rotated> {
        let mut out = Vec::new();
        for (path, n) in self.live_files() {
            let cfg = self.inputs[n].cfg.clone();
            let Ok(meta) = fs::metadata(&path) else { continue };
            let started = *self.started.entry(path.clone()).or_insert(now_ms);
            if meta.len() == 0 {
                continue;
            }
            let by_size = meta.len() >= cfg.max_bytes;
            let by_age = cfg.max_age_secs > 0 && now_ms - started >= cfg.max_age_secs as i64 * 1000;
            if !(force || by_size || by_age) {
                continue;
            }
            match rotate(&path, cfg.mode, now_ms) {
                Ok(rotated) => {
                    tracing::info!(live = %path.display(), rotated = %rotated.display(), bytes = meta.len(), force, by_size, by_age, "rotated");
                    metrics::counter!("logpipe_shipper_rotations_total").increment(1);
                    self.started.insert(path.clone(), now_ms);
                    after_rotate(&cfg, &path);
                    out.push(Rotated {
                        path: rotated,
                        live: path,
                        rotated_at_ms: now_ms,
                    });
                }
                Err(e) => tracing::error!(path = %path.display(), error = %e, "rotation failed"),
            }
        }
        out
    }

    /// Rotated files of every owned live file, oldest first, with their time.
    pub fn rotated_files(&self) -> Vec<Rotated> {
        let mut out = Vec::new();
        for (live, _) in self.live_files() {
            out.extend(find_rotated(&live));
        }
        out.sort_by_key(|r| r.rotated_at_ms);
        out
    }

    /// Deletes rotated files beyond each input's `retain` count, newest kept,
    /// but only those `may_delete` allows (archived, or fully shipped).
    pub fn apply_retention(&self, may_delete: impl Fn(&Path) -> bool) {
        for (live, n) in self.live_files() {
            let retain = self.inputs[n].cfg.retain;
            let mut rotated = find_rotated(&live);
            rotated.sort_by_key(|r| std::cmp::Reverse(r.rotated_at_ms));
            for r in rotated.into_iter().skip(retain) {
                if may_delete(&r.path) {
                    match fs::remove_file(&r.path) {
                        Ok(()) => tracing::info!(path = %r.path.display(), "retention: removed"),
                        Err(e) => tracing::warn!(path = %r.path.display(), error = %e, "retention: cannot remove"),
                    }
                }
            }
        }
    }
}

/// Paths the globs match, minus excludes and minus rotated names.
pub fn live_matches(include: &[String], exclude: &[glob::Pattern]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in include {
        let Ok(paths) = glob::glob(pattern) else { continue };
        for path in paths.flatten() {
            if path.is_file() && !exclude.iter().any(|p| p.matches_path(&path)) && rotated_time(&path).is_none() {
                out.push(path);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `app.log` → `app.log.20261123T081910123Z`.
pub fn rotated_name(live: &Path, ms: i64) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(".");
    name.push(key::timestamp(ms));
    PathBuf::from(name)
}

/// The rotation time in a rotated file's name.
pub fn rotated_time(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let (_, ts) = name.rsplit_once('.')?;
    key::parse_timestamp(ts)
}

/// Rotated files of `live` on disk.
pub fn find_rotated(live: &Path) -> Vec<Rotated> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Rotated> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let ts = n.strip_prefix(&prefix)?;
            let ms = key::parse_timestamp(ts)?;
            Some(Rotated {
                path: e.path(),
                live: live.to_path_buf(),
                rotated_at_ms: ms,
            })
        })
        .collect();
    out.sort_by_key(|r| r.rotated_at_ms);
    out
}

/// Rotates one file; returns the rotated file's path.
pub fn rotate(path: &Path, mode: RotateMode, now_ms: i64) -> std::io::Result<PathBuf> {
    let mut target = rotated_name(path, now_ms);
    let mut ms = now_ms;
    while target.exists() {
        ms += 1;
        target = rotated_name(path, ms);
    }
    let meta = fs::metadata(path)?;
    match mode {
        RotateMode::Create => {
            fs::rename(path, &target)?;
            // The new file gets the old one's permissions; create_new so a file
            // the application already recreated is left alone.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(meta.permissions().mode())
                .open(path)
            {
                Ok(f) => {
                    let _ = f.set_permissions(meta.permissions());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        RotateMode::Copytruncate => {
            // Bytes written between the copy and the truncation are lost;
            // that is copytruncate's known limit (logrotate's too).
            fs::copy(path, &target)?;
            File::open(&target)?.sync_all()?;
            OpenOptions::new().write(true).open(path)?.set_len(0)?;
        }
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(target)
}

/// Tells the application to reopen its file: the command, then the signal.
fn after_rotate(cfg: &RotationConfig, live: &Path) {
    if let Some((prog, args)) = cfg.post_rotate_command.split_first() {
        let result = std::process::Command::new(prog)
            .args(args)
            .env("LOGPIPE_ROTATED_FILE", live)
            .stdin(std::process::Stdio::null())
            .spawn()
            .and_then(|mut c| wait_bounded(&mut c, Duration::from_secs(30)));
        match result {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(command = ?cfg.post_rotate_command, %status, "post-rotate command failed"),
            Err(e) => {
                tracing::warn!(command = ?cfg.post_rotate_command, error = %e, "cannot run the post-rotate command")
            }
        }
    }
    if let (Some(sig), Some(pid_file)) = (&cfg.signal, &cfg.pid_file) {
        let pid = fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 0);
        match (pid, signal_number(sig)) {
            (Some(pid), Some(n)) => {
                // SAFETY: kill(2) with a pid read from the configured pid file.
                if unsafe { libc::kill(pid, n) } != 0 {
                    tracing::warn!(pid, signal = %sig, error = %std::io::Error::last_os_error(), "cannot signal the application");
                }
            }
            _ => tracing::warn!(pid_file = %pid_file.display(), "no pid in the pid file; application not signalled"),
        }
    }
}

fn wait_bounded(c: &mut std::process::Child, within: Duration) -> std::io::Result<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(s) = c.try_wait()? {
            return Ok(s);
        }
        if std::time::Instant::now() >= deadline {
            let _ = c.kill();
            return c.wait();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(dir: &Path, mode: RotateMode, max_bytes: u64, retain: usize) -> FileInput {
        FileInput {
            include: vec![format!("{}/*.log", dir.display())],
            rotation: RotationConfig {
                policy: RotationPolicy::Own,
                max_bytes,
                max_age_secs: 0,
                mode,
                retain,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn rotates_by_size_with_create() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        fs::write(&live, b"0123456789\n").unwrap();
        let mut r = Rotator::new(&[input(dir.path(), RotateMode::Create, 10, 5)]);
        assert!(r.tick(1_000, false).len() == 1);
        assert_eq!(fs::read(&live).unwrap(), b"");
        let rotated = find_rotated(&live);
        assert_eq!(rotated.len(), 1);
        assert_eq!(rotated[0].rotated_at_ms, 1_000);
        assert_eq!(fs::read(&rotated[0].path).unwrap(), b"0123456789\n");
        // Empty and small files are left alone; rotated names are not live files.
        assert!(r.tick(2_000, false).is_empty());
        assert_eq!(r.live_files().len(), 1);
    }

    #[test]
    fn copytruncate_keeps_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        fs::write(&live, b"abc\n").unwrap();
        let ino = fs::metadata(&live).unwrap().ino();
        let mut r = Rotator::new(&[input(dir.path(), RotateMode::Copytruncate, 1024, 5)]);
        let out = r.tick(5, true);
        assert_eq!(out.len(), 1);
        assert_eq!(fs::metadata(&live).unwrap().ino(), ino);
        assert_eq!(fs::metadata(&live).unwrap().len(), 0);
        assert_eq!(fs::read(&out[0].path).unwrap(), b"abc\n");
    }

    #[test]
    fn retention_deletes_only_what_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        let r = Rotator::new(&[input(dir.path(), RotateMode::Create, 1024, 1)]);
        fs::write(&live, b"x\n").unwrap();
        for ms in [1, 2, 3] {
            fs::write(rotated_name(&live, ms), b"old\n").unwrap();
        }
        let keep = rotated_name(&live, 2);
        r.apply_retention(|p| p != keep);
        let left: Vec<i64> = find_rotated(&live).iter().map(|r| r.rotated_at_ms).collect();
        assert_eq!(
            left,
            [2, 3],
            "newest kept by count, the not-yet-archived one kept anyway"
        );
    }

    #[test]
    fn post_rotate_command_runs() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.log");
        fs::write(&live, b"x\n").unwrap();
        let marker = dir.path().join("reopened");
        let mut i = input(dir.path(), RotateMode::Create, 1024, 1);
        i.rotation.post_rotate_command = vec!["touch".into(), marker.display().to_string()];
        let mut r = Rotator::new(&[i]);
        r.tick(1, true);
        assert!(marker.exists());
    }
}
