//! `.dockerignore` matching with Docker's exact semantics (moby `patternmatcher`, BuildKit's
//! `fsutil` walk), not gitignore's:
//!
//! - patterns are `filepath.Clean`ed, a leading `/` is dropped, and they are anchored at the
//!   context root: `foo` matches `./foo` only, never `a/foo`;
//! - `*`, `?` and `[...]` stay within one path component, `**` spans any number of them;
//! - a pattern that matches a directory matches everything below it;
//! - `!pattern` re-includes, and the last pattern that applies wins;
//! - `#` lines, blank lines and surrounding spaces are ignored.
//!
//! Deliberate departures from patternmatcher's regexp translation, where it is plainly buggy:
//! `\x` always means a literal `x` (Go's regexp would read `\d` as a digit class), and `*`
//! inside `[...]` is a literal star.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::glob::{clean, Class, Glob};
use super::Error;

/// What the patterns say about one path (as ripgrep's `ignore::Match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// No pattern applies.
    None,
    /// Excluded from the context.
    Ignored,
    /// Re-included by a `!` exception.
    Included,
}

impl Match {
    pub fn is_ignored(self) -> bool {
        self == Match::Ignored
    }
}

/// Per-pattern results for a directory, handed to its children (fsutil's `MatchInfo`): a
/// pattern that matched a directory matches everything inside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParentState(Vec<bool>);

#[derive(Clone, Debug)]
enum Kind {
    Exact,
    /// `foo/**`: the text before the trailing `**`.
    Prefix(String),
    /// `**/foo` or `**foo`: the text after the leading `**`.
    Suffix(String),
    Regex(Regex),
}

/// One cleaned pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
    line: usize,
}

impl Pattern {
    /// The cleaned pattern text, without the `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception.
    pub fn is_exception(&self) -> bool {
        self.exclusion
    }

    /// The 1-based line it came from (0 when not read from a file).
    pub fn line(&self) -> usize {
        self.line
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// The pattern without a trailing `/**` or `/*` (fsutil's `patternWithoutTrailingGlob`).
    fn without_trailing_glob(&self) -> &str {
        let t = self.text.strip_suffix("/**").unwrap_or(&self.text);
        t.strip_suffix("/*").unwrap_or(t)
    }
}

/// An ordered list of patterns: a `.dockerignore` file or a `COPY --exclude` list.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    /// Where the patterns came from, for error messages.
    source: Option<PathBuf>,
    /// Whether every exception is a plain path (so an ignored directory needs walking only
    /// when an exception lies below it).
    only_prefix_exceptions: bool,
}

/// A bad pattern: `.dockerignore:3: ...`.
fn bad(file: Option<&Path>, line: usize, pattern: &str, reason: &'static str) -> Error {
    Error::BadPattern {
        file: file.map(Path::to_path_buf),
        line,
        pattern: pattern.to_string(),
        reason,
    }
}

