//! Instructions that change only the image config: ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR
//! (its config half), CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.

use std::collections::BTreeMap;

use registry::spec::{EmptyObject, HealthConfig};

use crate::dockerfile::{Command, Healthcheck, InstructionKind};

use super::state::{resolve_path, StageState};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid port {0:?}: {1}")]
    InvalidPort(String, &'static str),
}

/// Applies a config-only instruction (already expanded) to the stage. Returns false when the
/// instruction is not config-only (RUN, COPY, ADD, FROM, ARG are handled elsewhere).
pub fn apply(state: &mut StageState, kind: &InstructionKind) -> Result<bool, ConfigError> {
    match kind {
        InstructionKind::Env(pairs) => {
            for kv in pairs {
                state.set_env(&kv.key, &kv.value);
            }
        }
        InstructionKind::Label(pairs) => {
            let labels = state
                .config
                .container_config_mut()
                .labels
                .get_or_insert_with(BTreeMap::new);
            for kv in pairs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
        }
        InstructionKind::Maintainer(who) => state.config.author = Some(who.clone()),
        InstructionKind::Expose(ports) => {
            let mut normalized = Vec::new();
            for p in ports {
                normalized.extend(expand_port(p)?);
            }
            let set = state
                .config
                .container_config_mut()
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in normalized {
                set.insert(p, EmptyObject {});
            }
        }
        InstructionKind::Volume(paths) => {
            let set = state
                .config
                .container_config_mut()
                .volumes
                .get_or_insert_with(BTreeMap::new);
            for v in paths.iter().filter(|v| !v.is_empty()) {
                set.insert(v.clone(), EmptyObject {});
            }
        }
        InstructionKind::User(user) => {
            state.config.container_config_mut().user = Some(user.clone())
        }
        InstructionKind::Workdir(dir) => {
            let wd = resolve_path(&state.working_dir(), dir, false);
            state.config.container_config_mut().working_dir = Some(wd);
        }
        InstructionKind::Cmd(cmd) => {
            let argv = command_argv(state, cmd);
            state.config.container_config_mut().cmd = Some(argv);
            state.cmd_set = true;
        }
        InstructionKind::Entrypoint(cmd) => {
            let argv = command_argv(state, cmd);
            let cmd_set = state.cmd_set;
            let cc = state.config.container_config_mut();
            cc.entrypoint = Some(argv);
            // An inherited CMD makes no sense with a new ENTRYPOINT (Docker resets it).
            if !cmd_set {
                cc.cmd = None;
            }
        }
        InstructionKind::Shell(shell) => {
            state.config.container_config_mut().shell = Some(shell.clone())
        }
        InstructionKind::StopSignal(sig) => {
            state.config.container_config_mut().stop_signal = Some(sig.clone())
        }
        InstructionKind::Healthcheck(hc) => {
            let cfg = match hc {
                Healthcheck::None => HealthConfig {
                    test: Some(vec!["NONE".to_string()]),
                    ..HealthConfig::default()
                },
                Healthcheck::Cmd {
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                    ..
                } => HealthConfig {
                    test: Some(hc.test()),
                    interval: nonzero(*interval),
                    timeout: nonzero(*timeout),
                    start_period: nonzero(*start_period),
                    start_interval: nonzero(*start_interval),
                    retries: (*retries > 0).then_some(*retries as i64),
                },
            };
            state.config.container_config_mut().healthcheck = Some(cfg);
        }
        InstructionKind::Onbuild(trigger) => state
            .config
            .container_config_mut()
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.expression.clone()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn nonzero(ns: u64) -> Option<i64> {
    (ns > 0).then_some(ns as i64)
}

/// The argv of a CMD/ENTRYPOINT: exec form as is, shell form through the stage's SHELL.
pub fn command_argv(state: &StageState, cmd: &Command) -> Vec<String> {
    match cmd {
        Command::Exec(argv) => argv.clone(),
        Command::Shell(line) => {
            let mut argv = state.shell();
            argv.push(line.clone());
            argv
        }
    }
}

/// Docker's port spec: `80`, `80/tcp`, `53/udp`, ranges `8000-8002/tcp`. An `ip:` prefix is
/// not allowed in EXPOSE.
fn expand_port(spec: &str) -> Result<Vec<String>, ConfigError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ConfigError::InvalidPort(
            spec.to_string(),
            "unknown protocol",
        ));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| ConfigError::InvalidPort(spec.to_string(), "not a port number"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(ConfigError::InvalidPort(spec.to_string(), "invalid range"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{parse, Lexer};
    use crate::plan::PlatformArgs;

    fn run(src: &str) -> StageState {
        let df = parse("Dockerfile", &format!("FROM scratch\n{src}")).unwrap();
        let mut s = StageState::scratch(&PlatformArgs::default());
        for ins in &df.instructions[1..] {
            let kind = ins
                .kind
                .expand(&Lexer::default(), &s.expansion_env())
                .unwrap();
            assert!(apply(&mut s, &kind).unwrap(), "{}", ins.original);
        }
        s
    }

    #[test]
    fn expose_normalizes_and_expands_ranges() {
        let s = run("EXPOSE 80 53/UDP 8000-8002\n");
        let ports: Vec<String> = s
            .config
            .container_config()
            .exposed_ports
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(
            ports,
            ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_but_not_own() {
        let s = run("CMD [\"a\"]\nENTRYPOINT [\"e\"]\n");
        assert_eq!(s.config.container_config().cmd.unwrap(), ["a"]);
        let mut s = run("CMD [\"a\"]\n");
        s.cmd_set = false; // as if inherited from the base image
        apply(
            &mut s,
            &InstructionKind::Entrypoint(Command::Exec(vec!["e".into()])),
        )
        .unwrap();
        assert_eq!(s.config.container_config().cmd, None);
    }

    #[test]
    fn shell_form_uses_current_shell() {
        let s = run("SHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n");
        assert_eq!(
            s.config.container_config().cmd.unwrap(),
            ["/bin/bash", "-c", "echo hi"]
        );
    }

    #[test]
    fn workdir_is_relative_to_previous() {
        let s = run("WORKDIR /a\nWORKDIR b\nWORKDIR ../c\n");
        assert_eq!(s.working_dir(), "/a/c");
    }

    #[test]
    fn healthcheck_keeps_only_set_durations() {
        let s = run("HEALTHCHECK --interval=30s CMD check\n");
        let hc = s.config.container_config().healthcheck.unwrap();
        assert_eq!(hc.test.unwrap(), ["CMD-SHELL", "check"]);
        assert_eq!(hc.interval, Some(30_000_000_000));
        assert_eq!(hc.timeout, None);
    }
}
