//! `ADD <url>`: a remote file downloaded into the build's scratch space, streamed and hashed,
//! checked against `--checksum` when given.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use registry::{Digest, DigestHasher};

/// A downloaded file.
#[derive(Clone, Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    /// From `Last-Modified`, else 0 (seconds since the epoch).
    pub mtime: i64,
    /// The last segment of the URL's path: the file name when the destination is a directory.
    pub name: String,
}

/// Downloads `url` into `dir`. With `expected`, a different content digest is an error.
pub fn download(url: &str, dir: &Path, expected: Option<&Digest>) -> Result<Downloaded, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "__unnamed__".to_string());
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(parsed.clone())
        .send()
        .map_err(|e| format!("downloading {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("downloading {url}: HTTP {}", response.status()));
    }
    let mtime = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let file = tempfile::Builder::new()
        .prefix("add-url-")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (file, path) = file.keep().map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(file);
    let mut hasher = DigestHasher::new(
        expected
            .map(Digest::algorithm)
            .unwrap_or(registry::digest::Algorithm::Sha256),
    );
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = response
            .read(&mut buf)
            .map_err(|e| format!("downloading {url}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let size = hasher.len();
    let digest = hasher.finish();
    if let Some(want) = expected {
        if want != &digest {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "checksum mismatch for {url}: expected {want}, got {digest}"
            ));
        }
    }
    drop(out);
    Ok(Downloaded {
        path,
        digest,
        size,
        mtime,
        name,
    })
}
