//! A fleet that already ships with rsyslog adopts the parser alone: real
//! rsyslogd (Debian's packages) forwards with omkafka to the raw topic, which
//! then carries no logpipe headers, and a `logpipe parse` process turns every
//! record into exactly one document (or dead letter) whose id comes from the
//! record's (topic, partition, offset) and whose `host.name` comes from the
//! syslog header.
//!
//! rsyslog gets two inputs: a file it tails with imfile (mixed RFC 5424, RFC
//! 3164 and broken lines, sent byte for byte) and messages from `logger` over
//! TCP, which rsyslog re-formats as RFC 5424 itself.

mod services;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use logpipe_schemas::{dead_letter, id};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use services::rsyslog::Rsyslog;
use services::{wait_for, Daemon, Services, Setup};

const FILE_LINES: usize = 3_000;
const TCP_MESSAGES: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Parsed,
    DeadLetter,
}

/// File line `i` and where it must end up.
fn file_line(i: usize) -> (String, Want) {
    let (m, s, ms) = (i / 60 % 60, i % 60, i % 1000);
    match i % 10 {
        0..=3 => (
            format!(
                "<{}>1 2026-11-22T10:{m:02}:{s:02}.{ms:03}Z host-{} app{} {} ID{} [ex@32473 i=\"{i}\" q=\"a\\\"b\"] file line {i}",
                8 + i % 150,
                i % 7,
                i % 3,
                1000 + i,
                i % 4
            ),
            Want::Parsed,
        ),
        4 => (
            format!("<165>1 2026-11-22T10:{m:02}:{s:02}+01:00 - app - - - no hostname, file line {i}"),
            Want::Parsed,
        ),
        5..=7 => (
            format!("<13>Nov 22 10:{m:02}:{s:02} web-{} sshd[{i}]: file line {i}", i % 3),
            Want::Parsed,
        ),
        8 => (
            // Strict RFC 5424: hour 25 is not a guess, it is a failure.
            format!("<34>1 2026-11-22T25:{m:02}:{s:02}Z host-x app - - - bad time, file line {i}"),
            Want::DeadLetter,
        ),
        _ => (format!("not syslog at all, file line {i}"), Want::DeadLetter),
    }
}

/// The HOSTNAME field of a syslog line, found by the test itself: the third
/// space-separated token of RFC 5424, the fourth of RFC 3164 (two-digit days).
fn header_host(line: &str) -> Option<&str> {
    let tokens: Vec<&str> = line.split(' ').collect();
    let host = if line.as_bytes().get(line.find('>')? + 1)?.is_ascii_digit() {
        tokens[2]
    } else {
        tokens[3]
    };
    (host != "-").then_some(host)
}

/// A group-less reader of every partition of `topic` from the beginning.
fn reader(brokers: &str, topic: &str, partitions: i32) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", services::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    c
}

/// One record as read back.
#[derive(Debug, Clone)]
struct Rec {
    key: Option<String>,
    payload: Vec<u8>,
    headers: HashMap<String, String>,
    coords: (String, i32, i64),
}

/// Reads until `idle` passes without a record.
fn drain(c: &BaseConsumer, into: &mut Vec<Rec>, idle: Duration) {
    let mut last = Instant::now();
    while last.elapsed() < idle {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers: HashMap<String, String> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if headers.contains_key(logpipe_schemas::parsed::HEADER_DOCS) {
                    // A batch of documents, each with its id.
                    for (id, doc) in services::documents(&m) {
                        into.push(Rec {
                            key: Some(id),
                            payload: doc,
                            headers: HashMap::new(),
                            coords: (m.topic().to_string(), m.partition(), m.offset()),
                        });
                    }
                } else {
                    into.push(Rec {
                        key: m.key().map(|k| String::from_utf8(k.to_vec()).unwrap()),
                        payload: m.payload().unwrap_or_default().to_vec(),
                        headers,
                        coords: (m.topic().to_string(), m.partition(), m.offset()),
                    });
                }
                last = Instant::now();
            }
            Some(Err(e)) => panic!("reading: {e}"),
            None => {}
        }
    }
}

