//! Golden cases under `testdata/dockerignore/<case>/`:
//! `dockerignore` (the rules), `paths.txt` (files to create; a trailing `/` makes an empty
//! directory, `a -> b` a symlink, `a => b` a hard link) and `expected.txt` (what the build sees, directories with a trailing `/`) or
//! `error.txt` (the expected error). `KILN_UPDATE_GOLDEN=1` rewrites the expectations.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Context, Ignore};

fn testdata(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(dir)
}

fn update() -> bool {
    std::env::var_os("KILN_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Creates the paths listed in `paths.txt` under `root`.
pub(crate) fn create_paths(root: &Path, listing: &str) {
    for line in listing.lines().filter(|l| !l.is_empty()) {
        let path = root.join(line);
        if line.ends_with('/') {
            fs::create_dir_all(&path).unwrap();
        } else if let Some((link, target)) = line.split_once(" => ") {
            fs::hard_link(root.join(target), root.join(link)).unwrap();
        } else if let Some((link, target)) = line.split_once(" -> ") {
            let link = root.join(link);
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, link).unwrap();
        } else {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, line).unwrap();
        }
    }
}

fn check(case: &Path, file: &str, actual: &str) -> Result<(), String> {
    let path = case.join(file);
    if update() {
        fs::write(&path, actual).unwrap();
        return Ok(());
    }
    let expected = fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run with KILN_UPDATE_GOLDEN=1)", path.display()))?;
    if expected != actual {
        return Err(format!(
            "{}:\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        ));
    }
    Ok(())
}

fn run_case(case: &Path) -> Result<(), String> {
    let rules = fs::read(case.join("dockerignore")).unwrap();
    let parsed = Ignore::parse(
        &String::from_utf8_lossy(&rules),
        Some(Path::new(".dockerignore")),
    );
    let ignore = match parsed {
        Ok(ig) => ig,
        Err(e) => return check(case, "error.txt", &format!("{e}\n")),
    };
    let dir = tempfile::tempdir().unwrap();
    create_paths(
        dir.path(),
        &fs::read_to_string(case.join("paths.txt")).unwrap(),
    );
    let ctx = Context::with_ignore(dir.path(), ignore).unwrap();
    let mut out = String::new();
    for e in ctx.walk().map_err(|e| e.to_string())? {
        out.push_str(&e.path);
        if e.file_type.is_dir() {
            out.push('/');
        }
        out.push('\n');
    }
    check(case, "expected.txt", &out)
}

#[test]
fn dockerignore_golden_cases() {
    let root = testdata("dockerignore");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "expected 30+ cases in {}",
        root.display()
    );
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Golden COPY cases under `testdata/context/<case>/`: `paths.txt` (as above; `a -> b` makes
/// a symlink), an optional `dockerignore`, `copy.txt` (COPY arguments one per line:
/// `--exclude=<pattern>`, `--parents`, then sources) and `expected.txt` (one entry per line:
/// `dest kind`, `*` marking top-level file sources) or `error.txt`.
fn run_copy_case(case: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    create_paths(
        dir.path(),
        &fs::read_to_string(case.join("paths.txt")).unwrap(),
    );
    let ignore = match fs::read_to_string(case.join("dockerignore")) {
        Ok(text) => Ignore::parse(&text, None).map_err(|e| e.to_string())?,
        Err(_) => Ignore::default(),
    };
    let ctx = Context::with_ignore(dir.path(), ignore).unwrap();
    let mut opts = super::SourceOptions::default();
    let mut sources = Vec::new();
    for arg in fs::read_to_string(case.join("copy.txt")).unwrap().lines() {
        if let Some(p) = arg.strip_prefix("--exclude=") {
            opts.excludes.push(p.to_string());
        } else if arg == "--parents" {
            opts.parents = true;
        } else if !arg.is_empty() {
            sources.push(arg.to_string());
        }
    }
    let entries = match ctx.resolve_sources(&sources, &opts) {
        Ok(e) => e,
        Err(e) => return check(case, "error.txt", &format!("{e}\n")),
    };
    let mut out = String::new();
    for e in entries {
        let kind = match &e.kind {
            super::EntryKind::Dir => "dir".to_string(),
            super::EntryKind::File { size } => format!("file {size}"),
            super::EntryKind::Symlink { target } => format!("symlink -> {}", target.display()),
            super::EntryKind::Hardlink { target } => format!("hardlink -> {target}"),
            other => format!("{other:?}"),
        };
        let root = if e.root { " *" } else { "" };
        let host = e.host_path.strip_prefix(ctx.root()).unwrap().display();
        out.push_str(&format!("{} {kind}{root} (from {host})\n", e.dest));
    }
    check(case, "expected.txt", &out)
}

#[test]
fn copy_source_golden_cases() {
    let root = testdata("context");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected 15+ cases in {}",
        root.display()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_copy_case(c).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
