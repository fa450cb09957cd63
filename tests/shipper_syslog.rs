//! Syslog intake: real rsyslog forwarding over TCP (both framings) and UDP,
//! and the TCP listener's backpressure and SIGTERM drain with the broker
//! stopped.

mod services;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use services::shipper::{consume_until, line, parse_line, LineWriter, Pace, RawRecord, ShipSetup};
use services::syslog::Rsyslog;
use services::{free_port, signal, wait_for, Daemon, Services};

/// Starts a shipper whose `[shipper.syslog]` listens on a free port (TCP and UDP).
fn shipper(services: &Services, kafka_tail: &str) -> (ShipSetup, Daemon, u16) {
    let port = free_port();
    let tail =
        format!("[shipper.syslog]\ntcp_listen = \"127.0.0.1:{port}\"\nudp_listen = \"127.0.0.1:{port}\"\n{kafka_tail}");
    let setup = ShipSetup::with_kafka(&services.kafka, &["*.log"], "", &tail);
    let mut d = Daemon::start("ship", &setup.config, setup.dir.path());
    assert!(
        wait_for(Duration::from_secs(20), || {
            d.assert_running();
            d.log().contains("syslog: listening on UDP") && d.ops_addr().is_some()
        }),
        "the shipper did not start listening:\n{}",
        d.log()
    );
    (setup, d, port)
}

/// The value of one `/metrics` series whose line contains every one of `labels`.
fn metric(d: &Daemon, name: &str, labels: &[&str]) -> f64 {
    let body = reqwest::blocking::get(format!("http://{}/metrics", d.ops_addr().unwrap()))
        .and_then(|r| r.text())
        .unwrap_or_default();
    body.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What rsyslog's templates put before the line, per forwarding action.
fn prefix(kind: &str) -> String {
    format!("<13>1 2026-11-23T08:00:00Z test-host {kind} - - - ")
}

const KINDS: [&str; 3] = ["octet", "trad", "udp"];

#[test]
fn rsyslog_forwards_over_tcp_in_both_framings_and_udp_and_every_message_arrives() {
    const LINES: u64 = 3000;
    let services = Services::start();
    let (setup, mut ship, port) = shipper(&services, "");

    let rs_dir = setup.dir.path().join("rsyslog");
    let input = rs_dir.join("in.log");
    let mut templates = String::new();
    for kind in KINDS {
        templates.push_str(&format!(
            "template(name=\"{kind}\" type=\"string\" string=\"{}%msg%\")\n",
            prefix(kind)
        ));
    }
    // Disk-less queues that retry for ever: no message is given up while
    // the shipper is reachable.
    let queue = "queue.type=\"LinkedList\" action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\"";
    let config = format!(
        r#"global(workDirectory="@DIR@")
module(load="imfile" mode="inotify")
input(type="imfile" File="{input}" Tag="app" ruleset="fwd")
{templates}
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted" template="octet" {queue})
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="traditional" template="trad" {queue})
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp" template="udp" {queue})
}}
"#,
        input = input.display()
    );
    std::fs::create_dir_all(&rs_dir).unwrap();
    let mut w = LineWriter::create(&input);
    let rsyslog = Rsyslog::start(&rs_dir, &config);

    // Paced, so UDP (which cannot push back) is not asked to absorb a burst
    // larger than the kernel's socket buffer.
    let pace = Pace::new(1000);
    for i in 0..LINES {
        w.push(&line("app", i));
        if i % 10 == 9 {
            w.flush();
            pace.wait(i + 1);
        }
    }
    w.flush();

    let total = LINES as usize * KINDS.len();
    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(120), |r| {
        ship.assert_running();
        r.len() >= total
    });
    let by_kind = split(&records);
    for kind in KINDS {
        let got = by_kind.get(kind).map(Vec::as_slice).unwrap_or_default();
        let mut seqs = HashMap::new();
        for r in got {
            let body = &r.value[prefix(kind).len()..];
            let (stream, seq) = parse_line(body).expect("a test line");
            assert_eq!(stream, "app");
            assert_eq!(body, line("app", seq).as_bytes(), "{kind}: message changed on the way");
            *seqs.entry(seq).or_insert(0) += 1;
        }
        let missing: Vec<u64> = (0..LINES).filter(|s| !seqs.contains_key(s)).take(10).collect();
        let dup = seqs.values().filter(|&&n| n > 1).count();
        assert!(
            missing.is_empty() && dup == 0 && got.len() == LINES as usize,
            "{kind}: {} records, missing {missing:?}, {dup} duplicated\nrsyslog: {}\nshipper: {}",
            got.len(),
            rsyslog.output(),
            ship.log()
        );
        let listener = if kind == "udp" { "udp" } else { "tcp" };
        assert!(got
            .iter()
            .all(|r| r.path.starts_with(&format!("syslog/{listener}/127.0.0.1:"))));
        // Sequence numbers are the stream's offsets: strictly increasing per stream.
        let mut last: HashMap<&str, u64> = HashMap::new();
        for r in got {
            if let Some(prev) = last.insert(&r.fingerprint, r.offset) {
                assert!(r.offset > prev, "{kind}: out of order in stream {}", r.fingerprint);
            }
        }
    }
    assert_eq!(
        by_kind.values().map(Vec::len).sum::<usize>(),
        records.len(),
        "records not from rsyslog"
    );

    let acked = |l: &str| {
        metric(
            &ship,
            "logpipe_shipper_syslog_messages_total",
            &[l, "outcome=\"acked\""],
        )
    };
    assert!(
        wait_for(Duration::from_secs(10), || acked("listener=\"tcp\"")
            >= 2.0 * LINES as f64
            && acked("listener=\"udp\"") >= LINES as f64),
        "acks not counted"
    );
    assert_eq!(
        metric(&ship, "logpipe_shipper_syslog_messages_total", &["outcome=\"dropped\""]),
        0.0
    );
    drop(rsyslog);
    assert!(
        ship.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly:\n{}",
        ship.log()
    );
}

