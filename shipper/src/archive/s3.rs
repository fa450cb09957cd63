//! The S3 side of the archive: one client, uploads (single or multipart,
//! resumable), and the reads the auditor commands need.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_sdk_s3::Client;
use logpipe_config::archive::ServerSideEncryption as Sse;
use logpipe_config::ArchiveConfig;

/// Metadata keys (S3 stores them as `x-amz-meta-<key>`).
pub const META_SHA256: &str = "logpipe-sha256";
pub const META_RAW_BYTES: &str = "logpipe-raw-bytes";
pub const META_START: &str = "logpipe-start-offset";
pub const META_FINGERPRINT: &str = "logpipe-fingerprint";
pub const META_HOST: &str = "logpipe-host";
pub const META_PATH: &str = "logpipe-path";
pub const META_COMPRESSION: &str = "logpipe-compression";
pub const META_ROTATED_AT: &str = "logpipe-rotated-at";

#[derive(Clone)]
pub struct S3 {
    pub client: Client,
    pub bucket: String,
    sse: Option<Sse>,
    kms_key: Option<String>,
    part_size: u64,
    multipart_threshold: u64,
}

/// An S3 failure, described for the person on call.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub message: String,
    /// Will not get better by retrying soon (missing bucket, access denied):
    /// the files stay on disk and attempts continue at the longest backoff.
    pub permanent: bool,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for S3Error {}

