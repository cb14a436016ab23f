//! `ADD <git URL>` (BuildKit's git source): which ADD sources are git repositories, the commit
//! a branch, tag or HEAD names now (`git ls-remote`, asked before the cache is consulted, as
//! BuildKit does), and a shallow checkout of that commit in the build's scratch space. The
//! checkout is then written into the layer like a local directory source (`steps.rs`).
//!
//! `git` runs as a child process with a clean environment: no system or global config, HOME in
//! the scratch dir, no terminal prompts, only the http(s), git and ssh transports, and umask 022
//! so the checkout's modes are git's (0644, or 0755 for executables). Messages never carry a
//! URL's userinfo.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::redact_credentials;

/// A git source of ADD: `<remote>[#<ref>[:<subdir>]]`, or `<remote>?<query>` with the keys of
/// Dockerfile 1.18 (`ref`, `branch`, `tag`, `checksum`/`commit`, `subdir`, `keep-git-dir`,
/// `submodules`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitSource {
    /// What git fetches from (may carry credentials: never print it, see [`Self::display`]).
    pub remote: String,
    /// A branch, tag, full ref or commit SHA; `None` is the remote's default branch (HEAD).
    pub reference: Option<String>,
    /// The directory of the checkout to copy (no leading or trailing `/`); `None` is all of it.
    pub subdir: Option<String>,
    /// `?checksum=` / `?commit=`: the commit the ref must name (a prefix of at least 7 hex
    /// digits; the full SHA when there is no ref, as it is then what is fetched).
    pub checksum: Option<String>,
    /// `?keep-git-dir=`: keep `.git` (`ADD --keep-git-dir` turns it on too).
    pub keep_git_dir: bool,
    /// Check out submodules (BuildKit does unless `?submodules=false`).
    pub submodules: bool,
    /// The fragment or query as written, for messages.
    suffix: String,
}

impl GitSource {
    /// Whether an ADD source is a git repository (see [`Self::parse`]).
    pub fn is_git(source: &str) -> bool {
        let remote = source.split_once('#').map_or(source, |(r, _)| r);
        let remote = remote.split_once('?').map_or(remote, |(r, _)| r);
        is_git_remote(remote)
    }

