//! Read-only questions about a stage's rootfs: where a path really lands (symlinks resolved as
//! if the rootfs were `/`), what is there, and who a user or group name is.

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

/// A rootfs directory queried without ever leaving it.
pub struct RootfsView<'a> {
    root: &'a Path,
}

const MAX_SYMLINKS: usize = 40;

impl<'a> RootfsView<'a> {
    pub fn new(root: &'a Path) -> Self {
        RootfsView { root }
    }

    /// The canonical absolute path (inside the rootfs) that `path` names, with every symlink in
    /// it expanded inside the root. The last component is followed too when `follow_last`.
    /// Components that do not exist are kept as written.
    pub fn canonicalize(&self, path: &str, follow_last: bool) -> String {
        let mut done: Vec<String> = Vec::new();
        let mut pending: Vec<String> = split(path).into_iter().rev().collect();
        let mut links = 0;
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                done.pop();
                continue;
            }
            let is_last = pending.is_empty();
            let candidate = self.host(&join(&done, &comp));
            // `done` holds no symlinks, so only `comp` itself could be one: lstat does not
            // follow it, and nothing outside the root is touched.
            match fs::symlink_metadata(&candidate) {
                Ok(md) if md.file_type().is_symlink() && (!is_last || follow_last) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        done.push(comp);
                        continue;
                    }
                    let target = fs::read_link(&candidate).unwrap_or_default();
                    let target = crate::fs::name::encode(target.as_os_str());
                    if target.starts_with('/') {
                        done.clear();
                    }
                    for c in split(&target).into_iter().rev() {
                        pending.push(c);
                    }
                }
                _ => done.push(comp),
            }
        }
        format!("/{}", done.join("/"))
    }

    /// Metadata of the canonical path (never following its last component).
    pub fn lstat(&self, canonical: &str) -> Option<Metadata> {
        fs::symlink_metadata(self.host(canonical)).ok()
    }

    pub fn is_dir(&self, canonical: &str) -> bool {
        self.lstat(canonical).is_some_and(|m| m.is_dir())
    }

    /// Reads a small file (e.g. `/etc/passwd`) by its path inside the rootfs.
    pub fn read_file(&self, path: &str) -> Option<String> {
        let canonical = self.canonicalize(path, true);
        let md = self.lstat(&canonical)?;
        if !md.is_file() || md.len() > 16 << 20 {
            return None;
        }
        fs::read_to_string(self.host(&canonical)).ok()
    }

    fn host(&self, canonical: &str) -> PathBuf {
        self.root.join(crate::fs::name::decode_path(
            canonical.trim_start_matches('/'),
        ))
    }

    /// Looks a user up in the rootfs's `/etc/passwd`: `(uid, primary gid)`.
    pub fn user(&self, name: &str) -> Option<(u32, u32)> {
        let passwd = self.read_file("/etc/passwd")?;
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    }

    /// Looks a group up in the rootfs's `/etc/group`.
    pub fn group(&self, name: &str) -> Option<u32> {
        let group = self.read_file("/etc/group")?;
        group.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok())?
        })
    }

    /// Resolves `user[:group]` as COPY --chown and USER do: names from the rootfs's passwd and
    /// group files; a name alone takes the user's primary group, a numeric uid alone uses the
    /// same number as gid (Docker's rule).
    pub fn resolve_owner(&self, spec: &str) -> Result<(u32, u32), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let (uid, primary_gid) = match user.parse::<u32>() {
            Ok(uid) => (uid, uid),
            Err(_) => self.user(user).ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?,
        };
        let gid = match group {
            None | Some("") => primary_gid,
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => self.group(g).ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
            },
        };
        Ok((uid, gid))
    }
}

impl RootfsView<'_> {
    /// The user a process runs as for `USER spec` (runtime rules, as runc applies them): a
    /// name must exist in /etc/passwd; a numeric uid takes its passwd entry's group, else 0;
    /// an explicit group wins; supplementary groups come from /etc/group membership.
    pub fn resolve_runtime_user(&self, spec: &str) -> Result<(u32, u32, Vec<u32>), String> {
        let spec = if spec.is_empty() { "0" } else { spec };
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = self.read_file("/etc/passwd").unwrap_or_default();
        let entries: Vec<Vec<&str>> = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4)
            .collect();
        let (uid, gid, name) = match user.parse::<u32>() {
            Ok(uid) => match entries.iter().find(|f| f[2].parse() == Ok(uid)) {
                Some(f) => (uid, f[3].parse().unwrap_or(0), Some(f[0].to_string())),
                None => (uid, 0, None),
            },
            Err(_) => {
                let f = entries.iter().find(|f| f[0] == user).ok_or_else(|| {
                    format!("unable to find user {user}: no matching entries in passwd file")
                })?;
                let uid = f[2]
                    .parse()
                    .map_err(|_| format!("invalid uid for user {user} in /etc/passwd"))?;
                (uid, f[3].parse().unwrap_or(0), Some(user.to_string()))
            }
        };
        let gid = match group {
            None | Some("") => gid,
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => self.group(g).ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
            },
        };
        // runc lists the primary group among the supplementary ones (`id` shows it).
        let mut groups = vec![gid];
        if let (Some(name), None) = (name, group) {
            let group_file = self.read_file("/etc/group").unwrap_or_default();
            for line in group_file.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                    if let Ok(g) = f[2].parse::<u32>() {
                        if !groups.contains(&g) {
                            groups.push(g);
                        }
                    }
                }
            }
        }
        Ok((uid, gid, groups))
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

fn join(done: &[String], comp: &str) -> String {
    let mut s = String::from("/");
    for d in done {
        s.push_str(d);
        s.push('/');
    }
    s.push_str(comp);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        symlink("/etc", r.join("escape")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        let v = RootfsView::new(r);
        assert_eq!(v.canonicalize("/bin/sh", false), "/usr/bin/sh");
        assert_eq!(v.canonicalize("/escape/passwd", false), "/etc/passwd");
        assert_eq!(v.canonicalize("/up/x", false), "/x");
        assert_eq!(v.canonicalize("/bin", false), "/bin");
        assert_eq!(v.canonicalize("/bin", true), "/usr/bin");
        assert!(v.is_dir("/usr/bin"));
    }

    #[test]
    fn owners_follow_docker_rules() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "app:x:1001:1002::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(dir.path().join("etc/group"), "staff:x:50:\n").unwrap();
        let v = RootfsView::new(dir.path());
        assert_eq!(v.resolve_owner("app").unwrap(), (1001, 1002));
        assert_eq!(v.resolve_owner("app:staff").unwrap(), (1001, 50));
        assert_eq!(v.resolve_owner("7").unwrap(), (7, 7));
        assert_eq!(v.resolve_owner("7:8").unwrap(), (7, 8));
        assert!(v.resolve_owner("nobody").unwrap_err().contains("nobody"));
    }

    #[test]
    fn runtime_users_follow_runc_rules() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "app:x:1001:1002::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "staff:x:50:app,other\napp:x:1002:\n",
        )
        .unwrap();
        let v = RootfsView::new(dir.path());
        assert_eq!(
            v.resolve_runtime_user("app").unwrap(),
            (1001, 1002, vec![1002, 50])
        );
        assert_eq!(
            v.resolve_runtime_user("1001").unwrap(),
            (1001, 1002, vec![1002, 50])
        );
        assert_eq!(v.resolve_runtime_user("4242").unwrap(), (4242, 0, vec![0]));
        assert_eq!(
            v.resolve_runtime_user("app:staff").unwrap(),
            (1001, 50, vec![50])
        );
        assert!(v.resolve_runtime_user("ghost").is_err());
    }
}
