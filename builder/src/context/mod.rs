//! The build context: a directory on the host seen through its `.dockerignore`.
//!
//! - [`ignore`]: the `.dockerignore` matcher ([`Ignore`], [`Match`]).
//! - [`walk`]: what BuildKit would send of the context (ignored paths are invisible, the
//!   parents of re-included paths are kept).
//! - [`sources`]: COPY/ADD source resolution ([`Context::resolve_sources`]).
//! - [`checksum`]: content checksums of resolved sources with a persistent stat cache.

pub mod checksum;
pub mod glob;
pub mod ignore;
pub mod sources;
mod walk;

use std::path::{Path, PathBuf};

pub use checksum::{ChecksumCache, ChecksumStats};
pub use ignore::{Ignore, Match};
pub use sources::{EntryKind, FileStat, SourceEntry, SourceOptions};
pub use walk::WalkEntry;

/// Errors of the context module: each names the path, pattern or source at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}invalid pattern {pattern:?}: {reason}", location(file.as_deref(), *line))]
    BadPattern {
        file: Option<PathBuf>,
        line: usize,
        pattern: String,
        reason: &'static str,
    },

    #[error("invalid COPY source {source_path:?}: syntax error in pattern")]
    BadSourcePattern { source_path: String },

    #[error("COPY source not found in build context: {path}")]
    SourceNotFound { path: String },

    #[error("build context {path} is not a directory")]
    NotADirectory { path: PathBuf },

    #[error("too many levels of symbolic links resolving {path:?} in the build context")]
    SymlinkLoop { path: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("checksum cache {path}: line {line}: malformed entry")]
    BadCache { path: PathBuf, line: usize },
}

/// `file:line: ` in front of pattern errors, when known.
fn location(file: Option<&Path>, line: usize) -> String {
    match (file, line) {
        (Some(f), 0) => format!("{}: ", f.display()),
        (Some(f), n) => format!("{}:{n}: ", f.display()),
        (None, 0) => String::new(),
        (None, n) => format!("line {n}: "),
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A build context directory and the ignore rules that apply to it.
#[derive(Clone, Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Ignore,
}

impl Context {
    /// Opens the context at `root`, loading `<dockerfile>.dockerignore` (when present next
    /// to the Dockerfile) or `<root>/.dockerignore`.
    pub fn open(root: impl Into<PathBuf>, dockerfile: Option<&Path>) -> Result<Context> {
        let root = root.into();
        let ignore = match ignore::ignore_file_for(&root, dockerfile) {
            Some(file) => Ignore::read(&file)?,
            None => Ignore::default(),
        };
        Context::with_ignore(root, ignore)
    }

    /// Opens the context at `root` with the given rules.
    pub fn with_ignore(root: impl Into<PathBuf>, ignore: Ignore) -> Result<Context> {
        let given = root.into();
        let root = std::fs::canonicalize(&given).map_err(|e| Error::io(&given, e))?;
        if !root.is_dir() {
            return Err(Error::NotADirectory { path: given });
        }
        Ok(Context { root, ignore })
    }

    /// The context directory (symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Every path of the context that a build can see, sorted, parents first.
    pub fn walk(&self) -> Result<Vec<WalkEntry>> {
        let mut out = Vec::new();
        walk::Walk::new(self, None).run("", &self.root, &mut |v| {
            out.push(WalkEntry {
                path: v.ctx_rel,
                file_type: v.metadata.file_type(),
            });
            Ok(())
        })?;
        Ok(out)
    }
}

/// Joins slash-separated relative paths (`""` is the root).
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod golden_tests;

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn dockerfile_specific_ignore_file_takes_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["a", "b", "build/app.Dockerfile"] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), f).unwrap();
        }
        fs::write(root.join(".dockerignore"), "a\n").unwrap();
        let listed = |ctx: &Context| -> Vec<String> {
            ctx.walk().unwrap().into_iter().map(|e| e.path).collect()
        };
        let df = root.join("build/app.Dockerfile");
        let ctx = Context::open(root, Some(&df)).unwrap();
        assert_eq!(
            listed(&ctx),
            [".dockerignore", "b", "build", "build/app.Dockerfile"]
        );

        fs::write(
            root.join("build/app.Dockerfile.dockerignore"),
            "b\nbuild/*.dockerignore\n",
        )
        .unwrap();
        let ctx = Context::open(root, Some(&df)).unwrap();
        assert_eq!(
            listed(&ctx),
            [".dockerignore", "a", "build", "build/app.Dockerfile"]
        );
    }

    #[test]
    fn ignore_file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".dockerignore"), "ok\n\n[\n").unwrap();
        let err = Context::open(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.ends_with(".dockerignore:3: invalid pattern \"[\": syntax error in pattern"),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn missing_context_is_an_error_naming_it() {
        let err = Context::open("/nonexistent/ctx", None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent/ctx:"), "{err}");
    }
}
