//! Bench inputs shared by the criterion bench, the profiling example and the
//! service bench: real lines read in place from `../shared/corpus`, and the
//! RFC 5424 lines the corpus does not have.

use std::path::{Path, PathBuf};

/// `shared/corpus` next to the checkout (or a worktree of it), or `$LOGPIPE_CORPUS`.
pub fn corpus_root() -> PathBuf {
    std::env::var_os("LOGPIPE_CORPUS")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|a| a.join("shared/corpus"))
                .find(|c| c.is_dir())
        })
        .expect("no shared/corpus above the workspace; set LOGPIPE_CORPUS")
}

/// The non-empty lines of a corpus file, without LF / CRLF.
pub fn corpus_lines(rel: &str) -> Vec<String> {
    let p = corpus_root().join(rel);
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    String::from_utf8_lossy(&data)
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Short RFC 5424 lines: fractions of 1 to 6 digits, offsets, NILVALUEs,
/// structured data.
pub fn rfc5424_lines() -> Vec<String> {
    [
        "<34>1 2024-06-15T12:00:00.123456Z web-01.example.com sshd 4242 - - Accepted publickey for deploy from 10.0.0.5 port 53122 ssh2",
        "<165>1 2024-06-15T12:00:01.003Z app-3 api 1234 REQ [req@32473 id=\"f81d4fae\" method=\"GET\" status=\"200\"] request served in 12ms",
        "<13>1 2024-06-15T12:00:02+02:00 db-2 postgres 777 - - checkpoint complete: wrote 42 buffers (0.3%)",
        "<86>1 2024-06-15T12:00:03.5Z lb-1 haproxy - HEALTH [meta sequenceId=\"42\"] backend web/web-01 is UP",
        "<30>1 2024-06-15T12:00:04.000001Z worker-7 systemd 1 - - Started Daily apt download activities.",
        "<11>1 2024-06-15T12:00:05.25-07:00 cache-1 redis 31337 - - Background saving terminated with success",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
