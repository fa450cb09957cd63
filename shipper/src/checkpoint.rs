//! Durable read positions, one per file fingerprint.
//!
//! A checkpoint says "every line of this file before this offset was
//! acknowledged by Kafka". It is written with write-to-temp, fsync, rename,
//! fsync-directory, so a crash leaves either the old or the new file, never a
//! torn one. Positions only come from the ack trackers, so they never run
//! ahead of Kafka.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "checkpoints.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Hex fingerprint (see `fingerprint`).
    pub fingerprint: String,
    pub offset: u64,
    /// Last path the file was seen under; for people reading the file.
    pub path: String,
    /// When the file was last seen, so checkpoints of files gone for good expire.
    pub seen_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    checkpoints: Vec<Entry>,
}

#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    entries: HashMap<u64, Entry>,
    dirty: bool,
}

impl Checkpoints {
    /// Loads `data_dir/checkpoints.json`, or starts empty if there is none.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir).with_context(|| format!("creating shipper.data_dir {}", data_dir.display()))?;
        let path = data_dir.join(FILE_NAME);
        let entries = match fs::read(&path) {
            Ok(bytes) => {
                let disk: OnDisk = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a logpipe checkpoint file", path.display()))?;
                disk.checkpoints
                    .into_iter()
                    .filter_map(|e| u64::from_str_radix(&e.fingerprint, 16).ok().map(|fp| (fp, e)))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Checkpoints {
            path,
            entries,
            dirty: false,
        })
    }

    pub fn get(&self, fingerprint: u64) -> Option<u64> {
        self.entries.get(&fingerprint).map(|e| e.offset)
    }

    /// Every position, for the archive's drain manifest.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self.entries.values().cloned().collect();
        out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        out
    }

    /// Records an acknowledged position. Positions never move backwards.
    pub fn set(&mut self, fingerprint: u64, offset: u64, path: &str, now_ms: i64) {
        let mut inserted = false;
        let e = self.entries.entry(fingerprint).or_insert_with(|| {
            inserted = true;
            Entry {
                fingerprint: logpipe_schemas::raw::fingerprint_hex(fingerprint),
                offset,
                path: path.to_string(),
                seen_ms: now_ms,
            }
        });
        if inserted || offset > e.offset || e.path != path {
            e.offset = e.offset.max(offset);
            e.path = path.to_string();
            self.dirty = true;
        }
        e.seen_ms = now_ms;
    }

    /// Notes that a file is still around, so its checkpoint does not expire.
    pub fn touch(&mut self, fingerprint: u64, now_ms: i64) {
        if let Some(e) = self.entries.get_mut(&fingerprint) {
            e.seen_ms = now_ms;
        }
    }

    /// Forgets checkpoints of files not seen for `ttl_ms`.
    pub fn expire(&mut self, now_ms: i64, ttl_ms: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| now_ms - e.seen_ms <= ttl_ms);
        let gone = before - self.entries.len();
        self.dirty |= gone > 0;
        gone
    }

    /// Writes the file if anything changed since the last write.
    pub fn persist(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut checkpoints: Vec<Entry> = self.entries.values().cloned().collect();
        checkpoints.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        let bytes = serde_json::to_vec_pretty(&OnDisk {
            version: 1,
            checkpoints,
        })?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path).with_context(|| format!("replacing {}", self.path.display()))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Checkpoints::load(dir.path()).unwrap();
        c.set(0xabc, 100, "/a", 1);
        c.set(0xabc, 50, "/a", 2);
        assert_eq!(c.get(0xabc), Some(100), "never moves backwards");
        c.persist().unwrap();
        let c2 = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(c2.get(0xabc), Some(100));
    }

    #[test]
    fn expires_files_gone_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Checkpoints::load(dir.path()).unwrap();
        c.set(1, 10, "/a", 0);
        c.set(2, 10, "/b", 0);
        c.touch(2, 1_000);
        assert_eq!(c.expire(1_000, 500), 1);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(2), Some(10));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = Checkpoints::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a logpipe checkpoint file"));
    }
}