    /// BuildKit's rule (`gitutil.ParseGitRef`): a source is a git repository when it is
    /// `user@host:path` (scp-like ssh), a `git://` or `ssh://` URL, or an `http(s)://` URL whose
    /// path ends in `.git`. The fragment is `ref`, `ref:subdir` or `:subdir`; a query holds the
    /// same and more as `key=value` pairs, and cannot be mixed with a fragment. `Ok(None)` is a
    /// source that is no repository; a malformed query is an error.
    pub fn parse(source: &str) -> Result<Option<GitSource>, String> {
        if !Self::is_git(source) {
            return Ok(None);
        }
        let (rest, fragment) = match source.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (source, None),
        };
        let (remote, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut g = GitSource {
            remote: remote.to_string(),
            reference: None,
            subdir: None,
            checksum: None,
            keep_git_dir: false,
            submodules: true,
            suffix: String::new(),
        };
        match (fragment, query) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "git source {}: use either a #fragment or a ?query, not both",
                    redact_credentials(remote)
                ))
            }
            (Some(f), None) => {
                let (reference, subdir) = f.split_once(':').unwrap_or((f, ""));
                g.reference = (!reference.is_empty()).then(|| reference.to_string());
                g.subdir = clean_subdir(subdir);
                g.suffix = format!("#{f}");
            }
            (None, Some(q)) => {
                g.apply_query(q)?;
                g.suffix = format!("?{q}");
            }
            (None, None) => {}
        }
        Ok(Some(g))
    }

    fn apply_query(&mut self, query: &str) -> Result<(), String> {
        let bad = |msg: String| format!("git source {}: {msg}", redact_credentials(&self.remote));
        let mut seen = std::collections::HashSet::new();
        let mut named_ref: Option<(String, String)> = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(key.clone()) {
                return Err(bad(format!("query key {key:?} given twice")));
            }
            let value = value.into_owned();
            let flag = |v: &str| match v {
                "" | "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(bad(format!("{key}={v:?} is not true or false"))),
            };
            match &*key {
                "ref" | "branch" | "tag" => {
                    if let Some((other, _)) = named_ref {
                        return Err(bad(format!("{other} and {key} cannot be used together")));
                    }
                    if value.is_empty() {
                        return Err(bad(format!("{key} is empty")));
                    }
                    let full = match &*key {
                        "branch" => format!("refs/heads/{value}"),
                        "tag" => format!("refs/tags/{value}"),
                        _ => value.clone(),
                    };
                    named_ref = Some((key.to_string(), full));
                }
                "checksum" | "commit" => {
                    if seen.contains("checksum") && seen.contains("commit") {
                        return Err(bad("checksum and commit cannot be used together".into()));
                    }
                    let ok = (7..=64).contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_hexdigit());
                    if !ok {
                        return Err(bad(format!("{key}={value:?} is not a commit SHA")));
                    }
                    self.checksum = Some(value.to_ascii_lowercase());
                }
                "subdir" => self.subdir = clean_subdir(&value),
                "keep-git-dir" => self.keep_git_dir = flag(&value)?,
                "submodules" => self.submodules = flag(&value)?,
                _ => return Err(bad(format!("unknown query key {key:?}"))),
            }
        }
        self.reference = named_ref.map(|(_, r)| r);
        if let (None, Some(c)) = (&self.reference, &self.checksum) {
            // Without a ref the commit is what is fetched, so it must be whole.
            if !is_commit_sha(c) {
                return Err(bad(format!(
                    "checksum {c:?} without a ref must be a full commit SHA"
                )));
            }
            self.reference = Some(c.clone());
        }
        Ok(())
    }

    /// `ADD --checksum` (a full commit SHA): the commit the ref must name, with a `?checksum=`
    /// of the URL, which must then be a prefix of it.
    pub fn require_commit(&mut self, want: &str) -> Result<(), String> {
        if let Some(c) = &self.checksum {
            if !want.starts_with(c.as_str()) {
                return Err(format!(
                    "--checksum {want} and the URL's checksum {c} disagree for {}",
                    self.display()
                ));
            }
        }
        self.checksum = Some(want.to_string());
        Ok(())
    }

    /// Whether `.git` stays in the checkout: `ADD --keep-git-dir` or `?keep-git-dir=true`.
    fn keeps_git_dir(&self, flag: bool) -> bool {
        flag || self.keep_git_dir
    }

    /// The source for messages: the remote without userinfo, and the fragment or query.
    pub fn display(&self) -> String {
        format!("{}{}", redact_credentials(&self.remote), self.suffix)
    }
}

fn clean_subdir(subdir: &str) -> Option<String> {
    let subdir = subdir.trim_matches('/');
    (!subdir.is_empty() && subdir != ".").then(|| subdir.to_string())
}

fn is_git_remote(remote: &str) -> bool {
    if let Some((scheme, rest)) = remote.split_once("://") {
        // BuildKit's `^[a-zA-Z0-9]+://`; any other scheme is not a git source.
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        return match scheme.to_ascii_lowercase().as_str() {
            "git" | "ssh" => true,
            // An HTTP(S) URL is a repository only when its path ends in `.git`.
            "http" | "https" => {
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                path.ends_with(".git")
            }
            _ => false,
        };
    }
    // scp-like ssh: `user@host:path`.
    let Some((user_host, _)) = remote.split_once(':') else {
        return false;
    };
    let Some((user, host)) = user_host.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A full commit id (SHA-1 or SHA-256), which BuildKit fetches as is, without `ls-remote`.
pub fn is_commit_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a source's ref named when it was resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The remote's HEAD.
    Head,
    /// A full ref (`refs/heads/main`, `refs/tags/v1`, `refs/pull/1/head`).
    Ref(String),
    /// A commit SHA given in the fragment.
    Commit,
}

