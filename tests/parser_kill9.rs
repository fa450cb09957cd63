//! Two `logpipe parse` processes in one consumer group share a 4-partition raw
//! topic; one is killed with SIGKILL mid-stream and restarted. Every raw
//! record must turn up in the parsed or the dead-letter topic, and any
//! duplicate (from the uncommitted window) must carry the same id and bytes.
//!
//! The raw records are written the way kcat or rsyslog's omkafka would: no
//! logpipe headers, so ids come from (topic, partition, offset).

mod services;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use services::{wait_for, Daemon, Services, Setup};

const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 4;

/// Record `i`: RFC 5424, except every 13th, which is malformed.
fn line(i: usize) -> String {
    if i.is_multiple_of(13) {
        format!("not syslog at all #{i}")
    } else {
        format!(
            "<34>1 2026-11-22T10:{:02}:{:02}.{:03}Z host-{} app {} - - message {i}",
            i / 60 % 60,
            i % 60,
            i % 1000,
            i % 5,
            i % 100
        )
    }
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

/// What an output topic held for one key (the document id).
#[derive(Default)]
struct Seen {
    /// key -> every payload seen under it
    by_key: HashMap<String, Vec<Vec<u8>>>,
}

impl Seen {
    /// Polls until `idle` passes without a record.
    fn drain(&mut self, c: &BaseConsumer, idle: Duration) {
        let mut last = Instant::now();
        while last.elapsed() < idle {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    for (key, doc) in services::documents(&m) {
                        self.by_key.entry(key).or_default().push(doc);
                    }
                    last = Instant::now();
                }
                Some(Err(e)) => panic!("reading: {e}"),
                None => {}
            }
        }
    }
}

