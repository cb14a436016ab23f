//! Wire types: manifests, indexes and image configs, in both OCI and Docker schema2 forms.
//!
//! Configs keep fields kiln does not model in `extra`, so a pulled config survives a round trip.
//! Digests are always taken over stored bytes, never over a re-serialization.

mod config;
mod manifest;

pub use config::{ContainerConfig, EmptyObject, HealthConfig, History, ImageConfig, RootFs};
pub use manifest::{Index, Manifest, ManifestKind};
