//! Registry credentials and where they live: Docker's `config.json` (`auths`, `credHelpers`,
//! `credsStore`) and the containers `auth.json`.
//!
//! Lookup order: `$REGISTRY_AUTH_FILE` (when set), `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`, then `${XDG_RUNTIME_DIR}/containers/auth.json`. `kiln login` writes
//! where Docker would: the configured credential helper, else `auths` in Docker's config.json.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::helper;
use crate::error::{Error, IoContext, Result};

/// The key Docker files Docker Hub credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A username with a password, or an identity (refresh) token. Never printed: `Debug` and
/// `Display` redact the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { username: String, password: String },
    IdentityToken(String),
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> &str {
        match self {
            Credentials::Basic { username, .. } => username,
            Credentials::IdentityToken(_) => "<token>",
        }
    }

    /// The secret (password or token). Only for sending it to where it belongs.
    pub fn secret(&self) -> &str {
        match self {
            Credentials::Basic { password, .. } => password,
            Credentials::IdentityToken(t) => t,
        }
    }

    /// The `Authorization: Basic` value for username/password credentials.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credentials::IdentityToken(_) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Credentials::Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::IdentityToken(_) => write!(f, "Credentials::IdentityToken(<redacted>)"),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (secret redacted)", self.username())
    }
}

/// The auth-file key for a registry host: Docker Hub's legacy URL, else the host.
pub fn auth_key(registry: &str) -> String {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Normalizes an `auths` key (`https://host/v1/`, `host`) to a host for comparison.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let a = auth_key(key_host(key));
    let b = auth_key(registry);
    a == b || key_host(&a) == key_host(&b)
}

/// The credential files kiln reads, in lookup order.
#[derive(Clone, Debug)]
pub struct CredentialSources {
    /// `$REGISTRY_AUTH_FILE`, when set.
    pub registry_auth_file: Option<PathBuf>,
    /// Docker's config.json (also where `login` writes).
    pub docker_config: PathBuf,
    /// `${XDG_RUNTIME_DIR}/containers/auth.json`.
    pub containers_auth: Option<PathBuf>,
}

impl CredentialSources {
    /// Paths from the environment, as Docker and podman find them.
    pub fn from_env() -> Self {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let docker_dir = env("DOCKER_CONFIG").unwrap_or_else(|| {
            env("HOME")
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".docker")
        });
        CredentialSources {
            registry_auth_file: env("REGISTRY_AUTH_FILE"),
            docker_config: docker_dir.join("config.json"),
            containers_auth: env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")),
        }
    }

    fn read_order(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = Vec::new();
        if let Some(p) = &self.registry_auth_file {
            v.push(p);
        }
        v.push(&self.docker_config);
        if let Some(p) = &self.containers_auth {
            v.push(p);
        }
        v
    }

    /// Credentials for `registry` (a host such as `docker.io` or `localhost:5000`), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        for path in self.read_order() {
            let Some(cfg) = read_json(path)? else {
                continue;
            };
            if let Some(name) = helper_for(&cfg, registry) {
                if let Some(c) = helper::get(&name, &auth_key(registry))? {
                    return Ok(Some(c));
                }
                continue;
            }
            if let Some(c) = from_auths(&cfg, registry, path)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Stores credentials where Docker would: the registry's helper or `credsStore`, else
    /// `auths` in Docker's config.json. Returns a description of where they went.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<String> {
        let path = &self.docker_config;
        let mut cfg = read_json(path)?.unwrap_or_default();
        let key = auth_key(registry);
        if let Some(name) = helper_for(&cfg, registry) {
            helper::store(&name, &key, creds)?;
            return Ok(format!("credential helper docker-credential-{name}"));
        }
        let mut entry = Map::new();
        match creds {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                entry.insert(
                    "auth".into(),
                    base64::engine::general_purpose::STANDARD.encode(raw).into(),
                );
            }
            Credentials::IdentityToken(t) => {
                entry.insert("identitytoken".into(), t.clone().into());
            }
        }
        let auths = cfg
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(auths) = auths else {
            return Err(Error::invalid(
                path.display().to_string(),
                "\"auths\" is not an object",
            ));
        };
        auths.insert(key, Value::Object(entry));
        write_json(path, &cfg)?;
        Ok(path.display().to_string())
    }

    /// Removes stored credentials for `registry` from every file and helper that had them.
    /// Returns whether anything was removed.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let mut removed = false;
        for path in self.read_order() {
            let Some(mut cfg) = read_json(path)? else {
                continue;
            };
            if let Some(name) = helper_for(&cfg, registry) {
                removed |= helper::erase(&name, &auth_key(registry))?;
            }
            if let Some(Value::Object(auths)) = cfg.get_mut("auths") {
                let keys: Vec<String> = auths
                    .keys()
                    .filter(|k| same_registry(k, registry))
                    .cloned()
                    .collect();
                if !keys.is_empty() {
                    for k in keys {
                        auths.remove(&k);
                    }
                    write_json(path, &cfg)?;
                    removed = true;
                }
            }
        }
        Ok(removed)
    }
}

