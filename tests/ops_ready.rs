//! `/ready` follows the hard dependencies: a daemon whose Kafka stops
//! answering turns not ready (with the reason) while `/health` stays up, and
//! turns ready again when Kafka is back; SIGTERM still drains it to exit 0.

mod services;

use std::time::Duration;

use services::{signal, wait_for, Daemon, Services, Setup};

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?;
    Some((r.status().as_u16(), r.text().unwrap_or_default()))
}

#[test]
fn ready_follows_kafka_and_health_does_not() {
    let services = Services::start();
    let Some(broker_pid) = services.pid() else {
        eprintln!("against a real cluster the broker cannot be paused; skipping");
        return;
    };
    let setup = Setup::new(&services, "");
    let mut parser = Daemon::start("parse", &setup.config, setup.dir.path());
    let mut addr = None;
    assert!(
        wait_for(Duration::from_secs(30), || {
            addr = parser.ops_addr();
            addr.as_deref()
                .and_then(|a| get(a, "/ready"))
                .is_some_and(|(s, _)| s == 200)
        }),
        "parser never became ready:\n{}",
        parser.log()
    );
    let addr = addr.unwrap();

    signal(broker_pid, "STOP");
    let mut body = String::new();
    let went_down = wait_for(Duration::from_secs(30), || {
        get(&addr, "/ready").is_some_and(|(s, b)| {
            body = b;
            s == 503
        })
    });
    let health = get(&addr, "/health");
    signal(broker_pid, "CONT");
    assert!(went_down, "/ready stayed 200 with the broker stopped");
    assert!(
        body.contains("kafka.brokers"),
        "the reason should name the setting: {body}"
    );
    assert_eq!(health.map(|h| h.0), Some(200), "/health is liveness only");

    assert!(
        wait_for(Duration::from_secs(30), || get(&addr, "/ready")
            .is_some_and(|(s, _)| s == 200)),
        "/ready did not come back after the broker resumed"
    );
    parser.assert_running();
    assert!(
        parser.terminate(Duration::from_secs(40)),
        "parser did not drain to exit 0:\n{}",
        parser.log()
    );
}
