//! Cache keys: a sha256 over a canonical, unambiguous encoding of what a step depends on.
//!
//! Every field is written as `tag (1 byte) | length (u64 big-endian) | bytes`, so no two
//! different sequences of fields encode to the same bytes (`"ab"+"c"` != `"a"+"bc"`, and an
//! instruction `x` != a build arg `x`). Build args are sorted by name before encoding (the order
//! the executor found them in does not matter); inputs and mounts keep their order (a later COPY
//! source overwrites an earlier one, so order is meaningful).
//!
//! The builder never takes secret values: a secret mount contributes only its id, target and
//! env name. Keys are one-way hashes; nothing else of the preimage is stored anywhere.

use std::fmt;
use std::str::FromStr;

use registry::{Digest, DigestHasher, Platform};

use crate::dockerfile::{CacheSharing, Mount, MountType};

/// Bumped whenever the encoding or what a step's key covers changes: old records then simply
/// stop matching.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// Field tags of the encoding. Never reuse or renumber one; add new ones instead.
mod tag {
    pub const VERSION: u8 = 0x01;
    pub const BASE: u8 = 0x02;
    pub const SCRATCH: u8 = 0x03;
    pub const PLATFORM: u8 = 0x04;
    pub const PARENT: u8 = 0x05;
    pub const INSTRUCTION: u8 = 0x06;
    pub const ARG_NAME: u8 = 0x07;
    pub const ARG_VALUE: u8 = 0x08;
    pub const INPUT: u8 = 0x09;
    pub const MOUNT: u8 = 0x0a;
    pub const MOUNT_FIELD: u8 = 0x0b;
    pub const ABSENT: u8 = 0x0c;
    pub const COUNT: u8 = 0xff;
}

/// The identity of a step's result: `sha256:<hex>` of its encoded inputs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(Digest);

impl CacheKey {
    /// The key a stage starts from: its base image's manifest digest (`None` for `scratch`),
    /// the target platform and [`CACHE_FORMAT_VERSION`].
    pub fn root(base_manifest: Option<&Digest>, platform: &Platform) -> CacheKey {
        let mut enc = Encoder::new();
        enc.field(tag::VERSION, &CACHE_FORMAT_VERSION.to_be_bytes());
        match base_manifest {
            Some(d) => enc.field(tag::BASE, d.to_string().as_bytes()),
            None => enc.field(tag::SCRATCH, b"scratch"),
        }
        enc.platform(platform);
        enc.finish()
    }

    /// Starts the key of a step whose parent (the previous step, or the stage root) has `parent`.
    pub fn builder(parent: &CacheKey) -> CacheKeyBuilder {
        CacheKeyBuilder {
            parent: parent.clone(),
            instruction: None,
            args: Vec::new(),
            platform: None,
            inputs: Vec::new(),
            mounts: Vec::new(),
        }
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The hex part, used as the record's file name.
    pub fn hex(&self) -> &str {
        self.0.hex()
    }

    /// Rebuilds a key from a digest (e.g. a record's file name).
    pub fn from_digest(digest: Digest) -> CacheKey {
        CacheKey(digest)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

impl FromStr for CacheKey {
    type Err = registry::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(CacheKey)
    }
}

/// Collects what one step depends on; [`CacheKeyBuilder::finish`] hashes it.
#[derive(Clone, Debug)]
#[must_use = "a key builder does nothing until finish() is called"]
pub struct CacheKeyBuilder {
    parent: CacheKey,
    instruction: Option<String>,
    args: Vec<(String, String)>,
    platform: Option<Platform>,
    inputs: Vec<Digest>,
    mounts: Vec<Mount>,
}

impl CacheKeyBuilder {
    /// The instruction text after variable expansion (e.g. `RUN make -j4`). Flags that change
    /// the result (`--chown`, `--chmod`, `--link`, `--network`) belong in this text.
    pub fn instruction(mut self, text: impl Into<String>) -> Self {
        self.instruction = Some(text.into());
        self
    }

    /// A build arg the step uses, with its value. Only the args the step uses belong here.
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.push((name.into(), value.into()));
        self
    }

    /// The platform the step builds for.
    pub fn platform(mut self, platform: &Platform) -> Self {
        self.platform = Some(platform.clone());
        self
    }

    /// The content checksum of one input (a COPY/ADD source set, a bind-mount source).
    pub fn input(mut self, digest: &Digest) -> Self {
        self.inputs.push(digest.clone());
        self
    }

    /// A RUN mount's spec. Only ids, paths and options are read, never contents: a secret
    /// contributes its id, target and env name, nothing else.
    pub fn mount(mut self, mount: &Mount) -> Self {
        self.mounts.push(mount.clone());
        self
    }

    pub fn finish(mut self) -> CacheKey {
        let mut enc = Encoder::new();
        enc.field(tag::VERSION, &CACHE_FORMAT_VERSION.to_be_bytes());
        enc.field(tag::PARENT, self.parent.0.to_string().as_bytes());
        enc.opt(tag::INSTRUCTION, self.instruction.as_deref());
        self.args.sort();
        self.args.dedup();
        enc.count(self.args.len());
        for (name, value) in &self.args {
            enc.field(tag::ARG_NAME, name.as_bytes());
            enc.field(tag::ARG_VALUE, value.as_bytes());
        }
        match &self.platform {
            Some(p) => enc.platform(p),
            None => enc.field(tag::ABSENT, b"platform"),
        }
        enc.count(self.inputs.len());
        for d in &self.inputs {
            enc.field(tag::INPUT, d.to_string().as_bytes());
        }
        enc.count(self.mounts.len());
        for m in &self.mounts {
            enc.mount(m);
        }
        enc.finish()
    }
}

/// Writes tagged, length-prefixed fields into a sha256.
struct Encoder(DigestHasher);

impl Encoder {
    fn new() -> Self {
        Encoder(DigestHasher::sha256())
    }

    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.0.update(&[tag]);
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn opt(&mut self, tag: u8, value: Option<&str>) {
        match value {
            Some(v) => self.field(tag, v.as_bytes()),
            None => self.field(tag::ABSENT, &[tag]),
        }
    }

