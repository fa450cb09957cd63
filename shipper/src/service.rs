//! The shipper loop: adopt discovered files, read, send, apply
//! acknowledgements, checkpoint.
//!
//! It runs on one plain thread: reading files and enqueueing to librdkafka
//! never wait on anything but each other, and one thread owning every file's
//! state needs no locks. Files arrive already open from the discovery thread
//! (`discover`), acknowledgements on a channel from librdkafka's delivery
//! thread.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use logpipe_config::{KafkaConfig, ShipperConfig, StartAt};
use logpipe_core::ack::AckTracker;
use logpipe_core::shutdown::CancellationToken;
use logpipe_core::{kafka, now_ms};
use logpipe_schemas::raw;
use rdkafka::producer::Producer as _;

use crate::checkpoint::Checkpoints;
use crate::discover::{DevIno, Discovery, Found};
use crate::fingerprint;
use crate::multiline::{self, Joiner};
use crate::produce::{self, Ack, LineKey, Producer, SendError};
use crate::rotate::Rotator;
use crate::tail::{Outcome, Tail};

/// One file being tailed.
struct Watched {
    path: PathBuf,
    fingerprint: u64,
    dev_ino: (u64, u64),
    tail: Tail,
    tracker: AckTracker,
    /// The raw topic's partition of this file, once the partition count is known.
    partition: Option<i32>,
    /// The raw record key of this file's lines, up to the offset.
    line_key: LineKey,
    /// The path now names another file (or none): read to the end, then let go.
    rotated: bool,
    /// Truncated under us (copytruncate): read no more, wait for acks, let go.
    retired: bool,
    /// A delivery failed: resend everything after the checkpoint.
    needs_rewind: bool,
    last_progress: Instant,
    /// Lines acknowledged since the checkpoint file was last written. With
    /// the lines in flight they make up what a crash would re-send, so the
    /// two together are held under `max_in_flight_lines`.
    unpersisted: usize,
    /// Multiline joining, when the file's input asks for it.
    multiline: Option<Joiner>,
    stats: FileStats,
}

/// Per-file totals since the file was opened, published as gauges labelled
/// with the file's path (see `report`). Bytes are file bytes (terminators
/// included), so read, sent and acknowledged bytes compare with the file size.
#[derive(Default)]
struct FileStats {
    lines_read: u64,
    bytes_read: u64,
    /// Records enqueued: lines, or joined events with multiline.
    lines_sent: u64,
    bytes_sent: u64,
    lines_acked: u64,
    bytes_acked: u64,
}

/// A file opened by discovery whose reading cannot start yet: its first line
/// is not complete (no identity yet), or it is a copy of a file still being
/// read (copytruncate). Holding its descriptor keeps its bytes readable even
/// if it is deleted meanwhile.
struct Pending {
    path: PathBuf,
    file: File,
    id: DevIno,
    /// The inode of a file truncated under us: its new content starts at 0.
    truncated_in_place: bool,
    /// Found by the first scan: `start_at` applies (files that appear later
    /// are read from their beginning, or rotation would lose their first lines).
    at_startup: bool,
    rotated_at: Option<Instant>,
}

#[derive(Default)]
struct Counters {
    lines_read: u64,
    bytes_read: u64,
    lines_acked: u64,
    lines_truncated: u64,
    delivery_failures: u64,
}

