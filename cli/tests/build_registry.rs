//! Builds meet registries: `build --push`, a FROM the store lacks pulled on demand (and offline
//! once stored), `inspect docker://` without pulling layers.

mod common;

use std::fs;

use common::{Kiln, LocalRegistry};

/// `kiln inspect` of `name` in the registry (`docker://`) and in the store.
fn inspect_remote_and_local(k: &Kiln, name: &str) -> (serde_json::Value, serde_json::Value) {
    let remote = k.cmd(["inspect", &format!("docker://{name}")]).stdout();
    let local = k.cmd(["inspect", name]).stdout();
    (
        serde_json::from_str(&remote).unwrap(),
        serde_json::from_str(&local).unwrap(),
    )
}

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
    a.cmd(["build", "-q", "--push", "-t", &name])
        .arg(&ctx)
        .stdout();

    // inspect docker:// reads config and diff_ids without pulling.
    let (rv, lv) = inspect_remote_and_local(&a, &name);
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

/// `build --push` uploads the target stage's layers while later steps still run: a RUN step
/// after a COPY waits (up to 30 s) until the registry lists the repository, which happens only
/// once a blob has been pushed there, and fails otherwise.
#[test]
fn build_push_uploads_layers_while_later_steps_run() {
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let k = Kiln::new();
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/busybox", ctx.join("busybox")).expect("busybox-static is installed");
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             RUN i=0; until wget -qO- http://{}/v2/_catalog | grep -q kiln/early; do \
             i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done\n",
            reg.host
        ),
    )
    .unwrap();
    let name = format!("{}/kiln/early:v1", reg.host);
    k.cmd(["build", "-q", "--push", "-t", &name])
        .arg(&ctx)
        .stdout();
    // The push after the build completed the image.
    let (rv, lv) = inspect_remote_and_local(&k, &name);
    assert_eq!(rv[0]["Id"], lv[0]["Id"]);
}
