//! The sandbox's foreground mode (`kiln run`) and docker's exit codes for commands that
//! cannot start. Needs root; fails instead of skipping when CI=true.

mod common;

use std::os::unix::fs::PermissionsExt;

use builder::sandbox::{ExitStatus, RunSpec, Sandbox, SetupStage, Stream};

use common::sandbox;

fn busybox_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in ["sh", "cat", "true", "false", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::write(bin.join("data"), "not a program\n").unwrap();
    std::fs::set_permissions(bin.join("data"), std::fs::Permissions::from_mode(0o644)).unwrap();
    tmp
}

#[test]
fn attached_runs_pass_exit_codes_and_signals() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let spec = RunSpec::new(root.path(), &["sh", "-c", "exit 42"]);
    assert_eq!(sb.run_attached(&spec, false).unwrap(), ExitStatus::Code(42));
    let spec = RunSpec::new(root.path(), &["sh", "-c", "kill -TERM $$"]);
    let status = sb.run_attached(&spec, false).unwrap();
    assert_eq!(status, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(status.code(), 143);
    // Without stdin the command reads end of file at once instead of waiting.
    let spec = RunSpec::new(root.path(), &["cat"]);
    assert_eq!(sb.run_attached(&spec, false).unwrap(), ExitStatus::Code(0));
}

#[test]
fn commands_that_cannot_start_get_docker_exit_codes() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let cases: [(&[&str], SetupStage, i32); 3] = [
        (&["no-such-tool"], SetupStage::NotFound, 127),
        (&["/bin/missing"], SetupStage::NotFound, 127),
        (&["/bin/data"], SetupStage::NotExecutable, 126),
    ];
    for (args, stage, code) in cases {
        let spec = RunSpec::new(root.path(), args);
        for err in [
            sb.run_attached(&spec, false).unwrap_err(),
            sb.run(&spec, &mut |_: Stream, _: &[u8]| {}).unwrap_err(),
        ] {
            match &err {
                builder::sandbox::SandboxError::Setup { stage: s, .. } => {
                    assert_eq!(*s, stage, "{args:?}: {err}")
                }
                other => panic!("{args:?}: {other}"),
            }
            assert_eq!(err.docker_exit_code(), code, "{args:?}");
            assert!(err.to_string().contains(args[0]), "{err}");
        }
    }
}
