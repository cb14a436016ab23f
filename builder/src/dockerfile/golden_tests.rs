//! Golden folders under `testdata/dockerfile/`: `parse/<case>/{Dockerfile,expected.json}`,
//! `parse-errors/<case>/{Dockerfile,error.txt}`, `expand/<case>/{Dockerfile,env,expected.json}`
//! and the `expand.txt` / `words.txt` tables. `KILN_UPDATE_GOLDEN=1` rewrites the expectations.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfile")
}

fn updating() -> bool {
    std::env::var_os("KILN_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(testdata().join(dir))
        .unwrap_or_else(|e| panic!("reading testdata/dockerfile/{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Compares `actual` with the golden file (or rewrites it); returns a failure description.
fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if updating() {
        fs::write(path, actual).expect("write golden");
        return None;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )
    })
}

fn finish(failures: Vec<String>, count: usize) {
    assert!(count > 0, "no golden cases found");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn parse_goldens() {
    let cases = cases("parse");
    let mut failures = Vec::new();
    for case in &cases {
        let src = fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        let actual = match parse("Dockerfile", &src) {
            Ok(df) => serde_json::to_string_pretty(&df).expect("json") + "\n",
            Err(e) => format!("unexpected error: {e}\n"),
        };
        failures.extend(check_golden(&case.join("expected.json"), &actual));
    }
    finish(failures, cases.len());
}

#[test]
fn parse_error_goldens() {
    let cases = cases("parse-errors");
    let mut failures = Vec::new();
    for case in &cases {
        let src = fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        let actual = match parse("Dockerfile", &src) {
            Ok(_) => "unexpected success\n".to_string(),
            Err(e) => format!("{e}\n"),
        };
        failures.extend(check_golden(&case.join("error.txt"), &actual));
    }
    finish(failures, cases.len());
}

/// `expand/<case>/`: the Dockerfile's instructions expanded with the variables in `env`
/// (`NAME=value` lines), and the variables each one used.
#[test]
fn expand_goldens() {
    let cases = cases("expand");
    let mut failures = Vec::new();
    for case in &cases {
        let src = fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        let env = read_env(&fs::read_to_string(case.join("env")).unwrap_or_default());
        let df = parse("Dockerfile", &src).expect("parse");
        let lexer = Lexer::new(df.directives.escape);
        let results: Vec<serde_json::Value> = df
            .instructions
            .iter()
            .map(|i| match i.kind.expand_with_matches(&lexer, &env) {
                Ok((kind, used)) => serde_json::json!({ "kind": kind, "used": used }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            })
            .collect();
        let actual = serde_json::to_string_pretty(&results).expect("json") + "\n";
        failures.extend(check_golden(&case.join("expected.json"), &actual));
    }
    finish(failures, cases.len());
}

fn read_env(text: &str) -> EnvMap {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').map_or((l, ""), |(k, v)| (k, v)))
        .collect()
}

/// A `|`-separated table: `ENV k=v` lines add variables, `ESCAPE c` switches the escape
/// character, `#` lines are comments; other lines are `input | expected`.
fn run_table(file: &str, run: impl Fn(&Lexer, &EnvMap, &str) -> String) {
    let path = testdata().join(file);
    let text = fs::read_to_string(&path).expect("table");
    let mut env = EnvMap::new();
    let mut lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            env.set(k, v);
            continue;
        }
        if let Some(c) = line.strip_prefix("ESCAPE ") {
            lexer = Lexer::new(c.chars().next().expect("escape char"));
            continue;
        }
        let (input, expected) = line
            .rsplit_once('|')
            .unwrap_or_else(|| panic!("{file}:{}: missing |", n + 1));
        let (input, expected) = (input.trim(), expected.trim());
        let actual = run(&lexer, &env, input);
        count += 1;
        if actual != expected {
            failures.push(format!(
                "{file}:{}: {input:?}: expected {expected:?}, got {actual:?}",
                n + 1
            ));
        }
    }
    assert!(count > 0, "no cases in {file}");
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn expand_table() {
    run_table("expand.txt", |lexer, env, input| {
        lexer
            .process_word(input, env)
            .unwrap_or_else(|_| "error".to_string())
    });
}

#[test]
fn words_table() {
    run_table("words.txt", |lexer, env, input| {
        match lexer.process_words(input, env) {
            Ok(words) => words.join(","),
            Err(_) => "error".to_string(),
        }
    });
}
