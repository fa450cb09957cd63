//! A small EC2 instance metadata server speaking IMDSv2 as AWS documents it:
//! `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` gives a
//! token; `GET /latest/meta-data/spot/instance-action` needs
//! `X-aws-ec2-metadata-token` (401 without a valid one) and answers 404 until
//! a notice is set, then `{"action":"terminate","time":"…"}`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct Imds {
    pub url: String,
    notice: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    /// Requests for the notice that carried a valid token.
    pub polls: Arc<AtomicUsize>,
    addr: std::net::SocketAddr,
}

impl Imds {
    pub fn start() -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let notice = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let token = format!("token-{}", super::unique("imds"));
        let (n, s, p) = (notice.clone(), stop.clone(), polls.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    let _ = serve(c, &token, &n, &p);
                }
            }
        });
        Imds {
            url: format!("http://{addr}"),
            notice,
            stop,
            polls,
            addr,
        }
    }

    /// From now on, the instance is scheduled for termination.
    pub fn set_notice(&self, time: &str) {
        *self.notice.lock().unwrap() = Some(format!("{{\"action\":\"terminate\",\"time\":\"{time}\"}}"));
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut c: TcpStream, token: &str, notice: &Mutex<Option<String>>, polls: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(c.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("PUT", "/latest/api/token") => {
            match header("x-aws-ec2-metadata-token-ttl-seconds").and_then(|v| v.parse::<u32>().ok()) {
                Some(ttl) if (1..=21_600).contains(&ttl) => ("200 OK", token.to_string()),
                _ => ("400 Bad Request", String::new()),
            }
        }
        ("GET", "/latest/meta-data/spot/instance-action") => {
            if header("x-aws-ec2-metadata-token") != Some(token) {
                ("401 Unauthorized", String::new())
            } else {
                polls.fetch_add(1, Ordering::SeqCst);
                match notice.lock().unwrap().clone() {
                    Some(n) => ("200 OK", n),
                    None => ("404 Not Found", String::new()),
                }
            }
        }
        _ => ("404 Not Found", String::new()),
    };
    write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    c.flush()
}
