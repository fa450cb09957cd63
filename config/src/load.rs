//! Reading, overriding and validating a config file.
//!
//! Every error names the file, the key and what was expected, because the
//! person reading it is on call and has the file open in another window.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Config, ElasticsearchConfig, IndexerConfig, KafkaConfig, ParserConfig, ShipperConfig};

/// `LOGPIPE__SECTION__KEY=value` overrides `[section] key`. Values are read as
/// TOML when they parse as a TOML value (`5`, `true`, `["a"]`), else as strings.
pub const ENV_PREFIX: &str = "LOGPIPE__";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path (`indexer.batch_max_events`), or empty for file-level errors.
    pub key: String,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.expected)
        } else {
            write!(f, "{}: key `{}`: {}", self.file.display(), self.key, self.expected)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Loads `path`, applies environment overrides and validates every section present.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.into(),
            key: String::new(),
            expected: format!("cannot read the file: {e}"),
        }]
    })?;
    load_str(path, &text, std::env::vars())
}

/// [`load`] over text already read, with the environment passed in (for tests).
pub fn load_str(
    path: &Path,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Vec<ConfigError>> {
    let err = |key: String, expected: String| {
        vec![ConfigError {
            file: path.into(),
            key,
            expected,
        }]
    };
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(String::new(), format!("invalid TOML: {}", e.message())))?;
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            set_path(&mut table, &keys, parse_env_value(&value))
                .map_err(|why| err(keys.join("."), format!("cannot apply {name}: {why}")))?;
        }
    }
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        err(if key == "." { String::new() } else { key }, e.into_inner().to_string())
    })?;
    let problems = config.validate(path);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    toml::from_str::<Probe>(&format!("v = {value}"))
        .map(|p| p.v)
        .unwrap_or_else(|_| toml::Value::String(value.to_string()))
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or("empty key")?;
    let mut cur = table;
    for k in parents {
        cur = cur
            .entry(k.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{k}` is not a table"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

impl Config {
    /// Semantic checks serde cannot express. Returns every problem, not just the first.
    fn validate(&self, file: &Path) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let mut bad = |key: &str, expected: &str| {
            out.push(ConfigError {
                file: file.into(),
                key: key.into(),
                expected: format!("expected {expected}"),
            })
        };
        if let Some(k) = &self.kafka {
            if k.brokers.trim().is_empty() {
                bad("kafka.brokers", "a non-empty list of host:port");
            }
            for (key, topic) in [
                ("kafka.raw_topic", &k.raw_topic),
                ("kafka.parsed_topic", &k.parsed_topic),
                ("kafka.dead_letter_topic", &k.dead_letter_topic),
            ] {
                if topic.is_empty() || topic.len() > 249 {
                    bad(key, "a topic name of 1 to 249 characters");
                }
            }
            if k.partitions < 1 {
                bad("kafka.partitions", "a positive number of partitions");
            }
        }
        if let Some(es) = &self.elasticsearch {
            if !(es.url.starts_with("http://") || es.url.starts_with("https://")) {
                bad("elasticsearch.url", "an http:// or https:// URL");
            }
            if es.password.is_some() && es.password_file.is_some() {
                bad(
                    "elasticsearch.password_file",
                    "either password or password_file, not both",
                );
            }
        }
        if let Some(s) = &self.shipper {
            let syslog_on = s
                .syslog
                .as_ref()
                .is_some_and(|y| y.tcp_listen.is_some() || y.udp_listen.is_some());
            if s.inputs.is_empty() && !syslog_on {
                bad(
                    "shipper.inputs",
                    "at least one [[shipper.inputs]] with include globs (or a [shipper.syslog] listener)",
                );
            }
            for (i, input) in s.inputs.iter().enumerate() {
                if input.include.is_empty() {
                    bad(&format!("shipper.inputs[{i}].include"), "at least one glob pattern");
                }
                for (list, globs) in [("include", &input.include), ("exclude", &input.exclude)] {
                    for (j, g) in globs.iter().enumerate() {
                        if let Err(e) = glob::Pattern::new(g) {
                            bad(
                                &format!("shipper.inputs[{i}].{list}[{j}]"),
                                &format!("a valid glob ({e})"),
                            );
                        }
                    }
                }
            }
            for (i, input) in s.inputs.iter().enumerate() {
                if let Some(m) = &input.multiline {
                    if let Err(e) = regex::bytes::Regex::new(&m.start_pattern) {
                        bad(
                            &format!("shipper.inputs[{i}].multiline.start_pattern"),
                            &format!("a valid regular expression ({e})"),
                        );
                    }
                    if m.max_lines < 1 {
                        bad(&format!("shipper.inputs[{i}].multiline.max_lines"), "at least 1 line");
                    }
                    if m.max_bytes < 64 {
                        bad(&format!("shipper.inputs[{i}].multiline.max_bytes"), "at least 64 bytes");
                    }
                }
            }
            if let Some(y) = &s.syslog {
                for (key, addr) in [
                    ("shipper.syslog.tcp_listen", &y.tcp_listen),
                    ("shipper.syslog.udp_listen", &y.udp_listen),
                ] {
                    if addr
                        .as_ref()
                        .is_some_and(|a| a.parse::<std::net::SocketAddr>().is_err())
                    {
                        bad(key, "a socket address such as 127.0.0.1:5514");
                    }
                }
                if y.max_message_bytes < 64 || y.max_message_bytes > 1_000_000 {
                    // Kafka's default message limit is 1 MB.
                    bad("shipper.syslog.max_message_bytes", "64 to 1000000 bytes");
                }
                if y.max_connections == 0 {
                    bad("shipper.syslog.max_connections", "a positive number");
                }
            }
            if s.max_line_bytes < 64 {
                bad("shipper.max_line_bytes", "at least 64 bytes");
            }
            if s.max_in_flight_lines == 0 {
                bad("shipper.max_in_flight_lines", "a positive number");
            }
            for (key, expected) in crate::archive::validate(s) {
                bad(&key, &expected);
            }
        }
        if let Some(p) = &self.parser {
            if p.group_id.is_empty() {
                bad("parser.group_id", "a non-empty consumer group id");
            }
            let formats = format!("one of {}", crate::PARSER_FORMATS.join(", "));
            if !crate::PARSER_FORMATS.contains(&p.format.as_str()) {
                bad("parser.format", &formats);
            }
            for (i, t) in p.topics.iter().enumerate() {
                if t.is_empty() || t.len() > 249 {
                    bad(&format!("parser.topics[{i}]"), "a topic name of 1 to 249 characters");
                }
            }
            for (i, src) in p.sources.iter().enumerate() {
                if !crate::PARSER_FORMATS.contains(&src.format.as_str()) {
                    bad(&format!("parser.sources[{i}].format"), &formats);
                }
                if src.topic.is_none() && src.host.is_none() && src.path.is_none() {
                    bad(&format!("parser.sources[{i}]"), "at least one of topic, host or path");
                }
                for (name, g) in [("topic", &src.topic), ("host", &src.host), ("path", &src.path)] {
                    if let Some(Err(e)) = g.as_deref().map(glob::Pattern::new) {
                        bad(&format!("parser.sources[{i}].{name}"), &format!("a valid glob ({e})"));
                    }
                }
            }
        }
        if let Some(ix) = &self.indexer {
            if ix.batch_max_events == 0 {
                bad("indexer.batch_max_events", "a positive number of events");
            }
            if ix.batch_max_bytes < 1024 {
                bad("indexer.batch_max_bytes", "at least 1024 bytes");
            }
            let sample = logpipe_schemas::time::expand_date_pattern(&ix.index_pattern, 0);
            if sample.is_empty() || sample != sample.to_lowercase() {
                bad("indexer.index_pattern", "a non-empty, lowercase index name pattern");
            }
        }
        for (key, listen) in [
            (
                "shipper.ops.listen",
                self.shipper.as_ref().and_then(|s| s.ops.listen.as_ref()),
            ),
            (
                "parser.ops.listen",
                self.parser.as_ref().and_then(|s| s.ops.listen.as_ref()),
            ),
            (
                "indexer.ops.listen",
                self.indexer.as_ref().and_then(|s| s.ops.listen.as_ref()),
            ),
        ] {
            if let Some(l) = listen {
                if l.parse::<std::net::SocketAddr>().is_err() {
                    bad(key, "a socket address such as 127.0.0.1:9601");
                }
            }
        }
        out
    }

    /// The sections a role needs, or an error naming the missing one.
    pub fn require<'a, T>(&'a self, file: &Path, section: &str, value: &'a Option<T>) -> Result<&'a T, ConfigError> {
        value.as_ref().ok_or_else(|| ConfigError {
            file: file.into(),
            key: section.into(),
            expected: format!("expected a [{section}] section"),
        })
    }

    pub fn kafka(&self, file: &Path) -> Result<&KafkaConfig, ConfigError> {
        self.require(file, "kafka", &self.kafka)
    }
    pub fn elasticsearch(&self, file: &Path) -> Result<&ElasticsearchConfig, ConfigError> {
        self.require(file, "elasticsearch", &self.elasticsearch)
    }
    pub fn shipper(&self, file: &Path) -> Result<&ShipperConfig, ConfigError> {
        self.require(file, "shipper", &self.shipper)
    }
    pub fn parser(&self, file: &Path) -> Result<&ParserConfig, ConfigError> {
        self.require(file, "parser", &self.parser)
    }
    pub fn indexer(&self, file: &Path) -> Result<&IndexerConfig, ConfigError> {
        self.require(file, "indexer", &self.indexer)
    }

    /// `host.name`, else the machine's hostname.
    pub fn host_name(&self) -> String {
        self.host.name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[shipper]
data_dir = "/tmp/x"
[[shipper.inputs]]
include = ["/var/log/*.log"]

[indexer]
batch_max_events = 10
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
        load_str(
            Path::new("f.toml"),
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn good_file_loads_with_defaults() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.kafka.unwrap().raw_topic, "logpipe-raw");
        assert_eq!(c.indexer.unwrap().batch_max_events, 10);
        assert_eq!(c.shipper.unwrap().max_line_bytes, 100 * 1024);
    }

    #[test]
    fn wrong_type_names_file_key_and_expectation() {
        let text = GOOD.replace("batch_max_events = 10", "batch_max_events = \"ten\"");
        let e = &load(&text, &[]).unwrap_err()[0];
        assert_eq!(e.key, "indexer.batch_max_events");
        let shown = e.to_string();
        assert!(shown.starts_with("f.toml: key `indexer.batch_max_events`:"), "{shown}");
        assert!(shown.contains("expected usize"), "{shown}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = GOOD.replace("batch_max_events", "batch_max_event");
        let e = &load(&text, &[]).unwrap_err()[0];
        assert_eq!(e.key, "indexer.batch_max_event");
        assert!(e.expected.contains("unknown field"), "{}", e.expected);
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let text = GOOD.replace("brokers = \"127.0.0.1:9092\"", "brokers = \"\"\npartitions = 0");
        let errs = load(&text, &[]).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["kafka.brokers", "kafka.partitions"]);
    }

    #[test]
    fn env_overrides_endpoints_and_types() {
        let c = load(
            GOOD,
            &[
                ("LOGPIPE__KAFKA__BROKERS", "10.0.0.1:9092"),
                ("LOGPIPE__INDEXER__BATCH_MAX_EVENTS", "7"),
                ("LOGPIPE__ELASTICSEARCH__URL", "http://es:9200"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.kafka.unwrap().brokers, "10.0.0.1:9092");
        assert_eq!(c.indexer.unwrap().batch_max_events, 7);
        assert_eq!(c.elasticsearch.unwrap().url, "http://es:9200");
    }

    #[test]
    fn librdkafka_options_take_numbers_and_booleans_as_text() {
        let text = GOOD.replace(
            "[kafka]\n",
            "[kafka]\noptions = { \"linger.ms\" = 20, \"check.crcs\" = true }\n",
        );
        let c = load(&text, &[("LOGPIPE__KAFKA__OPTIONS__FETCH.QUEUE.BACKOFF.MS", "20")]).unwrap();
        let options = c.kafka.unwrap().options;
        assert_eq!(options["linger.ms"], "20");
        assert_eq!(options["check.crcs"], "true");
        assert_eq!(options["fetch.queue.backoff.ms"], "20");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let e = &load("[kafka\n", &[]).unwrap_err()[0];
        assert!(e.to_string().starts_with("f.toml: invalid TOML"), "{e}");
    }

    #[test]
    fn missing_section_is_named() {
        let c = load(GOOD, &[]).unwrap();
        let e = c.parser(Path::new("f.toml")).unwrap_err();
        assert_eq!(e.to_string(), "f.toml: key `parser`: expected a [parser] section");
    }

    #[test]
    fn parser_sources_are_validated() {
        let text = format!(
            "{GOOD}\n[parser]\nformat = \"syslog\"\n[[parser.sources]]\npath = \"/var/log/[x\"\nformat = \"access\"\n\
             [[parser.sources]]\nformat = \"json\"\n[[parser.sources]]\ntopic = \"raw-*\"\nformat = \"nginx\"\n"
        );
        let errs = load(&text, &[]).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "parser.format",
                "parser.sources[0].path",
                "parser.sources[1]",
                "parser.sources[2].format"
            ]
        );
        assert!(
            errs[0].expected.contains("one of auto, rfc5424"),
            "{}",
            errs[0].expected
        );
        assert!(errs[1]
            .to_string()
            .starts_with("f.toml: key `parser.sources[0].path`: expected a valid glob"));

        let ok = format!(
            "{GOOD}\n[parser]\ntopics = [\"logpipe-raw\", \"rsyslog-raw\"]\n\
             [[parser.sources]]\ntopic = \"rsyslog-*\"\nformat = \"rfc5424\"\n\
             [[parser.sources]]\nhost = \"web-*\"\npath = \"/var/log/nginx/*.log\"\nformat = \"access\"\n"
        );
        let p = load(&ok, &[]).unwrap().parser.unwrap();
        assert_eq!(p.format, "auto");
        assert_eq!(p.topics.len(), 2);
        assert_eq!(p.sources[1].host.as_deref(), Some("web-*"));
    }

    #[test]
    fn syslog_and_multiline_are_validated() {
        let text = format!(
            "{GOOD}\n[shipper.syslog]\ntcp_listen = \"localhost:x\"\nmax_message_bytes = 10\nmax_connections = 0\n"
        )
        .replace(
            "[[shipper.inputs]]\n",
            "[[shipper.inputs]]\nmultiline = { start_pattern = \"^(\", max_lines = 0 }\n",
        );
        let errs = load(&text, &[]).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "shipper.inputs[0].multiline.start_pattern",
                "shipper.inputs[0].multiline.max_lines",
                "shipper.syslog.tcp_listen",
                "shipper.syslog.max_message_bytes",
                "shipper.syslog.max_connections",
            ]
        );
        assert!(
            errs[0].expected.contains("a valid regular expression"),
            "{}",
            errs[0].expected
        );

        // Syslog alone is a complete shipper: no file inputs needed.
        let only_syslog = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[shipper]\ndata_dir = \"/tmp/x\"\n\
                           [shipper.syslog]\nudp_listen = \"127.0.0.1:5514\"\n";
        let y = load(only_syslog, &[]).unwrap().shipper.unwrap().syslog.unwrap();
        assert_eq!(y.max_message_bytes, 64 * 1024);
        assert_eq!(y.tcp_listen, None);
    }

    #[test]
    fn example_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                load_str(&path, &text, std::iter::empty()).unwrap_or_else(|e| panic!("{e:?}"));
                seen += 1;
            }
        }
        assert!(seen >= 1);
    }
}