impl Ignore {
    /// Patterns as `COPY --exclude` takes them (patternmatcher's `New`).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Ignore, Error> {
        let lines = patterns.iter().map(|p| (0, p.as_ref().to_string()));
        Ignore::build(lines, None)
    }

    /// Parses a `.dockerignore` text, as `ignorefile.ReadAll` reads it. `file` names it in
    /// errors.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Ignore, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut pattern = String::new();
            if !p.is_empty() {
                let c = clean(p);
                pattern = match c.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest.to_string(),
                    _ => c,
                };
            }
            if invert {
                pattern.insert(0, '!');
            }
            lines.push((i + 1, pattern));
        }
        Ignore::build(lines.into_iter(), file)
    }

    /// Reads and parses a `.dockerignore` file.
    pub fn read(path: &Path) -> Result<Ignore, Error> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ignore::parse(&String::from_utf8_lossy(&text), Some(path))
    }

    fn build(
        lines: impl Iterator<Item = (usize, String)>,
        file: Option<&Path>,
    ) -> Result<Ignore, Error> {
        let mut patterns = Vec::new();
        for (line, raw) in lines {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let mut text = clean(p);
            let exclusion = text.starts_with('!');
            if exclusion {
                if text.len() == 1 {
                    return Err(bad(file, line, &raw, "illegal exclusion pattern \"!\""));
                }
                text.remove(0);
            }
            Glob::new(&text).map_err(|_| bad(file, line, &raw, "syntax error in pattern"))?;
            let kind =
                compile(&text).map_err(|_| bad(file, line, &raw, "syntax error in pattern"))?;
            patterns.push(Pattern {
                text,
                exclusion,
                kind,
                line,
            });
        }
        let only_prefix_exceptions = !patterns.iter().any(|p| {
            p.exclusion
                && p.without_trailing_glob()
                    .contains(['*', '[', ']', '?', '^', '\\'])
        });
        Ok(Ignore {
            patterns,
            source: file.map(Path::to_path_buf),
            only_prefix_exceptions,
        })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The file the patterns were read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Matches a slash-separated path relative to the root (`a/b/c`), given the state of its
    /// parent directory (`ParentState::default()` for entries at the root). Returns the state
    /// to hand to its children when it is a directory.
    ///
    /// This is patternmatcher's `MatchesUsingParentResults`, quirks included, so that a walk
    /// gives exactly BuildKit's answer.
    pub fn matched_with_parent(&self, path: &str, parent: &ParentState) -> (Match, ParentState) {
        let mut state = vec![false; self.patterns.len()];
        let mut matched = false;
        let mut last_exception = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.0.get(i).copied().unwrap_or(false);
            if !hit {
                // An include pattern cannot change a matched path, nor an exception an
                // unmatched one: skip them (and, as BuildKit does, do not record them).
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(path);
            }
            state[i] = hit;
            if hit {
                matched = !p.exclusion;
                last_exception = p.exclusion;
            }
        }
        let m = if matched {
            Match::Ignored
        } else if last_exception {
            Match::Included
        } else {
            Match::None
        };
        (m, ParentState(state))
    }

    /// Matches a path relative to the root, deriving the parent states the way a walk from
    /// the root does.
    pub fn matched(&self, path: &str) -> Match {
        self.state_of(path).0
    }

    /// The match and child state of `path`, computed from the root down.
    pub fn state_of(&self, path: &str) -> (Match, ParentState) {
        let mut state = ParentState::default();
        let mut start = 0;
        loop {
            let next = path[start..].find('/').map(|i| start + i);
            let prefix = next.map_or(path, |n| &path[..n]);
            let (m, s) = self.matched_with_parent(prefix, &state);
            match next {
                Some(n) => {
                    state = s;
                    start = n + 1;
                }
                None => return (m, s),
            }
        }
    }

    /// Whether a walk must still look inside the ignored directory `dir`, because an
    /// exception could re-include something below it (fsutil's rule).
    pub fn must_descend(&self, dir: &str) -> bool {
        if !self.patterns.iter().any(|p| p.exclusion) {
            return false;
        }
        if !self.only_prefix_exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }
}

/// Translates a cleaned pattern, as patternmatcher does, into the cheapest matcher that
/// gives the same answers.
fn compile(pattern: &str) -> Result<Kind, regex::Error> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                chars.next_if_eq(&'/');
                if chars.peek().is_none() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push_str(&regex::escape(&next.to_string()));
                    detected = Detected::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' => {
                // Validated by Glob::new already.
                let class = Class::parse(&mut chars).expect("validated class");
                re.push('[');
                if class.negated {
                    re.push('^');
                }
                for (lo, hi) in class.ranges {
                    re.push_str(&regex::escape(&lo.to_string()));
                    if lo != hi {
                        re.push('-');
                        re.push_str(&regex::escape(&hi.to_string()));
                    }
                }
                re.push(']');
                detected = Detected::Regex;
            }
            ']' => {
                re.push_str("\\]");
                detected = Detected::Regex;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re)?)
        }
    })
}

