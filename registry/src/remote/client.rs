//! One registry endpoint: URLs, authenticated requests, and the distribution API calls
//! (manifests, blobs, tags). Transfers that move layers live in `blob.rs`, `pull.rs`, `push.rs`.

use std::sync::Mutex;

use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{self, AuthState, Challenge, Credentials, Scope};
use super::errors;
use super::transport::{Transport, TransportOptions};
use crate::digest::{Digest, DigestHasher};
use crate::error::{Error, Result};
use crate::media_types as mt;

/// Largest manifest or config kiln reads into memory (the spec suggests 4 MiB for manifests).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// Accept header for manifests: every image and index type kiln understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A manifest as fetched: the exact bytes, their digest and media type.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

/// A client for one registry endpoint (a registry or one of its mirrors).
pub struct RegistryClient {
    /// The registry name as references spell it (`docker.io`).
    name: String,
    /// The host requests go to (`registry-1.docker.io`, `mirror.example:5000`).
    host: String,
    /// Prepended to repository names (registries.conf mirrors with a path).
    repo_prefix: String,
    transport: Transport,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// Serializes token fetches so concurrent transfers share one token.
    token_fetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("creds", &self.creds)
            .finish()
    }
}

/// The API host of a registry name (Docker Hub's API lives on `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

