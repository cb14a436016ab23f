//! [`LayerWriter`]: tar entries -> (sha256 of the tar stream = diff_id) -> compressor ->
//! the store's verifying [`BlobWriter`], in one streaming pass with bounded memory.
//!
//! Output is deterministic: the same entries give the same bytes (no gzip mtime or OS noise,
//! empty uname/gname, zero device numbers for non-devices, PAX records in key order).

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use registry::descriptor::Descriptor;
use registry::media_types::Compression;
use registry::store::{BlobWriter, Store};
use registry::{Digest, DigestHasher};

use super::pax::{self, Fields, BLOCK};
use super::pgzip::ParallelGzip;
use super::{EntryMeta, Error, Result, SourceDateEpoch};
use crate::context::glob::clean;
use crate::fs::name as names;

const BUF_SIZE: usize = 1 << 20;
/// Docker's and BuildKit's default deflate level.
pub const GZIP_LEVEL: u32 = 6;
/// zstd's own default level, which BuildKit also uses for zstd layers.
pub const ZSTD_LEVEL: i32 = 3;

/// The encoder every zstd layer goes through: [`ZSTD_LEVEL`], one worker per core.
///
/// Multithreaded zstd cuts the stream into jobs whose size follows from the level, not from
/// the worker count, so any count >= 1 writes the same bytes and layer digests do not depend
/// on the machine. 0 workers (zstd's single-threaded mode) writes different bytes: never used.
pub fn zstd_encoder<W: Write>(inner: W) -> io::Result<zstd::Encoder<'static, W>> {
    zstd_encoder_with(inner, super::compression_workers().min(ZSTD_MAX_WORKERS))
}

/// Each zstd worker holds ~15 MiB at level 3: four keep a build well under 100 MB of memory on
/// any machine, and already match the zstd CLI's speed on the 2-core reference machine.
const ZSTD_MAX_WORKERS: usize = 4;

/// [`zstd_encoder`] with a given worker count (tests prove the count does not matter).
pub(crate) fn zstd_encoder_with<W: Write>(
    inner: W,
    workers: usize,
) -> io::Result<zstd::Encoder<'static, W>> {
    let mut enc = zstd::Encoder::new(inner, ZSTD_LEVEL)?;
    enc.multithread(u32::try_from(workers.max(1)).unwrap_or(u32::MAX))?;
    Ok(enc)
}

/// What [`LayerWriter::finish`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The stored blob, with the OCI layer media type of its compression.
    pub descriptor: Descriptor,
    /// The sha256 of the uncompressed tar stream (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

enum Sink {
    Plain(BlobWriter),
    Gzip(ParallelGzip<BlobWriter>),
    Zstd(zstd::Encoder<'static, BlobWriter>),
}

impl Sink {
    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Gzip(w) => w.finish(),
            Sink::Zstd(w) => w.finish(),
        }
    }
}

