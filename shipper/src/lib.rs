//! The shipper: every line written to a watched file reaches the Kafka raw
//! topic, and its checkpoint moves only past lines Kafka acknowledged.
//!
//! Data flows one way: `discover` finds files, `tail` reads lines from them,
//! `produce` hands lines to Kafka; acknowledgements come back from `produce`
//! to each file's [`AckTracker`](logpipe_core::ack::AckTracker), and
//! `checkpoint` persists what they allow.

pub mod archive;
pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod produce;
pub mod rotate;
pub mod service;
pub mod spot;
pub mod supervise;
pub mod tail;

/// The shipper as `logpipe ship` runs it: the tailer, plus rotation, archive
/// and spot drain when configured (see `supervise`).
pub use supervise::run;
