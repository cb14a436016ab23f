//! The caller's side of the Linux sandbox: writes the files kiln provides (`/etc/hosts`,
//! `/etc/resolv.conf`, `/etc/hostname`), creates mount-point stubs, starts the init with
//! the spec on fd 4, streams its output (or leaves the caller's stdio attached) and reads
//! its status from fd 3.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::attach;
use super::error::{Result, SandboxError, SetupStage};
use super::spec::{ExitStatus, InitSpec, MountKind, NetworkMode, Report, SPEC_FD, STATUS_FD};
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
        self.prepare_and(spec, |init_spec| self.spawn_captured(init_spec, output))
    }
}

impl LinuxSandbox {
    /// Runs `spec` in the foreground with the caller's stdout and stderr (and stdin when
    /// `stdin` is true, `/dev/null` otherwise), as `kiln run` does. SIGINT, SIGTERM, SIGHUP
    /// and SIGQUIT sent to the caller meanwhile are forwarded to the command.
    pub fn run_attached(&self, spec: &RunSpec, stdin: bool) -> Result<ExitStatus> {
        self.prepare_and(spec, |init_spec| {
            let stdin = if stdin {
                Stdio::inherit()
            } else {
                Stdio::null()
            };
            let mut child = self.start(init_spec, stdin, Stdio::inherit(), Stdio::inherit())?;
            let forwarding = attach::Forwarding::install(child.child.id() as i32);
            let waited = child.child.wait();
            drop(forwarding);
            waited.map_err(|e| SandboxError::io(&self.program, e))?;
            child.status(&init_spec.run)
        })
    }

    /// Writes the files kiln provides and the mount stubs, runs `f`, and removes the stubs.
    fn prepare_and<T>(&self, spec: &RunSpec, f: impl FnOnce(&InitSpec) -> Result<T>) -> Result<T> {
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
        let result = f(&init_spec);
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

/// A started init: the process and the read end of its status pipe.
struct Started {
    child: Child,
    status: OwnedFd,
}

impl Started {
    /// The init's report, read after it exited.
    fn status(self, run: &RunSpec) -> Result<ExitStatus> {
        let command = run.command_line();
        let mut status = String::new();
        std::fs::File::from(self.status)
            .read_to_string(&mut status)
            .map_err(|e| SandboxError::io("sandbox status pipe", e))?;
        let first = status.lines().next().unwrap_or("");
        match serde_json::from_str::<Report>(first) {
            Ok(Report::Exited(status)) => Ok(status),
            Ok(Report::Error(message)) => Err(SandboxError::Setup {
                command,
                message,
                stage: SetupStage::Sandbox,
            }),
            Ok(Report::NotRunnable { message, found }) => Err(SandboxError::Setup {
                command,
                message,
                stage: if found {
                    SetupStage::NotExecutable
                } else {
                    SetupStage::NotFound
                },
            }),
            Err(_) => Err(SandboxError::NoStatus { command }),
        }
    }
}

impl LinuxSandbox {
    /// Starts the init with the status pipe on fd 3 and the spec written to fd 4.
    fn start(
        &self,
        spec: &InitSpec,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Started> {
        let io_err = |e: std::io::Error| SandboxError::io(&self.program, e);
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| io_err(e.into()))
        };
        let (status_r, status_w): (OwnedFd, OwnedFd) = pipe()?;
        let (spec_r, spec_w): (OwnedFd, OwnedFd) = pipe()?;
        let fds = [
            (status_w.as_raw_fd(), STATUS_FD),
            (spec_r.as_raw_fd(), SPEC_FD),
        ];
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move both out of the way first so neither dup2 clobbers the other.
                let mut high = [0; 2];
                for (i, (fd, _)) in fds.iter().enumerate() {
                    high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, (_, target)) in fds.iter().enumerate() {
                    if libc::dup2(high[i], *target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        drop(status_w);
        drop(spec_r);
        let json = serde_json::to_vec(spec).expect("spec serializes");
        // A failed write means the init died early; its status says why.
        let _ = std::fs::File::from(spec_w).write_all(&json);
        Ok(Started {
            child,
            status: status_r,
        })
    }

    fn spawn_captured(&self, spec: &InitSpec, output: &mut dyn OutputSink) -> Result<RunOutcome> {
        let io_err = |e: std::io::Error| SandboxError::io(&self.program, e);
        let mut started = self.start(spec, Stdio::null(), Stdio::piped(), Stdio::piped())?;
        // Ctrl-C/SIGTERM on kiln reach this step through the interrupt registry.
        let registered = super::interrupt::Registered::new(started.child.id());
        let child = &mut started.child;
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
        // Its output is closed: the init is exiting. Stop tracking it before reaping it.
        drop(registered);
        child.wait().map_err(io_err)?;
        let status = started.status(&spec.run)?;
        Ok(RunOutcome {
            status,
            tail: tail.finish(),
        })
    }
}
