//! Which files to tail (include globs minus exclude globs), found on a thread
//! of their own and opened the moment they are seen.
//!
//! Opening at once is what makes fast rotation lossless: a file renamed and
//! deleted a few hundred milliseconds after it appeared is still read to its
//! end through the descriptor opened here, however busy the reading thread
//! is. inotify (through `notify`) wakes the thread on every create, rename and
//! delete in the watched directories; a full glob scan every
//! `poll_interval_ms` catches whatever events cannot show (an overflowed
//! event queue, a directory that did not exist yet). Where inotify is
//! unavailable, notify's polling watcher stands in (`shipper.watch`).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use logpipe_config::{FileInput, ShipperConfig, WatchMode};
use notify::{EventKind, RecursiveMode, Watcher};

/// Device and inode: which file an open descriptor is, across renames.
pub type DevIno = (u64, u64);

/// What discovery tells the reading thread, in the order it happened.
#[derive(Debug)]
pub enum Found {
    /// A file not open before, opened the moment it was seen.
    Opened { path: PathBuf, file: File, id: DevIno },
    /// Every matching file after a scan, with its path now. An open file
    /// missing here was rotated away (renamed out of the globs, or deleted).
    Listing(Vec<(PathBuf, DevIno)>),
}

pub struct Discover {
    inputs: Vec<(Vec<String>, Vec<glob::Pattern>)>,
}

impl Discover {
    /// Patterns were validated with the config, so they compile here.
    pub fn new(inputs: &[FileInput]) -> Self {
        let inputs = inputs
            .iter()
            .map(|i| {
                let exclude = i.exclude.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect();
                (i.include.clone(), exclude)
            })
            .collect();
        Discover { inputs }
    }

