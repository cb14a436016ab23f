//! Key derivation: stability, sensitivity to every input, no ambiguity. Record format checks.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use registry::spec::History;
use registry::{Digest, Platform};

use super::record::{self, Corrupt};
use super::*;
use crate::dockerfile::Mount;

fn linux() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn base() -> Digest {
    Digest::of(b"base manifest")
}

fn root() -> CacheKey {
    CacheKey::root(Some(&base()), &linux())
}

fn mount(spec: &str) -> Mount {
    Mount::parse(spec).unwrap()
}

/// The encoding is a compatibility promise: a change here silently invalidates every user's
/// cache, so it must come with a CACHE_FORMAT_VERSION bump and a new expected value. The two
/// values were computed independently (a Python script following the module docs' encoding),
/// not copied from this implementation's output.
#[test]
fn keys_are_stable() {
    assert_eq!(
        CacheKey::root(None, &linux()).to_string(),
        "sha256:c2715cdb27afebad34f35a7fac1e4e54ef36ce780de55b9e19b228c3e4ee1e19"
    );
    let step = CacheKey::builder(&root())
        .instruction("RUN make -j4")
        .build_arg("VERSION", "1.2")
        .platform(&linux())
        .input(&Digest::of(b"src"))
        .mount(&mount("type=cache,target=/root/.cache,id=go"))
        .finish();
    assert_eq!(
        step.to_string(),
        "sha256:419cfcf675872e907287cc8d2386cb2f6c065b38a13a201b97b27a27b9afefeb"
    );
}

#[test]
fn root_key_depends_on_base_platform_and_scratch() {
    let arm: Platform = "linux/arm64".parse().unwrap();
    let armv7: Platform = "linux/arm/v7".parse().unwrap();
    let armv6: Platform = "linux/arm/v6".parse().unwrap();
    let keys = [
        CacheKey::root(None, &linux()),
        CacheKey::root(Some(&base()), &linux()),
        CacheKey::root(Some(&Digest::of(b"other")), &linux()),
        CacheKey::root(Some(&base()), &arm),
        CacheKey::root(Some(&base()), &armv7),
        CacheKey::root(Some(&base()), &armv6),
    ];
    let unique: HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "{keys:?}");
    assert_eq!(
        CacheKey::root(None, &linux()),
        CacheKey::root(None, &linux())
    );
}

/// Every input, changed alone, changes the key.
#[test]
fn every_input_changes_the_key() {
    let other_root = CacheKey::root(None, &linux());
    let b = || CacheKey::builder(&root()).instruction("RUN x");
    let variants: Vec<(&str, CacheKey)> = vec![
        ("baseline", b().finish()),
        ("no instruction", CacheKey::builder(&root()).finish()),
        (
            "parent",
            CacheKey::builder(&other_root).instruction("RUN x").finish(),
        ),
        ("instruction", b().instruction("RUN y").finish()),
        ("arg", b().build_arg("A", "1").finish()),
        ("arg value", b().build_arg("A", "2").finish()),
        ("arg name", b().build_arg("B", "1").finish()),
        ("empty arg", b().build_arg("A", "").finish()),
        ("platform", b().platform(&linux()).finish()),
        (
            "platform arm",
            b().platform(&"linux/arm64".parse().unwrap()).finish(),
        ),
        ("input", b().input(&Digest::of(b"1")).finish()),
        ("input content", b().input(&Digest::of(b"2")).finish()),
        (
            "two inputs",
            b().input(&Digest::of(b"1"))
                .input(&Digest::of(b"2"))
                .finish(),
        ),
        (
            "inputs reordered",
            b().input(&Digest::of(b"2"))
                .input(&Digest::of(b"1"))
                .finish(),
        ),
        (
            "cache mount",
            b().mount(&mount("type=cache,target=/c")).finish(),
        ),
        (
            "cache id",
            b().mount(&mount("type=cache,target=/c,id=x")).finish(),
        ),
        (
            "cache target",
            b().mount(&mount("type=cache,target=/d")).finish(),
        ),
        (
            "cache sharing",
            b().mount(&mount("type=cache,target=/c,sharing=locked"))
                .finish(),
        ),
        (
            "cache uid",
            b().mount(&mount("type=cache,target=/c,uid=1000")).finish(),
        ),
        (
            "cache mode",
            b().mount(&mount("type=cache,target=/c,mode=0700")).finish(),
        ),
        ("secret", b().mount(&mount("type=secret,id=a")).finish()),
        ("secret id", b().mount(&mount("type=secret,id=b")).finish()),
        (
            "secret target",
            b().mount(&mount("type=secret,id=a,target=/t")).finish(),
        ),
        (
            "secret env",
            b().mount(&mount("type=secret,id=a,env=TOKEN")).finish(),
        ),
        ("bind", b().mount(&mount("type=bind,target=/b")).finish()),
        (
            "bind rw",
            b().mount(&mount("type=bind,target=/b,rw")).finish(),
        ),
        (
            "bind from",
            b().mount(&mount("type=bind,target=/b,from=stage")).finish(),
        ),
        ("tmpfs", b().mount(&mount("type=tmpfs,target=/b")).finish()),
        (
            "tmpfs size",
            b().mount(&mount("type=tmpfs,target=/b,size=1m")).finish(),
        ),
        ("ssh", b().mount(&mount("type=ssh")).finish()),
    ];
    let mut seen = std::collections::HashMap::new();
    for (name, key) in &variants {
        if let Some(prev) = seen.insert(key.clone(), *name) {
            panic!("{name} and {prev} give the same key {key}");
        }
    }
}

