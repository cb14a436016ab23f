//! `ADD <git URL>` against a real `git daemon` on loopback: the default branch, a tag, a
//! branch's subdir and a commit SHA are checked out without `.git` (modes and symlinks from
//! git, owned by root unless --chown, fixed mtimes); `--keep-git-dir` keeps a real clone;
//! `--checksum` is the commit; the cache follows the remote (an unchanged remote is a hit, a
//! new commit on the branch reruns the step); errors name the line and never the credentials.
//! Submodules are fetched as BuildKit does; the `?key=value` query form of Dockerfile 1.18 works.
//!
//! Needs `git` with `git daemon`: missing, the tests skip with a note, or fail under `CI=true`.

mod common;
#[allow(dead_code)]
mod tree;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Kiln;

/// Runs git for the test's own repositories: no user config, fixed identity and dates.
fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = git_cmd("git", home)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `program` (git or git-daemon) without user config, with a fixed identity and dates.
fn git_cmd(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z");
    cmd
}

/// The `git-daemon` program, run directly: `git daemon` would run it as a child of its own,
/// which killing `git` would leave behind. Outside CI a missing git or daemon skips with a note.
fn git_daemon() -> Option<PathBuf> {
    let daemon = Command::new("git")
        .arg("--exec-path")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("git-daemon"))
        .filter(|p| p.exists());
    if daemon.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "git and git daemon are required when CI=true"
        );
        eprintln!("note: git or git daemon not installed; skipping");
    }
    daemon
}

