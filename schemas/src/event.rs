//! The parsed topic: one ECS 8.x JSON document per line.
//!
//! * value: the document written by [`Event::write_json`];
//! * key: the document id ([`crate::id`]), which the indexer uses as `_id`;
//! * headers: [`HEADER_EVENT_MS`] (the event time, so the indexer can pick the
//!   daily index without parsing the JSON) plus the raw record's source headers.
//!
//! Documents use nested objects (`{"log":{"syslog":{...}}}`), never dotted
//! keys, so they look the same in `_source` as in Kibana. The field list per
//! format is in `schemas/README.md`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::time::{write_rfc3339, Micros};

/// Header on parsed records: the event's `@timestamp` in milliseconds.
pub const HEADER_EVENT_MS: &str = "logpipe.event_ms";

/// One parsed line, borrowing from the raw record where it can.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// `@timestamp`: the time in the line, or the ingest time if it has none.
    pub timestamp: Micros,
    /// `message`: the human-readable part.
    pub message: Option<Cow<'a, str>>,
    /// `event.original`: the whole line (lossily decoded if it is not UTF-8).
    pub original: &'a [u8],
    /// `event.ingested`: when logpipe first read the line.
    pub ingested: Micros,
    /// `event.dataset`: which parser produced it, e.g. `syslog.rfc5424`.
    pub dataset: &'static str,
    /// `host.name`: the host the line came from.
    pub host_name: Option<Cow<'a, str>>,
    /// `log.file.path`
    pub log_file_path: Option<Cow<'a, str>>,
    /// `log.offset`: byte offset of the line in its file.
    pub log_offset: Option<u64>,
    pub syslog: Option<Syslog<'a>>,
    pub access: Option<Access<'a>>,
    /// Fields of a JSON or logfmt line, merged at the top level of the
    /// document; the ECS fields above win on a clash.
    pub fields: Option<Map<String, Value>>,
}

/// `log.syslog.*`, plus `process.name` / `process.pid` from APP-NAME and PROCID.
#[derive(Debug, Clone, Default)]
pub struct Syslog<'a> {
    /// PRI: `facility * 8 + severity`.
    pub priority: Option<u8>,
    pub version: Option<u8>,
    pub hostname: Option<Cow<'a, str>>,
    pub appname: Option<Cow<'a, str>>,
    pub procid: Option<Cow<'a, str>>,
    pub msgid: Option<Cow<'a, str>>,
    /// `log.syslog.structured_data`: SD-ID to an object of its params.
    pub structured_data: Vec<SdElement<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SdElement<'a> {
    pub id: Cow<'a, str>,
    /// Param values are unescaped (`\"`, `\\`, `\]`), hence `Cow`.
    pub params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// Web server access-log fields (combined and common formats).
#[derive(Debug, Clone, Default)]
pub struct Access<'a> {
    pub source_ip: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
    pub http_version: Option<Cow<'a, str>>,
    pub status_code: Option<u16>,
    pub body_bytes: Option<u64>,
    pub referrer: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
}

impl Event<'_> {
    /// Appends the document as one line of JSON (no trailing newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.fields {
            None => self.write_ecs(out),
            Some(fields) => {
                // Rare path (JSON and logfmt lines): merge through `Value` so
                // nested objects from the line and from ECS combine properly.
                let mut ecs = Vec::with_capacity(256);
                self.write_ecs(&mut ecs);
                let ours: Value = serde_json::from_slice(&ecs).expect("we wrote valid JSON");
                let mut merged = Value::Object(fields.clone());
                merge(&mut merged, ours);
                serde_json::to_writer(out, &merged).expect("writing to a Vec cannot fail");
            }
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.original.len() * 2);
        self.write_json(&mut out);
        out
    }

    fn write_ecs(&self, out: &mut Vec<u8>) {
        let mut w = ObjWriter::open(out);
        w.key(b"@timestamp");
        push_ts(w.out, self.timestamp);
        if let Some(m) = &self.message {
            w.str_field(b"message", m);
        }

        w.begin(b"event");
        w.lossy_field(b"original", self.original);
        w.key(b"ingested");
        push_ts(w.out, self.ingested);
        if !self.dataset.is_empty() {
            w.str_field(b"dataset", self.dataset);
        }
        w.end();

        if let Some(h) = &self.host_name {
            w.begin(b"host");
            w.str_field(b"name", h);
            w.end();
        }

        let has_file = self.log_file_path.is_some();
        if has_file || self.log_offset.is_some() || self.syslog.is_some() {
            w.begin(b"log");
            if let Some(p) = &self.log_file_path {
                w.begin(b"file");
                w.str_field(b"path", p);
                w.end();
            }
            if let Some(o) = self.log_offset {
                w.num_field(b"offset", o);
            }
            if let Some(s) = &self.syslog {
                write_syslog(&mut w, s);
            }
            w.end();
        }
        if let Some(s) = &self.syslog {
            if s.appname.is_some() || s.procid.is_some() {
                w.begin(b"process");
                if let Some(a) = &s.appname {
                    w.str_field(b"name", a);
                }
                if let Some(pid) = s.procid.as_deref().and_then(|p| p.parse::<u64>().ok()) {
                    w.num_field(b"pid", pid);
                }
                w.end();
            }
        }
        if let Some(a) = &self.access {
            write_access(&mut w, a);
        }
        w.close();
    }
}