pub fn run(
    cfg: &ShipperConfig,
    kafka_cfg: &KafkaConfig,
    host: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (ctx, acks) = produce::ack_channel();
    let mut producer_cfg = kafka::producer_config(kafka_cfg);
    for (key, value) in SHIPPER_PRODUCER {
        if !kafka_cfg.options.contains_key(*key) {
            producer_cfg.set(*key, *value);
        }
    }
    let producer: Producer = producer_cfg
        .create_with_context(ctx)
        .context("creating the Kafka producer")?;
    // Each line's key is its own (its source and offset), so the shipper
    // names the partition, one per file: see `State::partitions`.
    let partitions = kafka::warm_up(producer.client(), &kafka_cfg.raw_topic, Duration::from_secs(2));
    let mut checkpoints = Checkpoints::load(&cfg.data_dir)?;
    let discovery = Discovery::spawn(cfg)?;
    let mut state = State {
        cfg,
        topic: &kafka_cfg.raw_topic,
        host,
        producer,
        slots: Vec::new(),
        discovery,
        pending: Vec::new(),
        listed_once: false,
        last_pending_try: Instant::now(),
        counters: Counters::default(),
        fatal_backoff_until: None,
        queue_full: false,
        next_slot: 0,
        partitions,
        last_metadata_try: Instant::now(),
        own_rotation: Rotator::new(&cfg.inputs),
        last_rotated_scan: None,
    };

    let checkpoint_every = Duration::from_millis(cfg.checkpoint_interval_ms);
    let mut last_checkpoint = Instant::now();
    let mut last_expire = Instant::now();
    // Often enough that a short TTL (tests, small disks) is kept to.
    let expire_every = Duration::from_secs((cfg.checkpoint_ttl_secs / 2).clamp(1, 60));

    while !shutdown.is_cancelled() {
        state.adopt(&checkpoints);
        state.adopt_rotated(&mut checkpoints);
        // Discovery holds new files open already, so a pass only yields
        // for them to be adopted and read in a timely way.
        let progressed = state.read_all(Instant::now() + PASS);
        let queue_full = std::mem::take(&mut state.queue_full);
        state.apply_acks(
            &acks,
            &mut checkpoints,
            if progressed && !queue_full {
                None
            } else {
                Some(Duration::from_millis(20))
            },
        );
        if queue_full {
            // Acknowledgements arrive in bursts, one per produce response.
            // Taking only the first would free room for a few lines and wake
            // this thread again and again; a moment later the burst is in.
            std::thread::sleep(Duration::from_millis(1));
            state.apply_acks(&acks, &mut checkpoints, None);
        }
        // Early when re-send windows fill up, but at most four times a
        // second: each write is two fsyncs, on this thread.
        let since = last_checkpoint.elapsed();
        if since >= checkpoint_every || (since >= MIN_PERSIST_GAP && state.window_needs_persist()) {
            checkpoints.persist()?;
            state.persisted();
            state.report();
            last_checkpoint = Instant::now();
        }
        if last_expire.elapsed() >= expire_every {
            let now = now_ms();
            for w in state.slots.iter().flatten() {
                checkpoints.touch(w.fingerprint, now);
            }
            let gone = checkpoints.expire(now, cfg.checkpoint_ttl_secs as i64 * 1000);
            if gone > 0 {
                tracing::info!(gone, "expired checkpoints of files gone for good");
            }
            last_expire = Instant::now();
        }
    }

    // Drain: stop reading, let Kafka acknowledge what is in flight, record it.
    tracing::info!("draining: flushing the producer");
    let deadline = Duration::from_secs(cfg.drain_timeout_secs);
    if let Err(e) = state.producer.flush(deadline) {
        tracing::warn!(error = %e, "not everything was acknowledged before the drain deadline; it will be re-sent at the next start");
    }
    state.apply_acks(&acks, &mut checkpoints, None);
    checkpoints.persist()?;
    state.report();
    tracing::info!("shipper stopped");
    Ok(())
}

struct State<'a> {
    cfg: &'a ShipperConfig,
    topic: &'a str,
    host: &'a str,
    producer: Producer,
    slots: Vec<Option<Watched>>,
    discovery: Discovery,
    pending: Vec<Pending>,
    /// Whether discovery's first scan was taken in (see [`Pending::at_startup`]).
    listed_once: bool,
    last_pending_try: Instant,
    counters: Counters,
    fatal_backoff_until: Option<Instant>,
    /// librdkafka's queue refused a line during the last reading pass.
    queue_full: bool,
    /// Where the next reading pass starts, so a pass cut short by its
    /// deadline does not starve the files after it.
    next_slot: usize,
    /// The raw topic's partition count, learnt at start-up. A file's lines
    /// all go to its `produce::source_partition`, so that they stay in order;
    /// until the count is known nothing is read.
    partitions: Option<i32>,
    last_metadata_try: Instant,
    /// The inputs logpipe rotates itself, to find their rotated files.
    own_rotation: Rotator,
    last_rotated_scan: Option<Instant>,
}

