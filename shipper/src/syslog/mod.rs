//! Syslog intake: TCP and UDP listeners that rsyslog's `omfwd` (or
//! `logger -n`) can forward to. Every message becomes one raw-topic record,
//! exactly like a line read from a file.
//!
//! A message's source is its connection (TCP) or its sender (UDP); in its
//! record key (see `logpipe_schemas::raw`):
//! * the path is `syslog/tcp/<peer ip:port>` or `syslog/udp/<peer ip:port>`,
//!   so `[[parser.sources]] path = "syslog/*"` can pick a syslog format;
//! * the host is this shipper's host name, like for files (the sender's
//!   host name is inside the message, where the parser finds it);
//! * the fingerprint identifies the stream: a hash of the source and of
//!   when this shipper first heard from it, fresh for every connection;
//! * the offset is the message's sequence number in its stream (not a
//!   byte offset), so (host, fingerprint, offset) still names one message.
//!
//! All of a stream's messages go to one partition (named by the shipper, from
//! the stream's partition key), so one connection's messages keep their
//! order. If the raw topic's partition count was not known when the intake
//! started (Kafka down), librdkafka's partitioner picks from each message's
//! own key, and a stream's messages may spread over partitions.
//!
//! Delivery: syslog has no acknowledgement to the sender, so the shipper is
//! the buffer of last resort. TCP stops reading a connection while the
//! producer's queue is full, which pushes back on the sender through TCP
//! flow control; memory stays at one message plus one read per connection.
//! UDP cannot push back: a datagram that finds the queue full is dropped and
//! counted. A record whose delivery fails is enqueued again, never dropped.
//!
//! On SIGTERM the listeners close (no new connections or datagrams), every
//! connection ships what it has received, and the producer is flushed
//! within `shipper.drain_timeout_secs`.

pub mod framing;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use logpipe_config::{KafkaConfig, SyslogConfig};
use logpipe_core::kafka;
use logpipe_core::shutdown::CancellationToken;
use rdkafka::message::{Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::produce::{self, LineKey};
use framing::{Frame, Framer};

const READ_CHUNK: usize = 64 * 1024;
/// The largest UDP payload.
const DATAGRAM: usize = 65_535;
/// UDP senders remembered at once; past that the table starts over (a sender
/// seen again just gets a new stream id).
const MAX_UDP_PEERS: usize = 4096;
const UDP_RECEIVE_BUFFER: libc::c_int = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Tcp = 0,
    Udp = 1,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Tcp => "tcp",
            Listener::Udp => "udp",
        }
    }
    fn from_opaque(o: usize) -> Self {
        if o == 1 {
            Listener::Udp
        } else {
            Listener::Tcp
        }
    }
}

/// Re-sends what failed; counts what was acknowledged.
struct Context {
    retry: crossbeam_channel::Sender<Retry>,
}

struct Retry {
    listener: Listener,
    partition: i32,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let listener = Listener::from_opaque(opaque);
        match result {
            Ok(_) => {
                metrics::counter!("logpipe_shipper_syslog_messages_total", "listener" => listener.name(), "outcome" => "acked")
                    .increment(1);
                metrics::counter!("logpipe_events_total", "stage" => "ship", "outcome" => "acked").increment(1);
            }
            Err((e, msg)) => {
                tracing::warn!(error = %e, listener = listener.name(), "syslog delivery failed; sending the message again");
                metrics::counter!("logpipe_shipper_syslog_messages_total", "listener" => listener.name(), "outcome" => "failed")
                    .increment(1);
                let _ = self.retry.send(Retry {
                    listener,
                    partition: msg.partition(),
                    key: msg.key().unwrap_or_default().to_vec(),
                    payload: msg.payload().unwrap_or_default().to_vec(),
                    headers: msg.headers().map(|h| h.detach()),
                });
            }
        }
    }
}

type SyslogProducer = ThreadedProducer<Context>;

/// One stream of messages: a TCP connection, or a UDP sender.
struct Stream {
    /// The record key up to the sequence number.
    key: LineKey,
    partition: Option<i32>,
    seq: u64,
}

/// Makes every stream id unique within a process, even for two connections
/// from one peer in the same nanosecond.
static STREAMS: AtomicU64 = AtomicU64::new(0);

/// Open TCP connections, published every second (idle gauges expire, see
/// `crate::IDLE_GAUGES`).
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

impl Stream {
    fn new(host: &str, listener: Listener, peer: SocketAddr, partitions: Option<i32>) -> Stream {
        let source = format!("syslog/{}/{peer}", listener.name());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = STREAMS.fetch_add(1, Ordering::Relaxed);
        let fp =
            xxhash_rust::xxh3::xxh3_64(format!("{host}\0{source}\0{nanos}\0{n}\0{}", std::process::id()).as_bytes());
        Stream {
            key: LineKey::new(host, fp, &source),
            partition: partitions.map(|n| produce::source_partition(host, fp, n)),
            seq: 0,
        }
    }
}

