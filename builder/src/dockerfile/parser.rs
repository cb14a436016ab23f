//! The line scanner: directives, comments, line continuations and heredoc bodies, producing
//! logical lines that [`convert`](super::convert) turns into instructions.

use super::convert::convert;
use super::directives::DirectiveParser;
use super::error::{ParseError, ParseErrorKind};
use super::heredoc::{chomp, markers_in_line};
use super::instruction::{Dockerfile, Heredoc, Instruction, InstructionKind, Span};
use super::words::{parse_json_array, split_command, MaybeJson};

/// One logical line with its heredoc bodies, before conversion.
struct LogicalLine {
    text: String,
    heredocs: Vec<Heredoc>,
    start: usize,
    end: usize,
}

/// Parses Dockerfile `source`; `file_name` is used in spans and error messages.
pub fn parse(file_name: &str, source: &str) -> Result<Dockerfile, ParseError> {
    let err = |line: usize, kind: ParseErrorKind| ParseError {
        file: file_name.to_string(),
        line,
        kind,
    };
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let mut directives = DirectiveParser::default();
    let mut logical = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let start = next + 1;
        let first = trim_newline(lines[next]).trim_start();
        next += 1;
        directives.feed(first).map_err(|k| err(start, k))?;
        if first.starts_with('#') {
            continue;
        }
        let escape = directives.directives.escape;
        let (mut text, mut done) = trim_continuation(first, escape);
        if done && text.is_empty() {
            continue;
        }
        while !done && next < lines.len() {
            let line = trim_newline(lines[next]);
            next += 1;
            directives.feed(line).map_err(|k| err(next, k))?;
            let trimmed = line.trim_start();
            // Comment lines and empty lines inside a continuation are skipped.
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            let (part, eol) = trim_continuation(line, escape);
            text.push_str(&part);
            done = eol;
        }
        let mut heredocs = Vec::new();
        if can_contain_heredoc(&text) {
            let markers = markers_in_line(&text).map_err(|e| err(start, e.into()))?;
            for marker in markers {
                let mut content = String::new();
                let mut terminated = false;
                while next < lines.len() {
                    let raw = lines[next];
                    next += 1;
                    let mut candidate = trim_newline(raw);
                    if marker.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == marker.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(err(start, ParseErrorKind::UnterminatedHeredoc));
                }
                if marker.chomp {
                    content = chomp(&content);
                }
                heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    fd: marker.fd,
                });
            }
        }
        logical.push(LogicalLine {
            text,
            heredocs,
            start,
            end: next,
        });
    }
    if logical.is_empty() {
        return Err(err(lines.len().max(1), ParseErrorKind::NoInstructions));
    }
    let escape = directives.directives.escape;
    let mut instructions = Vec::with_capacity(logical.len());
    for line in logical {
        let kind = convert(&line.text, &line.heredocs, escape).map_err(|k| err(line.start, k))?;
        instructions.push(Instruction {
            span: Span {
                file: file_name.to_string(),
                line_start: line.start,
                line_end: line.end,
            },
            original: line.text,
            kind,
        });
    }
    check_stages(&instructions).map_err(|(line, k)| err(line, k))?;
    Ok(Dockerfile {
        directives: directives.directives,
        instructions,
    })
}

/// Only ARG may come before the first FROM; stage names must be unique.
fn check_stages(instructions: &[Instruction]) -> Result<(), (usize, ParseErrorKind)> {
    let mut names: Vec<&str> = Vec::new();
    let mut in_stage = false;
    for inst in instructions {
        match &inst.kind {
            InstructionKind::From(from) => {
                in_stage = true;
                if let Some(name) = &from.name {
                    if names.contains(&name.as_str()) {
                        return Err((
                            inst.span.line_start,
                            ParseErrorKind::DuplicateStageName { name: name.clone() },
                        ));
                    }
                    names.push(name);
                }
            }
            InstructionKind::Arg(_) if !in_stage => {}
            _ if !in_stage => return Err((inst.span.line_start, ParseErrorKind::NoBuildStage)),
            _ => {}
        }
    }
    if !in_stage {
        let last = instructions.last().map_or(1, |i| i.span.line_start);
        return Err((last, ParseErrorKind::NoStages));
    }
    Ok(())
}

fn trim_newline(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// Removes a trailing escape character (optionally followed by spaces/tabs) that continues the
/// line. An escaped escape character (`\\` at the end) does not continue the line.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    if before.is_empty() || !before.ends_with(escape) {
        return (before.to_string(), false);
    }
    (line.to_string(), true)
}

/// Heredocs are read only for RUN, COPY and ADD in shell (non-JSON) form.
fn can_contain_heredoc(text: &str) -> bool {
    if !text.contains("<<") {
        return false;
    }
    let (cmd, _, rest) = split_command(text);
    matches!(cmd.to_ascii_lowercase().as_str(), "run" | "copy" | "add")
        && !matches!(parse_json_array(&rest), Ok(MaybeJson::Exec(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".to_string(), false));
        assert_eq!(
            trim_continuation("a \\  \t", '\\'),
            ("a ".to_string(), false)
        );
        assert_eq!(trim_continuation("\\", '\\'), (String::new(), false));
        assert_eq!(
            trim_continuation("a \\\\", '\\'),
            ("a \\\\".to_string(), true)
        );
        assert_eq!(trim_continuation("a `", '`'), ("a ".to_string(), false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\".to_string(), true));
    }
}
