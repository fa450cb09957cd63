//! The parsed topic: one ECS 8.x JSON document per line.
//!
//! * value: the document written by [`Event::write_json`];
//! * key: the document id ([`crate::id`]), which the indexer uses as `_id`;
//! * no headers. The document's first member is always `@timestamp`, so the
//!   indexer reads the event time (which picks the daily index) from the
//!   first bytes without parsing the JSON ([`leading_timestamp_ms`]).
//!   Older parsers sent it in a [`HEADER_EVENT_MS`] header,
//!   which the indexer still reads when a document does not start so.
//!
//! Documents use nested objects (`{"log":{"syslog":{...}}}`), never dotted
//! keys, so they look the same in `_source` as in Kibana. The field list per
//! format is in `schemas/README.md`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::scan::{find_escape, find_escape_or_non_ascii, short_needs_escape};
use crate::time::{write_rfc3339, Micros, DIGITS2};

/// Header on parsed records of older parsers: the event's `@timestamp` in
/// milliseconds. Read by [`event_time_ms`], no longer written.
pub const HEADER_EVENT_MS: &str = "logpipe.event_ms";

/// The start every document has: its `@timestamp` member comes first.
const LEADING_TIMESTAMP: &[u8] = b"{\"@timestamp\":\"";

/// The event time of a document that starts with its `@timestamp`, as
/// [`Event::write_json`] writes it (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`), in
/// milliseconds since the epoch. `None` for anything else.
pub fn leading_timestamp_ms(doc: &[u8]) -> Option<i64> {
    let t = doc.strip_prefix(LEADING_TIMESTAMP)?;
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let digits = t.get(r)?;
        digits
            .iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if shape.iter().any(|&(i, c)| t.get(i) != Some(&c)) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, d) in frac[..n.min(6)].iter().enumerate() {
            micros += u32::from(d - b'0') * 10u32.pow(5 - i as u32);
        }
        rest = &frac[n..];
    }
    if !rest.starts_with(b"Z\"") {
        return None;
    }
    let ts = crate::time::micros_from_parts(i64::from(year), month, day, hour, minute, second, micros, 0);
    Some(ts.div_euclid(1000))
}

