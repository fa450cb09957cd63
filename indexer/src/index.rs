//! Where documents go (daily indices or a data stream) and what is installed
//! in Elasticsearch at start for that: the lifecycle policy and the index
//! template.

use std::sync::Arc;

use anyhow::{bail, Context};
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use logpipe_config::IndexerConfig;
use logpipe_schemas::templates;
use serde_json::{json, Value};

/// The write target of every document.
#[derive(Debug, Clone)]
pub enum Target {
    /// One index per UTC day of the event time, named by the pattern.
    Daily(String),
    /// One data stream; Elasticsearch rolls its backing indices over.
    DataStream(Arc<str>),
}

impl Target {
    pub fn from_config(cfg: &IndexerConfig) -> Target {
        match &cfg.data_stream {
            Some(name) => Target::DataStream(name.as_str().into()),
            None => Target::Daily(cfg.index_pattern.clone()),
        }
    }
}

/// Names the index of each document, allocating once per day, not per document.
#[derive(Debug)]
pub struct Namer {
    target: Target,
    day: i64,
    name: Arc<str>,
}

impl Namer {
    pub fn new(target: Target) -> Namer {
        Namer {
            target,
            day: i64::MIN,
            name: "".into(),
        }
    }

    /// The index for an event at `ts_ms` (milliseconds since the epoch, UTC).
    pub fn index(&mut self, ts_ms: i64) -> Arc<str> {
        match &self.target {
            Target::DataStream(name) => name.clone(),
            Target::Daily(pattern) => {
                let day = ts_ms.div_euclid(86_400_000);
                if day != self.day {
                    self.day = day;
                    self.name = logpipe_schemas::time::expand_date_pattern(pattern, ts_ms * 1000).into();
                }
                self.name.clone()
            }
        }
    }
}

/// The index template for `target`: the ECS mappings from `schemas/`, with
/// the data-stream flag and the lifecycle policy name where they apply.
pub fn template(target: &Target, ilm_policy: Option<&str>) -> anyhow::Result<Value> {
    let mut t: Value = serde_json::from_str(templates::LOGS_TEMPLATE).context("schemas/templates/logpipe.json")?;
    if let Target::DataStream(name) = target {
        // Per the Elasticsearch docs: a template with `data_stream: {}` whose
        // pattern matches the stream's name makes the first `create` to that
        // name create the stream. Its documents need `@timestamp`, which the
        // template maps as `date` already.
        t["index_patterns"] = json!([name.as_ref()]);
        t["data_stream"] = json!({});
    }
    if let Some(policy) = ilm_policy {
        t["template"]["settings"]["index"]["lifecycle"] = json!({ "name": policy });
    }
    Ok(t)
}

/// Name the template is installed under: the data-stream variant gets its
/// own so that switching modes never rewrites the other one.
pub fn template_name(target: &Target) -> &'static str {
    match target {
        Target::Daily(_) => templates::LOGS_TEMPLATE_NAME,
        Target::DataStream(_) => "logpipe-data-stream",
    }
}

/// Installs the lifecycle policy (if asked and supported) and the template.
pub async fn install(es: &Elasticsearch, cfg: &IndexerConfig, target: &Target) -> anyhow::Result<()> {
    let ilm = if cfg.install_ilm_policy {
        install_ilm_policy(es, target).await?
    } else {
        None
    };
    let body = template(target, ilm)?;
    let name = template_name(target);
    let (status, text) = send_json(es, Method::Put, &format!("/_index_template/{name}"), &body)
        .await
        .with_context(|| format!("installing the index template `{name}`"))?;
    if !(200..300).contains(&status) {
        bail!("installing the index template `{name}`: HTTP {status}: {text}");
    }
    tracing::info!(template = name, "index template installed");
    Ok(())
}

