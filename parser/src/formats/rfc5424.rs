//! RFC 5424 syslog, read strictly: a line that breaks the ABNF of RFC 5424
//! section 6 is an error naming the broken part, never a guess.
//!
//! ```text
//! SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]
//! HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
//! ```

use std::borrow::Cow;

use logpipe_schemas::event::{Event, SdElement, Syslog};
use logpipe_schemas::scan::{find_non_printable, printable, utf8};
use logpipe_schemas::time::Micros;
use nom::bytes::complete::take_while_m_n;

use super::time::{byte, rfc3339, Rfc3339, TsError};
use super::{base, fail, find3, lossy, need, trim_eol, Fail, LineContext, ParseError, R};

pub const DATASET: &str = "syslog.rfc5424";
const FORMAT: &str = "rfc5424";

/// Parses an RFC 5424 line.
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
    let (i, priority) = pri(i)?;
    let (i, version) = version(i)?;
    let (i, ts) = timestamp(i)?;
    let (i, hostname) = header_field(i, &HOSTNAME)?;
    let (i, appname) = header_field(i, &APP_NAME)?;
    let (i, procid) = header_field(i, &PROCID)?;
    let (i, msgid) = header_field(i, &MSGID)?;
    let (i, structured_data) = structured_data(i)?;
    let message = match i.split_first() {
        None => None,
        Some((b' ', msg)) => {
            let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
            (!msg.is_empty()).then(|| lossy(msg))
        }
        Some(_) => return fail(i, "expected SP or end of line after STRUCTURED-DATA"),
    };
    let syslog = Syslog {
        priority: Some(priority),
        version: Some(version),
        hostname,
        appname,
        procid,
        msgid,
        structured_data,
    };
    Ok((ts.unwrap_or(ingest), syslog, message))
}

#[inline(always)]
fn digits_1_3(i: &[u8]) -> R<'_, &[u8]> {
    take_while_m_n(1, 3, |b: u8| b.is_ascii_digit())(i)
}

#[inline(always)]
fn to_u32(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, &b| acc * 10 + (b - b'0') as u32)
}

/// `PRI = "<" PRIVAL ">"`, `PRIVAL = 1*3DIGIT` in 0..=191.
fn pri(i: &[u8]) -> Result<(&[u8], u8), Fail> {
    const BAD: &str = "PRI must be '<', 1 to 3 digits, '>'";
    let (j, _) = need(byte(b'<')(i), i, BAD)?;
    let (j, d) = need(digits_1_3(j), j, BAD)?;
    let (j, _) = need(byte(b'>')(j), j, BAD)?;
    let v = to_u32(d);
    if v > 191 {
        return fail(i, "PRI out of range 0..=191");
    }
    Ok((j, v as u8))
}

/// `VERSION = NONZERO-DIGIT 0*2DIGIT`, then SP. Values above 255 are refused.
fn version(i: &[u8]) -> Result<(&[u8], u8), Fail> {
    let (j, d) = need(digits_1_3(i), i, "missing VERSION after PRI")?;
    if d[0] == b'0' {
        return fail(i, "VERSION must not start with 0");
    }
    let v = to_u32(d);
    if v > 255 {
        return fail(i, "VERSION out of range 1..=255");
    }
    let (j, _) = need(byte(b' ')(j), j, "expected SP after VERSION (at most 3 digits)")?;
    Ok((j, v as u8))
}

/// `TIMESTAMP = NILVALUE / FULL-DATE "T" FULL-TIME`, then SP.
fn timestamp(i: &[u8]) -> Result<(&[u8], Option<Micros>), Fail> {
    let (j, ts) = if let Some(rest) = i.strip_prefix(b"-") {
        (rest, None)
    } else {
        match rfc3339(i, Rfc3339::Syslog) {
            Ok((j, ts)) => (j, Some(ts)),
            Err(TsError::Syntax) => {
                return fail(
                    i,
                    "TIMESTAMP must be '-' or YYYY-MM-DDThh:mm:ss[.1-6 digits](Z|+hh:mm|-hh:mm)",
                )
            }
            Err(TsError::Range) => return fail(i, "TIMESTAMP has a date or time field out of range"),
        }
    };
    let (j, _) = need(byte(b' ')(j), j, "expected SP after TIMESTAMP")?;
    Ok((j, ts))
}

struct FieldSpec {
    max: usize,
    too_long: &'static str,
    bad: &'static str,
}