/// Hashes the uncompressed stream on its way into the compressor (not for uncompressed
/// layers: there the blob writer's digest is the diff_id, and one hash pass is enough).
struct Tee {
    sink: Sink,
    hasher: Option<DigestHasher>,
    written: u64,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Plain(w) => w.write_all(buf)?,
            Sink::Gzip(w) => w.write_all(buf)?,
            Sink::Zstd(w) => w.write_all(buf)?,
        }
        if let Some(h) = &mut self.hasher {
            h.update(buf);
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Device kinds for [`LayerWriter::add_device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// Writes one layer into the store. Entries are written in the order they are added; the
/// caller adds parents before children. Dropping an unfinished writer stores nothing.
pub struct LayerWriter {
    out: BufWriter<Tee>,
    compression: Compression,
    epoch: Option<SourceDateEpoch>,
    header: Vec<u8>,
    copy_buf: Vec<u8>,
}

/// Normalizes an entry path: relative, no `./` or `/` in front, never escaping the root.
/// Paths are kiln's string form of names; the result is the raw bytes for the header
/// (see [`names`]).
fn entry_path(path: &str) -> Result<Vec<u8>> {
    let bad = |reason| Error::BadPath {
        path: path.to_string(),
        reason,
    };
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let cleaned = clean(&format!("/{path}"));
    let rel = cleaned.trim_start_matches('/');
    if rel.is_empty() {
        return Err(bad("names the layer root"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(bad("contains '..'"));
    }
    Ok(names::decode(rel).into_owned())
}

impl LayerWriter {
    pub fn new(
        store: &Store,
        compression: Compression,
        epoch: Option<SourceDateEpoch>,
    ) -> Result<LayerWriter> {
        let blob = store.blob_writer()?;
        let sink = match compression {
            Compression::None => Sink::Plain(blob),
            // Multi-member gzip compressed on all cores; incompressible chunks are stored.
            Compression::Gzip => Sink::Gzip(ParallelGzip::new(blob, GZIP_LEVEL)),
            Compression::Zstd => Sink::Zstd(zstd_encoder(blob).map_err(Error::Write)?),
        };
        let tee = Tee {
            hasher: (compression != Compression::None).then(DigestHasher::sha256),
            sink,
            written: 0,
        };
        Ok(LayerWriter {
            out: BufWriter::with_capacity(BUF_SIZE, tee),
            compression,
            epoch,
            header: Vec::with_capacity(4 * BLOCK),
            copy_buf: Vec::new(),
        })
    }

    fn mtime(&self, meta: &EntryMeta) -> i64 {
        match self.epoch {
            Some(SourceDateEpoch(e)) => meta.mtime.min(e),
            None => meta.mtime,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        name: &[u8],
        typeflag: u8,
        meta: &EntryMeta,
        size: u64,
        linkname: &[u8],
        dev: (u32, u32),
    ) -> Result<()> {
        self.header.clear();
        let fields = Fields {
            name,
            typeflag,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            size,
            mtime: self.mtime(meta),
            linkname,
            devmajor: dev.0,
            devminor: dev.1,
            xattrs: &meta.xattrs,
        };
        pax::encode(&fields, &mut self.header);
        self.out.write_all(&self.header).map_err(Error::Write)
    }

    /// A directory (`path/` in the tar).
    pub fn add_dir(&mut self, path: &str, meta: &EntryMeta) -> Result<()> {
        let mut name = entry_path(path)?;
        name.push(b'/');
        self.header(&name, b'5', meta, 0, b"", (0, 0))
    }

    /// A regular file of exactly `size` bytes read from `reader`. A reader that gives fewer
    /// or more bytes is an error (the file changed while being archived).
    pub fn add_file(
        &mut self,
        path: &str,
        meta: &EntryMeta,
        size: u64,
        mut reader: impl Read,
    ) -> Result<()> {
        let name = entry_path(path)?;
        self.header(&name, b'0', meta, size, b"", (0, 0))?;
        if self.copy_buf.is_empty() {
            self.copy_buf = vec![0u8; BUF_SIZE];
        }
        let io_err = |e| Error::Io {
            path: names::decode_path(path).into_owned(),
            source: e,
        };
        let mut left = size;
        while left > 0 {
            let want = left.min(self.copy_buf.len() as u64) as usize;
            let n = match reader.read(&mut self.copy_buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            self.out
                .write_all(&self.copy_buf[..n])
                .map_err(Error::Write)?;
            left -= n as u64;
        }
        let extra = loop {
            match reader.read(&mut self.copy_buf[..1]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            }
        };
        if left > 0 || extra > 0 {
            return Err(Error::SizeChanged {
                path: path.to_string(),
                expected: size,
                actual: size - left + extra as u64,
            });
        }
        self.pad(size)
    }

    /// A regular file read from the host.
    pub fn add_file_from(&mut self, path: &str, meta: &EntryMeta, host: &Path) -> Result<()> {
        let f = std::fs::File::open(host).map_err(|e| Error::Io {
            path: host.to_path_buf(),
            source: e,
        })?;
        let size = f
            .metadata()
            .map_err(|e| Error::Io {
                path: host.to_path_buf(),
                source: e,
            })?
            .len();
        self.add_file(path, meta, size, f)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out
                .write_all(&[0u8; BLOCK][..BLOCK - rem])
                .map_err(Error::Write)?;
        }
        Ok(())
    }

    /// A symbolic link; the target is stored as given.
    pub fn add_symlink(&mut self, path: &str, meta: &EntryMeta, target: &str) -> Result<()> {
        let name = entry_path(path)?;
        self.header(&name, b'2', meta, 0, &names::decode(target), (0, 0))
    }

    /// A hard link to `target`, an entry earlier in this layer.
    pub fn add_hardlink(&mut self, path: &str, meta: &EntryMeta, target: &str) -> Result<()> {
        let name = entry_path(path)?;
        let target = entry_path(target)?;
        self.header(&name, b'1', meta, 0, &target, (0, 0))
    }

    /// A character or block device, or a FIFO (device numbers are ignored for FIFOs).
    pub fn add_device(
        &mut self,
        path: &str,
        meta: &EntryMeta,
        kind: DeviceKind,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        let name = entry_path(path)?;
        let (flag, dev) = match kind {
            DeviceKind::Char => (b'3', (major, minor)),
            DeviceKind::Block => (b'4', (major, minor)),
            DeviceKind::Fifo => (b'6', (0, 0)),
        };
        self.header(&name, flag, meta, 0, b"", dev)
    }

    /// A whiteout: `path` was deleted (`dir/.wh.name`, an empty root-owned file).
    pub fn add_whiteout(&mut self, path: &str) -> Result<()> {
        let name = entry_path(path)?;
        let base_at = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        let mut wh = name[..base_at].to_vec();
        wh.extend_from_slice(b".wh.");
        wh.extend_from_slice(&name[base_at..]);
        self.header(&wh, b'0', &whiteout_meta(), 0, b"", (0, 0))
    }

    /// An opaque-directory marker: nothing of `dir` from lower layers shows through.
    pub fn add_opaque(&mut self, dir: &str) -> Result<()> {
        let mut name = entry_path(dir)?;
        name.extend_from_slice(b"/.wh..wh..opq");
        self.header(&name, b'0', &whiteout_meta(), 0, b"", (0, 0))
    }

    /// Ends the archive, commits the blob to the store and describes it.
    pub fn finish(mut self) -> Result<LayerInfo> {
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(Error::Write)?;
        let tee = self
            .out
            .into_inner()
            .map_err(|e| Error::Write(e.into_error()))?;
        let uncompressed_size = tee.written;
        let blob = tee.sink.finish().map_err(Error::Write)?;
        let (digest, size) = blob.commit(None)?;
        let diff_id = match tee.hasher {
            Some(h) => h.finish(),
            None => digest.clone(),
        };
        Ok(LayerInfo {
            descriptor: Descriptor::new(self.compression.oci_layer_type(), digest, size),
            diff_id,
            uncompressed_size,
        })
    }
}

fn whiteout_meta() -> EntryMeta {
    EntryMeta::new(0o644, 0)
}
