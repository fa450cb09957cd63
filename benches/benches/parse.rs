//! Parser throughput, in lines per second on one core.
//!
//! Per format (RFC 5424, RFC 3164 without PRI, access combined, JSON):
//! * `logpipe/parse`: `logpipe_parser::parse` only;
//! * `logpipe/parse+ecs_json`: parse, then `Event::write_json` into a reused buffer
//!   (what the parser stage does per record);
//! * for the syslog formats, the same for `syslog_loose` (the parser Vector
//!   uses) and, for RFC 5424, `syslog_rfc5424`: parse only, and parse plus
//!   `serde_json` serialization of the same fields into a reused buffer.
//!
//! Inputs are read in place from `../shared/corpus` (Linux_2k.log for RFC 3164,
//! apache_combined.log for access); RFC 5424 lines come from `logpipe_benches::inputs`, JSON
//! lines from the burst bench's generator (`logpipe_benches::gen`). Run with
//! `cargo bench -p logpipe-benches --bench parse -- --warm-up-time 1 --measurement-time 3`.

use std::fmt::Display;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logpipe_benches::gen;
use logpipe_benches::inputs::{corpus_lines, rfc5424_lines};
use logpipe_parser::{parse, Format, LineContext};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// 2024-06-15T12:00:00Z
const INGEST: i64 = 1_718_452_800_000_000;

fn ctx() -> LineContext<'static> {
    LineContext {
        ingest: INGEST,
        host: Some("shipper-1"),
        path: Some("/var/log/syslog"),
        offset: Some(4096),
    }
}

/// Serializes a `Display` value as a JSON string without building a `String`.
struct Disp<T>(T);

impl<T: Display> Serialize for Disp<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `structured_data` as `{"id": {"param": "value"}}`, as logpipe writes it.
struct Sd<'m>(&'m [syslog_loose::StructuredElement<&'m str>]);

impl Serialize for Sd<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Params<'m>(&'m [(&'m str, &'m str)]);
        impl Serialize for Params<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for el in self.0 {
            m.serialize_entry(el.id, &Params(&el.params))?;
        }
        m.end()
    }
}

/// The fields logpipe's ECS document carries, from a `syslog_loose` message.
#[derive(Serialize)]
#[serde(bound(serialize = "T: Display"))]
struct LooseDoc<'m, T: Display> {
    #[serde(rename = "@timestamp")]
    timestamp: Option<Disp<T>>,
    message: &'m str,
    original: &'m str,
    ingested: i64,
    dataset: &'static str,
    host_name: &'static str,
    log_file_path: &'static str,
    log_offset: u64,
    facility: Option<&'static str>,
    severity: Option<&'static str>,
    hostname: Option<&'m str>,
    appname: Option<&'m str>,
    procid: Option<Disp<&'m syslog_loose::ProcId<&'m str>>>,
    msgid: Option<&'m str>,
    structured_data: Sd<'m>,
}

fn loose_doc<'m>(
    line: &'m str,
    m: &'m syslog_loose::Message<&'m str>,
    dataset: &'static str,
) -> LooseDoc<'m, impl Display + 'm> {
    LooseDoc {
        timestamp: m.timestamp.as_ref().map(Disp),
        message: m.msg,
        original: line,
        ingested: INGEST,
        dataset,
        host_name: "shipper-1",
        log_file_path: "/var/log/syslog",
        log_offset: 4096,
        facility: m.facility.map(|f| f.as_str()),
        severity: m.severity.map(|s| s.as_str()),
        hostname: m.hostname,
        appname: m.appname,
        procid: m.procid.as_ref().map(Disp),
        msgid: m.msgid,
        structured_data: Sd(&m.structured_data),
    }
}

/// `syslog_rfc5424`'s own `Serialize` plus the fields it does not carry.
#[derive(Serialize)]
struct Rfc5424Doc<'m> {
    original: &'m str,
    ingested: i64,
    dataset: &'static str,
    host_name: &'static str,
    log_file_path: &'static str,
    log_offset: u64,
    syslog: &'m syslog_rfc5424::SyslogMessage,
}

