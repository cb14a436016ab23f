//! A cache record and its file format.
//!
//! ```text
//! kiln-cache-record/1 sha256:<hex of the body>\n
//! {"key":"sha256:...","layer":{"descriptor":{...},"diffId":"sha256:..."},"history":{...},
//!  "created":"2024-01-01T00:00:00Z","size":123}
//! ```
//!
//! The header's digest proves the body is whole; the body names its own key, so a record copied
//! or renamed to another key's file is rejected too. `last_used` is the file's mtime, which
//! makes a touch one `utimensat` and keeps it out of the body.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use registry::spec::History;
use registry::{Descriptor, Digest};
use serde::{Deserialize, Serialize};

use super::key::CacheKey;
use super::LayerRef;

const MAGIC: &str = "kiln-cache-record/1";

/// What a step produced: the layer (none for steps that only change the config) and the
/// history entry to append, plus bookkeeping for prune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRecord {
    pub layer: Option<LayerRef>,
    pub history: History,
    pub created: SystemTime,
    pub last_used: SystemTime,
    /// Bytes the record holds in the store: the (compressed) layer size, 0 without a layer.
    pub size: u64,
}

impl CacheRecord {
    /// A fresh record for a step that just ran: created and last used now, sized by its layer.
    pub fn new(layer: Option<LayerRef>, history: History) -> CacheRecord {
        let now = SystemTime::now();
        let size = layer.as_ref().map_or(0, |l| l.descriptor.size);
        CacheRecord {
            layer,
            history,
            created: now,
            last_used: now,
            size,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Body {
    key: Digest,
    layer: Option<LayerBody>,
    history: History,
    created: DateTime<Utc>,
    size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LayerBody {
    descriptor: Descriptor,
    diff_id: Digest,
}

/// The bytes of a record file (without `last_used`, which lives in the file's mtime).
pub(super) fn encode(key: &CacheKey, record: &CacheRecord) -> Vec<u8> {
    let body = Body {
        key: key.digest().clone(),
        layer: record.layer.as_ref().map(|l| LayerBody {
            descriptor: l.descriptor.clone(),
            diff_id: l.diff_id.clone(),
        }),
        history: record.history.clone(),
        created: DateTime::<Utc>::from(record.created),
        size: record.size,
    };
    let body = serde_json::to_vec(&body).expect("cache record serializes");
    let mut out = format!("{MAGIC} {}\n", Digest::of(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Why a record file was rejected (for the debug log; the record is then a miss).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Corrupt {
    Header,
    Checksum,
    Body(String),
    WrongKey,
}

/// Parses a record file's bytes; `last_used` is the file's mtime.
pub(super) fn decode(
    key: &CacheKey,
    bytes: &[u8],
    last_used: SystemTime,
) -> Result<CacheRecord, Corrupt> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Corrupt::Header)?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| Corrupt::Header)?;
    let body = &bytes[nl + 1..];
    let digest = header
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or(Corrupt::Header)?;
    let mut h = registry::DigestHasher::new(digest.algorithm());
    h.update(body);
    if h.finish() != digest {
        return Err(Corrupt::Checksum);
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| Corrupt::Body(e.to_string()))?;
    if &body.key != key.digest() {
        return Err(Corrupt::WrongKey);
    }
    Ok(CacheRecord {
        layer: body.layer.map(|l| LayerRef {
            descriptor: l.descriptor,
            diff_id: l.diff_id,
        }),
        history: body.history,
        created: body.created.into(),
        last_used,
        size: body.size,
    })
}
