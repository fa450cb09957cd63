//! File identity by content.
//!
//! Names change on rotation and inodes get reused, but the first line of a log
//! file does not change; so, as Vector does, a file is known by a checksum of
//! its first line (at most [`MAX_BYTES`] bytes). Device and inode are used
//! beside it, by `discover`, to follow an open file across renames.
//!
//! Limitation (also Vector's): two files whose first lines are identical
//! byte-for-byte are taken for the same file. Log lines almost always start
//! with a timestamp, so this is rare; it is documented in the README.

use std::fs::File;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::xxh3_64;

/// How many bytes of the first line are hashed, and how many are enough when
/// the first line is longer still.
pub const MAX_BYTES: usize = 256;

/// The fingerprint of the file, or `None` while it has no complete first line
/// (and fewer than [`MAX_BYTES`] bytes): its identity is not known yet, so it
/// is not read yet.
pub fn of_file(file: &File) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; MAX_BYTES];
    let mut filled = 0;
    while filled < MAX_BYTES {
        let n = file.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(of_prefix(&buf[..filled]))
}

/// The fingerprint from the first bytes of a file.
pub fn of_prefix(prefix: &[u8]) -> Option<u64> {
    let head = match memchr::memchr(b'\n', prefix) {
        Some(nl) => &prefix[..=nl],
        None if prefix.len() >= MAX_BYTES => &prefix[..MAX_BYTES],
        None => return None,
    };
    Some(xxh3_64(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_complete_first_line() {
        assert_eq!(of_prefix(b""), None);
        assert_eq!(of_prefix(b"partial"), None);
        assert!(of_prefix(b"line\n").is_some());
    }

    #[test]
    fn stable_as_the_file_grows() {
        let a = of_prefix(b"first\n").unwrap();
        assert_eq!(of_prefix(b"first\nsecond\nthird\n"), Some(a));
        assert_ne!(of_prefix(b"other\n"), Some(a));
    }

    #[test]
    fn long_first_line_uses_max_bytes() {
        let long = vec![b'x'; MAX_BYTES + 10];
        assert_eq!(of_prefix(&long), of_prefix(&long[..MAX_BYTES]));
        assert!(of_prefix(&long[..MAX_BYTES]).is_some());
    }
}
