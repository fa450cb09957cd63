//! Crash loop: the shipper is killed with SIGKILL 20 times at random moments
//! while 1,000,000 lines are written, and restarted each time. No line may be
//! lost, and what is re-sent must stay within the in-flight window
//! (`max_in_flight_lines`, which also counts acknowledged lines whose
//! checkpoint is not yet on disk) per crash.

mod services;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use services::shipper::{check, consume_until, distinct_lines, line, LineWriter, Pace, ShipSetup};
use services::{Daemon, Services};

const LINES: u64 = 1_000_000;
const KILLS: u64 = 20;
const WINDOW: u64 = 20_000;

#[test]
fn twenty_kill_nines_lose_nothing_and_resend_only_the_window() {
    let services = Services::start();
    let setup = ShipSetup::new(
        &services,
        &["app.log"],
        &format!("max_in_flight_lines = {WINDOW}\ncheckpoint_interval_ms = 200"),
    );
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let path = setup.logs.join("app.log");
        let done = done.clone();
        std::thread::spawn(move || {
            let mut w = LineWriter::create(&path);
            let pace = Pace::new(30_000);
            for i in 0..LINES {
                w.push(&line("app", i));
                if i % 500 == 499 {
                    w.flush();
                    pace.wait(i + 1);
                }
            }
            w.flush();
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut rng = rand::rng();
    let mut kills = 0;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        shipper.assert_running();
        shipper.kill9();
        kills += 1;
        shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    }
    let killed_during_write = !done.load(Ordering::SeqCst);
    writer.join().unwrap();
    assert!(killed_during_write, "the writer finished before the 20th kill");

    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(240), |r| {
        shipper.assert_running();
        distinct_lines(r) >= LINES as usize
    });
    let report = check(&records, &[("app", LINES)]);
    eprintln!(
        "after {KILLS} kill -9: records {}, re-sent {} (bound {}), missing {}",
        records.len(),
        report.resent,
        KILLS * WINDOW,
        report.missing_total
    );
    assert!(
        report.is_complete() && report.errors.is_empty() && report.duplicated == 0,
        "{report:#?}\nshipper log:\n{}",
        shipper.log()
    );
    assert!(
        report.resent <= KILLS * WINDOW,
        "re-sent {} lines, more than {KILLS} crashes x {WINDOW} in flight",
        report.resent
    );
    assert!(
        shipper.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly"
    );
}
