//! Registry authentication: credentials, `WWW-Authenticate` challenges, and the Bearer token
//! flow with a per-scope token cache.

pub mod credentials;
mod helper;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

pub use credentials::{auth_key, CredentialSources, Credentials};

use super::transport::Transport;
use crate::error::{Error, Result};

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Basic realm="..."` or `Bearer realm="...",service="...",scope="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => val.push(c),
                }
            }
            (val, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Repository access a request needs: `repository:NAME:pull[,push]` per repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn pull(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }

    pub fn push(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }

    /// Push to `repo` plus pull from `from` (a cross-repository mount).
    pub fn push_mount(repo: &str, from: &str) -> Scope {
        Scope(vec![
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ])
    }

    pub fn delete(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:delete")])
    }

    /// The catalog scope (unused by kiln but valid).
    pub fn none() -> Scope {
        Scope(Vec::new())
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }

    /// Whether a token for `self` also grants everything `wanted` asks for
    /// (`repository:a:pull,push` covers `repository:a:pull`).
    pub fn covers(&self, wanted: &Scope) -> bool {
        wanted.0.iter().all(|w| {
            let Some((wres, wactions)) = w.rsplit_once(':') else {
                return self.0.contains(w);
            };
            self.0.iter().any(|h| {
                h.rsplit_once(':').is_some_and(|(hres, hactions)| {
                    hres == wres
                        && wactions
                            .split(',')
                            .all(|a| hactions.split(',').any(|b| b == a || b == "*"))
                })
            })
        })
    }
}

#[derive(Clone)]
struct CachedToken {
    header: HeaderValue,
    expires: Instant,
}

/// Per-registry auth state: the challenge seen, credentials, and tokens by scope.
#[derive(Default)]
pub(crate) struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<Scope, CachedToken>,
}

impl AuthState {
    /// The Authorization header to send for `scope` before any 401, if one is known.
    pub fn header_for(&self, scope: &Scope, creds: Option<&Credentials>) -> Option<HeaderValue> {
        match self.challenge.as_ref()? {
            Challenge::Basic => basic_value(creds?),
            Challenge::Bearer { .. } => {
                let now = Instant::now();
                if let Some(t) = self.tokens.get(scope).filter(|t| t.expires > now) {
                    return Some(t.header.clone());
                }
                self.tokens
                    .iter()
                    .find(|(s, t)| t.expires > now && s.covers(scope))
                    .map(|(_, t)| t.header.clone())
            }
        }
    }

    pub fn set_challenge(&mut self, c: Challenge) {
        self.challenge = Some(c);
    }

    pub fn cache(&mut self, scope: Scope, header: HeaderValue, ttl: Duration) {
        self.tokens.insert(
            scope,
            CachedToken {
                header,
                expires: Instant::now() + ttl,
            },
        );
    }
}

pub(crate) fn basic_value(creds: &Credentials) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&creds.basic_header()?).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches a Bearer token from `realm` for `scope`: GET with Basic credentials (or none, for
/// an anonymous token), or the OAuth2 refresh-token POST for an identity token. Returns the
/// header value and how long it may be cached.
pub(crate) async fn fetch_token(
    transport: &Transport,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scope: &Scope,
    creds: Option<&Credentials>,
) -> Result<(HeaderValue, Duration)> {
    let fail = |reason: String| Error::Auth {
        registry: registry.to_string(),
        reason,
    };
    let mut url =
        Url::parse(realm).map_err(|e| fail(format!("invalid token realm {realm:?}: {e}")))?;
    let resp = match creds {
        Some(Credentials::IdentityToken(tok)) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", tok.clone()),
                ("client_id", "kiln".to_string()),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_string()));
            }
            if !scope.items().is_empty() {
                form.push(("scope", scope.items().join(" ")));
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let build = move |b: reqwest::RequestBuilder| {
                Ok(
                    b.header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.clone()),
                )
            };
            transport.send(Method::POST, &url, &build, None).await?
        }
        _ => {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scope.items() {
                    q.append_pair("scope", s);
                }
                q.append_pair("client_id", "kiln");
            }
            let auth = creds.and_then(basic_value);
            transport
                .send(Method::GET, &url, &|b| Ok(b), auth.as_ref())
                .await?
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let what = if creds.is_some() {
            "credentials were rejected by the token server"
        } else {
            "the token server refused an anonymous token"
        };
        return Err(fail(format!("{what} ({status})")));
    }
    let body: TokenResponse = resp
        .json()
        .await
        .map_err(|e| fail(format!("invalid token response: {}", e.without_url())))?;
    let token = body
        .access_token
        .filter(|t| !t.is_empty())
        .or(body.token.filter(|t| !t.is_empty()))
        .ok_or_else(|| fail("token response has no token".to_string()))?;
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| fail("token has invalid characters".to_string()))?;
    header.set_sensitive(true);
    // Expire a little early; the spec's default lifetime is 60 seconds.
    let secs = body.expires_in.unwrap_or(60).max(60);
    Ok((header, Duration::from_secs(secs.saturating_sub(10))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_is_parsed() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }
        );
    }

    #[test]
    fn basic_and_unknown_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "realm is required"
        );
    }

    #[test]
    fn push_scope_covers_pull_of_the_same_repository_only() {
        assert!(Scope::push("a").covers(&Scope::pull("a")));
        assert!(!Scope::pull("a").covers(&Scope::push("a")));
        assert!(!Scope::push("a").covers(&Scope::pull("b")));
        assert!(Scope::push_mount("a", "b").covers(&Scope::pull("b")));
    }

    #[test]
    fn quoted_values_may_hold_commas_and_escapes() {
        let p = parse_params(r#"realm="a,b",scope="x \"y\"", error=invalid_token"#);
        assert_eq!(p["realm"], "a,b");
        assert_eq!(p["scope"], "x \"y\"");
        assert_eq!(p["error"], "invalid_token");
    }
}
