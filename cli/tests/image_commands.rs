//! `kiln images|inspect|history|tag|rmi|save|load` against temporary stores.

mod common;

use common::Kiln;
use registry::image::LocalImage;
use registry::Platform;

fn id_of(k: &Kiln, name: &str) -> String {
    let store = k.store();
    let r = registry::reference::Reference::parse(name).unwrap();
    LocalImage::open_ref(&store, &r, &Platform::host())
        .unwrap()
        .id()
        .to_string()
}

#[test]
fn images_lists_tags_as_a_table() {
    let k = Kiln::new();
    k.image("busybox", "a");
    k.image("localhost:5000/team/app:v1", "b");
    let out = k.cmd(["images"]).stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{out}");
    for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{out}");
    }
    assert_eq!(lines.len(), 3, "{out}");
    assert!(out.contains("busybox "), "{out}");
    assert!(out.contains("localhost:5000/team/app "), "{out}");
    let short = &id_of(&k, "busybox")["sha256:".len()..][..12];
    assert!(out.contains(short), "{out}");
    assert!(out.contains(" ago"), "{out}");
}

#[test]
fn images_quiet_and_filter() {
    let k = Kiln::new();
    k.image("app:v1", "a");
    k.image("app:v2", "a");
    k.image("other", "b");
    let ids = k.cmd(["images", "-q"]).stdout();
    assert_eq!(
        ids.lines().count(),
        2,
        "same image under two tags is one ID: {ids}"
    );
    assert!(ids.lines().all(|l| l.len() == 12));
    let out = k.cmd(["images", "app"]).stdout();
    assert_eq!(out.lines().count(), 3, "{out}");
    let out = k.cmd(["images", "app:v2"]).stdout();
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn images_format_json_is_one_object_per_line() {
    let k = Kiln::new();
    k.image("user/app:tag", "a");
    let out = k.cmd(["images", "--format", "json"]).stdout();
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "user/app");
    assert_eq!(v["Tag"], "tag");
    assert_eq!(v["CreatedAt"], "2024-01-02 03:04:05 +0000 UTC");
    assert_eq!(v["ID"].as_str().unwrap().len(), 12);
    let out = k
        .cmd(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .stdout();
    assert_eq!(out, "user/app:tag\n");
}

#[test]
fn inspect_is_shaped_like_docker() {
    let k = Kiln::new();
    k.image("busybox", "a");
    let out = k.cmd(["inspect", "busybox"]).stdout();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id_of(&k, "busybox"));
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    assert!(img["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with("busybox@sha256:"));
    assert_eq!(img["Created"], "2024-01-02T03:04:05Z");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Architecture"], Platform::host().architecture);
    assert_eq!(img["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(img["Config"]["Env"][1], "SEED=a");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    for key in ["Parent", "Comment", "Author", "Size", "Metadata"] {
        assert!(img.get(key).is_some(), "{key} missing");
    }
    // By ID prefix, full ID and with a template.
    let id = id_of(&k, "busybox");
    let by_prefix = k
        .cmd(["inspect", "--format", "{{.Id}}", &id[7..17]])
        .stdout();
    assert_eq!(by_prefix.trim(), id);
    let by_id = k.cmd(["inspect", "-f", "{{json .RepoTags}}", &id]).stdout();
    assert_eq!(by_id.trim(), r#"["busybox:latest"]"#);
}

#[test]
fn inspect_of_a_missing_image_fails_naming_it() {
    let k = Kiln::new();
    k.image("busybox", "a");
    let out = k.cmd(["inspect", "busybox", "nosuch:v9"]).output();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nosuch:v9"), "{stderr}");
    // The images that were found are still printed.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn history_lists_newest_first() {
    let k = Kiln::new();
    k.image("app", "hist");
    let out = k.cmd(["history", "app"]).stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{out}");
    assert!(lines[0].contains("CREATED BY") && lines[0].contains("COMMENT"));
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].contains("CMD [\"/bin/sh\"]"), "{out}");
    assert!(lines[1].contains("0B"), "{out}");
    assert!(lines[2].starts_with("<missing>"), "{out}");
    let short = &id_of(&k, "app")[7..19];
    assert!(lines[1].starts_with(short), "{out}");
    let json = k
        .cmd(["history", "--format", "json", "--no-trunc", "app"])
        .stdout();
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2]["CreatedBy"],
        "COPY hist/file-0.txt /hist/file-0.txt # buildkit"
    );
    assert_eq!(rows[2]["Comment"], "buildkit.dockerfile.v0");
    assert_eq!(rows[0]["ID"], id_of(&k, "app"));
}

#[test]
fn history_truncates_created_by_unless_asked() {
    let k = Kiln::new();
    k.image("app", "a-rather-long-seed-name-to-overflow");
    let out = k.cmd(["history", "app"]).stdout();
    assert!(out.contains('…'), "{out}");
    let out = k.cmd(["history", "--no-trunc", "app"]).stdout();
    assert!(!out.contains('…'), "{out}");
}

