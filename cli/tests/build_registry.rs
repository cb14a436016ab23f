//! Builds meet registries: `build --push`, a FROM the store lacks pulled on demand (and offline
//! once stored), `inspect docker://` without pulling layers.

mod common;

use std::fs;

use common::{Kiln, LocalRegistry};

#[test]
fn push_then_build_from_the_registry_in_a_fresh_store() {
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let a = Kiln::new();
    let ctx = a.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY base.txt /\nENV FROM_BASE=1\n",
    )
    .unwrap();
    fs::write(ctx.join("base.txt"), "base\n").unwrap();
    let name = format!("{}/kiln/base:v1", reg.host);
    let err = a
        .cmd(["build", "-q", "--push", "-t", &name])
        .arg(&ctx)
        .output();
    assert!(
        err.status.success(),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    // inspect docker:// reads config and diff_ids without pulling.
    let remote = a.cmd(["inspect", &format!("docker://{name}")]).stdout();
    let local = a.cmd(["inspect", &name]).stdout();
    let rv: serde_json::Value = serde_json::from_str(&remote).unwrap();
    let lv: serde_json::Value = serde_json::from_str(&local).unwrap();
    assert_eq!(rv[0]["RootFS"], lv[0]["RootFS"]);
    assert_eq!(rv[0]["Id"], lv[0]["Id"]);
    let raw = a
        .cmd(["inspect", "--raw", &format!("docker://{name}")])
        .stdout();
    assert!(raw.contains("\"layers\""), "{raw}");

    // A fresh store pulls the base on demand.
    let b = Kiln::new();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {name}\nCOPY base.txt /again.txt\n"),
    )
    .unwrap();
    let out = b.path("out");
    b.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();
    assert!(out.join("base.txt").exists() && out.join("again.txt").exists());
    // Once stored, the tag resolves without the registry.
    drop(reg);
    b.cmd(["build", "-q", "-t", "child:1"]).arg(&ctx).stdout();
    // --pull insists on the registry, which is gone now.
    let err = b
        .cmd(["build", "-q", "--pull", "-t", "child:1"])
        .arg(&ctx)
        .fails();
    assert!(err.contains("pulling"), "{err}");
}
