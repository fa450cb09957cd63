//! A line appended to a file ends up as one searchable ECS document, through
//! Kafka, with the shipper, parser and indexer running as separate processes
//! against real (stand-in) Kafka and Elasticsearch.

mod services;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use services::{wait_for, Daemon, Es, Services, Setup};

const LINES: usize = 10_000;

/// Line `i` in one of three formats; every line carries `seq=i` in its message.
fn line(i: usize) -> String {
    match i % 3 {
        0 => format!("<34>1 2026-11-22T10:00:{:02}.{:06}Z web-{} app 42 ID47 [meta seq=\"{i}\"] request done seq={i}", i % 60, i % 1_000_000, i % 7),
        1 => format!("<13>Nov 22 10:00:{:02} web-{} sshd[{}]: Accepted publickey for deploy seq={i}", i % 60, i % 7, 1000 + i % 50),
        _ => format!("{{\"@timestamp\":\"2026-11-22T10:00:00Z\",\"level\":\"info\",\"message\":\"job finished seq={i}\",\"job\":{{\"id\":{i}}}}}"),
    }
}

fn seq_of(message: &str) -> Option<usize> {
    message
        .rsplit("seq=")
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

#[test]
fn ten_thousand_lines_reach_elasticsearch_exactly_once() {
    let services = Services::start();
    let setup = Setup::new(&services, "");
    let logs_dir = setup.dir.path();
    let mut shipper = Daemon::start("ship", &setup.config, logs_dir);
    let mut parser = Daemon::start("parse", &setup.config, logs_dir);
    let mut indexer = Daemon::start("index", &setup.config, logs_dir);

    // Appended while the daemons run, in bursts, into two files.
    let mut files = [
        std::fs::File::create(setup.logs.join("app.log")).unwrap(),
        std::fs::File::create(setup.logs.join("auth.log")).unwrap(),
    ];
    let mut offsets = [0u64; 2];
    let mut where_written = HashMap::new();
    for chunk in (0..LINES).collect::<Vec<_>>().chunks(500) {
        for &i in chunk {
            let f = i % 2;
            let text = format!("{}\n", line(i));
            files[f].write_all(text.as_bytes()).unwrap();
            where_written.insert(i, (f, offsets[f]));
            offsets[f] += text.len() as u64;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for f in &files {
        f.sync_all().unwrap();
    }

    let es = Es::new(&services.es);
    let index = setup.index_glob();
    let arrived = wait_for(Duration::from_secs(180), || {
        shipper.assert_running();
        parser.assert_running();
        indexer.assert_running();
        es.count(&index) >= LINES as u64
    });
    assert!(
        arrived,
        "only {} of {LINES} documents arrived\nshipper:\n{}\nparser:\n{}\nindexer:\n{}",
        es.count(&index),
        shipper.log(),
        parser.log(),
        indexer.log()
    );
    // Give late duplicates, if any, the time to show up.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(es.count(&index), LINES as u64, "more documents than lines: duplicates");

    let docs = es.all_docs(&index, LINES);
    assert_eq!(docs.len(), LINES);
    let mut seen = vec![0u32; LINES];
    let paths = [setup.logs.join("app.log"), setup.logs.join("auth.log")];
    for d in &docs {
        let src = &d["_source"];
        let message = src["message"].as_str().unwrap_or_else(|| panic!("no message in {src}"));
        let i = seq_of(message).unwrap_or_else(|| panic!("no seq in {message:?}"));
        seen[i] += 1;
        let (file, offset) = where_written[&i];
        assert_eq!(src["host"]["name"], "test-host");
        assert_eq!(src["log"]["file"]["path"], paths[file].display().to_string());
        assert_eq!(src["log"]["offset"], offset, "line {i}");
        assert_eq!(src["event"]["original"], line(i));
        assert!(
            src["@timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with("2026-11-22T10:00:")),
            "{src}"
        );
        assert!(src["event"]["ingested"].is_string());
        match i % 3 {
            0 => {
                assert_eq!(src["event"]["dataset"], "syslog.rfc5424");
                assert_eq!(src["log"]["syslog"]["priority"], 34);
                assert_eq!(src["log"]["syslog"]["appname"], "app");
                assert_eq!(src["log"]["syslog"]["structured_data"]["meta"]["seq"], i.to_string());
            }
            1 => {
                assert_eq!(src["event"]["dataset"], "syslog.rfc3164");
                assert_eq!(src["log"]["syslog"]["hostname"], format!("web-{}", i % 7));
                assert_eq!(src["process"]["name"], "sshd");
            }
            _ => {
                assert_eq!(src["event"]["dataset"], "json");
                assert_eq!(src["level"], "info");
                assert_eq!(src["job"]["id"], i);
            }
        }
    }
    let missing: Vec<_> = (0..LINES).filter(|i| seen[*i] == 0).take(10).collect();
    let doubled: Vec<_> = (0..LINES).filter(|i| seen[*i] > 1).take(10).collect();
    assert!(
        missing.is_empty() && doubled.is_empty(),
        "missing {missing:?}, duplicated {doubled:?}"
    );

    // Every daemon drains and exits 0 on SIGTERM.
    for d in [&mut shipper, &mut parser, &mut indexer] {
        assert!(
            d.terminate(Duration::from_secs(30)),
            "{} did not drain cleanly:\n{}",
            d.name,
            d.log()
        );
    }
}
