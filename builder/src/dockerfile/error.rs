//! Errors of the Dockerfile frontend: parse errors carry `file:line`, expansion errors carry the
//! word that failed. Messages follow BuildKit's wording so users can search for them.

/// A Dockerfile that could not be parsed. Displays as `Dockerfile:12: unknown instruction: RUNN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ParseError {
    pub file: String,
    /// 1-based line where the offending instruction (or directive) starts.
    pub line: usize,
    pub kind: ParseErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("file with no instructions")]
    NoInstructions,
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscapeToken { value: String },
    #[error("unknown instruction: {name}")]
    UnknownInstruction { name: String },
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination { instruction: &'static str },
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{instruction} requires the arguments to be in JSON form")]
    NotJson { instruction: &'static str },
    #[error("unknown flag: --{flag}")]
    UnknownFlag { flag: String },
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag { flag: String },
    #[error("missing a value on flag: --{flag}")]
    MissingFlagValue { flag: String },
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    BadBoolFlag { flag: String, value: String },
    #[error("{instruction} requires at least one argument")]
    AtLeastOneArgument { instruction: &'static str },
    #[error("{instruction} requires exactly one argument")]
    ExactlyOneArgument { instruction: &'static str },
    #[error("{instruction} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination { instruction: &'static str },
    #[error("{instruction} must have two arguments")]
    MustHaveTwoArguments { instruction: &'static str },
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals { word: String },
    #[error("{instruction} names can not be blank")]
    BlankName { instruction: &'static str },
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName { name: String },
    #[error("duplicate stage name {name:?}")]
    DuplicateStageName { name: String },
    #[error("no build stage in current context")]
    NoBuildStage,
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger { trigger: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {kind:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType { kind: String },
    #[error("time: {reason} {value:?}")]
    Duration { value: String, reason: &'static str },
    #[error("time: unknown unit {unit:?} in duration {value:?}")]
    DurationUnit { value: String, unit: String },
    #[error("Interval {flag:?} cannot be less than 1ms")]
    DurationTooShort { flag: &'static str },
    #[error("strconv.ParseInt: parsing {value:?}: invalid syntax")]
    Retries { value: String },
    #[error("--retries cannot be negative ({value})")]
    NegativeRetries { value: i64 },
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("unsupported network mode: {value}")]
    NetworkMode { value: String },
    #[error("unsupported security mode: {value}")]
    SecurityMode { value: String },
    #[error("failed to parse csv mounts: {reason}")]
    MountCsv { reason: &'static str },
    #[error("unsupported mount type {value:?}")]
    MountType { value: String },
    #[error("unexpected key '{key}' in '{field}'")]
    MountKey { key: String, field: String },
    #[error("unexpected key '{key}' for mount type '{mount_type}'")]
    MountKeyForType { key: String, mount_type: String },
    #[error("invalid value for {key}: {value}")]
    MountValue { key: String, value: String },
    #[error("unsupported sharing value {value:?}")]
    MountSharing { value: String },
    #[error("{key} not allowed for {mount_type:?} type mounts")]
    MountFileInfo {
        key: &'static str,
        mount_type: String,
    },
    #[error("{mount_type} mounts do not support a {key}")]
    MountUnsupported {
        mount_type: String,
        key: &'static str,
    },
    #[error("mount of type {mount_type} requires a target")]
    MountTarget { mount_type: String },
    #[error(transparent)]
    Expand(#[from] ExpandError),
}

/// A word that could not be expanded. Displays as `failed to process "${a": syntax error: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    pub word: String,
    pub kind: ExpandErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {stop}")]
    Unterminated { stop: char },
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier { modifier: String },
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    InvalidPattern { pattern: String, escaped: String },
}
