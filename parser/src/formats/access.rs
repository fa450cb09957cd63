//! Web server access logs: the NCSA common and combined formats written by
//! Apache httpd and nginx.
//!
//! ```text
//! common:   client ident user [dd/Mon/yyyy:hh:mm:ss +zzzz] "request" status bytes
//! combined: common "referer" "user-agent" [anything else]
//! ```
//!
//! * `-` in ident/user/status/bytes/referer/user-agent means "absent".
//! * Quoted fields may contain backslash escapes: `\"` and `\\` are
//!   unescaped, every other escape (`\xHH`, `\n`, ...) is kept as written, so
//!   a non-printable byte never reaches a field raw.
//! * `source.ip` is set only when the client is an IP address (v4 or v6): the
//!   field is mapped as `ip`, so a client host name (Apache with
//!   `HostnameLookups On`) is left in `event.original` only.
//! * The request line `METHOD URL HTTP/x.y` gives `http.request.method`,
//!   `url.original` and `http.version` (`1.1`); `METHOD URL` (HTTP/0.9) gives
//!   no version. Any other request string (TLS handshakes sent to a plain-HTTP
//!   port, scanners' garbage) is kept whole in `url.original` with no method or
//!   version; `-` or an empty request gives none of the three.
//! * Extra fields after the user agent (nginx's `$http_x_forwarded_for`, ...)
//!   are allowed and ignored; the common format allows nothing after bytes.

use std::borrow::Cow;

use logpipe_schemas::event::{Access, Event};
use logpipe_schemas::time::{micros_from_parts, Micros};
use nom::bytes::complete::take_while_m_n;

use super::time::{byte, dig2, dig4, month_abbr, valid_civil};
use super::{base, fail, find3, lossy_cow, need, trim_eol, Fail, LineContext, ParseError, R};

pub const DATASET_COMBINED: &str = "access.combined";
pub const DATASET_COMMON: &str = "access.common";
const FORMAT: &str = "access";

pub fn parse<'a>(line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    let body = trim_eol(line);
    match parse_body(body) {
        Ok((ts, access, combined)) => {
            let mut ev = base(line, ctx, if combined { DATASET_COMBINED } else { DATASET_COMMON });
            ev.timestamp = ts;
            ev.access = Some(access);
            Ok(ev)
        }
        Err(f) => Err(f.into_error(FORMAT, body)),
    }
}

/// A non-empty space-free field followed by SP.
#[inline]
fn field<'a>(i: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8]), Fail> {
    // A block scan for the SP rather than a byte-by-byte take_while.
    match find3(i, b' ', b' ', b' ') {
        Some(n) if n > 0 => Ok((&i[n + 1..], &i[..n])),
        Some(_) => fail(i, what),
        None if i.is_empty() => fail(i, what),
        None => fail(&i[i.len()..], what),
    }
}

fn parse_body(i: &[u8]) -> Result<(Micros, Access<'_>, bool), Fail> {
    let (i, client) = field(i, "expected the client address followed by SP")?;
    let (i, _ident) = field(i, "expected the ident field followed by SP")?;
    let (i, user) = field(i, "expected the user field followed by SP")?;
    let (i, ts) = time(i)?;
    let (i, _) = need(byte(b' ')(i), i, "expected SP after the time")?;
    let (i, request) = quoted(i, "expected the quoted request")?;
    let (i, _) = need(byte(b' ')(i), i, "expected SP after the request")?;
    let (i, status) = status(i)?;
    let (i, _) = need(byte(b' ')(i), i, "expected SP after the status code")?;
    let (i, body_bytes) = bytes_sent(i)?;

    let mut a = Access {
        source_ip: ip(client),
        user_name: dash_none(user).map(|u| lossy_cow(Cow::Borrowed(u))),
        status_code: status,
        body_bytes,
        ..Default::default()
    };
    request_line(&mut a, lossy_cow(request));

    let rest = &i[i.iter().take_while(|&&b| b == b' ').count()..];
    if rest.is_empty() {
        return Ok((ts, a, false));
    }
    if i.first() != Some(&b' ') || rest.first() != Some(&b'"') {
        return fail(i, "expected end of line or the quoted referer after bytes");
    }
    let (i, referrer) = quoted(rest, "expected the quoted referer")?;
    let (i, _) = need(byte(b' ')(i), i, "expected SP after the referer")?;
    // A user agent cut off before its closing quote (seen in real logs whose
    // writer truncated the line) runs to the end of the line.
    let (i, ua) = match quoted(i, "expected the quoted user agent") {
        Err(f) if f.reason == UNTERMINATED => (&i[i.len()..], unescape_rest(&i[1..])),
        r => r?,
    };
    if !i.is_empty() && i[0] != b' ' {
        return fail(i, "expected SP or end of line after the user agent");
    }
    a.referrer = cow_dash_none(referrer).map(lossy_cow);
    a.user_agent = cow_dash_none(ua).map(lossy_cow);
    Ok((ts, a, true))
}

