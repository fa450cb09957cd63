//! Config of the shipper's own rotation (`shipper.inputs[].rotation`), the raw
//! archive in S3 (`shipper.archive`) and the spot-termination drain
//! (`shipper.spot`).

use std::path::PathBuf;

use serde::Deserialize;

/// Who rotates the files of one input.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    #[serde(default)]
    pub policy: RotationPolicy,
    /// `own`: rotate once the file reaches this size.
    #[serde(default = "default_rotate_bytes")]
    pub max_bytes: u64,
    /// `own`: rotate a non-empty file this long after it was started (0: never by age).
    #[serde(default = "default_rotate_age")]
    pub max_age_secs: u64,
    #[serde(default)]
    pub mode: RotateMode,
    /// `own`: run this program (argv, no shell) after each rotation, e.g.
    /// `["/usr/sbin/nginx", "-s", "reopen"]`.
    #[serde(default)]
    pub post_rotate_command: Vec<String>,
    /// `own`: send this signal (`HUP`, `USR1`, …) after each rotation to the
    /// process whose pid is in `pid_file`.
    pub signal: Option<String>,
    pub pid_file: Option<PathBuf>,
    /// `own`: rotated files kept on disk per live file once archived (or, with
    /// no archive configured, once fully shipped). Older ones are deleted.
    #[serde(default)]
    pub retain: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RotationPolicy {
    /// Another program (logrotate, the application) rotates; logpipe follows.
    #[default]
    Follow,
    /// logpipe rotates by size and age.
    Own,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RotateMode {
    /// Rename the file and create an empty one in its place (the application
    /// must reopen: give it a command or a signal).
    #[default]
    Create,
    /// Copy the file, then truncate it in place (for applications that never reopen).
    Copytruncate,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveCompression {
    #[default]
    Zstd,
    Gzip,
}

impl ArchiveCompression {
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveCompression::Zstd => "zst",
            ArchiveCompression::Gzip => "gz",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum ServerSideEncryption {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    Kms,
}

/// Raw, byte-exact archives of rotated files in S3.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    pub bucket: String,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// S3-compatible endpoint (MinIO, moto, a VPC endpoint); AWS's when unset.
    pub endpoint_url: Option<String>,
    /// `bucket` in the path instead of the host name (MinIO, moto).
    #[serde(default)]
    pub force_path_style: bool,
    #[serde(default)]
    pub compression: ArchiveCompression,
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Placeholders: `{prefix}` `{host}` `{yyyy}` `{mm}` `{dd}` `{hh}` `{file}`
    /// `{rotated_at}` `{fingerprint}` `{ext}`. Default:
    /// `{prefix}/{host}/{yyyy}/{mm}/{dd}/{file}.{rotated_at}.{fingerprint}.zst`
    /// (`.gz` with gzip).
    pub key_template: Option<String>,
    /// Compressed objects at least this large go up in parts.
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold_bytes: u64,
    /// Size of one part (S3's minimum is 5 MiB).
    #[serde(default = "default_part_size")]
    pub part_size_bytes: u64,
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// With `aws:kms`: the key; the bucket's default KMS key when unset.
    pub sse_kms_key_id: Option<String>,
    /// Backoff between failed attempts starts here and doubles up to `retry_max_backoff_ms`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_backoff_ms: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_backoff_ms: u64,
    /// Keep the local file after a confirmed upload (rotation's `retain` then trims them).
    #[serde(default)]
    pub keep_local: bool,
    /// Uploads running at once.
    #[serde(default = "default_parallel")]
    pub parallel_uploads: usize,
    /// How often pending files are checked against the checkpoints.
    #[serde(default = "default_scan_ms")]
    pub scan_interval_ms: u64,
}

impl ArchiveConfig {
    pub fn key_template(&self) -> String {
        self.key_template.clone().unwrap_or_else(|| {
            format!(
                "{{prefix}}/{{host}}/{{yyyy}}/{{mm}}/{{dd}}/{{file}}.{{rotated_at}}.{{fingerprint}}.{}",
                self.compression.extension()
            )
        })
    }
}

/// The EC2 spot-interruption notice (and SIGTERM) as a drain trigger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotConfig {
    /// Poll the instance metadata service for a spot interruption notice.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_imds")]
    pub imds_endpoint: String,
    #[serde(default = "default_spot_poll")]
    pub poll_interval_ms: u64,
    /// Everything (rotation, flush, uploads, manifest) must be done within this.
    #[serde(default = "default_spot_deadline")]
    pub drain_deadline_secs: u64,
    /// Run the same drain (rotate, flush, archive everything, manifest) on SIGTERM.
    #[serde(default = "default_true")]
    pub drain_on_sigterm: bool,
}

impl Default for SpotConfig {
    fn default() -> Self {
        SpotConfig {
            enabled: false,
            imds_endpoint: default_imds(),
            poll_interval_ms: default_spot_poll(),
            drain_deadline_secs: default_spot_deadline(),
            drain_on_sigterm: true,
        }
    }
}

/// Placeholders a key template may use.
pub const KEY_PLACEHOLDERS: &[&str] = &[
    "prefix",
    "host",
    "yyyy",
    "mm",
    "dd",
    "hh",
    "file",
    "rotated_at",
    "fingerprint",
    "ext",
];

/// Problems as (key, expectation), for `load.rs` to report.
pub(crate) fn validate(s: &crate::ShipperConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut bad = |k: &str, e: &str| out.push((k.to_string(), e.to_string()));
    for (i, input) in s.inputs.iter().enumerate() {
        let r = &input.rotation;
        let key = |k: &str| format!("shipper.inputs[{i}].rotation.{k}");
        if r.policy == RotationPolicy::Own {
            if r.max_bytes < 1024 {
                bad(&key("max_bytes"), "at least 1024 bytes");
            }
            if let Some(sig) = &r.signal {
                if signal_number(sig).is_none() {
                    bad(&key("signal"), "a signal name such as HUP, USR1, USR2, TERM");
                }
                if r.pid_file.is_none() {
                    bad(&key("pid_file"), "a pid file when `signal` is set");
                }
            }
        }
    }
    if let Some(a) = &s.archive {
        if a.bucket.trim().is_empty() {
            bad("shipper.archive.bucket", "a bucket name");
        }
        if a.part_size_bytes < 5 * 1024 * 1024 {
            bad(
                "shipper.archive.part_size_bytes",
                "at least 5242880 (S3's minimum part size)",
            );
        }
        if a.multipart_threshold_bytes < a.part_size_bytes {
            bad("shipper.archive.multipart_threshold_bytes", "at least part_size_bytes");
        }
        if a.parallel_uploads == 0 {
            bad("shipper.archive.parallel_uploads", "a positive number");
        }
        if !(1..=22).contains(&a.zstd_level) {
            bad("shipper.archive.zstd_level", "a zstd level from 1 to 22");
        }
        if let Some(url) = &a.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bad("shipper.archive.endpoint_url", "an http:// or https:// URL");
            }
        }
        let t = a.key_template();
        match placeholders(&t) {
            Err(e) => bad("shipper.archive.key_template", &e),
            Ok(names) => {
                if let Some(n) = names.iter().find(|n| !KEY_PLACEHOLDERS.contains(&n.as_str())) {
                    bad(
                        "shipper.archive.key_template",
                        &format!("only the placeholders {KEY_PLACEHOLDERS:?}, not `{{{n}}}`"),
                    );
                } else if !names.iter().any(|n| n == "fingerprint") || !names.iter().any(|n| n == "rotated_at") {
                    bad(
                        "shipper.archive.key_template",
                        "a template with {fingerprint} and {rotated_at}, so every archived file gets its own key",
                    );
                }
            }
        }
        if a.server_side_encryption != Some(ServerSideEncryption::Kms) && a.sse_kms_key_id.is_some() {
            bad(
                "shipper.archive.sse_kms_key_id",
                "server_side_encryption = \"aws:kms\" with a KMS key id",
            );
        }
    }
    if s.spot.enabled && !(s.spot.imds_endpoint.starts_with("http://")) {
        bad("shipper.spot.imds_endpoint", "an http:// URL");
    }
    if s.spot.drain_deadline_secs == 0 {
        bad("shipper.spot.drain_deadline_secs", "a positive number of seconds");
    }
    out
}