pub fn describe<E, R>(bucket: &str, op: &str, e: &SdkError<E, R>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("");
    let msg = e.message().unwrap_or("");
    let (message, permanent) = match (code, e) {
        ("NoSuchBucket", _) => (format!("S3 bucket `{bucket}` does not exist ({op})"), true),
        ("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "Forbidden" | "AllAccessDisabled", _) => (
            format!(
                "access denied to S3 bucket `{bucket}` ({op}: {code}{}{msg}); check the credentials and the bucket policy",
                if msg.is_empty() { "" } else { ": " }
            ),
            true,
        ),
        (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => (
            format!("S3 unreachable ({op}): {}", DisplayErrorContext(e)),
            false,
        ),
        _ => (format!("S3 {op} failed: {}", DisplayErrorContext(e)), false),
    };
    S3Error { message, permanent }
}

impl S3 {
    /// Builds the client: credentials from the environment, profile or
    /// instance role (aws-config's default chain); rustls with ring for TLS.
    pub async fn connect(cfg: &ArchiveConfig) -> S3 {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(cfg.region.clone()))
            .http_client(http)
            .load()
            .await;
        // The SDK's own retries are kept short: the archive retries every file
        // with its own backoff and keeps the file until it succeeds.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build();
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(cfg.force_path_style)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(url) = &cfg.endpoint_url {
            b = b.endpoint_url(url);
        }
        S3 {
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            sse: cfg.server_side_encryption,
            kms_key: cfg.sse_kms_key_id.clone(),
            part_size: cfg.part_size_bytes,
            multipart_threshold: cfg.multipart_threshold_bytes,
        }
    }

    /// Checks that the bucket exists and is ours to write (a clear error at start).
    pub async fn check_bucket(&self) -> Result<(), S3Error> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                Err(match status {
                    Some(404) => S3Error {
                        message: format!("S3 bucket `{}` does not exist", self.bucket),
                        permanent: true,
                    },
                    Some(403) => S3Error {
                        message: format!(
                            "access denied to S3 bucket `{}`; check the credentials and the bucket policy",
                            self.bucket
                        ),
                        permanent: true,
                    },
                    _ => describe(&self.bucket, "HeadBucket", &e),
                })
            }
        }
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.sse.map(|s| match s {
            Sse::Aes256 => ServerSideEncryption::Aes256,
            Sse::Kms => ServerSideEncryption::AwsKms,
        })
    }

    /// The object's metadata, or `None` if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<HashMap<String, String>>, S3Error> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(h) => Ok(Some(h.metadata().cloned().unwrap_or_default())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(describe(&self.bucket, "HeadObject", &e)),
        }
    }

    /// Uploads the staged file under `key`. Parts already uploaded under
    /// `upload_id` (from before a crash) are kept; `record_upload_id` is told
    /// the id before the first part goes up, so a crash after it resumes.
    pub async fn upload(
        &self,
        key: &str,
        staged: &Path,
        len: u64,
        meta: HashMap<String, String>,
        upload_id: Option<String>,
        mut record_upload_id: impl FnMut(Option<String>),
    ) -> Result<(), S3Error> {
        if len < self.multipart_threshold {
            if let Some(old) = upload_id {
                self.abort(key, &old).await;
            }
            let body = ByteStream::from_path(staged).await.map_err(|e| S3Error {
                message: format!("reading {}: {e}", staged.display()),
                permanent: false,
            })?;
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .content_length(len as i64)
                .set_metadata(Some(meta))
                .set_server_side_encryption(self.sse());
            if let Some(k) = &self.kms_key {
                req = req.ssekms_key_id(k);
            }
            req.send().await.map_err(|e| describe(&self.bucket, "PutObject", &e))?;
            return Ok(());
        }

        // Resume the persisted upload when S3 still knows it.
        let mut done: HashMap<i32, (String, i64)> = HashMap::new();
        let mut id = None;
        if let Some(old) = upload_id {
            match self.list_parts(key, &old).await {
                Ok(parts) => {
                    done = parts;
                    id = Some(old);
                }
                Err(e) if !e.permanent => return Err(e),
                Err(e) => {
                    tracing::info!(key, reason = %e, "cannot resume the multipart upload; aborting it and starting over");
                    self.abort(key, &old).await;
                }
            }
        }
        let id = match id {
            Some(id) => id,
            None => {
                let mut req = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_metadata(Some(meta))
                    .set_server_side_encryption(self.sse());
                if let Some(k) = &self.kms_key {
                    req = req.ssekms_key_id(k);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| describe(&self.bucket, "CreateMultipartUpload", &e))?;
                let id = out.upload_id().unwrap_or_default().to_string();
                record_upload_id(Some(id.clone()));
                id
            }
        };

        let mut completed = Vec::new();
        let parts = len.div_ceil(self.part_size);
        for n in 1..=parts {
            let offset = (n - 1) * self.part_size;
            let size = self.part_size.min(len - offset);
            let number = n as i32;
            let etag = match done.get(&number) {
                Some((etag, s)) if *s as u64 == size => etag.clone(),
                _ => {
                    let body = ByteStream::read_from()
                        .path(staged)
                        .offset(offset)
                        .length(Length::Exact(size))
                        .build()
                        .await
                        .map_err(|e| S3Error {
                            message: format!("reading {}: {e}", staged.display()),
                            permanent: false,
                        })?;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&id)
                        .part_number(number)
                        .content_length(size as i64)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| describe(&self.bucket, "UploadPart", &e))?;
                    out.e_tag().unwrap_or_default().to_string()
                }
            };
            completed.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| describe(&self.bucket, "CompleteMultipartUpload", &e))?;
        record_upload_id(None);
        // A crash between creating an upload and recording its id leaves one
        // S3 would bill forever: abort every other upload of this key.
        self.abort_all(key).await;
        Ok(())
    }

    async fn list_parts(&self, key: &str, id: &str) -> Result<HashMap<i32, (String, i64)>, S3Error> {
        let mut out = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    // Anything but "S3 unreachable" means this upload cannot be
                    // continued (NoSuchUpload, or an answer the SDK cannot read —
                    // moto 5.2.5 names the root ListPartsResponse): start over.
                    let mut err = describe(&self.bucket, "ListParts", &e);
                    err.permanent = !matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_));
                    return Err(err);
                }
            };
            for p in resp.parts() {
                if let (Some(n), Some(etag)) = (p.part_number(), p.e_tag()) {
                    out.insert(n, (etag.to_string(), p.size().unwrap_or(0)));
                }
            }
            if resp.is_truncated() == Some(true) {
                marker = resp.next_part_number_marker().map(str::to_string);
                if marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    async fn abort(&self, key: &str, id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .send()
            .await;
    }

    /// Aborts every multipart upload under exactly this key.
    pub async fn abort_all(&self, key: &str) {
        let Ok(resp) = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
        else {
            return;
        };
        for u in resp.uploads() {
            if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                if k == key {
                    tracing::info!(key, "aborting a stale multipart upload");
                    self.abort(k, id).await;
                }
            }
        }
    }

    /// Multipart uploads not completed, as (key, upload id).
    pub async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, S3Error> {
        let resp = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| describe(&self.bucket, "ListMultipartUploads", &e))?;
        Ok(resp
            .uploads()
            .iter()
            .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string())))
            .collect())
    }

    /// Small objects (the manifest).
    pub async fn put_bytes(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .set_server_side_encryption(self.sse());
        if let Some(k) = &self.kms_key {
            req = req.ssekms_key_id(k);
        }
        req.send().await.map_err(|e| describe(&self.bucket, "PutObject", &e))?;
        Ok(())
    }

    /// Every object under `prefix`: (key, size).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| describe(&self.bucket, "ListObjectsV2", &e))?;
            for o in resp.contents() {
                if let Some(k) = o.key() {
                    out.push((k.to_string(), o.size().unwrap_or(0)));
                }
            }
            token = resp.next_continuation_token().map(str::to_string);
            if resp.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Streams an object into `out` (a blocking writer, fed from a channel).
    pub async fn get(&self, key: &str) -> Result<(HashMap<String, String>, ByteStream), S3Error> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| describe(&self.bucket, "GetObject", &e))?;
        Ok((resp.metadata().cloned().unwrap_or_default(), resp.body))
    }
}