/// `PUT _ilm/policy/logpipe`. Returns the policy name to reference from the
/// template, or `None` where the server has no ILM (the stand-in answers 400
/// "no handler found"; Elasticsearch Serverless and OpenSearch-likes 404).
async fn install_ilm_policy(es: &Elasticsearch, target: &Target) -> anyhow::Result<Option<&'static str>> {
    let policy = match target {
        Target::Daily(_) => templates::ILM_POLICY_DAILY,
        Target::DataStream(_) => templates::ILM_POLICY_DATA_STREAM,
    };
    let mut body: Value = serde_json::from_str(policy).context("schemas/ilm policy")?;
    if let Some(obj) = body.as_object_mut() {
        obj.remove("_meta");
    }
    let name = templates::ILM_POLICY_NAME;
    let (status, text) = send_json(es, Method::Put, &format!("/_ilm/policy/{name}"), &body)
        .await
        .context("installing the index lifecycle policy")?;
    match status {
        200..=299 => {
            tracing::info!(policy = name, "index lifecycle policy installed");
            Ok(Some(name))
        }
        400 | 404 | 405 if unsupported(&text) || status != 400 => {
            tracing::warn!(
                status,
                response = %text.chars().take(200).collect::<String>(),
                "this Elasticsearch has no index lifecycle management: indices are created without a policy \
                 (set indexer.install_ilm_policy = false to skip the attempt)"
            );
            Ok(None)
        }
        _ => bail!("installing the index lifecycle policy `{name}`: HTTP {status}: {text}"),
    }
}

/// Whether an error body says the endpoint does not exist (rather than that
/// our policy is wrong, which must stop the start).
fn unsupported(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("no handler found") || t.contains("not supported") || t.contains("unrecognized")
}

async fn send_json(es: &Elasticsearch, method: Method, path: &str, body: &Value) -> anyhow::Result<(u16, String)> {
    let bytes = bytes::Bytes::from(serde_json::to_vec(body)?);
    let resp = es
        .transport()
        .send(method, path, HeaderMap::new(), None::<&()>, Some(bytes), None)
        .await?;
    let status = resp.status_code().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_names_follow_the_event_day() {
        let mut n = Namer::new(Target::Daily("logs-%Y.%m.%d".into()));
        // 2026-11-22T23:59:59.999Z and one millisecond later.
        let a = n.index(1_795_391_999_999);
        let b = n.index(1_795_392_000_000);
        assert_eq!(&*a, "logs-2026.11.22");
        assert_eq!(&*b, "logs-2026.11.23");
        assert!(Arc::ptr_eq(&b, &n.index(1_795_392_000_001)), "one name per day");
    }

    #[test]
    fn data_stream_mode_creates_into_the_stream_name() {
        let mut n = Namer::new(Target::DataStream("logs-logpipe-default".into()));
        let index = n.index(1_795_391_999_999);
        assert_eq!(&*index, "logs-logpipe-default");
        assert_eq!(&*n.index(0), "logs-logpipe-default", "not split by day");
        let mut body = Vec::new();
        crate::bulk::push_doc(&mut body, &index, b"id-1", br#"{"@timestamp":"2026-11-22T10:00:00Z"}"#);
        let action: Value = serde_json::from_slice(body.split(|&b| b == b'\n').next().unwrap()).unwrap();
        // Data streams accept only op_type create.
        assert_eq!(
            action,
            json!({"create": {"_index": "logs-logpipe-default", "_id": "id-1"}})
        );
    }

    #[test]
    fn data_stream_template_has_the_flag_and_the_stream_pattern() {
        let t = template(&Target::DataStream("logs-logpipe-default".into()), Some("logpipe")).unwrap();
        assert_eq!(t["data_stream"], json!({}));
        assert_eq!(t["index_patterns"], json!(["logs-logpipe-default"]));
        assert_eq!(t["template"]["settings"]["index"]["lifecycle"]["name"], "logpipe");
        assert_eq!(t["template"]["mappings"]["properties"]["@timestamp"]["type"], "date");

        let daily = template(&Target::Daily("logpipe-%Y.%m.%d".into()), None).unwrap();
        assert!(daily.get("data_stream").is_none());
        assert!(daily["template"]["settings"]["index"].get("lifecycle").is_none());
    }

    #[test]
    fn only_a_missing_endpoint_counts_as_unsupported() {
        assert!(unsupported(
            r#"{"error":"no handler found for uri [/_ilm/policy/p] and method [PUT]"}"#
        ));
        assert!(!unsupported(
            r#"{"error":{"type":"x_content_parse_exception","reason":"unknown field [foo]"}}"#
        ));
    }
}
