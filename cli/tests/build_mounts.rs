//! `RUN --mount` end to end: golden cases under `testdata/build-mounts/` (see its README), and
//! behaviours that need more than one build or a look at the host: cache mounts that outlive a
//! build, secrets absent from every stored byte, rw binds that leave the context alone, and
//! errors that name the step.
//!
//! These run RUN steps in the namespace sandbox on a busybox base built from the host's static
//! `/bin/busybox` (Debian's busybox-static). They never skip when `CI=true`.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::Kiln;
use serde_json::Value;

const BASE: &str =
    "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/build-mounts")
}

/// Whether RUN can be tested here: needs the static busybox. In CI a missing one fails.
fn can_run() -> bool {
    if Path::new("/bin/busybox").is_file() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "/bin/busybox (busybox-static) is required in CI"
    );
    eprintln!("note: /bin/busybox missing; skipping RUN --mount tests");
    false
}

/// A context dir with busybox and `files`.
fn context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    for (name, content) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir.to_path_buf()
}

fn case_args(case: &Path) -> Vec<String> {
    fs::read_to_string(case.join("args"))
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.replace("{case}", &case.display().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Every entry of every layer after the two base layers, then the history.
fn layer_listing(layout: &Path) -> String {
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = read_json(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let mut out = String::new();
    for (i, layer) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .skip(2)
    {
        out.push_str(&format!("layer {i}:\n"));
        let data = fs::read(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
        let reader: Box<dyn Read> = if data.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(&data[..]))
        } else {
            Box::new(&data[..])
        };
        let mut tar = tar::Archive::new(reader);
        for e in tar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            };
            out.push_str(&format!(
                "  {kind} {:04o} {}:{} {} /{}\n",
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.size().unwrap(),
                e.path().unwrap().display()
            ));
        }
    }
    out.push_str("history:\n");
    for h in config["history"].as_array().unwrap() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        out.push_str(&format!(
            "  {} {}\n",
            if empty { "-" } else { "L" },
            h["created_by"].as_str().unwrap_or("")
        ));
    }
    out
}

/// Paths of every file under `dirs` whose bytes contain `needle`.
fn files_containing(dirs: &[&Path], needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for dir in dirs {
        for e in walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
        {
            if !e.file_type().is_file() {
                continue;
            }
            let data = fs::read(e.path()).unwrap_or_default();
            let mut plain = data.clone();
            if data.starts_with(&[0x1f, 0x8b]) {
                let mut d = Vec::new();
                if flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut d)
                    .is_ok()
                {
                    plain = d;
                }
            }
            if plain.windows(needle.len()).any(|w| w == needle) {
                hits.push(e.path().to_path_buf());
            }
        }
    }
    hits
}

