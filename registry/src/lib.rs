//! kiln's image model, local content-addressed store and distribution client.
//!
//! - [`digest`], [`descriptor`], [`media_types`], [`spec`]: the wire model (OCI image spec and
//!   Docker schema2), parsed once and always valid.
//! - [`reference`]: image names with Docker's normalization (`busybox` =
//!   `docker.io/library/busybox:latest`).
//! - [`store`]: the local store, an OCI image layout on disk; blobs are proven before they
//!   appear under a digest.
//! - [`archive`]: docker-archive (`docker save`/`docker load`) and OCI layout tarballs.
//! - [`remote`]: the distribution client (auth, pull, push).

pub mod archive;
pub mod descriptor;
pub mod digest;
pub mod error;
pub mod image;
pub mod media_types;
pub mod reference;
pub mod remote;
pub mod spec;
pub mod store;

pub use descriptor::{Descriptor, Platform};
pub use digest::{Digest, DigestHasher};
pub use error::{Error, Result};
