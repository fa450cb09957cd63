//! The parser stage: raw lines in, ECS documents (or dead letters) out.
//!
//! `formats` holds plain functions over byte slices, one module per format,
//! with no I/O, so they can be fuzzed and benchmarked alone; `service` is the
//! Kafka consumer/producer around them.

pub mod formats;
pub mod selection;
pub mod service;

pub use formats::{parse, Format, LineContext, ParseError};
pub use selection::FormatSelector;
