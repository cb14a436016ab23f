//! Root-confined filesystem operations and safe layer unpacking.
//!
//! - [`root`]: resolve paths inside a directory as if it were `/` (`openat2(RESOLVE_IN_ROOT)`
//!   with a user-space fallback).
//! - [`unpack`]: apply an OCI layer tar onto a directory (whiteouts, hardlinks, xattrs,
//!   devices, owners), rejecting or confining hostile entries.
//! - [`name`]: file names that are not UTF-8, carried losslessly in strings.
//! - [`meta`]: entry metadata (mode, owner, mtime, xattrs), read and applied.
//! - [`parents`]: what the layers below hold at a directory a layer needs but does not list.
//! - [`idmap`]: the user namespace kiln runs in (rootless), which decides how owners and
//!   overlay xattrs are written.

pub mod error;
pub mod idmap;
pub mod meta;
pub mod name;
pub mod parents;
mod pending;
pub mod root;
pub mod unpack;

pub use error::FsError;
pub use meta::{EntryMeta, Timestamp};
pub use root::Root;
pub use unpack::{
    unpack_into, unpack_layer, IdMap, IdRange, Ownership, UnpackOptions, UnpackStats, WhiteoutMode,
};

#[cfg(test)]
mod tests;
