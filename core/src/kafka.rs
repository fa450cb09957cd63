//! librdkafka settings, built from the typed config in one place so that every
//! stage produces and consumes the same way.

use std::time::Duration;

use anyhow::Context;
use logpipe_config::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// Producer settings: idempotent, `acks=all`, and no message timeout, so a
/// broker outage makes the producer wait (and its queue fill, which stops the
/// stage reading) instead of failing deliveries.
pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.codec", k.compression.as_librdkafka())
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", "0");
    apply_options(&mut c, k);
    c
}

/// Asks twice for `topic`'s metadata right after a producer was created, so
/// that an idempotent producer gets its producer id at once. librdkafka
/// requests the id when a metadata response arrives on a broker connection
/// that is up, or when a 500 ms retry timer fires, and holds every record
/// until then. Its first attempt runs before any connection is up; the first
/// answer comes from the bootstrap connection, which librdkafka closes as soon
/// as it learns the brokers, so only the second, from a real broker, lets it
/// ask. A broker that is down is not an error here: the producer retries.
///
/// Returns the topic's partition count, when the broker told it.
pub fn warm_up<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
) -> Option<i32> {
    let mut partitions = None;
    for _ in 0..2 {
        match client.fetch_metadata(Some(topic), timeout) {
            Ok(m) => {
                partitions = m
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().len() as i32)
                    .filter(|n| *n > 0);
            }
            Err(e) => {
                tracing::debug!(error = %e, topic, "no metadata at start-up; the producer will retry");
                break;
            }
        }
    }
    partitions
}

/// Consumer settings for at-least-once with our own acknowledgement order:
/// librdkafka commits in the background, but only offsets we *stored*, and we
/// store an offset only once everything before it was acknowledged downstream.
pub fn consumer_config(k: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Kafka's own default since 3.0 (librdkafka's too). A shorter one
        // (10 s) dropped every member of the burst bench's groups at once when
        // the stand-in stopped answering heartbeats for 10 s while it built one
        // huge fetch answer, and their rejoin then stalled for minutes.
        .set("session.timeout.ms", "45000")
        .set("max.poll.interval.ms", "300000")
        // Real brokers keep a fetch response under fetch.max.bytes (50 MB by
        // default); the noida-db stand-in does not, and answers a consumer
        // that fell behind with hundreds of MB at once, which librdkafka
        // rejects ("Invalid response size") and retries forever. Accept them.
        .set("receive.message.max.bytes", "1000000000");
    apply_options(&mut c, k);
    c
}

/// Settings of a plain client (admin, health checks): the brokers and the
/// user's librdkafka options (TLS, SASL), nothing else.
pub fn client_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    apply_options(&mut c, k);
    c
}

fn apply_options(c: &mut ClientConfig, k: &KafkaConfig) {
    for (key, value) in &k.options {
        c.set(key, value);
    }
}

/// Creates the topics that do not exist yet, with `k.partitions` partitions.
/// Topics that exist are left exactly as they are.
pub async fn ensure_topics(k: &KafkaConfig, topics: &[&str]) -> anyhow::Result<()> {
    let cfg = client_config(k);
    let admin: AdminClient<DefaultClientContext> = cfg.create().context("creating the Kafka admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, k.partitions, TopicReplication::Fixed(-1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .with_context(|| format!("creating topics on kafka.brokers `{}`", k.brokers))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic `{topic}`: {code}"),
        }
    }
    Ok(())
}

/// Stores, for the background commit, every partition position the
/// acknowledgements moved since the last call.
pub fn store_acked<C: rdkafka::consumer::Consumer<Ctx>, Ctx: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    acks: &mut crate::ack::PartitionAcks,
) {
    let advanced = acks.take_advanced();
    if advanced.is_empty() {
        return;
    }
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (topic, partition, pos) in &advanced {
        let _ = tpl.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*pos as i64));
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // After a rebalance the partition may no longer be ours; its new owner
        // resumes from the last commit, which is safe.
        tracing::debug!(error = %e, "storing offsets");
    }
}

/// The last, synchronous commit of a drain. "Nothing stored" is not an error.
pub fn final_commit<C: rdkafka::consumer::Consumer<Ctx>, Ctx: rdkafka::consumer::ConsumerContext>(consumer: &C) {
    use rdkafka::error::KafkaError;
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, "final commit failed"),
    }
}
