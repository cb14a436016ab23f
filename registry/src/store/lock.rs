//! The store lock: an exclusive `flock(2)` on `<root>/lock`.
//!
//! flock locks belong to the open file description, so two threads of one process that each
//! open the file exclude each other just as two processes do. The lock is released when the
//! guard is dropped (or the process dies).

use std::fs::File;

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// Held while the store's shared metadata (index.json) is read, modified and written, and
/// during gc.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// Takes the store's exclusive lock, waiting for other holders.
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.root().join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io(path, e.into())),
            }
        }
        Ok(StoreLock { _file: file })
    }
}