    /// A list's length, so fields cannot slide from one list into the next.
    fn count(&mut self, n: usize) {
        self.field(tag::COUNT, &(n as u64).to_be_bytes());
    }

    fn platform(&mut self, p: &Platform) {
        self.field(tag::PLATFORM, p.os.as_bytes());
        self.field(tag::PLATFORM, p.architecture.as_bytes());
        self.opt(tag::PLATFORM, p.variant.as_deref());
        self.opt(tag::PLATFORM, p.os_version.as_deref());
        let features = p.os_features.as_deref().unwrap_or_default();
        self.count(features.len());
        for f in features {
            self.field(tag::PLATFORM, f.as_bytes());
        }
    }

    fn mount(&mut self, m: &Mount) {
        self.field(tag::MOUNT, m.mount_type.as_str().as_bytes());
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        let sharing = m.sharing.map(|s| match s {
            CacheSharing::Shared => "shared",
            CacheSharing::Private => "private",
            CacheSharing::Locked => "locked",
        });
        // Which fields count depends on the type; each list is fixed per type, so the position
        // of a field identifies it.
        // BuildKit's defaults are filled in first, so spelling a default out does not change
        // the key.
        let fields: Vec<Option<String>> = match m.mount_type {
            MountType::Secret | MountType::Ssh => {
                let id = m.id.clone().or_else(|| {
                    let target = m.target.as_deref()?;
                    target.rsplit('/').next().map(str::to_string)
                });
                let default_mode = if m.mount_type == MountType::Secret {
                    0o400
                } else {
                    0o600
                };
                vec![
                    id,
                    m.target.clone(),
                    m.env.clone(),
                    Some(m.required.to_string()),
                    num(Some(u64::from(m.mode.unwrap_or(default_mode)))),
                    num(Some(u64::from(m.uid.unwrap_or(0)))),
                    num(Some(u64::from(m.gid.unwrap_or(0)))),
                ]
            }
            MountType::Cache => vec![
                m.id.clone().or_else(|| m.target.clone()),
                m.target.clone(),
                m.source.clone(),
                m.from.clone(),
                Some(m.readonly.to_string()),
                Some(sharing.unwrap_or("shared").to_string()),
                num(Some(u64::from(m.mode.unwrap_or(0o755)))),
                num(Some(u64::from(m.uid.unwrap_or(0)))),
                num(Some(u64::from(m.gid.unwrap_or(0)))),
            ],
            MountType::Bind => vec![
                m.target.clone(),
                m.source.clone(),
                m.from.clone(),
                Some(m.readonly.to_string()),
            ],
            MountType::Tmpfs => vec![m.target.clone(), num(m.size)],
        };
        for f in &fields {
            self.opt(tag::MOUNT_FIELD, f.as_deref());
        }
    }

    fn finish(self) -> CacheKey {
        CacheKey(self.0.finish())
    }
}
