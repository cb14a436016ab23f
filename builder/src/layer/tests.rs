use std::collections::BTreeMap;
use std::io::{Read, Write};

use registry::media_types::Compression;
use registry::store::Store;
use registry::Digest;

use super::writer::DeviceKind;
use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn meta(mode: u32) -> EntryMeta {
    EntryMeta {
        mode,
        uid: 1000,
        gid: 1001,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
    }
}

/// A small layer exercising every entry kind.
fn sample(store: &Store, c: Compression, epoch: Option<SourceDateEpoch>) -> LayerInfo {
    let mut w = LayerWriter::new(store, c, epoch).unwrap();
    w.add_dir("/etc", &meta(0o755)).unwrap();
    w.add_file("./etc/hosts", &meta(0o644), 9, &b"127.0.0.1"[..])
        .unwrap();
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
    w.add_file(&long, &meta(0o600), 3, &b"abc"[..]).unwrap();
    let mut caps = meta(0o755);
    caps.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0x20, 0, 0, 0],
    );
    caps.xattrs.insert("user.note".into(), b"hi".to_vec());
    w.add_file("bin/ping", &caps, 0, std::io::empty()).unwrap();
    w.add_symlink("etc/localtime", &meta(0o777), &"z".repeat(200))
        .unwrap();
    w.add_hardlink("etc/hosts2", &meta(0o644), "etc/hosts")
        .unwrap();
    w.add_device("dev/null", &meta(0o666), DeviceKind::Char, 1, 3)
        .unwrap();
    w.add_whiteout("var/lib/gone").unwrap();
    w.add_opaque("opt").unwrap();
    w.finish().unwrap()
}

fn decompressed(store: &Store, info: &LayerInfo) -> Vec<u8> {
    let mut out = Vec::new();
    open_layer(store, &info.descriptor)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn same_entries_give_the_same_digests() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (_d1, s1) = store();
        let (_d2, s2) = store();
        let a = sample(&s1, c, None);
        let b = sample(&s2, c, None);
        assert_eq!(a, b, "{c:?}");
        assert_eq!(a.descriptor.media_type, c.oci_layer_type());
    }
}

#[test]
fn diff_id_is_the_sha256_of_the_decompressed_blob() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (_d, s) = store();
        let info = sample(&s, c, None);
        let tar = decompressed(&s, &info);
        assert_eq!(Digest::of(&tar), info.diff_id, "{c:?}");
        assert_eq!(tar.len() as u64, info.uncompressed_size);
        let blob = s.read_blob(&info.descriptor.digest).unwrap();
        assert_eq!(blob.len() as u64, info.descriptor.size);
        assert_eq!(tar.len() % 512, 0);
    }
}

#[test]
fn gzip_header_has_no_mtime_or_os_noise() {
    let (_d, s) = store();
    let info = sample(&s, Compression::Gzip, None);
    let blob = s.read_blob(&info.descriptor.digest).unwrap();
    assert_eq!(&blob[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "mtime");
    assert_eq!(blob[9], 255, "os");
}

#[test]
fn entries_read_back_exactly_with_the_tar_crate() {
    let (_d, s) = store();
    let info = sample(&s, Compression::Gzip, None);
    let tar = decompressed(&s, &info);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let h = e.header().clone();
        assert_eq!(h.username_bytes(), Some(&b""[..]), "{path}");
        assert_eq!(h.groupname_bytes(), Some(&b""[..]), "{path}");
        if !path.contains(".wh.") {
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1000, 1001), "{path}");
            assert_eq!(h.mtime().unwrap(), 1_700_000_000, "{path}");
        }
        match path.as_str() {
            "etc/" => assert_eq!(h.mode().unwrap(), 0o755),
            "etc/hosts" => {
                assert_eq!(h.mode().unwrap(), 0o644);
                assert_eq!(h.device_major().unwrap(), Some(0));
                let mut body = String::new();
                e.read_to_string(&mut body).unwrap();
                assert_eq!(body, "127.0.0.1");
            }
            "bin/ping" => {
                let pax: BTreeMap<String, Vec<u8>> = e
                    .pax_extensions()
                    .unwrap()
                    .unwrap()
                    .map(|x| {
                        let x = x.unwrap();
                        (x.key().unwrap().to_string(), x.value_bytes().to_vec())
                    })
                    .collect();
                assert_eq!(
                    pax["SCHILY.xattr.security.capability"],
                    vec![1, 0, 0, 2, 0x20, 0, 0, 0]
                );
                assert_eq!(pax["SCHILY.xattr.user.note"], b"hi");
            }
            "etc/localtime" => {
                assert_eq!(h.entry_type(), tar::EntryType::Symlink);
                let target = e.link_name_bytes().unwrap().into_owned();
                assert_eq!(target, "z".repeat(200).into_bytes());
            }
            "etc/hosts2" => {
                assert_eq!(h.entry_type(), tar::EntryType::Link);
                assert_eq!(&*e.link_name_bytes().unwrap(), b"etc/hosts");
            }
            "dev/null" => {
                assert_eq!(h.entry_type(), tar::EntryType::Char);
                assert_eq!(h.device_major().unwrap(), Some(1));
                assert_eq!(h.device_minor().unwrap(), Some(3));
            }
            _ => {}
        }
        seen.push(path);
    }
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
    assert_eq!(
        seen,
        [
            "etc/",
            "etc/hosts",
            long.as_str(),
            "bin/ping",
            "etc/localtime",
            "etc/hosts2",
            "dev/null",
            "var/lib/.wh.gone",
            "opt/.wh..wh..opq",
        ]
    );
}