/// The `{name}`s of a template, in order.
pub fn placeholders(t: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("a `}` for every `{`")?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err("placeholders like {host}, not empty or nested braces".into());
        }
        out.push(name.to_string());
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("a `{` for every `}`".into());
    }
    Ok(out)
}

/// The signal number of a name such as `HUP` or `SIGHUP`.
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim_start_matches("SIG");
    Some(match n {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "WINCH" => 28,
        _ => return None,
    })
}

fn default_rotate_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_rotate_age() -> u64 {
    24 * 3600
}
fn default_prefix() -> String {
    "logpipe".into()
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_zstd_level() -> i32 {
    3
}
fn default_multipart_threshold() -> u64 {
    16 * 1024 * 1024
}
fn default_part_size() -> u64 {
    8 * 1024 * 1024
}
fn default_retry_initial() -> u64 {
    500
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_parallel() -> usize {
    4
}
fn default_scan_ms() -> u64 {
    1000
}
fn default_imds() -> String {
    "http://169.254.169.254".into()
}
fn default_spot_poll() -> u64 {
    5000
}
fn default_spot_deadline() -> u64 {
    90
}
fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const BASE: &str = r#"
[shipper]
data_dir = "/tmp/x"
[[shipper.inputs]]
include = ["/var/log/*.log"]
[shipper.inputs.rotation]
policy = "own"
signal = "HUP"
[shipper.archive]
bucket = "b"
"#;

    fn errors(text: &str) -> Vec<(String, String)> {
        crate::load_str(Path::new("f.toml"), text, std::iter::empty())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.key, e.expected))
            .collect()
    }

    #[test]
    fn problems_name_their_keys() {
        let text = format!(
            "{BASE}part_size_bytes = 1000\nkey_template = \"{{prefix}}/{{host}}/{{file}}\"\nserver_side_encryption = \"AES256\"\nsse_kms_key_id = \"k\"\n"
        );
        let keys: Vec<String> = errors(&text).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "shipper.inputs[0].rotation.pid_file",
                "shipper.archive.part_size_bytes",
                "shipper.archive.key_template",
                "shipper.archive.sse_kms_key_id",
            ]
        );
    }

    #[test]
    fn unknown_placeholders_and_encryption_values_are_errors() {
        let e = errors(&format!(
            "{BASE}key_template = \"{{prefix}}/{{hots}}/{{rotated_at}}.{{fingerprint}}\"\n"
        ));
        assert!(e[1].1.contains("not `{hots}`"), "{e:?}");
        let e = errors(&format!("{BASE}server_side_encryption = \"aes\"\n"));
        assert_eq!(e[0].0, "shipper.archive.server_side_encryption", "{e:?}");
    }

    #[test]
    fn defaults() {
        let text = BASE.replace("signal = \"HUP\"\n", "");
        let c = crate::load_str(Path::new("f.toml"), &text, std::iter::empty()).unwrap();
        let s = c.shipper.unwrap();
        let a = s.archive.unwrap();
        assert_eq!(
            a.key_template(),
            "{prefix}/{host}/{yyyy}/{mm}/{dd}/{file}.{rotated_at}.{fingerprint}.zst"
        );
        assert_eq!(s.spot.drain_deadline_secs, 90);
        assert_eq!(s.spot.poll_interval_ms, 5000);
        assert_eq!(s.inputs[0].rotation.max_bytes, 100 * 1024 * 1024);
    }
}
