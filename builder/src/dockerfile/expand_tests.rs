use std::collections::BTreeSet;

use super::*;

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    pairs.iter().copied().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn matches_and_unmatched_are_reported() {
    let l = Lexer::new('\\');
    let e = l
        .process_word_with_matches(
            "${FOO:-a} $BAR ${BAZ+x}",
            &env(&[("FOO", "f"), ("BAR", "")]),
        )
        .unwrap();
    assert_eq!(e.word, "f  ");
    assert_eq!(e.matched, set(&["BAR", "FOO"]));
    assert_eq!(e.unmatched, set(&["BAZ"]));
}

#[test]
fn required_variable_messages() {
    let l = Lexer::new('\\');
    let err = |w: &str, e: &EnvMap| l.process_word(w, e).unwrap_err().to_string();
    assert_eq!(
        err(
            "${VAR:?message here$ARG}",
            &env(&[("VAR", ""), ("ARG", "x")])
        ),
        "failed to process \"${VAR:?message here$ARG}\": VAR: message herex"
    );
    assert_eq!(
        err("${VAR?}", &env(&[])),
        "failed to process \"${VAR?}\": VAR: is not allowed to be unset"
    );
    assert_eq!(
        err("${VAR:?}", &env(&[("VAR", "")])),
        "failed to process \"${VAR:?}\": VAR: is not allowed to be empty"
    );
    assert_eq!(l.process_word("${VAR?}", &env(&[("VAR", "")])).unwrap(), "");
}

#[test]
fn syntax_error_messages() {
    let l = Lexer::new('\\');
    let err = |w: &str| l.process_word(w, &NoEnv).unwrap_err().kind.to_string();
    assert_eq!(err("${"), "syntax error: missing '}'");
    assert_eq!(err("${}"), "syntax error: bad substitution");
    assert_eq!(err("${:-x}"), "syntax error: bad substitution");
    assert_eq!(err("${a:-x"), "syntax error: missing '}'");
    assert_eq!(err("${a=x}"), "unsupported modifier (=) in substitution");
    assert_eq!(err("${a:x}"), "unsupported modifier (:x) in substitution");
    assert_eq!(err("${a/x"), "syntax error: missing '/' in ${}");
    assert_eq!(
        err("'abc"),
        "unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        err("\"abc"),
        "unexpected end of statement while looking for matching double-quote"
    );
}

#[test]
fn skip_unset_keeps_references() {
    let l = Lexer::new('\\').with_skip_unset(true);
    assert_eq!(
        l.process_word("$A ${B} ${C:-x} ${D/a/b}", &NoEnv).unwrap(),
        "$A ${B} ${C:-x} ${D/a/b}"
    );
}

#[test]
fn raw_quotes_and_escapes_are_kept() {
    let l = Lexer::new('\\')
        .with_raw_quotes(true)
        .with_raw_escapes(true);
    assert_eq!(
        l.process_words(r#"a "b c" 'd' e\ f"#, &NoEnv).unwrap(),
        [r"a", r#""b c""#, "'d'", r"e\ f"]
    );
}

#[test]
fn skip_quotes_for_heredoc_bodies() {
    let l = Lexer::new('\\').with_skip_quotes(true);
    let e = env(&[("A", "1")]);
    assert_eq!(
        l.process_word("echo \"$A\" '$A'\n", &e).unwrap(),
        "echo \"1\" '1'\n"
    );
}

#[test]
fn pattern_helpers() {
    assert_eq!(reverse_pattern(r"a\*c"), r"c\*a");
    assert_eq!(reverse_pattern(r"ab\"), r"\ba");
    assert_eq!(reverse_pattern(r"\\b"), r"b\\");
    assert!(pattern_to_regex(r"\x", true, true).is_err());
    assert!(pattern_to_regex(r"\", true, true).is_err());
    assert_eq!(
        pattern_to_regex(r"(a)[.]*\?", true, true).unwrap().as_str(),
        r"^\(a\)\[\.\].*\?"
    );
}
