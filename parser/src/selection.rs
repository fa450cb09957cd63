//! Per-source format selection (`[[parser.sources]]`): which parser a raw
//! record goes through, by its topic or the host or path in its key (the
//! source the shipper wrote there).
//!
//! Rules are tried in order and the first whose every given glob matches wins,
//! as in Filebeat's per-input settings; a record no rule matches uses
//! `parser.format`. Paths match like a shell glob (`*` stops at `/`), topics
//! and hosts match `*` across anything.

use glob::{MatchOptions, Pattern};
use logpipe_config::ParserConfig;

use crate::formats::Format;

#[derive(Debug, Clone)]
struct Rule {
    topic: Option<Pattern>,
    host: Option<Pattern>,
    path: Option<Pattern>,
    format: Format,
}

#[derive(Debug, Clone)]
pub struct FormatSelector {
    fallback: Format,
    rules: Vec<Rule>,
}

const PATH_MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl FormatSelector {
    /// A selector that always answers `format` (no rules).
    pub fn fixed(format: Format) -> Self {
        FormatSelector {
            fallback: format,
            rules: Vec::new(),
        }
    }

    /// Builds the rules of `[parser]`. The config loader has validated them
    /// already; errors here name the key anyway, for configs built in code.
    pub fn from_config(cfg: &ParserConfig) -> anyhow::Result<Self> {
        let fallback: Format = cfg.format.parse().map_err(|e| anyhow::anyhow!("parser.format: {e}"))?;
        let mut rules = Vec::with_capacity(cfg.sources.len());
        for (i, src) in cfg.sources.iter().enumerate() {
            let glob = |name: &str, g: &Option<String>| -> anyhow::Result<Option<Pattern>> {
                g.as_deref()
                    .map(Pattern::new)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("parser.sources[{i}].{name}: expected a valid glob ({e})"))
            };
            rules.push(Rule {
                topic: glob("topic", &src.topic)?,
                host: glob("host", &src.host)?,
                path: glob("path", &src.path)?,
                format: src
                    .format
                    .parse()
                    .map_err(|e| anyhow::anyhow!("parser.sources[{i}].format: {e}"))?,
            });
        }
        Ok(FormatSelector { fallback, rules })
    }

    /// The format for a record of `topic` whose headers (if any) name `host`
    /// and `path`.
    #[inline]
    pub fn select(&self, topic: &str, host: Option<&str>, path: Option<&str>) -> Format {
        if self.rules.is_empty() {
            return self.fallback;
        }
        self.rules
            .iter()
            .find(|r| {
                r.topic.as_ref().is_none_or(|p| p.matches(topic))
                    && r.host.as_ref().is_none_or(|p| host.is_some_and(|h| p.matches(h)))
                    && r.path
                        .as_ref()
                        .is_none_or(|p| path.is_some_and(|f| p.matches_with(f, PATH_MATCH)))
            })
            .map_or(self.fallback, |r| r.format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpipe_config::ParserSource;

    /// (topic, host, path, format) of one rule.
    type RuleSpec<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

    fn cfg(format: &str, sources: &[RuleSpec<'_>]) -> ParserConfig {
        let text = format!("[parser]\nformat = \"{format}\"\n");
        let mut c = logpipe_config::load_str(std::path::Path::new("t.toml"), &text, std::iter::empty())
            .unwrap()
            .parser
            .unwrap();
        c.sources = sources
            .iter()
            .map(|(t, h, p, f)| ParserSource {
                topic: t.map(Into::into),
                host: h.map(Into::into),
                path: p.map(Into::into),
                format: f.to_string(),
            })
            .collect();
        c
    }

    #[test]
    fn first_matching_rule_wins_and_unmatched_fall_back() {
        let s = FormatSelector::from_config(&cfg(
            "auto",
            &[
                (Some("rsyslog-*"), None, None, "rfc5424"),
                (None, Some("web-*"), Some("/var/log/nginx/*.log"), "access"),
                (None, None, Some("/var/log/app/**/*.json"), "json"),
                (None, Some("web-*"), None, "rfc3164"),
            ],
        ))
        .unwrap();
        assert_eq!(s.select("rsyslog-raw", None, None), Format::Rfc5424);
        assert_eq!(
            s.select("logpipe-raw", Some("web-1"), Some("/var/log/nginx/access.log")),
            Format::Access
        );
        // `*` does not cross `/` in paths: falls through to the host-only rule.
        assert_eq!(
            s.select("logpipe-raw", Some("web-1"), Some("/var/log/nginx/old/access.log")),
            Format::Rfc3164
        );
        assert_eq!(
            s.select("logpipe-raw", Some("db-1"), Some("/var/log/app/a/b/x.json")),
            Format::Json
        );
        // Host and path rules never match records without a logpipe source key.
        assert_eq!(s.select("logpipe-raw", None, None), Format::Auto);
        assert_eq!(
            s.select("logpipe-raw", Some("db-1"), Some("/var/log/syslog")),
            Format::Auto
        );
    }

    #[test]
    fn no_rules_is_the_configured_format() {
        let s = FormatSelector::from_config(&cfg("logfmt", &[])).unwrap();
        assert_eq!(s.select("t", Some("h"), Some("/p")), Format::Logfmt);
        assert_eq!(
            FormatSelector::fixed(Format::Json).select("t", None, None),
            Format::Json
        );
    }

    #[test]
    fn every_config_format_name_parses() {
        for name in logpipe_config::PARSER_FORMATS {
            let f: Format = name.parse().unwrap();
            assert_eq!(f.name(), name);
        }
    }

    #[test]
    fn bad_rules_name_the_key() {
        let e = FormatSelector::from_config(&cfg("auto", &[(Some("a"), None, None, "xml")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parser.sources[0].format: unknown format `xml`"),
            "{e}"
        );
    }
}