/// Records per rsyslog action, told apart by the template's app name.
fn split(records: &[RawRecord]) -> HashMap<&'static str, Vec<&RawRecord>> {
    let mut out: HashMap<&str, Vec<&RawRecord>> = HashMap::new();
    for r in records {
        if let Some(kind) = KINDS.iter().find(|k| r.value.starts_with(prefix(k).as_bytes())) {
            out.entry(kind).or_default().push(r);
        }
    }
    out
}

/// Message `i` of the TCP client: some contain newlines, which only octet
/// counting carries.
const CLIENT: &str = "<13>1 2026-11-23T08:00:00Z test-host client - - - ";

fn message(i: u64) -> Vec<u8> {
    let mut m = CLIENT.as_bytes().to_vec();
    m.extend_from_slice(line("tcp", i).as_bytes());
    if i.is_multiple_of(10) {
        m.extend_from_slice(b"\n\tat continuation line");
    }
    m
}

fn octet_counted(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
    out.extend_from_slice(msg);
}

#[test]
fn tcp_pushes_back_while_kafka_is_stopped_and_sigterm_drains_what_was_received() {
    const FIRST: u64 = 100_000;
    const LAST: u64 = 1_000;
    const QUEUE: f64 = 2000.0;
    let services = Services::start();
    let Some(broker) = services.pid() else {
        eprintln!("skipped: the broker is external (LOGPIPE_TEST_KAFKA)");
        return;
    };
    let (setup, mut ship, port) = shipper(
        &services,
        "[kafka.options]\n\"queue.buffering.max.messages\" = \"2000\"\n",
    );
    let sent = |d: &Daemon| {
        metric(
            d,
            "logpipe_shipper_syslog_messages_total",
            &["listener=\"tcp\"", "outcome=\"sent\""],
        )
    };

    // 1. Broker stopped: the shipper takes no more than its queue holds, and
    //    the sender blocks instead of the shipper buffering without bound.
    signal(broker, "STOP");
    let client = std::thread::spawn(move || {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = Vec::new();
        for i in 0..FIRST {
            octet_counted(&mut buf, &message(i));
            if buf.len() > 64 * 1024 {
                sock.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        sock.write_all(&buf).unwrap();
        sock
    });
    let mut last = -1.0;
    assert!(
        wait_for(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_secs(1));
            let now = sent(&ship);
            let settled = now == last && now > 0.0;
            last = now;
            settled
        }),
        "the shipper kept enqueueing"
    );
    eprintln!("broker stopped: {last} messages enqueued, then reading paused");
    assert!(last <= QUEUE, "{last} messages enqueued with a queue of {QUEUE}");
    assert!(!client.is_finished(), "the sender was never pushed back");
    ship.assert_running();

    // 2. Broker back: everything arrives.
    signal(broker, "CONT");
    let mut sock = client.join().unwrap();
    eprintln!("sender done; {} sent", sent(&ship));
    assert!(
        wait_for(Duration::from_secs(120), || sent(&ship) >= FIRST as f64),
        "only {} of {FIRST} sent",
        sent(&ship)
    );

    // 3. Broker stopped again, more messages read, then SIGTERM: the drain
    //    waits for the broker and delivers them before exiting.
    signal(broker, "STOP");
    let mut buf = Vec::new();
    for i in FIRST..FIRST + LAST {
        octet_counted(&mut buf, &message(i));
    }
    sock.write_all(&buf).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || sent(&ship) >= (FIRST + LAST) as f64),
        "the last messages were not read"
    );
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        signal(broker, "CONT");
    });
    assert!(
        ship.terminate(Duration::from_secs(60)),
        "shipper did not drain cleanly:\n{}",
        ship.log()
    );
    resume.join().unwrap();
    drop(sock);

    let total = (FIRST + LAST) as usize;
    let records = consume_until(&setup.kafka, &setup.topic, Duration::from_secs(120), |r| {
        r.len() >= total
    });
    let mut seen = vec![0u32; total];
    let start = Instant::now();
    for r in &records {
        let i = parse_line(&r.value[CLIENT.len()..])
            .map(|(_, s)| s)
            .expect("a test message");
        assert_eq!(r.value, message(i), "message {i} changed on the way");
        assert_eq!(r.offset, i, "the stream offset is the message's sequence number");
        seen[i as usize] += 1;
    }
    let missing: Vec<usize> = (0..total).filter(|&i| seen[i] == 0).take(10).collect();
    assert!(
        missing.is_empty() && records.len() == total,
        "{} records, missing {missing:?} (checked in {:?})",
        records.len(),
        start.elapsed()
    );
}