fn write_syslog(w: &mut ObjWriter<'_>, s: &Syslog<'_>) {
    w.begin(b"syslog");
    if let Some(pri) = s.priority {
        w.num_field(b"priority", pri as u64);
        w.begin(b"facility");
        w.num_field(b"code", (pri >> 3) as u64);
        w.end();
        w.begin(b"severity");
        w.num_field(b"code", (pri & 7) as u64);
        w.end();
    }
    if let Some(v) = s.version {
        w.num_field(b"version", v as u64);
    }
    for (name, value) in [
        (&b"hostname"[..], &s.hostname),
        (b"appname", &s.appname),
        (b"procid", &s.procid),
        (b"msgid", &s.msgid),
    ] {
        if let Some(v) = value {
            w.str_field(name, v);
        }
    }
    if !s.structured_data.is_empty() {
        w.begin(b"structured_data");
        for el in &s.structured_data {
            w.key(el.id.as_bytes());
            let mut inner = ObjWriter::open(w.out);
            for (k, v) in &el.params {
                inner.str_field(k.as_bytes(), v);
            }
            inner.close();
        }
        w.end();
    }
    w.end();
}

fn write_access(w: &mut ObjWriter<'_>, a: &Access<'_>) {
    if let Some(ip) = &a.source_ip {
        w.begin(b"source");
        w.str_field(b"ip", ip);
        w.end();
    }
    if let Some(u) = &a.user_name {
        w.begin(b"user");
        w.str_field(b"name", u);
        w.end();
    }
    w.begin(b"http");
    if a.method.is_some() || a.referrer.is_some() {
        w.begin(b"request");
        if let Some(m) = &a.method {
            w.str_field(b"method", m);
        }
        if let Some(r) = &a.referrer {
            w.str_field(b"referrer", r);
        }
        w.end();
    }
    if let Some(v) = &a.http_version {
        w.str_field(b"version", v);
    }
    if a.status_code.is_some() || a.body_bytes.is_some() {
        w.begin(b"response");
        if let Some(s) = a.status_code {
            w.num_field(b"status_code", s as u64);
        }
        if let Some(b) = a.body_bytes {
            w.begin(b"body");
            w.num_field(b"bytes", b);
            w.end();
        }
        w.end();
    }
    w.end();
    if let Some(u) = &a.url {
        w.begin(b"url");
        w.str_field(b"original", u);
        w.end();
    }
    if let Some(ua) = &a.user_agent {
        w.begin(b"user_agent");
        w.str_field(b"original", ua);
        w.end();
    }
}

/// Deep-merges `ours` into `theirs`: objects combine, any other clash is won by `ours`.
fn merge(theirs: &mut Value, ours: Value) {
    match (theirs, ours) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, v) in o {
                match t.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, o) => *t = o,
    }
}

fn push_ts(out: &mut Vec<u8>, ts: Micros) {
    out.push(b'"');
    write_rfc3339(out, ts);
    out.push(b'"');
}

/// A minimal streaming JSON object writer: it only tracks whether a comma is
/// due. Nesting is expressed with `begin`/`end` pairs on a stack of flags.
struct ObjWriter<'o> {
    out: &'o mut Vec<u8>,
    first: Vec<bool>,
}

