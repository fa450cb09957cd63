//! Log formats. Each format module exposes a plain function from a line to an
//! [`Event`], borrowing from the line wherever the output needs no unescaping.
//!
//! The parsers are built from `nom` combinators over byte slices (`&[u8]`), with
//! `()` as the nom error type (no error allocation on the hot path): each step
//! maps a nom failure to a fixed reason, and the byte offset where it happened is
//! added when the [`ParseError`] is built. The field mapping per format is
//! documented in `schemas/FORMATS.md`.

use std::borrow::Cow;
use std::str::FromStr;

use logpipe_schemas::event::Event;
use logpipe_schemas::time::Micros;
use nom::IResult;

pub mod access;
pub mod detect;
pub mod json;
pub mod logfmt;
pub mod rfc3164;
pub mod rfc5424;
pub(crate) mod time;

/// Facts about a line that do not come from the line itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineContext<'a> {
    /// When the shipper read the line (µs since the epoch); also the reference
    /// for the year RFC 3164 leaves out, and `@timestamp` when the line has none.
    pub ingest: Micros,
    /// The host the shipper ran on; `None` for records from other producers,
    /// where the syslog HOSTNAME becomes `host.name`.
    pub host: Option<&'a str>,
    pub path: Option<&'a str>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Guess per line (see [`detect`]).
    Auto,
    Rfc5424,
    Rfc3164,
    /// nginx / Apache access logs, combined and common.
    Access,
    Json,
    Logfmt,
}

impl Format {
    /// Every format, `auto` first.
    pub const ALL: [Format; 6] = [
        Format::Auto,
        Format::Rfc5424,
        Format::Rfc3164,
        Format::Access,
        Format::Json,
        Format::Logfmt,
    ];

    /// The name used in configuration and in [`ParseError::format`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Access => "access",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Format::Auto,
            "rfc5424" => Format::Rfc5424,
            "rfc3164" => Format::Rfc3164,
            "access" => Format::Access,
            "json" => Format::Json,
            "logfmt" => Format::Logfmt,
            other => {
                return Err(format!(
                    "unknown format `{other}` (expected auto, rfc5424, rfc3164, access, json or logfmt)"
                ))
            }
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a line could not be parsed; becomes the dead letter's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format}: {reason}")]
pub struct ParseError {
    pub format: &'static str,
    pub reason: String,
}

/// Parses one line (without its terminator) in the given format.
///
/// A trailing `\r` or `\n` left on the line (CRLF files, records that kept
/// their terminator) is not part of any field, but stays in `event.original`.
pub fn parse<'a>(format: Format, line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    match format {
        Format::Auto => detect::parse(line, ctx),
        Format::Rfc5424 => rfc5424::parse(line, ctx),
        Format::Rfc3164 => rfc3164::parse(line, ctx),
        Format::Access => access::parse(line, ctx),
        Format::Json => json::parse(line, ctx),
        Format::Logfmt => logfmt::parse(line, ctx),
    }
}

// ---------------------------------------------------------------------------
// Shared plumbing for the format modules.

/// nom result over bytes with the zero-cost `()` error.
pub(crate) type R<'a, O> = IResult<&'a [u8], O, ()>;

/// A failed step: the reason and how much of the line was left when it failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail {
    pub rest_len: usize,
    pub reason: &'static str,
}

/// Maps a nom step's failure to `reason`, located at `at` (the step's input).
#[inline(always)]
pub(crate) fn need<'a, O>(r: R<'a, O>, at: &'a [u8], reason: &'static str) -> Result<(&'a [u8], O), Fail> {
    r.map_err(|_| Fail {
        rest_len: at.len(),
        reason,
    })
}

/// A failure at `at` without a nom step.
#[inline]
pub(crate) fn fail<T>(at: &[u8], reason: &'static str) -> Result<T, Fail> {
    Err(Fail {
        rest_len: at.len(),
        reason,
    })
}

impl Fail {
    pub(crate) fn into_error(self, format: &'static str, line: &[u8]) -> ParseError {
        let at = line.len().saturating_sub(self.rest_len);
        ParseError {
            format,
            reason: format!("{} (at byte {at})", self.reason),
        }
    }
}

/// Strips one trailing `\n`, `\r\n` or `\r` (and nothing else).
#[inline]
pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Fills the fields every format sets the same way.
#[inline]
pub(crate) fn base<'a>(line: &'a [u8], ctx: &LineContext<'a>, dataset: &'static str) -> Event<'a> {
    Event {
        timestamp: ctx.ingest,
        original: line,
        ingested: ctx.ingest,
        dataset,
        host_name: ctx.host.map(Cow::Borrowed),
        log_file_path: ctx.path.map(Cow::Borrowed),
        log_offset: ctx.offset,
        ..Default::default()
    }
}

