//! Streaming blob transfers: downloads into the store (verified, resumable with `Range`) and
//! uploads from the store or from another registry, never holding a whole blob in memory.

use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, StatusCode};
use url::Url;

use super::auth::Scope;
use super::client::RegistryClient;
use super::errors;
use super::progress::{Event, SharedProgress};
use super::transport::transport_error;
use crate::descriptor::Descriptor;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// Attempts to finish one blob (each resuming where the last stopped when possible).
const BLOB_ATTEMPTS: u32 = 5;
/// Blobs up to this size are uploaded with a single PUT.
const MONOLITHIC_MAX: u64 = 1 << 20;
/// Read buffer for uploads from disk.
const UPLOAD_BUF: usize = 1 << 20;

/// Downloads `desc` from `repo` into the store unless it is there already. The bytes are
/// hashed while written and committed only if digest and size match; a dropped connection
/// resumes with `Range` from the bytes already received.
pub async fn download(
    client: &RegistryClient,
    repo: &str,
    desc: &Descriptor,
    store: &Store,
    progress: &SharedProgress,
) -> Result<()> {
    let digest = &desc.digest;
    if store.has_blob(digest) {
        progress.event(Event::Skipped {
            digest: digest.clone(),
            mounted_from: None,
        });
        return Ok(());
    }
    progress.event(Event::Started {
        digest: digest.clone(),
        size: desc.size,
    });
    let ingest = store.root().join("ingest");
    let mut writer = store.blob_writer()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let offset = writer.written();
        let (resp, partial) = client.get_blob(repo, digest, offset).await?;
        if offset > 0 && !partial {
            // The server ignored the range: start over.
            writer = store.blob_writer()?;
        }
        let url = resp.url().clone();
        let mut stream = resp.bytes_stream();
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    if writer.written() + c.len() as u64 > desc.size {
                        return Err(Error::SizeMismatch {
                            digest: digest.clone(),
                            expected: desc.size,
                            actual: writer.written() + c.len() as u64,
                        });
                    }
                    writer.write_all(&c).at(&ingest)?;
                    progress.event(Event::Bytes {
                        digest: digest.clone(),
                        n: c.len() as u64,
                    });
                }
                Err(e) => {
                    failure = Some(transport_error(&Method::GET, &url, e));
                    break;
                }
            }
        }
        match failure {
            None if writer.written() < desc.size && attempt < BLOB_ATTEMPTS => {
                // Connection closed early without an error from the stream: resume.
            }
            None => break,
            Some(e) if attempt >= BLOB_ATTEMPTS => return Err(e),
            Some(e) => tracing::debug!(%digest, error = %e, "blob download interrupted"),
        }
        progress.event(Event::Retrying {
            digest: digest.clone(),
            offset: writer.written(),
        });
    }
    writer
        .commit(Some((digest, desc.size)))
        .map_err(|e| match e {
            Error::DigestMismatch {
                expected, actual, ..
            } => Error::DigestMismatch {
                what: client.blob_what(repo, digest),
                expected,
                actual,
            },
            other => other,
        })?;
    progress.event(Event::Done {
        digest: digest.clone(),
    });
    Ok(())
}

/// Where upload bytes come from.
pub enum UploadSource<'a> {
    /// A blob in the local store.
    Store(&'a Store),
    /// A blob streamed from another registry (verified by the destination registry's digest
    /// check and by its length).
    Remote {
        client: &'a RegistryClient,
        repo: &'a str,
    },
}

/// How a blob reached the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uploaded {
    Exists,
    Mounted { from: String },
    Pushed,
}