    /// Regular files matching now, sorted and without duplicates.
    pub fn scan(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (include, exclude) in &self.inputs {
            for pattern in include {
                let Ok(paths) = glob::glob(pattern) else { continue };
                for path in paths.flatten() {
                    if path.is_file() && !exclude.iter().any(|p| p.matches_path(&path)) {
                        out.push(path);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The directories to watch: each include pattern's longest prefix
    /// without glob characters, recursively when the pattern has wildcards
    /// in a directory part.
    pub fn roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut out: Vec<(PathBuf, RecursiveMode)> = Vec::new();
        for (include, _) in &self.inputs {
            for pattern in include {
                let (dir, recursive) = root_of(pattern);
                let mode = if recursive {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                match out.iter_mut().find(|(d, _)| *d == dir) {
                    Some(existing) if recursive => existing.1 = mode,
                    Some(_) => {}
                    None => out.push((dir, mode)),
                }
            }
        }
        out
    }
}

/// Splits a glob into the directory to watch and whether matches can lie
/// deeper than its direct children.
fn root_of(pattern: &str) -> (PathBuf, bool) {
    let is_glob = |s: &str| s.contains(['*', '?', '[']);
    let path = Path::new(pattern);
    let mut dir = PathBuf::new();
    let mut rest = 0;
    let mut in_glob = false;
    for c in path.components() {
        let s = c.as_os_str().to_string_lossy();
        if in_glob || (matches!(c, Component::Normal(_)) && is_glob(&s)) {
            in_glob = true;
            rest += 1;
        } else {
            dir.push(c);
        }
    }
    if !in_glob {
        // A plain path: watch its directory.
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        return (parent, false);
    }
    (dir, rest > 1)
}

/// The discovery thread and the channels to and from it.
pub struct Discovery {
    pub found: Receiver<Found>,
    closed: Sender<DevIno>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Discovery {
    /// Starts watching and scanning. Fails only when `watch = "inotify"` was
    /// asked for and inotify cannot be used.
    pub fn spawn(cfg: &ShipperConfig) -> anyhow::Result<Discovery> {
        let (found_tx, found) = crossbeam_channel::unbounded();
        let (closed, closed_rx) = crossbeam_channel::unbounded();
        let (event_tx, event_rx) = crossbeam_channel::unbounded();
        let poll = Duration::from_millis(cfg.poll_interval_ms.max(1));
        let watcher = make_watcher(cfg.watch, poll, event_tx)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            discover: Discover::new(&cfg.inputs),
            roots: Vec::new(),
            watcher,
            known: HashSet::new(),
            warned: HashSet::new(),
            found: found_tx,
            poll,
        };
        worker.roots = worker
            .discover
            .roots()
            .into_iter()
            .map(|(d, m)| (d, m, false))
            .collect();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("discover".into())
                .spawn(move || worker.run(&event_rx, &closed_rx, &stop))?
        };
        Ok(Discovery {
            found,
            closed,
            stop,
            thread: Some(thread),
        })
    }

    /// The reading thread let go of a file: if the same file (or a new one
    /// reusing its inode) matches again, it is opened again.
    pub fn closed(&self, id: DevIno) {
        let _ = self.closed.send(id);
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// notify's inotify watcher, or its polling one when asked for or when
/// inotify cannot be had (`auto`).
fn make_watcher(
    mode: WatchMode,
    poll: Duration,
    tx: Sender<notify::Result<notify::Event>>,
) -> anyhow::Result<Box<dyn Watcher + Send>> {
    let config = notify::Config::default().with_poll_interval(poll);
    let poller = |tx: Sender<_>| -> anyhow::Result<Box<dyn Watcher + Send>> {
        let w = notify::PollWatcher::new(move |e| drop(tx.send(e)), config)?;
        Ok(Box::new(w))
    };
    if mode == WatchMode::Poll {
        return poller(tx);
    }
    let tx2 = tx.clone();
    match notify::RecommendedWatcher::new(move |e| drop(tx2.send(e)), config) {
        Ok(w) => Ok(Box::new(w)),
        Err(e) if mode == WatchMode::Auto => {
            tracing::warn!(error = %e, "inotify unavailable; discovery polls every shipper.poll_interval_ms");
            poller(tx)
        }
        Err(e) => Err(anyhow::anyhow!("shipper.watch = \"inotify\": {e}")),
    }
}

struct Worker {
    discover: Discover,
    /// Directories to watch, and whether the watch is in place (a directory
    /// that does not exist yet is retried at every scan).
    roots: Vec<(PathBuf, RecursiveMode, bool)>,
    watcher: Box<dyn Watcher + Send>,
    /// Files handed to the reading thread and not closed by it since.
    known: HashSet<DevIno>,
    /// Paths that could not be opened, warned about once.
    warned: HashSet<PathBuf>,
    found: Sender<Found>,
    poll: Duration,
}

impl Worker {
    fn run(&mut self, events: &Receiver<notify::Result<notify::Event>>, closed: &Receiver<DevIno>, stop: &AtomicBool) {
        let mut next_scan = Instant::now();
        // Wakes up at least this often to notice `stop`.
        let tick = self.poll.min(Duration::from_millis(100));
        while !stop.load(Ordering::Relaxed) {
            let mut rescan = Instant::now() >= next_scan;
            if !rescan {
                let wait = next_scan.saturating_duration_since(Instant::now()).min(tick);
                crossbeam_channel::select! {
                    recv(events) -> e => rescan |= e.is_ok_and(|e| wants_scan(&e)),
                    recv(closed) -> id => {
                        if let Ok(id) = id {
                            self.known.remove(&id);
                        }
                    }
                    default(wait) => {}
                }
            }
            // Whatever else queued up is folded into the same scan.
            for e in events.try_iter() {
                rescan |= wants_scan(&e);
            }
            for id in closed.try_iter() {
                self.known.remove(&id);
            }
            if rescan || Instant::now() >= next_scan {
                if self.scan().is_err() {
                    return; // the reading thread is gone
                }
                next_scan = Instant::now() + self.poll;
            }
        }
    }

    fn scan(&mut self) -> Result<(), crossbeam_channel::SendError<Found>> {
        for (dir, mode, watching) in &mut self.roots {
            if !*watching {
                match self.watcher.watch(dir, *mode) {
                    Ok(()) => *watching = true,
                    // Not there yet: the scans cover it until it is.
                    Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                    Err(e) => {
                        if self.warned.insert(dir.clone()) {
                            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; new files there are found by polling");
                        }
                    }
                }
            }
        }
        let mut listing = Vec::new();
        for path in self.discover.scan() {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let id = (meta.dev(), meta.ino());
            if self.known.contains(&id) {
                listing.push((path, id));
                continue;
            }
            // Non-blocking, so a FIFO that slipped in cannot hang discovery.
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .and_then(|f| {
                    let m = f.metadata()?;
                    Ok((f, m))
                });
            match opened {
                Ok((file, m)) if m.is_file() => {
                    self.warned.remove(&path);
                    // What the descriptor is, not what the path was a moment ago.
                    let id = (m.dev(), m.ino());
                    listing.push((path.clone(), id));
                    if self.known.insert(id) {
                        self.found.send(Found::Opened { path, file, id })?;
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    if !self.warned.contains(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot open file; will retry");
                        self.warned.insert(path);
                    }
                }
            }
        }
        self.found.send(Found::Listing(listing))
    }
}

/// Whether a watcher event can mean a file appeared, moved or went away
/// (writes to files already open are the reading thread's business).
fn wants_scan(e: &notify::Result<notify::Event>) -> bool {
    match e {
        Ok(e) => {
            e.need_rescan()
                || matches!(
                    e.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                        | EventKind::Any
                        | EventKind::Other
                )
        }
        Err(e) => {
            tracing::debug!(error = %e, "watcher error; rescanning");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_minus_exclude() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.log", "b.log", "c.log.gz", "d.txt"] {
            std::fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        let d = dir.path().display();
        let disc = Discover::new(&[FileInput {
            include: vec![format!("{d}/*.log*")],
            exclude: vec![format!("{d}/*.gz")],
            ..Default::default()
        }]);
        let names: Vec<_> = disc
            .scan()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.log", "b.log"]);
    }

    #[test]
    fn roots_of_patterns() {
        assert_eq!(root_of("/var/log/app/*.log"), (PathBuf::from("/var/log/app"), false));
        assert_eq!(root_of("/var/log/*/x.log"), (PathBuf::from("/var/log"), true));
        assert_eq!(root_of("/var/log/**/*.log"), (PathBuf::from("/var/log"), true));
        assert_eq!(root_of("/var/log/syslog"), (PathBuf::from("/var/log"), false));
    }

    fn config(dir: &Path, watch: &str, poll_ms: u64) -> ShipperConfig {
        serde_json::from_value(serde_json::json!({
            "data_dir": dir.join("data"),
            "poll_interval_ms": poll_ms,
            "watch": watch,
            "inputs": [{"include": [format!("{}/logs/*.log*", dir.display())]}],
        }))
        .unwrap()
    }

    /// Waits for the next `Opened`, skipping listings.
    fn next_opened(d: &Discovery, within: Duration) -> Option<(PathBuf, File, DevIno)> {
        let deadline = Instant::now() + within;
        while let Ok(f) = d.found.recv_deadline(deadline) {
            if let Found::Opened { path, file, id } = f {
                return Some((path, file, id));
            }
        }
        None
    }

    /// With a scan interval far longer than the test, only inotify can
    /// find the file, and it must hold it open across rename and delete.
    #[test]
    fn inotify_opens_a_new_file_at_once_and_keeps_it_through_deletion() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let d = Discovery::spawn(&config(dir.path(), "inotify", 60_000)).unwrap();
        // The first scan runs at start; anything after it needs an event.
        std::thread::sleep(Duration::from_millis(200));
        let path = dir.path().join("logs/app.log");
        std::fs::write(&path, b"first line\nsecond line\n").unwrap();
        let (p, file, _) = next_opened(&d, Duration::from_secs(1)).expect("not opened within 1 s");
        assert_eq!(p, path);
        std::fs::rename(&path, dir.path().join("logs/app.log.1")).unwrap();
        std::fs::remove_file(dir.path().join("logs/app.log.1")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut &file, &mut s).unwrap();
        assert_eq!(s, "first line\nsecond line\n");
    }

    #[test]
    fn a_renamed_file_is_listed_under_its_new_name_not_reopened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let path = dir.path().join("logs/app.log");
        std::fs::write(&path, b"x\n").unwrap();
        let d = Discovery::spawn(&config(dir.path(), "auto", 60_000)).unwrap();
        let (_, _file, id) = next_opened(&d, Duration::from_secs(1)).unwrap();
        std::fs::rename(&path, dir.path().join("logs/app.log.1")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match d.found.recv_deadline(deadline).expect("no listing with the new name") {
                Found::Opened { path, .. } => panic!("reopened {}", path.display()),
                Found::Listing(l) if l == [(dir.path().join("logs/app.log.1"), id)] => break,
                Found::Listing(_) => {}
            }
        }
    }

    #[test]
    fn polling_finds_new_files_and_reopens_closed_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let d = Discovery::spawn(&config(dir.path(), "poll", 50)).unwrap();
        std::fs::write(dir.path().join("logs/a.log"), b"x\n").unwrap();
        let (_, file, id) = next_opened(&d, Duration::from_secs(2)).expect("poll did not find it");
        drop(file);
        d.closed(id);
        let (_, _, again) = next_opened(&d, Duration::from_secs(2)).expect("not reopened after close");
        assert_eq!(again, id);
    }
}
