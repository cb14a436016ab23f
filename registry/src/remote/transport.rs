//! HTTP transport: TLS roots, scheme choice, retries with backoff, and redirects that never
//! carry the Authorization header to another host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use crate::error::{Error, Result};

/// Attempts per request (the first try included).
const ATTEMPTS: u32 = 5;
/// Redirect hops followed.
const MAX_REDIRECTS: usize = 5;
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Settings shared by all registries kiln talks to.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Hosts (`host[:port]`) reached over plain HTTP (and HTTPS without verification).
    pub insecure_registries: Vec<String>,
    /// Directories holding `<host>/*.crt` extra CA certificates.
    pub cert_dirs: Vec<PathBuf>,
    /// First backoff delay; doubles per attempt, with jitter.
    pub retry_base: Duration,
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            insecure_registries: Vec::new(),
            cert_dirs: vec![
                PathBuf::from("/etc/docker/certs.d"),
                PathBuf::from("/etc/containers/certs.d"),
            ],
            retry_base: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

impl TransportOptions {
    /// Defaults plus `KILN_INSECURE_REGISTRIES` (comma-separated hosts).
    pub fn from_env() -> Self {
        let mut o = TransportOptions::default();
        if let Ok(v) = std::env::var("KILN_INSECURE_REGISTRIES") {
            o.insecure_registries.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        o
    }

    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure_registries.iter().any(|h| h == host)
    }
}

/// Whether `host` (`name[:port]`) is a loopback host, reached over plain HTTP like Docker does.
pub fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(n, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                host
            }
        }),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// One HTTP client per registry host.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    /// Whether plain HTTP is allowed (loopback and insecure registries): HTTPS is tried
    /// first, as Docker does, and HTTP used when the TLS connection fails.
    pub allow_http: bool,
    /// The scheme settled on for this host.
    scheme: std::sync::Arc<tokio::sync::OnceCell<&'static str>>,
    retry_base: Duration,
}

impl Transport {
    pub fn new(host: &str, opts: &TransportOptions) -> Result<Transport> {
        let insecure = opts.is_insecure(host);
        let allow_http = insecure || is_loopback(host);
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(insecure);
        for path in ca_files(&opts.cert_dirs, host) {
            let pem = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::invalid(format!("certificate {}", path.display()), e.to_string())
            })? {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| Error::Transport {
            method: "SETUP".into(),
            url: host.to_string(),
            source: e,
        })?;
        Ok(Transport {
            http,
            allow_http,
            scheme: Default::default(),
            retry_base: opts.retry_base,
        })
    }

    /// The scheme to use for `host`: `https`, or `http` when allowed and TLS fails.
    pub async fn scheme(&self, host: &str) -> &'static str {
        if !self.allow_http {
            return "https";
        }
        *self
            .scheme
            .get_or_init(|| async {
                let probe = format!("https://{host}/v2/");
                match self
                    .http
                    .get(&probe)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                {
                    Ok(_) => "https",
                    Err(e) => {
                        tracing::debug!(host, error = %e.without_url(), "no TLS; using plain HTTP");
                        "http"
                    }
                }
            })
            .await
    }

    /// Sends the request `build` makes, retrying connection errors, 5xx and 429 with backoff,
    /// and following redirects (dropping Authorization when the host changes). `build` is
    /// called once per attempt so streaming bodies are recreated.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        build: &(dyn Fn(RequestBuilder) -> Result<RequestBuilder> + Send + Sync),
        auth: Option<&HeaderValue>,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            match self.send_once(method.clone(), url, build, auth).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable || last {
                        return Ok(resp);
                    }
                    let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                    tracing::debug!(%url, %status, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) if !last && is_transient(&e) => {
                    tracing::debug!(%url, error = %e, "retrying after transport error");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        build: &(dyn Fn(RequestBuilder) -> Result<RequestBuilder> + Send + Sync),
        auth: Option<&HeaderValue>,
    ) -> Result<Response> {
        let mut url = url.clone();
        let origin = url.origin();
        let mut method = method;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = build(self.http.request(method.clone(), url.clone()))?;
            if let Some(a) = auth.filter(|_| url.origin() == origin) {
                req = req.header(AUTHORIZATION, a.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| transport_error(&method, &url, e))?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
                return Ok(resp);
            };
            url = url.join(loc).map_err(|e| {
                Error::invalid(format!("redirect from {}", redact_url(&url)), e.to_string())
            })?;
            if resp.status() == StatusCode::SEE_OTHER {
                method = Method::GET;
            }
        }
        Err(Error::invalid(
            format!("request to {}", redact_url(&url)),
            "too many redirects",
        ))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry_base * 2u32.pow(attempt.saturating_sub(1).min(6));
        let jitter = rand::thread_rng().gen_range(0.5..1.5);
        base.mul_f64(jitter)
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn is_transient(e: &Error) -> bool {
    match e {
        Error::Transport { source, .. } => {
            source.is_connect() || source.is_timeout() || source.is_request() || source.is_body()
        }
        _ => false,
    }
}

pub(crate) fn transport_error(method: &Method, url: &Url, e: reqwest::Error) -> Error {
    Error::Transport {
        method: method.to_string(),
        url: redact_url(url),
        source: e.without_url(),
    }
}

/// A URL without userinfo or query (signed object-storage URLs carry secrets in the query).
pub(crate) fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.to_string()
}

/// `*.crt` files for `host` under each certs dir, as Docker and podman read them.
fn ca_files(dirs: &[PathBuf], host: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let d: &Path = &dir.join(host);
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognized() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.2.1",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:80",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn redacted_urls_carry_no_secrets() {
        let u = Url::parse("https://user:pw@s3.example.com/blob?X-Amz-Signature=abc").unwrap();
        let r = redact_url(&u);
        assert!(
            !r.contains("pw") && !r.contains("abc") && !r.contains("user"),
            "{r}"
        );
    }

    #[test]
    fn ca_files_are_read_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let host_dir = dir.path().join("reg.example:5000");
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("ca.crt"), "x").unwrap();
        std::fs::write(host_dir.join("client.key"), "x").unwrap();
        let files = ca_files(&[dir.path().to_path_buf()], "reg.example:5000");
        assert_eq!(files, vec![host_dir.join("ca.crt")]);
        assert!(ca_files(&[dir.path().to_path_buf()], "other").is_empty());
    }

    #[test]
    fn only_loopback_and_insecure_hosts_may_fall_back_to_http() {
        let opts = TransportOptions {
            insecure_registries: vec!["reg.internal:5000".into()],
            ..TransportOptions::default()
        };
        assert!(
            Transport::new("reg.internal:5000", &opts)
                .unwrap()
                .allow_http
        );
        assert!(!Transport::new("reg.example.com", &opts).unwrap().allow_http);
        assert!(Transport::new("localhost:5000", &opts).unwrap().allow_http);
    }
}
