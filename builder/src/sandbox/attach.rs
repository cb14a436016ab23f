//! Signal forwarding while a command runs attached to the caller's terminal (`kiln run`):
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to kiln go to the sandbox init, which passes
//! them on to the command, instead of killing kiln and, with it, the sandbox.

use std::sync::atomic::{AtomicI32, Ordering};

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The init to forward to; 0 when nothing is attached.
static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forwarding to one init; the previous handlers come back when it is dropped.
pub(crate) struct Forwarding {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Forwarding {
    pub fn install(pid: i32) -> Forwarding {
        TARGET.store(pid, Ordering::Relaxed);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: installs an async-signal-safe handler; both structs are fully
            // initialised and valid for the call.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        Forwarding { previous }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores a handler sigaction returned earlier.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        TARGET.store(0, Ordering::Relaxed);
    }
}
