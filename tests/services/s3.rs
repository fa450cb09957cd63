//! moto's S3 server on a free loopback port, and plain-HTTP helpers to look
//! at the bucket independently of the code under test (moto takes unsigned
//! path-style requests).

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Moto {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

/// Credentials the SDK in the daemon and in `logpipe archive` picks up from the
/// environment (moto accepts any unless IAM enforcement is on).
pub fn set_fake_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// `env`: e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0` to enforce IAM (every key denied).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        set_fake_credentials();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let bin = std::env::var_os("LOGPIPE_MOTO")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (run scripts/setup first): {e}", bin.display()));
        let m = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
            // moto checks no signature, but treats a request without an
            // Authorization header as anonymous and refuses object reads.
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::HeaderValue::from_static(
                        "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
                    ),
                )]))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if m.http.get(&m.url).send().is_ok() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not come up within 30 s");
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = self.http.put(format!("{}/{bucket}", self.url)).send().unwrap();
        assert!(r.status().is_success(), "creating bucket: {}", r.status());
    }

    /// Every key under `prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.url);
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={t}"));
            }
            let body = self.http.get(url).send().unwrap().text().unwrap();
            out.extend(tags(&body, "Key"));
            token = tags(&body, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                break;
            }
        }
        out
    }

    /// Multipart uploads not completed nor aborted.
    pub fn open_uploads(&self, bucket: &str) -> Vec<String> {
        let body = self
            .http
            .get(format!("{}/{bucket}?uploads", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        tags(&body, "UploadId")
    }

    /// The object's bytes and its `x-amz-meta-*` metadata.
    pub fn get(&self, bucket: &str, key: &str) -> (Vec<u8>, HashMap<String, String>) {
        let r = self.http.get(format!("{}/{bucket}/{key}", self.url)).send().unwrap();
        assert!(r.status().is_success(), "GET {key}: {}", r.status());
        let meta = r
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                k.as_str()
                    .strip_prefix("x-amz-meta-")
                    .map(|k| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            })
            .collect();
        (r.bytes().unwrap().to_vec(), meta)
    }

    /// The raw bytes of an archived object: decompressed, SHA-256 checked against its metadata.
    pub fn get_raw(&self, bucket: &str, key: &str) -> (Vec<u8>, HashMap<String, String>) {
        use sha2::Digest;
        let (body, meta) = self.get(bucket, key);
        let mut raw = Vec::new();
        if key.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
        } else {
            zstd::stream::read::Decoder::new(&body[..])
                .unwrap()
                .read_to_end(&mut raw)
                .unwrap();
        }
        let sha = hex::encode(sha2::Sha256::digest(&raw));
        assert_eq!(
            meta.get("logpipe-sha256"),
            Some(&sha),
            "{key}: SHA-256 of the raw bytes"
        );
        (raw, meta)
    }

    /// SIGSTOP: the server stops answering (connections hang), data kept.
    pub fn pause(&self) {
        super::signal(self.child.id(), "STOP");
    }

    pub fn resume(&self) {
        super::signal(self.child.id(), "CONT");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        super::signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

/// The `[shipper.archive]` section for a bucket on `moto`, plus extra keys.
pub fn archive_section(moto: &Moto, bucket: &str, extra: &str) -> String {
    format!(
        r#"
[shipper.archive]
bucket = "{bucket}"
prefix = "raw"
endpoint_url = "{url}"
force_path_style = true
retry_initial_backoff_ms = 200
retry_max_backoff_ms = 2000
scan_interval_ms = 200
{extra}
"#,
        url = moto.url
    )
}

/// The `[shipper.spot]` section: IMDS polling when `imds` is given.
pub fn spot_section(imds: Option<&str>, deadline_secs: u64) -> String {
    match imds {
        Some(url) => format!(
            "\n[shipper.spot]\nenabled = true\nimds_endpoint = \"{url}\"\npoll_interval_ms = 200\ndrain_deadline_secs = {deadline_secs}\n"
        ),
        None => format!("\n[shipper.spot]\ndrain_deadline_secs = {deadline_secs}\n"),
    }
}
