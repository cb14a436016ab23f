//! Where a snapshot diff goes: a small trait the layer writer implements, plus a recording
//! sink (tests, debugging) and a plain tar sink.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use registry::DigestHasher;

use crate::fs::unpack::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::fs::EntryMeta;

/// A device node or fifo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

/// Receives the changes of a snapshot in tar order (a directory before its contents).
/// Paths are relative to the rootfs, without a leading `/`.
pub trait DiffSink {
    fn dir(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()>;
    fn file(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()>;
    fn symlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()>;
    /// `path` is another name of the file already emitted as `target` in this diff; `meta`
    /// is that file's (tar readers such as containers/storage apply a link entry's mode).
    fn hardlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()>;
    fn device(&mut self, path: &Path, kind: DeviceKind, meta: &EntryMeta) -> io::Result<()>;
    /// `path` was deleted.
    fn whiteout(&mut self, path: &Path) -> io::Result<()>;
    /// Everything under `dir` from lower layers is hidden (emitted right after `dir` itself).
    fn opaque(&mut self, dir: &Path) -> io::Result<()>;
}

/// One recorded change; file contents are kept as their sha256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Dir(PathBuf, EntryMeta),
    File(PathBuf, EntryMeta, String),
    Symlink(PathBuf, PathBuf, EntryMeta),
    Hardlink(PathBuf, PathBuf),
    Device(PathBuf, DeviceKind, EntryMeta),
    Whiteout(PathBuf),
    Opaque(PathBuf),
}

impl Change {
    pub fn path(&self) -> &Path {
        match self {
            Change::Dir(p, _)
            | Change::File(p, _, _)
            | Change::Symlink(p, _, _)
            | Change::Hardlink(p, _)
            | Change::Device(p, _, _)
            | Change::Whiteout(p)
            | Change::Opaque(p) => p,
        }
    }
}

/// Records changes in memory (file contents hashed, never kept).
#[derive(Debug, Default)]
pub struct RecordingSink {
    pub changes: Vec<Change>,
}

impl DiffSink for RecordingSink {
    fn dir(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()> {
        self.changes.push(Change::Dir(path.into(), meta.clone()));
        Ok(())
    }
    fn file(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        _size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let mut h = DigestHasher::sha256();
        io::copy(data, &mut h)?;
        self.changes.push(Change::File(
            path.into(),
            meta.clone(),
            h.finish().to_string(),
        ));
        Ok(())
    }
    fn symlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()> {
        self.changes
            .push(Change::Symlink(path.into(), target.into(), meta.clone()));
        Ok(())
    }
    fn hardlink(&mut self, path: &Path, target: &Path, _meta: &EntryMeta) -> io::Result<()> {
        self.changes
            .push(Change::Hardlink(path.into(), target.into()));
        Ok(())
    }
    fn device(&mut self, path: &Path, kind: DeviceKind, meta: &EntryMeta) -> io::Result<()> {
        self.changes
            .push(Change::Device(path.into(), kind, meta.clone()));
        Ok(())
    }
    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        self.changes.push(Change::Whiteout(path.into()));
        Ok(())
    }
    fn opaque(&mut self, dir: &Path) -> io::Result<()> {
        self.changes.push(Change::Opaque(dir.into()));
        Ok(())
    }
}

/// Writes the diff as an uncompressed OCI layer tar (PAX xattrs, `.wh.` whiteouts).
pub struct TarSink<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> TarSink<W> {
    pub fn new(writer: W) -> TarSink<W> {
        TarSink {
            builder: tar::Builder::new(writer),
        }
    }

    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn header(&mut self, kind: tar::EntryType, meta: &EntryMeta) -> io::Result<tar::Header> {
        if !meta.xattrs.is_empty() {
            let records: Vec<(String, &[u8])> = meta
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mtime(meta.mtime.secs.max(0) as u64);
        h.set_size(0);
        Ok(h)
    }

    fn empty_file(&mut self, path: &Path) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        self.builder.append_data(&mut h, path, io::empty())
    }
}

impl<W: Write> DiffSink for TarSink<W> {
    fn dir(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Directory, meta)?;
        self.builder.append_data(&mut h, path, io::empty())
    }
    fn file(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Regular, meta)?;
        h.set_size(size);
        self.builder.append_data(&mut h, path, data.take(size))
    }
    fn symlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Symlink, meta)?;
        self.builder.append_link(&mut h, path, target)
    }
    fn hardlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()> {
        let mut h = self.header(tar::EntryType::Link, meta)?;
        h.set_size(0);
        self.builder.append_link(&mut h, path, target)
    }
    fn device(&mut self, path: &Path, kind: DeviceKind, meta: &EntryMeta) -> io::Result<()> {
        let (t, major, minor) = match kind {
            DeviceKind::Char { major, minor } => (tar::EntryType::Char, major, minor),
            DeviceKind::Block { major, minor } => (tar::EntryType::Block, major, minor),
            DeviceKind::Fifo => (tar::EntryType::Fifo, 0, 0),
        };
        let mut h = self.header(t, meta)?;
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        self.builder.append_data(&mut h, path, io::empty())
    }
    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        let mut name = std::ffi::OsString::from(WHITEOUT_PREFIX);
        name.push(path.file_name().unwrap_or_default());
        let wh = path.with_file_name(name);
        self.empty_file(&wh)
    }
    fn opaque(&mut self, dir: &Path) -> io::Result<()> {
        self.empty_file(&dir.join(OPAQUE_WHITEOUT))
    }
}