/// The event time of a parsed record, in milliseconds: from the start of the
/// document, or else from the [`HEADER_EVENT_MS`] header value of an older
/// parser's record (looked up only then). `None` when neither has it.
pub fn event_time_ms<'h>(doc: &[u8], header: impl FnOnce() -> Option<&'h [u8]>) -> Option<i64> {
    leading_timestamp_ms(doc).or_else(|| std::str::from_utf8(header()?).ok()?.parse().ok())
}

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
            Some(fields) => self.write_merged(fields, out),
        }
    }

    /// The line's fields (JSON and logfmt lines) with the ECS fields merged
    /// over them: nested objects from the line and from ECS combine, and the
    /// ECS fields win on a clash. Keys come out sorted at every level (the
    /// order of serde_json's map, which the line's fields are in), after
    /// `@timestamp`, which is first in every document (see the module docs).
    ///
    /// The ECS part of a JSON or logfmt line is a handful of known members,
    /// so it is merged while writing: the two sorted key lists are walked
    /// side by side. Building it as a `Value` and merging trees (as before)
    /// allocated every key and string and was most of a JSON line's cost.
    fn write_merged(&self, fields: &Map<String, Value>, out: &mut Vec<u8>) {
        if self.syslog.is_some() || self.access.is_some() {
            // No parser makes these with line fields; kept general through
            // a `Value` round trip.
            return self.write_merged_via_value(fields, out);
        }
        out.extend_from_slice(b"{\"@timestamp\":");
        push_ts(out, self.timestamp);
        let dataset = (!self.dataset.is_empty()).then_some(Ecs::Str(self.dataset));
        let event = [
            ("dataset", dataset),
            ("ingested", Some(Ecs::Ts(self.ingested))),
            ("original", Some(Ecs::Lossy(self.original))),
        ];
        let host = self.host_name.as_deref().map(|h| [("name", Some(Ecs::Str(h)))]);
        let file = self.log_file_path.as_deref().map(|p| [("path", Some(Ecs::Str(p)))]);
        let log = [
            ("file", file.as_ref().map(|f| Ecs::Obj(f))),
            ("offset", self.log_offset.map(Ecs::Num)),
        ];
        let has_log = file.is_some() || self.log_offset.is_some();
        // Sorted by key, as the merge walk needs.
        let top = [
            ("event", Some(Ecs::Obj(&event))),
            ("host", host.as_ref().map(|h| Ecs::Obj(h))),
            ("log", has_log.then_some(Ecs::Obj(&log))),
            ("message", self.message.as_deref().map(Ecs::Str)),
        ];
        let mut theirs = fields.iter().filter(|(k, _)| *k != "@timestamp").peekable();
        write_merged_members(out, true, &mut theirs, &top);
        out.push(b'}');
    }

    /// The general merge: the ECS part written as text, parsed back and
    /// merged over the line's fields as `Value`s. Slower, and simple enough
    /// to be the tests' oracle for the walk of [`write_merged`](Self::write_merged).
    fn write_merged_via_value(&self, fields: &Map<String, Value>, out: &mut Vec<u8>) {
        let mut ecs = Vec::with_capacity(256);
        self.write_ecs(&mut ecs);
        let ours: Value = serde_json::from_slice(&ecs).expect("we wrote valid JSON");
        let mut merged = Value::Object(fields.clone());
        merge(&mut merged, ours);
        if let Value::Object(map) = &mut merged {
            map.remove("@timestamp");
        }
        out.extend_from_slice(b"{\"@timestamp\":");
        push_ts(out, self.timestamp);
        let rest = serde_json::to_vec(&merged).expect("writing to a Vec cannot fail");
        if rest.len() > 2 {
            out.push(b',');
        }
        out.extend_from_slice(&rest[1..]);
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.original.len() * 2);
        self.write_json(&mut out);
        out
    }

    fn write_ecs(&self, out: &mut Vec<u8>) {
        let mut w = ObjWriter::open(out);
        w.key(k!("@timestamp"));
        push_ts(w.out, self.timestamp);
        if let Some(m) = &self.message {
            w.str_field(ks!("message"), m);
        }

        w.begin(k!("event"));
        w.lossy_field(ks!("original"), self.original);
        w.key(k!("ingested"));
        push_ts(w.out, self.ingested);
        if !self.dataset.is_empty() {
            w.str_field(ks!("dataset"), self.dataset);
        }
        w.end();

        if let Some(h) = &self.host_name {
            w.begin(k!("host"));
            w.str_field(ks!("name"), h);
            w.end();
        }

        let has_file = self.log_file_path.is_some();
        if has_file || self.log_offset.is_some() || self.syslog.is_some() {
            w.begin(k!("log"));
            if let Some(p) = &self.log_file_path {
                w.begin(k!("file"));
                w.str_field(ks!("path"), p);
                w.end();
            }
            if let Some(o) = self.log_offset {
                w.num_field(k!("offset"), o);
            }
            if let Some(s) = &self.syslog {
                write_syslog(&mut w, s);
            }
            w.end();
        }
        if let Some(s) = &self.syslog {
            if s.appname.is_some() || s.procid.is_some() {
                w.begin(k!("process"));
                if let Some(a) = &s.appname {
                    w.str_field(ks!("name"), a);
                }
                if let Some(pid) = s.procid.as_deref().and_then(|p| p.parse::<u64>().ok()) {
                    w.num_field(k!("pid"), pid);
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
    w.begin(k!("syslog"));
    if let Some(pri) = s.priority {
        w.num_field(k!("priority"), pri as u64);
        w.begin(k!("facility"));
        w.num_field(k!("code"), (pri >> 3) as u64);
        w.end();
        w.begin(k!("severity"));
        w.num_field(k!("code"), (pri & 7) as u64);
        w.end();
    }
    if let Some(v) = s.version {
        w.num_field(k!("version"), v as u64);
    }
    for (name, value) in [
        (ks!("hostname"), &s.hostname),
        (ks!("appname"), &s.appname),
        (ks!("procid"), &s.procid),
        (ks!("msgid"), &s.msgid),
    ] {
        if let Some(v) = value {
            w.str_field(name, v);
        }
    }
    if !s.structured_data.is_empty() {
        w.begin(k!("structured_data"));
        for el in &s.structured_data {
            w.dyn_key(el.id.as_bytes());
            w.push_level();
            for (name, v) in &el.params {
                w.dyn_key(name.as_bytes());
                push_json_str(w.out, v.as_bytes());
            }
            w.end();
        }
        w.end();
    }
    w.end();
}

fn write_access(w: &mut ObjWriter<'_>, a: &Access<'_>) {
    if let Some(ip) = &a.source_ip {
        w.begin(k!("source"));
        w.str_field(ks!("ip"), ip);
        w.end();
    }
    if let Some(u) = &a.user_name {
        w.begin(k!("user"));
        w.str_field(ks!("name"), u);
        w.end();
    }
    w.begin(k!("http"));
    if a.method.is_some() || a.referrer.is_some() {
        w.begin(k!("request"));
        if let Some(m) = &a.method {
            w.str_field(ks!("method"), m);
        }
        if let Some(r) = &a.referrer {
            w.str_field(ks!("referrer"), r);
        }
        w.end();
    }
    if let Some(v) = &a.http_version {
        w.str_field(ks!("version"), v);
    }
    if a.status_code.is_some() || a.body_bytes.is_some() {
        w.begin(k!("response"));
        if let Some(s) = a.status_code {
            w.num_field(k!("status_code"), s as u64);
        }
        if let Some(b) = a.body_bytes {
            w.begin(k!("body"));
            w.num_field(k!("bytes"), b);
            w.end();
        }
        w.end();
    }
    w.end();
    if let Some(u) = &a.url {
        w.begin(k!("url"));
        w.str_field(ks!("original"), u);
        w.end();
    }
    if let Some(ua) = &a.user_agent {
        w.begin(k!("user_agent"));
        w.str_field(ks!("original"), ua);
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

/// A value of the ECS part of a merged document (see [`Event::write_merged`]).
enum Ecs<'e> {
    Str(&'e str),
    /// Bytes that may not be UTF-8, written lossily decoded.
    Lossy(&'e [u8]),
    Ts(Micros),
    Num(u64),
    /// Members sorted by key; `None` members are absent.
    Obj(&'e [(&'static str, Option<Ecs<'e>>)]),
}

/// Writes the members of one object level: the line's members (`theirs`,
/// sorted, as serde_json's map iterates) and ours (sorted), merged by key.
/// On a clash ours is written, unless both are objects: then their members
/// are merged one level down. `comma`: the object already has a member.
fn write_merged_members<'t>(
    out: &mut Vec<u8>,
    mut comma: bool,
    theirs: &mut std::iter::Peekable<impl Iterator<Item = (&'t String, &'t Value)>>,
    ours: &[(&'static str, Option<Ecs<'_>>)],
) {
    let mut ours = ours.iter().filter_map(|(k, v)| Some((*k, v.as_ref()?))).peekable();
    loop {
        let order = match (theirs.peek(), ours.peek()) {
            (None, None) => return,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((t, _)), Some((o, _))) => t.as_str().cmp(o),
        };
        if std::mem::replace(&mut comma, true) {
            out.push(b',');
        }
        match order {
            std::cmp::Ordering::Less => {
                let (k, v) = theirs.next().expect("peeked");
                push_json_str(out, k.as_bytes());
                out.push(b':');
                write_value(out, v);
            }
            std::cmp::Ordering::Greater => {
                let (k, v) = ours.next().expect("peeked");
                write_ecs_member(out, k, v, None);
            }
            std::cmp::Ordering::Equal => {
                let (_, t) = theirs.next().expect("peeked");
                let (k, v) = ours.next().expect("peeked");
                write_ecs_member(out, k, v, t.as_object());
            }
        }
    }
}

/// One member of ours, merged with the line's object of the same key if any.
/// Our keys are ECS names, which need no escaping.
fn write_ecs_member(out: &mut Vec<u8>, key: &'static str, v: &Ecs<'_>, theirs: Option<&Map<String, Value>>) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    match v {
        Ecs::Str(s) => push_json_str(out, s.as_bytes()),
        Ecs::Lossy(b) => {
            out.push(b'"');
            push_lossy_rest(out, b);
        }
        Ecs::Ts(ts) => push_ts(out, *ts),
        Ecs::Num(n) => push_u64(out, *n),
        Ecs::Obj(members) => {
            out.push(b'{');
            let mut theirs = theirs.into_iter().flatten().peekable();
            write_merged_members(out, false, &mut theirs, members);
            out.push(b'}');
        }
    }
}

/// A `Value` as serde_json writes it compactly (byte for byte: strings
/// escape the same way, numbers go through serde_json), with the faster
/// string writer.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => serde_json::to_writer(&mut *out, n).expect("writing to a Vec cannot fail"),
        Value::String(s) => push_json_str(out, s.as_bytes()),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(out, k.as_bytes());
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

fn push_ts(out: &mut Vec<u8>, ts: Micros) {
    out.push(b'"');
    write_rfc3339(out, ts);
    out.push(b'"');
}

/// `"name":` for a literal key: keys of our own need no escaping, so they are
/// written as one constant slice.
macro_rules! k {
    ($k:literal) => {
        concat!("\"", $k, "\":").as_bytes()
    };
}
use k;

/// `"name":"`: a literal key and the opening quote of its string value.
macro_rules! ks {
    ($k:literal) => {
        concat!("\"", $k, "\":\"").as_bytes()
    };
}
use ks;

/// A minimal streaming JSON object writer. It only tracks, per open object,
/// whether a comma is due: one bit per nesting level, so writing a document
/// allocates nothing.
struct ObjWriter<'o> {
    out: &'o mut Vec<u8>,
    /// Bit `d` set: the object at depth `d` already has a member.
    has_member: u64,
    depth: u32,
}

impl<'o> ObjWriter<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjWriter {
            out,
            has_member: 0,
            depth: 0,
        }
    }

    #[inline]
    fn comma(&mut self) {
        let bit = 1u64 << self.depth;
        if self.has_member & bit != 0 {
            self.out.push(b',');
        }
        self.has_member |= bit;
    }

    /// A key written by [`k!`] (quoted, with its colon).
    #[inline]
    fn key(&mut self, quoted: &[u8]) {
        self.comma();
        self.out.extend_from_slice(quoted);
    }

    /// A key that comes from the input and may need escaping.
    fn dyn_key(&mut self, k: &[u8]) {
        self.comma();
        push_json_str(self.out, k);
        self.out.push(b':');
    }

    #[inline]
    fn begin(&mut self, quoted: &[u8]) {
        self.key(quoted);
        self.push_level();
    }

    #[inline]
    fn push_level(&mut self) {
        self.out.push(b'{');
        self.depth += 1;
        // Documents nest a handful of levels; 64 is far beyond any of them.
        debug_assert!(self.depth < 64);
        self.has_member &= !(1u64 << self.depth);
    }

    #[inline]
    fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.out.push(b'}');
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// A string member; `key_quote` is written by [`ks!`] (the key, its
    /// colon and the string's opening quote).
    #[inline]
    fn str_field(&mut self, key_quote: &[u8], v: &str) {
        self.key(key_quote);
        push_json_str_rest(self.out, v.as_bytes());
    }

    /// Bytes that may not be UTF-8 (`event.original`). The escape scan also
    /// stops at non-ASCII bytes, so an ASCII line (nearly all of them) is
    /// validated by the same pass that copies it; from the first non-ASCII
    /// byte on, the rest is validated once and, if it is not UTF-8, the
    /// whole value is written again lossily decoded.
    fn lossy_field(&mut self, key_quote: &[u8], v: &[u8]) {
        self.key(key_quote);
        push_lossy_rest(self.out, v);
    }

    #[inline]
    fn num_field(&mut self, quoted: &[u8], v: u64) {
        self.key(quoted);
        push_u64(self.out, v);
    }
}

