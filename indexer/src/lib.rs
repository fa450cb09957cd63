//! The indexer stage: parsed topic in, Elasticsearch documents out.
//!
//! `batch` groups records, `bulk` turns a batch into a `_bulk` request and
//! its response into per-document outcomes, `index` decides where documents
//! go and installs the template and lifecycle policy, `client` connects,
//! `health` tracks the hard dependencies, `service` is the consume, write,
//! retry, commit loop around them.

pub mod batch;
pub mod bulk;
pub mod client;
pub mod health;
pub mod index;
pub mod service;

pub use service::run;
