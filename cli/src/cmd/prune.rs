//! `kiln prune [-a] [--keep-storage SIZE] [--filter until=DURATION] [-f]`: drop build cache
//! records (as `docker builder prune` does), then garbage-collect the store's blobs.

use std::io::{self, BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use builder::cache::units::{human_size, parse_duration, parse_size};
use builder::cache::{CacheStore, PruneOptions, PruneReport};
use registry::store::{GcReport, DEFAULT_GC_GRACE};

#[derive(clap::Args, Debug, Default)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Amount of disk space to keep for cache (e.g. 10GB, 512MB, 1.5gb, bytes)
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub keep_storage: Option<u64>,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

pub fn run(store_root: &Path, args: PruneArgs) -> Result<()> {
    let opts = options(&args)?;
    if !args.force {
        let stdin = io::stdin();
        if !confirm(&mut stdin.lock(), &mut io::stderr(), opts.all)? {
            bail!("prune has been cancelled");
        }
    }
    let cache = CacheStore::open(store_root)
        .with_context(|| format!("opening the build cache in {}", store_root.display()))?;
    let (report, gc) = cache
        .prune_and_gc(&opts, DEFAULT_GC_GRACE)
        .with_context(|| format!("pruning the build cache in {}", cache.dir().display()))?;
    print_report(&mut io::stdout().lock(), &report, &gc)?;
    Ok(())
}

/// Turns flags into prune options. `--keep-storage 0` means no limit, as in docker.
fn options(args: &PruneArgs) -> Result<PruneOptions> {
    let mut until = None;
    for filter in &args.filters {
        let Some((key, value)) = filter.split_once('=') else {
            bail!("bad format of filter {filter:?} (expected name=value)");
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "until" => {
                if until.is_some() {
                    bail!("filter \"until\" given more than once");
                }
                until = Some(parse_duration(value.trim())?);
            }
            other => bail!("invalid filter {other:?}: kiln prune supports only \"until\""),
        }
    }
    Ok(PruneOptions {
        keep_storage: args.keep_storage.filter(|&n| n > 0),
        until,
        all: args.all,
    })
}

/// Docker's prompt; anything but `y`/`Y` (or end of input) is a no.
fn confirm(input: &mut impl BufRead, out: &mut impl Write, all: bool) -> Result<bool> {
    let what = if all {
        "all build cache"
    } else {
        "all dangling build cache"
    };
    write!(
        out,
        "WARNING! This will remove {what}. Are you sure you want to continue? [y/N] "
    )?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer).context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y"))
}

/// `docker builder prune`'s output: the removed records, then the space reclaimed on disk.
fn print_report(out: &mut impl Write, report: &PruneReport, gc: &GcReport) -> io::Result<()> {
    if !report.removed.is_empty() {
        writeln!(out, "Deleted build cache objects:")?;
        for key in &report.removed {
            writeln!(out, "{}", key.hex())?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(gc.reclaimed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(argv: &[&str]) -> PruneArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: PruneArgs,
        }
        let mut full = vec!["prune"];
        full.extend_from_slice(argv);
        Cmd::try_parse_from(full).unwrap().args
    }

    #[test]
    fn flags_become_options() {
        let o = options(&args(&[
            "-a",
            "--keep-storage",
            "1.5gb",
            "--filter",
            "until=1h30m",
        ]))
        .unwrap();
        assert_eq!(
            o,
            PruneOptions {
                keep_storage: Some(3 << 29),
                until: Some(Duration::from_secs(5400)),
                all: true,
            }
        );
        assert_eq!(options(&args(&[])).unwrap(), PruneOptions::default());
        let zero = options(&args(&["--keep-storage", "0"])).unwrap();
        assert_eq!(zero.keep_storage, None, "0 means no limit, as in docker");
        assert!(args(&["-f"]).force);
    }

    #[test]
    fn bad_flags_name_the_value() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Cmd {
            #[command(flatten)]
            _args: PruneArgs,
        }
        let err = Cmd::try_parse_from(["prune", "--keep-storage", "10XB"]).unwrap_err();
        assert!(err.to_string().contains(r#"invalid size "10XB""#), "{err}");
        for (filter, want) in [
            ("until=1d", r#"invalid duration "1d""#),
            ("label=x", r#"invalid filter "label""#),
            ("until", "bad format of filter"),
        ] {
            let err = options(&args(&["--filter", filter])).unwrap_err();
            assert!(err.to_string().contains(want), "{filter}: {err}");
        }
        let twice = options(&args(&["--filter", "until=1h", "--filter", "until=2h"]));
        assert!(twice.is_err());
    }

    #[test]
    fn confirmation_needs_a_yes() {
        for (input, want) in [("y\n", true), ("Y\n", true), ("n\n", false), ("", false)] {
            let mut out = Vec::new();
            let got = confirm(&mut input.as_bytes(), &mut out, false).unwrap();
            assert_eq!(got, want, "{input:?}");
            assert!(String::from_utf8(out)
                .unwrap()
                .contains("dangling build cache"));
        }
    }

    #[test]
    fn report_prints_like_docker() {
        let key = builder::cache::CacheKey::root(None, &"linux/amd64".parse().unwrap());
        let report = PruneReport {
            removed: vec![key.clone()],
            released: 10,
            kept: 0,
        };
        let gc = GcReport {
            reclaimed: 12_300_000,
            ..GcReport::default()
        };
        let mut out = Vec::new();
        print_report(&mut out, &report, &gc).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "Deleted build cache objects:\n{}\n\nTotal reclaimed space: 12.3MB\n",
                key.hex()
            )
        );
        let mut out = Vec::new();
        print_report(&mut out, &PruneReport::default(), &GcReport::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Total reclaimed space: 0B\n"
        );
    }

    /// End to end on a real store: an old record goes, its blob stays until the gc grace period
    /// has passed (a build running in parallel may have just written it).
    #[test]
    fn run_prunes_records_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheStore::open(dir.path()).unwrap();
        let key = builder::cache::CacheKey::root(None, &"linux/amd64".parse().unwrap());
        let mut rec = builder::cache::CacheRecord::new(None, Default::default());
        rec.last_used -= Duration::from_secs(7200);
        cache.put(&key, &rec).unwrap();
        let mut a = args(&["-f", "--filter", "until=1h"]);
        run(dir.path(), std::mem::take(&mut a)).unwrap();
        assert!(cache.list().unwrap().is_empty());
    }
}
