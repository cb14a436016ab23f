//! `kiln run`: an image from the store run once in the foreground, in the same sandbox as RUN
//! steps, on a throwaway writable snapshot of its layers (kiln has no daemon, so the
//! container is always removed afterwards, as with `docker run --rm`).
//!
//! The argv, environment, user and working directory follow docker's rules: CLI arguments
//! replace CMD, `--entrypoint` replaces ENTRYPOINT and clears CMD, `-e` overrides the image's
//! variables, `HOSTNAME` and `HOME` are provided, a missing working directory is created.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use registry::image::LocalImage;
use registry::spec::ContainerConfig;
use registry::store::Store;

use crate::sandbox::{
    ExitStatus, LinuxSandbox, Mount, MountKind, NetworkMode, RunSpec, SandboxError,
};
use crate::snapshot::{open_snapshotter, SnapshotError, SnapshotterKind};

use super::error::BuildError;
use super::layers::ensure_chain;
use super::rootfs::RootfsView;
use super::state::{LayerRef, DEFAULT_PATH};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid volume specification {spec:?}: {reason}")]
    InvalidVolume { spec: String, reason: &'static str },
    #[error("the working directory {dir:?} is invalid, it needs to be an absolute path")]
    RelativeWorkdir { dir: String },
    #[error("image {image}: no command specified")]
    NoCommand { image: String },
    #[error("image {image} is invalid: {layers} layers but {diff_ids} diff_ids")]
    LayerMismatch {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("user {user:?}: {message}")]
    User { user: String, message: String },
    #[error("creating working directory {dir}: {source}")]
    Workdir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating volume source {path}: {source}")]
    VolumeSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the rootfs of {image}: {source}")]
    Rootfs {
        image: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("snapshot for {image}: {source}")]
    Snapshot {
        image: String,
        #[source]
        source: SnapshotError,
    },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl ContainerError {
    /// docker's exit code for a run that failed before or while starting the command.
    pub fn docker_exit_code(&self) -> i32 {
        match self {
            ContainerError::Sandbox(e) => e.docker_exit_code(),
            _ => 125,
        }
    }
}

/// `-v HOST:CONTAINER[:ro|rw]`: a bind mount of a host path (kiln has no named volumes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub target: String,
    pub readonly: bool,
}

impl FromStr for Volume {
    type Err = ContainerError;

    fn from_str(spec: &str) -> Result<Volume, ContainerError> {
        let bad = |reason| ContainerError::InvalidVolume {
            spec: spec.to_string(),
            reason,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, target, mode) = match parts.as_slice() {
            [host, target] => (*host, *target, None),
            [host, target, mode] => (*host, *target, Some(*mode)),
            [_] => {
                return Err(bad(
                    "anonymous volumes are not supported, give HOST:CONTAINER",
                ))
            }
            _ => return Err(bad("expected HOST:CONTAINER[:ro|rw]")),
        };
        if !host.starts_with('/') {
            return Err(bad(
                "the host path must be absolute (kiln has no named volumes)",
            ));
        }
        if !target.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        if target.split('/').all(|c| c.is_empty() || c == ".") {
            return Err(bad("the container path cannot be /"));
        }
        let readonly = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(bad("the only options are ro and rw")),
        };
        Ok(Volume {
            host: PathBuf::from(host),
            target: target.to_string(),
            readonly,
        })
    }
}

/// What `kiln run` was asked for, beyond the image.
#[derive(Clone, Debug, Default)]
pub struct ContainerOptions {
    /// `-e KEY=value`, in order; later ones win.
    pub env: Vec<String>,
    pub volumes: Vec<Volume>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub network: NetworkMode,
    /// `--entrypoint`: `Some("")` clears the image's.
    pub entrypoint: Option<String>,
    /// Arguments after the image; they replace CMD when not empty.
    pub cmd: Vec<String>,
    pub hostname: String,
    /// `-i`: the command reads kiln's stdin (otherwise `/dev/null`).
    pub interactive: bool,
    pub snapshotter: Option<SnapshotterKind>,
}

