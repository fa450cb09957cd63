//! The shipper: every line written to a watched file reaches the Kafka raw
//! topic, and its checkpoint moves only past lines Kafka acknowledged.
//!
//! Data flows one way: `discover` finds files, `tail` reads lines from them,
//! `produce` hands lines to Kafka; acknowledgements come back from `produce`
//! to each file's [`AckTracker`](logpipe_core::ack::AckTracker), and
//! `checkpoint` persists what they allow.

pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod produce;
pub mod service;
pub mod tail;

pub use service::run;
