//! What to run and how it ended.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Share the host's network (BuildKit's default without CNI).
    #[default]
    Host,
    /// A fresh network namespace with only `lo`, up.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum MountKind {
    Bind {
        source: PathBuf,
        readonly: bool,
    },
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

/// An extra mount (`RUN --mount`), at an absolute path inside the rootfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub target: String,
    #[serde(flatten)]
    pub kind: MountKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The directory that becomes `/`.
    pub rootfs: PathBuf,
    /// argv; `args[0]` is looked up in the `PATH` of `env` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` pairs, exactly the process environment.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub network: NetworkMode,
    pub mounts: Vec<Mount>,
    /// Extra `/etc/hosts` lines (`--add-host`).
    pub extra_hosts: Vec<String>,
}

impl RunSpec {
    /// A spec running `args` as root in `/` with a default `PATH`.
    pub fn new(rootfs: impl Into<PathBuf>, args: &[&str]) -> RunSpec {
        RunSpec {
            rootfs: rootfs.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![format!("PATH={DEFAULT_PATH}")],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            hostname: "kiln".into(),
            network: NetworkMode::Host,
            mounts: Vec::new(),
            extra_hosts: Vec::new(),
        }
    }

    /// The command as one string, for messages.
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The shell's convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// What the init sends to the caller (one JSON line on fd 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Report {
    Exited(ExitStatus),
    Error(String),
    /// The command could not be started: not found (`found == false`), or found but not
    /// executable.
    NotRunnable {
        message: String,
        found: bool,
    },
}

/// The init reports its [`Report`] on this descriptor.
pub(crate) const STATUS_FD: i32 = 3;
/// The init reads its [`InitSpec`] from this descriptor; stdin, stdout and stderr are the
/// command's.
pub(crate) const SPEC_FD: i32 = 4;

/// What the caller sends to the init on [`SPEC_FD`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct InitSpec {
    pub run: RunSpec,
    /// Host files bind-mounted at `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`.
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname_file: PathBuf,
}
