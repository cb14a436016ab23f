//! Turns one logical instruction line (plus its heredoc bodies) into a typed [`InstructionKind`],
//! checking arguments and flags the way BuildKit's `instructions.Parse` does.

use std::sync::LazyLock;

use regex::Regex;

use super::duration::parse_go_duration;
use super::error::ParseErrorKind;
use super::flags::{FlagType, Flags};
use super::heredoc::parse_marker;
use super::instruction::*;
use super::mount::Mount;
use super::words::{
    parse_json_array, parse_words, split_command, split_first, split_whitespace, MaybeJson,
};

type Result<T> = std::result::Result<T, ParseErrorKind>;

/// Converts the logical line `line`; `heredocs` are the bodies read after it.
pub(crate) fn convert(line: &str, heredocs: &[Heredoc], escape: char) -> Result<InstructionKind> {
    let (cmd, flags, rest) = split_command(line);
    let lower = cmd.to_ascii_lowercase();
    let no_flags = || Flags::parse(&flags, &[]);
    let kind = match lower.as_str() {
        "from" => {
            let args = split_whitespace(&rest);
            let name = stage_name(&args)?;
            let f = Flags::parse(&flags, &[("platform", FlagType::String)])?;
            InstructionKind::From(FromInstr {
                image: args[0].clone(),
                name,
                platform: f.string("platform"),
            })
        }
        "run" => convert_run(&flags, &rest, heredocs)?,
        "cmd" => {
            let command = maybe_json_command(&rest)?;
            no_flags()?;
            InstructionKind::Cmd(command)
        }
        "entrypoint" => {
            let command = maybe_json_command(&rest)?;
            no_flags()?;
            InstructionKind::Entrypoint(command)
        }
        "shell" => {
            let json = parse_json_array(&rest)?;
            no_flags()?;
            match json {
                MaybeJson::Exec(args) if args.is_empty() => {
                    return Err(ParseErrorKind::AtLeastOneArgument {
                        instruction: "SHELL",
                    })
                }
                MaybeJson::Exec(args) => InstructionKind::Shell(args),
                MaybeJson::NotJson if rest.is_empty() => {
                    return Err(ParseErrorKind::AtLeastOneArgument {
                        instruction: "SHELL",
                    })
                }
                MaybeJson::NotJson => {
                    return Err(ParseErrorKind::NotJson {
                        instruction: "SHELL",
                    })
                }
            }
        }
        "env" => {
            let pairs = name_values(&rest, "ENV", escape)?;
            no_flags()?;
            InstructionKind::Env(pairs)
        }
        "label" => {
            let pairs = name_values(&rest, "LABEL", escape)?;
            no_flags()?;
            InstructionKind::Label(pairs)
        }
        "maintainer" => InstructionKind::Maintainer(one_arg(&rest, "MAINTAINER", &flags)?),
        "user" => InstructionKind::User(one_arg(&rest, "USER", &flags)?),
        "workdir" => InstructionKind::Workdir(one_arg(&rest, "WORKDIR", &flags)?),
        "stopsignal" => InstructionKind::StopSignal(one_arg(&rest, "STOPSIGNAL", &flags)?),
        "expose" => {
            let mut ports = split_whitespace(&rest);
            if ports.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument {
                    instruction: "EXPOSE",
                });
            }
            no_flags()?;
            ports.sort();
            InstructionKind::Expose(ports)
        }
        "volume" => {
            let (args, _) = json_or_list(&rest)?;
            if args.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument {
                    instruction: "VOLUME",
                });
            }
            no_flags()?;
            let volumes = args
                .iter()
                .map(|v| v.trim().to_string())
                .collect::<Vec<_>>();
            if volumes.iter().any(String::is_empty) {
                return Err(ParseErrorKind::EmptyVolume);
            }
            InstructionKind::Volume(volumes)
        }
        "arg" => {
            let words = parse_words(&rest, escape);
            if words.is_empty() {
                return Err(ParseErrorKind::AtLeastOneArgument { instruction: "ARG" });
            }
            let mut args = Vec::new();
            for word in words {
                let def = match word.split_once('=') {
                    Some(("", _)) => return Err(ParseErrorKind::BlankName { instruction: "ARG" }),
                    Some((k, v)) => ArgDef {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDef {
                        name: word,
                        default: None,
                    },
                };
                args.push(def);
            }
            no_flags()?;
            InstructionKind::Arg(args)
        }
        "copy" => convert_copy(&flags, &rest, heredocs)?,
        "add" => convert_add(&flags, &rest, heredocs)?,
        "onbuild" => convert_onbuild(line, &flags, &rest, escape)?,
        "healthcheck" => convert_healthcheck(&flags, &rest)?,
        _ => return Err(ParseErrorKind::UnknownInstruction { name: cmd }),
    };
    Ok(kind)
}