impl State<'_> {
    /// Takes in what discovery found, and starts reading pending files
    /// whose identity is now known.
    fn adopt(&mut self, checkpoints: &Checkpoints) {
        let mut any = false;
        while let Ok(found) = self.discovery.found.try_recv() {
            any = true;
            match found {
                Found::Opened { path, file, id } => {
                    let have = self.slots.iter().flatten().any(|w| !w.retired && w.dev_ino == id)
                        || self.pending.iter().any(|p| p.id == id);
                    if have {
                        continue; // already reading it through another descriptor
                    }
                    let truncated_in_place = self.slots.iter().flatten().any(|w| w.retired && w.dev_ino == id);
                    self.pending.push(Pending {
                        path,
                        file,
                        id,
                        truncated_in_place,
                        at_startup: !self.listed_once,
                        rotated_at: None,
                    });
                }
                Found::Listing(listing) => {
                    self.listed_once = true;
                    self.apply_listing(listing);
                }
            }
        }
        if any || self.last_pending_try.elapsed() >= PENDING_RETRY {
            self.last_pending_try = Instant::now();
            self.try_pending(checkpoints);
        }
    }

    /// Takes in rotated files of the inputs logpipe rotates itself that Kafka
    /// does not have all of. Most rotated files were open here when they were
    /// renamed and are read on through that descriptor; these are the others:
    /// a live file renamed before discovery first opened it (it outgrew
    /// `max_bytes` before the first scan), a file left half read by a crash,
    /// and the copy of a copytruncate rotation. Their names match no glob, so
    /// discovery never lists them.
    fn adopt_rotated(&mut self, checkpoints: &mut Checkpoints) {
        if self.own_rotation.is_empty() || self.last_rotated_scan.is_some_and(|t| t.elapsed() < ROTATED_SCAN) {
            return;
        }
        self.last_rotated_scan = Some(Instant::now());
        let now = now_ms();
        for r in self.own_rotation.rotated_files() {
            let Ok(file) = File::open(&r.path) else { continue };
            let Ok(meta) = file.metadata() else { continue };
            let id = (meta.dev(), meta.ino());
            if self.holds(id) {
                continue; // being read already
            }
            let Ok(Some(fp)) = fingerprint::of_file(&file) else {
                continue;
            };
            if checkpoints.get(fp).is_some_and(|off| off >= meta.len()) {
                // Kafka has it all. Its checkpoint lives as long as the file
                // does, or a file kept longer than the TTL would be sent again.
                checkpoints.touch(fp, now);
                continue;
            }
            if self.slots.iter().flatten().any(|w| w.fingerprint == fp && !w.retired) {
                continue; // a copy of a file still read: its turn comes after
            }
            tracing::info!(path = %r.path.display(), live = %r.live.display(), "a rotated file Kafka does not have all of; reading it");
            self.pending.push(Pending {
                // Its lines are the live file's: the same path in their keys
                // and the same format and multiline rules as if the rename
                // had been followed.
                path: r.live,
                file,
                id,
                truncated_in_place: false,
                at_startup: !self.listed_once,
                rotated_at: Some(Instant::now()),
            });
        }
    }

    /// Follows renames, and marks files no longer listed as rotated away.
    fn apply_listing(&mut self, listing: Vec<(PathBuf, DevIno)>) {
        let now_at: HashMap<DevIno, PathBuf> = listing.into_iter().map(|(p, id)| (id, p)).collect();
        for w in self.slots.iter_mut().flatten().filter(|w| !w.retired) {
            match now_at.get(&w.dev_ino) {
                Some(path) => {
                    if *path != w.path {
                        tracing::info!(from = %w.path.display(), to = %path.display(), "file renamed");
                        w.path = path.clone();
                        w.line_key = LineKey::new(self.host, w.fingerprint, &w.path.display().to_string());
                    }
                    w.rotated = false;
                }
                None if !w.rotated => {
                    tracing::info!(path = %w.path.display(), "file rotated away; reading it to its end");
                    w.rotated = true;
                }
                None => {}
            }
        }
        for p in &mut self.pending {
            match now_at.get(&p.id) {
                Some(path) => {
                    p.path = path.clone();
                    p.rotated_at = None;
                }
                None => {
                    p.rotated_at.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    fn try_pending(&mut self, checkpoints: &Checkpoints) {
        let idle = Duration::from_millis(self.cfg.rotated_idle_close_ms);
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let gone_idle = p.rotated_at.is_some_and(|t| t.elapsed() >= idle);
            match fingerprint::of_file(&p.file) {
                Ok(Some(fp)) => {
                    // Same content as a file already tailed: a copy made by
                    // copytruncate rotation, or a hard link. While the original
                    // is open its lines are read there; once it was truncated
                    // and everything it sent is acknowledged, it is let go and
                    // the copy is read here, resuming at the checkpoint, so
                    // the lines written just before the truncation are read
                    // from the copy. A copy that went away while its original
                    // is still read normally is not needed.
                    let original = self.slots.iter().flatten().find(|w| w.fingerprint == fp);
                    match original {
                        Some(w) if gone_idle && !w.retired => {
                            let p = self.pending.remove(i);
                            self.let_go(p.id);
                        }
                        Some(_) => i += 1,
                        None => {
                            let p = self.pending.remove(i);
                            if let Err(e) = self.open(p, fp, checkpoints) {
                                tracing::warn!(error = %e, "cannot start reading a file");
                            }
                        }
                    }
                }
                // No complete first line yet, and gone: nothing to read.
                Ok(None) if gone_idle => {
                    let p = self.pending.remove(i);
                    self.let_go(p.id);
                }
                Ok(None) => i += 1,
                Err(e) => {
                    tracing::warn!(path = %p.path.display(), error = %e, "cannot read file; will retry");
                    i += 1;
                }
            }
        }
    }

    fn open(&mut self, p: Pending, fp: u64, checkpoints: &Checkpoints) -> anyhow::Result<()> {
        let len = p.file.metadata()?.len();
        let start = match checkpoints.get(fp) {
            // Shorter than the checkpoint: rewritten while we were away.
            Some(off) if off > len => 0,
            Some(off) => off,
            None if p.truncated_in_place => 0,
            None if p.at_startup && self.cfg.start_at == StartAt::End => len,
            None => 0,
        };
        tracing::info!(path = %p.path.display(), fingerprint = %raw::fingerprint_hex(fp), start, "tailing");
        let multiline = multiline::for_path(&self.cfg.inputs, &p.path);
        let w = Watched {
            fingerprint: fp,
            dev_ino: p.id,
            tail: Tail::new(p.file, start, self.cfg.max_line_bytes).verify_identity(fp),
            tracker: AckTracker::new(start),
            partition: None,
            line_key: LineKey::new(self.host, fp, &p.path.display().to_string()),
            path: p.path,
            rotated: p.rotated_at.is_some(),
            retired: false,
            needs_rewind: false,
            last_progress: Instant::now(),
            unpersisted: 0,
            multiline,
            stats: FileStats::default(),
        };
        match self.slots.iter().position(Option::is_none) {
            Some(i) => self.slots[i] = Some(w),
            None => self.slots.push(Some(w)),
        }
        Ok(())
    }

    /// Tells discovery a file was let go, unless another descriptor of it is
    /// still read here (a file truncated in place and read anew).
    fn let_go(&self, id: DevIno) {
        if !self.holds(id) {
            self.discovery.closed(id);
        }
    }

    /// Whether a descriptor of file `id` is open here, read or pending.
    fn holds(&self, id: DevIno) -> bool {
        self.slots.iter().flatten().any(|w| w.dev_ino == id) || self.pending.iter().any(|p| p.id == id)
    }

    /// Whether the raw topic's partition count is known; asks the broker again,
    /// at most once a second, while it is not (it was down at start-up).
    fn partitions_known(&mut self) -> bool {
        if self.partitions.is_none() && self.last_metadata_try.elapsed() >= Duration::from_secs(1) {
            self.partitions = kafka::warm_up(self.producer.client(), self.topic, Duration::from_millis(200));
            self.last_metadata_try = Instant::now();
            if self.partitions.is_some() {
                tracing::info!(topic = self.topic, "raw topic reachable; reading");
            }
        }
        self.partitions.is_some()
    }

    /// One pass of reading over every file. Returns whether anything moved.
    fn read_all(&mut self, deadline: Instant) -> bool {
        if self.fatal_backoff_until.is_some_and(|t| Instant::now() < t) || !self.partitions_known() {
            return false;
        }
        let partitions = self.partitions.expect("known");
        let partial = Duration::from_millis(self.cfg.partial_line_timeout_ms);
        let max_in_flight = self.cfg.max_in_flight_lines;
        let mut progressed = false;
        let n = self.slots.len();
        for i in 0..n {
            if i > 0 && Instant::now() >= deadline {
                self.next_slot = (self.next_slot + i) % n;
                return true;
            }
            let slot = (self.next_slot + i) % n;
            let Some(w) = self.slots[slot].as_mut() else { continue };
            if w.needs_rewind {
                let pos = w.tracker.rewind();
                w.tail.rewind(pos);
                w.needs_rewind = false;
                if let Some(j) = &mut w.multiline {
                    j.clear();
                }
            }
            if w.retired || w.tracker.in_flight() + w.unpersisted >= max_in_flight {
                continue;
            }
            let unpersisted = w.unpersisted;
            let (producer, topic, counters, queue_full) =
                (&self.producer, self.topic, &mut self.counters, &mut self.queue_full);
            let mut fatal = None;
            // The record's timestamp is when the line was read; one clock read
            // per poll (at most 256 KiB) spares librdkafka one per line.
            let ingest_ms = now_ms();
            let partition = *w
                .partition
                .get_or_insert_with(|| produce::source_partition(self.host, w.fingerprint, partitions));
            let (tracker, line_key, stats) = (&mut w.tracker, &mut w.line_key, &mut w.stats);
            let mut send = |offset: u64, end: u64, bytes: &[u8], truncated: Option<u64>| {
                if tracker.in_flight() + unpersisted >= max_in_flight {
                    return false;
                }
                let headers = produce::line_headers(truncated);
                let opaque = produce::pack(slot, tracker.next_seq());
                let key = line_key.at(offset);
                match produce::send_line(
                    producer,
                    topic,
                    Some(partition),
                    Some(key),
                    bytes,
                    headers,
                    Some(ingest_ms),
                    opaque,
                ) {
                    Ok(()) => {
                        tracker.register(end);
                        stats.lines_sent += 1;
                        stats.bytes_sent += end - offset;
                        counters.lines_read += 1;
                        counters.bytes_read += bytes.len() as u64;
                        counters.lines_truncated += truncated.is_some() as u64;
                        true
                    }
                    Err(SendError::QueueFull) => {
                        *queue_full = true;
                        false
                    }
                    Err(SendError::Fatal(e)) => {
                        fatal = Some(e);
                        false
                    }
                }
            };
            let multi = &mut w.multiline;
            let mut read = (0u64, 0u64);
            let outcome = w.tail.poll(partial, |line| {
                let taken = match multi {
                    None => send(line.offset, line.end, line.bytes, line.truncated),
                    Some(j) => j.offer(&line, |e| send(e.offset, e.end, &e.bytes, e.truncated)),
                };
                if taken {
                    read.0 += 1;
                    read.1 += line.end - line.offset;
                }
                taken
            });

            if let Some(j) = multi {
                j.flush_expired(|e| send(e.offset, e.end, &e.bytes, e.truncated));
            }
            w.stats.lines_read += read.0;
            w.stats.bytes_read += read.1;
            if let Some(e) = fatal {
                tracing::error!(error = %e, "cannot enqueue to Kafka; retrying in 1s");
                self.fatal_backoff_until = Some(Instant::now() + Duration::from_secs(1));
            }
            match outcome {
                Ok(Outcome::Progress) => {
                    progressed = true;
                    w.last_progress = Instant::now();
                }
                Ok(Outcome::Truncated) => {
                    tracing::info!(path = %w.path.display(), "file truncated (copytruncate); starting it over");
                    w.retired = true;
                    // Its new content is read through a descriptor of its own
                    // once it has a first line; this one waits for acks.
                    match w.tail.file().try_clone() {
                        Ok(file) => self.pending.push(Pending {
                            path: w.path.clone(),
                            file,
                            id: w.dev_ino,
                            truncated_in_place: true,
                            at_startup: false,
                            rotated_at: None,
                        }),
                        Err(e) => {
                            tracing::warn!(path = %w.path.display(), error = %e, "cannot reopen a truncated file; discovery will");
                            self.discovery.closed(w.dev_ino);
                        }
                    }
                }
                Ok(Outcome::Idle | Outcome::Blocked) => {}
                Err(e) => tracing::warn!(path = %w.path.display(), error = %e, "read failed; will retry"),
            }
        }
        progressed
    }

    /// Whether some file's re-send window is half full of acknowledged lines
    /// that only a checkpoint write would take out of it.
    fn window_needs_persist(&self) -> bool {
        let half = (self.cfg.max_in_flight_lines / 2).max(1);
        self.slots.iter().flatten().any(|w| w.unpersisted >= half)
    }

    /// The checkpoint file was written: nothing acknowledged is unpersisted.
    fn persisted(&mut self) {
        for w in self.slots.iter_mut().flatten() {
            w.unpersisted = 0;
        }
    }

    /// Lets go of files that are done: truncated ones once acknowledged, and
    /// rotated ones once read to the end, acknowledged and idle.
    fn release_finished(&mut self, checkpoints: &mut Checkpoints) {
        let idle = Duration::from_millis(self.cfg.rotated_idle_close_ms);
        for i in 0..self.slots.len() {
            let Some(w) = &self.slots[i] else { continue };
            let done = w.tracker.in_flight() == 0
                && !w.needs_rewind
                // A retired file's pending event is re-read from the copy,
                // which resumes at the checkpoint: its start.
                && (w.retired || w.multiline.as_ref().is_none_or(Joiner::is_empty))
                && (w.retired
                    || (w.rotated
                        && w.last_progress.elapsed() >= idle
                        && w.tail.file_len().is_ok_and(|len| len == w.tail.consumed())));
            if done {
                tracing::info!(path = %w.path.display(), "done with file");
                // A copy of it (copytruncate) resumes from here.
                checkpoints.set(
                    w.fingerprint,
                    w.tracker.committed(),
                    &w.path.to_string_lossy(),
                    now_ms(),
                );
                let id = w.dev_ino;
                self.slots[i] = None;
                self.let_go(id);
            }
        }
    }

    /// Applies delivery results; waits up to `wait` for the first one.
    fn apply_acks(
        &mut self,
        acks: &crossbeam_channel::Receiver<Ack>,
        checkpoints: &mut Checkpoints,
        wait: Option<Duration>,
    ) -> usize {
        let mut n = 0;
        let first = match wait {
            Some(d) => acks.recv_timeout(d).ok(),
            None => acks.try_recv().ok(),
        };
        let mut next = first;
        while let Some(ack) = next {
            n += 1;
            if let Some(Some(w)) = self.slots.get_mut(ack.slot) {
                if ack.ok {
                    self.counters.lines_acked += 1;
                    w.stats.lines_acked += 1;
                    w.tracker.ack(ack.seq);
                } else {
                    self.counters.delivery_failures += 1;
                    w.needs_rewind = true;
                }
            }
            next = acks.try_recv().ok();
        }
        if n > 0 {
            let now = now_ms();
            for w in self.slots.iter_mut().flatten() {
                let before = w.tracker.in_flight();
                let from = w.tracker.committed();
                if let Some(pos) = w.tracker.advance() {
                    w.stats.bytes_acked += pos.saturating_sub(from);
                    w.unpersisted += before - w.tracker.in_flight();
                    checkpoints.set(w.fingerprint, pos, &w.path.to_string_lossy(), now);
                }
            }
        }
        self.release_finished(checkpoints);
        n
    }

    /// Publishes counters and per-file gauges.
    fn report(&mut self) {
        let c = std::mem::take(&mut self.counters);
        metrics::counter!("logpipe_shipper_lines_total", "outcome" => "read").increment(c.lines_read);
        metrics::counter!("logpipe_shipper_bytes_total", "outcome" => "read").increment(c.bytes_read);
        metrics::counter!("logpipe_shipper_lines_total", "outcome" => "acked").increment(c.lines_acked);
        // The names every stage shares (README, Operations).
        metrics::counter!("logpipe_events_total", "stage" => "ship", "outcome" => "read").increment(c.lines_read);
        metrics::counter!("logpipe_events_total", "stage" => "ship", "outcome" => "acked").increment(c.lines_acked);
        metrics::counter!("logpipe_shipper_lines_total", "outcome" => "truncated").increment(c.lines_truncated);
        metrics::counter!("logpipe_shipper_delivery_failures_total").increment(c.delivery_failures);
        metrics::gauge!("logpipe_shipper_open_files").set(self.slots.iter().flatten().count() as f64);
        metrics::gauge!("logpipe_shipper_producer_queue").set(self.producer.in_flight_count() as f64);
        // Per file, labelled with its path. Gauges, not counters: a file's
        // series must vanish once it is let go, and only idle gauges expire
        // (`crate::IDLE_GAUGES`); their values are totals since the file was
        // opened by this process.
        for w in self.slots.iter().flatten() {
            let file = w.path.display().to_string();
            let behind = w.tail.file_len().unwrap_or(0).saturating_sub(w.tracker.committed());
            metrics::gauge!("logpipe_shipper_file_bytes_behind", "file" => file.clone()).set(behind as f64);
            let s = &w.stats;
            for (name, outcome, v) in [
                ("logpipe_shipper_file_lines", "read", s.lines_read),
                ("logpipe_shipper_file_lines", "sent", s.lines_sent),
                ("logpipe_shipper_file_lines", "acked", s.lines_acked),
                ("logpipe_shipper_file_bytes", "read", s.bytes_read),
                ("logpipe_shipper_file_bytes", "sent", s.bytes_sent),
                ("logpipe_shipper_file_bytes", "acked", s.bytes_acked),
            ] {
                metrics::gauge!(name, "file" => file.clone(), "outcome" => outcome).set(v as f64);
            }
        }
    }
}

/// The shipper's own producer settings over the shared ones (`kafka.options`
/// still wins): the files are the buffer, so librdkafka's queue only needs to
/// keep batches flowing. librdkafka's byte limit counts payloads only, while
/// each queued line costs about 400 bytes more of its own bookkeeping, so the
/// message count is what bounds memory: 25,000 lines is ~14 MiB and 50 ms at
/// 500,000 lines/s, more than the linger. A longer linger makes fewer, larger (better compressed)
/// requests; the latency is a few ms.
const SHIPPER_PRODUCER: &[(&str, &str)] = &[
    ("queue.buffering.max.kbytes", "16384"),
    ("queue.buffering.max.messages", "25000"),
    ("linger.ms", "20"),
];

const MIN_PERSIST_GAP: Duration = Duration::from_millis(250);
/// Longest reading pass before new files and acknowledgements are taken in.
const PASS: Duration = Duration::from_millis(50);
/// How often rotated files of owned inputs are looked at (`adopt_rotated`).
const ROTATED_SCAN: Duration = Duration::from_secs(1);
/// How often files waiting for their first line are looked at again.
const PENDING_RETRY: Duration = Duration::from_millis(50);
