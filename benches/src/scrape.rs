//! Reading a daemon's Prometheus `/metrics` without an HTTP client crate: the
//! ops endpoint speaks plain HTTP/1.1 on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The body of `GET /metrics` from `addr` (`127.0.0.1:port`), or `None` if the
/// daemon does not answer (not up yet, or gone).
pub fn metrics(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let body = resp.split_once("\r\n\r\n")?.1;
    Some(body.to_string())
}

/// Sum of every sample of `name` whose labels contain all of `labels`
/// (`key="value"` pairs). Counters only: the text of a histogram's `_bucket`
/// lines has another name.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_series() {
        let text = "# TYPE logpipe_events_total counter\n\
            logpipe_events_total{stage=\"parse\",outcome=\"parsed\"} 10\n\
            logpipe_events_total{stage=\"parse\",outcome=\"dead_letter\"} 2\n\
            logpipe_events_total{stage=\"index\",outcome=\"indexed\"} 7\n\
            logpipe_other 5\n";
        assert_eq!(sum(text, "logpipe_events_total", &[("stage", "parse")]), 12.0);
        assert_eq!(
            sum(
                text,
                "logpipe_events_total",
                &[("stage", "parse"), ("outcome", "parsed")]
            ),
            10.0
        );
        assert_eq!(sum(text, "logpipe_other", &[]), 5.0);
        assert_eq!(sum(text, "logpipe_missing", &[]), 0.0);
    }
}
