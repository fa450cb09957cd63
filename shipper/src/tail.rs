//! Reading lines out of one open file.
//!
//! Reads use `pread` at explicit offsets, so the position is plain data we
//! can rewind (after a failed delivery) without seeking. Memory per file is
//! bounded by one read chunk plus `max_line_bytes`, however long a line is.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;

/// One line handed to the sink. `bytes` excludes the `\n` and is exactly what
/// the file holds (a `\r` before the `\n` is kept: the raw topic is byte-exact).
#[derive(Debug)]
pub struct Line<'a> {
    /// Offset of the line's first byte.
    pub offset: u64,
    /// Offset just past the line and its terminator: where reading resumes.
    pub end: u64,
    pub bytes: &'a [u8],
    /// `Some(full length)` when the line was cut at `max_line_bytes`.
    pub truncated: Option<u64>,
}

/// What one [`Tail::poll`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Read something, or the sink took everything it was offered.
    Progress,
    /// Nothing new in the file.
    Idle,
    /// The sink refused a line (its queue is full); the line will be offered again.
    Blocked,
    /// The file is now shorter than what was read: it was truncated (copytruncate).
    Truncated,
}

/// A line longer than `max_line_bytes`: its head is kept, the rest is counted
/// and dropped until the newline arrives.
struct LongLine {
    offset: u64,
    head: Vec<u8>,
    total: u64,
}

pub struct Tail {
    file: File,
    /// File offset of `buf[0]`: every byte before it was handed to the sink
    /// (or dropped as the tail of an over-long line).
    consumed: u64,
    /// `buf[head..]` is read but not yet handed over; it starts at `consumed`.
    /// Handing lines over only moves `head`: the bytes are moved to the front
    /// once per read, not once per poll.
    buf: Vec<u8>,
    head: usize,
    /// The sink refused a complete line that is still in `buf`.
    refused: bool,
    long: Option<LongLine>,
    max_line: usize,
    /// When `buf` last grew, to flush a last line that never gets its newline.
    last_growth: Instant,
    /// The file's fingerprint, checked after every read: a file truncated and
    /// rewritten past our position (copytruncate while we lag) keeps its
    /// length growing, so only its changed first line gives it away.
    identity: Option<u64>,
}

impl Tail {
    pub fn new(file: File, start: u64, max_line: usize) -> Self {
        Tail {
            file,
            consumed: start,
            buf: Vec::new(),
            head: 0,
            refused: false,
            long: None,
            max_line,
            last_growth: Instant::now(),
            identity: None,
        }
    }

    /// Checks after every read that the file still starts with the line
    /// whose fingerprint is `fp`, and reports [`Outcome::Truncated`] otherwise.
    pub fn verify_identity(mut self, fp: u64) -> Self {
        self.identity = Some(fp);
        self
    }

