//! Rotation storm: while a writer appends 1,000,000 lines, one file is
//! rotated by rename (and recreated) every 50 ms, logrotate-style with ten
//! numbered generations, the oldest deleted; another is rotated by
//! copytruncate. Every line must reach the raw topic, in order within its file.

mod services;

use std::time::{Duration, Instant};

use services::shipper::{check, consume_until, distinct_lines, line, LineWriter, Pace, ShipSetup};
use services::{Daemon, Services};

const APP_LINES: u64 = 800_000;
const CT_LINES: u64 = 200_000;
const KEEP: usize = 10;

fn shift(logs: &std::path::Path, base: &str) {
    let name = |i: usize| logs.join(format!("{base}.{i}"));
    let _ = std::fs::remove_file(name(KEEP));
    for i in (1..KEEP).rev() {
        let _ = std::fs::rename(name(i), name(i + 1));
    }
}

#[test]
fn rotation_storm_loses_nothing_and_keeps_file_order() {
    let services = Services::start();
    // Rotated generations match the glob too: at a 50 ms rotation a file can
    // be renamed before any poll sees it under its first name.
    let setup = ShipSetup::new(&services, &["app.log*", "ct.log*"], "");
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());

    let logs = setup.logs.clone();
    let writer = std::thread::spawn(move || {
        let app_path = logs.join("app.log");
        let ct_path = logs.join("ct.log");
        let mut app = LineWriter::create(&app_path);
        let mut ct = LineWriter::create(&ct_path);
        let pace = Pace::new(40_000);
        let (mut a, mut c) = (0u64, 0u64);
        let mut last_rename = Instant::now();
        let mut last_copytruncate = Instant::now();
        let (mut renames, mut copytruncates) = (0, 0);
        while a < APP_LINES || c < CT_LINES {
            // Four app lines for each copytruncate line.
            for _ in 0..4 {
                if a < APP_LINES {
                    app.push(&line("app", a));
                    a += 1;
                }
            }
            if c < CT_LINES {
                ct.push(&line("ct", c));
                c += 1;
            }
            if (a + c) % 500 == 0 {
                app.flush();
                ct.flush();
                pace.wait(a + c);
            }
            if last_rename.elapsed() >= Duration::from_millis(50) {
                app.flush();
                shift(&logs, "app.log");
                std::fs::rename(&app_path, logs.join("app.log.1")).unwrap();
                app.reopen();
                renames += 1;
                last_rename = Instant::now();
            }
            if last_copytruncate.elapsed() >= Duration::from_millis(700) {
                ct.flush();
                shift(&logs, "ct.log");
                std::fs::copy(&ct_path, logs.join("ct.log.1")).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&ct_path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                copytruncates += 1;
                last_copytruncate = Instant::now();
            }
        }
        app.flush();
        ct.flush();
        (renames, copytruncates)
    });

    let (renames, copytruncates) = writer.join().unwrap();
    eprintln!("writer done: {renames} rename rotations, {copytruncates} copytruncate rotations");
    // The writer tries every 50 ms; on a loaded 2-core machine it gets fewer.
    assert!(renames >= 50, "only {renames} rotations: not a storm");

    let total = (APP_LINES + CT_LINES) as usize;
    // Patient: on a loaded 2-core machine the debug-built checker reads
    // the topic far slower than the shipper fills it.
    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(600), |r| {
        shipper.assert_running();
        distinct_lines(r) >= total
    });
    let report = check(&records, &[("app", APP_LINES), ("ct", CT_LINES)]);
    eprintln!(
        "records {}, re-sent {}, duplicated {}, missing {}",
        records.len(),
        report.resent,
        report.duplicated,
        report.missing_total
    );
    assert!(
        report.is_complete() && report.errors.is_empty() && report.duplicated == 0,
        "{report:#?}\nshipper log (tail):\n{}",
        tail(&shipper.log(), 60)
    );
    assert!(
        shipper.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly"
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// logpipe's own rotation: rotated files that Kafka does not have all of are
/// read, once. One was left on disk by a crash right after its rotation
/// (nothing of it read yet); the live file is past `max_bytes` when the
/// shipper starts, so it is rotated at once, possibly before discovery has
/// opened it. Their names match no glob. After a restart nothing is re-sent.
#[test]
fn own_rotation_ships_rotated_files_nobody_read_exactly_once() {
    const OLD: u64 = 3_000;
    const LIVE: u64 = 3_000;
    let services = Services::start();
    let rotation = "[shipper.inputs.rotation]\npolicy = \"own\"\nmax_bytes = 65536\nmax_age_secs = 0\nretain = 10\n";
    let setup = ShipSetup::with_kafka(&services.kafka, &["app.log"], "", rotation);
    let mut old = LineWriter::create(&setup.logs.join("app.log.20261123T080000000Z"));
    let mut live = LineWriter::create(&setup.logs.join("app.log"));
    for seq in 0..OLD {
        old.push(&line("old", seq));
    }
    for seq in 0..LIVE {
        live.push(&line("live", seq));
    }
    old.flush();
    live.flush();

    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    let total = (OLD + LIVE) as usize;
    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(120), |r| {
        shipper.assert_running();
        distinct_lines(r) >= total
    });
    let report = check(&records, &[("old", OLD), ("live", LIVE)]);
    assert!(
        report.is_complete() && report.errors.is_empty() && report.duplicated == 0 && report.resent == 0,
        "{report:#?}\nshipper log (tail):\n{}",
        tail(&shipper.log(), 40)
    );
    assert!(shipper.terminate(Duration::from_secs(30)), "{}", shipper.log());

    // A restart finds the same rotated files, Kafka has them all: it leaves
    // them alone. Its scan of rotated files runs at once and every second.
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    std::thread::sleep(Duration::from_secs(4));
    shipper.assert_running();
    // Reads the topic for 10 s, unless more records than before turn up.
    let again = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(10), |r| {
        r.len() > records.len()
    });
    assert_eq!(
        again.len(),
        records.len(),
        "records re-sent after the restart\n{}",
        shipper.log()
    );
    assert!(!shipper.log().contains("does not have all of"), "{}", shipper.log());
    assert!(shipper.terminate(Duration::from_secs(30)), "{}", shipper.log());
}
