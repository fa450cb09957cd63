//! Compressing a byte range of a file to a staging file, hashing the raw
//! bytes on the way, and decompressing an archived object back.
//!
//! The staging file makes an upload restartable: after a crash the same
//! compressed bytes are still there, so parts already in S3 stay valid.
//! Memory is one read buffer plus the encoder's window, whatever the size.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use logpipe_config::archive::ArchiveCompression;
use sha2::{Digest, Sha256};

const BUF: usize = 1024 * 1024;

/// What a staging file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Staged {
    /// Raw bytes compressed (`end - start` of the source range).
    pub raw_len: u64,
    /// SHA-256 of the raw bytes, lowercase hex.
    pub sha256: String,
    pub compressed_len: u64,
}

/// Compresses bytes `start..end` of `src` into `dst` (replaced), fsynced.
/// Fails if the file is shorter than `end`: the range must be exactly what
/// the caller believes was written.
pub fn compress_range(
    src: &Path,
    start: u64,
    end: u64,
    dst: &Path,
    codec: ArchiveCompression,
    level: i32,
) -> io::Result<Staged> {
    let input = File::open(src)?;
    let out = BufWriter::with_capacity(BUF, File::create(dst)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut writer: Box<dyn FinishWrite> = match codec {
        ArchiveCompression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, level)?;
            // Lets `verify` and decompressors know the size up front.
            enc.set_pledged_src_size(Some(end - start))?;
            enc.include_checksum(true)?;
            Box::new(enc)
        }
        ArchiveCompression::Gzip => Box::new(flate2::write::GzEncoder::new(out, flate2::Compression::default())),
    };
    let mut pos = start;
    while pos < end {
        let want = ((end - pos) as usize).min(BUF);
        let n = input.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends at {pos}, before {end}", src.display()),
            ));
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        pos += n as u64;
    }
    let file = writer.finish_file()?;
    file.sync_all()?;
    let compressed_len = file.metadata()?.len();
    Ok(Staged {
        raw_len: end - start,
        sha256: hex::encode(hasher.finalize()),
        compressed_len,
    })
}

/// An encoder that can be finished into the file under it.
trait FinishWrite: Write {
    fn finish_file(self: Box<Self>) -> io::Result<File>;
}

impl FinishWrite for zstd::stream::write::Encoder<'static, BufWriter<File>> {
    fn finish_file(self: Box<Self>) -> io::Result<File> {
        (*self).finish()?.into_inner().map_err(|e| e.into_error())
    }
}

impl FinishWrite for flate2::write::GzEncoder<BufWriter<File>> {
    fn finish_file(self: Box<Self>) -> io::Result<File> {
        (*self).finish()?.into_inner().map_err(|e| e.into_error())
    }
}

/// A reader of the raw bytes of a compressed stream.
pub fn decoder<'a>(r: impl Read + 'a, codec: ArchiveCompression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        ArchiveCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        ArchiveCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
    })
}

/// Decompresses `r` into `out`; returns the raw length and its SHA-256 (hex).
pub fn decompress_hashing(r: impl Read, codec: ArchiveCompression, mut out: impl Write) -> io::Result<(u64, String)> {
    let mut dec = decoder(r, codec)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = dec.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// The codec named in an object's metadata or by its key's extension.
pub fn codec_named(name: &str) -> Option<ArchiveCompression> {
    match name {
        "zstd" | "zst" => Some(ArchiveCompression::Zstd),
        "gzip" | "gz" => Some(ArchiveCompression::Gzip),
        _ => None,
    }
}

pub fn codec_name(c: ArchiveCompression) -> &'static str {
    match c {
        ArchiveCompression::Zstd => "zstd",
        ArchiveCompression::Gzip => "gzip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(codec: ArchiveCompression) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.log");
        // Binary, CRLF and a last line without newline: all must come back as is.
        let mut data = Vec::new();
        for i in 0..50_000u32 {
            data.extend_from_slice(format!("line {i} \r\n").as_bytes());
            data.extend_from_slice(b"\xff\x00 ");
        }
        data.extend_from_slice(b"no newline");
        std::fs::write(&src, &data).unwrap();
        let dst = dir.path().join("out");
        let st = compress_range(&src, 100, data.len() as u64, &dst, codec, 3).unwrap();
        assert_eq!(st.raw_len, data.len() as u64 - 100);
        assert_eq!(st.sha256, hex::encode(Sha256::digest(&data[100..])));
        assert_eq!(st.compressed_len, std::fs::metadata(&dst).unwrap().len());
        let mut back = Vec::new();
        let (n, sha) = decompress_hashing(File::open(&dst).unwrap(), codec, &mut back).unwrap();
        assert_eq!(back, &data[100..]);
        assert_eq!((n, sha), (st.raw_len, st.sha256));
    }

    #[test]
    fn zstd_is_byte_exact() {
        roundtrip(ArchiveCompression::Zstd);
    }

    #[test]
    fn gzip_is_byte_exact() {
        roundtrip(ArchiveCompression::Gzip);
    }

    #[test]
    fn a_file_shorter_than_the_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.log");
        std::fs::write(&src, b"abc\n").unwrap();
        let e = compress_range(&src, 0, 10, &dir.path().join("o"), ArchiveCompression::Zstd, 3).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