/// One git source of a step, resolved: its scratch directory and the commit it names.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub source: GitSource,
    pub target: Target,
    /// The commit that is (or will be) checked out, lowercase hex.
    pub commit: String,
    scratch: PathBuf,
}

impl Prepared {
    /// Resolves `source` to a commit (`git ls-remote`, unless the ref is a commit SHA), with a
    /// fresh scratch directory under `work`.
    pub fn resolve(source: GitSource, work: &Path) -> Result<Prepared, String> {
        let scratch = tempfile::Builder::new()
            .prefix("git-")
            .tempdir_in(work)
            .map_err(|e| format!("{}: {e}", work.display()))?
            .keep();
        let git = Git::new(&scratch)?;
        let (target, commit) = match source.reference.as_deref() {
            Some(r) if is_commit_sha(r) => (Target::Commit, r.to_ascii_lowercase()),
            None => {
                let out = git.run(None, &["ls-remote", "--", &source.remote, "HEAD"])?;
                let commit = parse_ls_remote(&out)
                    .into_iter()
                    .find(|(name, _)| name == "HEAD")
                    .map(|(_, sha)| sha)
                    .ok_or_else(|| {
                        format!(
                            "{} has no default branch (HEAD); name a ref with #<ref>",
                            source.display()
                        )
                    })?;
                (Target::Head, commit)
            }
            Some(r) => {
                let peeled = format!("{r}^{{}}");
                let out = git.run(None, &["ls-remote", "--", &source.remote, r, &peeled])?;
                let (full, commit) = pick_ref(r, &out).ok_or_else(|| {
                    format!(
                        "git ref {r:?} not found in {}",
                        redact_credentials(&source.remote)
                    )
                })?;
                (Target::Ref(full), commit)
            }
        };
        if let Some(want) = &source.checksum {
            if !commit.starts_with(want.as_str()) {
                return Err(format!(
                    "checksum mismatch for {}: expected commit {want}, got {commit}",
                    source.display()
                ));
            }
        }
        Ok(Prepared {
            source,
            target,
            commit,
            scratch,
        })
    }

    /// What the step's cache key takes from this source: the resolved commit, the subdir,
    /// whether `.git` is kept (`ADD --keep-git-dir` or the query) and whether submodules are
    /// checked out (the remote, `--chown` and `--chmod` are in the instruction text; the
    /// submodules' commits are pinned by the commit).
    pub fn key_input(&self, keep_git_dir: bool) -> registry::Digest {
        let keep = self.source.keeps_git_dir(keep_git_dir);
        let fields = serde_json::to_vec(&(
            "git",
            &self.commit,
            self.source.subdir.as_deref(),
            keep,
            self.source.submodules,
        ))
        .expect("strings serialize");
        registry::Digest::of(&fields)
    }

