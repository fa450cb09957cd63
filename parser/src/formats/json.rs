//! JSON lines: one JSON object per line.
//!
//! * The object becomes [`Event::fields`] (merged under the ECS fields when
//!   the document is written; ECS wins on a clash).
//! * `message`: a top-level `"message"` string, else a `"msg"` string.
//! * `@timestamp`: the first of `"@timestamp"`, `"timestamp"`, `"time"`, `"ts"`
//!   that is an RFC 3339 string, or a number of seconds (or of milliseconds,
//!   if above 10^11, i.e. after 1973 in ms) since the epoch; else the ingest
//!   time.
//! * Anything that is not a JSON object (arrays, scalars, invalid JSON,
//!   trailing garbage) is an error. serde_json's nesting limit (128) bounds
//!   recursion.

use std::borrow::Cow;

use logpipe_schemas::event::Event;
use logpipe_schemas::time::Micros;
use serde_json::{Map, Value};

use super::time::rfc3339_exact;
use super::{base, trim_eol, LineContext, ParseError};

pub const DATASET: &str = "json";
const FORMAT: &str = "json";

/// Keys searched for the event time, in order.
pub const TIME_KEYS: [&str; 4] = ["@timestamp", "timestamp", "time", "ts"];

pub fn parse<'a>(line: &'a [u8], ctx: &LineContext<'a>) -> Result<Event<'a>, ParseError> {
    let body = trim_eol(line);
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError {
        format: FORMAT,
        reason: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(map) = value else {
        return Err(ParseError {
            format: FORMAT,
            reason: format!("expected a JSON object, got {}", kind(&value)),
        });
    };
    let mut ev = base(line, ctx, DATASET);
    ev.message = message_of(&map);
    if let Some(ts) = time_of(&map) {
        ev.timestamp = ts;
    }
    ev.fields = Some(map);
    Ok(ev)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn message_of(map: &Map<String, Value>) -> Option<Cow<'static, str>> {
    ["message", "msg"].iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) => Some(Cow::Owned(s.clone())),
        _ => None,
    })
}

fn time_of(map: &Map<String, Value>) -> Option<Micros> {
    TIME_KEYS.iter().find_map(|k| match map.get(*k)? {
        Value::String(s) => rfc3339_exact(s),
        Value::Number(n) => epoch_number(n),
        _ => None,
    })
}

/// Seconds since the epoch, or milliseconds when the value is above 10^11.
/// Values that do not fit a sane range (years 0..=9999) are ignored.
fn epoch_number(n: &serde_json::Number) -> Option<Micros> {
    const MAX_MICROS: f64 = 253_402_300_800_000_000.0; // 10000-01-01
    let f = n.as_f64()?;
    let micros = if f.abs() > 1e11 { f * 1e3 } else { f * 1e6 };
    (0.0..MAX_MICROS).contains(&micros).then_some(micros as Micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{ctx, json_of, INGEST};
    use logpipe_schemas::time::rfc3339 as fmt;

    #[test]
    fn object_with_message_and_time() {
        let line = br#"{"@timestamp":"2024-05-01T10:00:00.5+02:00","level":"info","message":"hello","user":{"id":7}}"#;
        let e = parse(line, &ctx()).unwrap();
        assert_eq!(fmt(e.timestamp), "2024-05-01T08:00:00.500000Z");
        assert_eq!(e.message.as_deref(), Some("hello"));
        assert_eq!(e.dataset, "json");
        let v = json_of(&e);
        assert_eq!(v["level"], "info");
        assert_eq!(v["user"]["id"], 7);
        assert_eq!(v["@timestamp"], "2024-05-01T08:00:00.500000Z");
        assert_eq!(v["event"]["original"], std::str::from_utf8(line).unwrap());
        assert_eq!(v["log"]["offset"], 7);
    }

    #[test]
    fn msg_and_time_fallbacks() {
        let e = parse(br#"{"msg":"m","ts":1700000000}"#, &ctx()).unwrap();
        assert_eq!(e.message.as_deref(), Some("m"));
        assert_eq!(fmt(e.timestamp), "2023-11-14T22:13:20.000000Z");
        let e = parse(br#"{"time":1700000000123}"#, &ctx()).unwrap();
        assert_eq!(fmt(e.timestamp), "2023-11-14T22:13:20.123000Z");
        let e = parse(br#"{"timestamp":"yesterday","message":5,"msg":"x"}"#, &ctx()).unwrap();
        assert_eq!(e.timestamp, INGEST);
        assert_eq!(e.message.as_deref(), Some("x"));
        let e = parse(br#"{"ts":-5,"time":1e300}"#, &ctx()).unwrap();
        assert_eq!(e.timestamp, INGEST);
        let e = parse(b"{}\r\n", &ctx()).unwrap();
        assert_eq!((e.timestamp, e.message), (INGEST, None));
    }

    #[test]
    fn ecs_wins_on_clash() {
        let e = parse(
            br#"{"host":"h","event":{"original":"spoof","kind":"k"}}"#,
            &LineContext {
                host: Some("s"),
                ..ctx()
            },
        )
        .unwrap();
        let v = json_of(&e);
        assert_eq!(v["host"]["name"], "s");
        assert_eq!(v["event"]["kind"], "k");
        assert_ne!(v["event"]["original"], "spoof");
    }

    #[test]
    fn rejects_non_objects() {
        for (line, why) in [
            (&b"[1,2]"[..], "an array"),
            (b"\"s\"", "a string"),
            (b"3", "a number"),
            (b"null", "null"),
            (b"{\"a\":1} x", "invalid JSON"),
            (b"{\"a\":", "invalid JSON"),
            (b"", "invalid JSON"),
            (b"{\"a\":\"\xFF\"}", "invalid JSON"),
        ] {
            let e = parse(line, &ctx()).unwrap_err();
            assert_eq!(e.format, "json");
            assert!(
                e.reason.contains(why),
                "{}: {}",
                String::from_utf8_lossy(line),
                e.reason
            );
        }
        let deep = "[".repeat(10_000);
        let e = parse(format!("{{\"a\":{deep}}}").as_bytes(), &ctx()).unwrap_err();
        assert!(e.reason.contains("recursion"), "{}", e.reason);
    }
}
