//! `kiln login/push/tags/pull/logout` end to end against the real `docker-registry` with
//! htpasswd auth.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::store::{testing, Store};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

struct Registry(Child, String);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_registry(dir: &Path, user: &str, pass: &str) -> Option<Registry> {
    if !Path::new(REGISTRY_BIN).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{REGISTRY_BIN} is required when CI=true"
        );
        eprintln!("note: {REGISTRY_BIN} not installed; skipping");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", user, pass])
        .output()
        .unwrap();
    std::fs::write(dir.join("htpasswd"), htpasswd.stdout).unwrap();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("registry.log")).unwrap();
    let child = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let reg = Registry(child, host);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&reg.1).is_err() {
        assert!(Instant::now() < deadline, "registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(reg)
}

fn kiln(dir: &Path, root: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["--root", &dir.join(root).display().to_string()])
        .args(args)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("KILN_REGISTRY_MIRRORS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn login_push_tags_pull_logout_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = start_registry(dir.path(), "alice", "pa55word") else {
        return;
    };
    let store = Store::open(dir.path().join("src")).unwrap();
    let desc = testing::make_image(&store, "cli", 2, Compression::Gzip).unwrap();
    let name = format!("{}/team/app:v1", reg.1);
    store.tag(&Reference::parse(&name).unwrap(), &desc).unwrap();

    let out = kiln(dir.path(), "src", &["push", "-q", &name], "");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("team/app") && err.contains("kiln login"),
        "{err}"
    );

    let out = kiln(
        dir.path(),
        "src",
        &["login", "-u", "alice", "--password-stdin", &reg.1],
        "wrong\n",
    );
    assert!(!out.status.success(), "a wrong password is refused");
    assert!(!text(&out.stderr).contains("wrong"), "no secret in errors");

    let out = kiln(
        dir.path(),
        "src",
        &["login", "-u", "alice", "--password-stdin", &reg.1],
        "pa55word\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let config = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
    assert!(config.contains(&reg.1) && !config.contains("pa55word"));

    let out = kiln(dir.path(), "src", &["push", &name], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let size = store.read_blob(&desc.digest).unwrap().len();
    assert_eq!(
        text(&out.stdout),
        format!("v1: digest: {} size: {size}\n", desc.digest)
    );
    assert!(
        text(&out.stderr).contains("Pushed"),
        "per-layer progress lines"
    );

    let out = kiln(
        dir.path(),
        "src",
        &["tags", &format!("{}/team/app", reg.1)],
        "",
    );
    assert_eq!(text(&out.stdout), "v1\n", "{}", text(&out.stderr));

    let out = kiln(dir.path(), "dst", &["pull", "-q", &name], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{name}\n"));
    assert!(
        text(&out.stderr).is_empty(),
        "--quiet: {}",
        text(&out.stderr)
    );
    let dst = Store::open(dir.path().join("dst")).unwrap();
    assert_eq!(
        dst.resolve(&Reference::parse(&name).unwrap())
            .unwrap()
            .digest,
        desc.digest
    );

    let out = kiln(dir.path(), "src", &["logout", &reg.1], "");
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {}\n", reg.1)
    );
    let out = kiln(dir.path(), "src", &["logout", &reg.1], "");
    assert_eq!(text(&out.stdout), format!("Not logged in to {}\n", reg.1));
    let out = kiln(dir.path(), "dst2", &["pull", "-q", &name], "");
    assert!(!out.status.success());
}

/// On a terminal, `kiln login SERVER` asks for the username and, without echo, the password.
/// Driven through a pseudo-terminal (python3's pty module) that answers each prompt in turn.
#[test]
fn login_prompts_on_a_terminal_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = start_registry(dir.path(), "alice", "pa55word") else {
        return;
    };
    const DRIVER: &str = r#"
import os, pty, sys
def until(fd, marker, seen):
    while marker not in seen:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        seen += chunk
    return seen
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = until(fd, b"Username: ", b"")
os.write(fd, b"alice\n")
seen = until(fd, b"Password: ", seen)
os.write(fd, b"pa55word\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(["--root", &dir.path().join("r").display().to_string()])
        .args(["login", &reg.1])
        .env("DOCKER_CONFIG", dir.path().join("docker"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("python3 is needed to drive a terminal");
    let transcript = text(&out.stdout);
    assert!(out.status.success(), "{transcript}{}", text(&out.stderr));
    assert!(transcript.contains("Username: alice"), "{transcript}");
    assert!(transcript.contains("Login Succeeded"), "{transcript}");
    assert!(
        !transcript.contains("pa55word"),
        "password echoed:\n{transcript}"
    );
    let config = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
    assert!(config.contains(&reg.1));
}
