//! The indexer against real noida-db (Kafka + Elasticsearch), with the fault
//! proxy of `services::indexer` where a fault is needed: no document lost,
//! none duplicated, rejections dead-lettered with Elasticsearch's reason.

mod services;

use std::time::{Duration, Instant};

use services::indexer::{distinct_ids, doc_body, produce_docs, produce_single_docs, rss_kib, FaultProxy, Mode};
use services::{wait_for, Daemon, Es, Services, Setup};

/// Points the setup's config at `url` instead of the stand-in's Elasticsearch.
fn via(setup: &Setup, services: &Services, url: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(&setup.config, text.replace(&services.es, url)).unwrap();
}

/// Adds `line` to the `[indexer]` section of the setup's config.
fn indexer_key(setup: &Setup, line: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let text = text.replacen("[indexer]\n", &format!("[indexer]\n{line}\n"), 1);
    std::fs::write(&setup.config, text).unwrap();
}

fn start_indexer(setup: &Setup) -> Daemon {
    let mut d = Daemon::start("index", &setup.config, setup.dir.path());
    let up = wait_for(Duration::from_secs(60), || {
        d.assert_running();
        d.log().contains("indexer consuming")
    });
    assert!(up, "indexer did not start:\n{}", d.log());
    d
}

fn wait_count(es: &Es, index: &str, n: u64, within: Duration, d: &mut Daemon) -> u64 {
    wait_for(within, || {
        d.assert_running();
        es.count(index) >= n
    });
    es.count(index)
}

#[test]
fn a_type_conflict_is_dead_lettered_with_the_reason_and_the_rest_indexed() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;

    let services = Services::start();
    let setup = Setup::new(&services, "");
    // Through the proxy in pass mode, to see what reaches the server.
    let proxy = FaultProxy::start(&services.es);
    via(&setup, &services, &proxy.url);
    let mut indexer = start_indexer(&setup);
    const N: usize = 1000;
    const BAD: usize = 417;
    // `log.offset` is a `long` in the template.
    produce_docs(&services.kafka, &setup.parsed_topic, 0..N, |i| {
        if i == BAD {
            r#"{"@timestamp":"2026-11-22T10:00:00Z","message":"bad","log":{"offset":"not a number"}}"#.to_string()
        } else {
            doc_body(i)
        }
    });
    // A batch record whose header promises two documents but holds one: it
    // is dead-lettered whole, with the reason.
    let mut broken = Vec::new();
    logpipe_schemas::parsed::push_doc(&mut broken, b"doc-broken", |o| {
        o.extend_from_slice(doc_body(N).as_bytes())
    });
    let producer = services::indexer::test_producer(&services.kafka);
    services::indexer::send_waiting(
        &producer,
        &setup.parsed_topic,
        None,
        &broken,
        Some((logpipe_schemas::parsed::HEADER_DOCS, "2")),
    );
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    let es = Es::new(&services.es);
    let index = setup.index_glob();
    let got = wait_count(&es, &index, (N - 1) as u64, Duration::from_secs(60), &mut indexer);
    assert_eq!(got, (N - 1) as u64, "{}", indexer.log());

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&setup.dlq_topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut letters = Vec::new();
    while Instant::now() < deadline && letters.len() < 2 {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "logpipe.dlq.reason"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            letters.push((m.key().map(|k| k.to_vec()), reason));
        }
    }
    assert_eq!(letters.len(), 2, "{}", indexer.log());
    let conflict = letters
        .iter()
        .find(|l| l.0.as_deref() == Some(format!("doc-{BAD}").as_bytes()))
        .unwrap_or_else(|| panic!("no dead letter for doc-{BAD}: {letters:?}"));
    let reason = conflict.1.clone().expect("a reason header");
    assert!(reason.starts_with("400 ") && reason.contains("log.offset"), "{reason}");
    let broken = letters.iter().find(|l| l.0 != conflict.0).unwrap();
    let reason = broken.1.clone().expect("a reason header");
    assert!(
        reason.contains("malformed parsed batch") && reason.contains("header says 2"),
        "{reason}"
    );
    assert!(
        proxy.gzip_requests.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "bulk bodies reach the server gzip-compressed"
    );
    assert!(indexer.terminate(Duration::from_secs(30)));
}

#[test]
fn a_429_storm_of_30_s_loses_nothing_and_memory_stays_bounded() {
    let services = Services::start();
    let setup = Setup::new(&services, "");
    indexer_key(&setup, "batch_max_events = 2000");
    let proxy = FaultProxy::start(&services.es);
    via(&setup, &services, &proxy.url);
    let mut indexer = start_indexer(&setup);
    let rss_before = rss_kib(indexer.pid());
    proxy.set(Mode::TooMany);
    const N: usize = 50_000;
    let started = Instant::now();
    produce_docs(&services.kafka, &setup.parsed_topic, 0..N, doc_body);
    let mut max_rss = 0;
    while started.elapsed() < Duration::from_secs(30) {
        indexer.assert_running();
        max_rss = max_rss.max(rss_kib(indexer.pid()));
        std::thread::sleep(Duration::from_millis(200));
    }
    let es = Es::new(&services.es);
    let index = setup.index_glob();
    assert_eq!(es.count(&index), 0, "nothing passes a 429 storm");
    proxy.set(Mode::Pass);
    let got = wait_count(&es, &index, N as u64, Duration::from_secs(240), &mut indexer);
    assert_eq!(got, N as u64, "{}", indexer.log());
    // 50,000 documents are ~15 MB of JSON; the indexer holds at most
    // max_in_flight + 1 batches of 2,000 plus librdkafka's prefetch.
    assert!(
        max_rss < rss_before + 150 * 1024,
        "RSS grew from {rss_before} KiB to {max_rss} KiB during the storm"
    );
    assert!(indexer.terminate(Duration::from_secs(30)));
}