    /// Fetches the commit shallowly and checks it out; returns the checkout's directory and the
    /// commit checked out (always [`Self::commit`]: anything else is an error). Without
    /// `keep_git_dir` the checkout has no `.git`; with it, `.git` is a real (shallow) clone whose
    /// `origin` has no credentials, on the branch when the ref was a branch.
    pub fn checkout(&self, keep_git_dir: bool) -> Result<(PathBuf, String), String> {
        let git = Git::new(&self.scratch)?;
        let repo = self.scratch.join("checkout");
        if repo.exists() {
            std::fs::remove_dir_all(&repo).map_err(|e| format!("{}: {e}", repo.display()))?;
        }
        std::fs::create_dir(&repo).map_err(|e| format!("{}: {e}", repo.display()))?;
        let r = Some(repo.as_path());
        // No template: no sample hooks or description that differ between git versions.
        git.run(r, &["init", "-q", "--template=", "."])?;
        git.run(r, &["config", "remote.origin.url", &self.source.remote])?;
        git.run(
            r,
            &[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        )?;
        let refspec = match &self.target {
            Target::Head => "HEAD".to_string(),
            Target::Ref(full) => format!("+{full}:{full}"),
            Target::Commit => self.commit.clone(),
        };
        git.run(
            r,
            &[
                "fetch",
                "-q",
                "--update-head-ok",
                "--no-tags",
                "--depth=1",
                "origin",
                &refspec,
            ],
        )?;
        let wanted = format!("{}^{{commit}}", self.commit);
        if git
            .run(r, &["rev-parse", "-q", "--verify", &wanted])
            .is_err()
        {
            return Err(format!(
                "{} no longer names commit {} (it moved during the build); build again",
                self.source.display(),
                self.commit
            ));
        }
        match &self.target {
            Target::Ref(full) if full.starts_with("refs/heads/") => {
                git.run(r, &["symbolic-ref", "HEAD", full])?;
            }
            _ => {
                git.run(r, &["update-ref", "--no-deref", "HEAD", &self.commit])?;
            }
        }
        git.run(r, &["reset", "-q", "--hard", &self.commit])?;
        let head = git
            .run(r, &["rev-parse", "HEAD"])?
            .trim()
            .to_ascii_lowercase();
        if head != self.commit {
            return Err(format!(
                "{}: checked out {head}, expected {}",
                self.source.display(),
                self.commit
            ));
        }
        // Submodules as BuildKit fetches them: recursively, shallow, at the commits the
        // superproject pins (relative URLs resolve against the remote, credentials included).
        let submodules = self.source.submodules && repo.join(".gitmodules").exists();
        let mut submodule_dirs = Vec::new();
        if submodules {
            git.run(
                r,
                &["submodule", "update", "--init", "--recursive", "--depth=1"],
            )?;
            let listed = git.run(
                r,
                &[
                    "submodule",
                    "foreach",
                    "--quiet",
                    "--recursive",
                    "echo \"$displaypath\"",
                ],
            )?;
            submodule_dirs = listed.lines().map(|l| repo.join(l)).collect();
        }
        if self.source.keeps_git_dir(keep_git_dir) {
            // The image keeps .git: no credentials in its config, no FETCH_HEAD naming the URL.
            let clean = redact_credentials(&self.source.remote);
            if clean != self.source.remote {
                git.run(r, &["config", "remote.origin.url", &clean])?;
                if submodules {
                    // Rewrites the submodules' URLs from the (now clean) remote.
                    git.run(r, &["submodule", "sync", "--quiet", "--recursive"])?;
                }
            }
            let _ = std::fs::remove_file(repo.join(".git/FETCH_HEAD"));
        } else {
            // A submodule's `.git` is a file pointing into the superproject's `.git/modules`.
            for dir in &submodule_dirs {
                let link = dir.join(".git");
                match std::fs::remove_file(&link) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", link.display())),
                }
            }
            let dot_git = repo.join(".git");
            std::fs::remove_dir_all(&dot_git).map_err(|e| format!("{}: {e}", dot_git.display()))?;
        }
        Ok((repo, head))
    }
}

/// `<sha>\t<ref>` lines of `git ls-remote` as (ref, sha).
fn parse_ls_remote(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (name.trim().to_string(), sha.trim().to_ascii_lowercase()))
        .collect()
}

/// The full ref and commit that `reference` names in `ls-remote` output, with BuildKit's
/// preference: `refs/<reference>`, then a branch, then a tag (an annotated tag peeled to its
/// commit).
pub fn pick_ref(reference: &str, ls_remote: &str) -> Option<(String, String)> {
    let refs = parse_ls_remote(ls_remote);
    let get = |name: &str| {
        refs.iter()
            .find(|(n, _)| n == name)
            .map(|(_, sha)| sha.clone())
    };
    let short = |prefix: &str| {
        reference
            .strip_prefix(prefix)
            .unwrap_or(reference)
            .to_string()
    };
    let candidates = [
        format!("refs/{}", short("refs/")),
        format!("refs/heads/{}", short("refs/heads/")),
        format!("refs/tags/{}", short("refs/tags/")),
    ];
    candidates.into_iter().find_map(|full| {
        let sha = get(&format!("{full}^{{}}")).or_else(|| get(&full))?;
        Some((full, sha))
    })
}

/// The `git` binary with a clean environment.
struct Git {
    home: PathBuf,
}

