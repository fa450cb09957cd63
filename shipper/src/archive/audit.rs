//! What `logpipe archive ls|get|verify` do: read the archive back the way an
//! auditor would, independent of any shipper's local state.

use std::collections::BTreeMap;
use std::io::Write;

use logpipe_config::ArchiveConfig;
use tokio::io::AsyncWriteExt;

use super::compress;
use super::key;
use super::s3::{self, S3};

/// Which objects to look at.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub host: Option<String>,
    /// Inclusive UTC dates, `YYYY-MM-DD`.
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub key: String,
    pub size: i64,
    pub host: String,
    /// UTC date `YYYY-MM-DD` of the rotation.
    pub date: String,
    pub file: String,
    pub rotated_at: String,
}

/// Archived objects (manifests and foreign keys left out), sorted by key.
pub async fn ls(cfg: &ArchiveConfig, filter: &Filter) -> anyhow::Result<Vec<Listed>> {
    let s3 = S3::connect(cfg).await;
    s3.check_bucket().await?;
    let template = cfg.key_template();
    let mut known = BTreeMap::new();
    known.insert("prefix", cfg.prefix.trim_matches('/').to_string());
    if let Some(h) = &filter.host {
        known.insert("host", h.clone());
    }
    let prefix = key::list_prefix(&template, &known);
    let mut out = Vec::new();
    for (k, size) in s3.list(&prefix).await? {
        let Some(vars) = key::parse(&template, &k) else {
            continue;
        };
        if vars.get("prefix").is_some_and(|p| p != cfg.prefix.trim_matches('/')) {
            continue;
        }
        let rotated_ms = vars
            .get("rotated_at")
            .and_then(|t| key::parse_timestamp(t))
            .unwrap_or(0);
        let date = match (vars.get("yyyy"), vars.get("mm"), vars.get("dd")) {
            (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
            _ => key::timestamp(rotated_ms)[..8].to_string(),
        };
        let l = Listed {
            key: k.clone(),
            size,
            host: vars.get("host").cloned().unwrap_or_default(),
            date,
            file: vars.get("file").cloned().unwrap_or_default(),
            rotated_at: vars.get("rotated_at").cloned().unwrap_or_default(),
        };
        if filter.host.as_ref().is_some_and(|h| *h != l.host)
            || filter.from.as_ref().is_some_and(|f| l.date < *f)
            || filter.to.as_ref().is_some_and(|t| l.date > *t)
        {
            continue;
        }
        out.push(l);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Result of checking one object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub key: String,
    pub ok: bool,
    pub raw_bytes: u64,
    pub sha256: String,
    pub expected_sha256: Option<String>,
    pub problem: Option<String>,
}

/// Downloads `key`, decompresses it into `out`, and checks the SHA-256 of the
/// raw bytes (and their count) against the object's metadata.
pub async fn get(cfg: &ArchiveConfig, key: &str, out: impl Write + Send + 'static) -> anyhow::Result<Verified> {
    let s3 = S3::connect(cfg).await;
    fetch(&s3, key, out).await
}

async fn fetch(s3: &S3, key: &str, out: impl Write + Send + 'static) -> anyhow::Result<Verified> {
    let (meta, body) = s3.get(key).await?;
    let codec = meta
        .get(s3::META_COMPRESSION)
        .and_then(|c| compress::codec_named(c))
        .or_else(|| key.rsplit('.').next().and_then(compress::codec_named))
        .ok_or_else(|| anyhow::anyhow!("{key}: neither metadata nor extension names a compression"))?;
    // Compressed bytes go to a temporary file, so memory stays small whatever the size.
    let tmp = tempfile::NamedTempFile::new()?;
    let mut f = tokio::fs::File::create(tmp.path()).await?;
    let mut reader = body.into_async_read();
    tokio::io::copy(&mut reader, &mut f).await?;
    f.flush().await?;
    drop(f);
    let path = tmp.path().to_path_buf();
    let (raw, sha) = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        compress::decompress_hashing(std::io::BufReader::new(file), codec, out)
    })
    .await??;
    let expected = meta.get(s3::META_SHA256).cloned();
    let expected_len = meta.get(s3::META_RAW_BYTES).and_then(|n| n.parse::<u64>().ok());
    let problem = match (&expected, expected_len) {
        (None, _) => Some("no logpipe-sha256 in the object's metadata".to_string()),
        (Some(e), _) if *e != sha => Some(format!("SHA-256 {sha} differs from the metadata's {e}")),
        (_, Some(n)) if n != raw => Some(format!("{raw} raw bytes, the metadata says {n}")),
        _ => None,
    };
    Ok(Verified {
        key: key.to_string(),
        ok: problem.is_none(),
        raw_bytes: raw,
        sha256: sha,
        expected_sha256: expected,
        problem,
    })
}

/// Verifies the given keys, or every object the filter selects.
pub async fn verify(cfg: &ArchiveConfig, keys: &[String], filter: &Filter) -> anyhow::Result<Vec<Verified>> {
    let keys: Vec<String> = if keys.is_empty() {
        ls(cfg, filter).await?.into_iter().map(|l| l.key).collect()
    } else {
        keys.to_vec()
    };
    let s3 = S3::connect(cfg).await;
    let mut out = Vec::new();
    for k in keys {
        match fetch(&s3, &k, std::io::sink()).await {
            Ok(v) => out.push(v),
            Err(e) => out.push(Verified {
                key: k,
                ok: false,
                raw_bytes: 0,
                sha256: String::new(),
                expected_sha256: None,
                problem: Some(format!("{e:#}")),
            }),
        }
    }
    Ok(out)
}