#[test]
fn rsyslog_omkafka_records_are_parsed_once_with_kafka_ids() {
    let s = Services::start();
    let setup = Setup::new(&s, "");
    // The parser creates the topics (2 partitions); rsyslog's omkafka spreads
    // unkeyed records over them.
    let mut parser = Daemon::start("parse", &setup.config, &setup.logs);
    assert!(
        wait_for(Duration::from_secs(30), || parser.log().contains("parser consuming")),
        "parser did not start:\n{}",
        parser.log()
    );

    let rs_dir = setup.dir.path().join("rsyslog");
    std::fs::create_dir_all(&rs_dir).unwrap();
    let tail_file = rs_dir.join("app.log");
    let mut want: HashMap<String, Want> = HashMap::new();
    {
        let mut f = std::fs::File::create(&tail_file).unwrap();
        for i in 0..FILE_LINES {
            let (line, w) = file_line(i);
            writeln!(f, "{line}").unwrap();
            want.insert(line, w);
        }
    }
    let mut rsyslog = Rsyslog::start(&rs_dir, &s.kafka, &setup.raw_topic, &tail_file);

    let tcp_input = rs_dir.join("tcp-messages.txt");
    let tcp_lines: Vec<String> = (0..TCP_MESSAGES).map(|i| format!("tcp message {i}")).collect();
    std::fs::write(&tcp_input, tcp_lines.join("\n") + "\n").unwrap();
    let status = Command::new("logger")
        .args(["-T", "-n", "127.0.0.1", "-P", &rsyslog.tcp_port.to_string()])
        .args(["--rfc5424", "--octet-count", "-t", "tcpapp", "-f"])
        .arg(&tcp_input)
        .status()
        .expect("running logger (util-linux)");
    assert!(status.success(), "logger failed");

    // What rsyslog wrote: every file line once, verbatim, and every logger
    // message once, as RFC 5424 ending in "\n"; no logpipe headers anywhere.
    let partitions = 2;
    let raw_reader = reader(&s.kafka, &setup.raw_topic, partitions);
    let mut raw = Vec::new();
    let total = FILE_LINES + TCP_MESSAGES;
    let deadline = Instant::now() + Duration::from_secs(90);
    while raw.len() < total && Instant::now() < deadline {
        drain(&raw_reader, &mut raw, Duration::from_millis(500));
        rsyslog.assert_running();
    }
    drain(&raw_reader, &mut raw, Duration::from_secs(1));
    assert_eq!(
        raw.len(),
        total,
        "records rsyslog wrote to the raw topic\n{}",
        rsyslog.log()
    );
    assert!(
        raw.iter().all(|r| r.headers.is_empty() && r.key.is_none()),
        "omkafka sends no headers and no key"
    );
    assert!(
        raw.iter().any(|r| r.coords.1 == 0) && raw.iter().any(|r| r.coords.1 == 1),
        "records on both partitions"
    );
    let mut file_seen = 0;
    let mut tcp_seen = vec![0u32; TCP_MESSAGES];
    for r in &raw {
        let text = std::str::from_utf8(&r.payload).unwrap();
        if let Some(at) = text.find("tcp message ") {
            assert!(text.ends_with('\n') && text.starts_with('<'), "{text:?}");
            let n: usize = text[at + 12..].trim_end().parse().unwrap();
            tcp_seen[n] += 1;
        } else {
            assert!(want.contains_key(text), "unexpected raw record {text:?}");
            file_seen += 1;
        }
    }
    assert_eq!(file_seen, FILE_LINES);
    assert!(tcp_seen.iter().all(|&n| n == 1), "each logger message once");

    // Everything the parser made of it.
    let parsed_reader = reader(&s.kafka, &setup.parsed_topic, partitions);
    let dlq_reader = reader(&s.kafka, &setup.dlq_topic, partitions);
    let (mut parsed, mut dlq) = (Vec::new(), Vec::new());
    let done = wait_for(Duration::from_secs(120), || {
        drain(&parsed_reader, &mut parsed, Duration::from_millis(500));
        drain(&dlq_reader, &mut dlq, Duration::from_millis(200));
        parser.assert_running();
        parsed.len() + dlq.len() >= total
    });
    // Late extras would be duplicates: look once more.
    drain(&parsed_reader, &mut parsed, Duration::from_secs(2));
    drain(&dlq_reader, &mut dlq, Duration::from_millis(500));
    assert!(
        done,
        "{} of {total} records came out\nparser:\n{}",
        parsed.len() + dlq.len(),
        parser.log()
    );

    let mut out: HashMap<String, (bool, &Rec)> = HashMap::new();
    for (is_parsed, r) in parsed.iter().map(|r| (true, r)).chain(dlq.iter().map(|r| (false, r))) {
        let key = r.key.clone().expect("output records are keyed by document id");
        if let Some((_, first)) = out.insert(key.clone(), (is_parsed, r)) {
            panic!("document {key} came out twice:\n{:?}\n{:?}", first.payload, r.payload);
        }
    }
    assert_eq!(out.len(), total, "one output per raw record");

    let mut counts = HashMap::new();
    for r in &raw {
        let (topic, partition, offset) = &r.coords;
        let doc_id = id::kafka_record_id(topic, *partition, *offset);
        let text = std::str::from_utf8(&r.payload).unwrap();
        let (is_parsed, o) = out
            .get(&doc_id)
            .unwrap_or_else(|| panic!("no output with the id of {topic}/{partition}/{offset}: {text:?}"));
        let expect = want.get(text).copied().unwrap_or(Want::Parsed);
        assert_eq!(
            if *is_parsed { Want::Parsed } else { Want::DeadLetter },
            expect,
            "{text:?}: {:?}",
            o.headers.get(dead_letter::HEADER_REASON)
        );
        *counts.entry(expect == Want::Parsed).or_insert(0) += 1;
        if *is_parsed {
            let doc: serde_json::Value = serde_json::from_slice(&o.payload).unwrap();
            assert_eq!(doc["event"]["original"], text, "original kept");
            let host = doc["host"]["name"].as_str();
            assert_eq!(host, header_host(text), "host.name from the syslog header of {text:?}");
            assert_eq!(doc["log"]["syslog"]["hostname"].as_str(), header_host(text));
            assert!(doc["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{doc}");
            assert!(doc["message"]
                .as_str()
                .is_some_and(|m| text.ends_with(m) || text.trim_end().ends_with(m)));
        } else {
            assert_eq!(o.payload, r.payload, "the dead letter carries the raw bytes");
            assert_eq!(o.headers[dead_letter::HEADER_STAGE], "parse");
            assert!(!o.headers[dead_letter::HEADER_REASON].is_empty());
            assert_eq!(
                o.headers[dead_letter::HEADER_ORIGIN],
                format!("{topic}/{partition}/{offset}")
            );
        }
    }
    eprintln!(
        "{total} records from rsyslog: {} parsed, {} dead letters",
        counts[&true], counts[&false]
    );
    assert_eq!(counts[&false], FILE_LINES / 10 * 2);
    assert!(parser.terminate(Duration::from_secs(30)), "parser drains on SIGTERM");
}
