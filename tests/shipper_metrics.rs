//! Per-file metrics on `/metrics`: lines and bytes read, sent and
//! acknowledged, bytes behind, open files, producer queue; a file's series
//! disappear once the file is let go.

mod services;

use std::time::Duration;

use services::shipper::{line, LineWriter, ShipSetup};
use services::{wait_for, Daemon, Services};

fn scrape(d: &Daemon) -> String {
    let Some(addr) = d.ops_addr() else { return String::new() };
    reqwest::blocking::get(format!("http://{addr}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default()
}

/// The value of the series `name{labels}` (labels in any order), if present.
fn value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn per_file_series_count_lines_and_bytes_and_vanish_with_the_file() {
    const LINES: u64 = 2000;
    let services = Services::start();
    let setup = ShipSetup::new(&services, &["*.log"], "rotated_idle_close_ms = 200");
    let (a, b) = (setup.logs.join("a.log"), setup.logs.join("b.log"));
    let mut wa = LineWriter::create(&a);
    let mut wb = LineWriter::create(&b);
    for i in 0..LINES {
        wa.push(&line("a", i));
        if i < LINES / 2 {
            wb.push(&line("b", i));
        }
    }
    wa.flush();
    wb.flush();
    let (a_name, b_name) = (a.display().to_string(), b.display().to_string());
    let a_size = std::fs::metadata(&a).unwrap().len() as f64;
    let b_size = std::fs::metadata(&b).unwrap().len() as f64;

    let mut ship = Daemon::start("ship", &setup.config, setup.dir.path());
    let mut body = String::new();
    let done = wait_for(Duration::from_secs(60), || {
        ship.assert_running();
        body = scrape(&ship);
        value(
            &body,
            "logpipe_shipper_file_bytes",
            &[("file", &b_name), ("outcome", "acked")],
        ) == Some(b_size)
            && value(
                &body,
                "logpipe_shipper_file_bytes",
                &[("file", &a_name), ("outcome", "acked")],
            ) == Some(a_size)
    });
    assert!(done, "acknowledged bytes never reached the file sizes:\n{body}");
    // Once more after everything settled, so every gauge is from one report.
    std::thread::sleep(Duration::from_millis(1500));
    body = scrape(&ship);
    for (file, lines, size) in [(&a_name, LINES, a_size), (&b_name, LINES / 2, b_size)] {
        for outcome in ["read", "sent", "acked"] {
            let l = [("file", file.as_str()), ("outcome", outcome)];
            assert_eq!(
                value(&body, "logpipe_shipper_file_lines", &l),
                Some(lines as f64),
                "{file} {outcome}\n{body}"
            );
            assert_eq!(
                value(&body, "logpipe_shipper_file_bytes", &l),
                Some(size),
                "{file} {outcome}"
            );
        }
        assert_eq!(
            value(&body, "logpipe_shipper_file_bytes_behind", &[("file", file.as_str())]),
            Some(0.0)
        );
    }
    assert_eq!(value(&body, "logpipe_shipper_open_files", &[]), Some(2.0));
    assert_eq!(value(&body, "logpipe_shipper_producer_queue", &[]), Some(0.0));

    // Growth shows as bytes behind while the broker is away.
    if let Some(broker) = services.pid() {
        services::signal(broker, "STOP");
        wa.push(&line("a", LINES));
        wa.flush();
        let grown = std::fs::metadata(&a).unwrap().len() as f64;
        let behind = wait_for(Duration::from_secs(10), || {
            body = scrape(&ship);
            value(&body, "logpipe_shipper_file_bytes_behind", &[("file", &a_name)]) == Some(grown - a_size)
                && value(&body, "logpipe_shipper_producer_queue", &[]) == Some(1.0)
        });
        services::signal(broker, "CONT");
        assert!(behind, "bytes behind / queue depth not shown:\n{body}");
    }

    // b is deleted: once let go, its series disappear; a's stay.
    std::fs::remove_file(&b).unwrap();
    let gone = wait_for(Duration::from_secs(60), || {
        body = scrape(&ship);
        !body.contains(&format!("file=\"{b_name}\""))
    });
    assert!(gone, "b's series are still there:\n{body}");
    assert_eq!(value(&body, "logpipe_shipper_open_files", &[]), Some(1.0));
    assert!(value(
        &body,
        "logpipe_shipper_file_lines",
        &[("file", &a_name), ("outcome", "acked")]
    )
    .is_some());
    assert!(ship.terminate(Duration::from_secs(30)));
}
