//! Shared check for the fuzz targets: parsing never panics, and a parsed
//! event always serializes to valid JSON that keeps the line in
//! `event.original`.

/// The parser's formats, compiled from the same source files as
/// `logpipe-parser` (which this crate does not depend on: see Cargo.toml).
#[path = "../../parser/src/formats/mod.rs"]
#[allow(dead_code)]
pub mod formats;

pub use formats::Format;
use formats::{parse, LineContext};

pub fn check(format: Format, data: &[u8]) {
    // No shipper host, so the syslog HOSTNAME path is exercised too.
    let ctx = LineContext {
        ingest: 1_718_452_800_000_000,
        host: None,
        path: Some("/fuzz"),
        offset: Some(0),
    };
    let Ok(event) = parse(format, data, &ctx) else { return };
    assert_eq!(event.original, data);
    let json = event.to_json();
    let value: serde_json::Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&json)),
    };
    assert!(value.get("@timestamp").is_some_and(|t| t.is_string()));
    assert!(value["event"]["original"].is_string());
}