/// The helper configured for `registry`: `credHelpers[registry]`, else `credsStore`.
fn helper_for(cfg: &Map<String, Value>, registry: &str) -> Option<String> {
    if let Some(Value::Object(helpers)) = cfg.get("credHelpers") {
        for (k, v) in helpers {
            if same_registry(k, registry) {
                return v.as_str().map(String::from);
            }
        }
    }
    cfg.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn from_auths(
    cfg: &Map<String, Value>,
    registry: &str,
    path: &Path,
) -> Result<Option<Credentials>> {
    let Some(Value::Object(auths)) = cfg.get("auths") else {
        return Ok(None);
    };
    let Some((key, entry)) = auths.iter().find(|(k, _)| same_registry(k, registry)) else {
        return Ok(None);
    };
    let bad = |reason: &str| Error::invalid(format!("{} entry {key:?}", path.display()), reason);
    if let Some(t) = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(Credentials::IdentityToken(t.to_string())));
    }
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("\"auth\" is not base64"))?;
        let raw = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
        let (u, p) = raw
            .split_once(':')
            .ok_or_else(|| bad("\"auth\" is not user:password"))?;
        return Ok(Some(Credentials::basic(u, p)));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credentials::basic(u, p))),
        _ => Ok(None),
    }
}

fn read_json(path: &Path) -> Result<Option<Map<String, Value>>> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Some(Map::new())),
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::json(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes the file atomically with mode 0600 (it holds secrets).
fn write_json(path: &Path, cfg: &Map<String, Value>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config-")
        .tempfile_in(dir)
        .at(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .at(tmp.path().to_path_buf())?;
    let mut bytes = serde_json::to_vec_pretty(cfg).expect("json serializes");
    bytes.push(b'\n');
    tmp.write_all(&bytes).at(tmp.path().to_path_buf())?;
    tmp.as_file().sync_all().at(tmp.path().to_path_buf())?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path) -> CredentialSources {
        CredentialSources {
            registry_auth_file: None,
            docker_config: dir.join("config.json"),
            containers_auth: Some(dir.join("auth.json")),
        }
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let c = Credentials::basic("alice", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c}").contains("hunter2"));
        let t = Credentials::IdentityToken("tok-123".into());
        assert!(!format!("{t:?}{t}").contains("tok-123"));
    }

    #[test]
    fn docker_hub_credentials_are_found_under_the_legacy_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6cHc="},"localhost:5000":{"identitytoken":"it"}}}"#,
        )
        .unwrap();
        let s = sources(dir.path());
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(Credentials::basic("alice", "pw"))
        );
        assert_eq!(
            s.get("localhost:5000").unwrap(),
            Some(Credentials::IdentityToken("it".into()))
        );
        assert_eq!(s.get("ghcr.io").unwrap(), None);
    }

    #[test]
    fn containers_auth_file_is_read_after_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("auth.json"),
            r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        assert_eq!(
            sources(dir.path()).get("quay.io").unwrap(),
            Some(Credentials::basic("u", "p"))
        );
    }

    #[test]
    fn store_then_erase_round_trips_and_keeps_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"other.io":{"auth":"dTpw"}},"psFormat":"table"}"#,
        )
        .unwrap();
        let s = sources(dir.path());
        s.store("localhost:5000", &Credentials::basic("bob", "s3cret"))
            .unwrap();
        assert_eq!(
            s.get("localhost:5000").unwrap(),
            Some(Credentials::basic("bob", "s3cret"))
        );
        assert!(s.erase("localhost:5000").unwrap());
        assert_eq!(s.get("localhost:5000").unwrap(), None);
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.contains("other.io") && text.contains("psFormat"));
        assert!(!s.erase("localhost:5000").unwrap());
    }

    #[test]
    fn malformed_auth_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"x.io":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let e = sources(dir.path()).get("x.io").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("base64"), "{e}");
    }
}
