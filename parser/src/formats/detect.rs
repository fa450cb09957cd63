//! `auto`: picks a format per line from its first bytes, then runs that one
//! parser (its error, if any, is the line's error; there is no second try).
//!
//! In order:
//! 1. `<digits>` then a digit: RFC 5424 (`<34>1 ...`);
//! 2. any other `<`: RFC 3164 with PRI;
//! 3. `{`: JSON;
//! 4. `host ident user [`: an access log (the first three space-separated
//!    tokens, then `[`; the first token made of IP/host name characters);
//! 5. a month abbreviation and a space: RFC 3164 without PRI;
//! 6. a `=` anywhere: logfmt;
//! 7. otherwise: `auto: no format matched`.

use logpipe_schemas::event::Event;

use super::time::month_abbr;
use super::{access, json, logfmt, rfc3164, rfc5424, Format, LineContext, ParseError};

/// The format `auto` would use for this line, if any.
pub fn detect(line: &[u8]) -> Option<Format> {
    match line.first()? {
        b'<' => {
            let digits = line[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            let after = &line[1 + digits..];
            if digits > 0 && after.first() == Some(&b'>') && after.get(1).is_some_and(u8::is_ascii_digit) {
                Some(Format::Rfc5424)
            } else {
                Some(Format::Rfc3164)
            }
        }
        b'{' => Some(Format::Json),
        _ if looks_like_access(line) => Some(Format::Access),
        _ if month_abbr(line).is_ok_and(|(rest, _)| rest.first() == Some(&b' ')) => Some(Format::Rfc3164),
        _ if line.contains(&b'=') => Some(Format::Logfmt),
        _ => None,
    }
}

fn host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_' | b'%' | b'[' | b']')
}

/// `client ident user [` with a host-like client.
fn looks_like_access(line: &[u8]) -> bool {
    let mut rest = line;
    for n in 0..3 {
        let len = rest.iter().take_while(|&&b| b != b' ').count();
        if len == 0 || (n == 0 && !rest[..len].iter().all(|&b| host_char(b))) {
            return false;
        }
        match rest.get(len) {
            Some(b' ') => rest = &rest[len + 1..],
            _ => return false,
        }
    }
    rest.first() == Some(&b'[')
}

pub fn parse<'a>(line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    match detect(line) {
        Some(Format::Rfc5424) => rfc5424::parse(line, ctx),
        Some(Format::Rfc3164) => rfc3164::parse(line, ctx),
        Some(Format::Json) => json::parse(line, ctx),
        Some(Format::Access) => access::parse(line, ctx),
        Some(Format::Logfmt) => logfmt::parse(line, ctx),
        Some(Format::Auto) | None => Err(ParseError {
            format: "auto",
            reason: "no format matched".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{corpus, ctx, lines};

    #[test]
    fn detects_each_format() {
        for (line, want) in [
            (
                &b"<34>1 2003-10-11T22:14:15.003Z h su - ID47 - m"[..],
                Some(Format::Rfc5424),
            ),
            (b"<34>Oct 11 22:14:15 mymachine su: m", Some(Format::Rfc3164)),
            (b"<34>", Some(Format::Rfc3164)),
            (b"{\"a\":1}", Some(Format::Json)),
            (
                b"::1 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1",
                Some(Format::Access),
            ),
            (
                b"host.example - bob [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1",
                Some(Format::Access),
            ),
            (b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x", Some(Format::Rfc3164)),
            (b"level=info msg=hi", Some(Format::Logfmt)),
            (b"June is a month a=b", Some(Format::Logfmt)),
            (b"hello world", None),
            (b"", None),
        ] {
            assert_eq!(detect(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn reports_the_chosen_parsers_error() {
        let e = parse(b"<34>1 bad", &ctx()).unwrap_err();
        assert_eq!(e.format, "rfc5424");
        let e = parse(b"{oops", &ctx()).unwrap_err();
        assert_eq!(e.format, "json");
        let e = parse(b"plain text", &ctx()).unwrap_err();
        assert_eq!(e.to_string(), "auto: no format matched");
        let e = parse(b"<34>1 - h a - - - m", &ctx()).unwrap();
        assert_eq!(e.dataset, "syslog.rfc5424");
        let e = parse(b"a=b", &ctx()).unwrap();
        assert_eq!(e.dataset, "logfmt");
    }

    #[test]
    fn linux_2k_parses_as_rfc3164_via_auto() {
        let Some(data) = corpus("loghub/Linux_2k.log") else {
            return;
        };
        let mut n = 0;
        for line in lines(&data) {
            assert_eq!(detect(line), Some(Format::Rfc3164));
            let e = parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert_eq!(e.dataset, "syslog.rfc3164");
            n += 1;
        }
        assert_eq!(n, 2000);
    }

    #[test]
    fn apache_combined_via_auto() {
        let Some(data) = corpus("access/apache_combined.log") else {
            return;
        };
        for line in lines(&data) {
            assert_eq!(detect(line), Some(Format::Access), "{}", String::from_utf8_lossy(line));
        }
    }
}
