//! Test support: the real Debian `docker-registry` on a free loopback port, test
//! certificates, a JWT token issuer for `auth: token`, and a fault-injecting proxy.
#![allow(dead_code)]

pub mod proxy;
pub mod token;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registry::remote::{CredentialSources, Remote, RemoteOptions};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Whether a missing tool must fail the test (in CI) rather than skip it.
pub fn require(tool: &str) -> bool {
    if Path::new(tool).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{tool} is required when CI=true but is not installed");
    }
    eprintln!("note: {tool} not installed; skipping this test");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Token auth settings for the registry config.
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub rootcertbundle: PathBuf,
}

#[derive(Default)]
pub struct RegistryConfig {
    /// `(user, password)` for htpasswd Basic auth.
    pub htpasswd: Option<(String, String)>,
    pub token: Option<TokenAuth>,
    /// `(certificate, key)` PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running `docker-registry`; killed on drop.
pub struct RegistryServer {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl RegistryServer {
    /// Starts an anonymous registry, or `None` (after a note) when the binary is missing.
    pub fn start() -> Option<RegistryServer> {
        Self::start_with(RegistryConfig::default())
    }

    pub fn start_with(cfg: RegistryConfig) -> Option<RegistryServer> {
        if !require(REGISTRY_BIN) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = &cfg.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, pass)) = &cfg.htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) runs");
            assert!(out.status.success());
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                path.display()
            ));
        }
        if let Some(t) = &cfg.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let server = RegistryServer { host, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&server.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// Where the registry keeps its data (to count or corrupt blobs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credential sources that read only files inside `dir`.
pub fn isolated_credentials(dir: &Path) -> CredentialSources {
    CredentialSources {
        registry_auth_file: None,
        docker_config: dir.join("docker/config.json"),
        containers_auth: None,
    }
}

/// A Remote with no system configuration and fast retries.
pub fn remote(creds_dir: &Path) -> Remote {
    let mut opts = RemoteOptions::isolated(isolated_credentials(creds_dir));
    opts.transport.retry_base = Duration::from_millis(20);
    Remote::new(opts)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A self-signed certificate (and key) for `names`, as PEM strings.
pub fn self_signed(names: &[&str]) -> (String, String, rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert, key)
}

/// A server certificate for `names` signed by a fresh test CA: (ca_pem, cert_pem, key_pem).
pub fn ca_signed(names: &[&str]) -> (String, String, String) {
    let (ca_pem, _, ca, ca_key) = self_signed(&["kiln test ca"]);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}
