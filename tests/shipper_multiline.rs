//! Multiline joining: Java stack traces become one record each, whole,
//! across a `kill -9` of the shipper in the middle of the file; an input
//! without `multiline` keeps its lines apart.

mod services;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use services::shipper::{consume_until, ShipSetup};
use services::{Daemon, Services};

const EVENTS: u64 = 1000;

/// Event `i`: a log line and, for most, a stack trace of up to 16 lines.
fn event(i: u64) -> String {
    let mut e = format!(
        "2026-11-23 08:00:{:02}.{:03} ERROR [main] c.e.Svc - request {i} failed",
        i % 60,
        i % 1000
    );
    if !i.is_multiple_of(5) {
        e.push_str(&format!("\njava.lang.IllegalStateException: state {i}"));
        for j in 0..i % 14 {
            e.push_str(&format!("\n\tat com.example.Svc.step{j}(Svc.java:{})", 10 + j));
        }
        if i.is_multiple_of(3) {
            e.push_str("\nCaused by: java.io.IOException: broken pipe\n\t... 3 more");
        }
    }
    e
}

fn seq_of(record: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(record).ok()?;
    let at = s.find("request ")? + 8;
    s[at..].split(' ').next()?.parse().ok()
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn stack_traces_arrive_as_whole_events_across_a_crash() {
    let services = Services::start();
    let setup = ShipSetup::new(&services, &["plain.log"], "");
    let mut config = std::fs::read_to_string(&setup.config).unwrap();
    config.push_str(&format!(
        "[[shipper.inputs]]\ninclude = [\"{}/java.log\"]\nmultiline = {{ start_pattern = '^\\d{{4}}-\\d{{2}}-\\d{{2}} ', timeout_ms = 500 }}\n",
        setup.logs.display()
    ));
    std::fs::write(&setup.config, config).unwrap();

    let java = setup.logs.join("java.log");
    let plain = setup.logs.join("plain.log");
    let mut first = String::new();
    for i in 0..EVENTS / 2 {
        first.push_str(&event(i));
        first.push('\n');
    }
    append(&java, &first);
    // Continuation-looking lines in a file whose input has no multiline.
    append(
        &plain,
        "2026-11-23 head\n\tat not.Joined(X.java:1)\n\tat not.Joined(X.java:2)\n",
    );

    let mut ship = Daemon::start("ship", &setup.config, setup.dir.path());
    consume_until(&setup.kafka, &setup.topic, Duration::from_secs(60), |r| {
        ship.assert_running();
        r.len() >= 100
    });
    ship.kill9();

    let mut second = String::new();
    for i in EVENTS / 2..EVENTS {
        second.push_str(&event(i));
        second.push('\n');
    }
    append(&java, &second);
    let mut ship = Daemon::start("ship", &setup.config, setup.dir.path());

    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(120), |r| {
        ship.assert_running();
        let mut seqs: Vec<u64> = r
            .iter()
            .filter(|r| r.path.ends_with("java.log"))
            .filter_map(|r| seq_of(&r.value))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.len() >= EVENTS as usize
    });

    let mut by_offset: HashMap<u64, &[u8]> = HashMap::new();
    let mut seen = vec![0u32; EVENTS as usize];
    let mut plain_lines = HashMap::new();
    for r in &records {
        if r.path.ends_with("plain.log") {
            plain_lines.insert(r.offset, String::from_utf8_lossy(&r.value).into_owned());
            continue;
        }
        let i = seq_of(&r.value).unwrap_or_else(|| panic!("not an event: {:?}", String::from_utf8_lossy(&r.value)));
        assert_eq!(
            String::from_utf8_lossy(&r.value),
            event(i),
            "event {i} arrived cut or joined wrongly"
        );
        // A re-sent event is the same event at the same offset, never a part of one.
        if let Some(prev) = by_offset.insert(r.offset, &r.value) {
            assert_eq!(prev, &r.value[..], "two different events at offset {}", r.offset);
        } else {
            seen[i as usize] += 1;
        }
    }
    let missing: Vec<usize> = (0..EVENTS as usize).filter(|&i| seen[i] == 0).take(10).collect();
    assert!(missing.is_empty(), "events missing: {missing:?}");
    assert!(seen.iter().all(|&n| n == 1), "an event at two offsets");
    let mut plain_lines: Vec<String> = plain_lines.into_values().collect();
    plain_lines.sort();
    assert_eq!(
        plain_lines,
        [
            "\tat not.Joined(X.java:1)",
            "\tat not.Joined(X.java:2)",
            "2026-11-23 head"
        ]
    );
    assert!(
        ship.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly:\n{}",
        ship.log()
    );
}
