//! logfmt: `key=value key2="quoted \" value" flag`.
//!
//! * Pairs are separated by runs of spaces (or tabs). A key is any run of
//!   bytes other than SP, TAB, `=` and `"`.
//! * `key=value` gives a string, `key="..."` a string with `\"`, `\\`, `\n`,
//!   `\r`, `\t` unescaped (other escapes kept as written), `key=` an empty
//!   string and a bare `key` the boolean `true`. A repeated key keeps its last
//!   value.
//! * Values and keys that are not UTF-8 are decoded lossily.
//! * `message`: `msg`, else `message`. `@timestamp`: the first of `time`,
//!   `ts`, `t` that is RFC 3339, else the ingest time.
//! * A line with no `key=value` pair at all, an unterminated quote, or a
//!   token that starts with `=` or `"` is an error.

use std::borrow::Cow;

use logpipe_schemas::event::Event;
use nom::bytes::complete::take_while1;
use serde_json::{Map, Value};

use super::time::rfc3339_exact;
use super::{base, fail, find3, lossy_cow, need, trim_eol, Fail, LineContext, ParseError, R};

pub const DATASET: &str = "logfmt";
const FORMAT: &str = "logfmt";

pub fn parse<'a>(line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    let body = trim_eol(line);
    let map = pairs(body).map_err(|f| f.into_error(FORMAT, body))?;
    let mut ev = base(line, ctx, DATASET);
    ev.message = ["msg", "message"].iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) => Some(Cow::Owned(s.clone())),
        _ => None,
    });
    if let Some(ts) = ["time", "ts", "t"].iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) => rfc3339_exact(s),
        _ => None,
    }) {
        ev.timestamp = ts;
    }
    ev.fields = Some(map);
    Ok(ev)
}

#[inline(always)]
fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline(always)]
fn key_char(b: u8) -> bool {
    !is_sep(b) && b != b'=' && b != b'"'
}

fn key(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(key_char)(i)
}

fn pairs(i: &[u8]) -> Result<Map<String, Value>, Fail> {
    let mut map = Map::new();
    let mut any_pair = false;
    let mut i = i;
    loop {
        i = &i[i.iter().take_while(|&&b| is_sep(b)).count()..];
        if i.is_empty() {
            break;
        }
        let (j, k) = need(key(i), i, "expected a key (a token cannot start with '=' or '\"')")?;
        let k = lossy_cow(Cow::Borrowed(k)).into_owned();
        match j.first() {
            Some(b'=') => {
                any_pair = true;
                let v = &j[1..];
                let (rest, value) = if v.first() == Some(&b'"') { quoted(v)? } else { bare(v) };
                if !rest.is_empty() && !is_sep(rest[0]) {
                    return fail(rest, "expected a space after a quoted value");
                }
                map.insert(k, Value::String(lossy_cow(value).into_owned()));
                i = rest;
            }
            Some(b'"') => return fail(j, "unexpected '\"' inside a key"),
            _ => {
                map.insert(k, Value::Bool(true));
                i = j;
            }
        }
    }
    if !any_pair {
        return fail(i, "no key=value pair in the line");
    }
    Ok(map)
}

fn bare(v: &[u8]) -> (&[u8], Cow<'_, [u8]>) {
    let n = v.iter().take_while(|&&b| !is_sep(b)).count();
    (&v[n..], Cow::Borrowed(&v[..n]))
}

/// A quoted value, from its opening quote through the closing one.
fn quoted(i: &[u8]) -> Result<(&[u8], Cow<'_, [u8]>), Fail> {
    let s = &i[1..];
    let mut owned: Option<Vec<u8>> = None;
    let mut start = 0;
    let mut k = 0;
    while k < s.len() {
        match find3(&s[k..], b'"', b'\\', b'"') {
            Some(p) => k += p,
            None => break,
        }
        match s[k] {
            b'"' => {
                let v = match owned {
                    None => Cow::Borrowed(&s[..k]),
                    Some(mut buf) => {
                        buf.extend_from_slice(&s[start..k]);
                        Cow::Owned(buf)
                    }
                };
                return Ok((&s[k + 1..], v));
            }
            b'\\' if k + 1 < s.len() => {
                let c = match s[k + 1] {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    _ => {
                        k += 2;
                        continue;
                    }
                };
                let buf = owned.get_or_insert_with(|| Vec::with_capacity(s.len().min(512)));
                buf.extend_from_slice(&s[start..k]);
                buf.push(c);
                k += 2;
                start = k;
            }
            _ => k += 1,
        }
    }
    fail(i, "unterminated quoted value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{ctx, json_of, INGEST};
    use logpipe_schemas::time::rfc3339 as fmt;

    #[test]
    fn pairs_quotes_and_flags() {
        let line =
            br#"time=2024-05-01T10:00:00Z level=info msg="user \"bob\" logged in\n" dur=1.5ms  debug empty= path=/a\b"#;
        let e = parse(line, &ctx()).unwrap();
        assert_eq!(fmt(e.timestamp), "2024-05-01T10:00:00.000000Z");
        assert_eq!(e.message.as_deref(), Some("user \"bob\" logged in\n"));
        assert_eq!(e.dataset, "logfmt");
        let f = e.fields.as_ref().unwrap();
        assert_eq!(f["level"], "info");
        assert_eq!(f["dur"], "1.5ms");
        assert_eq!(f["debug"], true);
        assert_eq!(f["empty"], "");
        assert_eq!(f["path"], r"/a\b");
        let v = json_of(&e);
        assert_eq!(v["level"], "info");
        assert_eq!(v["message"], "user \"bob\" logged in\n");
    }

    #[test]
    fn message_and_time_fallbacks() {
        let e = parse(b"message=hi t=2024-05-01T10:00:00+01:00 ts=bad\r\n", &ctx()).unwrap();
        assert_eq!(e.message.as_deref(), Some("hi"));
        assert_eq!(fmt(e.timestamp), "2024-05-01T09:00:00.000000Z");
        let e = parse(b"a=1 a=2 time=yesterday", &ctx()).unwrap();
        assert_eq!(e.fields.as_ref().unwrap()["a"], "2");
        assert_eq!((e.timestamp, e.message), (INGEST, None));
        let e = parse(b"k=\"\xFF\" \xFE=v", &ctx()).unwrap();
        assert_eq!(e.fields.as_ref().unwrap()["k"], "\u{fffd}");
        assert_eq!(e.fields.as_ref().unwrap()["\u{fffd}"], "v");
        let e = parse(br#"q="a\qb" r="\\""#, &ctx()).unwrap();
        assert_eq!(e.fields.as_ref().unwrap()["q"], r"a\qb");
        assert_eq!(e.fields.as_ref().unwrap()["r"], "\\");
    }

    #[test]
    fn malformed() {
        let bad = |l: &[u8]| parse(l, &ctx()).unwrap_err().reason;
        assert!(bad(b"just some words").contains("no key=value"));
        assert!(bad(b"").contains("no key=value"));
        assert!(bad(b"   ").contains("no key=value"));
        assert!(bad(b"a=\"open").contains("unterminated"));
        assert!(bad(b"a=\"x\\\"").contains("unterminated"));
        assert!(bad(b"a=\"x\"y").contains("space after a quoted value"));
        assert!(bad(b"a=1 =2").contains("expected a key"));
        assert!(bad(b"a=1 \"b\"").contains("expected a key"));
        assert!(bad(b"a=1 b\"c").contains("inside a key"));
    }
}
