//! Elasticsearch index templates and index naming.

/// The composable index template for logpipe's indices (ECS mappings for every
/// field the parser emits). Installed by the indexer at start.
pub const LOGS_TEMPLATE: &str = include_str!("../templates/logpipe.json");

/// Name under which [`LOGS_TEMPLATE`] is installed.
pub const LOGS_TEMPLATE_NAME: &str = "logpipe";

/// Index lifecycle policy for daily indices (no rollover: the date in the
/// name already splits them), installed as [`ILM_POLICY_NAME`].
pub const ILM_POLICY_DAILY: &str = include_str!("../ilm/logpipe-daily.json");

/// Index lifecycle policy for data-stream mode (rollover by age and size).
pub const ILM_POLICY_DATA_STREAM: &str = include_str!("../ilm/logpipe-datastream.json");

/// Name under which the lifecycle policy is installed.
pub const ILM_POLICY_NAME: &str = "logpipe";

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
        for policy in [ILM_POLICY_DAILY, ILM_POLICY_DATA_STREAM] {
            let p: serde_json::Value = serde_json::from_str(policy).unwrap();
            assert!(p["policy"]["phases"]["delete"].is_object());
        }
        assert_eq!(
            props["log"]["properties"]["syslog"]["properties"]["structured_data"]["type"],
            "flattened"
        );
    }
}
