//! Cutting a syslog TCP byte stream into messages.
//!
//! Two framings share one port, as rsyslog's `imtcp` and Vector accept them,
//! and are told apart per frame (RFC 6587 §3.4):
//! * octet counting: `LEN SP MSG`, where `LEN` is the decimal length of `MSG`;
//!   a frame that starts with digits followed by a space is read this way;
//! * non-transparent framing: `MSG LF`, every other frame.
//!
//! A syslog message starts with `<PRI>`, so a message in newline framing is
//! never mistaken for a count; a sender that writes bare text starting with
//! `123 ` in newline framing would be, which is the protocol's own ambiguity.
//!
//! Memory is bounded: the buffer holds at most one message of
//! `max_message` bytes plus what the caller pushed since the last frame; a
//! longer message keeps its first `max_message` bytes, is flagged with its
//! full length, and the rest of it is counted and dropped as it arrives.

use std::fmt;

/// Longest count accepted: 9 digits (a message under 1 GB). Longer runs of
/// digits before a space are not a count any sender would produce.
const MAX_COUNT_DIGITS: usize = 9;

/// One message cut out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message, without its count or its terminating `\n`.
    pub bytes: Vec<u8>,
    /// `Some(full length)` when the message was cut at `max_message` bytes,
    /// or when the stream ended inside an octet-counted message (then the
    /// length it announced).
    pub truncated: Option<u64>,
}