impl Git {
    fn new(scratch: &Path) -> Result<Git, String> {
        let home = scratch.join("home");
        std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
        Ok(Git { home })
    }

    /// Runs `git ARGS` (in `dir`) and returns its stdout; a failure carries the last lines of
    /// git's stderr, credentials removed.
    fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ALLOW_PROTOCOL", "http:https:git:ssh")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .args([
                "-c",
                "core.logAllRefUpdates=false",
                "-c",
                "advice.detachedHead=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let sub = args.first().copied().unwrap_or("");
        let out = cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "ADD from a git repository needs the git binary, which was not found in PATH"
                    .to_string()
            } else {
                format!("running git {sub}: {e}")
            }
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            return Err(redact_credentials(&format!(
                "git {sub} failed ({}): {tail}",
                out.status
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts = (String, Option<String>, Option<String>);

    fn git(remote: &str, reference: Option<&str>, subdir: Option<&str>) -> Option<Parts> {
        Some((
            remote.to_string(),
            reference.map(str::to_string),
            subdir.map(str::to_string),
        ))
    }

    fn parts(src: &str) -> Option<Parts> {
        GitSource::parse(src)
            .unwrap()
            .map(|g| (g.remote, g.reference, g.subdir))
    }

    #[test]
    fn git_sources_follow_buildkits_rule() {
        let cases = [
            // scp-like ssh, git:// and ssh:// are always repositories
            (
                "git@github.com:moby/buildkit.git",
                git("git@github.com:moby/buildkit.git", None, None),
            ),
            (
                "git@github.com:moby/buildkit#v0.12.0",
                git("git@github.com:moby/buildkit", Some("v0.12.0"), None),
            ),
            (
                "git://127.0.0.1:9418/repo.git",
                git("git://127.0.0.1:9418/repo.git", None, None),
            ),
            (
                "git://host/repo#main:docs/",
                git("git://host/repo", Some("main"), Some("docs")),
            ),
            (
                "ssh://git@host/repo#:sub/dir",
                git("ssh://git@host/repo", None, Some("sub/dir")),
            ),
            ("GIT://host/repo#:/", git("GIT://host/repo", None, None)),
            // http(s) only with a path ending in .git
            (
                "https://github.com/moby/buildkit.git",
                git("https://github.com/moby/buildkit.git", None, None),
            ),
            (
                "https://user:tok@host/r.git#refs/pull/1/head:x",
                git(
                    "https://user:tok@host/r.git",
                    Some("refs/pull/1/head"),
                    Some("x"),
                ),
            ),
            (
                "https://host/r.git?branch=dev&subdir=docs/",
                git("https://host/r.git", Some("refs/heads/dev"), Some("docs")),
            ),
            (
                "git@host:r.git?tag=v1.2",
                git("git@host:r.git", Some("refs/tags/v1.2"), None),
            ),
            (
                "ssh://host/r?ref=pull%2F42%2Fhead",
                git("ssh://host/r", Some("pull/42/head"), None),
            ),
            ("https://github.com/moby/buildkit", None),
            ("https://host/archive.tar.gz", None),
            ("https://host/a.git/file.txt", None),
            ("https://host.git", None),
            // not git: other schemes, local paths, the deprecated bare github.com/ form
            ("ftp://host/repo.git", None),
            ("file:///srv/repo.git", None),
            ("git+ssh://host/repo.git", None),
            ("repo.git", None),
            ("./repo.git", None),
            ("dir/with:colon", None),
            ("github.com/moby/buildkit", None),
            ("user@host", None),
            ("us er@host:path", None),
            ("user@ho/st:path", None),
        ];
        for (src, want) in cases {
            assert_eq!(parts(src), want, "{src}");
            assert_eq!(GitSource::is_git(src), want.is_some(), "{src}");
        }
    }

    #[test]
    fn queries_follow_dockerfile_1_18() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let g = GitSource::parse(&format!("https://h/r.git?commit={sha}&keep-git-dir=true"))
            .unwrap()
            .unwrap();
        // A commit alone is what is fetched.
        assert_eq!(g.reference.as_deref(), Some(sha));
        assert_eq!(g.checksum.as_deref(), Some(sha));
        assert!(g.keep_git_dir && g.submodules);
        let g = GitSource::parse("https://h/r.git?branch=main&checksum=0123ABC&submodules=false")
            .unwrap()
            .unwrap();
        assert_eq!(g.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(g.checksum.as_deref(), Some("0123abc"));
        assert!(!g.submodules && !g.keep_git_dir);
        // ADD --checksum joins the URL's: it must extend the query's prefix.
        let extends = format!("0123abc{}", "0".repeat(33));
        let mut agreeing = g.clone();
        agreeing.require_commit(&extends).unwrap();
        assert_eq!(agreeing.checksum.as_deref(), Some(extends.as_str()));
        let mut other = g.clone();
        let err = other.require_commit(&"f".repeat(40)).unwrap_err();
        assert!(err.contains("disagree") && err.contains("0123abc"), "{err}");

        for (src, msg) in [
            ("https://u:pw@h/r.git?ref=a#b", "not both"),
            ("https://h/r.git?branch=a&tag=b", "branch and tag cannot"),
            ("https://h/r.git?ref=a&ref=b", "given twice"),
            ("https://h/r.git?checksum=abc", "not a commit SHA"),
            ("https://h/r.git?checksum=0123abc", "full commit SHA"),
            ("https://h/r.git?depth=1", "unknown query key \"depth\""),
            ("https://h/r.git?submodules=maybe", "not true or false"),
            ("https://h/r.git?branch=", "branch is empty"),
        ] {
            let err = GitSource::parse(src).unwrap_err();
            assert!(err.contains(msg), "{src}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn display_hides_credentials() {
        let g = GitSource::parse("https://user:s3cret@host/r.git#main:sub")
            .unwrap()
            .unwrap();
        assert_eq!(g.display(), "https://host/r.git#main:sub");
        let g = GitSource::parse("https://user:s3cret@host/r.git?tag=v1")
            .unwrap()
            .unwrap();
        assert_eq!(g.display(), "https://host/r.git?tag=v1");
        let g = GitSource::parse("git@host:r.git").unwrap().unwrap();
        assert_eq!(g.display(), "git@host:r.git");
    }

    #[test]
    fn commit_shas() {
        assert!(is_commit_sha(&"a".repeat(40)));
        assert!(is_commit_sha(&"0f".repeat(32)));
        assert!(!is_commit_sha(&"a".repeat(39)));
        assert!(!is_commit_sha(&"g".repeat(40)));
        assert!(!is_commit_sha("main"));
    }

    #[test]
    fn refs_resolve_like_buildkit() {
        let out = "\
1111111111111111111111111111111111111111\trefs/heads/main
2222222222222222222222222222222222222222\trefs/tags/v1
3333333333333333333333333333333333333333\trefs/tags/v1^{}
4444444444444444444444444444444444444444\trefs/heads/both
5555555555555555555555555555555555555555\trefs/tags/both
6666666666666666666666666666666666666666\trefs/pull/1/head
";
        let sha = |c: char| c.to_string().repeat(40);
        let pick = |r| pick_ref(r, out);
        assert_eq!(pick("main"), Some(("refs/heads/main".into(), sha('1'))));
        assert_eq!(
            pick("refs/heads/main"),
            Some(("refs/heads/main".into(), sha('1')))
        );
        // annotated tags are peeled to their commit, however they are named
        assert_eq!(pick("v1"), Some(("refs/tags/v1".into(), sha('3'))));
        assert_eq!(
            pick("refs/tags/v1"),
            Some(("refs/tags/v1".into(), sha('3')))
        );
        // a branch wins over a tag of the same name
        assert_eq!(pick("both"), Some(("refs/heads/both".into(), sha('4'))));
        assert_eq!(
            pick("refs/pull/1/head"),
            Some(("refs/pull/1/head".into(), sha('6')))
        );
        assert_eq!(pick("nope"), None);
        assert_eq!(
            pick("heads/main"),
            Some(("refs/heads/main".into(), sha('1')))
        );
    }
}