#[test]
fn spelled_out_mount_defaults_do_not_change_the_key() {
    let k = |spec: &str| CacheKey::builder(&root()).mount(&mount(spec)).finish();
    assert_eq!(
        k("type=cache,target=/c"),
        k("type=cache,target=/c,id=/c,sharing=shared,mode=0755,uid=0,gid=0")
    );
    assert_eq!(
        k("type=secret,target=/run/secrets/tok"),
        k("type=secret,id=tok,target=/run/secrets/tok,mode=0400")
    );
    assert_ne!(k("type=cache,target=/c"), k("type=cache,target=/c,ro"));
}

#[test]
fn build_arg_order_does_not_matter_but_values_do() {
    let a = CacheKey::builder(&root())
        .build_arg("A", "1")
        .build_arg("B", "2")
        .finish();
    let b = CacheKey::builder(&root())
        .build_arg("B", "2")
        .build_arg("A", "1")
        .finish();
    assert_eq!(a, b);
    let dup = CacheKey::builder(&root())
        .build_arg("A", "1")
        .build_arg("A", "1")
        .build_arg("B", "2")
        .finish();
    assert_eq!(a, dup, "an arg reported twice is one arg");
}

/// Field boundaries are part of the encoding: moving bytes from one field to the next, or a
/// field from one list to another, gives a different key.
#[test]
fn the_encoding_is_unambiguous() {
    let r = root();
    let pairs: Vec<(CacheKey, CacheKey)> = vec![
        (
            CacheKey::builder(&r).build_arg("ab", "c").finish(),
            CacheKey::builder(&r).build_arg("a", "bc").finish(),
        ),
        (
            CacheKey::builder(&r).build_arg("a=b", "c").finish(),
            CacheKey::builder(&r).build_arg("a", "b=c").finish(),
        ),
        (
            CacheKey::builder(&r)
                .build_arg("A", "1")
                .build_arg("B", "2")
                .finish(),
            CacheKey::builder(&r).build_arg("A", "1B2").finish(),
        ),
        (
            CacheKey::builder(&r).instruction("").finish(),
            CacheKey::builder(&r).finish(),
        ),
        (
            CacheKey::builder(&r)
                .mount(&mount("type=cache,target=/a"))
                .mount(&mount("type=cache,target=/b"))
                .finish(),
            CacheKey::builder(&r)
                .mount(&mount("type=cache,target=/b"))
                .mount(&mount("type=cache,target=/a"))
                .finish(),
        ),
        (
            // The same string as an id or as a target.
            CacheKey::builder(&r)
                .mount(&mount("type=secret,id=x"))
                .finish(),
            CacheKey::builder(&r)
                .mount(&mount("type=secret,target=x"))
                .finish(),
        ),
        (
            CacheKey::builder(&r)
                .mount(&mount("type=bind,target=/x"))
                .finish(),
            CacheKey::builder(&r)
                .mount(&mount("type=tmpfs,target=/x"))
                .finish(),
        ),
    ];
    for (i, (a, b)) in pairs.iter().enumerate() {
        assert_ne!(a, b, "pair {i}");
    }
}

