//! Line-level tokenizers used before expansion: instruction/flag splitting, quote-preserving word
//! splitting (ENV, LABEL, ARG), whitespace splitting and exec-form (JSON array) detection.

use super::error::ParseErrorKind;

/// Docker's notion of separating whitespace inside an instruction (no newline: lines are joined).
pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{0B}' | '\u{0C}' | '\r' | ' ')
}

/// Splits on runs of separator whitespace; an empty input gives no fields.
pub(crate) fn split_whitespace(s: &str) -> Vec<String> {
    s.split(is_sep)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `rest` at the first run of separator whitespace.
pub(crate) fn split_first(s: &str) -> (&str, &str) {
    match s.find(is_sep) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_sep)),
        None => (s, ""),
    }
}

/// Splits the instruction line into (instruction, flags, rest). Flags are the leading words that
/// start with `--`; quotes in them are removed and `\` escapes the next character. A bare `--`
/// ends the flags.
pub(crate) fn split_command(line: &str) -> (String, Vec<String>, String) {
    let (cmd, rest) = split_first(line.trim());
    let (flags, rest) = extract_flags(rest);
    (cmd.to_string(), flags, rest.trim().to_string())
}

fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (flags, "");
        }
        let starts_flag = chars[i].1 == '-' && chars.get(i + 1).map(|c| c.1) == Some('-');
        if !starts_flag {
            return (flags, &line[chars[i].0..]);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let ch = chars[i].1;
            match quote {
                None if ch.is_whitespace() => break,
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    i += 1;
                    if let Some(&(_, c)) = chars.get(i) {
                        word.push(c);
                    }
                }
                _ => word.push(ch),
            }
            i += 1;
        }
        if word == "--" {
            let rest = chars.get(i).map_or("", |&(at, _)| &line[at..]);
            return (flags, rest);
        }
        flags.push(word);
    }
}

/// Splits into words on unquoted whitespace, keeping quotes and escapes in the words (they are
/// removed later, at expansion). Used for ENV, LABEL and ARG.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let at_end = i + 1 == chars.len();
        match quote {
            None if ch.is_whitespace() => {
                if in_word && (blank_ok || !word.is_empty()) {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
                blank_ok = false;
            }
            None => {
                in_word = true;
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if at_end {
                        break; // an escape at the very end is dropped
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                } else {
                    word.push(ch);
                }
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    if at_end {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Result of looking at an argument string that may be a JSON array.
pub(crate) enum MaybeJson {
    Exec(Vec<String>),
    NotJson,
}

/// Exec form is a JSON array of strings. Anything that does not parse as a JSON array falls back
/// to shell form; a JSON array holding non-strings is an error.
pub(crate) fn parse_json_array(rest: &str) -> Result<MaybeJson, ParseErrorKind> {
    let trimmed = rest.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(MaybeJson::NotJson);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(trimmed) else {
        return Ok(MaybeJson::NotJson);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(MaybeJson::Exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_split_and_unquoted() {
        let (cmd, flags, rest) = split_command("COPY --from=\"a b\" --link  src dst");
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, vec!["--from=a b", "--link"]);
        assert_eq!(rest, "src dst");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (_, flags, rest) = split_command("RUN --network=none -- --not-a-flag");
        assert_eq!(flags, vec!["--network=none"]);
        assert_eq!(rest, "--not-a-flag");
    }

    #[test]
    fn single_dash_is_not_a_flag() {
        let (_, flags, rest) = split_command("RUN -x --y");
        assert!(flags.is_empty());
        assert_eq!(rest, "-x --y");
    }

    #[test]
    fn parse_words_keeps_quotes_and_escapes() {
        assert_eq!(
            parse_words(r#"a="b c" d=e\ f 'g h'"#, '\\'),
            vec![r#"a="b c""#, r"d=e\ f", "'g h'"]
        );
        assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
        assert_eq!(parse_words(r#"a="""#, '\\'), vec![r#"a="""#]);
        assert_eq!(parse_words("a=`\" b", '`'), vec!["a=`\"", "b"]);
    }

    #[test]
    fn json_detection() {
        assert!(
            matches!(parse_json_array(r#"["a", "b"]"#), Ok(MaybeJson::Exec(v)) if v == ["a", "b"])
        );
        assert!(matches!(
            parse_json_array(r#"["a", "b""#),
            Ok(MaybeJson::NotJson)
        ));
        assert!(matches!(parse_json_array("[a]"), Ok(MaybeJson::NotJson)));
        assert!(matches!(
            parse_json_array("[1]"),
            Err(ParseErrorKind::NotStringArray)
        ));
        assert!(matches!(parse_json_array("[]"), Ok(MaybeJson::Exec(v)) if v.is_empty()));
    }
}
