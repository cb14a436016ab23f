//! The parsed form of a Dockerfile: one [`Instruction`] per logical line, with typed data.
//!
//! Values are kept as written (quotes included) where Docker expands them later; call
//! [`InstructionKind::expand`] with the build's variables to get final values.

use serde::Serialize;

use super::directives::Directives;
use super::mount::Mount;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
}

/// Where an instruction sits in its file (1-based, inclusive; heredoc bodies included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub file: String,
    pub line_start: usize,
    pub line_end: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instruction {
    pub span: Span,
    /// The logical line as BuildKit keeps it (continuations joined, comments dropped).
    pub original: String,
    pub kind: InstructionKind,
}

/// A command line: shell form is run through the image's shell, exec form is run directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word (quotes removed); for COPY/ADD also the destination file name.
    pub name: String,
    /// The body, with the trailing newline of each line; leading tabs removed for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no variable expansion.
    pub expand: bool,
    /// `<<-` form.
    pub chomp: bool,
    /// File descriptor prefix, as in `3<<EOF`.
    pub fd: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromInstr {
    pub image: String,
    /// Stage name from `AS name`, lower-cased.
    pub name: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Insecure,
    Sandbox,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInstr {
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<SecurityMode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyInstr {
    pub sources: Vec<String>,
    pub dest: String,
    /// Inline sources (`COPY <<EOF /dest`); each is written to `dest/<name>`.
    pub heredocs: Vec<Heredoc>,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddInstr {
    pub sources: Vec<String>,
    pub dest: String,
    pub heredocs: Vec<Heredoc>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub exclude: Vec<String>,
}

/// HEALTHCHECK: durations are nanoseconds, 0 meaning "inherit the default" as in Docker's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Healthcheck {
    None,
    Cmd {
        command: Command,
        interval: u64,
        timeout: u64,
        start_period: u64,
        start_interval: u64,
        retries: u32,
    },
}

impl Healthcheck {
    /// Docker's `Healthcheck.Test` form: `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".to_string()],
            Healthcheck::Cmd {
                command: Command::Shell(s),
                ..
            } => vec!["CMD-SHELL".to_string(), s.clone()],
            Healthcheck::Cmd {
                command: Command::Exec(args),
                ..
            } => std::iter::once("CMD".to_string())
                .chain(args.iter().cloned())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnbuildInstr {
    /// The trigger text stored in the image config (`RUN make`).
    pub expression: String,
    /// The trigger parsed, to validate it early.
    pub trigger: Box<InstructionKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum InstructionKind {
    From(FromInstr),
    Run(RunInstr),
    Cmd(Command),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(AddInstr),
    Copy(CopyInstr),
    Entrypoint(Command),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDef>),
    Onbuild(OnbuildInstr),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
}

impl InstructionKind {
    /// The instruction keyword, upper-case.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::From(_) => "FROM",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Shell(_) => "SHELL",
        }
    }
}
