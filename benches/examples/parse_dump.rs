//! Writes what the parser makes of every corpus line, every fuzz regression
//! input and the bench's RFC 5424 lines, in every format and under two line
//! contexts: one line per (input, format, context), the ECS document or the
//! error. Run it before and after a parser or serializer change and diff the
//! two outputs to show the change is byte-identical:
//!   cargo run --release -p logpipe-benches --example parse_dump > before.txt

use std::io::Write;

use logpipe_benches::inputs::{corpus_root, rfc5424_lines};
use logpipe_parser::{parse, Format, LineContext};

fn main() -> std::io::Result<()> {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut files = Vec::new();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = vec![corpus_root(), repo.join("fuzz/regressions")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_none_or(|e| e != "md") && !p.ends_with("LICENSE") {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let data = std::fs::read(&p)?;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.to_string_lossy().contains("fuzz/regressions") {
            // Whole inputs, as the fuzz replay test feeds them.
            inputs.push((name, data));
        } else {
            for (n, l) in data.split(|&b| b == b'\n').enumerate() {
                inputs.push((format!("{name}:{n}"), l.to_vec()));
            }
        }
    }
    for (n, l) in rfc5424_lines().into_iter().enumerate() {
        inputs.push((format!("rfc5424_lines:{n}"), l.into_bytes()));
    }
    let contexts = [
        LineContext {
            ingest: 1_718_452_800_000_000,
            host: Some("shipper-1"),
            path: Some("/var/log/syslog"),
            offset: Some(4096),
        },
        LineContext {
            ingest: 1_700_000_000_123_456,
            host: None,
            path: None,
            offset: None,
        },
    ];
    let formats = Format::ALL;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut doc = Vec::new();
    for (name, line) in &inputs {
        for (c, ctx) in contexts.iter().enumerate() {
            for f in formats {
                write!(out, "{name} {f} {c} ")?;
                match parse(f, line, ctx) {
                    Ok(ev) => {
                        doc.clear();
                        ev.write_json(&mut doc);
                        out.write_all(&doc)?;
                    }
                    Err(e) => write!(out, "ERR {e}")?,
                }
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
