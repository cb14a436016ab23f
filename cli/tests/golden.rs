//! Golden folders: each `tests/golden/<case>/` holds `args` (one argument per line) and the
//! expected `stdout`, plus `stderr` and `exit` when the command should fail. Every case runs
//! against the same fixture store. Adding a case is adding a folder; `KILN_UPDATE_GOLDEN=1`
//! rewrites the expected files from what kiln prints.

mod common;

use std::fs;
use std::path::Path;

use common::Kiln;
use registry::media_types::Compression;
use registry::Platform;

/// Uncompressed linux/amd64 images: digests are the same on every host.
fn fixture() -> Kiln {
    let k = Kiln::new();
    let amd64: Platform = "linux/amd64".parse().unwrap();
    k.image_with("busybox", "bb", Compression::None, &amd64);
    k.image_with(
        "localhost:5000/team/app:v1",
        "app",
        Compression::None,
        &amd64,
    );
    k.image_with(
        "user/tool:1.0",
        "a-seed-long-enough-to-be-cut",
        Compression::None,
        &amd64,
    );
    k
}

#[test]
fn golden_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("KILN_UPDATE_GOLDEN").as_deref() == Ok("1");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 5,
        "golden cases missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for case in cases {
        let k = fixture();
        let args: Vec<String> = fs::read_to_string(case.join("args"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let out = k.cmd(&args).output();
        let got = [
            ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
            ("stderr", String::from_utf8_lossy(&out.stderr).into_owned()),
            ("exit", format!("{}\n", out.status.code().unwrap_or(-1))),
        ];
        for (file, text) in got {
            let path = case.join(file);
            // stderr and exit are only checked when the case has them (failure cases).
            let optional = file != "stdout";
            if update {
                if !optional || path.exists() || !out.status.success() {
                    fs::write(&path, &text).unwrap();
                }
                continue;
            }
            match fs::read_to_string(&path) {
                Ok(want) if want != text => failures.push(format!(
                    "{}: {file} differs\n--- want\n{want}--- got\n{text}",
                    case.display()
                )),
                Ok(_) => {}
                Err(_) if optional => {
                    if file == "exit" && !out.status.success() {
                        failures.push(format!("{}: failed unexpectedly: {text}", case.display()));
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with KILN_UPDATE_GOLDEN=1 to accept)",
        failures.join("\n")
    );
}
