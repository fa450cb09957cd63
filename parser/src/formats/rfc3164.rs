//! BSD syslog (RFC 3164) and the same shape without `<PRI>`, as written to
//! `/var/log/syslog`, `/var/log/messages` and friends:
//!
//! ```text
//! [<PRI>]Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//! ```
//!
//! * The day may be space-padded (`Oct  1`), zero-padded or a single digit.
//! * The year is not in the line: it is the year of the ingest time, unless
//!   that puts the event more than [`FUTURE_TOLERANCE_DAYS`] days after the
//!   ingest time, in which case it is the year before (a December line read in
//!   January).
//! * The time has no zone: it is taken as UTC.
//! * HOSTNAME is any run of non-space bytes (name, IPv4 or IPv6). If the token
//!   after the timestamp already looks like a tag (`su:` or `su[12]:`), the
//!   line has no HOSTNAME.
//! * TAG is `tag[pid]:`, `tag:`, or absent (then MSG starts right after the
//!   HOSTNAME). Tag characters are printable ASCII other than SP, `[`, `]`,
//!   `:` (so `sshd(pam_unix)`, `postfix/smtpd`, `kernel.x-y_z` all work).

use std::borrow::Cow;

use logpipe_schemas::event::{Event, Syslog};
use logpipe_schemas::time::{civil_from_days, micros_from_parts, Micros};
use nom::bytes::complete::{take_while1, take_while_m_n};

use super::time::{byte, dig2, month_abbr, valid_civil};
use super::{base, fail, lossy, need, trim_eol, Fail, LineContext, ParseError, R};

pub const DATASET: &str = "syslog.rfc3164";
const FORMAT: &str = "rfc3164";

/// How far after the ingest time an event may fall before its year is taken
/// to be the previous one.
pub const FUTURE_TOLERANCE_DAYS: i64 = 31;

/// Parses an RFC 3164 line, with or without `<PRI>`.
pub fn parse<'a>(line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    let body = trim_eol(line);
    let mut ev = base(line, ctx, DATASET);
    match parse_body(body, ctx.ingest) {
        Ok((ts, syslog, message)) => {
            ev.timestamp = ts;
            ev.message = message;
            if ev.host_name.is_none() {
                ev.host_name = syslog.hostname.clone();
            }
            ev.syslog = Some(syslog);
            Ok(ev)
        }
        Err(f) => Err(f.into_error(FORMAT, body)),
    }
}

type Parsed<'a> = (Micros, Syslog<'a>, Option<Cow<'a, str>>);

fn parse_body(i: &[u8], ingest: Micros) -> Result<Parsed<'_>, Fail> {
    let (i, priority) = if i.first() == Some(&b'<') {
        pri(i).map(|(i, p)| (i, Some(p)))?
    } else {
        (i, None)
    };
    let (i, ts) = timestamp(i, ingest)?;
    let mut syslog = Syslog {
        priority,
        ..Default::default()
    };

    // HOSTNAME, unless the first token is already the tag.
    let (after_host, host) = token(i);
    let i = if looks_like_tag(host) {
        i
    } else {
        if !host.is_empty() {
            syslog.hostname = Some(super::ascii_str(host));
        }
        after_host
    };
    let i = skip_spaces(i);

    let msg = match tag(i) {
        Some((rest, t, pid)) => {
            syslog.appname = Some(super::ascii_str(t));
            syslog.procid = pid.map(super::ascii_str);
            rest.strip_prefix(b" ").unwrap_or(rest)
        }
        None => i,
    };
    let message = (!msg.is_empty()).then(|| lossy(msg));
    Ok((ts, syslog, message))
}

/// `<PRI>` with 1-3 digits in 0..=191.
fn pri(i: &[u8]) -> Result<(&[u8], u8), Fail> {
    const BAD: &str = "PRI must be '<', 1 to 3 digits, '>'";
    let (j, _) = need(byte(b'<')(i), i, BAD)?;
    let (j, d) = need(take_while_m_n(1, 3, |b: u8| b.is_ascii_digit())(j), j, BAD)?;
    let (j, _) = need(byte(b'>')(j), j, BAD)?;
    let v = d.iter().fold(0u32, |a, &b| a * 10 + (b - b'0') as u32);
    if v > 191 {
        return fail(i, "PRI out of range 0..=191");
    }
    Ok((j, v as u8))
}

