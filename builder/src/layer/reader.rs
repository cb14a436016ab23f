//! Reading layers back from the store (verified while streaming) and recognizing local
//! archives for ADD's auto-extraction (gzip, bzip2, xz, zstd or plain tar, by magic).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use registry::descriptor::Descriptor;
use registry::media_types::Compression;
use registry::store::Store;
use registry::{Digest, DigestHasher};

use super::{Error, Result};

/// Streams a reader while hashing it; at the end, a digest or size other than the expected
/// one is an error instead of a clean EOF, so corrupt content is never taken for good.
struct Verifying<R> {
    inner: R,
    hasher: Option<DigestHasher>,
    expected: Digest,
    size: u64,
}

impl<R: Read> Read for Verifying<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(h) = self.hasher.as_mut() else {
            return Ok(n);
        };
        if n > 0 {
            h.update(&buf[..n]);
            if h.len() > self.size {
                return Err(corrupt(format!(
                    "blob {} is larger than its descriptor's {} bytes",
                    self.expected, self.size
                )));
            }
            return Ok(n);
        }
        let h = self.hasher.take().expect("checked above");
        let len = h.len();
        let actual = h.finish();
        if len != self.size || actual != self.expected {
            return Err(corrupt(format!(
                "blob {} failed verification: got {actual} ({len} bytes)",
                self.expected
            )));
        }
        Ok(0)
    }
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Opens a stored layer as its uncompressed tar stream. The compression comes from the
/// media type, or is sniffed from the magic bytes for unknown types. The compressed bytes
/// are verified against the descriptor as they stream: a mismatch surfaces as a read error.
pub fn open_layer(store: &Store, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
    let file = store.open_blob(&desc.digest)?;
    let verified = Verifying {
        inner: file,
        hasher: Some(DigestHasher::new(desc.digest.algorithm())),
        expected: desc.digest.clone(),
        size: desc.size,
    };
    let mut buf = BufReader::with_capacity(1 << 20, verified);
    let compression = match Compression::of_layer(&desc.media_type) {
        Some(c) => c,
        None => {
            let head = buf.fill_buf().map_err(|e| Error::Io {
                path: store.blob_path(&desc.digest),
                source: e,
            })?;
            Compression::sniff(head)
        }
    };
    Ok(match compression {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buf).map_err(Error::Write)?),
    })
}

/// The archive formats ADD extracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl ArchiveFormat {
    /// The compression of a stream, by its first bytes (`Tar` when none is recognized).
    pub fn sniff(head: &[u8]) -> ArchiveFormat {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            ArchiveFormat::Gzip
        } else if head.starts_with(b"BZh") {
            ArchiveFormat::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            ArchiveFormat::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            ArchiveFormat::Zstd
        } else {
            ArchiveFormat::Tar
        }
    }

    fn decompress<'a, R: BufRead + Send + 'a>(self, r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            ArchiveFormat::Tar => Box::new(r),
            ArchiveFormat::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            ArchiveFormat::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
            ArchiveFormat::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(r)),
            ArchiveFormat::Zstd => Box::new(zstd::Decoder::with_buffer(r)?),
        })
    }
}

/// Whether a 512-byte block is a tar header: its checksum field must match its bytes
/// (the test Go's `tar.Reader.Next` applies first). An all-zero block (an empty archive)
/// is not a header, so ADD copies such a file as is, as Docker does.
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .take_while(|c| *c != '\0')
        .collect();
    let Ok(stored) = i64::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as i64;
        signed += b as i8 as i64;
    }
    stored == unsigned || stored == signed
}

/// If the file at `path` is a (possibly compressed) tar archive, its format.
pub fn sniff_archive(path: &Path) -> Result<Option<ArchiveFormat>> {
    let io_err = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut buf = BufReader::new(file);
    let format = ArchiveFormat::sniff(buf.fill_buf().map_err(io_err)?);
    let mut block = Vec::with_capacity(512);
    // A stream that fails to decompress is simply not an archive.
    let Ok(reader) = format.decompress(buf) else {
        return Ok(None);
    };
    if reader.take(512).read_to_end(&mut block).is_err() {
        return Ok(None);
    }
    Ok(is_tar_header(&block).then_some(format))
}

/// Opens a local archive for ADD as its uncompressed tar stream, or `None` when the file is
/// not an archive (ADD then copies it as is).
pub fn open_archive(path: &Path) -> Result<Option<Box<dyn Read + Send>>> {
    let Some(format) = sniff_archive(path)? else {
        return Ok(None);
    };
    let file = File::open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let reader = format
        .decompress(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(Some(reader))
}