static STAGE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9\-_\.]*$").expect("stage name regex"));

fn stage_name(args: &[String]) -> Result<Option<String>> {
    match args {
        [_] => Ok(None),
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            if !STAGE_NAME.is_match(&lower) {
                return Err(ParseErrorKind::InvalidStageName { name: name.clone() });
            }
            Ok(Some(lower))
        }
        _ => Err(ParseErrorKind::FromArguments),
    }
}

/// `parseString`: the whole rest of the line is the one argument.
fn one_arg(rest: &str, instruction: &'static str, flags: &[String]) -> Result<String> {
    if rest.is_empty() {
        return Err(ParseErrorKind::ExactlyOneArgument { instruction });
    }
    Flags::parse(flags, &[])?;
    Ok(rest.to_string())
}

/// Exec form if `rest` is a JSON string array, shell form otherwise.
fn maybe_json_command(rest: &str) -> Result<Command> {
    if rest.is_empty() {
        return Ok(Command::Shell(String::new()));
    }
    Ok(match parse_json_array(rest)? {
        MaybeJson::Exec(args) => Command::Exec(args),
        MaybeJson::NotJson => Command::Shell(rest.to_string()),
    })
}

/// A JSON string array, or else the whitespace-separated words (quotes are not special).
fn json_or_list(rest: &str) -> Result<(Vec<String>, bool)> {
    Ok(match parse_json_array(rest)? {
        MaybeJson::Exec(args) => (args, true),
        MaybeJson::NotJson => (split_whitespace(rest), false),
    })
}

/// ENV and LABEL: `key=value ...`, or the legacy `key value` form (value is the rest of the line).
fn name_values(rest: &str, instruction: &'static str, escape: char) -> Result<Vec<KeyValue>> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(ParseErrorKind::AtLeastOneArgument { instruction });
    };
    if !first.contains('=') {
        let (key, value) = split_first(rest);
        if value.is_empty() {
            return Err(ParseErrorKind::MustHaveTwoArguments { instruction });
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    let mut pairs = Vec::new();
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals { word: word.clone() });
        };
        pairs.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    if pairs.iter().any(|p| p.key.is_empty()) {
        return Err(ParseErrorKind::BlankName { instruction });
    }
    Ok(pairs)
}

fn convert_run(flags: &[String], rest: &str, heredocs: &[Heredoc]) -> Result<InstructionKind> {
    let command = maybe_json_command(rest)?;
    let f = Flags::parse(
        flags,
        &[
            ("mount", FlagType::Strings),
            ("network", FlagType::String),
            ("security", FlagType::String),
        ],
    )?;
    if command == Command::Shell(String::new()) || command == Command::Exec(Vec::new()) {
        return Err(ParseErrorKind::AtLeastOneArgument { instruction: "RUN" });
    }
    let network = match f.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(other) => {
            return Err(ParseErrorKind::NetworkMode {
                value: other.to_string(),
            })
        }
    };
    let security = match f.string("security").as_deref() {
        None => None,
        Some("insecure") => Some(SecurityMode::Insecure),
        Some("sandbox") => Some(SecurityMode::Sandbox),
        Some(other) => {
            return Err(ParseErrorKind::SecurityMode {
                value: other.to_string(),
            })
        }
    };
    let mounts = f
        .strings("mount")
        .iter()
        .map(|m| Mount::parse(m))
        .collect::<Result<Vec<_>>>()?;
    Ok(InstructionKind::Run(RunInstr {
        command,
        heredocs: heredocs.to_vec(),
        mounts,
        network,
        security,
    }))
}

/// Sources, destination and inline (heredoc) sources of COPY/ADD.
struct SourcesAndDest {
    sources: Vec<String>,
    dest: String,
    heredocs: Vec<Heredoc>,
}

fn sources_and_dest(
    instruction: &'static str,
    args: &[String],
    heredocs: &[Heredoc],
) -> Result<SourcesAndDest> {
    let (dest, srcs) = args.split_last().expect("caller checked for two arguments");
    if parse_marker(dest)?.is_some() {
        return Err(ParseErrorKind::HeredocDestination { instruction });
    }
    let mut out = SourcesAndDest {
        sources: Vec::new(),
        dest: dest.clone(),
        heredocs: Vec::new(),
    };
    for src in srcs {
        match parse_marker(src)? {
            Some(marker) => {
                let content = heredocs
                    .iter()
                    .find(|h| h.name == marker.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                out.heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    fd: marker.fd,
                });
            }
            None => out.sources.push(src.clone()),
        }
    }
    Ok(out)
}

