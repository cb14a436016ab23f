//! The registry crate's error type: one enum, subjects carried in fields.

use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },

    #[error("invalid reference {value:?}: {reason}")]
    InvalidReference { value: String, reason: String },

    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("blob {0} not found in the store")]
    BlobNotFound(Digest),

    #[error("image {0} not found")]
    ImageNotFound(String),

    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),

    #[error("invalid {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    /// The registry could not be reached (after retries). `url` never carries credentials.
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// The registry answered with an error status; `message` is its (size-capped) error body.
    #[error("{what}: {status}{}", fmt_registry_message(.message))]
    Registry {
        what: String,
        status: u16,
        message: String,
    },

    #[error("{what}: unauthorized: authentication required{}; run `kiln login {registry}`", fmt_registry_message(.message))]
    Unauthorized {
        what: String,
        registry: String,
        message: String,
    },

    #[error("{what}: denied: requested access to the resource is denied{}", fmt_registry_message(.message))]
    Denied { what: String, message: String },

    #[error("{what}: not found{}", fmt_registry_message(.message))]
    RemoteNotFound { what: String, message: String },

    #[error("{what}: manifest invalid{}", fmt_registry_message(.message))]
    ManifestInvalid { what: String, message: String },

    #[error("{what}: too many requests (rate limited by {registry}){details}; log in (`kiln login`) or configure a mirror (--registry-mirror)")]
    RateLimited {
        what: String,
        registry: String,
        details: String,
    },

    #[error("authentication with {registry} failed: {reason}")]
    Auth { registry: String, reason: String },

    #[error("credential helper docker-credential-{helper}: {reason}")]
    CredentialHelper { helper: String, reason: String },

    #[error("{reference}: no image for platform {wanted} (available: {available})")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

fn fmt_registry_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Attach a path to an `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
