//! Pull mirrors, read from every place the other tools keep them: Docker's
//! `/etc/docker/daemon.json` (`registry-mirrors`, for docker.io), containers'
//! `/etc/containers/registries.conf` (`[[registry]]` with `[[registry.mirror]]`), and
//! `--registry-mirror` / `KILN_REGISTRY_MIRRORS` (`host` for docker.io, or `REGISTRY=host`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Mirror endpoints (`host[:port][/prefix]`) per registry name, tried in order before the
/// registry itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    pub by_registry: BTreeMap<String, Vec<String>>,
    /// Mirrors configured with plain `http://` or `insecure = true`.
    pub insecure: Vec<String>,
    /// Files that contributed.
    pub sources: Vec<PathBuf>,
}

impl Mirrors {
    /// Reads the system files (missing ones are skipped) plus `extra` flags/env entries.
    pub fn load(daemon_json: &Path, registries_conf: &Path, extra: &[String]) -> Result<Mirrors> {
        let mut m = Mirrors::default();
        for e in extra {
            match e.split_once('=') {
                Some((reg, mirror)) => m.add(reg, mirror, false),
                None => m.add("docker.io", e, false),
            }
        }
        m.read_daemon_json(daemon_json)?;
        m.read_registries_conf(registries_conf)?;
        Ok(m)
    }

    /// [`Mirrors::load`] from the standard paths and `KILN_REGISTRY_MIRRORS`.
    pub fn from_system(flags: &[String]) -> Result<Mirrors> {
        let mut extra = flags.to_vec();
        if let Ok(v) = std::env::var("KILN_REGISTRY_MIRRORS") {
            extra.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        Mirrors::load(
            Path::new("/etc/docker/daemon.json"),
            Path::new("/etc/containers/registries.conf"),
            &extra,
        )
    }

    pub fn for_registry(&self, registry: &str) -> &[String] {
        self.by_registry.get(registry).map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, registry: &str, mirror: &str, insecure: bool) {
        let registry = match registry.trim() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            r => r,
        };
        let (insecure, endpoint) = match mirror.trim().strip_prefix("http://") {
            Some(rest) => (true, rest),
            None => (
                insecure,
                mirror
                    .trim()
                    .strip_prefix("https://")
                    .unwrap_or(mirror.trim()),
            ),
        };
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if endpoint.is_empty() {
            return;
        }
        if insecure {
            let host = endpoint.split('/').next().unwrap_or(&endpoint).to_string();
            if !self.insecure.contains(&host) {
                self.insecure.push(host);
            }
        }
        let list = self.by_registry.entry(registry.to_string()).or_default();
        if !list.contains(&endpoint) {
            list.push(endpoint);
        }
    }

    fn read_daemon_json(&mut self, path: &Path) -> Result<()> {
        #[derive(Deserialize)]
        struct Daemon {
            #[serde(rename = "registry-mirrors", default)]
            mirrors: Vec<String>,
        }
        let Some(bytes) = read_optional(path)? else {
            return Ok(());
        };
        let d: Daemon = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(path.display().to_string(), e))?;
        if !d.mirrors.is_empty() {
            self.sources.push(path.to_path_buf());
        }
        for mirror in d.mirrors {
            self.add("docker.io", &mirror, false);
        }
        Ok(())
    }

    fn read_registries_conf(&mut self, path: &Path) -> Result<()> {
        #[derive(Deserialize)]
        struct Conf {
            #[serde(default)]
            registry: Vec<Registry>,
        }
        #[derive(Deserialize)]
        struct Registry {
            #[serde(default)]
            prefix: Option<String>,
            #[serde(default)]
            location: Option<String>,
            #[serde(default)]
            mirror: Vec<Mirror>,
        }
        #[derive(Deserialize)]
        struct Mirror {
            location: String,
            #[serde(default)]
            insecure: bool,
        }
        let Some(bytes) = read_optional(path)? else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&bytes);
        let conf: Conf = toml::from_str(&text)
            .map_err(|e| Error::invalid(path.display().to_string(), e.to_string()))?;
        let mut used = false;
        for r in conf.registry {
            let Some(name) = r.prefix.or(r.location) else {
                continue;
            };
            // Only whole-registry entries: a prefix with a repository path is not a mirror
            // of the registry kiln can apply to every name.
            if name.contains('/') || name.starts_with("*.") {
                continue;
            }
            for m in r.mirror {
                used = true;
                self.add(&name, &m.location, m.insecure);
            }
        }
        if used {
            self.sources.push(path.to_path_buf());
        }
        Ok(())
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_sources_are_merged_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = dir.path().join("daemon.json");
        let conf = dir.path().join("registries.conf");
        std::fs::write(
            &daemon,
            r#"{"registry-mirrors":["https://mirror.gcr.io/"],"debug":true}"#,
        )
        .unwrap();
        std::fs::write(
            &conf,
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "registry-1.docker.io"
[[registry.mirror]]
location = "hub.internal:5000/dockerhub"
insecure = true
[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "quay-mirror.internal"
"#,
        )
        .unwrap();
        let m = Mirrors::load(
            &daemon,
            &conf,
            &["http://localhost:5001".into(), "ghcr.io=gh.internal".into()],
        )
        .unwrap();
        assert_eq!(
            m.for_registry("docker.io"),
            [
                "localhost:5001",
                "mirror.gcr.io",
                "hub.internal:5000/dockerhub"
            ]
        );
        assert_eq!(m.for_registry("quay.io"), ["quay-mirror.internal"]);
        assert_eq!(m.for_registry("ghcr.io"), ["gh.internal"]);
        assert_eq!(m.insecure, ["localhost:5001", "hub.internal:5000"]);
        assert_eq!(m.sources.len(), 2);
    }

    #[test]
    fn broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("registries.conf");
        std::fs::write(&conf, "[[registry]\n").unwrap();
        let e = Mirrors::load(&dir.path().join("none"), &conf, &[]).unwrap_err();
        assert!(e.to_string().contains("registries.conf"), "{e}");
    }
}
