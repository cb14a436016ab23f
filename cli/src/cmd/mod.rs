//! One module per subcommand; this file holds the dispatch and the helpers they share
//! (store opening, Docker's human sizes and durations, tables, `--format` templates).

mod build;
mod copy;
mod delete;
mod fsck;
mod history;
mod images;
mod info;
mod inspect;
mod load;
mod login;
mod logout;
mod output;
mod progress;
mod prune;
mod pull;
mod push;
mod remote;
mod rmi;
mod run;
mod save;
mod tag;
mod tags;
mod unshare;

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use registry::store::Store;

/// Options every command sees.
pub struct Globals {
    pub root: PathBuf,
    #[allow(dead_code)]
    pub debug: bool,
}

impl Globals {
    /// Opens (creating) the store at `--root`.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root)
            .with_context(|| format!("opening the image store at {}", self.root.display()))
    }
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::Args),
    /// List images
    Images(images::Args),
    /// Display detailed information on one or more images
    Inspect(inspect::Args),
    /// Show the history of an image
    History(history::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more image names
    Rmi(rmi::Args),
    /// Save one or more images to a tar archive
    Save(save::Args),
    /// Load images from a tar archive
    Load(load::Args),
    /// Remove build cache
    Prune(prune::PruneArgs),
    /// Verify the store: every blob's digest and every image's manifests, configs and layers
    Fsck(fsck::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// Log in to a registry
    Login(login::Args),
    /// Log out from a registry
    Logout(logout::Args),
    /// List the tags of a repository in a registry
    Tags(tags::Args),
    /// Copy an image between registries, OCI layouts, archives and the store
    Copy(copy::Args),
    /// Delete an image from a registry
    Delete(delete::Args),
    /// Show the store and the registry settings in use
    Info(info::Args),
    /// Run a command in a new container from an image (always removed afterwards)
    Run(run::Args),
    /// Run a command in the user namespace kiln uses when not root
    Unshare(unshare::Args),
}

pub fn run(command: Command, g: &Globals) -> Result<()> {
    match command {
        Command::Build(a) => build::run(a, g),
        Command::Images(a) => images::run(a, g),
        Command::Inspect(a) => inspect::run(a, g),
        Command::History(a) => history::run(a, g),
        Command::Tag(a) => tag::run(a, g),
        Command::Rmi(a) => rmi::run(a, g),
        Command::Save(a) => save::run(a, g),
        Command::Load(a) => load::run(a, g),
        Command::Prune(a) => prune::run(&g.root, a),
        Command::Fsck(a) => fsck::run(a, g),
        Command::Pull(a) => pull::run(a, g),
        Command::Push(a) => push::run(a, g),
        Command::Login(a) => login::run(a, g),
        Command::Logout(a) => logout::run(a, g),
        Command::Tags(a) => tags::run(a, g),
        Command::Copy(a) => copy::run(a, g),
        Command::Delete(a) => delete::run(a, g),
        Command::Info(a) => info::run(a, g),
        Command::Run(a) => run::run(a, g),
        Command::Unshare(a) => unshare::run(a),
    }
}

/// Resolves a user-given image name, ID or digest; a missing image is "no such image: NAME"
/// as docker says, other failures keep their cause.
pub fn lookup(store: &Store, name: &str) -> Result<registry::store::Resolved> {
    match store.lookup(name) {
        Ok(r) => Ok(r),
        Err(registry::Error::ImageNotFound(_)) => anyhow::bail!("no such image: {name}"),
        Err(e) => Err(e).with_context(|| format!("looking up image {name}")),
    }
}

/// A closed stdout (`kiln images | head`) is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Docker's `units.HumanSizeWithPrecision(n, 3)`: decimal units, 3 significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    let decimals = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.num_seconds() as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// A config's `created` time, if present and valid.
pub fn parse_created(created: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(created?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "2 days ago", or "N/A" for an unknown time.
pub fn created_since(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration(Utc::now() - t)),
        None => "N/A".to_string(),
    }
}

/// Docker's JSON `CreatedAt`: `2024-01-02 03:04:05 +0000 UTC`.
pub fn created_at(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// Docker's `stringutils.Ellipsis`: at most `max` characters, the last one `…` if cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prints rows as a table with columns padded like Docker's (three spaces apart).
pub fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            s.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 3;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// How a listing command prints: the default table, one JSON object per line, or a Go-style
/// template (`{{.ID}}`, `{{json .}}`, `{{.Config.Env}}`; `\t` and `\n` are unescaped).
pub enum OutputFormat {
    Table,
    Json,
    Template(String),
}

impl OutputFormat {
    pub fn parse(s: Option<&str>) -> OutputFormat {
        match s.map(str::trim) {
            None | Some("") | Some("table") => OutputFormat::Table,
            Some("json") | Some("{{json .}}") => OutputFormat::Json,
            Some(t) => OutputFormat::Template(t.replace("\\t", "\t").replace("\\n", "\n")),
        }
    }
}

/// Renders a Go-style template against a JSON value. Supports `{{.A.B}}` and `{{json .A}}`;
/// anything else is an error naming the action.
pub fn render_template(template: &str, value: &serde_json::Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .with_context(|| format!("template {template:?}: unclosed action"))?;
        let action = rest[start + 2..start + end].trim();
        rest = &rest[start + end + 2..];
        let (json, path) = match action.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, action),
        };
        anyhow::ensure!(
            path.starts_with('.'),
            "template {template:?}: unsupported action {{{{{action}}}}}"
        );
        let mut v = value;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            v = v.get(key).unwrap_or(&serde_json::Value::Null);
        }
        match (json, v) {
            (true, v) => out.push_str(&serde_json::to_string(v)?),
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            (false, serde_json::Value::Array(a)) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                out.push_str(&format!("[{}]", items.join(" ")));
            }
            (false, other) => out.push_str(&other.to_string()),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Prints one row per line in the chosen non-table format.
pub fn print_rows(
    out: &mut impl Write,
    format: &OutputFormat,
    rows: &[serde_json::Value],
) -> Result<()> {
    for row in rows {
        match format {
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(row)?)?,
            OutputFormat::Template(t) => writeln!(out, "{}", render_template(t, row)?)?,
            OutputFormat::Table => unreachable!("tables are printed by the command"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn human_duration_matches_docker() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(45)), "45 seconds");
        assert_eq!(human_duration(d(90)), "About a minute");
        assert_eq!(human_duration(d(600)), "10 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(5 * 3600)), "5 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
        assert_eq!(human_duration(d(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(d(100 * 86400)), "3 months");
        assert_eq!(human_duration(d(800 * 86400)), "2 years");
    }

    #[test]
    fn ellipsis_cuts_to_width() {
        assert_eq!(ellipsis("abc", 3), "abc");
        assert_eq!(ellipsis("abcd", 3), "ab…");
    }

    #[test]
    fn templates_render_fields_and_json() {
        let v = serde_json::json!({"ID": "abc", "Config": {"Env": ["A=1", "B=2"]}});
        assert_eq!(
            render_template("{{.ID}}\t{{ .Config.Env }}", &v).unwrap(),
            "abc\t[A=1 B=2]"
        );
        assert_eq!(
            render_template("{{json .Config}}", &v).unwrap(),
            r#"{"Env":["A=1","B=2"]}"#
        );
        assert!(render_template("{{range .}}", &v).is_err());
        assert!(render_template("{{.ID", &v).is_err());
    }
}