/// Makes sure `repo` has blob `desc`: skipped when present, mounted from `mount_from` (a
/// repository of the same registry) when the registry allows, else uploaded.
pub async fn upload(
    client: &RegistryClient,
    repo: &str,
    desc: &Descriptor,
    source: UploadSource<'_>,
    mount_from: Option<&str>,
    progress: &SharedProgress,
) -> Result<Uploaded> {
    let digest = &desc.digest;
    if client.head_blob(repo, digest).await?.is_some() {
        progress.event(Event::Skipped {
            digest: digest.clone(),
            mounted_from: None,
        });
        return Ok(Uploaded::Exists);
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match upload_once(client, repo, desc, &source, mount_from, progress).await {
            Ok(u) => return Ok(u),
            Err(e) if attempt < 3 && retryable(&e) => {
                tracing::debug!(%digest, error = %e, "blob upload failed; starting over");
                progress.event(Event::Retrying {
                    digest: digest.clone(),
                    offset: 0,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether starting the upload over may help: not for auth failures or bad content.
fn retryable(e: &Error) -> bool {
    !matches!(
        e,
        Error::Unauthorized { .. }
            | Error::Denied { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::BlobNotFound(_)
            | Error::Auth { .. }
            | Error::RateLimited { .. }
            | Error::Io { .. }
    )
}

async fn upload_once(
    client: &RegistryClient,
    repo: &str,
    desc: &Descriptor,
    source: &UploadSource<'_>,
    mount_from: Option<&str>,
    progress: &SharedProgress,
) -> Result<Uploaded> {
    let digest = &desc.digest;
    let what = client.blob_what(repo, digest);
    let full = client.full(repo);
    let mut start = client.url(repo, "blobs/uploads/");
    let scope = match mount_from {
        Some(from) if from != repo => {
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", &client.full(from));
            Scope::push_mount(&full, &client.full(from))
        }
        _ => Scope::push(&full),
    };
    let resp = client
        .send(Method::POST, &start, &scope, &|b| {
            Ok(b.header(CONTENT_LENGTH, "0"))
        })
        .await?;
    if resp.status() == StatusCode::CREATED {
        if let Some(from) = mount_from {
            progress.event(Event::Skipped {
                digest: digest.clone(),
                mounted_from: Some(from.to_string()),
            });
            return Ok(Uploaded::Mounted {
                from: from.to_string(),
            });
        }
    }
    if resp.status() != StatusCode::ACCEPTED {
        return Err(errors::status_error(resp, &what, client.name()).await);
    }
    let mut location = session_location(&resp, &start)?;
    progress.event(Event::Started {
        digest: digest.clone(),
        size: desc.size,
    });
    let scope = Scope::push(&full);
    let size = desc.size;
    // A store blob is reopened for every attempt, so the transport can retry a failed
    // PATCH/PUT; a blob streamed from another registry can be sent once per session (a
    // failure restarts the whole upload, fetching the source again).
    let remote_body = match source {
        UploadSource::Store(_) => None,
        UploadSource::Remote { .. } => {
            Some(Mutex::new(Some(open_body(source, desc, progress).await?)))
        }
    };
    let take_body = || -> Result<Body> {
        match (&remote_body, source) {
            (None, UploadSource::Store(store)) => Ok(store_body(store, desc, progress)?),
            (Some(once), _) => once
                .lock()
                .expect("body lock")
                .take()
                .ok_or_else(|| Error::invalid(&what, "upload body cannot be replayed")),
            (None, UploadSource::Remote { .. }) => unreachable!("remote bodies are prepared above"),
        }
    };
    if size > MONOLITHIC_MAX {
        let resp = client
            .send(Method::PATCH, &location, &scope, &|b| {
                Ok(b.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .header(CONTENT_RANGE, format!("0-{}", size - 1))
                    .body(take_body()?))
            })
            .await?;
        let resp = errors::check(resp, &what, client.name()).await?;
        location = session_location(&resp, &location)?;
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = client
            .send(Method::PUT, &location, &scope, &|b| {
                Ok(b.header(CONTENT_LENGTH, "0"))
            })
            .await?;
        errors::check(resp, &what, client.name()).await?;
    } else {
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = client
            .send(Method::PUT, &location, &scope, &|b| {
                Ok(b.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(take_body()?))
            })
            .await?;
        errors::check(resp, &what, client.name()).await?;
    }
    progress.event(Event::Done {
        digest: digest.clone(),
    });
    Ok(Uploaded::Pushed)
}

/// The upload session URL from `Location` (possibly relative).
fn session_location(resp: &reqwest::Response, base: &Url) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| Error::invalid("blob upload response", "no Location header"))?;
    base.join(loc)
        .map_err(|e| Error::invalid("blob upload Location", e.to_string()))
}

/// A streaming body over a store blob, reporting bytes as they go.
fn store_body(store: &Store, desc: &Descriptor, progress: &SharedProgress) -> Result<Body> {
    let file = tokio::fs::File::from_std(store.open_blob(&desc.digest)?);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, UPLOAD_BUF);
    Ok(counted_body(Box::pin(stream), desc, progress))
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

fn counted_body(stream: ByteStream, desc: &Descriptor, progress: &SharedProgress) -> Body {
    let digest = desc.digest.clone();
    let progress = progress.clone();
    Body::wrap_stream(stream.inspect_ok(move |c| {
        progress.event(Event::Bytes {
            digest: digest.clone(),
            n: c.len() as u64,
        })
    }))
}

/// A body streamed from another registry's copy of the blob.
async fn open_body(
    source: &UploadSource<'_>,
    desc: &Descriptor,
    progress: &SharedProgress,
) -> Result<Body> {
    match source {
        UploadSource::Store(store) => store_body(store, desc, progress),
        UploadSource::Remote { client, repo } => {
            let (resp, _) = client.get_blob(repo, &desc.digest, 0).await?;
            if resp.content_length().is_some_and(|n| n != desc.size) {
                return Err(Error::SizeMismatch {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: resp.content_length().unwrap_or(0),
                });
            }
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            Ok(counted_body(Box::pin(stream), desc, progress))
        }
    }
}