/// Bytes already checked to be printable US-ASCII (or otherwise known to be
/// UTF-8) as `&str`; falls back to a lossy copy, never panics.
#[inline]
pub(crate) fn ascii_str(b: &[u8]) -> Cow<'_, str> {
    lossy(b)
}

/// Lossy UTF-8: borrowed when valid, an owned copy with U+FFFD otherwise.
/// (An ASCII scan first: it beats `from_utf8`, let alone `from_utf8_lossy`.)
#[inline]
pub(crate) fn lossy(b: &[u8]) -> Cow<'_, str> {
    match logpipe_schemas::scan::utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

pub(crate) use logpipe_schemas::scan::find3;

/// Lossy decoding of an already-unescaped value.
pub(crate) fn lossy_cow(b: Cow<'_, [u8]>) -> Cow<'_, str> {
    match b {
        Cow::Borrowed(b) => lossy(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// 2024-06-15T12:00:00Z, a fixed ingest time for tests.
    pub const INGEST: Micros = 1_718_452_800_000_000;

    pub fn ctx() -> LineContext<'static> {
        LineContext {
            ingest: INGEST,
            host: None,
            path: Some("/var/log/test"),
            offset: Some(7),
        }
    }

    pub fn json_of(e: &Event<'_>) -> serde_json::Value {
        serde_json::from_slice(&e.to_json()).expect("valid JSON")
    }

    /// Reads a corpus file in place, or `None` (with a note) if it is absent.
    pub fn corpus(rel: &str) -> Option<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus")
            .join(rel);
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(e) => {
                println!("note: skipping, corpus file {} not readable: {e}", p.display());
                None
            }
        }
    }

    /// Lines of a corpus file, without LF / CRLF terminators.
    pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
        data.split(|&b| b == b'\n').map(trim_eol).filter(|l| !l.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("xml".parse::<Format>().unwrap_err().contains("logfmt"));
    }

    #[test]
    fn find3_finds_the_first_match() {
        let hay: Vec<u8> = (0u8..=255).chain(0u8..=255).collect();
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, b'"'] {
                let want = hay.iter().position(|&x| x == a || x == b || x == b'\\');
                assert_eq!(find3(&hay, a, b, b'\\'), want);
                for start in [1usize, 3, 7, 200] {
                    let want = hay[start..].iter().position(|&x| x == a || x == b || x == b'\\');
                    assert_eq!(find3(&hay[start..], a, b, b'\\'), want, "{a} {b} {start}");
                }
            }
        }
        assert_eq!(find3(b"", 1, 2, 3), None);
        assert_eq!(find3(b"abcdefghij\"", b'"', b'"', b'"'), Some(10));
        assert_eq!(find3(b"\x01\x01\x00\x01\x01\x01\x01\x01\x01", 0, 0, 0), Some(2));
    }

    /// Every input kept in `fuzz/regressions/<target>/` (what `cargo fuzz`
    /// found: inputs that once broke a parser, and a small set of inputs that
    /// reach distinct code) goes through every format, with and without a
    /// shipper host: no panic, and either a document that is valid JSON
    /// keeping the line in `event.original`, or an error with a reason (the
    /// dead letter's `logpipe.dlq.reason`).
    #[test]
    fn fuzz_regressions_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_none_or(|e| e != "md") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() >= 6, "the regression corpus is in {}", root.display());
        let contexts = [
            LineContext {
                ingest: 1_718_452_800_000_000,
                host: None,
                path: None,
                offset: None,
            },
            LineContext {
                ingest: 0,
                host: Some("shipper-1"),
                path: Some("/var/log/x"),
                offset: Some(u64::MAX),
            },
        ];
        let (mut ok, mut failed) = (0, 0);
        for path in &files {
            let data = std::fs::read(path).unwrap();
            for ctx in &contexts {
                for f in Format::ALL {
                    match parse(f, &data, ctx) {
                        Ok(e) => {
                            assert_eq!(e.original, &data[..], "{}: {f}", path.display());
                            let json = e.to_json();
                            let v: serde_json::Value = serde_json::from_slice(&json)
                                .unwrap_or_else(|err| panic!("{}: {f}: invalid JSON: {err}", path.display()));
                            assert!(v["@timestamp"].is_string(), "{}: {f}: no @timestamp", path.display());
                            assert!(v["event"]["original"].is_string(), "{}: {f}", path.display());
                            ok += 1;
                        }
                        Err(e) => {
                            assert!(!e.reason.is_empty(), "{}: {f}: error without a reason", path.display());
                            failed += 1;
                        }
                    }
                }
            }
        }
        println!("{} inputs: {ok} documents, {failed} errors", files.len());
    }

    #[test]
    fn trims_only_one_terminator() {
        assert_eq!(trim_eol(b"a\r\n"), b"a");
        assert_eq!(trim_eol(b"a\n\n"), b"a\n");
        assert_eq!(trim_eol(b"a\r"), b"a");
        assert_eq!(trim_eol(b""), b"");
    }
}
