//! Here-document markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) and body helpers.

use std::sync::LazyLock;

use regex::Regex;

use super::error::ExpandError;
use super::expand::{Lexer, NoEnv};

static MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d*)<<(-?)([^<]*)$").expect("heredoc regex"));

/// A heredoc marker found on an instruction line, before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    pub fd: Option<u32>,
}

/// Parses one word as a heredoc marker. A quoted (even partly quoted) delimiter disables
/// expansion of the body.
pub(crate) fn parse_marker(word: &str) -> Result<Option<Marker>, ExpandError> {
    let Some(caps) = MARKER.captures(word) else {
        return Ok(None);
    };
    let rest = &caps[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let lexer = Lexer::new('\\').with_skip_unset(true);
    let words = lexer.process_words(rest, &NoEnv)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer.with_raw_quotes(true).process_words(rest, &NoEnv)?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(&raw[0]) == quotes(name);
    Ok(Some(Marker {
        name: name.clone(),
        expand,
        chomp: &caps[2] == "-",
        fd: caps[1].parse().ok(),
    }))
}

/// All heredoc markers on an instruction line, in order.
pub(crate) fn markers_in_line(line: &str) -> Result<Vec<Marker>, ExpandError> {
    let lexer = Lexer::new('\\')
        .with_raw_quotes(true)
        .with_raw_escapes(true);
    let Ok(words) = lexer.process_words(line, &NoEnv) else {
        return Ok(Vec::new());
    };
    let mut markers = Vec::new();
    for word in words {
        if let Some(m) = parse_marker(&word)? {
            markers.push(m);
        }
    }
    Ok(markers)
}

/// `<<-` bodies lose the leading tabs of every line.
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let m = parse_marker("<<EOF").unwrap().unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.chomp, m.fd),
            ("EOF", true, false, None)
        );
        let m = parse_marker("<<-\"EOT\"").unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.expand, m.chomp), ("EOT", false, true));
        let m = parse_marker("3<<'E'").unwrap().unwrap();
        assert_eq!((m.expand, m.fd), (false, Some(3)));
        let m = parse_marker("<<E\"O\"F").unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.expand), ("EOF", false));
        assert_eq!(parse_marker("<<").unwrap(), None);
        assert_eq!(parse_marker("a<<EOF").unwrap(), None);
        assert_eq!(parse_marker("<<<EOF").unwrap(), None);
    }

    #[test]
    fn markers_on_line_ignore_quoted_ones() {
        let names: Vec<String> = markers_in_line("RUN cat <<A - <<\"B\" '<<C' \"<<D\"")
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(chomp("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
