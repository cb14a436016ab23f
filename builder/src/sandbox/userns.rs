//! Rootless kiln: the whole process moves into a user namespace when it starts, like
//! `podman`/`buildah unshare`. The caller becomes 0 and its `/etc/subuid`/`/etc/subgid`
//! ranges follow (`newuidmap`/`newgidmap` write the maps, they are setuid helpers from the
//! Debian package `uidmap`), and a private mount namespace comes with it.
//!
//! Why the whole process and not only the RUN steps, and why not an ownership xattr
//! (`user.containers.override_stat`, as fuse-overlayfs does): every later reader of a
//! snapshot must see the image's owners as real owners. A RUN step `ls -l`s them and
//! `chown`s to other ids; the diff of its upper dir must read files mode 0600 owned by uid
//! 1000 and put that uid in the layer; the copy-based snapshotter copies them with their
//! owners; cleanup removes read-only directories owned by others. An xattr would be
//! invisible to the kernel inside RUN (without fuse-overlayfs) and every reader would have
//! to translate it. Inside the namespace all of that is the rootful code path: the kernel
//! stores namespace id N as host id `subuid_start + N - 1`, and reads it back as N. Layer
//! unpacking runs there too, so it keeps owners with a plain chown ([`crate::fs::idmap`]),
//! and overlayfs can be mounted with `userxattr` (Linux >= 5.11).
//!
//! Without subordinate ranges or the helpers, kiln stays in the caller's namespace: layers
//! unpack with the caller as owner, the native snapshotter is used, and each RUN step gets
//! a single-id user namespace (caller -> 0) of its own; a one-time note says so.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use rustix::thread::UnshareFlags;

/// One `name:start:count` line of `/etc/subuid` or `/etc/subgid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubIdRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `user` (or of its numeric id) in the text of `/etc/subuid`/`/etc/subgid`.
pub fn parse_subids(text: &str, user: Option<&str>, id: u32) -> Vec<SubIdRange> {
    let id = id.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if Some(who) != user && who != id {
                return None;
            }
            let r = SubIdRange {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            };
            (r.count > 0).then_some(r)
        })
        .collect()
}

/// The arguments of `newuidmap PID ...`: the caller as 0, then each range from 1 up.
pub fn map_args(own: u32, ranges: &[SubIdRange]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next = 1u32;
    for r in ranges {
        args.extend([next.to_string(), r.start.to_string(), r.count.to_string()]);
        next = next.saturating_add(r.count);
    }
    args
}

/// The user name of `uid` in the text of `/etc/passwd`.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// How this kiln process runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Real root.
    Root,
    /// Root of a user namespace mapping the caller and its subordinate ids (entered by
    /// [`enter_rootless`] or by a wrapper such as `buildah unshare`).
    UserNamespace,
    /// Not root and no subordinate ids: single-id namespaces per RUN step.
    SingleId { reason: String },
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Why subordinate ids are unavailable, for the sandbox's one-time note.
pub(crate) fn single_id_reason() -> Option<&'static str> {
    match MODE.get() {
        Some(Mode::SingleId { reason }) => Some(reason),
        _ => None,
    }
}

/// Called first thing in `main`, while the process is single-threaded: when not root,
/// moves into a user namespace with the caller's subordinate ids (see the module docs).
/// Errors only when the helpers were found but failed, which leaves the process in a
/// namespace without ids; the caller should stop then.
pub fn enter_rootless() -> Result<Mode, String> {
    let mode = decide_and_enter()?;
    let _ = MODE.set(mode.clone());
    Ok(mode)
}

