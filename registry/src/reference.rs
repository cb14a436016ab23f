//! Image references with Docker's grammar and normalization.
//!
//! `busybox` is `docker.io/library/busybox:latest`; `user/app` is `docker.io/user/app:latest`;
//! a first component with a `.` or `:`, `localhost`, or an upper-case letter names a registry
//! (`localhost:5000/app:v1`), so `app:v1` is a tag, not a port. `index.docker.io` is folded into
//! `docker.io`. [`Reference`]'s `Display` is the fully-qualified form; [`Reference::familiar`]
//! is the short form `docker images` and `RepoTags` show.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (registry included), as distribution's `NameTotalLengthMax`.
pub const NAME_MAX: usize = 255;
/// Longest tag.
pub const TAG_MAX: usize = 128;

/// A normalized image reference: `registry/repository[:tag][@digest]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `s`; a reference without tag or digest gets `:latest`, as the
    /// docker CLI does.
    pub fn parse(s: &str) -> Result<Reference> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalizes `s` without adding a default tag (for name filters).
    pub fn parse_named(s: &str) -> Result<Reference> {
        let bad = |reason: &str| Error::InvalidReference {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "cannot specify 64-byte hexadecimal strings as a repository name",
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| bad(&format!("{e}")))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|r| bad(&r))?;
        }
        let (registry, remainder) = split_registry(name);
        if remainder.is_empty() {
            return Err(bad("repository name must have at least one component"));
        }
        if remainder.to_ascii_lowercase() != remainder {
            return Err(bad(&format!(
                "repository name ({remainder}) must be lowercase"
            )));
        }
        validate_registry(&registry).map_err(|r| bad(&r))?;
        for component in remainder.split('/') {
            validate_path_component(component).map_err(|r| bad(&r))?;
        }
        let mut repository = remainder.to_string();
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository.insert_str(0, OFFICIAL_PREFIX);
        }
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(bad(&format!(
                "repository name must not be more than {NAME_MAX} characters"
            )));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from parts, validating them as [`Reference::parse`] would.
    pub fn new(name: &str, tag: Option<&str>, digest: Option<Digest>) -> Result<Reference> {
        let mut r = Reference::parse_named(name)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(Error::InvalidReference {
                value: name.to_string(),
                reason: "expected a repository name without tag or digest".to_string(),
            });
        }
        if let Some(t) = tag {
            r = r.with_tag(t)?;
        }
        r.digest = digest;
        Ok(r)
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Docker's short repository name: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Docker's short form with tag and digest: `busybox:latest`, `user/app@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// A copy with `tag` (validated) and the digest kept.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag).map_err(|reason| Error::InvalidReference {
            value: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// A copy pinned to `digest`, tag kept.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// A copy without tag and digest.
    pub fn name_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// A copy without the digest.
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            ..self.clone()
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

/// Splits Docker's way: the first component is a registry only if it has a `.` or `:`, is
/// `localhost`, or has an upper-case letter (repositories must be lower-case).
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            let registry = if first == LEGACY_REGISTRY {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (registry.to_string(), rest)
        }
        _ => (DEFAULT_REGISTRY.to_string(), name),
    }
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() {
        return Err("empty tag".to_string());
    }
    if bytes.len() > TAG_MAX {
        return Err(format!("tag must not be more than {TAG_MAX} characters"));
    }
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "invalid tag {tag:?}: only [A-Za-z0-9_.-] allowed, not starting with '.' or '-'"
        ));
    }
    Ok(())
}

/// `host[:port]` where host is a dotted DNS name or a bracketed IPv6 address.
fn validate_registry(registry: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid registry {registry:?}");
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        match after {
            "" => return Ok(()),
            p => (None, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port in registry {registry:?}"));
        }
    }
    if let Some(host) = host {
        for label in host.split('.') {
            let b = label.as_bytes();
            let ok = !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-';
            if !ok {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn validate_path_component(c: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid repository path component {c:?}");
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `testdata/reference/cases.txt`: `input | normalized | familiar` for valid input,
    /// `input | error: <substring>` for invalid input.
    #[test]
    fn reference_cases_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/reference/cases.txt"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        let mut failures = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            n += 1;
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let input = cols[0];
            let got = Reference::parse(input);
            match (cols.get(1).and_then(|c| c.strip_prefix("error:")), got) {
                (Some(want), Ok(r)) => failures.push(format!(
                    "line {}: {input:?} parsed as {r}, want error {want:?}",
                    lineno + 1
                )),
                (Some(want), Err(e)) => {
                    let msg = e.to_string();
                    if !msg.contains(want.trim()) || !msg.contains(&format!("{input:?}")) {
                        failures.push(format!(
                            "line {}: {input:?}: error {msg:?} lacks {want:?} or the input",
                            lineno + 1
                        ));
                    }
                }
                (None, Err(e)) => failures.push(format!("line {}: {input:?}: {e}", lineno + 1)),
                (None, Ok(r)) => {
                    if r.to_string() != cols[1] || cols.get(2) != Some(&r.familiar().as_str()) {
                        failures.push(format!(
                            "line {}: {input:?}: got {r} | {}, want {} | {}",
                            lineno + 1,
                            r.familiar(),
                            cols[1],
                            cols.get(2).unwrap_or(&"")
                        ));
                    }
                    // The normalized and familiar forms parse back to the same reference.
                    for form in [r.to_string(), r.familiar()] {
                        if Reference::parse(&form).ok().as_ref() != Some(&r) {
                            failures
                                .push(format!("line {}: {form:?} does not round-trip", lineno + 1));
                        }
                    }
                }
            }
        }
        assert!(n > 40, "too few cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn parse_named_adds_no_tag() {
        let r = Reference::parse_named("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.familiar(), "busybox");
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn with_tag_validates() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.with_tag("v1").unwrap().familiar(), "busybox:v1");
        assert!(r.with_tag("-bad").is_err());
    }
}