#[test]
fn tag_adds_a_name_and_refuses_digests() {
    let k = Kiln::new();
    k.image("app:v1", "a");
    k.cmd(["tag", "app:v1", "localhost:5000/app:v2"]).stdout();
    let out = k
        .cmd(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .stdout();
    assert!(out.contains("localhost:5000/app:v2"), "{out}");
    assert_eq!(id_of(&k, "app:v1"), id_of(&k, "localhost:5000/app:v2"));
    let digest = format!("app@{}", registry::Digest::of(b"x"));
    let err = k.cmd(["tag", "app:v1", &digest]).fails();
    assert!(err.contains("digest"), "{err}");
    let err = k.cmd(["tag", "missing:v1", "x"]).fails();
    assert!(err.contains("missing:v1"), "{err}");
    let err = k.cmd(["tag", "app:v1", "Bad/Name:x:y"]).fails();
    assert!(err.contains("Bad/Name:x:y"), "{err}");
}

#[test]
fn rmi_untags_and_needs_force_for_an_id_with_several_names() {
    let k = Kiln::new();
    k.image("app:v1", "a");
    k.image("app:v2", "a");
    k.image("solo", "b");
    let out = k.cmd(["rmi", "app:v1"]).stdout();
    assert_eq!(out, "Untagged: app:v1\n");
    k.cmd(["tag", "app:v2", "app:v3"]).stdout();
    let id = id_of(&k, "app:v2");
    let err = k.cmd(["rmi", &id[7..19]]).fails();
    assert!(err.contains("must be forced"), "{err}");
    let out = k.cmd(["rmi", "-f", &id[7..19]]).stdout();
    assert!(
        out.contains("Untagged: app:v2") && out.contains("Untagged: app:v3"),
        "{out}"
    );
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    let err = k.cmd(["rmi", "app:v1"]).fails();
    assert!(err.contains("app:v1"), "{err}");
    let remaining = k.cmd(["images", "--format", "{{.Repository}}"]).stdout();
    assert_eq!(remaining, "solo\n");
}

#[test]
fn save_then_load_into_another_store() {
    let k = Kiln::new();
    k.image("app:v1", "a");
    k.image("quay.io/x/y:z", "b");
    let file = k.path("out.tar");
    k.cmd(["save", "-o"])
        .arg(&file)
        .arg("app:v1")
        .arg("quay.io/x/y:z")
        .stdout();
    let other = Kiln::new();
    let out = other.cmd(["load", "-i"]).arg(&file).stdout();
    assert!(out.contains("Loaded image: app:v1\n"), "{out}");
    assert!(out.contains("Loaded image: quay.io/x/y:z\n"), "{out}");
    assert_eq!(id_of(&k, "app:v1"), id_of(&other, "app:v1"));
    // Through stdin/stdout too.
    let bytes = k.cmd(["save", "app:v1"]).output().stdout;
    let third = Kiln::new();
    let out = third.cmd(["load"]).stdin(bytes).stdout();
    assert_eq!(out, "Loaded image: app:v1\n");
    assert!(third.store().fsck().unwrap().is_ok());
}

#[test]
fn save_of_a_missing_image_fails_and_writes_nothing() {
    let k = Kiln::new();
    k.image("app", "a");
    let file = k.path("out.tar");
    let err = k
        .cmd(["save", "-o"])
        .arg(&file)
        .arg("app")
        .arg("ghost")
        .fails();
    assert!(err.contains("ghost"), "{err}");
    assert!(!file.exists());
    assert_eq!(
        std::fs::read_dir(k.dir.path()).unwrap().count(),
        1,
        "only the store"
    );
}

#[test]
fn load_of_garbage_fails_naming_the_file() {
    let k = Kiln::new();
    let file = k.path("junk.tar");
    std::fs::write(&file, b"this is not a tar archive at all").unwrap();
    let err = k.cmd(["load", "-i"]).arg(&file).fails();
    assert!(err.contains("junk.tar"), "{err}");
    assert!(k.cmd(["images", "-q"]).stdout().is_empty());
}

#[test]
fn processes_racing_tags_lose_none() {
    let k = Kiln::new();
    k.image("base", "a");
    let children: Vec<_> = (0..8)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
                .arg("--root")
                .arg(&k.root)
                .args(["tag", "base", &format!("race:{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let out = k.cmd(["images", "race", "--format", "{{.Tag}}"]).stdout();
    assert_eq!(out.lines().count(), 8, "{out}");
    assert!(k.store().fsck().unwrap().is_ok());
}

#[test]
fn root_comes_from_kiln_root_env() {
    let k = Kiln::new();
    k.image("app", "a");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_ROOT", &k.root)
        .args(["images", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn unknown_command_exits_non_zero() {
    let k = Kiln::new();
    k.cmd(["frobnicate"]).fails();
}