#[test]
fn two_parsers_one_killed_with_sigkill_lose_nothing() {
    let s = Services::start();
    let setup = Setup::new(&s, "");
    let text = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("partitions = 2", &format!("partitions = {PARTITIONS}"))
        .replace("[parser]\n", "[parser]\nformat = \"rfc5424\"\n");
    // Static group membership, one instance id per parser process: the
    // noida-db stand-in never expires a SIGKILLed member's session, so with
    // plain membership its partitions are never handed out again (seen in
    // this test: exactly the killed parser's half of the records stayed
    // unconsumed). A member restarting under its instance id takes its
    // partitions back at once — on a real broker as well, which also expires
    // the dead session after session.timeout.ms. The README recommends it.
    let config_of = |instance: &str| {
        let path = setup.dir.path().join(format!("{instance}.toml"));
        let with_id = format!("{text}\n[kafka.options]\n\"group.instance.id\" = \"{instance}\"\n");
        std::fs::write(&path, with_id).unwrap();
        path
    };
    let (config_a, config_b) = (config_of("parser-a"), config_of("parser-b"));

    // The first parser creates the topics.
    let mut a = Daemon::start("parse", &config_a, &setup.logs);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &s.kafka)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    // Ask for metadata only once the parser has created the topic: an early
    // request could auto-create it with one partition.
    assert!(
        wait_for(Duration::from_secs(30), || a.log().contains("parser consuming")),
        "parser did not start:\n{}",
        a.log()
    );
    let mut partitions = 0;
    let topic_ready = wait_for(Duration::from_secs(30), || {
        if let Ok(md) = producer
            .client()
            .fetch_metadata(Some(&setup.raw_topic), Duration::from_secs(2))
        {
            partitions = md.topics().first().map_or(0, |t| t.partitions().len() as i32);
        }
        partitions > 0
    });
    assert!(topic_ready, "raw topic not created:\n{}", a.log());
    assert!(partitions >= 2, "a multi-partition raw topic, got {partitions}");
    let mut b = Daemon::start("parse", &config_b, &setup.logs);

    let parsed_reader = reader(&s.kafka, &setup.parsed_topic, partitions);
    let dlq_reader = reader(&s.kafka, &setup.dlq_topic, partitions);
    let (mut parsed, mut dlq) = (Seen::default(), Seen::default());

    // Produce in slices, round-robin over partitions, so the kill lands while
    // records are still arriving.
    let mut killed = false;
    for chunk in 0..20 {
        for i in chunk * RECORDS / 20..(chunk + 1) * RECORDS / 20 {
            let payload = line(i);
            let key = format!("k{}", i % 97);
            let mut rec = BaseRecord::to(&setup.raw_topic)
                .payload(&payload)
                .key(&key)
                .partition((i % partitions as usize) as i32);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(10));
                        rec = r;
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        if chunk == 8 && !killed {
            // Let both parsers be mid-stream, then SIGKILL one and restart it.
            parsed.drain(&parsed_reader, Duration::from_millis(300));
            a.assert_running();
            b.assert_running();
            a.kill9();
            killed = true;
            std::thread::sleep(Duration::from_millis(500));
            a = Daemon::start("parse", &config_a, &setup.logs);
        }
    }

    // The raw topic as written: (partition, offset) -> line.
    let raw_reader = reader(&s.kafka, &setup.raw_topic, partitions);
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while expected.len() < RECORDS && Instant::now() < deadline {
        if let Some(Ok(m)) = raw_reader.poll(Duration::from_millis(100)) {
            let id = logpipe_schemas::id::kafka_record_id(m.topic(), m.partition(), m.offset());
            expected.insert(id, m.payload().unwrap().to_vec());
        }
    }
    assert_eq!(expected.len(), RECORDS, "raw topic holds every record");

    let done = wait_for(Duration::from_secs(180), || {
        parsed.drain(&parsed_reader, Duration::from_millis(500));
        dlq.drain(&dlq_reader, Duration::from_millis(200));
        let keys: HashSet<&String> = parsed.by_key.keys().chain(dlq.by_key.keys()).collect();
        expected.keys().all(|k| keys.contains(k))
    });
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !parsed.by_key.contains_key(*k) && !dlq.by_key.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        done,
        "{} of {RECORDS} records never came out, e.g. {missing:?}\nparser a:\n{}\nparser b:\n{}",
        expected.len() - parsed.by_key.len() - dlq.by_key.len(),
        a.log(),
        b.log()
    );

    // Each record came out exactly where it should, and duplicates are identical.
    let mut dup = 0;
    for (id, line) in &expected {
        let text = String::from_utf8(line.clone()).unwrap();
        let malformed = text.starts_with("not syslog");
        let (here, other) = if malformed { (&dlq, &parsed) } else { (&parsed, &dlq) };
        assert!(!other.by_key.contains_key(id), "{id} ({text}) in the wrong topic");
        let copies = &here.by_key[id];
        assert!(copies.windows(2).all(|w| w[0] == w[1]), "{id}: duplicates differ");
        dup += copies.len() - 1;
        if malformed {
            assert_eq!(&copies[0], line, "the dead letter carries the raw line");
        } else {
            let doc: serde_json::Value = serde_json::from_slice(&copies[0]).unwrap();
            assert_eq!(doc["event"]["original"], text.as_str());
            // No logpipe headers: host.name comes from the syslog HOSTNAME.
            assert_eq!(doc["host"]["name"], doc["log"]["syslog"]["hostname"]);
        }
    }
    let extra: Vec<_> = parsed
        .by_key
        .keys()
        .chain(dlq.by_key.keys())
        .filter(|k| !expected.contains_key(*k))
        .take(3)
        .collect();
    assert!(extra.is_empty(), "documents with ids of no raw record: {extra:?}");
    eprintln!("{RECORDS} records, {dup} re-sent duplicates (identical)");
    assert!(
        a.terminate(Duration::from_secs(30)),
        "restarted parser drains on SIGTERM"
    );
    assert!(
        b.terminate(Duration::from_secs(30)),
        "surviving parser drains on SIGTERM"
    );
}