fn dash_none(v: &[u8]) -> Option<&[u8]> {
    (v != b"-" && !v.is_empty()).then_some(v)
}

fn cow_dash_none(v: Cow<'_, [u8]>) -> Option<Cow<'_, [u8]>> {
    (&*v != b"-" && !v.is_empty()).then_some(v)
}

fn ip(client: &[u8]) -> Option<Cow<'_, str>> {
    let s = logpipe_schemas::scan::utf8(client).ok()?;
    if plain_ipv4(client) {
        return Some(Cow::Borrowed(s));
    }
    s.parse::<std::net::IpAddr>().ok().map(|_| Cow::Borrowed(s))
}

/// A dotted quad the standard parser also accepts (four parts of 1-3 digits,
/// each at most 255, no leading zero): most clients, checked without it.
/// Anything else (IPv6, odd forms) goes to `IpAddr::from_str`.
fn plain_ipv4(b: &[u8]) -> bool {
    // One pass: each part's value and digit count, checked at its dot.
    let (mut parts, mut value, mut digits, mut lead_zero) = (0u32, 0u32, 0u32, false);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if digits == 0 {
                    lead_zero = c == b'0';
                } else if lead_zero || digits == 3 {
                    return false;
                }
                value = value * 10 + (c - b'0') as u32;
                digits += 1;
            }
            b'.' => {
                if digits == 0 || value > 255 || parts == 3 {
                    return false;
                }
                parts += 1;
                (value, digits) = (0, 0);
            }
            _ => return false,
        }
    }
    parts == 3 && digits > 0 && value <= 255
}

/// `[dd/Mon/yyyy:hh:mm:ss +zzzz]`
fn time(i: &[u8]) -> Result<(&[u8], Micros), Fail> {
    const BAD: &str = "expected the time as [dd/Mon/yyyy:hh:mm:ss +zzzz]";
    fn raw(i: &[u8]) -> R<'_, [u32; 8]> {
        let (i, _) = byte(b'[')(i)?;
        let (i, d) = dig2(i)?;
        let (i, _) = byte(b'/')(i)?;
        let (i, mo) = month_abbr(i)?;
        let (i, _) = byte(b'/')(i)?;
        let (i, y) = dig4(i)?;
        let (i, _) = byte(b':')(i)?;
        let (i, h) = dig2(i)?;
        let (i, _) = byte(b':')(i)?;
        let (i, mi) = dig2(i)?;
        let (i, _) = byte(b':')(i)?;
        let (i, s) = dig2(i)?;
        let (i, _) = byte(b' ')(i)?;
        let (i, sign) = match i.first() {
            Some(b'+') => (&i[1..], 1),
            Some(b'-') => (&i[1..], 0),
            _ => return Err(nom::Err::Error(())),
        };
        let (i, oh) = dig2(i)?;
        let (i, om) = dig2(i)?;
        let (i, _) = byte(b']')(i)?;
        Ok((i, [d, mo, y, h, mi, s, sign, oh * 60 + om]))
    }
    let (j, [d, mo, y, h, mi, s, sign, off_min]) = need(raw(i), i, BAD)?;
    if !valid_civil(y as i64, mo, d, h, mi, s) || off_min >= 24 * 60 {
        return fail(i, "time has a field out of range");
    }
    let off = off_min as i32 * 60;
    Ok((
        j,
        micros_from_parts(y as i64, mo, d, h, mi, s, 0, if sign == 1 { off } else { -off }),
    ))
}