struct Shared {
    producer: SyslogProducer,
    topic: String,
    /// The raw topic's partition count when the intake started.
    partitions: Option<i32>,
    host: String,
    max_message: usize,
    stop: CancellationToken,
    /// Once the drain has run this long, a TCP message still waiting for
    /// queue space is given up (and counted), so the shipper can exit.
    drain: Duration,
}

impl Shared {
    fn record<'a>(
        &'a self,
        stream: &'a mut Stream,
        listener: Listener,
        frame: &'a Frame,
    ) -> BaseRecord<'a, [u8], [u8], usize> {
        let mut record = BaseRecord::with_opaque_to(&self.topic, listener as usize)
            .key(stream.key.at(stream.seq))
            .payload(&frame.bytes[..]);
        if let Some(p) = stream.partition {
            record = record.partition(p);
        }
        if let Some(h) = produce::line_headers(frame.truncated) {
            record = record.headers(h);
        }
        record
    }
}

fn count(listener: Listener, outcome: &'static str) {
    metrics::counter!("logpipe_shipper_syslog_messages_total", "listener" => listener.name(), "outcome" => outcome)
        .increment(1);
}

/// A running intake; [`join`](Self::join) waits for its drain.
pub struct Intake {
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    pub tcp_addr: Option<SocketAddr>,
    pub udp_addr: Option<SocketAddr>,
}

impl Intake {
    pub fn join(self) -> anyhow::Result<()> {
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the syslog thread panicked"))?
    }
}

/// Whether any listener is configured.
pub fn enabled(cfg: &SyslogConfig) -> bool {
    cfg.tcp_listen.is_some() || cfg.udp_listen.is_some()
}

/// Binds the listeners (so a taken port fails the start, naming the key) and
/// runs them on their own thread until `stop`, then drains.
pub fn spawn(
    cfg: &SyslogConfig,
    kafka_cfg: &KafkaConfig,
    host: &str,
    drain: Duration,
    stop: CancellationToken,
) -> anyhow::Result<Intake> {
    let tcp = match &cfg.tcp_listen {
        Some(a) => {
            Some(std::net::TcpListener::bind(a).with_context(|| format!("binding shipper.syslog.tcp_listen `{a}`"))?)
        }
        None => None,
    };
    let udp = match &cfg.udp_listen {
        Some(a) => {
            Some(std::net::UdpSocket::bind(a).with_context(|| format!("binding shipper.syslog.udp_listen `{a}`"))?)
        }
        None => None,
    };
    let tcp_addr = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
    let udp_addr = udp.as_ref().map(|s| s.local_addr()).transpose()?;
    let (retry_tx, retry_rx) = crossbeam_channel::unbounded();
    let producer: SyslogProducer = kafka::producer_config(kafka_cfg)
        .create_with_context(Context { retry: retry_tx })
        .context("creating the syslog Kafka producer")?;
    let partitions = kafka::warm_up(producer.client(), &kafka_cfg.raw_topic, Duration::from_secs(2));
    let shared = Arc::new(Shared {
        producer,
        topic: kafka_cfg.raw_topic.clone(),
        partitions,
        host: host.to_string(),
        max_message: cfg.max_message_bytes,
        stop,
        drain,
    });
    let max_connections = cfg.max_connections;
    let thread = std::thread::Builder::new().name("syslog".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(serve(shared, tcp, udp, max_connections, retry_rx))
    })?;
    if let Some(a) = tcp_addr {
        tracing::info!(addr = %a, "syslog: listening on TCP");
    }
    if let Some(a) = udp_addr {
        tracing::info!(addr = %a, "syslog: listening on UDP");
    }
    Ok(Intake {
        thread,
        tcp_addr,
        udp_addr,
    })
}

async fn serve(
    shared: Arc<Shared>,
    tcp: Option<std::net::TcpListener>,
    udp: Option<std::net::UdpSocket>,
    max_connections: usize,
    retry_rx: crossbeam_channel::Receiver<Retry>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = tcp {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        tasks.spawn(accept(l, shared.clone(), max_connections));
    }
    if let Some(s) = udp {
        s.set_nonblocking(true)?;
        widen_receive_buffer(&s);
        let s = tokio::net::UdpSocket::from_std(s)?;
        tasks.spawn(receive(s, shared.clone()));
    }
    let resend = tokio::spawn(resend(shared.clone(), retry_rx));
    let gauges = tokio::spawn(async {
        loop {
            metrics::gauge!("logpipe_shipper_syslog_connections").set(CONNECTIONS.load(Ordering::Relaxed) as f64);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    while tasks.join_next().await.is_some() {}
    tracing::info!("syslog: listeners closed; flushing the producer");
    let s = shared.clone();
    let flushed = tokio::task::spawn_blocking(move || s.producer.flush(s.drain)).await?;
    resend.abort();
    gauges.abort();
    if let Err(e) = flushed {
        tracing::warn!(error = %e, "syslog: not everything was acknowledged before the drain deadline");
    }
    tracing::info!("syslog intake stopped");
    Ok(())
}

/// Accepts connections while fewer than `max` are open; each is served by its own task.
async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>, max: usize) {
    let permits = Arc::new(Semaphore::new(max));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = shared.stop.cancelled() => break,
        };
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause, do not spin.
                    tracing::warn!(error = %e, "syslog: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shared.stop.cancelled() => break,
        };
        let s = shared.clone();
        conns.spawn(async move {
            CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            connection(sock, peer, &s).await;
            CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(mut sock: tokio::net::TcpStream, peer: SocketAddr, shared: &Shared) {
    tracing::debug!(%peer, "syslog: connection opened");
    let mut stream = Stream::new(&shared.host, Listener::Tcp, peer, shared.partitions);
    let mut framer = Framer::new(shared.max_message);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = tokio::select! {
            r = sock.read(&mut buf) => r,
            _ = shared.stop.cancelled() => break,
        };
        match n {
            Ok(0) => break,
            Ok(n) => framer.push(&buf[..n]),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "syslog: read failed; closing the connection");
                break;
            }
        }
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => ship_tcp(shared, &mut stream, &frame).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "syslog: framing error");
                    metrics::counter!("logpipe_shipper_syslog_errors_total", "listener" => "tcp", "reason" => "bad_octet_count")
                        .increment(1);
                }
            }
        }
    }
    if let Some(frame) = framer.finish() {
        ship_tcp(shared, &mut stream, &frame).await;
    }
    tracing::debug!(%peer, messages = stream.seq, "syslog: connection closed");
}