const HOSTNAME: FieldSpec = FieldSpec {
    max: 255,
    too_long: "HOSTNAME longer than 255 characters",
    bad: "HOSTNAME must be '-' or 1-255 printable US-ASCII characters followed by SP",
};
const APP_NAME: FieldSpec = FieldSpec {
    max: 48,
    too_long: "APP-NAME longer than 48 characters",
    bad: "APP-NAME must be '-' or 1-48 printable US-ASCII characters followed by SP",
};
const PROCID: FieldSpec = FieldSpec {
    max: 128,
    too_long: "PROCID longer than 128 characters",
    bad: "PROCID must be '-' or 1-128 printable US-ASCII characters followed by SP",
};
const MSGID: FieldSpec = FieldSpec {
    max: 32,
    too_long: "MSGID longer than 32 characters",
    bad: "MSGID must be '-' or 1-32 printable US-ASCII characters followed by SP",
};

/// `NILVALUE / 1*max PRINTUSASCII`, then SP; `-` alone is `None`.
#[inline]
fn header_field<'a>(i: &'a [u8], spec: &FieldSpec) -> Result<(&'a [u8], Option<Cow<'a, str>>), Fail> {
    // One block scan to the first byte outside PRINTUSASCII (the SP after
    // the field, within the first block for nearly every field); the length
    // limit is checked on the result.
    let n = find_non_printable(i).unwrap_or(i.len());
    if n == 0 {
        return fail(i, spec.bad);
    }
    if n > spec.max {
        return fail(i, spec.too_long);
    }
    let (v, j) = i.split_at(n);
    if j.first() != Some(&b' ') {
        return fail(j, spec.bad);
    }
    let value = if v == b"-" {
        None
    } else {
        // Printable US-ASCII is valid UTF-8.
        Some(Cow::Borrowed(utf8(v).map_err(|_| Fail {
            rest_len: i.len(),
            reason: spec.bad,
        })?))
    };
    Ok((&j[1..], value))
}

/// `SD-NAME = 1*32PRINTUSASCII` except `=`, SP, `]`, `"`.
#[inline(always)]
fn sd_name_char(b: u8) -> bool {
    printable(b) && b != b'=' && b != b']' && b != b'"'
}

fn sd_name<'a>(i: &'a [u8], what: &'static str, too_long: &'static str) -> Result<(&'a [u8], &'a str), Fail> {
    let (j, n) = need(take_while_m_n(1, 32, sd_name_char)(i), i, what)?;
    if j.first().is_some_and(|&b| sd_name_char(b)) {
        return fail(i, too_long);
    }
    // SD-NAME characters are ASCII.
    let s = utf8(n).map_err(|_| Fail {
        rest_len: i.len(),
        reason: what,
    })?;
    Ok((j, s))
}

/// `STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT`
fn structured_data(i: &[u8]) -> Result<(&[u8], Vec<SdElement<'_>>), Fail> {
    if let Some(rest) = i.strip_prefix(b"-") {
        return Ok((rest, Vec::new()));
    }
    if i.first() != Some(&b'[') {
        return fail(i, "STRUCTURED-DATA must be '-' or start with '['");
    }
    let mut out: Vec<SdElement<'_>> = Vec::new();
    let mut i = i;
    while let Some(rest) = i.strip_prefix(b"[") {
        let (j, el) = sd_element(rest)?;
        if out.iter().any(|e| e.id == el.id) {
            return fail(rest, "SD-ID appears twice in STRUCTURED-DATA");
        }
        out.push(el);
        i = j;
    }
    Ok((i, out))
}

/// `SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"`, after the `[`.
fn sd_element(i: &[u8]) -> Result<(&[u8], SdElement<'_>), Fail> {
    let (mut i, id) = sd_name(
        i,
        "SD-ID must be 1-32 printable US-ASCII characters other than '=', SP, ']', '\"'",
        "SD-ID longer than 32 characters",
    )?;
    let mut params = Vec::new();
    loop {
        match i.split_first() {
            Some((b']', rest)) => {
                return Ok((
                    rest,
                    SdElement {
                        id: Cow::Borrowed(id),
                        params,
                    },
                ))
            }
            Some((b' ', rest)) => {
                let (j, name) = sd_name(
                    rest,
                    "PARAM-NAME must be 1-32 printable US-ASCII characters other than '=', SP, ']', '\"'",
                    "PARAM-NAME longer than 32 characters",
                )?;
                let (j, _) = need(byte(b'=')(j), j, "expected '=' after PARAM-NAME")?;
                let (j, _) = need(byte(b'"')(j), j, "expected '\"' to open PARAM-VALUE")?;
                let (j, value) = param_value(j)?;
                params.push((Cow::Borrowed(name), value));
                i = j;
            }
            None => return fail(i, "unterminated SD-ELEMENT (missing ']')"),
            Some(_) => return fail(i, "expected SP or ']' in SD-ELEMENT"),
        }
    }
}