/// Day of month: `dd`, ` d` (space-padded) or `d`, followed by SP.
fn day(i: &[u8]) -> R<'_, u32> {
    let i = i.strip_prefix(b" ").unwrap_or(i);
    let (i, d) = take_while_m_n(1, 2, |b: u8| b.is_ascii_digit())(i)?;
    let (i, _) = byte(b' ')(i)?;
    Ok((i, d.iter().fold(0, |a, &b| a * 10 + (b - b'0') as u32)))
}

fn clock(i: &[u8]) -> R<'_, (u32, u32, u32)> {
    let (i, h) = dig2(i)?;
    let (i, _) = byte(b':')(i)?;
    let (i, m) = dig2(i)?;
    let (i, _) = byte(b':')(i)?;
    let (i, s) = dig2(i)?;
    Ok((i, (h, m, s)))
}

/// `Mmm dd hh:mm:ss` then SP (or end of line), with the year inferred.
fn timestamp(i: &[u8], ingest: Micros) -> Result<(&[u8], Micros), Fail> {
    const BAD: &str = "expected a 'Mmm dd hh:mm:ss' timestamp";
    let (j, month) = need(month_abbr(i), i, BAD)?;
    let (j, _) = need(byte(b' ')(j), j, BAD)?;
    let (j, day) = need(day(j), j, BAD)?;
    let (j, (h, m, s)) = need(clock(j), j, BAD)?;
    let j = match j.split_first() {
        None => j,
        Some((b' ', rest)) => rest,
        Some(_) => return fail(j, "expected SP after the timestamp"),
    };
    let (ingest_year, _, _) = civil_from_days(ingest.div_euclid(86_400_000_000));
    // An absurd ingest time (it comes from a header) must not overflow below.
    let mut year = ingest_year.clamp(1, 9999);
    let candidate = micros_from_parts(year, month, day, h, m, s, 0, 0);
    if candidate > ingest.saturating_add(FUTURE_TOLERANCE_DAYS * 86_400_000_000) {
        year -= 1;
    }
    if !valid_civil(year, month, day, h, m, s) {
        return fail(
            i,
            "timestamp has a day or time field out of range (for the inferred year)",
        );
    }
    Ok((j, micros_from_parts(year, month, day, h, m, s, 0, 0)))
}

/// The next space-delimited token and what follows its SP.
fn token(i: &[u8]) -> (&[u8], &[u8]) {
    match i.iter().position(|&b| b == b' ') {
        Some(p) => (&i[p + 1..], &i[..p]),
        None => (&i[i.len()..], i),
    }
}

fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|&&b| b == b' ').count();
    &i[n..]
}

/// Whether the token after the timestamp is a tag (`su:`, `cron[12]:`)
/// rather than a HOSTNAME. An IPv6 address ending in `::` is a HOSTNAME.
fn looks_like_tag(t: &[u8]) -> bool {
    match t.last() {
        Some(b':') => {
            !(t.iter().filter(|&&b| b == b':').count() >= 2
                && std::str::from_utf8(t).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok()))
        }
        _ => false,
    }
}

#[inline(always)]
fn tag_char(b: u8) -> bool {
    (33..=126).contains(&b) && !matches!(b, b'[' | b']' | b':')
}

/// What follows the tag, the tag, the pid.
type Tag<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

