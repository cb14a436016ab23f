//! The distribution client: talks the OCI distribution API / Docker Registry HTTP API v2.
//!
//! - `transport`: TLS, scheme choice, retries with backoff, safe redirects.
//! - [`auth`]: credentials (config.json, auth.json, helpers), challenges, Bearer tokens.
//! - `client`: one registry endpoint and its API calls; `blob`: streaming transfers.
//! - [`pull`], [`push`], [`ops`] (inspect, tags, delete, registry-to-registry copy).
//! - [`mirrors`] and `origins` (where blobs came from, for cross-repository mounts).
//!
//! [`Remote`] is the entry point: it hands out one client per registry host and knows the
//! mirrors to try for pulls.

pub mod auth;
pub mod blob;
mod client;
mod errors;
pub mod mirrors;
pub mod ops;
pub mod origins;
pub mod progress;
pub mod pull;
pub mod push;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use auth::{CredentialSources, Credentials};
pub use client::{api_host, FetchedManifest, RegistryClient, MANIFEST_ACCEPT};
pub use mirrors::Mirrors;
pub use progress::{Event, NoProgress, Progress, SharedProgress};
pub use transport::{is_loopback, TransportOptions};

use crate::error::Result;

/// Everything a [`Remote`] needs to know.
#[derive(Clone)]
pub struct RemoteOptions {
    pub transport: TransportOptions,
    pub credentials: CredentialSources,
    pub mirrors: Mirrors,
    /// Concurrent blob transfers per image (`--max-concurrent-downloads`/`-uploads`).
    pub max_concurrent: usize,
    pub progress: SharedProgress,
}

impl RemoteOptions {
    /// Settings from the environment and the system config files; no mirrors from flags.
    pub fn from_env() -> Result<RemoteOptions> {
        let mirrors = Mirrors::from_system(&[])?;
        let mut transport = TransportOptions::from_env();
        transport
            .insecure_registries
            .extend(mirrors.insecure.iter().cloned());
        Ok(RemoteOptions {
            transport,
            credentials: CredentialSources::from_env(),
            mirrors,
            max_concurrent: 3,
            progress: Arc::new(NoProgress),
        })
    }

    /// Options for tests and embedding: no system files, no stored credentials.
    pub fn isolated(credentials: CredentialSources) -> RemoteOptions {
        RemoteOptions {
            transport: TransportOptions {
                cert_dirs: Vec::new(),
                ..TransportOptions::default()
            },
            credentials,
            mirrors: Mirrors::default(),
            max_concurrent: 3,
            progress: Arc::new(NoProgress),
        }
    }
}

/// Registry clients by endpoint, shared so tokens are reused across operations.
pub struct Remote {
    opts: RemoteOptions,
    clients: Mutex<HashMap<(String, String), Arc<RegistryClient>>>,
}

impl Remote {
    pub fn new(opts: RemoteOptions) -> Remote {
        Remote {
            opts,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &RemoteOptions {
        &self.opts
    }

    pub fn progress(&self) -> &SharedProgress {
        &self.opts.progress
    }

    /// The client for `registry` itself (as a reference names it: `docker.io`).
    pub fn client(&self, registry: &str) -> Result<Arc<RegistryClient>> {
        self.endpoint(registry, api_host(registry))
    }

    fn endpoint(&self, registry: &str, endpoint: &str) -> Result<Arc<RegistryClient>> {
        let key = (registry.to_string(), endpoint.to_string());
        if let Some(c) = self.clients.lock().expect("clients lock").get(&key) {
            return Ok(c.clone());
        }
        let host = endpoint.split('/').next().unwrap_or(endpoint);
        let cred_key = if endpoint == api_host(registry) {
            registry
        } else {
            host
        };
        let creds = self.opts.credentials.get(cred_key)?;
        let c = Arc::new(RegistryClient::new(
            registry,
            endpoint,
            &self.opts.transport,
            creds,
        )?);
        self.clients
            .lock()
            .expect("clients lock")
            .insert(key, c.clone());
        Ok(c)
    }

    /// Endpoints to pull from, in order: the registry's mirrors, then the registry.
    pub fn pull_endpoints(&self, registry: &str) -> Result<Vec<Arc<RegistryClient>>> {
        let mut out = Vec::new();
        for m in self.opts.mirrors.for_registry(registry) {
            out.push(self.endpoint(registry, m)?);
        }
        out.push(self.client(registry)?);
        Ok(out)
    }
}