/// Enqueues one TCP message, waiting for queue space (which stops this
/// connection's reading: backpressure to the sender).
async fn ship_tcp(shared: &Shared, stream: &mut Stream, frame: &Frame) {
    count(Listener::Tcp, "received");
    let mut stopping_since: Option<Instant> = None;
    loop {
        let record = shared.record(stream, Listener::Tcp, frame);
        match shared.producer.send(record) {
            Ok(()) => break,
            Err((e, _)) => {
                let full = matches!(
                    e,
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                );
                if !full {
                    tracing::error!(error = %e, "syslog: cannot enqueue to Kafka; retrying in 1s");
                }
                if shared.stop.is_cancelled()
                    && stopping_since.get_or_insert_with(Instant::now).elapsed() >= shared.drain
                {
                    tracing::error!(
                        "syslog: drain deadline passed with the Kafka queue still full; a received message is lost"
                    );
                    count(Listener::Tcp, "dropped");
                    stream.seq += 1;
                    return;
                }
                let wait = if full { 5 } else { 1000 };
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
    }
    stream.seq += 1;
    count(Listener::Tcp, "sent");
    metrics::counter!("logpipe_events_total", "stage" => "ship", "outcome" => "read").increment(1);
    if frame.truncated.is_some() {
        count(Listener::Tcp, "truncated");
    }
}

async fn receive(sock: tokio::net::UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; DATAGRAM];
    let mut peers: HashMap<SocketAddr, Stream> = HashMap::new();
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog: UDP receive failed");
                    continue;
                }
            },
            _ = shared.stop.cancelled() => break,
        };
        count(Listener::Udp, "received");
        // A trailing newline some senders add is framing, not message.
        let mut msg = &buf[..n];
        if let Some(m) = msg.strip_suffix(b"\n") {
            msg = m;
        }
        let frame = Frame {
            bytes: msg[..msg.len().min(shared.max_message)].to_vec(),
            truncated: (msg.len() > shared.max_message).then_some(msg.len() as u64),
        };
        if peers.len() >= MAX_UDP_PEERS && !peers.contains_key(&peer) {
            peers.clear();
        }
        let stream = peers
            .entry(peer)
            .or_insert_with(|| Stream::new(&shared.host, Listener::Udp, peer, shared.partitions));
        let record = shared.record(stream, Listener::Udp, &frame);
        let sent = shared.producer.send(record).map_err(|(e, _)| e);
        stream.seq += 1;
        match sent {
            Ok(()) => {
                count(Listener::Udp, "sent");
                metrics::counter!("logpipe_events_total", "stage" => "ship", "outcome" => "read").increment(1);
                if frame.truncated.is_some() {
                    count(Listener::Udp, "truncated");
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "syslog: UDP message dropped");
                count(Listener::Udp, "dropped");
            }
        }
    }
}

/// Asks for a 4 MiB socket receive buffer (the kernel caps it at
/// `net.core.rmem_max`): UDP cannot push back, so the kernel buffer is all
/// that absorbs a sender's burst while the shipper is busy.
fn widen_receive_buffer(s: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = UDP_RECEIVE_BUFFER;
    // SAFETY: a plain setsockopt on a socket we own, with a correctly sized value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "syslog: cannot widen the UDP receive buffer");
    }
}

/// Enqueues failed deliveries again, oldest first.
async fn resend(shared: Arc<Shared>, rx: crossbeam_channel::Receiver<Retry>) {
    loop {
        let Ok(r) = rx.try_recv() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut headers = r.headers;
        loop {
            let mut record = BaseRecord::with_opaque_to(&shared.topic, r.listener as usize)
                .key(&r.key[..])
                .payload(&r.payload[..]);
            if r.partition >= 0 {
                record = record.partition(r.partition);
            }
            if let Some(h) = headers.take() {
                record = record.headers(h);
            }
            match shared.producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    headers = back.headers;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