/// `PARAM-VALUE` after its opening quote, through the closing quote. `\"`,
/// `\\` and `\]` are unescaped; a backslash before any other character is
/// kept (RFC 5424 6.3.3). An unescaped `]` is an error, as is invalid UTF-8.
fn param_value(i: &[u8]) -> Result<(&[u8], Cow<'_, str>), Fail> {
    const NOT_UTF8: &str = "PARAM-VALUE is not valid UTF-8";
    let mut owned: Option<Vec<u8>> = None;
    let mut start = 0;
    let mut k = 0;
    while k < i.len() {
        match find3(&i[k..], b'"', b'\\', b']') {
            Some(p) => k += p,
            None => break,
        }
        match i[k] {
            b'"' => {
                let value = match owned {
                    None => Cow::Borrowed(utf8(&i[..k]).map_err(|_| Fail {
                        rest_len: i.len(),
                        reason: NOT_UTF8,
                    })?),
                    Some(mut buf) => {
                        buf.extend_from_slice(&i[start..k]);
                        Cow::Owned(String::from_utf8(buf).map_err(|_| Fail {
                            rest_len: i.len(),
                            reason: NOT_UTF8,
                        })?)
                    }
                };
                return Ok((&i[k + 1..], value));
            }
            b'\\' => match i.get(k + 1) {
                Some(&c @ (b'"' | b'\\' | b']')) => {
                    let buf = owned.get_or_insert_with(|| Vec::with_capacity(i.len().min(256)));
                    buf.extend_from_slice(&i[start..k]);
                    buf.push(c);
                    k += 2;
                    start = k;
                }
                _ => k += 1,
            },
            b']' => return fail(&i[k..], "unescaped ']' in PARAM-VALUE (must be written '\\]')"),
            _ => k += 1,
        }
    }
    fail(&i[i.len()..], "unterminated PARAM-VALUE (missing closing '\"')")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{ctx, json_of, INGEST};
    use logpipe_schemas::time::rfc3339 as fmt;

    fn ok(line: &[u8]) -> Event<'_> {
        parse(line, &ctx()).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)))
    }

    fn err(line: &[u8]) -> String {
        match parse(line, &ctx()) {
            Ok(e) => panic!("parsed but should not: {e:?}"),
            Err(e) => {
                assert_eq!(e.format, "rfc5424");
                e.reason
            }
        }
    }

    #[test]
    fn rfc_example_1_bom_message() {
        let line = b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8";
        let e = ok(line);
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(s.priority, Some(34));
        assert_eq!(s.version, Some(1));
        assert_eq!(fmt(e.timestamp), "2003-10-11T22:14:15.003000Z");
        assert_eq!(s.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(s.appname.as_deref(), Some("su"));
        assert_eq!(s.procid, None);
        assert_eq!(s.msgid.as_deref(), Some("ID47"));
        assert!(s.structured_data.is_empty());
        assert_eq!(e.message.as_deref(), Some("'su root' failed for lonvick on /dev/pts/8"));
        assert!(matches!(e.message, Some(Cow::Borrowed(_))));
        assert_eq!(e.host_name.as_deref(), Some("mymachine.example.com"));
        assert_eq!(e.dataset, "syslog.rfc5424");
        assert_eq!(e.original, &line[..]);
        assert_eq!(e.ingested, INGEST);
        assert_eq!(e.log_offset, Some(7));
        assert_eq!(e.log_file_path.as_deref(), Some("/var/log/test"));
        let v = json_of(&e);
        assert_eq!(v["log"]["syslog"]["facility"]["code"], 4);
        assert_eq!(v["log"]["syslog"]["severity"]["code"], 2);
        assert_eq!(v["process"]["name"], "su");
    }

    #[test]
    fn rfc_example_2_offset_and_microseconds() {
        let e =
            ok(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(fmt(e.timestamp), "2003-08-24T12:14:15.000003Z");
        assert_eq!(s.hostname.as_deref(), Some("192.0.2.1"));
        assert_eq!(s.appname.as_deref(), Some("myproc"));
        assert_eq!(s.procid.as_deref(), Some("8710"));
        assert_eq!(s.msgid, None);
        assert_eq!(e.message.as_deref(), Some("%% It's time to make the do-nuts."));
        assert_eq!(json_of(&e)["process"]["pid"], 8710);
    }

    #[test]
    fn rfc_example_3_structured_data_and_message() {
        let e = ok(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(s.structured_data.len(), 1);
        let sd = &s.structured_data[0];
        assert_eq!(sd.id, "exampleSDID@32473");
        assert_eq!(
            sd.params,
            vec![
                ("iut".into(), "3".into()),
                ("eventSource".into(), "Application".into()),
                ("eventID".into(), "1011".into())
            ]
        );
        assert_eq!(e.message.as_deref(), Some("An application event log entry..."));
        let v = json_of(&e);
        assert_eq!(
            v["log"]["syslog"]["structured_data"]["exampleSDID@32473"]["eventSource"],
            "Application"
        );
    }

    #[test]
    fn rfc_example_4_only_structured_data() {
        let e = ok(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(s.structured_data.len(), 2);
        assert_eq!(s.structured_data[1].id, "examplePriority@32473");
        assert_eq!(s.structured_data[1].params, vec![("class".into(), "high".into())]);
        assert_eq!(e.message, None);
    }

    #[test]
    fn nil_values_and_ingest_time() {
        let e = ok(b"<0>1 - - - - - -");
        let s = e.syslog.as_ref().unwrap();
        assert_eq!(e.timestamp, INGEST);
        assert_eq!(s.priority, Some(0));
        assert_eq!(
            (s.hostname.clone(), s.appname.clone(), s.procid.clone(), s.msgid.clone()),
            (None, None, None, None)
        );
        assert_eq!(e.message, None);
        assert_eq!(e.host_name, None);
        // An empty MSG after the SP is no message; max PRI and VERSION.
        let e = ok(b"<191>255 - h - - - - ");
        assert_eq!(e.message, None);
        assert_eq!(e.syslog.unwrap().version, Some(255));
    }

    #[test]
    fn context_host_wins_over_hostname() {
        let c = LineContext {
            host: Some("shipper-1"),
            ..ctx()
        };
        let e = parse(b"<13>1 - web - - - - hi", &c).unwrap();
        assert_eq!(e.host_name.as_deref(), Some("shipper-1"));
        assert_eq!(e.syslog.unwrap().hostname.as_deref(), Some("web"));
    }

    #[test]
    fn escapes_in_param_values() {
        let e = ok(br#"<13>1 - h a - - [x@1 a="q\"b\\s\]e" b="keep\n\x" c=""] m"#);
        let p = &e.syslog.as_ref().unwrap().structured_data[0].params;
        assert_eq!(p[0].1, r#"q"b\s]e"#);
        assert!(matches!(p[0].1, Cow::Owned(_)));
        assert_eq!(p[1].1, r"keep\n\x");
        assert!(matches!(p[1].1, Cow::Borrowed(_)));
        assert_eq!(p[2].1, "");
        assert_eq!(e.message.as_deref(), Some("m"));
        // A value of one escaped backslash just before the closing quote.
        let e = ok(br#"<13>1 - h a - - [x@1 a="\\"]"#);
        assert_eq!(e.syslog.unwrap().structured_data[0].params[0].1, "\\");
    }

    #[test]
    fn message_edge_cases() {
        let e = ok(b"<13>1 - h a - - - caf\xC3\xA9 \xFF end\r\n");
        assert_eq!(e.message.as_deref(), Some("caf\u{e9} \u{fffd} end"));
        assert_eq!(e.original, b"<13>1 - h a - - - caf\xC3\xA9 \xFF end\r\n");
        let e = ok(b"<13>1 - h a - - -  two spaces");
        assert_eq!(e.message.as_deref(), Some(" two spaces"));
        let e = ok(b"<13>1 - h a - - - \xEF\xBB\xBF");
        assert_eq!(e.message, None);
    }

    #[test]
    fn malformed_pri_and_version() {
        assert!(err(b"<192>1 - - - - - -").contains("PRI out of range"));
        assert!(err(b"<1000>1 - - - - - -").contains("PRI must be"));
        assert!(err(b"<>1 - - - - - -").contains("PRI must be"));
        assert!(err(b"34>1 - - - - - -").contains("PRI must be"));
        assert!(err(b"<34 - - - - - -").contains("PRI must be"));
        assert!(err(b"").contains("PRI must be"));
        assert!(err(b"<34> - - - - - -").contains("missing VERSION"));
        assert!(err(b"<34>2003-10-11T22:14:15.003Z host").contains("expected SP after VERSION"));
        assert!(err(b"<34>0 - - - - - -").contains("VERSION must not start with 0"));
        assert!(err(b"<34>256 - - - - - -").contains("VERSION out of range"));
        assert!(err(b"<34>Oct 11 22:14:15 mymachine su: hi").contains("missing VERSION"));
    }

    #[test]
    fn malformed_timestamps() {
        for ts in [
            "2003-10-11T22:14:15.0000003Z",
            "2003-10-11T22:14:15",
            "2003-10-11 22:14:15Z",
            "2003-10-11T22:14:15.003z",
            "Oct 11 22:14:15",
        ] {
            let line = format!("<34>1 {ts} h a - - -");
            assert!(err(line.as_bytes()).contains("TIMESTAMP must be"), "{ts}");
        }
        for ts in [
            "2003-13-11T22:14:15Z",
            "2003-02-29T22:14:15Z",
            "2003-10-11T22:60:15Z",
            "2003-10-11T22:14:15+24:00",
        ] {
            let line = format!("<34>1 {ts} h a - - -");
            assert!(err(line.as_bytes()).contains("out of range"), "{ts}");
        }
        let r = err(b"<34>1 2003-13-11T22:14:15Z h a - - -");
        assert!(r.ends_with("(at byte 6)"), "{r}");
    }

    #[test]
    fn malformed_header_fields() {
        let long_app = format!("<34>1 - h {} - - -", "a".repeat(49));
        assert!(err(long_app.as_bytes()).contains("APP-NAME longer than 48"));
        let max_app = format!("<34>1 - h {} - - -", "a".repeat(48));
        assert_eq!(ok(max_app.as_bytes()).syslog.unwrap().appname.unwrap().len(), 48);
        let long_msgid = format!("<34>1 - h a - {} -", "m".repeat(33));
        assert!(err(long_msgid.as_bytes()).contains("MSGID longer than 32"));
        let long_host = format!("<34>1 - {} a - - -", "h".repeat(256));
        assert!(err(long_host.as_bytes()).contains("HOSTNAME longer than 255"));
        let long_proc = format!("<34>1 - h a {} - -", "1".repeat(129));
        assert!(err(long_proc.as_bytes()).contains("PROCID longer than 128"));
        assert!(err(b"<34>1 - h\xC3\xA9 a - - -").contains("HOSTNAME must be"));
        assert!(err(b"<34>1 - h  a - - -").contains("APP-NAME must be"));
        assert!(err(b"<34>1 - h a - -").contains("MSGID must be"));
        assert!(err(b"<34>1 - h a - - ").contains("STRUCTURED-DATA must be"));
        assert!(err(b"<34>1 - h a - - x").contains("STRUCTURED-DATA must be"));
        assert!(err(b"<34>1 - h a - - -x").contains("expected SP or end"));
    }

    #[test]
    fn malformed_structured_data() {
        assert!(err(br#"<34>1 - h a - - [x@1 a="1""#).contains("unterminated SD-ELEMENT"));
        assert!(err(br#"<34>1 - h a - - [x@1 a="1"#).contains("unterminated PARAM-VALUE"));
        // The escaped quote does not close the value.
        assert!(err(br#"<34>1 - h a - - [x@1 a="1\""#).contains("unterminated PARAM-VALUE"));
        assert!(err(br#"<34>1 - h a - - [x@1 a="1\"]"#).contains("unescaped ']'"));
        assert!(err(br#"<34>1 - h a - - [x@1 a="1]"]"#).contains("unescaped ']'"));
        assert!(err(br#"<34>1 - h a - - [x@1 a=1]"#).contains("to open PARAM-VALUE"));
        assert!(err(br#"<34>1 - h a - - [x@1 a]"#).contains("expected '=' after PARAM-NAME"));
        assert!(err(br#"<34>1 - h a - - [x@1  a="1"]"#).contains("PARAM-NAME must be"));
        assert!(err(br#"<34>1 - h a - - [ a="1"]"#).contains("SD-ID must be"));
        assert!(err(br#"<34>1 - h a - - []"#).contains("SD-ID must be"));
        assert!(err(br#"<34>1 - h a - - [x@1 a="1"]x"#).contains("expected SP or end"));
        // SD followed by SP: the rest is MSG, even if it looks like SD.
        assert_eq!(
            ok(br#"<34>1 - h a - - [x@1 a="1"] [y@1]"#).message.as_deref(),
            Some("[y@1]")
        );
        assert!(err(br#"<34>1 - h a - - [x@1][x@1]"#).contains("SD-ID appears twice"));
        assert!(err(b"<34>1 - h a - - [x@1 a=\"\xFF\"]").contains("not valid UTF-8"));
        let long_id = format!("<34>1 - h a - - [{}]", "i".repeat(33));
        assert!(err(long_id.as_bytes()).contains("SD-ID longer than 32"));
        let long_name = format!("<34>1 - h a - - [x@1 {}=\"v\"]", "n".repeat(33));
        assert!(err(long_name.as_bytes()).contains("PARAM-NAME longer than 32"));
    }
}
