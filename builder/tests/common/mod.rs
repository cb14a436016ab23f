//! What the builder's integration tests share: the root check and the real sandbox. Both skip
//! with a note when the machine cannot run them, and fail instead under `CI=true`.
#![allow(dead_code)]

use std::path::Path;

use builder::sandbox::LinuxSandbox;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether the test (`what`) can run: root, or root in kiln's user namespace.
pub fn require_root(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(!ci(), "{what} needs root; CI=true forbids skipping");
    eprintln!("note: skipping {what}: needs root");
    false
}

/// The Linux sandbox with the test init binary, given root and Debian's static busybox.
pub fn sandbox() -> Option<LinuxSandbox> {
    let problem = if !rustix::process::geteuid().is_root() {
        Some("not root")
    } else if !Path::new("/bin/busybox").exists() {
        Some("/bin/busybox (busybox-static) missing")
    } else {
        None
    };
    if let Some(p) = problem {
        assert!(
            !ci(),
            "sandbox tests cannot run ({p}) and CI=true forbids skipping"
        );
        eprintln!("note: skipping sandbox test: {p}");
        return None;
    }
    Some(LinuxSandbox::new(
        env!("CARGO_BIN_EXE_kiln-sandbox-init"),
        vec![],
    ))
}