#[test]
fn golden_mount_cases() {
    if !can_run() {
        return;
    }
    let update = std::env::var("KILN_UPDATE_GOLDEN").as_deref() == Ok("1");
    let mut cases: Vec<PathBuf> = fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let k = Kiln::new();
        let ctx = k.path("ctx");
        if case.join("context").is_dir() {
            let out = std::process::Command::new("cp")
                .arg("-a")
                .arg(case.join("context"))
                .arg(&ctx)
                .output()
                .unwrap();
            assert!(out.status.success(), "copying {name}'s context");
        }
        context(&ctx, &[]);
        let mut listings = Vec::new();
        for snapshotter in ["overlay", "native"] {
            let store = k.path(&format!("root-{snapshotter}"));
            let layout = k.path(&format!("oci-{snapshotter}"));
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
                .arg("--root")
                .arg(&store)
                .args([
                    "build",
                    "-q",
                    "--compression",
                    "none",
                    "--snapshotter",
                    snapshotter,
                ])
                .arg("-f")
                .arg(case.join("Dockerfile"))
                .args(case_args(case))
                .arg("--output")
                .arg(format!("type=oci,dest={},tar=false", layout.display()))
                .arg(&ctx)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .env("KILN_TEST_SECRET_ENV", "env-secret-kiln-99")
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{name} ({snapshotter}): build failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
            if let Ok(secret) = fs::read(case.join("secret")) {
                for needle in [secret.as_slice(), b"env-secret-kiln-99"] {
                    let hits = files_containing(&[&store, &layout], needle);
                    if !hits.is_empty() {
                        failures.push(format!("{name}: secret found in {hits:?}"));
                    }
                }
            }
            listings.push((snapshotter, layer_listing(&layout)));
        }
        let Some((_, first)) = listings.first() else {
            continue;
        };
        for (snapshotter, l) in &listings[1..] {
            if l != first {
                failures.push(format!(
                    "{name}: {snapshotter} differs from overlay:\n{l}\n---\n{first}"
                ));
            }
        }
        let expected = case.join("expected/layers.txt");
        if update {
            fs::create_dir_all(expected.parent().unwrap()).unwrap();
            fs::write(&expected, first).unwrap();
        } else {
            let want = fs::read_to_string(&expected).unwrap_or_default();
            if &want != first {
                failures.push(format!(
                    "{name}: layers differ from {}:\n--- got\n{first}--- want\n{want}",
                    expected.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Builds `dockerfile` in `ctx` with `args`, returning the exported rootfs (type=local).
fn build_local(k: &Kiln, ctx: &Path, dockerfile: &str, args: &[&str]) -> PathBuf {
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let out = k.path("out");
    let _ = fs::remove_dir_all(&out);
    k.cmd(["build", "-q"])
        .arg("--output")
        .arg(format!("type=local,dest={}", out.display()))
        .args_from(args)
        .arg(ctx)
        .stdout();
    out
}

trait ArgsFrom {
    fn args_from(self, args: &[&str]) -> Self;
}

impl ArgsFrom for common::TestCommand {
    fn args_from(mut self, args: &[&str]) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }
}

#[test]
fn cache_mount_contents_survive_across_builds() {
    if !can_run() {
        return;
    }
    let k = Kiln::new();
    let ctx = context(&k.path("ctx"), &[]);
    let df = format!(
        "{BASE}RUN --mount=type=cache,target=/var/cache/app,sharing=locked \
         sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /count'\n"
    );
    let first = build_local(&k, &ctx, &df, &["--no-cache"]);
    assert_eq!(fs::read_to_string(first.join("count")).unwrap().trim(), "1");
    assert!(
        !first.join("var/cache/app").exists(),
        "the target is not in the image"
    );
    let second = build_local(&k, &ctx, &df, &["--no-cache"]);
    assert_eq!(
        fs::read_to_string(second.join("count")).unwrap().trim(),
        "2"
    );
    let log = k.root.join("cache-mounts/%2Fvar%2Fcache%2Fapp/data/log");
    assert_eq!(fs::read_to_string(log).unwrap(), "run\nrun\n");
}

#[test]
fn a_missing_required_secret_fails_the_step_and_names_it() {
    if !can_run() {
        return;
    }
    let k = Kiln::new();
    let ctx = context(&k.path("ctx"), &[]);
    let df = format!("{BASE}RUN --mount=type=secret,id=npmrc,required cat /run/secrets/npmrc\n");
    fs::write(ctx.join("Dockerfile"), df).unwrap();
    let err = k.cmd(["build", "-q"]).arg(&ctx).fails();
    assert!(err.contains("Dockerfile:4:"), "{err}");
    assert!(err.contains("secret npmrc is required"), "{err}");
}

#[test]
fn bad_secret_flags_are_refused_before_building() {
    let k = Kiln::new();
    let ctx = context(&k.path("ctx"), &[("Dockerfile", "FROM scratch\n")]);
    let err = k
        .cmd(["build", "--secret", "id=a,type=ssh"])
        .arg(&ctx)
        .fails();
    assert!(err.contains("unsupported secret type \"ssh\""), "{err}");
    let missing = k.path("no-such-file");
    let err = k
        .cmd(["build", "--secret"])
        .arg(format!("id=a,src={}", missing.display()))
        .arg(&ctx)
        .fails();
    assert!(
        err.contains("secret a: reading") && err.contains("no-such-file"),
        "{err}"
    );
}

#[test]
fn bind_sources_stay_inside_the_context_and_rw_writes_are_discarded() {
    if !can_run() {
        return;
    }
    let k = Kiln::new();
    let ctx = context(&k.path("ctx"), &[("src/a.txt", "original\n")]);
    let df = format!(
        "{BASE}RUN --mount=type=bind,source=src,target=/src,rw sh -c 'echo edited > /src/a.txt; echo x > /src/new'\n"
    );
    build_local(&k, &ctx, &df, &[]);
    assert_eq!(
        fs::read_to_string(ctx.join("src/a.txt")).unwrap(),
        "original\n"
    );
    assert!(!ctx.join("src/new").exists());

    let df = format!("{BASE}RUN --mount=type=bind,source=../../../etc,target=/etc-host true\n");
    fs::write(ctx.join("Dockerfile"), df).unwrap();
    let err = k.cmd(["build", "-q"]).arg(&ctx).fails();
    assert!(
        err.contains("source \"../../../etc\" not found in the build context"),
        "{err}"
    );
}

#[test]
fn bind_from_an_image_in_the_store() {
    if !can_run() {
        return;
    }
    let k = Kiln::new();
    let ctx = context(&k.path("ctx"), &[("tool.sh", "echo from-image\n")]);
    fs::write(
        ctx.join("Dockerfile"),
        format!("{BASE}COPY tool.sh /opt/tool.sh\n"),
    )
    .unwrap();
    k.cmd(["build", "-q", "-t", "tools:1"]).arg(&ctx).stdout();
    let df = format!(
        "{BASE}RUN --mount=from=tools:1,source=/opt,target=/tools sh /tools/tool.sh > /out.txt\n"
    );
    let out = build_local(&k, &ctx, &df, &[]);
    assert_eq!(
        fs::read_to_string(out.join("out.txt")).unwrap(),
        "from-image\n"
    );
    assert!(!out.join("tools").exists());
}
