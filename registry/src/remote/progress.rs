//! Transfer progress events. The library reports; the CLI decides how to draw them.

use crate::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A blob transfer started (`size` bytes in all; `resumed_at` when continuing).
    Started { digest: Digest, size: u64 },
    /// `n` more bytes moved.
    Bytes { digest: Digest, n: u64 },
    /// A transfer failed and is retried (resuming at `offset` when the server allows).
    Retrying { digest: Digest, offset: u64 },
    /// The blob was already there (`Already exists`), or mounted from `from`.
    Skipped {
        digest: Digest,
        mounted_from: Option<String>,
    },
    /// The blob is complete and verified.
    Done { digest: Digest },
}

/// Receives progress events from concurrent transfers.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// A progress sink shared by concurrent transfers.
pub type SharedProgress = std::sync::Arc<dyn Progress>;

/// Ignores everything (`--quiet`, library callers).
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: Event) {}
}