#[test]
fn large_ids_and_prefix_split_names_survive() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, Compression::None, None).unwrap();
    let mut m = meta(0o644);
    m.uid = 100_000_000;
    let name = format!("{}/{}", "p".repeat(120), "n".repeat(80));
    w.add_file(&name, &m, 1, &b"x"[..]).unwrap();
    let info = w.finish().unwrap();
    let tar = decompressed(&s, &info);
    // USTAR prefix/name split: the name needs no PAX record (the uid does).
    let main = tar.chunks(512).find(|b| b[156] == b'0').unwrap();
    assert_eq!(&main[345..465], "p".repeat(120).as_bytes());
    assert_eq!(&main[..80], "n".repeat(80).as_bytes());
    let mut archive = tar::Archive::new(&tar[..]);
    let mut e = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(&*e.path_bytes(), name.as_bytes());
    let uid = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| x.unwrap())
        .find(|x| x.key().unwrap() == "uid")
        .map(|x| x.value().unwrap().to_string());
    assert_eq!(uid.as_deref(), Some("100000000"));
}

#[test]
fn source_date_epoch_clamps_later_mtimes_only() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, Compression::None, Some(SourceDateEpoch(1_000))).unwrap();
    w.add_dir("new", &EntryMeta::new(0o755, 5_000)).unwrap();
    w.add_dir("old", &EntryMeta::new(0o755, 10)).unwrap();
    let info = w.finish().unwrap();
    let tar = decompressed(&s, &info);
    let mtimes: Vec<u64> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().mtime().unwrap())
        .collect();
    assert_eq!(mtimes, [1_000, 10]);
}

#[test]
fn a_reader_shorter_than_its_size_is_an_error_and_stores_nothing() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, Compression::Gzip, None).unwrap();
    let err = w
        .add_file("f", &meta(0o644), 10, &b"short"[..])
        .unwrap_err();
    assert!(matches!(err, Error::SizeChanged { actual: 5, .. }), "{err}");
    let err = w.add_file("g", &meta(0o644), 2, &b"long"[..]).unwrap_err();
    assert!(matches!(err, Error::SizeChanged { .. }), "{err}");
    drop(w);
    let blobs = std::fs::read_dir(s.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

#[test]
fn escaping_or_empty_paths_are_rejected() {
    let (_d, s) = store();
    let mut w = LayerWriter::new(&s, Compression::None, None).unwrap();
    for bad in ["../x", "a/../../x", "/", ".", ""] {
        assert!(w.add_dir(bad, &meta(0o755)).is_err(), "{bad:?}");
    }
}

#[test]
fn corrupt_stored_layer_fails_to_read() {
    let (_d, s) = store();
    let info = sample(&s, Compression::None, None);
    let path = s.blob_path(&info.descriptor.digest);
    let mut data = std::fs::read(&path).unwrap();
    data[600] ^= 1;
    std::fs::write(&path, data).unwrap();
    let mut out = Vec::new();
    let err = open_layer(&s, &info.descriptor)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert!(err.to_string().contains("failed verification"), "{err}");
}

#[test]
fn unknown_media_type_is_sniffed() {
    let (_d, s) = store();
    let info = sample(&s, Compression::Zstd, None);
    let mut desc = info.descriptor.clone();
    desc.media_type = "application/octet-stream".into();
    let mut out = Vec::new();
    open_layer(&s, &desc)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(Digest::of(&out), info.diff_id);
}

#[test]
fn archives_for_add_are_recognized_by_magic() {
    let (dir, s) = store();
    let info = sample(&s, Compression::None, None);
    let tar = decompressed(&s, &info);
    let write = |name: &str, data: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    for (name, data, format) in [
        ("a.tar", tar.clone(), ArchiveFormat::Tar),
        ("a.tgz", gz, ArchiveFormat::Gzip),
        ("a.tbz", bz, ArchiveFormat::Bzip2),
        ("a.txz", xz, ArchiveFormat::Xz),
        ("a.tzst", zst, ArchiveFormat::Zstd),
    ] {
        let p = write(name, data);
        assert_eq!(sniff_archive(&p).unwrap(), Some(format), "{name}");
        let mut out = Vec::new();
        open_archive(&p)
            .unwrap()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar, "{name}");
    }
    let gz_text = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&[b'x'; 1024]).unwrap();
        e.finish().unwrap()
    };
    for (name, data) in [
        ("notes.txt", b"just text".to_vec()),
        ("text.gz", gz_text),
        ("zeros.tar", vec![0; 1024]),
        ("empty", Vec::new()),
    ] {
        let p = write(name, data);
        assert_eq!(sniff_archive(&p).unwrap(), None, "{name}");
        assert!(open_archive(&p).unwrap().is_none(), "{name}");
    }
}

/// Half text, half noise, in 1 MiB runs: a stand-in for a real layer.
fn mixed_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if (out.len() >> 20) % 2 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(b"layer digest manifest blob ");
        }
    }
    out.truncate(len);
    out
}

#[test]
fn zstd_layers_do_not_depend_on_the_worker_count() {
    // Several zstd jobs (8 MiB each at level 3) plus a partial one, so that workers really
    // split the stream; each count is fed in different write sizes as well.
    let data = mixed_bytes(3 * (8 << 20) + 12_345);
    let compress = |workers: usize, write_size: usize| {
        let mut enc = writer::zstd_encoder_with(Vec::new(), workers).unwrap();
        for part in data.chunks(write_size) {
            enc.write_all(part).unwrap();
        }
        enc.finish().unwrap()
    };
    let one = compress(1, 1 << 20);
    assert_eq!(compress(2, 65_537), one);
    assert_eq!(compress(4, 3 << 20), one);
    assert!(one.len() < data.len());
    assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
}
