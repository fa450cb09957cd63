//! Typed configuration for every logpipe role.
//!
//! One TOML file may hold every section (handy on a single host) or only the
//! sections one role needs; each subcommand asks for what it uses with
//! [`Config::require`]. Every endpoint and secret can be overridden from the
//! environment (see [`load`]), so the same file works against the local
//! stand-ins and against a real cluster.

pub mod archive;
mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use archive::{ArchiveConfig, RotationConfig, RotationPolicy, SpotConfig};
pub use load::{load, load_str, ConfigError, ENV_PREFIX};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub host: HostConfig,
    pub kafka: Option<KafkaConfig>,
    pub elasticsearch: Option<ElasticsearchConfig>,
    pub shipper: Option<ShipperConfig>,
    pub parser: Option<ParserConfig>,
    pub indexer: Option<IndexerConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// `host.name` on every line; defaults to the machine's hostname.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    #[serde(default = "default_raw_topic")]
    pub raw_topic: String,
    #[serde(default = "default_parsed_topic")]
    pub parsed_topic: String,
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Producer compression codec.
    #[serde(default)]
    pub compression: Compression,
    /// Partitions to create a missing topic with (topics that exist are left alone).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Passed to librdkafka as they are, after logpipe's own settings, so any
    /// of them can be overridden (`"linger.ms" = "20"`, `"security.protocol" = "ssl"`).
    /// Numbers and booleans are taken as their text (`"linger.ms" = 20`, or
    /// an environment override, which reads as a number).
    #[serde(default, deserialize_with = "librdkafka_options")]
    pub options: BTreeMap<String, String>,
}

/// librdkafka takes every setting as text; accept TOML's scalars as theirs.
fn librdkafka_options<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string, number or boolean")]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Text(s) => s,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Lz4,
    Zstd,
    Gzip,
    None,
}

impl Compression {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Read the password from this file instead (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// Base64 `id:key` API key, sent as `Authorization: ApiKey …`.
    pub api_key: Option<String>,
    /// Read the API key from this file instead (trailing newline ignored).
    pub api_key_file: Option<PathBuf>,
    /// PEM file of a CA to trust in addition to the system's.
    pub ca_file: Option<PathBuf>,
}

/// Secrets are shown as set or not, never their value, so a config dumped
/// into a log or an error message leaks nothing.
impl std::fmt::Debug for ElasticsearchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ElasticsearchConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("password_file", &self.password_file)
            .field("api_key", &redact(&self.api_key))
            .field("api_key_file", &self.api_key_file)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipperConfig {
    /// Where checkpoints live; must survive restarts.
    pub data_dir: PathBuf,
    #[serde(default)]
    pub inputs: Vec<FileInput>,
    /// Where reading starts in a file seen for the first time.
    #[serde(default)]
    pub start_at: StartAt,
    /// Longer lines are cut at this length and flagged (header `logpipe.truncated`).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How often to look for new files and for growth when no event arrives.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How new, renamed and deleted files are noticed between scans.
    #[serde(default)]
    pub watch: WatchMode,
    /// A last line without newline is shipped after it stayed unchanged this long.
    #[serde(default = "default_partial_line_ms")]
    pub partial_line_timeout_ms: u64,
    /// Lines sent but not yet durably checkpointed, per file (unacknowledged,
    /// or acknowledged since the last checkpoint write), before reading
    /// pauses: what a crash can make us send again. Checkpoints are written
    /// at most four times a second, so the window must hold a quarter second
    /// of the fastest rate a file is read at, and more.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight_lines: usize,
    /// How often acknowledged positions are written to disk.
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
    /// Deadline for the SIGTERM drain.
    #[serde(default = "default_drain_secs")]
    pub drain_timeout_secs: u64,
    /// Checkpoints of files not seen for this long are forgotten.
    #[serde(default = "default_checkpoint_ttl")]
    pub checkpoint_ttl_secs: u64,
    /// A file that was rotated away (renamed or deleted) is closed once it was
    /// read to its end, everything was acknowledged, and it stayed idle this long.
    #[serde(default = "default_rotated_idle_ms")]
    pub rotated_idle_close_ms: u64,
    #[serde(default)]
    pub ops: OpsConfig,
    /// Raw archives of rotated files in S3 (none when absent).
    pub archive: Option<ArchiveConfig>,
    #[serde(default)]
    pub spot: SpotConfig,
    /// Syslog intake (TCP and UDP listeners); off when absent.
    pub syslog: Option<SyslogConfig>,
}

/// `[shipper.syslog]`: listeners rsyslog's `omfwd` (or `logger -n`) can send to.
/// Each listener is off unless its address is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the TCP listener (newline framing and RFC 6587 octet
    /// counting, detected per frame).
    pub tcp_listen: Option<String>,
    /// `host:port` of the UDP listener (one datagram is one message).
    pub udp_listen: Option<String>,
    /// Longer messages are cut at this length and flagged (header `logpipe.truncated`).
    #[serde(default = "default_syslog_max_message")]
    pub max_message_bytes: usize,
    /// TCP connections served at once; more wait in the kernel's accept queue.
    #[serde(default = "default_syslog_max_connections")]
    pub max_connections: usize,
}

/// `[shipper.inputs.multiline]`: joins continuation lines (stack traces) to
/// the line that started the event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line matching this regex starts a new event; any other line is
    /// appended to the pending event with a `\n`.
    pub start_pattern: String,
    /// An event is shipped once it holds this many lines.
    #[serde(default = "default_multiline_lines")]
    pub max_lines: usize,
    /// An event is shipped once it holds this many bytes (it is cut and
    /// flagged at this length, like an over-long line).
    #[serde(default = "default_multiline_bytes")]
    pub max_bytes: usize,
    /// A pending event is shipped once no line was added to it for this long.
    #[serde(default = "default_multiline_timeout")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Glob patterns of files to tail.
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Who rotates these files: `follow` (default) or `own`.
    #[serde(default)]
    pub rotation: RotationConfig,
    /// Multiline joining (off when absent).
    pub multiline: Option<MultilineConfig>,
}

