//! Turning registry error responses into clear errors: the spec's `{"errors":[...]}` envelope,
//! size-capped, and dedicated messages for 401, 403, 404, 429 and MANIFEST_INVALID.

use futures_util::StreamExt;
use reqwest::{Response, StatusCode};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Longest error body read from a registry.
const BODY_CAP: usize = 16 * 1024;
/// Longest message shown to the user.
const MESSAGE_CAP: usize = 512;

#[derive(Deserialize)]
struct Envelope {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// The registry's error codes and a one-line message, from an error body.
pub(crate) fn summarize(body: &[u8]) -> (Vec<String>, String) {
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        let codes = env.errors.iter().map(|e| e.code.clone()).collect();
        let msg = env
            .errors
            .iter()
            .map(|e| {
                let mut s = if e.code.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.code, e.message)
                };
                if let Some(d) = e.detail.as_ref().filter(|d| !d.is_null()) {
                    let d = d.to_string();
                    if d.len() < 200 {
                        s.push_str(&format!(" ({d})"));
                    }
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
        return (codes, cap(&msg));
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .collect();
    (Vec::new(), cap(text.trim()))
}

fn cap(s: &str) -> String {
    if s.len() <= MESSAGE_CAP {
        return s.to_string();
    }
    let mut end = MESSAGE_CAP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (truncated)", &s[..end])
}

/// Reads at most [`BODY_CAP`] bytes of a response body.
pub(crate) async fn capped_body(resp: Response) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = BODY_CAP - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= BODY_CAP {
            break;
        }
    }
    out
}

/// Passes a success response through; turns anything else into an error about `what`
/// (`localhost:5000/app:v1`, `blob sha256:... in localhost:5000/app`).
pub(crate) async fn check(resp: Response, what: &str, registry: &str) -> Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(status_error(resp, what, registry).await)
}

pub(crate) async fn status_error(resp: Response, what: &str, registry: &str) -> Error {
    let status = resp.status();
    let rate = rate_limit_details(&resp);
    let body = capped_body(resp).await;
    let (codes, message) = summarize(&body);
    let what = what.to_string();
    match status {
        StatusCode::UNAUTHORIZED => Error::Unauthorized {
            what,
            registry: registry.to_string(),
            message,
        },
        StatusCode::FORBIDDEN => Error::Denied { what, message },
        StatusCode::NOT_FOUND => Error::RemoteNotFound { what, message },
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            what,
            registry: registry.to_string(),
            details: if rate.is_empty() {
                format!(": {message}")
            } else {
                format!(" [{rate}]")
            },
        },
        _ if codes
            .iter()
            .any(|c| c == "MANIFEST_INVALID" || c == "MANIFEST_BLOB_UNKNOWN") =>
        {
            Error::ManifestInvalid { what, message }
        }
        _ => Error::Registry {
            what,
            status: status.as_u16(),
            message,
        },
    }
}

/// Docker Hub's `ratelimit-limit`/`ratelimit-remaining` and `Retry-After`, for the user.
fn rate_limit_details(resp: &Response) -> String {
    ["ratelimit-limit", "ratelimit-remaining", "retry-after"]
        .iter()
        .filter_map(|h| {
            let v = resp.headers().get(*h)?.to_str().ok()?;
            Some(format!("{h}: {}", cap(v)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_summarized() {
        let (codes, msg) = summarize(
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"reason":"x"}}]}"#,
        );
        assert_eq!(codes, vec!["MANIFEST_INVALID"]);
        assert_eq!(
            msg,
            r#"MANIFEST_INVALID: manifest invalid ({"reason":"x"})"#
        );
    }

    #[test]
    fn huge_or_binary_bodies_are_capped_and_cleaned() {
        let body = [b"\x1b[31m".as_slice(), &vec![b'a'; 10_000]].concat();
        let (_, msg) = summarize(&body);
        assert!(msg.len() < MESSAGE_CAP + 20);
        assert!(!msg.contains('\x1b'));
        assert!(msg.ends_with("(truncated)"));
    }
}
