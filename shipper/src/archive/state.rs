//! The archive's durable state: which files wait for Kafka, which are staged,
//! which multipart upload is under way, and how far each live file's bytes are
//! already in S3. Written like the checkpoints (temp file, fsync, rename, fsync
//! the directory) on every change of phase, so a crash at any point resumes:
//! a staged file is not compressed again, a started multipart upload is
//! continued (or aborted), and a finished one is recognised by its SHA-256.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::compress::Staged;

const FILE_NAME: &str = "archive.json";

/// One range of one local file on its way to S3.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// The object key; also the job's identity.
    pub key: String,
    pub path: PathBuf,
    /// The live file this came from (`{file}` in the key, and the manifest).
    pub live_path: PathBuf,
    pub fingerprint: String,
    pub rotated_at_ms: i64,
    /// First byte archived (an earlier spot drain may have archived the start).
    pub start: u64,
    /// Last byte (exclusive) for the tail of a live file; `None`: the whole
    /// rotated file, known once it is staged.
    pub end: Option<u64>,
    /// A rotated file: removed (unless `keep_local`) once uploaded and fully in Kafka.
    pub rotated: bool,
    pub staged: Option<Staged>,
    pub upload_id: Option<String>,
    /// The object is in S3 (confirmed); the local file may still wait for Kafka.
    pub uploaded: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub jobs: Vec<Job>,
    /// Per fingerprint (hex): bytes `0..n` of that file are in S3 (tails uploaded
    /// by a drain), so the next archive of it starts at `n`.
    #[serde(default)]
    pub archived_upto: BTreeMap<String, u64>,
    /// Rotated files uploaded and kept (`keep_local`), so they are not archived again.
    #[serde(default)]
    pub kept: BTreeMap<PathBuf, String>,
}

impl State {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    pub fn load(data_dir: &Path) -> anyhow::Result<State> {
        let path = Self::path(data_dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a logpipe archive state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn persist(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(data_dir);
        let bytes = serde_json::to_vec_pretty(self)?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        File::open(data_dir)?.sync_all()?;
        Ok(())
    }

    pub fn job_mut(&mut self, key: &str) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.key == key)
    }

    pub fn has_path(&self, path: &Path) -> bool {
        self.kept.contains_key(path) || self.jobs.iter().any(|j| j.rotated && j.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path()).unwrap();
        s.jobs.push(Job {
            key: "k".into(),
            path: "/a.1".into(),
            live_path: "/a".into(),
            fingerprint: "00".into(),
            rotated_at_ms: 1,
            start: 0,
            end: None,
            rotated: true,
            staged: None,
            upload_id: Some("u".into()),
            uploaded: false,
            attempts: 0,
            last_error: None,
        });
        s.persist(dir.path()).unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back.jobs, s.jobs);
        assert!(back.has_path(Path::new("/a.1")));
    }

    #[test]
    fn a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(State::path(dir.path()), b"[").unwrap();
        assert!(State::load(dir.path()).is_err());
    }
}
