//! Ctrl-C and SIGTERM during a build: the inits of running steps are registered here so the
//! caller's signal handler can forward the signal into their namespaces (each init runs in
//! its own session, so a terminal's SIGINT reaches only kiln), and the executor can see that
//! the build was interrupted and unwind, dropping its temporary files and mounts.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// The signal that interrupted the build, or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Forwards `signal` to every running step and marks the build interrupted.
pub fn interrupt(signal: i32) {
    INTERRUPTED.store(signal, Ordering::SeqCst);
    let running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    for &pid in running.iter() {
        // SAFETY: kill(2) with a pid we spawned and still track (removed before it is reaped).
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// The signal that interrupted the build, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Tracks a spawned init until dropped (drop it before reaping the process, so its pid is
/// never signalled after it could be reused).
pub(crate) struct Registered(u32);

impl Registered {
    pub(crate) fn new(pid: u32) -> Registered {
        RUNNING.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
        Registered(pid)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&p| p != self.0);
    }
}