/// A double-quoted field with backslash escapes; `\"` and `\\` are unescaped.
fn quoted<'a>(i: &'a [u8], what: &'static str) -> Result<(&'a [u8], Cow<'a, [u8]>), Fail> {
    let (s, _) = need(byte(b'"')(i), i, what)?;
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
            b'\\' => match s.get(k + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    let buf = owned.get_or_insert_with(|| Vec::with_capacity(s.len().min(512)));
                    buf.extend_from_slice(&s[start..k]);
                    buf.push(c);
                    k += 2;
                    start = k;
                }
                Some(_) => k += 2,
                None => k += 1,
            },
            _ => k += 1,
        }
    }
    fail(i, UNTERMINATED)
}

const UNTERMINATED: &str = "unterminated quoted field";

/// The rest of the line as an unterminated quoted field's content.
fn unescape_rest(s: &[u8]) -> Cow<'_, [u8]> {
    let mut with_quote = Vec::with_capacity(s.len() + 2);
    with_quote.push(b'"');
    with_quote.extend_from_slice(s);
    with_quote.push(b'"');
    match quoted(&with_quote, UNTERMINATED) {
        Ok((b"", v)) => Cow::Owned(v.into_owned()),
        _ => Cow::Borrowed(s),
    }
}

fn status(i: &[u8]) -> Result<(&[u8], Option<u16>), Fail> {
    if let Some(rest) = i.strip_prefix(b"-") {
        return Ok((rest, None));
    }
    let (j, d) = need(
        take_while_m_n(3, 3, |b: u8| b.is_ascii_digit())(i),
        i,
        "expected a 3-digit status code or '-'",
    )?;
    Ok((j, Some(d.iter().fold(0u16, |a, &b| a * 10 + (b - b'0') as u16))))
}

fn bytes_sent(i: &[u8]) -> Result<(&[u8], Option<u64>), Fail> {
    if let Some(rest) = i.strip_prefix(b"-") {
        return Ok((rest, None));
    }
    let (j, d) = need(
        take_while_m_n(1, 20, |b: u8| b.is_ascii_digit())(i),
        i,
        "expected the body size or '-'",
    )?;
    let n = d
        .iter()
        .try_fold(0u64, |a, &b| a.checked_mul(10)?.checked_add((b - b'0') as u64))
        .ok_or(Fail {
            rest_len: i.len(),
            reason: "body size out of range",
        })?;
    Ok((j, Some(n)))
}

fn is_method(m: &str) -> bool {
    (1..=32).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
}

