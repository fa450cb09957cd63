//! Benchmarks live in `benches/benches/` (criterion) and bench programs in this
//! crate's binaries; see the README for the commands.

pub mod gen;
pub mod inputs;
pub mod proc_stats;
pub mod scrape;
pub mod services;
pub mod sink;