#[test]
fn a_chain_of_keys_depends_on_every_earlier_step() {
    let step = |parent: &CacheKey, text: &str| CacheKey::builder(parent).instruction(text).finish();
    let a1 = step(&root(), "RUN a");
    let a2 = step(&a1, "RUN b");
    let b1 = step(&root(), "RUN A");
    let b2 = step(&b1, "RUN b");
    assert_ne!(a2, b2, "an earlier change changes every later key");
    assert_eq!(a2, step(&step(&root(), "RUN a"), "RUN b"));
}

#[test]
fn key_parses_from_its_display_form() {
    let k = root();
    assert_eq!(k.to_string().parse::<CacheKey>().unwrap(), k);
    assert_eq!(k.hex().len(), 64);
    assert!("sha256:xyz".parse::<CacheKey>().is_err());
}

fn sample_record() -> CacheRecord {
    CacheRecord {
        layer: None,
        history: History {
            created_by: Some("RUN true".to_string()),
            ..History::default()
        },
        created: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        size: 0,
    }
}

#[test]
fn record_format_round_trips_and_names_its_key() {
    let k = root();
    let rec = sample_record();
    let bytes = record::encode(&k, &rec);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("kiln-cache-record/1 sha256:"), "{text}");
    assert!(text.contains(&k.to_string()), "{text}");
    assert!(
        text.contains("\"created\":\"2023-11-14T22:13:20.123456789Z\""),
        "{text}"
    );
    assert_eq!(record::decode(&k, &bytes, rec.last_used), Ok(rec.clone()));
    let other = CacheKey::root(None, &linux());
    assert_eq!(
        record::decode(&other, &bytes, rec.last_used),
        Err(Corrupt::WrongKey)
    );
}

#[test]
fn record_decode_rejects_damage() {
    let k = root();
    let rec = sample_record();
    let bytes = record::encode(&k, &rec);
    let t = rec.last_used;
    assert_eq!(record::decode(&k, b"", t), Err(Corrupt::Header));
    assert_eq!(
        record::decode(&k, b"kiln-cache-record/2 sha256:00\n{}", t),
        Err(Corrupt::Header)
    );
    for cut in [1, 10, bytes.len() / 2] {
        assert!(record::decode(&k, &bytes[..bytes.len() - cut], t).is_err());
    }
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x20;
    assert_eq!(record::decode(&k, &flipped, t), Err(Corrupt::Checksum));
    // A body with a valid checksum that is not a record.
    let body = br#"{"key":1}"#;
    let forged = [
        format!("kiln-cache-record/1 {}\n", Digest::of(body)).as_bytes(),
        body,
    ]
    .concat();
    assert!(matches!(
        record::decode(&k, &forged, t),
        Err(Corrupt::Body(_))
    ));
}

/// Regression: a reader that found a corrupt record must not delete the good record a
/// concurrent put renamed into place after the read.
#[test]
fn discarding_a_corrupt_record_spares_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheStore::open(dir.path()).unwrap();
    let k = root();
    std::fs::write(cache.record_path(&k), b"torn").unwrap();
    let stale = store::FileId::of(&std::fs::metadata(cache.record_path(&k)).unwrap());
    cache.put(&k, &sample_record()).unwrap();
    cache.discard(&k, stale);
    assert!(cache.get(&k).is_some(), "the newer record survives");
    let current = store::FileId::of(&std::fs::metadata(cache.record_path(&k)).unwrap());
    cache.discard(&k, current);
    assert!(
        !cache.record_path(&k).exists(),
        "the record that was read is removed"
    );
}
