//! The dead-letter topic: input a stage could not handle, kept whole.
//!
//! * value: the original bytes, untouched (a raw line for the parser, an ECS
//!   document for the indexer), so that it can be replayed after a fix;
//! * key: the key of the record it came from;
//! * headers: the source headers it carried, plus the `HEADER_*` below.

use serde::Serialize;

pub const HEADER_STAGE: &str = "logpipe.dlq.stage";
pub const HEADER_REASON: &str = "logpipe.dlq.reason";
/// Kafka coordinates of the record that failed: `topic/partition/offset`.
pub const HEADER_ORIGIN: &str = "logpipe.dlq.origin";

/// Which stage gave up on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Parse,
    Index,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Index => "index",
        }
    }
}

/// A dead letter as JSON, for places that print rather than produce
/// (`logpipe parse --stdin`). Kafka records carry the same facts as headers.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterJson<'a> {
    pub dead_letter: DeadLetterBody<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterBody<'a> {
    pub stage: Stage,
    pub reason: &'a str,
    /// The original bytes, lossily decoded when they are not UTF-8.
    pub original: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'a str>,
}

impl<'a> DeadLetterJson<'a> {
    pub fn new(stage: Stage, reason: &'a str, original: &'a [u8]) -> Self {
        DeadLetterJson {
            dead_letter: DeadLetterBody {
                stage,
                reason,
                original: String::from_utf8_lossy(original),
                origin: None,
            },
        }
    }
}

/// `topic/partition/offset`, the value of [`HEADER_ORIGIN`].
pub fn origin(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_names_stage_and_reason() {
        let dl = DeadLetterJson::new(Stage::Parse, "bad PRI", b"<999>x");
        let v = serde_json::to_value(&dl).unwrap();
        assert_eq!(v["dead_letter"]["stage"], "parse");
        assert_eq!(v["dead_letter"]["reason"], "bad PRI");
        assert_eq!(v["dead_letter"]["original"], "<999>x");
    }
}