/// Finds the ignore file for a build: `<Dockerfile>.dockerignore` next to the Dockerfile
/// when it exists (BuildKit gives it precedence), else `<context>/.dockerignore`.
pub fn ignore_file_for(context_root: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile {
        if let Some(name) = df.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            let candidate = df.with_file_name(n);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let default = context_root.join(".dockerignore");
    default.is_file().then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(lines: &[&str]) -> Ignore {
        Ignore::parse(&lines.join("\n"), None).unwrap()
    }

    #[test]
    fn patterns_are_anchored_at_the_root_not_gitignore_style() {
        let ig = ignore(&["foo"]);
        assert_eq!(ig.matched("foo"), Match::Ignored);
        assert_eq!(ig.matched("foo/bar"), Match::Ignored);
        assert_eq!(ig.matched("a/foo"), Match::None);
    }

    #[test]
    fn star_does_not_cross_slash_but_double_star_does() {
        let ig = ignore(&["*/temp*", "**/*.o", "docs/**/x"]);
        assert!(ig.matched("a/temporary").is_ignored());
        assert!(!ig.matched("a/b/temporary").is_ignored());
        assert!(ig.matched("x.o").is_ignored());
        assert!(ig.matched("a/b/c.o").is_ignored());
        assert!(ig.matched("docs/x").is_ignored());
        assert!(ig.matched("docs/a/b/x").is_ignored());
        assert!(!ig.matched("docs/a/b/y").is_ignored());
    }

    #[test]
    fn last_rule_wins_and_exceptions_report_included() {
        let ig = ignore(&["*.md", "!README.md", "README-secret.md"]);
        assert_eq!(ig.matched("a.md"), Match::Ignored);
        assert_eq!(ig.matched("README.md"), Match::Included);
        assert_eq!(ig.matched("README-secret.md"), Match::Ignored);
        assert_eq!(ig.matched("main.go"), Match::None);
    }

    #[test]
    fn leading_slash_dot_and_trailing_spaces_are_cleaned() {
        let ig = ignore(&["/foo/  ", "./bar//baz", "  # not a comment"]);
        assert!(ig.matched("foo/x").is_ignored());
        assert!(ig.matched("bar/baz").is_ignored());
        assert!(ig.matched("# not a comment").is_ignored());
    }

    #[test]
    fn suffix_quirk_double_star_prefix_matches_any_suffix() {
        // patternmatcher's suffix fast path: `**foo` is a plain "ends with".
        let ig = ignore(&["**foo"]);
        assert!(ig.matched("barfoo").is_ignored());
        assert!(ig.matched("a/b/foo").is_ignored());
    }

    #[test]
    fn bad_patterns_name_file_and_line() {
        let err = Ignore::parse("ok\n\n[a-\n", Some(Path::new("ctx/.dockerignore"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ctx/.dockerignore:3: invalid pattern \"[a-\": syntax error in pattern"
        );
        let err = Ignore::parse("# c\n!\n", Some(Path::new(".dockerignore"))).unwrap_err();
        assert!(err.to_string().starts_with(".dockerignore:2:"), "{err}");
    }

    #[test]
    fn descend_only_when_an_exception_could_reach_inside() {
        let ig = ignore(&["a", "b", "!b/keep"]);
        assert!(!ig.must_descend("a"));
        assert!(ig.must_descend("b"));
        let wild = ignore(&["a", "!**/*.keep"]);
        assert!(wild.must_descend("a"));
    }

    #[test]
    fn walk_state_quirk_matches_buildkit() {
        // MatchesUsingParentResults does not record patterns it skipped for the parent, so
        // `d/x` is re-included although `d` (matched again by the last rule) is ignored.
        let ig = ignore(&["d", "!d/x", "d"]);
        assert_eq!(ig.matched("d"), Match::Ignored);
        assert_eq!(ig.matched("d/x"), Match::Included);
    }
}