/// `tag[pid]:` or `tag:`; `None` if the text does not start with either.
fn tag(i: &[u8]) -> Option<Tag<'_>> {
    let r: R<'_, &[u8]> = take_while_m_n(1, 128, tag_char)(i);
    let (j, t) = r.ok()?;
    match j.first()? {
        b':' => Some((&j[1..], t, None)),
        b'[' => {
            let r: R<'_, &[u8]> = take_while1(tag_char)(&j[1..]);
            let (k, pid) = r.ok()?;
            let k = k.strip_prefix(b"]:")?;
            Some((k, t, Some(pid)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{corpus, ctx, json_of, lines, INGEST};
    use logpipe_schemas::time::rfc3339 as fmt;

    fn ok(line: &[u8]) -> Event<'_> {
        parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)))
    }

    fn at(ingest: Micros, line: &[u8]) -> String {
        let c = LineContext { ingest, ..ctx() };
        fmt(parse(line, &c).unwrap().timestamp)
    }

    #[test]
    fn rfc_example_with_pri() {
        let e = ok(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(s.priority, Some(34));
        assert_eq!(s.version, None);
        assert_eq!(s.hostname.as_deref(), Some("mymachine"));
        assert_eq!(s.appname.as_deref(), Some("su"));
        assert_eq!(s.procid, None);
        assert_eq!(e.message.as_deref(), Some("'su root' failed for lonvick on /dev/pts/8"));
        // Ingest is June 2024: October is more than a month ahead, so 2023.
        assert_eq!(fmt(e.timestamp), "2023-10-11T22:14:15.000000Z");
        assert_eq!(e.host_name.as_deref(), Some("mymachine"));
        assert_eq!(e.dataset, "syslog.rfc3164");
        assert_eq!(e.ingested, INGEST);
        let v = json_of(&e);
        assert_eq!(v["log"]["syslog"]["priority"], 34);
        assert_eq!(v["process"]["name"], "su");
    }

    #[test]
    fn without_pri_and_with_pid() {
        let e = ok(b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0\r");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(s.priority, None);
        assert_eq!(s.hostname.as_deref(), Some("combo"));
        assert_eq!(s.appname.as_deref(), Some("sshd(pam_unix)"));
        assert_eq!(s.procid.as_deref(), Some("19939"));
        assert_eq!(e.message.as_deref(), Some("authentication failure; logname= uid=0"));
        assert_eq!(fmt(e.timestamp), "2024-06-14T15:16:01.000000Z");
        assert_eq!(json_of(&e)["process"]["pid"], 19939);
    }

    #[test]
    fn day_padding_forms() {
        for (line, want) in [
            (&b"Oct  1 00:00:00 h t: m"[..], "2023-10-01T00:00:00.000000Z"),
            (b"Oct 1 00:00:00 h t: m", "2023-10-01T00:00:00.000000Z"),
            (b"Oct 01 00:00:00 h t: m", "2023-10-01T00:00:00.000000Z"),
            (b"Jun 15 23:59:59 h t: m", "2024-06-15T23:59:59.000000Z"),
        ] {
            assert_eq!(fmt(ok(line).timestamp), want);
        }
    }

    #[test]
    fn year_inference() {
        let jan_2 = micros_from_parts(2025, 1, 2, 0, 0, 0, 0, 0);
        assert_eq!(at(jan_2, b"Dec 31 23:59:59 h t: m"), "2024-12-31T23:59:59.000000Z");
        assert_eq!(at(jan_2, b"Jan  1 10:00:00 h t: m"), "2025-01-01T10:00:00.000000Z");
        // Up to a month in the future (clock skew) keeps the ingest year.
        assert_eq!(at(jan_2, b"Jan 30 10:00:00 h t: m"), "2025-01-30T10:00:00.000000Z");
        assert_eq!(at(jan_2, b"Feb 10 10:00:00 h t: m"), "2024-02-10T10:00:00.000000Z");
        // Feb 29 only exists in leap years.
        let mar_2024 = micros_from_parts(2024, 3, 1, 0, 0, 0, 0, 0);
        assert_eq!(at(mar_2024, b"Feb 29 10:00:00 h t: m"), "2024-02-29T10:00:00.000000Z");
        let c = LineContext {
            ingest: micros_from_parts(2025, 3, 1, 0, 0, 0, 0, 0),
            ..ctx()
        };
        assert!(parse(b"Feb 29 10:00:00 h t: m", &c)
            .unwrap_err()
            .reason
            .contains("out of range"));
    }

    #[test]
    fn extreme_ingest_times_do_not_overflow() {
        for ingest in [i64::MIN, -1, 0, i64::MAX] {
            let c = LineContext { ingest, ..ctx() };
            parse(b"Dec 31 23:59:59 h t: m", &c).unwrap().to_json();
            parse(b"Jan  1 00:00:00 h t: m", &c).unwrap().to_json();
        }
    }

    #[test]
    fn tag_forms() {
        let e = ok(b"<13>Oct 11 22:14:15 host this is just text");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!((s.hostname.as_deref(), s.appname.as_deref()), (Some("host"), None));
        assert_eq!(e.message.as_deref(), Some("this is just text"));

        let e = ok(b"Jun 19 04:09:11 combo syslogd 1.4.1: restart.");
        assert_eq!(e.syslog.as_ref().unwrap().appname, None);
        assert_eq!(e.message.as_deref(), Some("syslogd 1.4.1: restart."));

        let e = ok(b"Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
        assert_eq!(e.syslog.as_ref().unwrap().hostname.as_deref(), Some("combo"));
        assert_eq!(e.message.as_deref(), Some("-- root[2421]: ROOT LOGIN ON tty2"));

        let e = ok(b"Mar  3 01:02:03 mail postfix/smtpd[42]:message without space");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(
            (s.appname.as_deref(), s.procid.as_deref()),
            (Some("postfix/smtpd"), Some("42"))
        );
        assert_eq!(e.message.as_deref(), Some("message without space"));

        // No HOSTNAME: the first token is the tag.
        let e = ok(b"<13>Oct 11 22:14:15 su[77]: hello");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(
            (s.hostname.as_deref(), s.appname.as_deref(), s.procid.as_deref()),
            (None, Some("su"), Some("77"))
        );
        let e = ok(b"<13>Oct 11 22:14:15 cron: hello");
        assert_eq!(e.syslog.as_ref().unwrap().appname.as_deref(), Some("cron"));
        assert_eq!(e.host_name, None);
    }

    #[test]
    fn ip_hostnames() {
        for host in ["192.0.2.1", "2001:db8::1", "fe80::"] {
            let line = format!("<13>Oct 11 22:14:15 {host} app[1]: hi");
            let e = ok(line.as_bytes());
            assert_eq!(e.syslog.as_ref().unwrap().hostname.as_deref(), Some(host));
            assert_eq!(e.syslog.as_ref().unwrap().appname.as_deref(), Some("app"));
        }
    }

    #[test]
    fn odd_but_accepted() {
        let e = ok(b"<13>Oct 11 22:14:15");
        assert_eq!(
            (e.message.clone(), e.syslog.as_ref().unwrap().hostname.clone()),
            (None, None)
        );
        let e = ok(b"Oct 11 22:14:15 host");
        assert_eq!(e.syslog.unwrap().hostname.as_deref(), Some("host"));
        let e = ok(b"Oct 11 22:14:15 h t: \xFF");
        assert_eq!(e.message.as_deref(), Some("\u{fffd}"));
        let e = ok(b"Oct 11 22:14:15 h t[unterminated: m");
        assert_eq!(e.syslog.as_ref().unwrap().appname, None);
    }

    #[test]
    fn malformed() {
        let bad = |l: &[u8]| parse(l, &ctx()).unwrap_err().reason;
        assert!(bad(b"<192>Oct 11 22:14:15 h t: m").contains("PRI out of range"));
        assert!(bad(b"<1a>Oct 11 22:14:15 h t: m").contains("PRI must be"));
        assert!(bad(b"<13>2003-10-11T22:14:15Z h t: m").contains("timestamp"));
        assert!(bad(b"Oct 32 22:14:15 h t: m").contains("out of range"));
        assert!(bad(b"Oct 11 25:14:15 h t: m").contains("out of range"));
        assert!(bad(b"Oct 11 22:14 h t: m").contains("timestamp"));
        assert!(bad(b"Oct 11 22:14:15.123 h t: m").contains("expected SP"));
        assert!(bad(b"hello world").contains("timestamp"));
        assert!(bad(b"").contains("timestamp"));
    }

    #[test]
    fn linux_2k_corpus_parses() {
        let Some(data) = corpus("loghub/Linux_2k.log") else {
            return;
        };
        let mut n = 0;
        for line in lines(&data) {
            let e = parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert!(e.syslog.as_ref().unwrap().hostname.is_some());
            n += 1;
        }
        assert_eq!(n, 2000);
    }
}
