//! Running a step's command in an isolated sandbox.
//!
//! [`Sandbox`] is the seam the executor calls; [`fake::RecordingSandbox`] records specs for
//! unit tests, [`linux::LinuxSandbox`] runs them in Linux namespaces (mount, pid, ipc, uts,
//! net for `network=none`, user when not root) with the step's rootfs as `/`.
//!
//! Rootless: [`userns::enter_rootless`] (first thing in `main`) moves all of kiln into a
//! user namespace with the caller's subordinate ids, after which the sandbox takes its
//! rootful path; without subordinate ids each step gets a single-id namespace instead.
//!
//! The namespace work happens in a freshly exec'd init process ([`init_main`]: `kiln`
//! itself with the hidden first argument [`INIT_ARG`], or the `kiln-sandbox-init` binary),
//! never in a fork of the multithreaded caller. The caller sends the spec as JSON on the
//! init's fd 4 and reads one status line from fd 3; the init's stdin, stdout and stderr are
//! the command's (captured for RUN, the caller's own for `kiln run`).

mod attach;
pub mod error;
pub mod fake;
mod init;
pub mod interrupt;
pub mod linux;
mod mounts;
pub mod spec;
pub mod stubs;
pub mod userns;

pub use error::{Result, SandboxError, SetupStage};
pub use init::init_main;
pub use linux::LinuxSandbox;
pub use spec::{ExitStatus, Mount, MountKind, NetworkMode, RunSpec};

/// The hidden first argument that makes `kiln` act as the sandbox init.
pub const INIT_ARG: &str = "__kiln-sandbox-init";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives the step's output as it is produced.
pub trait OutputSink {
    fn output(&mut self, stream: Stream, data: &[u8]);
}

impl<F: FnMut(Stream, &[u8])> OutputSink for F {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        self(stream, data)
    }
}

/// How a step ended, with the last lines of its output for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: ExitStatus,
    pub tail: Vec<String>,
}

pub trait Sandbox: Sync {
    fn run(&self, spec: &RunSpec, output: &mut dyn OutputSink) -> Result<RunOutcome>;
}

/// Keeps the last `max` lines of a byte stream.
#[derive(Debug)]
pub(crate) struct Tail {
    max: usize,
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    pub fn new(max: usize) -> Tail {
        Tail {
            max,
            lines: Default::default(),
            partial: Vec::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > self.max {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }

    pub fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.push(b"\n");
        }
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines_and_the_unterminated_one() {
        let mut t = Tail::new(2);
        t.push(b"one\ntw");
        t.push(b"o\nthree\nfour");
        assert_eq!(t.finish(), vec!["three".to_string(), "four".to_string()]);
    }
}
