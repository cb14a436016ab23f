//! Helpers for tests that run the built `kiln` binary against a temporary store.
//!
//! ```ignore
//! let k = Kiln::new();
//! k.image("app:v1", "seed");
//! let out = k.cmd(["images", "-q"]).stdout();
//! k.cmd(["inspect", "nope"]).fails();
//! ```
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::store::{testing, Store};
use registry::{Descriptor, Platform};

/// A temporary directory with a store at `<dir>/root`.
pub struct Kiln {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Kiln {
    pub fn new() -> Kiln {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        Kiln { dir, root }
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kiln --root <root> ARGS...`.
    pub fn cmd<I, S>(&self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.env_remove("KILN_ROOT");
        TestCommand { cmd, stdin: None }
    }

    pub fn store(&self) -> Store {
        Store::open(&self.root).expect("open store")
    }

    /// Writes a small image (2 gzip layers, files under `<seed>/`) and tags it `name`.
    pub fn image(&self, name: &str, seed: &str) -> Descriptor {
        self.image_with(name, seed, Compression::Gzip, &Platform::host())
    }

    /// [`Kiln::image`] with a chosen layer compression and platform (golden tests use
    /// uncompressed linux/amd64 images so their digests never depend on the host).
    pub fn image_with(
        &self,
        name: &str,
        seed: &str,
        compression: Compression,
        platform: &Platform,
    ) -> Descriptor {
        let store = self.store();
        let desc =
            testing::make_image_for(&store, seed, 2, compression, platform).expect("make image");
        store
            .tag(&Reference::parse(name).expect("valid name"), &desc)
            .expect("tag");
        desc
    }
}

/// A command to run and check, ripgrep-style.
pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl TestCommand {
    pub fn args_all<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn current_dir(mut self, d: &Path) -> Self {
        self.cmd.current_dir(d);
        self
    }

    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// Runs and returns the output, whatever the exit status.
    pub fn output(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn kiln");
        if let Some(data) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        child.wait_with_output().expect("wait for kiln")
    }

    /// Runs, asserts success, returns stdout.
    pub fn stdout(self) -> String {
        let desc = format!("{:?}", self.cmd);
        let out = self.output();
        assert!(
            out.status.success(),
            "{desc} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs, asserts a non-zero exit, returns stderr.
    pub fn fails(self) -> String {
        let desc = format!("{:?}", self.cmd);
        let out = self.output();
        assert!(
            !out.status.success(),
            "{desc} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }
}

/// A real `docker-registry` on a free loopback port, anonymous, killed on drop. `None` (with a
/// note) when the binary is missing outside CI; under `CI=true` a missing binary fails.
pub struct LocalRegistry {
    child: std::process::Child,
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalRegistry {
    pub fn start() -> Option<LocalRegistry> {
        const BIN: &str = "/usr/bin/docker-registry";
        if !Path::new(BIN).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{BIN} is required when CI=true"
            );
            eprintln!("note: {BIN} not installed; skipping");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(LocalRegistry {
            child,
            host,
            _dir: dir,
        })
    }
}

/// The steps of a `--progress plain` build log, in order: each step's text (after its
/// `[stage n/m]` label) and how it ended, `DONE` or `CACHED`.
pub fn step_statuses(stderr: &str) -> Vec<(String, String)> {
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((_, text)) = rest.split_once(' ') else {
            continue;
        };
        if text.starts_with('[') {
            current = text
                .split_once("] ")
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
        } else if let Some(status) = text.split_whitespace().next() {
            if status == "DONE" || status == "CACHED" {
                steps.push((current.clone(), status.to_string()));
            }
        }
    }
    steps
}
