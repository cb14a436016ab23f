//! `<cache>/lock`: builds hold it shared for their whole run, prune holds it exclusive.
//!
//! Without it, a prune (and the store gc after it) could drop a record and its layer between
//! a build's cache hit and the moment the build writes a manifest naming that layer. flock
//! locks die with the process, so a killed build never wedges prune.

use std::fs::File;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use super::{Error, Result};

/// A shared hold on the cache: while any lease is alive, prune waits.
#[derive(Debug)]
pub struct CacheLease {
    _file: File,
}

/// The exclusive hold prune takes.
#[derive(Debug)]
pub(super) struct ExclusiveLock {
    _file: File,
}

fn lock_file(path: &Path, op: FlockOperation) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    loop {
        match flock(&file, op) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io(path, e.into())),
        }
    }
}

pub(super) fn shared(path: &Path) -> Result<CacheLease> {
    lock_file(path, FlockOperation::LockShared).map(|_file| CacheLease { _file })
}

pub(super) fn exclusive(path: &Path) -> Result<ExclusiveLock> {
    lock_file(path, FlockOperation::LockExclusive).map(|_file| ExclusiveLock { _file })
}
