//! The `_bulk` wire format: building the request body and reading the
//! per-item results. Plain functions, no I/O.
//!
//! Documents are written with `create`, not `index`: the id is derived from
//! the line's source, so a document that already exists *is* this line,
//! delivered again (after a crash, a rebalance, a retry). `create` answers
//! 409 for it and leaves the stored document alone, which we count as
//! success; `index` would rewrite it, bump its version and cost a full
//! re-index for nothing.

use bytes::Bytes;
use serde_json::Value;

use crate::batch::Doc;

/// Body lines of a `_bulk` request: action and source per document. The
/// client writes each followed by `\n`, so the body ends with the newline
/// Elasticsearch requires.
pub fn body(docs: &[Doc]) -> Vec<Bytes> {
    let mut lines = Vec::with_capacity(docs.len() * 2);
    for d in docs {
        let action = serde_json::json!({ "create": { "_index": d.index, "_id": d.id } });
        lines.push(Bytes::from(serde_json::to_vec(&action).expect("JSON")));
        lines.push(d.source.clone());
    }
    lines
}

/// What happened to one document of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Indexed,
    /// Already stored by an earlier delivery (409 on `create`): success.
    Duplicate,
    /// Try again later (429, 503, and other transient statuses).
    Retry(String),
    /// Elasticsearch will never accept it as it is: dead-letter it with the reason.
    Rejected(String),
}

/// Reads the per-item results of a `_bulk` response, in request order.
pub fn outcomes(response: &Value, expected: usize) -> Result<Vec<Outcome>, String> {
    let items = response["items"]
        .as_array()
        .ok_or("the _bulk response has no `items` array")?;
    if items.len() != expected {
        return Err(format!(
            "the _bulk response has {} items for {expected} documents",
            items.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| {
            let result = item.as_object().and_then(|o| o.values().next()).unwrap_or(&Value::Null);
            let status = result["status"].as_u64().unwrap_or(0);
            let reason = || {
                let e = &result["error"];
                match (e["type"].as_str(), e["reason"].as_str()) {
                    (Some(t), Some(r)) => format!("{status} {t}: {r}"),
                    _ => format!("{status} {e}"),
                }
            };
            match status {
                200..=299 => Outcome::Indexed,
                409 => Outcome::Duplicate,
                429 | 500..=599 | 0 => Outcome::Retry(reason()),
                _ => Outcome::Rejected(reason()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_action_then_source() {
        let d = Doc {
            slot: 0,
            seq: 0,
            index: "logpipe-2026.01.01".into(),
            id: "abc".into(),
            source: Bytes::from_static(b"{\"message\":\"m\"}"),
            headers: vec![],
            origin: String::new(),
        };
        let lines = body(&[d]);
        let action: Value = serde_json::from_slice(&lines[0]).unwrap();
        assert_eq!(
            action,
            json!({"create": {"_index": "logpipe-2026.01.01", "_id": "abc"}})
        );
        assert_eq!(&lines[1][..], b"{\"message\":\"m\"}");
    }

    #[test]
    fn classifies_items() {
        let resp = json!({"errors": true, "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [x]"}}}
        ]});
        let o = outcomes(&resp, 4).unwrap();
        assert_eq!(o[0], Outcome::Indexed);
        assert_eq!(o[1], Outcome::Duplicate);
        assert!(matches!(&o[2], Outcome::Retry(r) if r.contains("429")));
        assert_eq!(
            o[3],
            Outcome::Rejected("400 mapper_parsing_exception: failed to parse field [x]".into())
        );
        assert!(outcomes(&resp, 3).is_err());
    }
}