/// Writes a JSON string. `s` must be valid UTF-8; only `"`, `\` and control
/// characters need escaping, and runs of other bytes are copied in bulk.
///
/// Most strings of a document are short names (host, app, dataset, method)
/// with nothing to escape: those take a path of one or two word tests and
/// fixed-size copies, without the register saves and constant setup of the
/// general loop (profiled at 144 instructions for a 9-byte string before).
#[inline]
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    push_json_str_rest(out, s);
}

/// [`push_json_str`] after its opening quote (which the ECS writer writes
/// with the key: one copy of `"name":"`).
#[inline]
fn push_json_str_rest(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 16 && !short_needs_escape(s) {
        out.reserve(s.len() + 1);
        append(out, s);
        out.push(b'"');
        return;
    }
    push_json_str_rest_any(out, s);
}

/// A JSON string after its opening quote, from bytes that may not be UTF-8
/// (lossily decoded then). See [`ObjWriter::lossy_field`].
fn push_lossy_rest(out: &mut Vec<u8>, v: &[u8]) {
    let start = out.len();
    let Some(at) = push_json_ascii_rest(out, v) else {
        return;
    };
    if std::str::from_utf8(&v[at..]).is_ok() {
        push_json_str_rest(out, &v[at..]);
    } else {
        out.truncate(start);
        push_json_str_rest(out, String::from_utf8_lossy(v).as_bytes());
    }
}

