//! Docker's shell-word processing (BuildKit's `shell.Lex`): quote removal, the escape character
//! and `$VAR` / `${VAR...}` substitution, plus splitting into words on unquoted whitespace.
//!
//! This is not a shell: there is no command substitution, arithmetic or globbing, and an unset
//! variable silently expands to the empty string.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use regex::Regex;
use serde::Serialize;

use super::error::{ExpandError, ExpandErrorKind};

/// Where variable values come from during expansion.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// A small ordered map of variables: later `set`s of the same name replace the value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnvMap {
    entries: Vec<(String, String)>,
}

impl EnvMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| k != name);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = EnvMap::new();
        for (k, v) in iter {
            map.set(k, v);
        }
        map
    }
}

impl Env for EnvMap {
    fn get(&self, name: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

/// The result of expanding one word, with the variables it looked up (for cache keys and lints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word with quotes removed and variables substituted, inner whitespace kept.
    pub word: String,
    /// The same text split on unquoted whitespace.
    pub words: Vec<String>,
    /// Variables referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// Word processor configured with the Dockerfile's escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_quotes: bool,
    skip_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (they still group words).
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output.
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (used for heredoc bodies).
    pub fn with_skip_quotes(mut self, on: bool) -> Self {
        self.skip_quotes = on;
        self
    }

    /// Leave references to unset variables untouched instead of expanding them to "".
    pub fn with_skip_unset(mut self, on: bool) -> Self {
        self.skip_unset = on;
        self
    }

    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        Ok(self.process_word_with_matches(word, env)?.word)
    }

    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        Ok(self.process_word_with_matches(word, env)?.words)
    }

    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ExpandError> {
        let mut sc = Scanner {
            chars: word.chars().collect(),
            pos: 0,
            lexer: self,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (text, words) =
            sc.process_until(None, self.raw_escapes)
                .map_err(|kind| ExpandError {
                    word: word.to_string(),
                    kind,
                })?;
        Ok(Expansion {
            word: text,
            words,
            matched: sc.matched,
            unmatched: sc.unmatched,
        })
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    lexer: &'a Lexer,
    env: &'a dyn Env,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type Step<T> = Result<T, ExpandErrorKind>;

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name);
        match value {
            Some(_) => self.matched.insert(name.to_string()),
            None => self.unmatched.insert(name.to_string()),
        };
        value
    }

    /// Processes up to `stop` (consumed) or the end of input when `stop` is `None`.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_until_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lexer.skip_quotes;
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let s = self.process_dollar()?;
                result.push_str(&s);
                words.add_string(&s);
            } else if quotes && ch == '\'' {
                let s = self.process_single_quote()?;
                result.push_str(&s);
                words.add_raw_string(&s);
            } else if quotes && ch == '"' {
                let s = self.process_double_quote()?;
                result.push_str(&s);
                words.add_raw_string(&s);
            } else {
                self.next();
                if ch == self.lexer.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape character escapes anything, except the end of the word.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    words.add_char(ch);
                    result.push(ch);
                }
            }
        }
        match stop {
            Some(stop) => Err(ExpandErrorKind::Unterminated { stop }),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let s = self.process_dollar()?;
                    result.push_str(&s);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape character at the very end is dropped.
                            None => continue,
                            // Only these can be escaped inside double quotes.
                            Some(c) if c == '"' || c == '$' || c == self.lexer.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Step<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let op = self.next();
        let mut modifier = op.map_or('\u{FFFD}'.to_string(), String::from);
        match op {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                modifier.push(op.unwrap_or('\u{FFFD}'));
                self.process_modifier(&name, op, &modifier, true)
            }
            Some('+' | '-' | '?' | '#' | '%') => self.process_modifier(&name, op, &modifier, false),
            Some('/') => self.process_replace(&name),
            _ => Err(ExpandErrorKind::UnsupportedModifier { modifier }),
        }
    }

    fn process_modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        modifier: &str,
        null_is_unset: bool,
    ) -> Step<String> {
        let raw = matches!(op, Some('#' | '%'));
        let (mut word, _) = self.process_until(Some('}'), raw).map_err(|e| {
            if self.peek().is_none() {
                ExpandErrorKind::MissingBrace
            } else {
                e
            }
        })?;
        let value = self.lookup(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = null_is_unset && value.as_deref() == Some("");
        match op {
            Some('-') => Ok(match value {
                Some(v) if !empty => v,
                _ => word,
            }),
            Some('+') => Ok(match value {
                Some(_) if !empty => word,
                _ => String::new(),
            }),
            Some('?') => match value {
                None => Err(required(name, word, "is not allowed to be unset")),
                Some(_) if empty => Err(required(name, word, "is not allowed to be empty")),
                Some(v) => Ok(v),
            },
            Some(c @ ('#' | '%')) => {
                let value = value.unwrap_or_default();
                let greedy = word.starts_with(c);
                if greedy {
                    word.remove(0);
                }
                if c == '%' {
                    trim_suffix(&word, &value, greedy)
                } else {
                    trim_prefix(&word, &value, greedy)
                }
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier {
                modifier: modifier.to_string(),
            }),
        }
    }

    fn process_replace(&mut self, name: &str) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = self.process_until(Some('/'), true).map_err(|e| {
            if self.peek().is_none() {
                ExpandErrorKind::MissingSlash
            } else {
                e
            }
        })?;
        let (replacement, _) = self.process_until(Some('}'), true).map_err(|e| {
            if self.peek().is_none() {
                ExpandErrorKind::MissingBrace
            } else {
                e
            }
        })?;
        let value = self.lookup(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = pattern_to_regex(&pattern, true, false)?;
        if all {
            return Ok(re.replace_all(&value, replacement.as_str()).into_owned());
        }
        Ok(match re.find(&value) {
            Some(m) => format!(
                "{}{}{}",
                &value[..m.start()],
                replacement,
                &value[m.end()..]
            ),
            None => value,
        })
    }

    /// A name is letters, digits and `_`; or all digits; or one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

fn required(name: &str, word: String, default: &str) -> ExpandErrorKind {
    let message = if word.is_empty() {
        default.to_string()
    } else {
        word
    };
    ExpandErrorKind::Required {
        name: name.to_string(),
        message,
    }
}

/// Converts a shell pattern (`*`, `?`, `\` escapes; no bracket expressions) to a regex.
fn pattern_to_regex(pattern: &str, greedy: bool, anchored: bool) -> Step<Regex> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` only protect the ${} syntax; the backslash is not part of the pattern.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    other => {
                        return Err(ExpandErrorKind::InvalidPattern {
                            pattern: pattern.to_string(),
                            escaped: other.unwrap_or('\u{FFFD}').to_string(),
                        })
                    }
                }
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    // Every piece above is escaped or a fixed construct, so the regex always compiles.
    Regex::new(&out).map_err(|_| ExpandErrorKind::InvalidPattern {
        pattern: pattern.to_string(),
        escaped: String::new(),
    })
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let re = pattern_to_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Shortest/longest suffix match, done as a prefix match on the reversed strings.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern while keeping each `\x` escape pair in order (`a\*c` -> `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = chars.clone();
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let idx = last - i;
        if chars[i] == '\\' && i != last {
            out[idx - 1] = '\\';
            out[idx] = chars[i + 1];
            i += 2;
        } else {
            out[idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