/// A frame that cannot be read as framed: it is reported, and the stream goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Digits followed by a space, but not a valid RFC 6587 count.
    BadOctetCount(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadOctetCount(count) => write!(
                f,
                "bad RFC 6587 octet count `{count}`: expected 1 to {MAX_COUNT_DIGITS} digits without a leading zero; \
                 reading this frame up to the next newline instead"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// The rest of a message longer than `max_message`, being skipped.
#[derive(Debug)]
enum Skip {
    /// Octet-counted: this many bytes are still to come.
    Octets { left: u64, head: Vec<u8>, total: u64 },
    /// Newline-framed: everything up to the next `\n`.
    Line { head: Vec<u8>, total: u64 },
}

pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` before this were handed out.
    start: usize,
    max_message: usize,
    skip: Option<Skip>,
    /// The frame at `start` had a bad count: read it as newline-framed.
    force_line: bool,
}

/// What the start of a frame says about its framing.
enum Header {
    /// `LEN SP`: the count and the header's length.
    Octets(u64, usize),
    Line,
    /// Only digits so far: more bytes are needed to tell.
    Undecided,
    Bad(String),
}

fn header(avail: &[u8]) -> Header {
    let digits = avail.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Header::Line;
    }
    match avail.get(digits) {
        None if digits <= MAX_COUNT_DIGITS => Header::Undecided,
        None => Header::Line,
        Some(b' ') => {
            let text = &avail[..digits];
            if digits > MAX_COUNT_DIGITS || text[0] == b'0' {
                return Header::Bad(String::from_utf8_lossy(text).into_owned());
            }
            let n = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
            Header::Octets(n, digits + 1)
        }
        Some(_) => Header::Line,
    }
}

impl Framer {
    pub fn new(max_message: usize) -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            max_message,
            skip: None,
            force_line: false,
        }
    }

    /// Adds bytes read from the stream. Call [`next_frame`](Self::next_frame) until it
    /// returns `Ok(None)` before pushing more, so the buffer stays bounded.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (for tests of the memory bound).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    /// Empty newline-framed messages (blank lines, a stray `\n` after an
    /// octet-counted frame) are skipped.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            let avail = &self.buf[self.start..];
            match &mut self.skip {
                Some(Skip::Octets { left, .. }) => {
                    let n = (*left).min(avail.len() as u64);
                    *left -= n;
                    self.start += n as usize;
                    if *left > 0 {
                        return Ok(None);
                    }
                    let Some(Skip::Octets { head, total, .. }) = self.skip.take() else {
                        unreachable!()
                    };
                    return Ok(Some(Frame {
                        bytes: head,
                        truncated: Some(total),
                    }));
                }
                Some(Skip::Line { total, .. }) => match memchr::memchr(b'\n', avail) {
                    Some(nl) => {
                        *total += nl as u64;
                        self.start += nl + 1;
                        let Some(Skip::Line { head, total }) = self.skip.take() else {
                            unreachable!()
                        };
                        return Ok(Some(Frame {
                            bytes: head,
                            truncated: Some(total),
                        }));
                    }
                    None => {
                        *total += avail.len() as u64;
                        self.start += avail.len();
                        return Ok(None);
                    }
                },
                None => {}
            }
            if avail.is_empty() {
                return Ok(None);
            }
            let h = if self.force_line { Header::Line } else { header(avail) };
            match h {
                Header::Undecided => return Ok(None),
                Header::Bad(count) => {
                    self.force_line = true;
                    return Err(FrameError::BadOctetCount(count));
                }
                Header::Octets(len, hdr) => {
                    let max = self.max_message;
                    if len <= max as u64 {
                        let end = hdr + len as usize;
                        if avail.len() < end {
                            return Ok(None);
                        }
                        let bytes = avail[hdr..end].to_vec();
                        self.start += end;
                        return Ok(Some(Frame { bytes, truncated: None }));
                    }
                    if avail.len() < hdr + max {
                        return Ok(None);
                    }
                    let head = avail[hdr..hdr + max].to_vec();
                    self.start += hdr + max;
                    self.skip = Some(Skip::Octets {
                        left: len - max as u64,
                        head,
                        total: len,
                    });
                }
                Header::Line => match memchr::memchr(b'\n', avail) {
                    Some(nl) => {
                        self.force_line = false;
                        let frame = if nl > self.max_message {
                            Frame {
                                bytes: avail[..self.max_message].to_vec(),
                                truncated: Some(nl as u64),
                            }
                        } else {
                            Frame {
                                bytes: avail[..nl].to_vec(),
                                truncated: None,
                            }
                        };
                        self.start += nl + 1;
                        if frame.bytes.is_empty() {
                            continue;
                        }
                        return Ok(Some(frame));
                    }
                    None if avail.len() > self.max_message => {
                        self.force_line = false;
                        let head = avail[..self.max_message].to_vec();
                        let total = avail.len() as u64;
                        self.start += avail.len();
                        self.skip = Some(Skip::Line { head, total });
                        return Ok(None);
                    }
                    None => return Ok(None),
                },
            }
        }
    }

    /// The stream ended (or the shipper is stopping): whatever is left is a
    /// last message, so nothing received is lost. A newline-framed message
    /// without its `\n` is complete as it is; an octet-counted one that
    /// stopped short is flagged with the length it announced.
    pub fn finish(&mut self) -> Option<Frame> {
        let avail = &self.buf[self.start..];
        let frame = match self.skip.take() {
            Some(Skip::Octets { head, total, .. }) => Some(Frame {
                bytes: head,
                truncated: Some(total),
            }),
            Some(Skip::Line { head, total }) => Some(Frame {
                bytes: head,
                truncated: Some(total),
            }),
            None if avail.is_empty() => None,
            None => match (self.force_line, header(avail)) {
                (false, Header::Octets(len, hdr)) => Some(Frame {
                    bytes: avail[hdr..].to_vec(),
                    truncated: Some(len),
                }),
                _ => {
                    let cut = avail.len().min(self.max_message);
                    Some(Frame {
                        bytes: avail[..cut].to_vec(),
                        truncated: (cut < avail.len()).then_some(avail.len() as u64),
                    })
                }
            },
        };
        self.buf.clear();
        self.start = 0;
        self.force_line = false;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b: &[u8]) -> Frame {
        Frame {
            bytes: b.to_vec(),
            truncated: None,
        }
    }

    /// Feeds `input` in pieces of `step` bytes and collects every frame and error.
    fn run(max: usize, input: &[u8], step: usize) -> Vec<Result<Frame, FrameError>> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            f.push(chunk);
            loop {
                match f.next_frame() {
                    Ok(Some(fr)) => out.push(Ok(fr)),
                    Ok(None) => break,
                    Err(e) => out.push(Err(e)),
                }
            }
            assert!(f.buffered() <= max + 16 + step, "buffer grew to {}", f.buffered());
        }
        out.extend(f.finish().map(Ok));
        out
    }

    #[test]
    fn both_framings_mixed_and_split_across_reads_at_every_point() {
        let input = b"<13>newline one\n12 <13>counted\n<13>two\r\n5 a\nb c<14>three\n\n";
        let want = vec![
            Ok(frame(b"<13>newline one")),
            Ok(frame(b"<13>counted\n")),
            Ok(frame(b"<13>two\r")),
            Ok(frame(b"a\nb c")),
            Ok(frame(b"<14>three")),
        ];
        for step in 1..=input.len() {
            assert_eq!(run(1024, input, step), want, "read size {step}");
        }
    }

    #[test]
    fn digits_without_a_space_are_a_newline_framed_message() {
        assert_eq!(
            run(1024, b"2026-11-23 text\n1234567890123x\n", 3),
            vec![Ok(frame(b"2026-11-23 text")), Ok(frame(b"1234567890123x"))]
        );
    }

    #[test]
    fn a_bad_octet_count_is_an_error_and_the_frame_is_read_as_a_line() {
        let out = run(1024, b"007 <13>zero padded\n0 x\n1234567890 huge\n3 abc", 4);
        assert_eq!(
            out,
            vec![
                Err(FrameError::BadOctetCount("007".into())),
                Ok(frame(b"007 <13>zero padded")),
                Err(FrameError::BadOctetCount("0".into())),
                Ok(frame(b"0 x")),
                Err(FrameError::BadOctetCount("1234567890".into())),
                Ok(frame(b"1234567890 huge")),
                Ok(frame(b"abc")),
            ]
        );
        let msg = FrameError::BadOctetCount("007".into()).to_string();
        assert!(msg.contains("bad RFC 6587 octet count `007`"), "{msg}");
    }

    #[test]
    fn oversized_messages_are_cut_and_flagged_in_bounded_memory() {
        let mut input = Vec::new();
        input.extend_from_slice(b"300 ");
        input.extend(std::iter::repeat_n(b'o', 300));
        input.extend(std::iter::repeat_n(b'n', 250));
        input.extend_from_slice(b"\nshort\n");
        let out = run(64, &input, 7);
        assert_eq!(
            out,
            vec![
                Ok(Frame {
                    bytes: vec![b'o'; 64],
                    truncated: Some(300)
                }),
                Ok(Frame {
                    bytes: vec![b'n'; 64],
                    truncated: Some(250)
                }),
                Ok(frame(b"short")),
            ]
        );
    }

    #[test]
    fn the_end_of_the_stream_flushes_what_is_left() {
        assert_eq!(run(1024, b"<13>no newline", 5), vec![Ok(frame(b"<13>no newline"))]);
        assert_eq!(
            run(1024, b"20 <13>cut", 5),
            vec![Ok(Frame {
                bytes: b"<13>cut".to_vec(),
                truncated: Some(20)
            })]
        );
    }
}
