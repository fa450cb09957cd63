//! End-to-end lag: how long after the shipper read a line a stage finished
//! with it, as the histogram `logpipe_event_lag_seconds{stage}`.
//!
//! Sampled, one event in [`EVERY`]: the Prometheus recorder keeps every
//! observation until the next scrape, which at 166K events/s would be
//! millions of them; a sample of thousands per second describes the
//! distribution just as well.

use std::cell::Cell;

pub const EVERY: u32 = 16;

thread_local! {
    static COUNT: Cell<u32> = const { Cell::new(0) };
}

/// Notes that `stage` finished an event the shipper read at `ingest_ms()`
/// (ms since the epoch). It is asked only for the sampled events, so a caller
/// that has to dig the time out of headers does so one time in [`EVERY`].
/// Events with no ingest time (other producers) answer 0 and are not counted.
pub fn observe(stage: &'static str, ingest_ms: impl FnOnce() -> i64) {
    let n = COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    if !n.is_multiple_of(EVERY) {
        return;
    }
    let ingest_ms = ingest_ms();
    if ingest_ms > 0 {
        let lag = (crate::now_ms() - ingest_ms).max(0) as f64 / 1000.0;
        metrics::histogram!("logpipe_event_lag_seconds", "stage" => stage).record(lag);
    }
}
