//! The `docker-credential-<name>` protocol: `get`, `store` and `erase` over stdin/stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::credentials::Credentials;
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    username: String,
    secret: String,
}

fn run(name: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>)> {
    let err = |reason: String| Error::CredentialHelper {
        helper: name.to_string(),
        reason,
    };
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| err(format!("{action}: writing input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("{action}: {e}")))?;
    let mut text = out.stdout;
    if !out.status.success() {
        // Helpers report "credentials not found" on stdout; anything else is an error.
        text.extend_from_slice(&out.stderr);
    }
    Ok((out.status.success(), text))
}

fn not_found(output: &[u8]) -> bool {
    String::from_utf8_lossy(output)
        .to_ascii_lowercase()
        .contains("credentials not found")
}

/// Asks helper `name` for the credentials of `server`; `None` when it has none.
pub fn get(name: &str, server: &str) -> Result<Option<Credentials>> {
    let (ok, out) = run(name, "get", server.as_bytes())?;
    if !ok {
        if not_found(&out) {
            return Ok(None);
        }
        return Err(Error::CredentialHelper {
            helper: name.to_string(),
            reason: format!("get {server}: {}", first_line(&out)),
        });
    }
    let c: HelperCreds = serde_json::from_slice(&out).map_err(|e| Error::CredentialHelper {
        helper: name.to_string(),
        // The parse error's position only, never the output (it holds the secret).
        reason: format!(
            "get {server}: invalid JSON output (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    if c.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if c.username == "<token>" {
        Credentials::IdentityToken(c.secret)
    } else {
        Credentials::basic(c.username, c.secret)
    }))
}

pub fn store(name: &str, server: &str, creds: &Credentials) -> Result<()> {
    let input = serde_json::to_vec(&HelperCreds {
        server_url: server.to_string(),
        username: creds.username().to_string(),
        secret: creds.secret().to_string(),
    })
    .expect("json serializes");
    let (ok, out) = run(name, "store", &input)?;
    if !ok {
        return Err(Error::CredentialHelper {
            helper: name.to_string(),
            reason: format!("store {server}: {}", first_line(&out)),
        });
    }
    Ok(())
}

/// Erases `server`'s credentials; `false` when the helper had none.
pub fn erase(name: &str, server: &str) -> Result<bool> {
    let (ok, out) = run(name, "erase", server.as_bytes())?;
    if ok {
        return Ok(true);
    }
    if not_found(&out) {
        return Ok(false);
    }
    Err(Error::CredentialHelper {
        helper: name.to_string(),
        reason: format!("erase {server}: {}", first_line(&out)),
    })
}

fn first_line(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let line = s.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}
