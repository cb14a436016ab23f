//! Parser directives (`# syntax=`, `# escape=`, `# check=`): only at the very top of the file,
//! before any blank line, other comment or instruction.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::error::ParseErrorKind;

/// The directives found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` by default, or `` ` `` under `# escape=``.
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("directive regex")
});

/// Feeds lines one by one; stops looking after the first line that is not a known directive.
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    pub(crate) directives: Directives,
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Looks at one physical line (newline and leading whitespace already removed).
    pub(crate) fn feed(&mut self, line: &str) -> Result<(), ParseErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some(caps) = DIRECTIVE.captures(line) else {
            self.done = true;
            return Ok(());
        };
        let key = caps[1].to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(ParseErrorKind::DuplicateDirective { name: key });
        }
        let value = caps[2].to_string();
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ParseErrorKind::InvalidEscapeToken { value }),
                }
            }
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        self.seen.push(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str]) -> Result<Directives, ParseErrorKind> {
        let mut p = DirectiveParser::default();
        for l in lines {
            p.feed(l)?;
        }
        Ok(p.directives)
    }

    #[test]
    fn keys_are_case_insensitive_and_values_trimmed() {
        let d = run(&[
            "# SYNTAX = docker/dockerfile:1  ",
            "#escape=`",
            "# Check=skip=all",
        ])
        .unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.escape, '`');
        assert_eq!(d.check.as_deref(), Some("skip=all"));
    }

    #[test]
    fn directives_stop_at_first_other_line() {
        let d = run(&["# a comment", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
        let d = run(&["", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
        let d = run(&["# unknown=1", "# escape=`"]).unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn duplicates_and_bad_escape_are_errors() {
        assert_eq!(
            run(&["# escape=`", "# ESCAPE=\\"]).unwrap_err().to_string(),
            "only one escape parser directive can be used"
        );
        assert_eq!(
            run(&["# escape=x"]).unwrap_err().to_string(),
            "invalid escape token 'x' does not match ` or \\"
        );
    }
}