    /// Position up to which lines were handed to the sink.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The open file, for another descriptor of it.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Size of the file now.
    pub fn file_len(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn dev_ino(&self) -> std::io::Result<(u64, u64)> {
        let m = self.file.metadata()?;
        Ok((m.dev(), m.ino()))
    }

    /// Drops what was read but not handed over and resumes from `pos`
    /// (used after a delivery failure: everything after the checkpoint is sent again).
    pub fn rewind(&mut self, pos: u64) {
        self.consumed = pos;
        self.buf.clear();
        self.head = 0;
        self.refused = false;
        self.long = None;
    }

    /// Reads what is new and offers complete lines to `sink`, which returns
    /// `false` to refuse one (backpressure). A last line without a newline is
    /// offered once it has not grown for `partial_timeout`.
    pub fn poll(
        &mut self,
        partial_timeout: Duration,
        mut sink: impl FnMut(Line<'_>) -> bool,
    ) -> std::io::Result<Outcome> {
        let read_at = self.consumed + (self.buf.len() - self.head) as u64;
        let len = self.file_len()?;
        if len < self.consumed {
            return Ok(Outcome::Truncated);
        }
        let mut grew = false;
        // A refused line is offered again before anything more is read, so
        // while Kafka pushes back the buffer stays at one chunk.
        if len > read_at && !std::mem::take(&mut self.refused) {
            // What is left in front is a partial line at most.
            self.buf.drain(..self.head);
            self.head = 0;
            let want = ((len - read_at) as usize).min(CHUNK);
            let old = self.buf.len();
            // Exact, so a file's buffer stays at one chunk plus one partial line.
            self.buf.reserve_exact(want);
            self.buf.resize(old + want, 0);
            let n = self.file.read_at(&mut self.buf[old..], read_at)?;
            self.buf.truncate(old + n);
            // Checked after the read: if the first line is still ours now,
            // the bytes just read were written before any truncation.
            if let Some(fp) = self.identity {
                if n > 0 && crate::fingerprint::of_file(&self.file)? != Some(fp) {
                    self.buf.truncate(old);
                    return Ok(Outcome::Truncated);
                }
            }
            grew = n > 0;
            if grew {
                self.last_growth = Instant::now();
            }
        }

        let mut start = self.head;
        let mut outcome = if grew { Outcome::Progress } else { Outcome::Idle };
        while let Some(nl) = memchr::memchr(b'\n', &self.buf[start..]) {
            let line_end = start + nl;
            let end = self.consumed + (line_end - self.head) as u64 + 1;
            let accepted = match &self.long {
                Some(long) => sink(Line {
                    offset: long.offset,
                    end,
                    bytes: &long.head,
                    truncated: Some(long.total + nl as u64),
                }),
                None => sink(Line {
                    offset: self.consumed + (start - self.head) as u64,
                    end,
                    bytes: &self.buf[start..line_end],
                    truncated: None,
                }),
            };
            if !accepted {
                outcome = Outcome::Blocked;
                self.refused = true;
                break;
            }
            self.long = None;
            start = line_end + 1;
            outcome = Outcome::Progress;
        }
        self.consume(start - self.head);
        if outcome == Outcome::Blocked {
            return Ok(outcome);
        }

        // No newline in what is left.
        if self.long.is_none() && self.buf.len() - self.head > self.max_line {
            let head = self.buf[self.head..self.head + self.max_line].to_vec();
            self.long = Some(LongLine {
                offset: self.consumed,
                head,
                total: 0,
            });
        }
        if let Some(long) = &mut self.long {
            // Keep counting the over-long line, but drop its bytes.
            let n = self.buf.len() - self.head;
            long.total += n as u64;
            self.consumed += n as u64;
            self.buf.clear();
            self.head = 0;
        } else if self.buf.len() > self.head
            // Only a line that ends the file is partial: a chunk boundary, or
            // a read skipped while a refused line waited, leaves bytes behind
            // the buffer however long ago it last grew.
            && self.consumed + (self.buf.len() - self.head) as u64 >= len
            && self.last_growth.elapsed() >= partial_timeout
        {
            let n = self.buf.len() - self.head;
            let line = Line {
                offset: self.consumed,
                end: self.consumed + n as u64,
                bytes: &self.buf[self.head..],
                truncated: None,
            };
            if sink(line) {
                self.consume(n);
                outcome = Outcome::Progress;
            } else {
                outcome = Outcome::Blocked;
            }
        }
        Ok(outcome)
    }

    fn consume(&mut self, n: usize) {
        if n > 0 {
            self.head += n;
            self.consumed += n as u64;
            if self.head == self.buf.len() {
                self.buf.clear();
                self.head = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `n` numbered lines of varying length (filler up to
    /// `spread - 1` bytes), and the lines.
    fn numbered_lines(n: usize, spread: usize) -> (tempfile::NamedTempFile, Vec<String>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let lines: Vec<String> = (0..n)
            .map(|i| format!("line {i:06} {}", "y".repeat(i % spread)))
            .collect();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
        (f, lines)
    }

    fn collect(t: &mut Tail, timeout: Duration) -> Vec<(u64, u64, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        loop {
            let before = out.len();
            let o = t
                .poll(timeout, |l| {
                    out.push((l.offset, l.end, l.bytes.to_vec(), l.truncated));
                    true
                })
                .unwrap();
            if o == Outcome::Idle && out.len() == before {
                return out;
            }
        }
    }

    #[test]
    fn reads_lines_with_offsets_and_holds_a_partial_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"one\ntwo\r\nthr").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let got = collect(&mut t, Duration::from_secs(60));
        assert_eq!(
            got,
            vec![(0, 4, b"one".to_vec(), None), (4, 9, b"two\r".to_vec(), None)]
        );
        f.write_all(b"ee\n").unwrap();
        let got = collect(&mut t, Duration::from_secs(60));
        assert_eq!(got, vec![(9, 15, b"three".to_vec(), None)]);
    }

    #[test]
    fn flushes_a_last_line_without_newline_after_the_timeout() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"last").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let got = collect(&mut t, Duration::ZERO);
        assert_eq!(got, vec![(0, 4, b"last".to_vec(), None)]);
    }

    #[test]
    fn only_the_end_of_the_file_is_flushed_as_a_partial_line() {
        // With a zero timeout every poll may flush a partial line; lines cut
        // by chunk boundaries, or left behind while the sink pushed back,
        // must still come out whole.
        let (mut f, lines) = numbered_lines(30_000, 70);
        f.write_all(b"tail").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            let mut room = if polls % 2 == 0 { 5_000 } else { usize::MAX };
            let before = got.len();
            let o = t
                .poll(Duration::ZERO, |l| {
                    if room == 0 {
                        return false;
                    }
                    room -= 1;
                    got.push(l.bytes.to_vec());
                    true
                })
                .unwrap();
            if o == Outcome::Idle && got.len() == before {
                break;
            }
        }
        let want: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).chain([&b"tail"[..]]).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.as_slice(), w);
        }
    }

    #[test]
    fn cuts_long_lines_with_bounded_memory() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let long = vec![b'x'; 3 * CHUNK + 17];
        f.write_all(&long).unwrap();
        f.write_all(b"\nok\n").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 100);
        let mut got = Vec::new();
        loop {
            let o = t
                .poll(Duration::from_secs(60), |l| {
                    got.push((l.offset, l.end, l.bytes.len(), l.truncated));
                    true
                })
                .unwrap();
            assert!(
                t.buf.capacity() <= CHUNK + 100 + 1,
                "buffer grew to {}",
                t.buf.capacity()
            );
            if o == Outcome::Idle {
                break;
            }
        }
        let n = long.len() as u64;
        assert_eq!(got, vec![(0, n + 1, 100, Some(n)), (n + 1, n + 4, 2, None)]);
    }

    #[test]
    fn a_refused_line_is_offered_again() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a\nb\n").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let mut first = true;
        let o = t
            .poll(Duration::from_secs(60), |l| {
                if l.bytes == b"b" && first {
                    first = false;
                    return false;
                }
                true
            })
            .unwrap();
        assert_eq!(o, Outcome::Blocked);
        assert_eq!(t.consumed(), 2);
        let got = collect(&mut t, Duration::from_secs(60));
        assert_eq!(got, vec![(2, 4, b"b".to_vec(), None)]);
    }

    #[test]
    fn backpressure_keeps_the_buffer_at_one_chunk_and_loses_nothing() {
        let (f, lines) = numbered_lines(40_000, 50);
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        // The sink takes three lines per poll, like a Kafka queue that is
        // always nearly full.
        for _ in 0..2_000 {
            let mut room = 3;
            let o = t
                .poll(Duration::from_secs(60), |l| {
                    if room == 0 {
                        return false;
                    }
                    room -= 1;
                    got.push((l.offset, l.bytes.to_vec()));
                    true
                })
                .unwrap();
            assert_eq!(o, Outcome::Blocked);
            assert!(t.buf.len() <= CHUNK, "buffer holds {} bytes", t.buf.len());
        }
        got.extend(
            collect(&mut t, Duration::from_secs(60))
                .into_iter()
                .map(|(o, _, b, _)| (o, b)),
        );
        assert_eq!(got.len(), lines.len());
        let mut offset = 0;
        for ((o, b), l) in got.iter().zip(&lines) {
            assert_eq!((*o, b.as_slice()), (offset, l.as_bytes()));
            offset += l.len() as u64 + 1;
        }
    }

    #[test]
    fn detects_truncation() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a\nb\n").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        collect(&mut t, Duration::from_secs(60));
        f.as_file().set_len(0).unwrap();
        assert_eq!(t.poll(Duration::from_secs(60), |_| true).unwrap(), Outcome::Truncated);
    }

    #[test]
    fn detects_a_truncated_file_rewritten_past_the_position() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"first\nsecond\n").unwrap();
        let fp = crate::fingerprint::of_prefix(b"first\n").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024).verify_identity(fp);
        collect(&mut t, Duration::from_secs(60));
        f.as_file().set_len(0).unwrap();
        let mut g = f.reopen().unwrap();
        g.write_all(b"other first line\nand more of it\n").unwrap();
        let mut got = Vec::new();
        let o = t
            .poll(Duration::from_secs(60), |l| {
                got.push(l.bytes.to_vec());
                true
            })
            .unwrap();
        assert_eq!(o, Outcome::Truncated);
        assert!(got.is_empty(), "read the new content at the old position: {got:?}");
    }

    #[test]
    fn binary_bytes_pass_through() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"\xff\x00\xfe\n").unwrap();
        let mut t = Tail::new(f.reopen().unwrap(), 0, 1024);
        let got = collect(&mut t, Duration::from_secs(60));
        assert_eq!(got[0].2, b"\xff\x00\xfe");
    }
}
