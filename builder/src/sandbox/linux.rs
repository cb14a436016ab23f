//! The caller's side of the Linux sandbox: writes the files kiln provides (`/etc/hosts`,
//! `/etc/resolv.conf`, `/etc/hostname`), creates mount-point stubs, starts the init with
//! the spec on its stdin, streams its output and reads its status from fd 3.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use super::error::{Result, SandboxError};
use super::spec::{InitSpec, MountKind, NetworkMode, Report};
use super::stubs::{MountStubs, StubKind};
use super::{OutputSink, RunOutcome, RunSpec, Sandbox, Stream, Tail, INIT_ARG};

/// Lines of output kept for error messages.
const TAIL_LINES: usize = 20;

#[derive(Clone, Debug)]
pub struct LinuxSandbox {
    program: PathBuf,
    args: Vec<String>,
}

impl LinuxSandbox {
    /// Uses `program args...` as the init (e.g. the `kiln-sandbox-init` test binary).
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> LinuxSandbox {
        LinuxSandbox {
            program: program.into(),
            args,
        }
    }

    /// Re-executes the running binary with [`INIT_ARG`]; its `main` must call
    /// [`super::init_main`] when it sees that first argument.
    pub fn current_exe() -> Result<LinuxSandbox> {
        let exe = std::env::current_exe().map_err(|e| SandboxError::io("/proc/self/exe", e))?;
        Ok(LinuxSandbox::new(exe, vec![INIT_ARG.to_string()]))
    }
}

impl Sandbox for LinuxSandbox {
    fn run(&self, spec: &RunSpec, output: &mut dyn OutputSink) -> Result<RunOutcome> {
        if spec.args.is_empty() {
            return Err(SandboxError::EmptyCommand);
        }
        if !rustix::process::geteuid().is_root() {
            single_id_note();
        }
        let mut wanted = vec![
            ("/proc".to_string(), StubKind::Dir),
            ("/dev".to_string(), StubKind::Dir),
            ("/sys".to_string(), StubKind::Dir),
            ("/etc/hosts".to_string(), StubKind::File),
            ("/etc/resolv.conf".to_string(), StubKind::File),
            ("/etc/hostname".to_string(), StubKind::File),
        ];
        for m in &spec.mounts {
            if !m.target.starts_with('/') {
                return Err(SandboxError::RelativeMountTarget {
                    target: m.target.clone(),
                });
            }
            let kind = match &m.kind {
                MountKind::Bind { source, .. } if !source.is_dir() => StubKind::File,
                _ => StubKind::Dir,
            };
            wanted.push((m.target.clone(), kind));
        }
        let etc = tempfile::Builder::new()
            .prefix("kiln-etc-")
            .tempdir()
            .map_err(|e| SandboxError::io(std::env::temp_dir(), e))?;
        let init_spec = write_etc_files(spec, etc.path())?;
        let stubs = MountStubs::create(&spec.rootfs, &wanted)?;
        let result = self.spawn(&init_spec, output);
        let cleaned = stubs.cleanup();
        let outcome = result?;
        cleaned?;
        Ok(outcome)
    }
}

/// Printed once per process: RUN steps of a rootless kiln without subordinate ids.
fn single_id_note() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let uid = rustix::process::getuid().as_raw();
        let why = super::userns::single_id_reason()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        eprintln!(
            "kiln: note: rootless without subordinate ids{why}: RUN steps map only uid {uid} \
             to root, so other users and chown to them are unavailable; add ranges to \
             /etc/subuid and /etc/subgid and install newuidmap/newgidmap (package uidmap)"
        );
    });
}

fn write_etc_files(spec: &RunSpec, dir: &Path) -> Result<InitSpec> {
    let write = |name: &str, content: String| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(|e| SandboxError::io(&p, e))?;
        Ok(p)
    };
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{}\n", spec.hostname));
    for line in &spec.extra_hosts {
        hosts.push_str(line);
        hosts.push('\n');
    }
    let resolv = match spec.network {
        NetworkMode::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        NetworkMode::None => String::new(),
    };
    Ok(InitSpec {
        run: spec.clone(),
        hosts: write("hosts", hosts)?,
        resolv_conf: write("resolv.conf", resolv)?,
        hostname_file: write("hostname", format!("{}\n", spec.hostname))?,
    })
}

impl LinuxSandbox {
    fn spawn(&self, spec: &InitSpec, output: &mut dyn OutputSink) -> Result<RunOutcome> {
        let command = spec.run.command_line();
        let io_err = |e: std::io::Error| SandboxError::io(&self.program, e);
        let (status_r, status_w): (OwnedFd, OwnedFd) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| io_err(e.into()))?;
        let raw_w = status_w.as_raw_fd();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let ok = if raw_w == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) >= 0
                } else {
                    libc::dup2(raw_w, 3) >= 0
                };
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        drop(status_w);
        let json = serde_json::to_vec(spec).expect("spec serializes");
        let mut stdin = child.stdin.take().expect("piped");
        // A failed write means the init died early; its status says why.
        let _ = stdin.write_all(&json);
        drop(stdin);

        let (tx, rx) = mpsc::channel::<(Stream, Vec<u8>)>();
        let readers = [
            (
                Stream::Stdout,
                Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            ),
            (
                Stream::Stderr,
                Box::new(child.stderr.take().expect("piped")),
            ),
        ]
        .map(|(stream, mut r)| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 || tx.send((stream, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            })
        });
        drop(tx);
        let mut tail = Tail::new(TAIL_LINES);
        for (stream, data) in rx {
            tail.push(&data);
            output.output(stream, &data);
        }
        for r in readers {
            let _ = r.join();
        }
        child.wait().map_err(io_err)?;
        let mut status = String::new();
        std::fs::File::from(status_r)
            .read_to_string(&mut status)
            .map_err(io_err)?;
        let first = status.lines().next().unwrap_or("");
        match serde_json::from_str::<Report>(first) {
            Ok(Report::Exited(status)) => Ok(RunOutcome {
                status,
                tail: tail.finish(),
            }),
            Ok(Report::Error(message)) => Err(SandboxError::Setup { command, message }),
            Err(_) => Err(SandboxError::NoStatus { command }),
        }
    }
}