/// `inotify` fails at start when inotify cannot be used; `auto` falls back to
/// polling then; `poll` never uses inotify (network file systems, where
/// inotify does not see other hosts' writes).
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    #[default]
    Auto,
    Inotify,
    Poll,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserConfig {
    #[serde(default = "default_parser_group")]
    pub group_id: String,
    /// The format of records no `[[parser.sources]]` rule matches: `auto`
    /// detects it per line; or one of [`PARSER_FORMATS`].
    #[serde(default = "default_format")]
    pub format: String,
    /// Raw topics to consume; `kafka.raw_topic` when empty. More than one lets
    /// `[[parser.sources]]` pick a format per topic (say, one filled by rsyslog).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Per-source format selection: the first rule whose every given glob
    /// matches the record wins; no match falls back to `format`.
    #[serde(default)]
    pub sources: Vec<ParserSource>,
    #[serde(default = "default_drain_secs")]
    pub drain_timeout_secs: u64,
    #[serde(default)]
    pub ops: OpsConfig,
}

/// The format names `parser.format` and `parser.sources[].format` accept.
pub const PARSER_FORMATS: [&str; 6] = ["auto", "rfc5424", "rfc3164", "access", "json", "logfmt"];

/// One `[[parser.sources]]` rule. Each of `topic`, `host` and `path` is a glob
/// (`*`, `?`, `[...]`) over the record's topic and the host and path in its
/// key (the source the shipper wrote there); an absent key matches anything, but a rule must
/// give at least one. A `host` or `path` rule never matches a record without
/// a logpipe source key (rsyslog, kcat): use `topic` for those.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSource {
    pub topic: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub format: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexerConfig {
    #[serde(default = "default_indexer_group")]
    pub group_id: String,
    /// Index name pattern over the event's UTC date (`%Y`, `%m`, `%d`).
    #[serde(default = "default_index_pattern")]
    pub index_pattern: String,
    #[serde(default = "default_batch_events")]
    pub batch_max_events: usize,
    #[serde(default = "default_batch_bytes")]
    pub batch_max_bytes: usize,
    #[serde(default = "default_batch_age_ms")]
    pub batch_max_age_ms: u64,
    /// Install the index template from `schemas/` at start.
    #[serde(default = "default_true")]
    pub install_template: bool,
    /// `_bulk` requests in flight at once; consumption pauses when all are busy.
    #[serde(default = "default_indexer_in_flight")]
    pub max_in_flight_requests: usize,
    /// gzip level of request bodies, 1 (fastest) to 9; 0 sends them plain.
    #[serde(default = "default_indexer_compression")]
    pub compression_level: u32,
    /// Write every document to this data stream instead of daily indices
    /// (`index_pattern` is then unused).
    #[serde(default)]
    pub data_stream: Option<String>,
    /// Install the index lifecycle policy from `schemas/` at start (where the
    /// server supports ILM) and name it in the index template.
    #[serde(default = "default_true")]
    pub install_ilm_policy: bool,
    #[serde(default = "default_drain_secs")]
    pub drain_timeout_secs: u64,
    #[serde(default)]
    pub ops: OpsConfig,
}

/// Prometheus metrics and health endpoints of one daemon.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// `host:port` to serve `/metrics`, `/health` and `/ready` on; bound to
    /// localhost by default. Port 0 picks a free port (it is logged).
    pub listen: Option<String>,
}

fn default_raw_topic() -> String {
    logpipe_schemas::DEFAULT_RAW_TOPIC.into()
}
fn default_parsed_topic() -> String {
    logpipe_schemas::DEFAULT_PARSED_TOPIC.into()
}
fn default_dead_letter_topic() -> String {
    logpipe_schemas::DEFAULT_DEAD_LETTER_TOPIC.into()
}
fn default_partitions() -> i32 {
    4
}
fn default_max_line_bytes() -> usize {
    // Vector's default too; Kafka's default message limit (1 MB) must stay above it.
    100 * 1024
}
fn default_syslog_max_message() -> usize {
    64 * 1024
}
fn default_syslog_max_connections() -> usize {
    256
}
fn default_multiline_lines() -> usize {
    500
}
fn default_multiline_bytes() -> usize {
    1024 * 1024
}
fn default_multiline_timeout() -> u64 {
    1000
}
fn default_poll_ms() -> u64 {
    250
}
fn default_partial_line_ms() -> u64 {
    1000
}
fn default_max_in_flight() -> usize {
    500_000
}
fn default_checkpoint_ttl() -> u64 {
    7 * 24 * 3600
}
fn default_rotated_idle_ms() -> u64 {
    2000
}
fn default_checkpoint_ms() -> u64 {
    1000
}
fn default_drain_secs() -> u64 {
    30
}
fn default_parser_group() -> String {
    "logpipe-parser".into()
}
fn default_indexer_group() -> String {
    "logpipe-indexer".into()
}
fn default_format() -> String {
    "auto".into()
}
fn default_index_pattern() -> String {
    logpipe_schemas::templates::DEFAULT_INDEX_PATTERN.into()
}
fn default_batch_events() -> usize {
    5000
}
fn default_batch_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_batch_age_ms() -> u64 {
    1000
}
fn default_indexer_in_flight() -> usize {
    4
}
fn default_indexer_compression() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
