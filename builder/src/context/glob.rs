//! Go's `path/filepath` lexical helpers, which Docker's path rules are written in terms of:
//! [`clean`] (`filepath.Clean`) and [`Glob`] (`filepath.Match`, one path component at a time).

/// Lexically cleans a slash-separated path as Go's `filepath.Clean` does: repeated slashes
/// collapse, `.` elements go, `..` eats the element before it (and is dropped at a rooted
/// start), the empty path becomes `.`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Whether `s` contains a character that `filepath.Match` treats specially.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// A `filepath.Match` pattern, validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class(Class),
}

/// A bracket expression `[^a-z\]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) negated: bool,
    pub(crate) ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }

    /// Parses a class whose `[` was already consumed. Returns `None` when malformed.
    pub(crate) fn parse(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Class> {
        let negated = chars.next_if_eq(&'^').is_some();
        let mut ranges = Vec::new();
        loop {
            if chars.peek() == Some(&']') && !ranges.is_empty() {
                chars.next();
                return Some(Class { negated, ranges });
            }
            let lo = class_char(chars)?;
            let hi = if chars.next_if_eq(&'-').is_some() {
                class_char(chars)?
            } else {
                lo
            };
            ranges.push((lo, hi));
        }
    }
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
    match chars.next()? {
        '-' | ']' => None,
        '\\' => chars.next(),
        c => Some(c),
    }
}

/// Why a pattern is malformed (Go: `syntax error in pattern`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPattern;

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, BadPattern> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '[' => Token::Class(Class::parse(&mut chars).ok_or(BadPattern)?),
                '\\' => Token::Char(chars.next().ok_or(BadPattern)?),
                c => Token::Char(c),
            });
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `name` matches. `*` and `?` never match `/`.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_tokens(&self.tokens, &name)
    }
}

fn match_tokens(tokens: &[Token], name: &[char]) -> bool {
    // Iterative matching with backtracking to the last star (linear in practice).
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(Token::Any) => name[n] != '/',
            Some(Token::Char(c)) => *c == name[n],
            Some(Token::Class(class)) => name[n] != '/' && class.matches(name[n]),
            None => false,
        };
        if step {
            t += 1;
            n += 1;
        } else if let Some((st, sn)) = star {
            // A star never swallows a separator.
            if name[sn] == '/' {
                return false;
            }
            star = Some((st, sn + 1));
            t = st + 1;
            n = sn + 1;
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./foo", "foo"),
            ("foo/", "foo"),
            ("a//b/./c/..", "a/b"),
            ("../x", "../x"),
            ("/../x", "/x"),
            ("/", "/"),
            ("a/../../b", "../b"),
            ("**/", "**"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn glob_matches_like_filepath_match() {
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*", "ab/c", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("*x", "xxx", true),
        ];
        for (pattern, name, want) in cases {
            let g = Glob::new(pattern).unwrap();
            assert_eq!(g.matches(name), want, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["[", "[^", "[a-", "[]a]", "[-]", "a\\", "[x-]", "[\\"] {
            assert_eq!(Glob::new(bad), Err(BadPattern), "{bad:?}");
        }
    }
}
