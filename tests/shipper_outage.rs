//! Broker outage: the broker stops answering (SIGSTOP) for 30 s in the middle
//! of a 300,000-line write and then resumes. The shipper must stop reading
//! (the file is the buffer) with bounded memory, and deliver every line.

mod services;

use std::time::Duration;

use services::shipper::{check, consume_until, distinct_lines, line, vm_hwm_kib, LineWriter, Pace, ShipSetup};
use services::{signal, Daemon, Services};

const LINES: u64 = 300_000;

#[test]
fn broker_stopped_for_30s_loses_nothing_with_bounded_memory() {
    let services = Services::start();
    let Some(broker) = services.pid() else {
        eprintln!("skipped: the broker is external (LOGPIPE_TEST_KAFKA)");
        return;
    };
    // Fewer lines in flight than are written during the outage: reading must stop.
    let setup = ShipSetup::new(&services, &["app.log"], "max_in_flight_lines = 50000");
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());

    let path = setup.logs.join("app.log");
    let mut w = LineWriter::create(&path);
    let pace = Pace::new(20_000);
    let mut stopped = false;
    for i in 0..LINES {
        w.push(&line("app", i));
        if i % 500 == 499 {
            w.flush();
            pace.wait(i + 1);
        }
        if i == LINES / 3 {
            w.flush();
            signal(broker, "STOP");
            stopped = true;
        }
        if stopped && i == 2 * LINES / 3 {
            // Keep writing during the outage, then hold it until 30 s passed.
            w.flush();
            std::thread::sleep(
                Duration::from_secs(30).saturating_sub(Duration::from_secs_f64((LINES / 3) as f64 / 20_000.0)),
            );
            shipper.assert_running();
            signal(broker, "CONT");
            stopped = false;
        }
    }
    w.flush();

    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(240), |r| {
        shipper.assert_running();
        distinct_lines(r) >= LINES as usize
    });
    let peak_kib = vm_hwm_kib(shipper.pid()).unwrap_or(0);
    let report = check(&records, &[("app", LINES)]);
    eprintln!(
        "records {}, re-sent {}, missing {}, shipper peak RSS {} KiB",
        records.len(),
        report.resent,
        report.missing_total,
        peak_kib
    );
    assert!(
        report.is_complete() && report.errors.is_empty() && report.duplicated == 0,
        "{report:#?}\nshipper log:\n{}",
        shipper.log()
    );
    // The file (45 MB) is the buffer, not memory: librdkafka's queue is
    // capped at 64 MiB and the shipper's own buffers at a chunk per file.
    assert!(
        peak_kib < 160 * 1024,
        "peak RSS {peak_kib} KiB: memory not bounded by the queue"
    );
    assert!(
        shipper.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly"
    );
}
