//! Flattens an OCI image layout into a canonical listing of its file tree and config, so that
//! images built by kiln and by buildah from the same input can be compared line by line.
//!
//! One line per path: `<kind> <mode> <uid>:<gid> <detail> <path>`, where detail is the size and
//! content digest for files and the target for links; a file with hard links in the tree also
//! names the first path (in sorted order) of its link group, `link:/first`. Directory mtimes and
//! timestamps are left out: no two builders agree on them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    detail: String,
    xattrs: Vec<String>,
    /// Hard-link group: entries with the same id are one file.
    link: Option<u64>,
}

/// The listing of entries sorted by path, with link groups named by their first path.
fn render(files: &BTreeMap<String, Entry>) -> String {
    let mut first: BTreeMap<u64, (&str, usize)> = BTreeMap::new();
    for (path, e) in files {
        if let Some(id) = e.link {
            first.entry(id).or_insert((path, 0)).1 += 1;
        }
    }
    let mut out = String::new();
    for (path, e) in files {
        let link = match e.link.and_then(|id| first.get(&id)) {
            Some((first, members)) if *members > 1 => format!(" link:/{first}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{} {:04o} {}:{} {}{link} /{}\n",
            e.kind, e.mode, e.uid, e.gid, e.detail, path
        ));
        for x in &e.xattrs {
            out.push_str(&format!("  xattr {x}\n"));
        }
    }
    out
}

/// The manifest and config of the image a layout's index.json points at (the first entry, or the
/// one tagged `tag`).
pub fn manifest_and_config(layout: &Path, tag: Option<&str>) -> (Value, Value) {
    let index: Value = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("index has manifests");
    let desc = manifests
        .iter()
        .find(|m| match tag {
            None => true,
            Some(t) => {
                let name = m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("");
                name == t || name.ends_with(&format!(":{t}"))
            }
        })
        .expect("tag in index");
    let mut manifest = read_json(&blob(layout, desc["digest"].as_str().unwrap()));
    if manifest.get("manifests").is_some() {
        let d = manifest["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        manifest = read_json(&blob(layout, &d));
    }
    let config = read_json(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    (manifest, config)
}

/// The flattened file tree of an image in an OCI layout.
pub fn tree(layout: &Path, tag: Option<&str>) -> String {
    let (manifest, _) = manifest_and_config(layout, tag);
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut links = 0;
    for layer in manifest["layers"].as_array().unwrap() {
        let path = blob(layout, layer["digest"].as_str().unwrap());
        apply_layer(&mut files, decompress(&path), &mut links);
    }
    render(&files)
}

/// The config fields a Dockerfile controls, normalized for comparison (buildah's own label
/// dropped).
pub fn config_summary(layout: &Path, tag: Option<&str>) -> Value {
    let (_, config) = manifest_and_config(layout, tag);
    summarize_config(&config)
}

/// [`config_summary`] of an image config document (`{"config": {...}, "architecture": ...}`).
pub fn summarize_config(config: &Value) -> Value {
    let c = &config["config"];
    let mut labels = c["Labels"].clone();
    if let Some(m) = labels.as_object_mut() {
        m.remove("io.buildah.version");
    }
    let pick = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let empty_to_null = |v: Value| match &v {
        Value::Object(m) if m.is_empty() => Value::Null,
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        _ => v,
    };
    let mut out = serde_json::Map::new();
    for k in [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "StopSignal",
        "Healthcheck",
        "OnBuild",
        "Shell",
    ] {
        out.insert(k.to_string(), empty_to_null(pick(k)));
    }
    out.insert("Labels".to_string(), empty_to_null(labels));
    out.insert("architecture".into(), config["architecture"].clone());
    out.insert("os".into(), config["os"].clone());
    Value::Object(out)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(alg).join(hex)
}

fn decompress(path: &Path) -> Box<dyn Read> {
    let mut head = [0u8; 4];
    let n = fs::File::open(path).unwrap().read(&mut head).unwrap();
    let f = fs::File::open(path).unwrap();
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(f).unwrap())
    } else {
        Box::new(f)
    }
}

