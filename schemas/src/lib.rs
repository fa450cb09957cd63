//! The wire contracts between logpipe's stages.
//!
//! Everything one stage writes and another reads is defined here, so that a
//! change of format is a change in one crate, and so that anyone writing their
//! own producer or consumer has a single place to read. `README.md` in this
//! folder documents the same contracts for people who do not read Rust.

pub mod dead_letter;
pub mod event;
pub mod id;
pub mod parsed;
pub mod raw;
pub mod scan;
pub mod templates;
pub mod time;

/// Version of the wire contracts, the first field of the key of every raw
/// record logpipe writes. Bump it on any incompatible change. Version 1
/// carried one header per field (`logpipe.v`, `logpipe.host`, ...), version 2
/// the same text as now in one `logpipe.src` header.
pub const WIRE_VERSION: &str = "3";

/// Default topic names; every one is configurable.
pub const DEFAULT_RAW_TOPIC: &str = "logpipe-raw";
pub const DEFAULT_PARSED_TOPIC: &str = "logpipe-parsed";
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "logpipe-dead-letter";
