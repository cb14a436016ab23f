//! `kiln login`: verify credentials with a registry and store them where Docker would.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use registry::remote::{Credentials, RegistryClient, TransportOptions};

use super::remote::{runtime, RegistryFlags};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Registry host (default: docker.io)
    #[arg(value_name = "SERVER")]
    server: Option<String>,
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin: arguments are visible to other users)
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// `https://index.docker.io/v1/`, `docker.io`, `host:5000/` -> the registry host.
pub fn normalize_server(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io").trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let server = normalize_server(args.server.as_deref());
    // As `docker login`: prompt on a terminal for what the flags leave out.
    let interactive = std::io::stdin().is_terminal() && !args.password_stdin;
    let username = match (&args.username, interactive) {
        (Some(u), _) => u.clone(),
        (None, true) => prompt("Username: ", true)?,
        (None, false) => bail!("kiln login {server}: --username is required"),
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, false) if interactive => prompt("Password: ", false)?,
        (None, _) => read_line().context("reading the password from stdin")?,
    };
    if password.is_empty() {
        bail!("kiln login {server}: password is empty");
    }
    let creds = Credentials::basic(username, password);
    let mut transport = TransportOptions::from_env();
    transport
        .insecure_registries
        .extend(args.registry.insecure.iter().cloned());
    let client = RegistryClient::new(
        &server,
        registry::remote::api_host(&server),
        &transport,
        Some(creds.clone()),
    )?;
    runtime()?
        .block_on(client.ping())
        .with_context(|| format!("logging in to {server}"))?;
    let sources = registry::remote::CredentialSources::from_env();
    let stored_in = sources.store(&server, &creds)?;
    eprintln!("Credentials stored in {stored_in}");
    println!("Login Succeeded");
    Ok(())
}

fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks on stderr and reads one line from the terminal, without echo for a secret.
fn prompt(label: &str, echo: bool) -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    // Echo goes off before the prompt shows: a quick typist (or a script answering the
    // prompt) must never see the secret echoed back.
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
    }
    eprint!("{label}");
    let line = read_line();
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, OptionalActions::Now, t);
        eprintln!();
    }
    line.with_context(|| format!("reading {}", label.trim_end_matches([':', ' '])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_normalize_like_docker() {
        assert_eq!(normalize_server(None), "docker.io");
        assert_eq!(
            normalize_server(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(normalize_server(Some("localhost:5000/")), "localhost:5000");
        assert_eq!(normalize_server(Some("ghcr.io")), "ghcr.io");
    }
}