fn decide_and_enter() -> Result<Mode, String> {
    if rustix::process::geteuid().is_root() {
        return Ok(if crate::fs::idmap::in_user_namespace() {
            Mode::UserNamespace
        } else {
            Mode::Root
        });
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| user_name(&p, uid));
    let ranges = |file: &str, id: u32| -> Result<Vec<SubIdRange>, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        let r = parse_subids(&text, name.as_deref(), id);
        if r.is_empty() {
            let who = name.clone().unwrap_or_else(|| id.to_string());
            return Err(format!("{file} has no range for {who}"));
        }
        Ok(r)
    };
    let single = |reason: String| Ok(Mode::SingleId { reason });
    let (uids, gids) = match (ranges("/etc/subuid", uid), ranges("/etc/subgid", gid)) {
        (Ok(u), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => return single(e),
    };
    let (Some(newuidmap), Some(newgidmap)) = (find_in_path("newuidmap"), find_in_path("newgidmap"))
    else {
        return single("newuidmap/newgidmap not found (Debian package uidmap)".into());
    };
    let uid_args = map_args(uid, &uids);
    let gid_args = map_args(gid, &gids);
    let helper = MapHelper::start(move |pid| {
        run_map(&newuidmap, pid, &uid_args) && run_map(&newgidmap, pid, &gid_args)
    })?;
    // SAFETY: single-threaded (called first in main, see above).
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER) } {
        drop(helper);
        return single(format!("user namespaces unavailable: {e}"));
    }
    helper.map_me()?;
    // SAFETY: still single-threaded.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
        .map_err(|e| format!("unshare mount namespace: {e}"))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    Ok(Mode::UserNamespace)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run_map(program: &PathBuf, pid: i32, args: &[String]) -> bool {
    match Command::new(program)
        .arg(pid.to_string())
        .args(args)
        .status()
    {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("kiln: {} {pid} {}: {s}", program.display(), args.join(" "));
            false
        }
        Err(e) => {
            eprintln!("kiln: {}: {e}", program.display());
            false
        }
    }
}

/// A forked child that writes our id maps once we have unshared the user namespace (a
/// process cannot map itself to ids it does not own; the setuid helpers can, given its pid).
struct MapHelper {
    pid: i32,
    go: Option<std::fs::File>,
}

impl MapHelper {
    fn start(map: impl FnOnce(i32) -> bool) -> Result<MapHelper, String> {
        let (r, w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        let parent = rustix::process::getpid().as_raw_nonzero().get();
        // SAFETY: the caller is single-threaded, so the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(w);
            let mut byte = [0u8; 1];
            let go = std::fs::File::from(r).read(&mut byte).is_ok_and(|n| n == 1);
            let ok = go && map(parent);
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        drop(r);
        Ok(MapHelper {
            pid,
            go: Some(std::fs::File::from(w)),
        })
    }

    /// Lets the helper map us and waits for it.
    fn map_me(mut self) -> Result<(), String> {
        let mut go = self.go.take().expect("not yet signalled");
        go.write_all(b"g")
            .map_err(|e| format!("id map helper: {e}"))?;
        drop(go);
        if self.wait() {
            Ok(())
        } else {
            Err(
                "writing the user namespace id maps failed (see above); check /etc/subuid \
                 and /etc/subgid"
                    .into(),
            )
        }
    }

    fn wait(&mut self) -> bool {
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child with a valid out pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.pid = 0;
                return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                self.pid = 0;
                return false;
            }
        }
    }
}

impl Drop for MapHelper {
    fn drop(&mut self) {
        // Closing the pipe unsignalled makes the helper exit without mapping.
        self.go = None;
        if self.pid > 0 {
            self.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subids_match_by_name_or_uid() {
        let text = "# comment\nalice:100000:65536\n1002:200000:1000\nbob:300000:0\nbob:400000:10\n";
        assert_eq!(
            parse_subids(text, Some("alice"), 1001),
            vec![SubIdRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse_subids(text, Some("carol"), 1002),
            vec![SubIdRange {
                start: 200000,
                count: 1000
            }]
        );
        // Empty ranges are ignored, further ones kept.
        assert_eq!(
            parse_subids(text, Some("bob"), 1003),
            vec![SubIdRange {
                start: 400000,
                count: 10
            }]
        );
        assert!(parse_subids(text, None, 7).is_empty());
    }

    #[test]
    fn maps_put_the_caller_at_zero_and_ranges_after_it() {
        let ranges = [
            SubIdRange {
                start: 100000,
                count: 65536,
            },
            SubIdRange {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1001, &ranges).join(" "),
            "0 1001 1 1 100000 65536 65537 300000 10"
        );
    }

    #[test]
    fn user_names_come_from_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\nkiln-test:x:1001:1001::/home/kiln-test:/bin/sh\n";
        assert_eq!(user_name(passwd, 1001).as_deref(), Some("kiln-test"));
        assert_eq!(user_name(passwd, 5), None);
    }
}
