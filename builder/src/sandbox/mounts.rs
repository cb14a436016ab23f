//! Mount setup inside the sandbox's mount namespace (runs in the init, as pid 1 of the new
//! pid namespace, before the command starts).
//!
//! Every target is resolved inside the rootfs ([`Root`]) and mounted through its
//! `/proc/self/fd/N` path, so a symlink planted in the image (`/etc/hosts -> /etc/shadow` of
//! the host, `/proc -> /`) cannot redirect a mount outside the rootfs. Sources are host
//! paths chosen by kiln. `pivot_root` comes last.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount::{self as m, MountFlags, MountPropagationFlags, UnmountFlags};

use super::spec::{InitSpec, MountKind, NetworkMode};
use crate::fs::Root;

type R<T> = std::result::Result<T, String>;

const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn ctx<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn dir(root: &Root, rel: &str) -> R<OwnedFd> {
    let fd = root
        .open_dir(Path::new(rel), true)
        .map_err(ctx(format!("mount point /{rel}")))?;
    not_the_root(root, &fd, rel)?;
    Ok(fd)
}

/// A planted symlink (`/sys -> /`) must not put a mount over the whole rootfs.
fn not_the_root(root: &Root, fd: &OwnedFd, rel: &str) -> R<()> {
    let a = rfs::fstat(fd).map_err(ctx(format!("mount point /{rel}")))?;
    let b = rfs::fstat(root.fd()).map_err(ctx("rootfs"))?;
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
        return Err(format!("mount point /{rel} resolves to the rootfs itself"));
    }
    Ok(())
}

