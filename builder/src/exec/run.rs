//! RUN: the command runs in the sandbox on a fresh writable snapshot of the stage; what it
//! changed becomes the step's layer.

use std::os::unix::fs::PermissionsExt;

use crate::dockerfile::{Command, Instruction, NetworkMode as RunNetwork, RunInstr, SecurityMode};
use crate::sandbox::{ExitStatus, Mount, MountKind, NetworkMode, RunSpec};

use super::error::BuildError;
use super::layers::{ensure_chain, LayerSink};
use super::mounts::MountPointFilter;
use super::rootfs::RootfsView;
use super::state::{LayerRef, DEFAULT_PATH};
use super::steps::StageRun;

/// Where a heredoc script run by its shebang is mounted inside the sandbox.
const HEREDOC_DIR: &str = "/.kiln-heredoc";

impl StageRun<'_, '_> {
    pub(super) fn run(&mut self, ins: &Instruction, r: &RunInstr) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        if r.security == Some(SecurityMode::Insecure) && !self.builder.opts.allow_insecure {
            return Err(at(
                &"RUN --security=insecure needs `kiln build --allow security.insecure`",
            ));
        }
        let b = self.builder;
        let chain = ensure_chain(b.store, b.snapshotter.as_ref(), &self.state.layers)?;
        let mut active = b.snapshotter.prepare(chain.as_ref()).map_err(|e| at(&e))?;
        let rootfs = active.rootfs().to_path_buf();
        let view = RootfsView::new(&rootfs);

        let user = self
            .state
            .config
            .container_config()
            .user
            .unwrap_or_default();
        let (uid, gid, groups) = view.resolve_runtime_user(&user).map_err(|e| at(&e))?;
        let cwd = self.state.working_dir();
        // Docker creates a missing working directory for RUN.
        crate::fs::Root::open(&rootfs)
            .and_then(|root| root.open_dir(std::path::Path::new(cwd.trim_start_matches('/')), true))
            .map_err(|e| at(&format!("creating working directory {cwd}: {e}")))?;

        let run_args = self.state.run_args(&b.opts.build_args);
        let mut env: Vec<String> = self.state.config.container_config().env.unwrap_or_default();
        for (k, v) in &run_args {
            env.push(format!("{k}={v}"));
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }

        // Mounts hold cache locks and secret files until they are dropped after the step.
        let step_mounts = self.step_mounts(ins, &r.mounts)?;
        for kv in &step_mounts.env {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        let mut mounts = step_mounts.mounts.clone();
        let args = self.command_args(ins, r, &mut mounts)?;
        let network = match r.network {
            Some(RunNetwork::None) => NetworkMode::None,
            Some(RunNetwork::Host) => NetworkMode::Host,
            Some(RunNetwork::Default) | None => b.opts.network,
        };
        let spec = RunSpec {
            rootfs: rootfs.clone(),
            args: args.clone(),
            env,
            cwd: cwd.clone(),
            uid,
            gid,
            additional_gids: groups,
            hostname: "kiln".to_string(),
            network,
            mounts,
            extra_hosts: Vec::new(),
        };
        let progress = b.progress;
        let mut sink = |_stream, data: &[u8]| progress.output(data);
        let outcome = b.sandbox.run(&spec, &mut sink).map_err(|e| at(&e));
        let spec_mounts = spec.mounts;
        drop(step_mounts);
        let outcome = outcome?;
        let failure = match outcome.status {
            ExitStatus::Code(0) => None,
            ExitStatus::Code(c) => Some(format!("exit code: {c}")),
            ExitStatus::Signal(s) => Some(format!("killed by signal {s}")),
        };
        if let Some(why) = failure {
            let mut msg = format!(
                "process \"{}\" did not complete successfully: {why}",
                args.join(" ")
            );
            if !outcome.tail.is_empty() {
                msg.push_str("\n--- last lines of output ---\n");
                msg.push_str(&outcome.tail.join("\n"));
            }
            return Err(at(&msg));
        }

        let mut writer = self.new_layer()?;
        let lower = match &chain {
            Some(c) => Some(b.snapshotter.view(Some(c)).map_err(|e| at(&e))?),
            None => None,
        };
        let mut sink = LayerSink {
            writer: &mut writer,
        };
        let mut filter =
            MountPointFilter::new(&mut sink, &spec_mounts, lower.as_ref().map(|v| v.rootfs()));
        active.diff(&mut filter).map_err(|e| at(&e))?;
        let passed = filter.passed;
        drop(lower);
        let created_by = history_text(&run_args, &args);
        if passed == 0 {
            drop(writer);
            self.history_as(&created_by, None);
            return Ok(());
        }
        let info = writer.finish()?;
        active.commit(&info.diff_id).map_err(|e| at(&e))?;
        let layer = LayerRef {
            descriptor: info.descriptor,
            diff_id: info.diff_id,
        };
        self.history_as(&created_by, Some(layer));
        Ok(())
    }