/// [`push_json_str_rest`] for bytes up to their first non-ASCII byte: with no
/// such byte, the whole string and its closing quote are written and the
/// result is `None`; otherwise everything before it is written (escaped)
/// and its index returned.
fn push_json_ascii_rest(out: &mut Vec<u8>, s: &[u8]) -> Option<usize> {
    out.reserve(s.len() + 1);
    let mut at = 0;
    while let Some(i) = find_escape_or_non_ascii(&s[at..]) {
        let i = at + i;
        append(out, &s[at..i]);
        let b = s[i];
        if b >= 0x80 {
            return Some(i);
        }
        push_escape(out, b);
        at = i + 1;
    }
    append(out, &s[at..]);
    out.push(b'"');
    None
}

/// The JSON escape of a byte [`find_escape`] stopped at: serde_json's, so
/// a document is the same bytes whichever writer wrote a string of it.
#[inline]
fn push_escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
    }
}

/// [`push_json_str_rest`] for any string.
#[inline(never)]
fn push_json_str_rest_any(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 1);
    let mut rest = s;
    while let Some(i) = find_escape(rest) {
        append(out, &rest[..i]);
        push_escape(out, rest[i]);
        rest = &rest[i + 1..];
    }
    append(out, rest);
    out.push(b'"');
}