/// Splits `METHOD URL HTTP/x.y` into its parts (see the module docs).
fn request_line<'a>(a: &mut Access<'a>, req: Cow<'a, str>) {
    if req.is_empty() || req == "-" {
        return;
    }
    let parts = {
        let r: &str = &req;
        r.split_once(' ').and_then(|(method, rest)| {
            if !is_method(method) || rest.is_empty() {
                return None;
            }
            // The version is a few bytes at the end: a backward byte loop
            // reaches its SP sooner than `rsplit_once`'s word-wise search.
            let last_sp = rest.bytes().rposition(|b| b == b' ');
            match last_sp.map(|p| (&rest[..p], &rest[p + 1..])) {
                Some((url, proto)) => {
                    let version = proto.strip_prefix("HTTP/")?;
                    (!url.is_empty() && !version.is_empty()).then_some((method.len(), url.len(), Some(version.len())))
                }
                None => Some((method.len(), rest.len(), None)),
            }
        })
    };
    let Some((ml, ul, vl)) = parts else {
        a.url = Some(req);
        return;
    };
    // Byte ranges of the parts in `req`, to borrow from it when it is borrowed.
    let (m, u) = ((0, ml), (ml + 1, ml + 1 + ul));
    let v = vl.map(|vl| (req.len() - vl, req.len()));
    match req {
        Cow::Borrowed(s) => {
            a.method = Some(Cow::Borrowed(&s[m.0..m.1]));
            a.url = Some(Cow::Borrowed(&s[u.0..u.1]));
            a.http_version = v.map(|v| Cow::Borrowed(&s[v.0..v.1]));
        }
        Cow::Owned(s) => {
            a.method = Some(Cow::Owned(s[m.0..m.1].to_owned()));
            a.url = Some(Cow::Owned(s[u.0..u.1].to_owned()));
            a.http_version = v.map(|v| Cow::Owned(s[v.0..v.1].to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dotted-quad shortcut accepts exactly what the standard parser does.
    #[test]
    fn plain_ipv4_agrees_with_std() {
        let parts = [
            "0", "1", "9", "10", "09", "99", "100", "199", "200", "249", "250", "255", "256", "260", "300", "999",
            "0255", "", "a", "1a",
        ];
        for a in parts {
            for b in parts {
                for c in ["0", "255", "256", "01"] {
                    for tail in ["", ".1", "."] {
                        let s = format!("{a}.{b}.{c}{tail}");
                        let std_ok = s.parse::<std::net::Ipv4Addr>().is_ok();
                        assert!(!plain_ipv4(s.as_bytes()) || std_ok, "{s}");
                        let s4 = format!("{a}.{b}.{c}.{a}{tail}");
                        assert_eq!(
                            plain_ipv4(s4.as_bytes()),
                            s4.parse::<std::net::Ipv4Addr>().is_ok(),
                            "{s4}"
                        );
                    }
                }
            }
        }
    }
    use crate::formats::test_util::{corpus, ctx, json_of, lines};
    use logpipe_schemas::time::rfc3339 as fmt;

    fn ok(line: &[u8]) -> Event<'_> {
        parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)))
    }

    #[test]
    fn combined_line() {
        let line = br#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36""#;
        let e = ok(line);
        let a = e.access.as_ref().unwrap();
        assert_eq!(e.dataset, "access.combined");
        assert_eq!(fmt(e.timestamp), "2015-05-17T10:05:03.000000Z");
        assert_eq!(a.source_ip.as_deref(), Some("83.149.9.216"));
        assert_eq!(a.user_name, None);
        assert_eq!(a.method.as_deref(), Some("GET"));
        assert_eq!(
            a.url.as_deref(),
            Some("/presentations/logstash-monitorama-2013/images/kibana-search.png")
        );
        assert_eq!(a.http_version.as_deref(), Some("1.1"));
        assert_eq!(a.status_code, Some(200));
        assert_eq!(a.body_bytes, Some(203023));
        assert_eq!(
            a.referrer.as_deref(),
            Some("http://semicomplete.com/presentations/logstash-monitorama-2013/")
        );
        assert_eq!(
            a.user_agent.as_deref(),
            Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36")
        );
        assert!(matches!(a.url, Some(Cow::Borrowed(_))));
        let v = json_of(&e);
        assert_eq!(v["source"]["ip"], "83.149.9.216");
        assert_eq!(v["http"]["version"], "1.1");
        assert_eq!(
            v["user_agent"]["original"],
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36"
        );
    }

    #[test]
    fn common_line_with_user_and_offset() {
        let e = ok(br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#);
        let a = e.access.as_ref().unwrap();
        assert_eq!(e.dataset, "access.common");
        assert_eq!(fmt(e.timestamp), "2000-10-10T20:55:36.000000Z");
        assert_eq!(a.user_name.as_deref(), Some("frank"));
        assert_eq!(a.http_version.as_deref(), Some("1.0"));
        assert_eq!((a.referrer.clone(), a.user_agent.clone()), (None, None));
    }

    #[test]
    fn ipv6_dashes_escapes_and_extras() {
        let e = ok(br#"2001:db8::7 - - [01/Jan/2024:00:00:00 +0530] "POST /a?q=\"x\" HTTP/2.0" 304 - "-" "curl \"7\" \\o/" "10.0.0.1" 0.003"#);
        let a = e.access.as_ref().unwrap();
        assert_eq!(fmt(e.timestamp), "2023-12-31T18:30:00.000000Z");
        assert_eq!(a.source_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(a.url.as_deref(), Some(r#"/a?q="x""#));
        assert!(matches!(a.url, Some(Cow::Owned(_))));
        assert_eq!(a.http_version.as_deref(), Some("2.0"));
        assert_eq!(a.body_bytes, None);
        assert_eq!(a.referrer, None);
        assert_eq!(a.user_agent.as_deref(), Some(r#"curl "7" \o/"#));
    }

    #[test]
    fn truncated_user_agent_runs_to_end_of_line() {
        let e = ok(
            br#"1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 235 "-" "Mozilla/5.0 (compatible; \"x\""#,
        );
        assert_eq!(
            e.access.unwrap().user_agent.as_deref(),
            Some(r#"Mozilla/5.0 (compatible; "x""#)
        );
        let e = ok(br#"1.2.3.4 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 235 "-" "Mozilla"#);
        assert_eq!(e.access.unwrap().user_agent.as_deref(), Some("Mozilla"));
    }

    #[test]
    fn odd_request_lines() {
        let req = |r: &str| {
            let line = format!("example.org - - [01/Jan/2024:00:00:00 +0000] \"{r}\" 400 0 \"-\" \"-\"");
            let e = parse(line.as_bytes(), &ctx()).unwrap();
            let a = e.access.unwrap();
            assert_eq!(a.source_ip, None);
            (
                a.method.map(|c| c.into_owned()),
                a.url.map(|c| c.into_owned()),
                a.http_version.map(|c| c.into_owned()),
            )
        };
        assert_eq!(req("-"), (None, None, None));
        assert_eq!(req(""), (None, None, None));
        assert_eq!(req("GET /"), (Some("GET".into()), Some("/".into()), None));
        assert_eq!(
            req(r"\x16\x03\x01\x00\xa5\x01"),
            (None, Some(r"\x16\x03\x01\x00\xa5\x01".into()), None)
        );
        assert_eq!(req("get / HTTP/1.1"), (None, Some("get / HTTP/1.1".into()), None));
        assert_eq!(
            req("GET /a b HTTP/1.1"),
            (Some("GET".into()), Some("/a b".into()), Some("1.1".into()))
        );
        assert_eq!(req("GET  HTTP/1.1"), (None, Some("GET  HTTP/1.1".into()), None));
        let e = ok(b"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"\xFF\" - 0");
        assert_eq!(e.access.unwrap().url.as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn malformed() {
        let bad = |l: &str| parse(l.as_bytes(), &ctx()).unwrap_err().reason;
        let t = "[10/Oct/2000:13:55:36 -0700]";
        assert!(bad("127.0.0.1 - -").contains("user field"));
        assert!(bad("127.0.0.1 - - [10/Oct/2000:13:55:36] \"GET /\" 200 1").contains("time as"));
        assert!(bad("127.0.0.1 - - [32/Oct/2000:13:55:36 +0000] \"GET /\" 200 1").contains("out of range"));
        assert!(bad("127.0.0.1 - - [10/Foo/2000:13:55:36 +0000] \"GET /\" 200 1").contains("time as"));
        assert!(bad(&format!("127.0.0.1 - - {t} GET / 200 1")).contains("quoted request"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET / 200 1")).contains("unterminated"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 20 1")).contains("status code"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 x")).contains("body size"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 99999999999999999999")).contains("out of range"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 1 x")).contains("referer"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 1 \"r\"")).contains("after the referer"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 1 \"r\" \"ua\"x")).contains("after the user agent"));
        assert!(bad(&format!("127.0.0.1 - - {t} \"GET /\" 200 1 \"r")).contains("unterminated"));
        assert!(bad("").contains("client"));
    }

    #[test]
    fn apache_combined_corpus_parses() {
        let Some(data) = corpus("access/apache_combined.log") else {
            return;
        };
        let mut n = 0;
        for line in lines(&data) {
            let e = parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert_eq!(e.dataset, "access.combined");
            let a = e.access.as_ref().unwrap();
            assert!(a.source_ip.is_some() && a.status_code.is_some());
            serde_json::from_slice::<serde_json::Value>(&e.to_json()).unwrap();
            n += 1;
        }
        assert_eq!(n, 10_000);
    }
}
