//! A minimal `_bulk` endpoint that accepts instantly, to measure the
//! indexer's own ceiling: every request is answered 200 with one
//! `{"create":{"status":201}}` item per action line (gzip bodies inflated
//! first), and `/` answers like Elasticsearch so the start-up check passes.
//! Anything else (template, ILM) gets `{"acknowledged":true}`.
//!
//! Usage: `bulk_sink <port>`; prints the documents accepted to stderr on exit.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// Two workers: the indexer keeps several requests in flight on as many
// connections, and inflating one body must not hold up the others.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9299);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let docs = Arc::new(AtomicU64::new(0));
    eprintln!("bulk_sink listening on 127.0.0.1:{port}");
    loop {
        let (mut s, _) = listener.accept().await?;
        let docs = docs.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1 << 20);
            let mut answer = Vec::with_capacity(1 << 20);
            let mut plain = vec![0u8; 256 << 10];
            loop {
                let Some((head_end, len)) = read_head(&mut s, &mut buf).await else {
                    return;
                };
                buf.reserve((head_end + len).saturating_sub(buf.len()));
                while buf.len() < head_end + len {
                    match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let body = &buf[head_end..head_end + len];
                answer.clear();
                let json: Vec<u8> = if head.starts_with("post /_bulk") {
                    let n = if head.contains("content-encoding: gzip") {
                        match count_gzip_lines(body, &mut plain) {
                            Some(n) => n / 2,
                            None => return,
                        }
                    } else {
                        count_lines(body) / 2
                    };
                    docs.fetch_add(n as u64, Ordering::Relaxed);
                    let mut j = Vec::with_capacity(32 + n * 28);
                    j.extend_from_slice(b"{\"took\":0,\"errors\":false,\"items\":[");
                    for i in 0..n {
                        if i > 0 {
                            j.push(b',');
                        }
                        j.extend_from_slice(b"{\"create\":{\"status\":201}}");
                    }
                    j.extend_from_slice(b"]}");
                    j
                } else if head.starts_with("get / ") {
                    br#"{"name":"bulk_sink","version":{"number":"8.15.0"},"tagline":"You Know, for Search"}"#.to_vec()
                } else if head.starts_with("get /_count") {
                    format!("{{\"count\":{}}}", docs.load(Ordering::Relaxed)).into_bytes()
                } else {
                    br#"{"acknowledged":true}"#.to_vec()
                };
                answer.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-elastic-product: Elasticsearch\r\ncontent-length: {}\r\n\r\n",
                        json.len()
                    )
                    .as_bytes(),
                );
                answer.extend_from_slice(&json);
                if s.write_all(&answer).await.is_err() || head.contains("connection: close") {
                    return;
                }
                buf.drain(..head_end + len);
            }
        });
    }
}

/// Reads until the end of the request head; returns its length and the body's.
async fn read_head(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<(usize, usize)> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            return Some((i + 4, len));
        }
        let mut chunk = [0u8; 65536];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Lines of a gzip body, inflated a window at a time: the whole plain body
/// is never held, so the count costs the inflate and little else.
fn count_gzip_lines(body: &[u8], window: &mut [u8]) -> Option<usize> {
    let mut gz = flate2::read::GzDecoder::new(body);
    let (mut lines, mut last) = (0, b'\n');
    loop {
        match gz.read(window) {
            Ok(0) => break,
            Ok(n) => {
                lines += memchr::memchr_iter(b'\n', &window[..n]).count();
                last = window[n - 1];
            }
            Err(_) => return None,
        }
    }
    Some(lines + usize::from(last != b'\n'))
}

fn count_lines(body: &[u8]) -> usize {
    let n = memchr::memchr_iter(b'\n', body).count();
    // The last line may lack its newline (Elasticsearch tolerates that).
    n + usize::from(body.last().is_some_and(|&b| b != b'\n'))
}