impl<'o> ObjWriter<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjWriter { out, first: vec![true] }
    }

    fn key(&mut self, k: &[u8]) {
        let first = self.first.last_mut().expect("open object");
        if !*first {
            self.out.push(b',');
        }
        *first = false;
        push_json_str(self.out, k);
        self.out.push(b':');
    }

    fn begin(&mut self, k: &[u8]) {
        self.key(k);
        self.out.push(b'{');
        self.first.push(true);
    }

    fn end(&mut self) {
        self.first.pop();
        self.out.push(b'}');
    }

    fn close(mut self) {
        self.end();
    }

    fn str_field(&mut self, k: &[u8], v: &str) {
        self.key(k);
        push_json_str(self.out, v.as_bytes());
    }

    fn lossy_field(&mut self, k: &[u8], v: &[u8]) {
        self.key(k);
        match std::str::from_utf8(v) {
            Ok(s) => push_json_str(self.out, s.as_bytes()),
            Err(_) => push_json_str(self.out, String::from_utf8_lossy(v).as_bytes()),
        }
    }

    fn num_field(&mut self, k: &[u8], v: u64) {
        self.key(k);
        let mut buf = itoa_buf(v);
        self.out.extend_from_slice(buf.as_bytes_mut());
    }
}

/// Writes a JSON string. `s` must be valid UTF-8; only `"`, `\` and control
/// characters need escaping, and the common case (none present) is one copy.
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

struct DecBuf {
    buf: [u8; 20],
    start: usize,
}

impl DecBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut v: u64) -> DecBuf {
    let mut buf = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    DecBuf { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(e: &Event) -> Value {
        serde_json::from_slice(&e.to_json()).expect("valid JSON")
    }

    #[test]
    fn writes_nested_ecs() {
        let e = Event {
            timestamp: 1_000_000,
            message: Some("hi \"there\"\n".into()),
            original: b"<34>1 raw",
            ingested: 2_000_000,
            dataset: "syslog.rfc5424",
            host_name: Some("web-1".into()),
            log_file_path: Some("/var/log/x".into()),
            log_offset: Some(42),
            syslog: Some(Syslog {
                priority: Some(34),
                version: Some(1),
                appname: Some("su".into()),
                procid: Some("77".into()),
                structured_data: vec![SdElement {
                    id: "exampleSDID@32473".into(),
                    params: vec![("iut".into(), "3".into())],
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = parse(&e);
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:01.000000Z");
        assert_eq!(v["message"], "hi \"there\"\n");
        assert_eq!(v["event"]["original"], "<34>1 raw");
        assert_eq!(v["host"]["name"], "web-1");
        assert_eq!(v["log"]["offset"], 42);
        assert_eq!(v["log"]["file"]["path"], "/var/log/x");
        assert_eq!(v["log"]["syslog"]["facility"]["code"], 4);
        assert_eq!(v["log"]["syslog"]["severity"]["code"], 2);
        assert_eq!(v["log"]["syslog"]["structured_data"]["exampleSDID@32473"]["iut"], "3");
        assert_eq!(v["process"]["pid"], 77);
    }

    #[test]
    fn access_fields() {
        let e = Event {
            access: Some(Access {
                source_ip: Some("::1".into()),
                method: Some("GET".into()),
                url: Some("/a?b".into()),
                status_code: Some(200),
                body_bytes: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = parse(&e);
        assert_eq!(v["source"]["ip"], "::1");
        assert_eq!(v["http"]["request"]["method"], "GET");
        assert_eq!(v["http"]["response"]["status_code"], 200);
        assert_eq!(v["http"]["response"]["body"]["bytes"], 0);
        assert_eq!(v["url"]["original"], "/a?b");
    }

    #[test]
    fn invalid_utf8_and_controls_stay_valid_json() {
        let e = Event {
            original: b"a\xff\x01b",
            ..Default::default()
        };
        let v = parse(&e);
        assert_eq!(v["event"]["original"], "a\u{fffd}\u{1}b");
    }

    #[test]
    fn merges_line_fields_under_ecs() {
        let mut fields = Map::new();
        fields.insert("level".into(), "info".into());
        fields.insert(
            "event".into(),
            serde_json::json!({"action": "login", "original": "spoof"}),
        );
        let e = Event {
            original: b"{}",
            fields: Some(fields),
            ..Default::default()
        };
        let v = parse(&e);
        assert_eq!(v["level"], "info");
        assert_eq!(v["event"]["action"], "login");
        assert_eq!(v["event"]["original"], "{}");
    }
}