/// `out.extend_from_slice(s)`, without a `memcpy` call for the short runs
/// that most fields are: a run of 4 to 31 bytes is written as two
/// fixed-size copies (compiled to single moves), the second one overlapping
/// the first after stepping `out` back by the overlap.
#[inline(always)]
fn append(out: &mut Vec<u8>, s: &[u8]) {
    #[inline(always)]
    fn two<const N: usize>(out: &mut Vec<u8>, s: &[u8]) {
        let n = s.len();
        let head: &[u8; N] = s[..N].try_into().expect("N bytes");
        let tail: &[u8; N] = s[n - N..].try_into().expect("N bytes");
        out.extend_from_slice(head);
        out.truncate(out.len() - (2 * N - n));
        out.extend_from_slice(tail);
    }
    match s.len() {
        0 => {}
        1 => out.push(s[0]),
        n @ 2..4 => {
            out.push(s[0]);
            out.push(s[1]);
            if n == 3 {
                out.push(s[2]);
            }
        }
        4..8 => two::<4>(out, s),
        8..16 => two::<8>(out, s),
        16..32 => two::<16>(out, s),
        _ => out.extend_from_slice(s),
    }
}

/// Decimal digits of `v`. Up to eight digits are gathered in a register and
/// stored with one 8-byte write (then the length fixed): building them in a
/// stack buffer and copying that out made the copy wait on the small stores
/// (store forwarding fails when a load spans several of them).
#[inline]
fn push_u64(out: &mut Vec<u8>, v: u64) {
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    if v < 100_000_000 {
        // Least significant digit first, each shifted up by the next: the
        // most significant digit ends in the lowest byte.
        let (mut w, mut n, mut x) = (0u64, 0usize, v);
        while x > 0 {
            w = (w << 8) | (b'0' + (x % 10) as u8) as u64;
            x /= 10;
            n += 1;
        }
        out.extend_from_slice(&w.to_le_bytes());
        out.truncate(out.len() - (8 - n));
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = 20;
    let mut v = v;
    while v >= 100 {
        let d = (v % 100) as usize;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[2 * d..2 * d + 2]);
    }
    if v >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[2 * v as usize..2 * v as usize + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::find_non_ascii;

    #[test]
    fn numbers_and_ascii_scan() {
        for v in (0..100_000u64).chain([u64::MAX, u64::MAX - 1, 1 << 40, 999_999_999_999]) {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        // The escape scan against a byte loop, for every position and length.
        let base: Vec<u8> = (0..40).map(|i| b'a' + i % 26).collect();
        for len in 0..base.len() {
            for at in 0..=len {
                for c in [b'"', b'\\', 0x00, 0x1f, b'\n', 0x20, 0x7f, 0x80, 0xff] {
                    let mut t = base[..len].to_vec();
                    if at < len {
                        t[at] = c;
                    }
                    let want = t.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                    assert_eq!(find_escape(&t), want, "{t:?}");
                }
            }
        }
        let s: Vec<u8> = (0..40).map(|i| b'a' + i % 26).collect();
        assert_eq!(find_non_ascii(&s), s.len());
        for at in 0..s.len() {
            let mut t = s.clone();
            t[at] = 0xC3;
            assert_eq!(find_non_ascii(&t), at);
            assert_eq!(find_non_ascii(&t[..at]), at);
        }
    }

    fn parse(e: &Event) -> Value {
        serde_json::from_slice(&e.to_json()).expect("valid JSON")
    }

    #[test]
    fn every_document_starts_with_its_timestamp() {
        // Before and after the epoch, whole seconds and not, a leap day.
        for ts in [
            0,
            1,
            999,
            1_000_000,
            1_795_341_600_123_456,
            -1,
            -86_400_000_001,
            951_782_400_000_000,
        ] {
            let plain = Event {
                timestamp: ts,
                original: b"x",
                ..Default::default()
            };
            let mut fields = Map::new();
            // Keys that a sorted map puts before "@timestamp".
            fields.insert("$id".into(), Value::from(1));
            fields.insert("1".into(), Value::from("one"));
            fields.insert("@timestamp".into(), Value::from("from the line"));
            let merged = Event {
                fields: Some(fields),
                ..plain.clone()
            };
            let empty = Event {
                fields: Some(Map::new()),
                ..plain.clone()
            };
            for e in [plain, merged, empty] {
                let doc = e.to_json();
                assert!(doc.starts_with(LEADING_TIMESTAMP), "{}", String::from_utf8_lossy(&doc));
                assert_eq!(leading_timestamp_ms(&doc), Some(ts.div_euclid(1000)), "{ts}");
                let v: Value = serde_json::from_slice(&doc).expect("valid JSON");
                assert_eq!(v["@timestamp"], Value::from(crate::time::rfc3339(ts)));
            }
        }
    }

    #[test]
    fn event_time_falls_back_to_an_older_parsers_header() {
        let doc = br#"{"@timestamp":"1970-01-01T00:00:01Z"}"#;
        let header = |v: &'static [u8]| move || Some(v);
        assert_eq!(event_time_ms(doc, header(b"5")), Some(1000), "the document wins");
        assert_eq!(
            event_time_ms(br#"{"a":1}"#, header(b"1795341600000")),
            Some(1_795_341_600_000)
        );
        assert_eq!(event_time_ms(br#"{"a":1}"#, header(b"soon")), None);
        assert_eq!(event_time_ms(br#"{"a":1}"#, || None), None);
    }

    #[test]
    fn leading_timestamp_reads_only_that_shape() {
        let ok = |s: &str| leading_timestamp_ms(s.as_bytes());
        assert_eq!(ok(r#"{"@timestamp":"1970-01-01T00:00:01Z","a":1}"#), Some(1000));
        assert_eq!(ok(r#"{"@timestamp":"1970-01-01T00:00:01.5Z"}"#), Some(1500));
        assert_eq!(ok(r#"{"@timestamp":"1970-01-01T00:00:01.123456789Z"}"#), Some(1123));
        for bad in [
            r#"{"a":1,"@timestamp":"1970-01-01T00:00:01Z"}"#,
            r#"{"@timestamp":"1970-01-01T00:00:01+02:00"}"#,
            r#"{"@timestamp":"1970-13-01T00:00:01Z"}"#,
            r#"{"@timestamp":"1970-01-01 00:00:01Z"}"#,
            r#"{"@timestamp":"1970-01-01T00:00:01.Z"}"#,
            r#"{"@timestamp":"1970-01-01T00:00:01Z"#,
            r#"{"@timestamp":1000}"#,
            "",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
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
    fn string_escapes_match_serde_json_at_every_position() {
        // Each escapable byte (and a non-ASCII char) at each offset of strings
        // around the 8-byte word size, so both the word loop and the tail see it.
        let specials = [
            "\"", "\\", "\n", "\r", "\t", "\u{1}", "\u{8}", "\u{c}", "\u{1f}", "\u{7f}", "é", "\u{2028}",
        ];
        for len in 0..20 {
            for pos in 0..=len {
                for sp in specials {
                    let mut s = "a".repeat(pos);
                    s.push_str(sp);
                    s.push_str(&"b".repeat(len - pos));
                    s.push_str(sp);
                    let mut ours = Vec::new();
                    push_json_str(&mut ours, s.as_bytes());
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        serde_json::to_string(&s).unwrap(),
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn sd_ids_and_names_are_escaped_and_objects_close() {
        let e = Event {
            syslog: Some(Syslog {
                structured_data: vec![
                    SdElement {
                        id: "a\\b".into(),
                        params: vec![("x\\y".into(), "1".into()), ("z".into(), "\"".into())],
                    },
                    SdElement {
                        id: "empty".into(),
                        params: vec![],
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = parse(&e);
        let sd = &v["log"]["syslog"]["structured_data"];
        assert_eq!(sd["a\\b"]["x\\y"], "1");
        assert_eq!(sd["a\\b"]["z"], "\"");
        assert_eq!(sd["empty"], serde_json::json!({}));
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

    /// The merge walk relies on the line's fields iterating in key order:
    /// serde_json's `preserve_order` feature would break that.
    #[test]
    fn line_fields_iterate_sorted() {
        let mut m = Map::new();
        for k in ["b", "a", "é", "B", "", "aa"] {
            m.insert(k.into(), Value::Null);
        }
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["", "B", "a", "aa", "b", "é"]);
    }

    /// The merge walk against the general path (the ECS part written as
    /// text, parsed back and merged as `Value`s), the oracle.
    fn assert_merged_as_the_general_path(e: &Event<'_>) {
        let mut want = Vec::new();
        e.write_merged_via_value(e.fields.as_ref().unwrap(), &mut want);
        let mut got = Vec::new();
        e.write_json(&mut got);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    }

    /// Random line fields, with keys drawn mostly from ours and their
    /// neighbours in sort order, at random depths: the walk against the
    /// oracle beyond the hand-picked cases.
    #[test]
    fn merged_documents_match_the_general_path_on_random_fields() {
        const KEYS: [&str; 18] = [
            "event",
            "host",
            "log",
            "message",
            "file",
            "path",
            "offset",
            "dataset",
            "ingested",
            "original",
            "name",
            "eventa",
            "even",
            "a",
            "~",
            "@timestamp",
            "é",
            "",
        ];
        const STRS: [&str; 5] = ["", "x", "\u{8}\"\\\n", "ü ☃ longer than sixteen bytes", "\u{1f}"];
        fn value(next: &mut impl FnMut(u64) -> u64, depth: u32) -> Value {
            match next(if depth == 0 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(next(2) == 0),
                2 => Value::from(next(1 << 40) as i64 - (1 << 39)),
                3 => Value::from(next(1000) as f64 / 7.0),
                4 => Value::from(STRS[next(STRS.len() as u64) as usize]),
                5 => Value::Array((0..next(3)).map(|_| value(next, depth - 1)).collect()),
                _ => Value::Object(object(next, depth - 1)),
            }
        }
        fn object(next: &mut impl FnMut(u64) -> u64, depth: u32) -> Map<String, Value> {
            (0..next(6))
                .map(|_| (KEYS[next(KEYS.len() as u64) as usize].to_string(), value(next, depth)))
                .collect()
        }
        // xorshift64: a fixed sequence, so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..3000 {
            let fields = object(&mut next, 3);
            let e = Event {
                timestamp: next(1 << 50) as i64,
                ingested: next(1 << 50) as i64,
                original: STRS[next(STRS.len() as u64) as usize].as_bytes(),
                message: (next(2) == 0).then_some(Cow::Borrowed("m")),
                dataset: ["", "json", "logfmt"][next(3) as usize],
                host_name: (next(2) == 0).then_some(Cow::Borrowed("h")),
                log_file_path: (next(2) == 0).then_some(Cow::Borrowed("/p")),
                log_offset: (next(2) == 0).then_some(next(1 << 32)),
                fields: Some(fields),
                ..Default::default()
            };
            assert_merged_as_the_general_path(&e);
        }
    }

    #[test]
    fn merged_documents_are_byte_identical_to_the_text_path() {
        let field_sets = [
            serde_json::json!({}),
            serde_json::json!({"level": "info", "n": 1, "f": 1.5, "b": true, "z": null}),
            serde_json::json!({"@timestamp": "from the line", "$id": 1, "1": "one"}),
            serde_json::json!({"log": {"level": "warn", "offset": "clash"}, "host": "a string"}),
            serde_json::json!({"event": {"action": "login", "original": "spoof", "x": [1, {"y": 2}]}}),
            serde_json::json!({"message": {"nested": "clash"}, "log.level": "dotted", "é": "ü \" \\ \n"}),
            serde_json::json!({"log": "not an object", "event": 7, "host": {"name": "theirs", "ip": "10.0.0.1"}}),
            // Keys sorting right before and after ours, at each level.
            serde_json::json!({"eventa": 1, "even": 2, "event": {"dataseu": 0, "ingestee": 0, "originam": [], "z": {}},
                "hos": "h", "host0": [], "log": {"fild": 1, "file": {"path0": 1, "pat": 2}, "offseu": 3},
                "logs": null, "messag": "m", "message": "the same message", "messages": 1, "~": "last"}),
            // Escapes serde_json writes specially, numbers of every kind,
            // nesting in arrays.
            serde_json::json!({"c\u{8}\u{c}\u{1}": "\u{8}\u{c}\u{1f}\u{7f}\u{2028}", "neg": -17, "big": u64::MAX,
                "float": 1.0e300, "small": -2.5e-8, "zero": 0.0, "arr": [[], [{}], [1, "a", null, {"k": [true, false]}]],
                "deep": {"a": {"b": {"c": {"d": "e"}}}}, "": "empty key"}),
        ];
        let originals: [&[u8]; 4] = [
            b"{\"a\":1}",
            b"caf\xc3\xa9 \"q\" \\ \t",
            b"bad \xff\xfe utf-8 \x01",
            b"\x08\x0c controls of every kind \x00\x1f in a line longer than sixteen bytes",
        ];
        let mut n = 0;
        for fields in &field_sets {
            for original in originals {
                for variant in 0..4 {
                    let e = Event {
                        timestamp: 1_700_000_000_123_456,
                        ingested: 1_700_000_001_000_000,
                        original,
                        message: (variant % 2 == 0).then_some(Cow::Borrowed("hello \"world\" ☃")),
                        dataset: if variant < 2 { "json" } else { "" },
                        host_name: (variant != 3).then_some(Cow::Borrowed("web-1")),
                        log_file_path: (variant == 1).then_some(Cow::Borrowed("/var/log/app.json")),
                        log_offset: (variant != 2).then_some(4096),
                        fields: Some(fields.as_object().unwrap().clone()),
                        ..Default::default()
                    };
                    assert_merged_as_the_general_path(&e);
                    n += 1;
                }
            }
        }
        assert_eq!(n, 144);
    }
}
