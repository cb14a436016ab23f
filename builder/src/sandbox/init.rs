//! The sandbox init: a freshly exec'd, single-threaded process, so forking here is safe.
//!
//! Outer process (in the caller's namespaces): reads the [`InitSpec`] from fd 4, unshares
//! the namespaces (user first when not root), forks pid 1 of the new pid namespace and
//! forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it. Pid 1: sets up mounts and `pivot_root`,
//! forks the command, forwards signals to it, reaps every orphan, and when the command
//! exits reports its status on fd 3 and exits — the kernel then kills whatever the step
//! left running in the pid namespace. Both die with their parent (`PR_SET_PDEATHSIG`).

use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::thread::UnshareFlags;

use super::mounts;
use super::spec::{ExitStatus, InitSpec, NetworkMode, Report, DEFAULT_PATH, SPEC_FD, STATUS_FD};

type R<T> = std::result::Result<T, String>;

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn install_forwarding(pid: i32) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs an async-signal-safe handler; the struct is fully initialised.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn report(r: &Report) {
    let mut line = serde_json::to_string(r).unwrap_or_default();
    line.push('\n');
    // SAFETY: fd 3 is the status pipe given by the caller; a failed write is ignored
    // (the caller then reports a missing status).
    unsafe { libc::write(STATUS_FD, line.as_ptr().cast(), line.len()) };
}

/// Entry point of the init (`kiln __kiln-sandbox-init` or `kiln-sandbox-init`). Never
/// returns.
pub fn init_main() -> ! {
    match outer() {
        Ok(()) => std::process::exit(0),
        Err(msg) => {
            report(&Report::Error(msg));
            std::process::exit(1)
        }
    }
}

fn errno(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn outer() -> R<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("prctl: {e}"))?;
    // SAFETY: the caller hands this process the read end of the spec pipe as fd 4 and the
    // status pipe as fd 3; both are owned here, the spec one is closed after reading and the
    // status one kept away from the command.
    let mut spec_pipe = unsafe {
        libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(SPEC_FD)
    };
    let mut input = String::new();
    spec_pipe
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the spec: {e}"))?;
    drop(spec_pipe);
    let spec: InitSpec =
        serde_json::from_str(&input).map_err(|e| format!("parsing the spec: {e}"))?;
    if !rustix::process::geteuid().is_root() {
        enter_user_namespace()?;
    }
    let mut flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    if spec.run.network == NetworkMode::None {
        flags |= UnshareFlags::NEWNET;
    }
    // SAFETY: this process is single-threaded (freshly exec'd), so unshare and fork are safe.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(|e| format!("unshare: {e}"))?;
    // SAFETY: single-threaded, see above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("fork"));
    }
    if pid == 0 {
        let Err(msg) = pid1(&spec);
        report(&Report::Error(msg));
        std::process::exit(1);
    }
    install_forwarding(pid);
    let status = wait_for(pid)?;
    if let ExitStatus::Signal(_) = status {
        // Pid 1 was killed before it could report; report for it.
        report(&Report::Exited(status));
    }
    Ok(())
}

/// Rootless without subordinate ids (see [`super::userns`]): map the caller to root in a
/// user namespace of this step alone. Only that one id exists inside; the caller printed
/// the one-time note.
fn enter_user_namespace() -> R<()> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    // SAFETY: single-threaded process.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER) }
        .map_err(|e| format!("unshare user: {e}"))?;
    let write = |p: &str, s: String| std::fs::write(p, s).map_err(|e| format!("{p}: {e}"));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

fn wait_for(pid: i32) -> R<ExitStatus> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(decode(status));
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(errno("waitpid"));
        }
    }
}

fn decode(status: i32) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

fn pid1(spec: &InitSpec) -> R<Infallible> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("prctl: {e}"))?;
    mounts::setup(spec)?;
    rustix::system::sethostname(spec.run.hostname.as_bytes())
        .map_err(|e| format!("sethostname: {e}"))?;
    if spec.run.network == NetworkMode::None {
        mounts::loopback_up()?;
    }
    let exe = match find_executable(&spec.run.args, &spec.run.env) {
        Ok(exe) => exe,
        Err(message) => {
            report(&Report::NotRunnable {
                message,
                found: false,
            });
            std::process::exit(1);
        }
    };
    let argv = cstrings(&spec.run.args)?;
    let envp = cstrings(&spec.run.env)?;
    // SAFETY: pid 1 is single-threaded.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(errno("fork"));
    }
    if child == 0 {
        let Err(r) = exec_command(spec, &exe, &argv, &envp);
        report(&r);
        // SAFETY: leave without running anything of the parent's.
        unsafe { libc::_exit(127) };
    }
    install_forwarding(child);
    let status = reap_until(child)?;
    let _ = std::io::stdout().flush();
    report(&Report::Exited(status));
    std::process::exit(0);
}

/// Reaps every child (orphans of the step are re-parented to pid 1) until `main` exits.
fn reap_until(main: i32) -> R<ExitStatus> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == main {
            return Ok(decode(status));
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(errno("waitpid"));
        }
    }
}

fn cstrings(items: &[String]) -> R<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

fn find_executable(args: &[String], env: &[String]) -> R<PathBuf> {
    let arg0 = args.first().ok_or("no command")?;
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        let ok = std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
            && rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok();
        if ok {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

/// Sets the credentials and working directory and execs; what went wrong otherwise.
fn exec_command(
    spec: &InitSpec,
    exe: &Path,
    argv: &[CString],
    envp: &[CString],
) -> Result<Infallible, Report> {
    prepare_process(spec).map_err(Report::Error)?;
    let exe_c = CString::new(exe.as_os_str().as_bytes())
        .map_err(|_| Report::Error("NUL in path".to_string()))?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(exe_c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    let err = std::io::Error::last_os_error();
    Err(Report::NotRunnable {
        message: format!("exec {}: {err}", exe.display()),
        found: !matches!(err.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)),
    })
}

fn prepare_process(spec: &InitSpec) -> R<()> {
    let run = &spec.run;
    let rootless = !rustix::process::geteuid().is_root()
        || std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    // SAFETY: plain credential syscalls in the single-threaded child.
    unsafe {
        // A single-id namespace denies setgroups; its only group is the one mapped.
        if !rootless {
            let gids: Vec<libc::gid_t> = run.additional_gids.clone();
            if libc::setgroups(gids.len(), gids.as_ptr()) < 0 {
                return Err(errno("setgroups"));
            }
        }
        if libc::setresgid(run.gid, run.gid, run.gid) < 0 {
            return Err(errno(&format!("setgid {}", run.gid)));
        }
        if libc::setresuid(run.uid, run.uid, run.uid) < 0 {
            return Err(errno(&format!("setuid {}", run.uid)));
        }
    }
    std::env::set_current_dir(&run.cwd).map_err(|e| format!("working directory {:?}: {e}", run.cwd))
}