fn bench_format(
    c: &mut Criterion,
    name: &str,
    format: Format,
    lines: &[String],
    loose: Option<syslog_loose::Variant>,
    rfc5424: bool,
) {
    let ctx = ctx();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(lines.len() as u64));

    // Every input line must parse, or the figures mean nothing.
    for l in lines {
        parse(format, l.as_bytes(), &ctx).unwrap_or_else(|e| panic!("{e}: {l}"));
    }

    g.bench_function("logpipe/parse", |b| {
        b.iter(|| {
            for l in lines {
                black_box(parse(format, black_box(l.as_bytes()), &ctx).ok());
            }
        })
    });
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("logpipe/parse+ecs_json", |b| {
        b.iter(|| {
            for l in lines {
                buf.clear();
                if let Ok(ev) = parse(format, black_box(l.as_bytes()), &ctx) {
                    ev.write_json(&mut buf);
                }
                black_box(&buf);
            }
        })
    });

    if let Some(variant) = loose {
        let dataset = if rfc5424 { "syslog.rfc5424" } else { "syslog.rfc3164" };
        g.bench_function("syslog_loose/parse", |b| {
            b.iter(|| {
                for l in lines {
                    black_box(syslog_loose::parse_message_with_year(black_box(l), |_| 2024, variant));
                }
            })
        });
        g.bench_function("syslog_loose/parse+serde_json", |b| {
            b.iter(|| {
                for l in lines {
                    buf.clear();
                    let m = syslog_loose::parse_message_with_year(black_box(l), |_| 2024, variant);
                    serde_json::to_writer(&mut buf, &loose_doc(l, &m, dataset)).unwrap();
                    black_box(&buf);
                }
            })
        });
    }
    if rfc5424 {
        g.bench_function("syslog_rfc5424/parse", |b| {
            b.iter(|| {
                for l in lines {
                    black_box(syslog_rfc5424::parse_message(black_box(l.as_str())).ok());
                }
            })
        });
        g.bench_function("syslog_rfc5424/parse+serde_json", |b| {
            b.iter(|| {
                for l in lines {
                    buf.clear();
                    if let Ok(m) = syslog_rfc5424::parse_message(black_box(l.as_str())) {
                        let doc = Rfc5424Doc {
                            original: l,
                            ingested: INGEST,
                            dataset: "syslog.rfc5424",
                            host_name: "shipper-1",
                            log_file_path: "/var/log/syslog",
                            log_offset: 4096,
                            syslog: &m,
                        };
                        serde_json::to_writer(&mut buf, &doc).unwrap();
                    }
                    black_box(&buf);
                }
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_format(
        c,
        "rfc5424",
        Format::Rfc5424,
        &rfc5424_lines(),
        Some(syslog_loose::Variant::RFC5424),
        true,
    );
    let linux = corpus_lines("loghub/Linux_2k.log");
    bench_format(
        c,
        "rfc3164",
        Format::Rfc3164,
        &linux,
        Some(syslog_loose::Variant::RFC3164),
        false,
    );
    let apache = corpus_lines("access/apache_combined.log");
    bench_format(c, "access_combined", Format::Access, &apache, None, false);
    // The JSON lines the burst bench writes: their fields are merged under
    // the ECS fields, a path of its own.
    let json: Vec<String> = (0..2000)
        .map(|seq| {
            let mut line = Vec::new();
            gen::line(&mut line, gen::Kind::Json, seq, 1_795_341_600_000 + seq as i64);
            String::from_utf8(line).expect("the generator writes UTF-8")
        })
        .collect();
    bench_format(c, "json", Format::Json, &json, None, false);
}

criterion_group!(parse_benches, benches);
criterion_main!(parse_benches);