impl RegistryClient {
    /// A client for `registry` (a reference's registry part) reached at `endpoint`
    /// (`host[:port][/prefix]`).
    pub fn new(
        registry: &str,
        endpoint: &str,
        opts: &TransportOptions,
        creds: Option<Credentials>,
    ) -> Result<RegistryClient> {
        let (host, prefix) = match endpoint.split_once('/') {
            Some((h, p)) => (h.to_string(), format!("{}/", p.trim_matches('/'))),
            None => (endpoint.to_string(), String::new()),
        };
        Ok(RegistryClient {
            name: registry.to_string(),
            transport: Transport::new(&host, opts)?,
            host,
            repo_prefix: prefix,
            creds,
            auth: Mutex::new(AuthState::default()),
            token_fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// The registry name (`docker.io`, `localhost:5000`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host requests go to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The API root. URLs are built with `https`; [`RegistryClient::send`] switches requests
    /// to this host to `http` when the transport settled on plain HTTP.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("https://{}/v2/", self.host)).expect("registry host makes a valid URL")
    }

    /// `.../v2/<prefix><repo>/<tail>`.
    pub fn url(&self, repo: &str, tail: &str) -> Url {
        self.base_url()
            .join(&format!("{}{repo}/{tail}", self.repo_prefix))
            .expect("repository path makes a valid URL")
    }

    /// Sends a request with the right credentials for `scope`, answering a 401 challenge once
    /// (Basic, or a Bearer token fetched from the realm and cached). Any status is returned.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        scope: &Scope,
        build: &(dyn Fn(RequestBuilder) -> Result<RequestBuilder> + Send + Sync),
    ) -> Result<Response> {
        let mut url = url.clone();
        if url.scheme() == "https" && self.host_matches(&url) {
            let scheme = self.transport.scheme(&self.host).await;
            if scheme == "http" {
                url.set_scheme("http").expect("http is a valid scheme");
            }
        }
        let url = &url;
        let header = self
            .auth
            .lock()
            .expect("auth lock")
            .header_for(scope, self.creds.as_ref());
        let resp = self
            .transport
            .send(method.clone(), url, build, header.as_ref())
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(challenge) = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(auth::parse_challenge)
        else {
            return Ok(resp);
        };
        let header = self.authorize(&challenge, scope, header).await?;
        if header.is_none() {
            return Ok(resp);
        }
        self.transport
            .send(method, url, build, header.as_ref())
            .await
    }

    fn host_matches(&self, url: &Url) -> bool {
        let host = url.host_str().unwrap_or("");
        let with_port = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        with_port == self.host
    }

    /// Answers `challenge`: records it and returns the header to retry with (`None` when
    /// there is nothing better to send).
    async fn authorize(
        &self,
        challenge: &Challenge,
        scope: &Scope,
        previous: Option<HeaderValue>,
    ) -> Result<Option<HeaderValue>> {
        self.auth
            .lock()
            .expect("auth lock")
            .set_challenge(challenge.clone());
        match challenge {
            Challenge::Basic => Ok(self.creds.as_ref().and_then(auth::basic_value)),
            Challenge::Bearer { realm, service } => {
                let _one_at_a_time = self.token_fetch.lock().await;
                let cached = self
                    .auth
                    .lock()
                    .expect("auth lock")
                    .header_for(scope, self.creds.as_ref());
                if cached.is_some() && cached != previous {
                    return Ok(cached);
                }
                let (header, ttl) = auth::fetch_token(
                    &self.transport,
                    &self.name,
                    realm,
                    service.as_deref(),
                    scope,
                    self.creds.as_ref(),
                )
                .await?;
                self.auth
                    .lock()
                    .expect("auth lock")
                    .cache(scope.clone(), header.clone(), ttl);
                Ok(Some(header))
            }
        }
    }

    /// Checks that the registry speaks v2 and that the credentials are accepted (`login`).
    pub async fn ping(&self) -> Result<()> {
        let url = self.base_url();
        let resp = self
            .send(Method::GET, &url, &Scope::none(), &|b| Ok(b))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Auth {
                registry: self.name.clone(),
                reason: "credentials were rejected".to_string(),
            });
        }
        errors::check(resp, &self.name, &self.name).await?;
        Ok(())
    }

    /// The repository name on this endpoint (with a mirror's prefix).
    pub(crate) fn full(&self, repo: &str) -> String {
        format!("{}{repo}", self.repo_prefix)
    }

    fn what(&self, repo: &str, reference: &str) -> String {
        let sep = if reference.contains(':') { '@' } else { ':' };
        format!("{}/{repo}{sep}{reference}", self.name)
    }

    /// Fetches a manifest by tag or digest, size-capped, and verifies its digest: against the
    /// requested digest, else against `Docker-Content-Digest` when the registry sends one.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let what = self.what(repo, reference);
        let url = self.url(repo, &format!("manifests/{reference}"));
        let resp = self
            .send(Method::GET, &url, &Scope::pull(&self.full(repo)), &|b| {
                Ok(b.header(ACCEPT, MANIFEST_ACCEPT))
            })
            .await?;
        let resp = errors::check(resp, &what, &self.name).await?;
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let bytes = read_capped(resp, MAX_MANIFEST_SIZE, &what, &url).await?;
        let want = reference.parse::<Digest>().ok().or(header_digest);
        let digest = match &want {
            Some(w) => {
                let mut h = DigestHasher::new(w.algorithm());
                h.update(&bytes);
                let actual = h.finish();
                if &actual != w {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest {what}"),
                        expected: w.clone(),
                        actual,
                    });
                }
                if w.algorithm() == crate::digest::Algorithm::Sha256 {
                    actual
                } else {
                    Digest::of(&bytes)
                }
            }
            None => Digest::of(&bytes),
        };
        let media_type = match crate::spec::ManifestKind::parse(&bytes, content_type.as_deref())
            .map_err(|e| Error::invalid(format!("manifest {what}"), e.to_string()))?
        {
            crate::spec::ManifestKind::Image(m) => m
                .media_type
                .clone()
                .or(content_type.filter(|c| mt::is_manifest(c)))
                .unwrap_or_else(|| mt::OCI_MANIFEST.to_string()),
            crate::spec::ManifestKind::Index(i) => i
                .media_type
                .clone()
                .or(content_type.filter(|c| mt::is_index(c)))
                .unwrap_or_else(|| mt::OCI_INDEX.to_string()),
        };
        Ok(FetchedManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// Uploads a manifest under `reference` (tag or digest); returns the digest the
    /// registry reports (checked against the bytes' own digest).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let what = self.what(repo, reference);
        let url = self.url(repo, &format!("manifests/{reference}"));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let mt = media_type.to_string();
        let resp = self
            .send(
                Method::PUT,
                &url,
                &Scope::push(&self.full(repo)),
                &move |b| Ok(b.header(CONTENT_TYPE, mt.clone()).body(body.clone())),
            )
            .await?;
        errors::check(resp, &what, &self.name).await?;
        Ok(Digest::of(bytes))
    }

    /// The size of a blob the registry has, or `None`. Asks with push scope: it is the
    /// first call of an upload, so one token serves the whole push.
    pub async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let resp = self
            .send(Method::HEAD, &url, &Scope::push(&self.full(repo)), &|b| {
                Ok(b)
            })
            .await?;
        match resp.status() {
            // A HEAD response has no body, so read the header rather than the body's length.
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(errors::status_error(resp, &self.blob_what(repo, digest), &self.name).await),
        }
    }

    pub(crate) fn blob_what(&self, repo: &str, digest: &Digest) -> String {
        format!("blob {digest} in {}/{repo}", self.name)
    }

    /// Starts a blob download, from byte `offset` when resuming. Returns the response and
    /// whether the registry honoured the range.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, bool)> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let resp = self
            .send(
                Method::GET,
                &url,
                &Scope::pull(&self.full(repo)),
                &move |b| {
                    Ok(if offset > 0 {
                        b.header(reqwest::header::RANGE, format!("bytes={offset}-"))
                    } else {
                        b
                    })
                },
            )
            .await?;
        let resp = errors::check(resp, &self.blob_what(repo, digest), &self.name).await?;
        let partial = resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok((resp, partial))
    }

    /// Lists a repository's tags, following `Link` pagination.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("tags of {}/{repo}", self.name);
        let mut url = self.url(repo, "tags/list");
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let resp = self
                .send(Method::GET, &url, &Scope::pull(&self.full(repo)), &|b| {
                    Ok(b)
                })
                .await?;
            let resp = errors::check(resp, &what, &self.name).await?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|l| l.to_str().ok())
                .and_then(parse_next_link)
                .and_then(|l| url.join(&l).ok());
            let bytes = read_capped(resp, MAX_MANIFEST_SIZE, &what, &url).await?;
            let page: Tags = serde_json::from_slice(&bytes).map_err(|e| Error::json(&what, e))?;
            out.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) if n.origin() == url.origin() => url = n,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Deletes a manifest by digest (registries only delete by digest).
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<()> {
        let what = self.what(repo, &digest.to_string());
        let url = self.url(repo, &format!("manifests/{digest}"));
        let resp = self
            .send(
                Method::DELETE,
                &url,
                &Scope::delete(&self.full(repo)),
                &|b| Ok(b),
            )
            .await?;
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(Error::Registry {
                what,
                status: 405,
                message: "the registry does not allow deletes (registry storage.delete.enabled)"
                    .to_string(),
            });
        }
        errors::check(resp, &what, &self.name).await?;
        Ok(())
    }
}

/// `<url>; rel="next"` from a `Link` header.
fn parse_next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let (target, params) = part.split_once(';')?;
        if params.contains("rel=\"next\"") || params.contains("rel=next") {
            return Some(
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
        }
    }
    None
}

/// Reads a small body, refusing more than `cap` bytes.
pub(crate) async fn read_capped(
    resp: Response,
    cap: usize,
    what: &str,
    url: &Url,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Error::invalid(
            what,
            format!("response larger than {cap} bytes"),
        ));
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| super::transport::transport_error(&Method::GET, url, e))?;
        if out.len() + chunk.len() > cap {
            return Err(Error::invalid(
                what,
                format!("response larger than {cap} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_parsed() {
        assert_eq!(
            parse_next_link(r#"</v2/app/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?n=2&last=b")
        );
        assert_eq!(parse_next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn urls_include_mirror_prefix() {
        let c = RegistryClient::new(
            "docker.io",
            "localhost:5000/hub",
            &TransportOptions::default(),
            None,
        )
        .unwrap();
        assert_eq!(
            c.url("library/busybox", "manifests/latest").as_str(),
            "https://localhost:5000/v2/hub/library/busybox/manifests/latest"
        );
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
    }
}