/// docker's argv: ENTRYPOINT (or `--entrypoint`) followed by the CLI arguments, or by CMD when
/// there are none and the entrypoint was not overridden.
pub fn command_line(config: &ContainerConfig, opts: &ContainerOptions) -> Vec<String> {
    let (entrypoint, default_cmd) = match &opts.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (
            config.entrypoint.clone().unwrap_or_default(),
            config.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if opts.cmd.is_empty() {
        default_cmd
    } else {
        opts.cmd.clone()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The process environment: `HOSTNAME`, the image's variables with `-e` applied over them,
/// then `PATH` and `HOME` when still unset.
pub fn environment(
    image_env: &[String],
    overrides: &[String],
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut env = vec![format!("HOSTNAME={hostname}")];
    for e in image_env.iter().chain(overrides) {
        let k = key(e);
        match env.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if !env.iter().any(|e| key(e) == "PATH") {
        env.insert(1, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The home directory of `uid` in the rootfs's `/etc/passwd`, `/` when it has none.
fn home_of(view: &RootfsView<'_>, uid: u32) -> String {
    view.read_file("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// Runs `image` (named `name` in messages) in the foreground and returns how its command
/// ended. The writable layer is discarded whatever happens.
pub fn run_container(
    store: &Store,
    sandbox: &LinuxSandbox,
    name: &str,
    image: &LocalImage,
    opts: &ContainerOptions,
) -> Result<ExitStatus, ContainerError> {
    let config = image.config.container_config();
    let args = command_line(&config, opts);
    if args.is_empty() {
        return Err(ContainerError::NoCommand {
            image: name.to_string(),
        });
    }
    let workdir = match opts.workdir.as_deref().or(config.working_dir.as_deref()) {
        None | Some("") => "/".to_string(),
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) => return Err(ContainerError::RelativeWorkdir { dir: d.to_string() }),
    };
    let mut mounts = Vec::new();
    for v in &opts.volumes {
        // docker creates a missing host directory for -v.
        if !v.host.exists() {
            std::fs::create_dir_all(&v.host).map_err(|source| ContainerError::VolumeSource {
                path: v.host.clone(),
                source,
            })?;
        }
        mounts.push(Mount {
            target: v.target.clone(),
            kind: MountKind::Bind {
                source: v.host.clone(),
                readonly: v.readonly,
            },
        });
    }

    let rootfs_err = |source| ContainerError::Rootfs {
        image: name.to_string(),
        source: Box::new(source),
    };
    let layers = layer_refs(name, image)?;
    let snapshot_err = |source| ContainerError::Snapshot {
        image: name.to_string(),
        source,
    };
    let snapshotter = open_snapshotter(store.root(), opts.snapshotter).map_err(snapshot_err)?;
    let chain = ensure_chain(store, snapshotter.as_ref(), &layers).map_err(rootfs_err)?;
    let active = snapshotter.prepare(chain.as_ref()).map_err(snapshot_err)?;
    let rootfs = active.rootfs().to_path_buf();
    let view = RootfsView::new(&rootfs);

    let user = opts
        .user
        .clone()
        .or(config.user.clone())
        .unwrap_or_default();
    let (uid, gid, groups) =
        view.resolve_runtime_user(&user)
            .map_err(|message| ContainerError::User {
                user: user.clone(),
                message,
            })?;
    create_workdir(&rootfs, &workdir)?;
    let env = environment(
        &config.env.clone().unwrap_or_default(),
        &opts.env,
        &opts.hostname,
        &home_of(&view, uid),
    );
    let spec = RunSpec {
        rootfs,
        args,
        env,
        cwd: workdir,
        uid,
        gid,
        additional_gids: groups,
        hostname: opts.hostname.clone(),
        network: opts.network,
        mounts,
        extra_hosts: Vec::new(),
    };
    let status = sandbox.run_attached(&spec, opts.interactive);
    drop(active);
    Ok(status?)
}

fn layer_refs(name: &str, image: &LocalImage) -> Result<Vec<LayerRef>, ContainerError> {
    let layers = &image.manifest.layers;
    let diff_ids = &image.config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(ContainerError::LayerMismatch {
            image: name.to_string(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    Ok(layers
        .iter()
        .zip(diff_ids)
        .map(|(d, id)| LayerRef {
            descriptor: d.clone(),
            diff_id: id.clone(),
        })
        .collect())
}

fn create_workdir(rootfs: &Path, dir: &str) -> Result<(), ContainerError> {
    crate::fs::Root::open(rootfs)
        .and_then(|root| root.open_dir(Path::new(dir.trim_start_matches('/')), true))
        .map(drop)
        .map_err(|source| ContainerError::Workdir {
            dir: dir.to_string(),
            source,
        })
}

/// A container ID style hostname: 12 random hex digits.
pub fn random_hostname() -> String {
    let mut bytes = [0u8; 6];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = nanos as u64 ^ (u64::from(std::process::id()) << 32);
        bytes.copy_from_slice(&mixed.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> ContainerConfig {
        let v = |a: &[&str]| (!a.is_empty()).then(|| a.iter().map(|s| s.to_string()).collect());
        ContainerConfig {
            entrypoint: v(entrypoint),
            cmd: v(cmd),
            ..Default::default()
        }
    }

    fn opts(entrypoint: Option<&str>, cmd: &[&str]) -> ContainerOptions {
        ContainerOptions {
            entrypoint: entrypoint.map(str::to_string),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn command_line_follows_docker() {
        let c = config(&["/init", "-v"], &["serve", "--port=80"]);
        assert_eq!(
            command_line(&c, &opts(None, &[])),
            ["/init", "-v", "serve", "--port=80"]
        );
        // Arguments replace CMD, not ENTRYPOINT.
        assert_eq!(
            command_line(&c, &opts(None, &["check"])),
            ["/init", "-v", "check"]
        );
        // --entrypoint replaces ENTRYPOINT and drops the image's CMD.
        assert_eq!(command_line(&c, &opts(Some("/bin/sh"), &[])), ["/bin/sh"]);
        assert_eq!(
            command_line(&c, &opts(Some("/bin/sh"), &["-c", "x"])),
            ["/bin/sh", "-c", "x"]
        );
        // An empty --entrypoint clears it.
        assert_eq!(command_line(&c, &opts(Some(""), &["ls"])), ["ls"]);
        assert!(command_line(&c, &opts(Some(""), &[])).is_empty());
        let only_cmd = config(&[], &["sh"]);
        assert_eq!(
            command_line(&only_cmd, &opts(None, &["echo", "hi"])),
            ["echo", "hi"]
        );
        assert!(command_line(&config(&[], &[]), &opts(None, &[])).is_empty());
    }

    #[test]
    fn environment_applies_overrides_and_defaults() {
        let image = [
            "PATH=/opt/bin".to_string(),
            "A=1".to_string(),
            "B=2".to_string(),
        ];
        let cli = [
            "A=override".to_string(),
            "C=3".to_string(),
            "HOME=/h".to_string(),
        ];
        assert_eq!(
            environment(&image, &cli, "abc123", "/root"),
            [
                "HOSTNAME=abc123",
                "PATH=/opt/bin",
                "A=override",
                "B=2",
                "C=3",
                "HOME=/h"
            ]
        );
        assert_eq!(
            environment(&[], &[], "h", "/"),
            [
                "HOSTNAME=h".to_string(),
                format!("PATH={DEFAULT_PATH}"),
                "HOME=/".to_string()
            ]
        );
        // -e HOSTNAME wins over the provided one.
        assert_eq!(
            environment(&[], &["HOSTNAME=x".into()], "h", "/")[0],
            "HOSTNAME=x"
        );
    }

    #[test]
    fn volumes_parse_like_docker() {
        let v: Volume = "/src:/data:ro".parse().unwrap();
        assert_eq!(
            v,
            Volume {
                host: "/src".into(),
                target: "/data".into(),
                readonly: true
            }
        );
        assert!(!"/src:/data".parse::<Volume>().unwrap().readonly);
        assert!(!"/src:/data:rw".parse::<Volume>().unwrap().readonly);
        for bad in [
            "/data",
            "named:/data",
            "/src:data",
            "/src:/",
            "/src:/d:z",
            "/a:/b:ro:x",
        ] {
            let err = bad.parse::<Volume>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn hostnames_look_like_container_ids() {
        let h = random_hostname();
        assert_eq!(h.len(), 12);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn exit_codes_for_own_errors_are_125() {
        let e = ContainerError::NoCommand { image: "x".into() };
        assert_eq!(e.docker_exit_code(), 125);
        assert_eq!(e.to_string(), "image x: no command specified");
    }
}
