//! The indexer stage: parsed topic in, Elasticsearch documents out.
//!
//! `batch` groups records, `bulk` turns a batch into a `_bulk` request and
//! its response into per-document outcomes, `service` is the consume, write,
//! retry, commit loop around them.

pub mod batch;
pub mod bulk;
pub mod client;
pub mod service;

pub use service::run;