    /// The argv of a RUN: exec form as is; shell form through SHELL; a lone heredoc runs as a
    /// script (by its shebang when it has one); heredocs after a command feed the shell.
    fn command_args(
        &self,
        ins: &Instruction,
        r: &RunInstr,
        mounts: &mut Vec<Mount>,
    ) -> Result<Vec<String>, BuildError> {
        let shell = self.state.shell();
        let line = match &r.command {
            Command::Exec(argv) => return Ok(argv.clone()),
            Command::Shell(line) => line,
        };
        if r.heredocs.is_empty() {
            return Ok(with_shell(shell, line));
        }
        if r.heredocs.len() == 1 && is_lone_heredoc(line) {
            let body = &r.heredocs[0].content;
            if body.starts_with("#!") {
                let host = self
                    .builder
                    .work_dir()?
                    .join(format!("heredoc-{}", ins.span.line_start));
                std::fs::write(&host, body).map_err(|e| BuildError::io(&host, e))?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| BuildError::io(&host, e))?;
                let target = format!("{HEREDOC_DIR}/script");
                mounts.push(Mount {
                    target: target.clone(),
                    kind: MountKind::Bind {
                        source: host,
                        readonly: true,
                    },
                });
                return Ok(vec![target]);
            }
            return Ok(with_shell(shell, body));
        }
        // The shell reads the heredocs itself: hand it the line followed by the bodies.
        let mut script = line.clone();
        for h in &r.heredocs {
            script.push('\n');
            script.push_str(&h.content);
            if !h.content.ends_with('\n') && !h.content.is_empty() {
                script.push('\n');
            }
            script.push_str(&h.name);
        }
        Ok(with_shell(shell, &script))
    }
}

fn with_shell(mut shell: Vec<String>, command: &str) -> Vec<String> {
    shell.push(command.to_string());
    shell
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` and nothing else.
fn is_lone_heredoc(line: &str) -> bool {
    let t = line.trim();
    let Some(rest) = t.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    !rest.is_empty() && !rest.contains(char::is_whitespace)
}

/// BuildKit's history text for RUN: `RUN |2 A=1 B=2 /bin/sh -c make # buildkit`.
fn history_text(run_args: &[(String, String)], args: &[String]) -> String {
    let visible: Vec<String> = run_args
        .iter()
        .filter(|(k, _)| !crate::plan::PROXY_ARGS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut s = String::from("RUN ");
    if !visible.is_empty() {
        s.push_str(&format!("|{} {} ", visible.len(), visible.join(" ")));
    }
    s.push_str(&args.join(" "));
    s.push_str(" # buildkit");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_heredocs_are_recognized() {
        assert!(is_lone_heredoc("<<EOF"));
        assert!(is_lone_heredoc(" <<-'EOT' "));
        assert!(!is_lone_heredoc("python3 <<EOF"));
        assert!(!is_lone_heredoc("<<EOF > out"));
    }

    #[test]
    fn history_lists_build_args_but_not_proxies() {
        let args = vec![
            ("V".to_string(), "1".to_string()),
            ("HTTP_PROXY".to_string(), "http://secret".to_string()),
        ];
        let t = history_text(&args, &["/bin/sh".into(), "-c".into(), "make".into()]);
        assert_eq!(t, "RUN |1 V=1 /bin/sh -c make # buildkit");
    }
}
