//! A tiny token server for the registry's `auth: token`: answers `GET /token?service&scope`
//! with an ES256 JWT whose `x5c` header carries a self-signed certificate the registry trusts
//! through `rootcertbundle`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SERVICE: &str = "kiln-test-registry";
pub const ISSUER: &str = "kiln-test-issuer";

pub struct TokenServer {
    pub realm: String,
    pub rootcertbundle: PathBuf,
    /// Tokens issued so far.
    pub issued: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Starts the issuer on `rt`. With `user`, those credentials get the requested access
    /// and anonymous callers get a token without access; wrong credentials get 401. With
    /// `access_token_field`, the token is sent as `access_token` (OAuth2 style).
    pub fn start(
        rt: &tokio::runtime::Runtime,
        user: Option<(String, String)>,
        access_token_field: bool,
    ) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem, cert, _) = super::self_signed(&["kiln token signer"]);
        let bundle = dir.path().join("token-ca.pem");
        std::fs::write(&bundle, &cert_pem).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(key_pem.as_bytes()).unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let issued = Arc::new(AtomicUsize::new(0));
        let count = issued.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let key = key.clone();
                let x5c = x5c.clone();
                let user = user.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let (status, body) = answer(&head, user.as_ref(), &key, &x5c, access_token_field);
                    if status == 200 {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            rootcertbundle: bundle,
            issued,
            _dir: dir,
        }
    }

    pub fn auth(&self) -> super::TokenAuth {
        super::TokenAuth {
            realm: self.realm.clone(),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            rootcertbundle: self.rootcertbundle.clone(),
        }
    }
}

fn answer(
    head: &str,
    user: Option<&(String, String)>,
    key: &jsonwebtoken::EncodingKey,
    x5c: &str,
    access_token_field: bool,
) -> (u16, String) {
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut service = String::new();
    let mut scopes = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "service" => service = v.to_string(),
            "scope" => scopes.push(v.to_string()),
            _ => {}
        }
    }
    let authz = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Authorization: ")
                .or_else(|| l.strip_prefix("authorization: "))
        })
        .map(str::trim);
    let granted = match (user, authz) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((u, p)), Some(a)) => {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            );
            if a != want {
                return (401, r#"{"details":"bad credentials"}"#.to_string());
            }
            true
        }
    };
    let mut access = Vec::new();
    if granted {
        for s in scopes.iter().flat_map(|s| s.split(' ')) {
            let parts: Vec<&str> = s.splitn(3, ':').collect();
            if parts.len() == 3 {
                let actions: Vec<&str> = parts[2].split(',').collect();
                access.push(
                    serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                );
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": user.map(|u| u.0.clone()).unwrap_or_default(), "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_id()),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![x5c.to_string()]);
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    let field = if access_token_field {
        "access_token"
    } else {
        "token"
    };
    let mut body: HashMap<&str, serde_json::Value> = HashMap::new();
    body.insert(field, token.into());
    body.insert("expires_in", 300.into());
    (200, serde_json::to_string(&body).unwrap())
}

fn rand_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