#[test]
fn elasticsearch_stopped_for_30_s_loses_nothing() {
    let services = Services::start();
    let setup = Setup::new(&services, "");
    let mut indexer = start_indexer(&setup);
    const N: usize = 20_000;
    // One document per record (older parsers, other producers) and batch
    // records (the parser's) in the same topic.
    produce_single_docs(&services.kafka, &setup.parsed_topic, 0..N / 2, doc_body);
    let es = Es::new(&services.es);
    let index = setup.index_glob();
    wait_for(Duration::from_secs(60), || es.count(&index) > 0);
    services.stop_elasticsearch();
    produce_docs(&services.kafka, &setup.parsed_topic, N / 2..N, doc_body);
    std::thread::sleep(Duration::from_secs(30));
    indexer.assert_running();
    services.start_elasticsearch();
    let got = wait_count(&es, &index, N as u64, Duration::from_secs(120), &mut indexer);
    assert_eq!(got, N as u64, "{}", indexer.log());
    assert_eq!(distinct_ids(&es, &index).len(), N);
    assert!(indexer.terminate(Duration::from_secs(30)));
}

#[test]
fn kill_9_during_bulk_writes_then_restart_gives_each_document_once() {
    let services = Services::start();
    let setup = Setup::new(&services, "");
    indexer_key(&setup, "batch_max_events = 500");
    // Static membership: the restarted indexer takes over the killed one's
    // partitions at once instead of waiting for its session to expire (the
    // stand-in's coordinator never completes that rebalance).
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        format!("{text}\n[kafka.options]\n\"group.instance.id\" = \"indexer-1\"\n"),
    )
    .unwrap();
    let mut indexer = start_indexer(&setup);
    const N: usize = 50_000;
    produce_docs(&services.kafka, &setup.parsed_topic, 0..N, doc_body);
    let es = Es::new(&services.es);
    let index = setup.index_glob();
    let midway = wait_for(Duration::from_secs(120), || {
        let c = es.count(&index);
        c > 5_000 && c < N as u64
    });
    assert!(midway, "did not catch the indexer mid-way: {}", es.count(&index));
    indexer.kill9();
    let at_kill = es.count(&index);
    let mut indexer = start_indexer(&setup);
    let got = wait_count(&es, &index, N as u64, Duration::from_secs(180), &mut indexer);
    std::thread::sleep(Duration::from_secs(2));
    assert!(at_kill < N as u64);
    assert_eq!(got, N as u64, "{}", indexer.log());
    assert_eq!(es.count(&index), N as u64);
    assert_eq!(distinct_ids(&es, &index).len(), N);
    assert!(indexer.log().contains("indexer consuming"));
    assert!(indexer.terminate(Duration::from_secs(30)));
}

#[test]
fn bad_elasticsearch_settings_fail_with_an_error_naming_the_setting() {
    let services = Services::start();
    // Unreachable URL.
    let setup = Setup::new(&services, "");
    let closed = format!("http://127.0.0.1:{}", services::free_port());
    via(&setup, &services, &closed);
    let d = Daemon::start("index", &setup.config, setup.dir.path());
    let exited = wait_for(Duration::from_secs(60), || d.log().contains("logpipe: "));
    assert!(exited, "{}", d.log());
    let log = d.log();
    assert!(log.contains("elasticsearch.url") && log.contains(&closed), "{log}");

    // Wrong credentials: the stand-in has no security, so the proxy answers
    // as Elasticsearch with security does (401 security_exception).
    let setup = Setup::new(&services, "");
    let proxy = FaultProxy::start(&services.es);
    proxy.set(Mode::Unauthorized);
    via(&setup, &services, &proxy.url);
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("url = \"{}\"", proxy.url),
        &format!(
            "url = \"{}\"\nusername = \"elastic\"\npassword = \"wrong-secret\"",
            proxy.url
        ),
    );
    std::fs::write(&setup.config, text).unwrap();
    let d = Daemon::start("index", &setup.config, setup.dir.path());
    let exited = wait_for(Duration::from_secs(60), || d.log().contains("logpipe: "));
    let log = d.log();
    assert!(exited, "{log}");
    assert!(
        log.contains("elasticsearch.username/password") && log.contains("401"),
        "{log}"
    );
    assert!(!log.contains("wrong-secret"), "the password is never logged: {log}");
}
