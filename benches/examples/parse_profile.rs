//! A fixed amount of parse + ECS JSON work on the criterion bench's inputs, for
//! instruction-level profiles that do not depend on machine load:
//!   valgrind --tool=callgrind target/release/examples/parse_profile rfc5424 2000
//! Formats: rfc5424, rfc3164, access. The second argument is the number of passes.

use std::hint::black_box;

use logpipe_benches::inputs::{corpus_lines, rfc5424_lines};
use logpipe_parser::{parse, Format, LineContext};

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "rfc5424".into());
    let passes: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let (format, lines) = match which.as_str() {
        "rfc5424" => (Format::Rfc5424, rfc5424_lines()),
        "rfc3164" => (Format::Rfc3164, corpus_lines("loghub/Linux_2k.log")),
        "access" => (Format::Access, corpus_lines("access/apache_combined.log")),
        other => panic!("unknown format {other}"),
    };
    let ctx = LineContext {
        ingest: 1_718_452_800_000_000,
        host: Some("shipper-1"),
        path: Some("/var/log/syslog"),
        offset: Some(4096),
    };
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0usize;
    for _ in 0..passes {
        for l in &lines {
            buf.clear();
            if let Ok(ev) = parse(format, black_box(l.as_bytes()), &ctx) {
                ev.write_json(&mut buf);
                n += 1;
            }
            black_box(&buf);
        }
    }
    println!("{n} lines parsed");
}
