//! Joining continuation lines (stack traces) into one event, per input
//! (`[shipper.inputs.multiline]`), the way Vector's and Filebeat's
//! `start_pattern` mode does: a line matching the pattern starts a new event;
//! any other line is appended to the pending one with a `\n`. A continuation
//! line with no event before it (the file starts mid-trace) is an event of
//! its own.
//!
//! Limits, so memory stays bounded and nothing waits for ever:
//! * `max_lines`: the event is shipped; the next continuation line starts a
//!   new event (nothing is dropped);
//! * `max_bytes`: the event's bytes beyond it are dropped and the event is
//!   flagged with its full length (header `logpipe.truncated`), like an
//!   over-long line;
//! * `timeout_ms`: a pending event is shipped once no line joined it for
//!   this long (the last event of a file that went quiet).
//!
//! The event's offset is its first line's, its end its last line's end. The
//! checkpoint only moves past an event once Kafka acknowledged it, because
//! the event is registered with the file's ack tracker only when it is sent:
//! after a crash, reading resumes at the start of the first unacknowledged
//! event and rebuilds it whole.

use std::path::Path;
use std::time::{Duration, Instant};

use logpipe_config::{FileInput, MultilineConfig};
use regex::bytes::Regex;

use crate::tail::Line;

/// One joined event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub offset: u64,
    pub end: u64,
    pub bytes: Vec<u8>,
    pub lines: usize,
    /// Full length in bytes the event would have had, when it was cut (at
    /// `max_bytes`, or because one of its lines was cut at `max_line_bytes`).
    pub truncated: Option<u64>,
}

pub struct Joiner {
    start: Regex,
    max_lines: usize,
    max_bytes: usize,
    timeout: Duration,
    pending: Option<Event>,
    /// Full length of the pending event (it may be longer than its bytes).
    total: u64,
    last_add: Instant,
}

/// The joiner for a file: that of the first input whose include globs match
/// its path and whose exclude globs do not, if that input has `multiline`.
pub fn for_path(inputs: &[FileInput], path: &Path) -> Option<Joiner> {
    let matches = |globs: &[String]| {
        globs
            .iter()
            .filter_map(|g| glob::Pattern::new(g).ok())
            .any(|p| p.matches_path(path))
    };
    let input = inputs.iter().find(|i| matches(&i.include) && !matches(&i.exclude))?;
    // The pattern was checked when the config was loaded.
    input.multiline.as_ref().and_then(|m| Joiner::new(m).ok())
}

