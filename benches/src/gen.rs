//! Realistic log lines for the pipeline benches, each carrying a marker
//! `lpmark:<seq>:<written_ms>` that survives every stage unchanged (it sits
//! in the message or URL, in characters JSON never escapes), so the far end
//! can tell which line a document is and how long it took to get there.

use std::io::Write;

/// The kinds of source a fleet host has, one file each in the benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rfc5424,
    Rfc3164,
    Access,
    Json,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Rfc5424, Kind::Rfc3164, Kind::Access, Kind::Json];

    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Rfc5424 => "app-syslog5424.log",
            Kind::Rfc3164 => "auth-syslog3164.log",
            Kind::Access => "nginx-access.log",
            Kind::Json => "orders-json.log",
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/items",
    "/static/app.js",
    "/login",
    "/api/v1/cart/checkout",
    "/healthz",
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
];

/// UTC calendar parts of a Unix time in milliseconds.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    h: u64,
    m: u64,
    s: u64,
    ms: u64,
}

fn utc(ms: i64) -> Utc {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) as u64;
    let (year, month, day) = logpipe_schemas::time::civil_from_days(days);
    Utc {
        year,
        month,
        day,
        h: in_day / 3_600_000,
        m: in_day / 60_000 % 60,
        s: in_day / 1000 % 60,
        ms: in_day % 1000,
    }
}

/// Appends one line (with its `\n`) of `kind` to `out`. `seq` is the line's
/// number across the whole run, `now_ms` the time it is written.
pub fn line(out: &mut Vec<u8>, kind: Kind, seq: u64, now_ms: i64) {
    let t = utc(now_ms);
    // Cheap, deterministic variety: a few bits of the sequence pick the values.
    let v = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let host = v % 16;
    let _ = match kind {
        Kind::Rfc5424 => writeln!(
            out,
            "<{pri}>1 {y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z web-{host:02} checkout {pid} REQ \
             [req@32473 id=\"{rid:x}\" took=\"{took}\"] order {order} confirmed lpmark:{seq}:{now_ms}",
            pri = 128 + 6 + (v % 2) as u32,
            y = t.year,
            mo = t.month,
            d = t.day,
            h = t.h,
            mi = t.m,
            s = t.s,
            ms = t.ms,
            pid = 1000 + v % 5000,
            rid = v * 7919,
            took = v % 900,
            order = 100_000 + v % 900_000,
        ),
        Kind::Rfc3164 => writeln!(
            out,
            "<38>{mon} {d:>2} {h:02}:{mi:02}:{s:02} web-{host:02} sshd[{pid}]: Accepted publickey for deploy \
             from 10.{a}.{b}.{c} port {port} ssh2: ED25519 SHA256:q8N0k lpmark:{seq}:{now_ms}",
            mon = MONTHS[(t.month - 1) as usize],
            d = t.day,
            h = t.h,
            mi = t.m,
            s = t.s,
            pid = 2000 + v % 30_000,
            a = v % 250,
            b = (v >> 8) % 250,
            c = (v >> 16) % 250,
            port = 30_000 + v % 30_000,
        ),
        Kind::Access => writeln!(
            out,
            "10.{a}.{b}.{c} - - [{d:02}/{mon}/{y:04}:{h:02}:{mi:02}:{s:02} +0000] \"GET {path}/lpmark:{seq}:{now_ms} \
             HTTP/1.1\" {status} {bytes} \"https://shop.example.com/\" \"{agent}\"",
            a = v % 250,
            b = (v >> 8) % 250,
            c = (v >> 16) % 250,
            d = t.day,
            mon = MONTHS[(t.month - 1) as usize],
            y = t.year,
            h = t.h,
            mi = t.m,
            s = t.s,
            path = PATHS[(v % PATHS.len() as u64) as usize],
            status = [200, 200, 200, 304, 404, 500][(v % 6) as usize],
            bytes = 200 + v % 40_000,
            agent = AGENTS[(v % AGENTS.len() as u64) as usize],
        ),
        Kind::Json => writeln!(
            out,
            "{{\"@timestamp\":\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z\",\"log.level\":\"info\",\
             \"message\":\"payment captured lpmark:{seq}:{now_ms}\",\"order_id\":{order},\"amount_cents\":{amt},\
             \"service.name\":\"payments\"}}",
            y = t.year,
            mo = t.month,
            d = t.day,
            h = t.h,
            mi = t.m,
            s = t.s,
            ms = t.ms,
            order = 100_000 + v % 900_000,
            amt = 100 + v % 100_000,
        ),
    };
}

/// Finds the marker in a document (or any bytes holding the line):
/// `(seq, written_ms)`.
pub fn find_mark(doc: &[u8]) -> Option<(u64, i64)> {
    static MARK: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"lpmark:"));
    let at = MARK.find(doc)? + b"lpmark:".len();
    let rest = &doc[at..];
    let (seq, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b":")?;
    let (ms, _) = digits(rest)?;
    Some((seq, ms as i64))
}

fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    Some((v, &b[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_realistic_sized_and_marked() {
        for kind in Kind::ALL {
            for seq in [0u64, 7, 123_456_789] {
                let mut out = Vec::new();
                line(&mut out, kind, seq, 1_795_000_000_123);
                assert_eq!(out.last(), Some(&b'\n'));
                assert!((110..=260).contains(&out.len()), "{kind:?}: {} bytes", out.len());
                assert_eq!(find_mark(&out), Some((seq, 1_795_000_000_123)), "{kind:?}");
            }
        }
    }

    #[test]
    fn every_line_parses_in_its_format() {
        use logpipe_parser::formats::{self, Format, LineContext};
        let ctx = LineContext {
            ingest: 1_795_000_000_123_000,
            ..Default::default()
        };
        for (kind, format) in [
            (Kind::Rfc5424, "rfc5424"),
            (Kind::Rfc3164, "rfc3164"),
            (Kind::Access, "access"),
            (Kind::Json, "json"),
        ] {
            let mut out = Vec::new();
            line(&mut out, kind, 42, 1_795_000_000_123);
            let f: Format = format.parse().unwrap();
            let text = &out[..out.len() - 1];
            assert!(
                formats::parse(f, text, &ctx).is_ok() && formats::parse(Format::Auto, text, &ctx).is_ok(),
                "{kind:?} line does not parse as {format}: {}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
