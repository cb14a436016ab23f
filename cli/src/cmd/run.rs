//! `kiln run`: runs an image from the store in the foreground, like `docker run --rm`.
//!
//! kiln has no daemon, so there is no container left behind: the writable layer is always
//! discarded when the command ends (`--rm` is accepted for docker compatibility). The exit
//! code is docker's: the command's own, 128+n when it was killed by signal n, 126 when it
//! cannot be executed, 127 when it is not found, 125 when kiln itself failed.

use anyhow::{anyhow, bail, Context, Result};
use builder::exec::container::{self, ContainerError, ContainerOptions, Volume};
use builder::sandbox::{LinuxSandbox, NetworkMode};
use builder::snapshot::SnapshotterKind;
use registry::image::LocalImage;
use registry::Platform;

use super::Globals;

/// docker's exit code when the failure is kiln's own, not the command's.
const OWN_ERROR: i32 = 125;

#[derive(clap::Args)]
#[command(
    trailing_var_arg = true,
    override_usage = "kiln run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct Args {
    /// Remove the container when it exits (always the case: kiln keeps no containers)
    #[arg(long)]
    #[allow(dead_code)]
    rm: bool,
    /// Set environment variables (KEY=value, or KEY to pass kiln's own value)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file of KEY=value lines
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<std::path::PathBuf>,
    /// Bind mount a host path (HOST:CONTAINER[:ro|rw])
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volumes: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Network mode (host, none)
    #[arg(long, default_value = "host")]
    network: String,
    /// Overwrite the default ENTRYPOINT of the image ("" clears it)
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,
    /// Container host name (default: a random container ID)
    #[arg(long)]
    hostname: Option<String>,
    /// Keep STDIN open: the command reads kiln's stdin (otherwise /dev/null)
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Snapshotter for the container's rootfs: overlay or native
    #[arg(long)]
    snapshotter: Option<String>,
    /// The image (name, ID or digest), then the command and its arguments, which replace the
    /// image's CMD. Flags end at the image, as with docker.
    #[arg(value_name = "IMAGE COMMAND ARG", required = true, num_args = 1.., allow_hyphen_values = true)]
    image_and_command: Vec<String>,
}

impl Args {
    fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

/// Runs the container and exits kiln with the command's code; never returns.
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let code = match run_inner(args, g) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", message(&e));
            e.chain()
                .find_map(|c| c.downcast_ref::<ContainerError>())
                .map_or(OWN_ERROR, ContainerError::docker_exit_code)
        }
    };
    // Everything (snapshot, temporary files) is dropped by now.
    std::process::exit(code)
}

/// The error and its causes on one line, each cause once (library errors often print their
/// source themselves), as kiln's other commands report errors.
fn message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn run_inner(args: Args, g: &Globals) -> Result<i32> {
    let opts = options(&args)?;
    let store = g.store()?;
    let name = args.image();
    let resolved = super::lookup(&store, name)?;
    let image = LocalImage::open(&store, &resolved.descriptor, &Platform::host())
        .with_context(|| format!("reading image {name}"))?;
    let sandbox = LinuxSandbox::current_exe()?;
    let status = container::run_container(&store, &sandbox, name, &image, &opts)?;
    Ok(status.code())
}

fn options(args: &Args) -> Result<ContainerOptions> {
    let network = match args.network.as_str() {
        "host" | "default" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => bail!("invalid --network {other:?}: expected host or none"),
    };
    let snapshotter = args
        .snapshotter
        .as_deref()
        .map(|s| s.parse::<SnapshotterKind>())
        .transpose()
        .map_err(|e| anyhow!("invalid --snapshotter: {e}"))?;
    let volumes = args
        .volumes
        .iter()
        .map(|v| v.parse::<Volume>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for file in &args.env_files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading env file {}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let var = env_var(line)
                .with_context(|| format!("{}:{}: invalid variable", file.display(), i + 1))?;
            env.extend(var);
        }
    }
    for e in &args.env {
        env.extend(env_var(e).with_context(|| format!("invalid --env {e:?}"))?);
    }
    Ok(ContainerOptions {
        env,
        volumes,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        network,
        entrypoint: args.entrypoint.clone(),
        cmd: args.command().to_vec(),
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(container::random_hostname),
        interactive: args.interactive,
        snapshotter,
    })
}

/// `KEY=value` as given; a bare `KEY` takes kiln's own value and is dropped when unset, as
/// docker does.
fn env_var(s: &str) -> Result<Option<String>> {
    let key = s.split_once('=').map_or(s, |(k, _)| k);
    if key.is_empty() || key.contains(char::is_whitespace) {
        bail!("variable name {key:?} is empty or contains whitespace");
    }
    if s.contains('=') {
        return Ok(Some(s.to_string()));
    }
    Ok(std::env::var(key).ok().map(|v| format!("{key}={v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_name_each_cause_once() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(ContainerError::Workdir {
            dir: "/srv".into(),
            source: io,
        })
        .context("running x");
        assert_eq!(
            message(&e),
            "running x: creating working directory /srv: disk on fire"
        );
    }

    #[test]
    fn env_vars_pass_through_or_take_the_host_value() {
        assert_eq!(env_var("A=1=2").unwrap().as_deref(), Some("A=1=2"));
        assert_eq!(env_var("A=").unwrap().as_deref(), Some("A="));
        std::env::set_var("KILN_RUN_TEST_VAR", "host");
        assert_eq!(
            env_var("KILN_RUN_TEST_VAR").unwrap().as_deref(),
            Some("KILN_RUN_TEST_VAR=host")
        );
        assert_eq!(env_var("KILN_RUN_TEST_UNSET_VAR").unwrap(), None);
        assert!(env_var("=x").is_err());
        assert!(env_var("A B=x").is_err());
    }
}