/// A bare repository `repo.git` served by `git daemon` on a free loopback port, killed on drop.
///
/// History: main = c1 -> c2 (tag v1, annotated) -> c3; feature = c2 -> f1.
struct GitServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    c1: String,
    c3: String,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GitServer {
    fn start() -> Option<GitServer> {
        let daemon = git_daemon()?;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(work.join("bin")).unwrap();
        fs::create_dir_all(work.join("sub/deeper")).unwrap();
        git(dir.path(), &home, &["init", "-q", "-b", "main", "work"]);
        git(dir.path(), &home, &["init", "-q", "--bare", "repo.git"]);
        git(
            &dir.path().join("repo.git"),
            &home,
            &["symbolic-ref", "HEAD", "refs/heads/main"],
        );
        fs::write(work.join("README"), "one\n").unwrap();
        fs::write(work.join("bin/tool.sh"), "#!/bin/sh\necho tool\n").unwrap();
        fs::set_permissions(work.join("bin/tool.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(work.join("sub/inner.txt"), "inner\n").unwrap();
        fs::write(work.join("sub/deeper/x.txt"), "x\n").unwrap();
        std::os::unix::fs::symlink("README", work.join("link")).unwrap();
        git(&work, &home, &["add", "-A"]);
        git(&work, &home, &["commit", "-qm", "c1"]);
        let c1 = git(&work, &home, &["rev-parse", "HEAD"]);
        fs::write(work.join("README"), "two\n").unwrap();
        git(&work, &home, &["commit", "-qam", "c2"]);
        git(&work, &home, &["tag", "-a", "v1", "-m", "v1"]);
        fs::write(work.join("README"), "three\n").unwrap();
        git(&work, &home, &["commit", "-qam", "c3"]);
        let c3 = git(&work, &home, &["rev-parse", "HEAD"]);
        git(&work, &home, &["checkout", "-qb", "feature", "v1"]);
        fs::write(work.join("sub/feature.txt"), "feature\n").unwrap();
        git(&work, &home, &["add", "-A"]);
        git(&work, &home, &["commit", "-qm", "f1"]);
        git(
            &work,
            &home,
            &["push", "-q", "../repo.git", "main", "feature", "v1"],
        );

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = git_cmd(&daemon, &home)
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg(format!("--base-path={}", dir.path().display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn git daemon");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("git daemon exited: {status}");
            }
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(GitServer {
            child,
            dir,
            port,
            c1,
            c3,
        })
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// Adds `super.git`, whose `vendor/lib` is a submodule of `lib.git` (relative URL
    /// `../lib.git`, so it resolves against whatever URL the superproject is fetched from).
    fn add_superproject(&self) -> String {
        let home = self.dir.path().join("home");
        let d = self.dir.path();
        for (work, bare) in [("libwork", "lib.git"), ("superwork", "super.git")] {
            git(d, &home, &["init", "-q", "-b", "main", work]);
            git(d, &home, &["init", "-q", "--bare", bare]);
            git(
                &d.join(bare),
                &home,
                &["symbolic-ref", "HEAD", "refs/heads/main"],
            );
        }
        fs::write(d.join("libwork/lib.txt"), "lib\n").unwrap();
        git(&d.join("libwork"), &home, &["add", "-A"]);
        git(&d.join("libwork"), &home, &["commit", "-qm", "lib"]);
        git(
            &d.join("libwork"),
            &home,
            &["push", "-q", "../lib.git", "main"],
        );
        let sup = d.join("superwork");
        fs::write(sup.join("app.txt"), "app\n").unwrap();
        git(
            &sup,
            &home,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                "../lib.git",
                "vendor/lib",
            ],
        );
        git(&sup, &home, &["add", "-A"]);
        git(&sup, &home, &["commit", "-qm", "super"]);
        git(&sup, &home, &["push", "-q", "../super.git", "main"]);
        format!("git://127.0.0.1:{}/super.git", self.port)
    }

    /// Commits `file` on `branch` and pushes it; returns the new commit.
    fn commit(&self, branch: &str, file: &str) -> String {
        let home = self.dir.path().join("home");
        let work = self.dir.path().join("work");
        git(&work, &home, &["checkout", "-q", branch]);
        fs::write(work.join(file), format!("{file}\n")).unwrap();
        git(&work, &home, &["add", "-A"]);
        git(&work, &home, &["commit", "-qm", file]);
        git(&work, &home, &["push", "-q", "../repo.git", branch]);
        git(&work, &home, &["rev-parse", "HEAD"])
    }
}

fn context(k: &Kiln, dockerfile: &str) -> PathBuf {
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// Builds `dockerfile` (a context of its own), which must fail; returns the error.
fn build_error(k: &Kiln, dockerfile: &str) -> String {
    let ctx = context(k, dockerfile);
    k.cmd(["build", "-q"]).arg(&ctx).fails()
}

/// The line of `tree` for `path`, without the path.
fn tree_line<'t>(tree: &'t str, path: &str) -> &'t str {
    let suffix = format!(" {path}");
    tree.lines()
        .find_map(|l| l.strip_suffix(&suffix))
        .unwrap_or_else(|| panic!("{path} not in the image:\n{tree}"))
}

#[test]
fn add_git_checks_out_head_tags_subdirs_and_commits() {
    let Some(srv) = GitServer::start() else {
        return;
    };
    let url = srv.url();
    let k = Kiln::new();
    let ctx = context(
        &k,
        &format!(
            "FROM scratch\n\
             ADD {url} /head\n\
             ADD {url}#v1 /tag/\n\
             ADD {url}#feature:sub /sub\n\
             ADD {url}#{c1} /commit\n\
             ADD --chown=1000:2000 --chmod=750 {url}#v1:sub/deeper/ /owned\n",
            c1 = srv.c1
        ),
    );
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();

    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap();
    let mode = |p: &str| fs::symlink_metadata(out.join(p)).unwrap().mode() & 0o7777;
    // the default branch (HEAD = main) at its tip, without .git
    assert_eq!(read("head/README"), "three\n");
    assert_eq!(mode("head/README"), 0o644);
    assert_eq!(mode("head/bin/tool.sh"), 0o755);
    assert_eq!(
        fs::read_link(out.join("head/link")).unwrap(),
        Path::new("README")
    );
    assert_eq!(read("head/sub/deeper/x.txt"), "x\n");
    assert!(!out.join("head/.git").exists());
    // git's contents get a fixed mtime: the epoch without SOURCE_DATE_EPOCH
    assert_eq!(fs::metadata(out.join("head/README")).unwrap().mtime(), 0);
    // an annotated tag, a branch's subdir, a commit that no ref points at
    assert_eq!(read("tag/README"), "two\n");
    assert!(!out.join("tag/.git").exists());
    assert_eq!(read("sub/inner.txt"), "inner\n");
    assert_eq!(read("sub/feature.txt"), "feature\n");
    assert!(!out.join("sub/README").exists());
    assert_eq!(read("commit/README"), "one\n");
    assert!(!out.join("commit/sub/feature.txt").exists());

    // owners and modes as the layers carry them
    let layout = k.path("layout");
    k.cmd(["build", "-q", "-o"])
        .arg(format!("type=oci,dest={},tar=false", layout.display()))
        .arg(&ctx)
        .stdout();
    let tree = tree::tree(&layout, None);
    assert!(
        tree_line(&tree, "/head/README").starts_with("f 0644 0:0 "),
        "{tree}"
    );
    assert!(
        tree_line(&tree, "/head/bin/tool.sh").starts_with("f 0755 0:0 "),
        "{tree}"
    );
    assert!(
        tree_line(&tree, "/head/link").starts_with("l ")
            && tree_line(&tree, "/head/link").ends_with("-> README"),
        "{tree}"
    );
    assert!(
        tree_line(&tree, "/owned/x.txt").starts_with("f 0750 1000:2000 "),
        "{tree}"
    );
    assert!(!tree.contains("/owned/README"), "{tree}");
}

#[test]
fn keep_git_dir_keeps_a_clone_and_checksum_is_the_commit() {
    let Some(srv) = GitServer::start() else {
        return;
    };
    let url = srv.url();
    let k = Kiln::new();
    let ctx = context(
        &k,
        &format!(
            "FROM scratch\n\
             ADD --keep-git-dir {url}#main /repo\n\
             ADD --checksum={c3} {url}#main /checked\n",
            c3 = srv.c3
        ),
    );
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"])
        .arg(&out)
        .arg(&ctx)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdout();
    let home = srv.dir.path().join("home");
    let repo = out.join("repo");
    assert!(repo.join(".git").is_dir());
    assert_eq!(git(&repo, &home, &["rev-parse", "HEAD"]), srv.c3);
    assert_eq!(
        git(&repo, &home, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    assert_eq!(git(&repo, &home, &["config", "remote.origin.url"]), url);
    assert_eq!(git(&repo, &home, &["status", "--porcelain"]), "");
    assert_eq!(
        fs::read_to_string(out.join("checked/README")).unwrap(),
        "three\n"
    );
    assert!(!out.join("checked/.git").exists());
    // with SOURCE_DATE_EPOCH, that is git's contents' mtime
    assert_eq!(
        fs::metadata(out.join("checked/README")).unwrap().mtime(),
        1_700_000_000
    );

    // another commit than the branch's: fails naming both, builds nothing
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD --checksum={} {url}#main /x\n", srv.c1),
    )
    .unwrap();
    let err = k.cmd(["build", "-q", "-t", "g:bad"]).arg(&ctx).fails();
    assert!(
        err.contains("Dockerfile:2") && err.contains(&srv.c1) && err.contains(&srv.c3),
        "{err}"
    );
    k.cmd(["inspect", "g:bad"]).fails();

    // a content digest is no git checksum
    let err = build_error(
        &k,
        &format!(
            "FROM scratch\nADD --checksum=sha256:{} {url} /x\n",
            "0".repeat(64)
        ),
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("full commit SHA"),
        "{err}"
    );
}

/// Runs a plain-progress build; returns whether each `ADD` step was "CACHED" or "DONE".
fn add_steps(k: &Kiln, ctx: &Path) -> Vec<String> {
    let out = k
        .cmd(["build", "--progress", "plain", "-t", "g:1"])
        .arg(ctx)
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "build failed:\n{stderr}");
    let adds = stderr.matches("] ADD ").count();
    let status: Vec<String> = common::step_statuses(&stderr)
        .into_iter()
        .filter(|(text, _)| text.starts_with("ADD "))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(status.len(), adds, "{stderr}");
    status
}

#[test]
fn the_cache_follows_the_remote_ref() {
    let Some(srv) = GitServer::start() else {
        return;
    };
    let url = srv.url();
    let k = Kiln::new();
    let ctx = context(
        &k,
        &format!("FROM scratch\nADD {url}#feature /f\nADD {url} /head\n"),
    );
    assert_eq!(add_steps(&k, &ctx), ["DONE", "DONE"]);
    // an unchanged remote: both hits (ls-remote only)
    assert_eq!(add_steps(&k, &ctx), ["CACHED", "CACHED"]);
    // a new commit on feature reruns that step (and what follows it)
    srv.commit("feature", "new.txt");
    assert_eq!(add_steps(&k, &ctx), ["DONE", "DONE"]);
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();
    assert_eq!(
        fs::read_to_string(out.join("f/new.txt")).unwrap(),
        "new.txt\n"
    );
    assert!(!out.join("head/new.txt").exists());
    // a new commit on main (HEAD) leaves the feature step cached
    srv.commit("main", "main.txt");
    assert_eq!(add_steps(&k, &ctx), ["CACHED", "DONE"]);
}

#[test]
fn errors_name_the_line_and_hide_credentials() {
    let Some(srv) = GitServer::start() else {
        return;
    };
    let url = srv.url();
    let k = Kiln::new();
    let err = build_error(&k, &format!("FROM scratch\nADD {url}#nope /x\n"));
    assert!(
        err.contains("Dockerfile:2") && err.contains("\"nope\" not found"),
        "{err}"
    );

    let err = build_error(&k, &format!("FROM scratch\nADD {url}#main:missing /x\n"));
    assert!(
        err.contains("Dockerfile:2") && err.contains("subdirectory \"missing\" not found"),
        "{err}"
    );

    // nothing listens there: git fails, and neither its message nor the step shows the token
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = context(
        &k,
        &format!("FROM scratch\nADD http://user:s3cret@127.0.0.1:{closed}/repo.git /x\n"),
    );
    let out = k.cmd(["build", "--progress", "plain"]).arg(&ctx).output();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("Dockerfile:2") && all.contains("git ls-remote failed"),
        "{all}"
    );
    assert!(!all.contains("s3cret") && !all.contains("user:"), "{all}");
}

/// Submodules are checked out (recursively, without their `.git` files) unless
/// `?submodules=false`; the Dockerfile 1.18 query form names branches, tags, commits, subdirs
/// and `keep-git-dir`, and a `checksum` the ref does not name fails the build.
#[test]
fn submodules_and_the_query_form() {
    let Some(srv) = GitServer::start() else {
        return;
    };
    let url = srv.url();
    let sup = srv.add_superproject();
    let k = Kiln::new();
    let ctx = context(
        &k,
        &format!(
            "FROM scratch\n\
             ADD {sup} /plain\n\
             ADD {sup}?submodules=false /nosub\n\
             ADD {sup}?branch=main&keep-git-dir=true /kept\n\
             ADD {url}?tag=v1&subdir=sub /qsub\n\
             ADD {url}?commit={c1} /qcommit\n\
             ADD {url}?branch=main&checksum={c3_short} /qcheck\n",
            c1 = srv.c1,
            c3_short = &srv.c3[..10],
        ),
    );
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("plain/app.txt"), "app\n");
    assert_eq!(read("plain/vendor/lib/lib.txt"), "lib\n");
    assert!(!out.join("plain/.git").exists());
    assert!(!out.join("plain/vendor/lib/.git").exists());
    assert!(out.join("nosub/vendor/lib").is_dir());
    assert!(!out.join("nosub/vendor/lib/lib.txt").exists());
    // keep-git-dir from the query: a clone whose submodule is checked out and clean
    let home = srv.dir.path().join("home");
    assert!(out.join("kept/.git").is_dir());
    assert!(out.join("kept/vendor/lib/.git").is_file());
    assert_eq!(
        git(&out.join("kept"), &home, &["status", "--porcelain"]),
        ""
    );
    assert_eq!(read("kept/vendor/lib/lib.txt"), "lib\n");
    assert_eq!(read("qsub/inner.txt"), "inner\n");
    assert!(!out.join("qsub/feature.txt").exists());
    assert!(!out.join("qsub/README").exists());
    assert_eq!(read("qcommit/README"), "one\n");
    assert_eq!(read("qcheck/README"), "three\n");

    // a checksum the branch does not name
    let err = build_error(
        &k,
        &format!(
            "FROM scratch\nADD {url}?branch=main&checksum={} /x\n",
            &srv.c1[..12]
        ),
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("checksum mismatch") && err.contains(&srv.c3),
        "{err}"
    );
    // a malformed query names the line and the key
    let err = build_error(&k, &format!("FROM scratch\nADD {url}?depth=1 /x\n"));
    assert!(
        err.contains("Dockerfile:2") && err.contains("unknown query key \"depth\""),
        "{err}"
    );
}