fn copy_args(instruction: &'static str, rest: &str) -> Result<Vec<String>> {
    let (args, _) = json_or_list(rest)?;
    if args.len() < 2 {
        return Err(ParseErrorKind::NoDestination { instruction });
    }
    Ok(args)
}

fn convert_copy(flags: &[String], rest: &str, heredocs: &[Heredoc]) -> Result<InstructionKind> {
    let args = copy_args("COPY", rest)?;
    let f = Flags::parse(
        flags,
        &[
            ("from", FlagType::String),
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("parents", FlagType::Bool),
            ("exclude", FlagType::Strings),
        ],
    )?;
    let sd = sources_and_dest("COPY", &args, heredocs)?;
    Ok(InstructionKind::Copy(CopyInstr {
        sources: sd.sources,
        dest: sd.dest,
        heredocs: sd.heredocs,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        parents: f.bool("parents"),
        exclude: f.strings("exclude").to_vec(),
    }))
}

fn convert_add(flags: &[String], rest: &str, heredocs: &[Heredoc]) -> Result<InstructionKind> {
    let args = copy_args("ADD", rest)?;
    let f = Flags::parse(
        flags,
        &[
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("checksum", FlagType::String),
            ("keep-git-dir", FlagType::Bool),
            ("exclude", FlagType::Strings),
        ],
    )?;
    let sd = sources_and_dest("ADD", &args, heredocs)?;
    Ok(InstructionKind::Add(AddInstr {
        sources: sd.sources,
        dest: sd.dest,
        heredocs: sd.heredocs,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        exclude: f.strings("exclude").to_vec(),
    }))
}

static ONBUILD_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*ONBUILD\s*").expect("onbuild regex"));

fn convert_onbuild(
    line: &str,
    flags: &[String],
    rest: &str,
    escape: char,
) -> Result<InstructionKind> {
    if rest.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument {
            instruction: "ONBUILD",
        });
    }
    Flags::parse(flags, &[])?;
    let (trigger, _, _) = split_command(rest);
    let trigger = trigger.to_ascii_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(ParseErrorKind::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(ParseErrorKind::OnbuildTrigger { trigger }),
        _ => {}
    }
    let kind = convert(rest, &[], escape)?;
    Ok(InstructionKind::Onbuild(OnbuildInstr {
        expression: ONBUILD_PREFIX.replace(line, "").into_owned(),
        trigger: Box::new(kind),
    }))
}

fn convert_healthcheck(flags: &[String], rest: &str) -> Result<InstructionKind> {
    let (kind, args) = split_first(rest);
    if kind.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument {
            instruction: "HEALTHCHECK",
        });
    }
    let kind = kind.to_ascii_uppercase();
    if kind == "NONE" {
        if !args.is_empty() {
            return Err(ParseErrorKind::HealthcheckNoneArguments);
        }
        return Ok(InstructionKind::Healthcheck(Healthcheck::None));
    }
    let f = Flags::parse(
        flags,
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )?;
    if kind != "CMD" {
        return Err(ParseErrorKind::HealthcheckType { kind });
    }
    let command = maybe_json_command(args)?;
    if command == Command::Shell(String::new()) || command == Command::Exec(Vec::new()) {
        return Err(ParseErrorKind::HealthcheckMissingCommand);
    }
    let retries = match f.string("retries").filter(|r| !r.is_empty()) {
        None => 0,
        Some(r) => {
            let n: i64 = r
                .parse::<i32>()
                .map_err(|_| ParseErrorKind::Retries { value: r.clone() })?
                .into();
            u32::try_from(n).map_err(|_| ParseErrorKind::NegativeRetries { value: n })?
        }
    };
    Ok(InstructionKind::Healthcheck(Healthcheck::Cmd {
        command,
        interval: interval(&f, "interval")?,
        timeout: interval(&f, "timeout")?,
        start_period: interval(&f, "start-period")?,
        start_interval: interval(&f, "start-interval")?,
        retries,
    }))
}

/// A HEALTHCHECK duration flag in nanoseconds: 0 when unset or zero, otherwise at least 1ms.
fn interval(f: &Flags, flag: &'static str) -> Result<u64> {
    let Some(value) = f.string(flag).filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let ns = parse_go_duration(&value)?;
    if ns == 0 {
        return Ok(0);
    }
    if ns < 1_000_000 {
        return Err(ParseErrorKind::DurationTooShort { flag });
    }
    Ok(u64::try_from(ns).unwrap_or(u64::MAX))
}
