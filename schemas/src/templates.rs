//! Elasticsearch index templates and index naming.

/// The composable index template for logpipe's indices (ECS mappings for every
/// field the parser emits). Installed by the indexer at start.
pub const LOGS_TEMPLATE: &str = include_str!("../templates/logpipe.json");

/// Name under which [`LOGS_TEMPLATE`] is installed.
pub const LOGS_TEMPLATE_NAME: &str = "logpipe";

/// Default index pattern: one index per UTC day of the event's `@timestamp`.
/// Deliberately not `logs-*-*`: on real Elasticsearch that pattern belongs to
/// the built-in data-stream template.
pub const DEFAULT_INDEX_PATTERN: &str = "logpipe-%Y.%m.%d";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_valid_json_and_covers_the_pattern() {
        let v: serde_json::Value = serde_json::from_str(LOGS_TEMPLATE).unwrap();
        assert_eq!(v["index_patterns"][0], "logpipe-*");
        let props = &v["template"]["mappings"]["properties"];
        assert_eq!(props["@timestamp"]["type"], "date");
        assert_eq!(
            props["log"]["properties"]["syslog"]["properties"]["structured_data"]["type"],
            "flattened"
        );
    }
}