pub(super) fn setup(spec: &InitSpec) -> R<()> {
    let run = &spec.run;
    m::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(ctx("making / private"))?;
    let rootfs = &run.rootfs;
    m::mount_bind_recursive(rootfs, rootfs).map_err(ctx(format!("bind {}", rootfs.display())))?;
    let root = Root::open(rootfs).map_err(ctx(rootfs.display()))?;

    let proc = dir(&root, "proc")?;
    m::mount(
        "proc",
        fd_path(&proc),
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(ctx("mount /proc"))?;

    setup_dev(&root)?;
    setup_sys(&root, run.network)?;

    for (name, host) in [
        ("hosts", &spec.hosts),
        ("resolv.conf", &spec.resolv_conf),
        ("hostname", &spec.hostname_file),
    ] {
        let rel = Path::new("etc").join(name);
        match root.open_path(&rel) {
            Ok(fd) => {
                m::mount_bind(host, fd_path(&fd)).map_err(ctx(format!("mount /etc/{name}")))?
            }
            Err(e) => eprintln!("kiln: not providing /etc/{name}: {e}"),
        }
    }

    for mnt in &run.mounts {
        let rel = mnt.target.trim_start_matches('/');
        let what = format!("mount {}", mnt.target);
        match &mnt.kind {
            MountKind::Bind { source, readonly } => {
                let target = root.open_path(Path::new(rel)).map_err(ctx(&what))?;
                not_the_root(&root, &target, rel)?;
                m::mount_bind_recursive(source, fd_path(&target)).map_err(ctx(&what))?;
                if *readonly {
                    let again = root.open_path(Path::new(rel)).map_err(ctx(&what))?;
                    remount_readonly(&fd_path(&again)).map_err(ctx(format!("{what} read-only")))?;
                }
            }
            MountKind::Tmpfs { size, mode } => {
                let target = dir(&root, rel)?;
                let mut data = format!("mode={:o}", mode.unwrap_or(0o1777));
                if let Some(s) = size {
                    data.push_str(&format!(",size={s}"));
                }
                let data = std::ffi::CString::new(data).expect("no NUL");
                m::mount(
                    "tmpfs",
                    fd_path(&target),
                    "tmpfs",
                    MountFlags::NOSUID | MountFlags::NODEV,
                    data.as_c_str(),
                )
                .map_err(ctx(&what))?;
            }
        }
    }
    drop(proc);

    std::env::set_current_dir(rootfs).map_err(ctx(rootfs.display()))?;
    rustix::process::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    m::unmount(".", UnmountFlags::DETACH).map_err(ctx("detaching the host root"))?;
    std::env::set_current_dir("/").map_err(ctx("chdir /"))?;
    Ok(())
}

fn setup_dev(root: &Root) -> R<()> {
    let dev = dir(root, "dev")?;
    let data = c"mode=755,size=65536k";
    m::mount(
        "tmpfs",
        fd_path(&dev),
        "tmpfs",
        MountFlags::NOSUID | MountFlags::STRICTATIME,
        data,
    )
    .map_err(ctx("mount /dev"))?;
    // Re-resolve: the old descriptor still names the directory under the new tmpfs.
    let dev = dir(root, "dev")?;
    for n in DEV_NODES {
        let f = rfs::openat(
            &dev,
            n,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(ctx(format!("/dev/{n}")))?;
        m::mount_bind(format!("/dev/{n}"), fd_path(&f)).map_err(ctx(format!("bind /dev/{n}")))?;
    }
    rfs::mkdirat(&dev, "pts", Mode::from_raw_mode(0o755)).map_err(ctx("/dev/pts"))?;
    rfs::mkdirat(&dev, "shm", Mode::from_raw_mode(0o1777)).map_err(ctx("/dev/shm"))?;
    let pts = open_dir_at(&dev, "pts")?;
    m::mount(
        "devpts",
        fd_path(&pts),
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        c"newinstance,ptmxmode=0666,mode=0620",
    )
    .map_err(ctx("mount /dev/pts"))?;
    let shm = open_dir_at(&dev, "shm")?;
    m::mount(
        "shm",
        fd_path(&shm),
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        c"mode=1777,size=65536k",
    )
    .map_err(ctx("mount /dev/shm"))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        rfs::symlinkat(target, &dev, link).map_err(ctx(format!("/dev/{link}")))?;
    }
    Ok(())
}

fn setup_sys(root: &Root, network: NetworkMode) -> R<()> {
    let sys = dir(root, "sys")?;
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    // A fresh sysfs shows the sandbox's own network namespace (only `lo` for none).
    if m::mount("sysfs", fd_path(&sys), "sysfs", flags, None).is_ok() {
        return Ok(());
    }
    if network == NetworkMode::None {
        eprintln!("kiln: /sys is the host's (sysfs could not be mounted)");
    }
    m::mount_bind_recursive("/sys", fd_path(&sys)).map_err(ctx("bind /sys"))?;
    let again = dir(root, "sys")?;
    remount_readonly(&fd_path(&again)).map_err(ctx("/sys read-only"))
}

/// Makes the bind mount at `path` read-only, keeping the flags it has: inside a user
/// namespace (rootless) the kernel refuses a remount that would drop `nosuid`, `nodev`,
/// `noexec` or atime flags locked by the outer namespace.
fn remount_readonly(path: &Path) -> rustix::io::Result<()> {
    use rustix::fs::StatVfsMountFlags as St;
    let have = rustix::fs::statvfs(path)?.f_flag;
    let mut flags = MountFlags::BIND | MountFlags::RDONLY;
    for (st, ms) in [
        (St::NOSUID, MountFlags::NOSUID),
        (St::NODEV, MountFlags::NODEV),
        (St::NOEXEC, MountFlags::NOEXEC),
        (St::NOATIME, MountFlags::NOATIME),
        (St::NODIRATIME, MountFlags::NODIRATIME),
        (St::RELATIME, MountFlags::RELATIME),
    ] {
        if have.contains(st) {
            flags |= ms;
        }
    }
    m::mount_remount(path, flags, "")
}

fn open_dir_at(dir: &OwnedFd, name: &str) -> R<OwnedFd> {
    rfs::openat(
        dir.as_fd(),
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx(format!("/dev/{name}")))
}

/// Brings `lo` up in a fresh network namespace.
pub(super) fn loopback_up() -> R<()> {
    // SAFETY: plain syscalls on a socket we own; `ifreq` is zero-initialised and the name
    // fits its buffer.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let res = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            Err(format!(
                "SIOCGIFFLAGS lo: {}",
                std::io::Error::last_os_error()
            ))
        } else {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) < 0 {
                Err(format!(
                    "SIOCSIFFLAGS lo: {}",
                    std::io::Error::last_os_error()
                ))
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        res
    }
}
