use std::path::PathBuf;

use crate::dockerfile::Span;

/// A build failure. Errors tied to an instruction carry its `file:line`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build interrupted by signal {0}")]
    Interrupted(i32),
    #[error(transparent)]
    Parse(#[from] crate::dockerfile::ParseError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("build context {path}: {source}")]
    Context {
        path: PathBuf,
        #[source]
        source: crate::context::Error,
    },
    #[error(transparent)]
    Store(#[from] registry::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error("cannot use layer {layer}: {message}")]
    Snapshot {
        layer: registry::Digest,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// An error at an instruction: `Dockerfile:3: COPY missing.txt /: <message>`.
    /// URLs in both lose their userinfo (`https://user:token@host/` is `https://host/`).
    pub fn at(span: &Span, original: &str, message: impl std::fmt::Display) -> BuildError {
        let mut instruction = redact_credentials(original.lines().next().unwrap_or("").trim());
        if instruction.len() > 80 {
            let mut cut = 77;
            while !instruction.is_char_boundary(cut) {
                cut -= 1;
            }
            instruction.truncate(cut);
            instruction.push_str("...");
        }
        BuildError::Step {
            file: span.file.clone(),
            line: span.line_start,
            instruction,
            message: redact_credentials(&message.to_string()),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BuildError {
        BuildError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `text` with the userinfo of every URL in it removed (`scheme://user:secret@host` ->
/// `scheme://host`), for messages, progress and history.
pub fn redact_credentials(text: &str) -> String {
    static USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s'"]*@"#).expect("valid regex")
    });
    USERINFO.replace_all(text, "$1").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            redact_credentials("ADD https://user:s3cret@host:8/r.git#main /src"),
            "ADD https://host:8/r.git#main /src"
        );
        assert_eq!(
            redact_credentials("fatal: unable to access 'https://tok@h/x/': 403"),
            "fatal: unable to access 'https://h/x/': 403"
        );
        assert_eq!(
            redact_credentials("git://h/r.git and ssh://git@h/r and git@h:r"),
            "git://h/r.git and ssh://h/r and git@h:r"
        );
        assert_eq!(redact_credentials("COPY a@b /c"), "COPY a@b /c");
    }
}