/// A path as text, with each byte that is not UTF-8 shown as `\xNN` (names are bytes, and
/// two different invalid names must not print alike).
pub fn printable(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn clean(path: &Path) -> String {
    let s = printable(path);
    let s = s.trim_start_matches("./").trim_start_matches('/');
    s.trim_end_matches('/').to_string()
}

/// Applies one layer tar; `links` counts the hard-link groups made so far.
fn apply_layer(files: &mut BTreeMap<String, Entry>, reader: Box<dyn Read>, links: &mut u64) {
    let mut archive = tar::Archive::new(reader);
    let mut added: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = clean(&entry.path().unwrap());
        if path.is_empty() {
            continue;
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            files.retain(|p, _| !p.starts_with(&dir) || p.len() == dir.len());
            continue;
        }
        if let Some(victim) = name.strip_prefix(".wh.") {
            let victim = format!("{dir}{victim}");
            files.retain(|p, _| p != &victim && !p.starts_with(&format!("{victim}/")));
            continue;
        }
        let header = entry.header().clone();
        let mut xattrs = Vec::new();
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(k) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.push(format!("{k}={}", hex::encode(ext.value_bytes())));
                }
            }
        }
        xattrs.sort();
        let etype = header.entry_type();
        let (kind, detail) = if etype.is_dir() {
            ('d', "-".to_string())
        } else if etype.is_symlink() {
            let t = entry.link_name().unwrap().unwrap();
            ('l', format!("-> {}", printable(&t)))
        } else if etype.is_hard_link() {
            let target = clean(&entry.link_name().unwrap().unwrap());
            let t = added
                .get_mut(&target)
                .or_else(|| files.get_mut(&target))
                .unwrap_or_else(|| panic!("hardlink {path} to missing {target}"));
            if t.link.is_none() {
                *links += 1;
                t.link = Some(*links);
            }
            let t = t.clone();
            added.insert(path, t);
            continue;
        } else if etype.is_file() {
            let mut h = Sha256::new();
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).unwrap();
            h.update(&buf);
            (
                'f',
                format!("{} {}", buf.len(), &hex::encode(h.finalize())[..16]),
            )
        } else if etype.is_character_special() || etype.is_block_special() {
            let c = if etype.is_character_special() {
                'c'
            } else {
                'b'
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            (c, format!("{major},{minor}"))
        } else if etype.is_fifo() {
            ('p', "-".to_string())
        } else {
            continue;
        };
        let e = Entry {
            kind,
            mode: header.mode().unwrap() & 0o7777,
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            detail,
            xattrs,
            link: None,
        };
        if kind != 'd' {
            // A non-directory replaces a directory and everything under it.
            let prefix = format!("{path}/");
            files.retain(|p, _| !p.starts_with(&prefix));
        }
        added.insert(path, e);
    }
    files.extend(added);
}

/// The same listing for an unpacked root filesystem (what umoci or buildah made of a layout),
/// so that their reading of kiln's layers can be compared with kiln's own.
pub fn dir_tree(root: &Path) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut groups: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for p in walkdir::WalkDir::new(root).min_depth(1) {
        let p = p.unwrap().into_path();
        let m = fs::symlink_metadata(&p).unwrap();
        let t = m.file_type();
        let (kind, detail) = if t.is_dir() {
            ('d', "-".to_string())
        } else if t.is_symlink() {
            let target = fs::read_link(&p).unwrap();
            ('l', format!("-> {}", printable(&target)))
        } else if t.is_file() {
            let data = fs::read(&p).unwrap();
            let h = hex::encode(Sha256::digest(&data));
            ('f', format!("{} {}", data.len(), &h[..16]))
        } else if t.is_char_device() || t.is_block_device() {
            let c = if t.is_char_device() { 'c' } else { 'b' };
            let (major, minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
            (c, format!("{major},{minor}"))
        } else if t.is_fifo() {
            ('p', "-".to_string())
        } else {
            continue;
        };
        let link = (!t.is_dir() && m.nlink() > 1).then(|| {
            let next = groups.len() as u64;
            *groups.entry((m.dev(), m.ino())).or_insert(next)
        });
        let entry = Entry {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid() as u64,
            gid: m.gid() as u64,
            detail,
            xattrs: xattrs(&p),
            link,
        };
        files.insert(clean(p.strip_prefix(root).unwrap()), entry);
    }
    render(&files)
}

/// `name=hex(value)` for each xattr of `p` (not following symlinks), sorted.
fn xattrs(p: &Path) -> Vec<String> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(p, &mut names) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<String> = names[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).to_string();
            let mut value = vec![0u8; 4096];
            let len = rustix::fs::lgetxattr(p, name.as_str(), &mut value).unwrap();
            format!("{name}={}", hex::encode(&value[..len]))
        })
        .collect();
    out.sort();
    out
}