impl Joiner {
    pub fn new(cfg: &MultilineConfig) -> Result<Joiner, regex::Error> {
        Ok(Joiner {
            start: Regex::new(&cfg.start_pattern)?,
            max_lines: cfg.max_lines.max(1),
            max_bytes: cfg.max_bytes,
            timeout: Duration::from_millis(cfg.timeout_ms),
            pending: None,
            total: 0,
            last_add: Instant::now(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_none()
    }

    /// Forgets the pending event (after a rewind its lines are read again).
    pub fn clear(&mut self) {
        self.pending = None;
    }

    /// Takes `line`, shipping the pending event through `send` first when
    /// `line` cannot join it. Returns `false` (and keeps everything as it
    /// was) when `send` refused, so the tail offers the same line again.
    pub fn offer(&mut self, line: &Line<'_>, send: impl FnOnce(&Event) -> bool) -> bool {
        if let Some(ev) = &self.pending {
            let starts = self.start.is_match(line.bytes);
            if starts || ev.lines >= self.max_lines {
                if !send(ev) {
                    return false;
                }
                self.pending = None;
            }
        }
        let full = line.truncated.unwrap_or(line.bytes.len() as u64);
        match &mut self.pending {
            None => {
                let keep = line.bytes.len().min(self.max_bytes);
                self.total = full;
                self.pending = Some(Event {
                    offset: line.offset,
                    end: line.end,
                    bytes: line.bytes[..keep].to_vec(),
                    lines: 1,
                    truncated: None,
                });
            }
            Some(ev) => {
                self.total += 1 + full;
                let room = self.max_bytes.saturating_sub(ev.bytes.len());
                if room > 0 {
                    ev.bytes.push(b'\n');
                    let keep = line.bytes.len().min(room - 1);
                    ev.bytes.extend_from_slice(&line.bytes[..keep]);
                }
                ev.end = line.end;
                ev.lines += 1;
            }
        }
        if let Some(ev) = &mut self.pending {
            if self.total > ev.bytes.len() as u64 {
                ev.truncated = Some(self.total);
            }
        }
        self.last_add = Instant::now();
        true
    }

    /// Ships the pending event if no line joined it for the timeout.
    pub fn flush_expired(&mut self, send: impl FnOnce(&Event) -> bool) {
        if self.pending.is_some() && self.last_add.elapsed() >= self.timeout {
            self.flush(send);
        }
    }

    /// Ships the pending event now. Returns whether nothing is pending any more.
    pub fn flush(&mut self, send: impl FnOnce(&Event) -> bool) -> bool {
        match &self.pending {
            Some(ev) if send(ev) => {
                self.pending = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joiner(max_lines: usize, max_bytes: usize) -> Joiner {
        Joiner::new(&MultilineConfig {
            start_pattern: r"^\d{4}-\d{2}-\d{2}".into(),
            max_lines,
            max_bytes,
            timeout_ms: 0,
        })
        .unwrap()
    }

    /// Feeds newline-terminated `text` line by line; collects (offset, end, bytes, truncated).
    fn run(j: &mut Joiner, text: &str) -> Vec<(u64, u64, String, Option<u64>)> {
        let mut out = Vec::new();
        let mut off = 0u64;
        for l in text.split_inclusive('\n') {
            let bytes = l.strip_suffix('\n').unwrap().as_bytes();
            let line = Line {
                offset: off,
                end: off + l.len() as u64,
                bytes,
                truncated: None,
            };
            assert!(j.offer(&line, |e| {
                out.push((
                    e.offset,
                    e.end,
                    String::from_utf8_lossy(&e.bytes).into_owned(),
                    e.truncated,
                ));
                true
            }));
            off += l.len() as u64;
        }
        j.flush(|e| {
            out.push((
                e.offset,
                e.end,
                String::from_utf8_lossy(&e.bytes).into_owned(),
                e.truncated,
            ));
            true
        });
        out
    }

    const TRACE: &str = "2026-11-23 ERROR boom\n\
        java.lang.IllegalStateException: bad\n\
        \tat a.B.c(B.java:10)\n\
        \tat a.B.d(B.java:20)\n\
        2026-11-23 INFO fine\n";

    #[test]
    fn joins_continuation_lines_to_the_line_that_started_the_event() {
        let got = run(&mut joiner(500, 1 << 20), &format!("  orphan\n{TRACE}"));
        assert_eq!(
            got,
            vec![
                (0, 9, "  orphan".into(), None),
                (
                    9,
                    110,
                    "2026-11-23 ERROR boom\njava.lang.IllegalStateException: bad\n\tat a.B.c(B.java:10)\n\tat a.B.d(B.java:20)"
                        .into(),
                    None
                ),
                (110, 131, "2026-11-23 INFO fine".into(), None),
            ]
        );
    }

    #[test]
    fn max_lines_ships_the_event_and_keeps_every_line() {
        let got = run(&mut joiner(2, 1 << 20), TRACE);
        let texts: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
        assert_eq!(
            texts,
            [
                "2026-11-23 ERROR boom\njava.lang.IllegalStateException: bad",
                "\tat a.B.c(B.java:10)\n\tat a.B.d(B.java:20)",
                "2026-11-23 INFO fine"
            ]
        );
    }

    #[test]
    fn max_bytes_cuts_and_flags_the_event() {
        let got = run(&mut joiner(500, 30), TRACE);
        assert_eq!(got[0].2, "2026-11-23 ERROR boom\njava.lan");
        assert_eq!(got[0].3, Some(100));
        assert_eq!((got[0].0, got[0].1), (0, 101));
        assert_eq!(got[1].3, None);
    }

    #[test]
    fn a_refused_send_leaves_everything_to_be_offered_again() {
        let mut j = joiner(500, 1 << 20);
        let a = Line {
            offset: 0,
            end: 11,
            bytes: b"2026-11-23 a",
            truncated: None,
        };
        let b = Line {
            offset: 11,
            end: 22,
            bytes: b"2026-11-23 b",
            truncated: None,
        };
        assert!(j.offer(&a, |_| unreachable!()));
        assert!(!j.offer(&b, |_| false));
        let mut sent = Vec::new();
        assert!(j.offer(&b, |e| {
            sent.push(e.bytes.clone());
            true
        }));
        assert_eq!(sent, vec![b"2026-11-23 a".to_vec()]);
        j.flush_expired(|e| {
            sent.push(e.bytes.clone());
            true
        });
        assert_eq!(sent.len(), 2);
        assert!(j.is_empty());
    }

    #[test]
    fn the_input_of_a_path_decides() {
        let input = |inc: &str, ml: bool| FileInput {
            include: vec![inc.into()],
            multiline: ml.then(|| MultilineConfig {
                start_pattern: "^x".into(),
                max_lines: 5,
                max_bytes: 100,
                timeout_ms: 10,
            }),
            ..Default::default()
        };
        let inputs = [input("/logs/plain/*.log", false), input("/logs/*/*.log", true)];
        assert!(for_path(&inputs, Path::new("/logs/plain/a.log")).is_none());
        assert!(for_path(&inputs, Path::new("/logs/java/a.log")).is_some());
    }
}
