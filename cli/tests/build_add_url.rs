//! `ADD <url>`: downloaded (not unpacked), mode 0600, mtime from Last-Modified, `--checksum`
//! enforced, and a checksummed cached rebuild makes no request.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::Kiln;
use sha2::{Digest, Sha256};

const BODY: &[u8] = b"remote content\n";

/// Serves BODY at any path, counting requests; runs until the test process ends.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n",
                BODY.len()
            );
            let _ = s.write_all(BODY);
        }
    });
    (format!("http://{addr}"), hits)
}

fn sha256() -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(BODY)))
}

#[test]
fn add_url_downloads_with_docker_metadata() {
    let (base, _) = serve();
    let k = Kiln::new();
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD {base}/files/data.txt /dir/\nADD {base}/files/other.bin /named.txt\n"),
    )
    .unwrap();
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();
    let md = fs::metadata(out.join("dir/data.txt")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!(md.mtime(), 1_700_000_000);
    assert_eq!(fs::read(out.join("named.txt")).unwrap(), BODY);
}

#[test]
fn add_url_checksum_is_enforced_and_keys_the_cache() {
    let (base, hits) = serve();
    let k = Kiln::new();
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let good = format!(
        "FROM scratch\nADD --checksum={} {base}/f.txt /f.txt\n",
        sha256()
    );
    fs::write(ctx.join("Dockerfile"), &good).unwrap();
    k.cmd(["build", "-q", "-t", "u:1"]).arg(&ctx).stdout();
    let after_first = hits.load(Ordering::SeqCst);
    assert!(after_first >= 1);
    // Cached: the checksum is the key, so no request is made.
    k.cmd(["build", "-q", "-t", "u:1"]).arg(&ctx).stdout();
    assert_eq!(hits.load(Ordering::SeqCst), after_first);

    let bad = format!(
        "FROM scratch\nADD --checksum=sha256:{} {base}/f.txt /f.txt\n",
        "0".repeat(64)
    );
    fs::write(ctx.join("Dockerfile"), bad).unwrap();
    let err = k.cmd(["build", "-q", "-t", "u:2"]).arg(&ctx).fails();
    assert!(
        err.contains("Dockerfile:2") && err.contains("checksum mismatch"),
        "{err}"
    );
    k.cmd(["inspect", "u:2"]).fails();
}
