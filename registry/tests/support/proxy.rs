//! A fault-injecting HTTP/1.1 proxy in front of a registry: returns 500 or 429, drops the
//! connection halfway through a blob, or corrupts blob bytes, as told by [`Faults`].
//! One request per connection; test-sized bodies are buffered (this is test code).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default, Debug)]
pub struct Faults {
    /// The next N requests for blob GETs answer 500.
    pub blob_500: usize,
    /// The next N requests of any kind answer 429 (`Retry-After: 0`).
    pub any_429: usize,
    /// The next N blob GETs send half the body and close the connection.
    pub blob_drop: usize,
    /// When set, `blob_drop` applies only to paths containing this.
    pub drop_only: Option<String>,
    /// Every blob GET has its last byte flipped.
    pub corrupt_blobs: bool,
    /// Every manifest GET has its last byte flipped.
    pub corrupt_manifests: bool,
    /// The next N upload requests (POST/PATCH/PUT on blobs/uploads) answer 500.
    pub upload_500: usize,
    /// The next N PATCH/PUT requests with a body on blobs/uploads answer 500 (after the
    /// body is read).
    pub upload_body_500: usize,
    /// Blob GETs answer `307` to this `host:port` (same path).
    pub redirect_blobs_to: Option<String>,
    /// Requests seen: `METHOD path [range] [auth]`.
    pub log: Vec<String>,
}

pub struct FaultProxy {
    pub host: String,
    pub faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    pub fn start(rt: &tokio::runtime::Runtime, upstream: &str) -> FaultProxy {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let (f, up, me) = (faults.clone(), upstream.to_string(), host.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (f, up, me, client) = (f.clone(), up.clone(), me.clone(), client.clone());
                tokio::spawn(async move {
                    let _ = handle(sock, &f, &up, &me, &client).await;
                });
            }
        });
        FaultProxy { host, faults }
    }

    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.faults.lock().unwrap())
    }

    pub fn log(&self) -> Vec<String> {
        self.faults.lock().unwrap().log.clone()
    }
}

async fn handle(
    mut sock: TcpStream,
    faults: &Mutex<Faults>,
    upstream: &str,
    me: &str,
    client: &reqwest::Client,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] == 0x16 {
            // A TLS ClientHello (kiln probing for HTTPS): a plain HTTP server hangs up.
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("GET").to_string();
    let path = first.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    for l in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let range = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.clone());
    let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
    let is_upload = path.contains("/blobs/uploads");
    let has_auth = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    enum Action {
        Redirect(String),
        Status(u16),
        Drop,
        Forward { corrupt: bool },
    }
    let action = {
        let mut f = faults.lock().unwrap();
        f.log.push(format!(
            "{method} {path} {}{}",
            range.clone().unwrap_or_default(),
            if has_auth { " auth" } else { "" }
        ));
        if let Some(to) = f.redirect_blobs_to.clone().filter(|_| is_blob_get) {
            Action::Redirect(format!("http://{to}{path}"))
        } else if f.any_429 > 0 {
            f.any_429 -= 1;
            Action::Status(429)
        } else if is_blob_get && f.blob_500 > 0 {
            f.blob_500 -= 1;
            Action::Status(500)
        } else if is_upload
            && (method == "PATCH" || method == "PUT")
            && length > 0
            && f.upload_body_500 > 0
        {
            f.upload_body_500 -= 1;
            Action::Status(500)
        } else if is_upload && f.upload_500 > 0 {
            f.upload_500 -= 1;
            Action::Status(500)
        } else if is_blob_get
            && f.blob_drop > 0
            && f.drop_only
                .as_ref()
                .is_none_or(|p| path.contains(p.as_str()))
        {
            f.blob_drop -= 1;
            Action::Drop
        } else {
            Action::Forward {
                corrupt: (is_blob_get && f.corrupt_blobs)
                    || (method == "GET" && path.contains("/manifests/") && f.corrupt_manifests),
            }
        }
    };
    if let Action::Redirect(to) = &action {
        let resp = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    if let Action::Status(code) = action {
        let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#;
        let resp = format!(
            "HTTP/1.1 {code} Fault\r\nContent-Type: application/json\r\nRetry-After: 0\r\nratelimit-limit: 100;w=21600\r\nratelimit-remaining: 0;w=21600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    let mut req = client.request(method.parse().unwrap(), format!("http://{upstream}{path}"));
    for (k, v) in &headers {
        if !["host", "connection", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k, v);
        }
    }
    let resp = match req.body(body).send().await {
        Ok(r) => r,
        Err(_) => {
            sock.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
            return sock.shutdown().await;
        }
    };
    let status = resp.status();
    let upstream_length: u64 = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("X")
    );
    for (k, v) in resp.headers() {
        let k = k.as_str();
        if ["content-length", "connection", "transfer-encoding"].contains(&k) {
            continue;
        }
        let mut v = v.to_str().unwrap_or("").to_string();
        if k == "location" {
            v = v.replace(upstream, me);
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut data = resp.bytes().await.unwrap_or_default().to_vec();
    if let Action::Forward { corrupt: true } = action {
        if let Some(last) = data.last_mut() {
            *last ^= 0xff;
        }
    }
    let length = if method == "HEAD" {
        upstream_length as usize
    } else {
        data.len()
    };
    out.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    sock.write_all(out.as_bytes()).await?;
    if let Action::Drop = action {
        sock.write_all(&data[..data.len() / 2]).await?;
        sock.flush().await?;
        // Close without sending the rest: the client sees a short body.
        return Ok(());
    }
    if method != "HEAD" {
        sock.write_all(&data).await?;
    }
    sock.shutdown().await
}
