//! `kiln images`: list tagged (and untagged) images like `docker images`.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, Result};
use registry::image::LocalImage;
use registry::reference::Reference;
use registry::Platform;
use serde_json::json;

use super::{
    created_at, created_since, human_size, parse_created, print_rows, print_table, Globals,
    OutputFormat,
};

#[derive(clap::Args)]
pub struct Args {
    /// Only images of this repository (and tag, if given)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show untagged images too (they are always shown, as docker does by default)
    #[arg(short, long)]
    all: bool,
    /// Output format: table (default), json, or a Go-style template like '{{.ID}}'
    #[arg(long)]
    format: Option<String>,
}

struct Row {
    reference: Option<Reference>,
    id: String,
    digest: String,
    created: Option<chrono::DateTime<chrono::Utc>>,
    size: u64,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let filter = args
        .filter
        .as_deref()
        .map(Reference::parse_named)
        .transpose()
        .context("invalid filter")?;
    let mut rows = Vec::new();
    for (reference, desc) in store.list_all()? {
        if let Some(f) = &filter {
            let Some(r) = &reference else { continue };
            if r.name() != f.name() || f.tag().is_some_and(|t| Some(t) != r.tag()) {
                continue;
            }
        }
        let row = match LocalImage::open(&store, &desc, &Platform::host()) {
            Ok(img) => Row {
                reference,
                id: img.id().to_string(),
                digest: desc.digest.to_string(),
                created: parse_created(img.config.created.as_deref()),
                size: img.size(),
            },
            Err(e) => {
                tracing::warn!(image = %desc.digest, error = %e, "cannot read image");
                Row {
                    reference,
                    id: desc.digest.to_string(),
                    digest: desc.digest.to_string(),
                    created: None,
                    size: desc.size,
                }
            }
        };
        rows.push(row);
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    let show_id = |id: &str| {
        if args.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    let mut out = std::io::stdout().lock();
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            if seen.insert(row.id.clone()) {
                writeln!(out, "{}", show_id(&row.id))?;
            }
        }
        return Ok(());
    }
    let repo_tag = |r: &Option<Reference>| match r {
        Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
        None => ("<none>".to_string(), "<none>".to_string()),
    };
    match OutputFormat::parse(args.format.as_deref()) {
        OutputFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    let (repo, tag) = repo_tag(&row.reference);
                    vec![
                        repo,
                        tag,
                        show_id(&row.id),
                        created_since(row.created),
                        human_size(row.size),
                    ]
                })
                .collect();
            print_table(
                &mut out,
                &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                &table,
            )?;
        }
        format => {
            let objects: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let (repo, tag) = repo_tag(&row.reference);
                    json!({
                        "Containers": "N/A",
                        "CreatedAt": created_at(row.created),
                        "CreatedSince": created_since(row.created),
                        "Digest": row.digest,
                        "ID": show_id(&row.id),
                        "Repository": repo,
                        "SharedSize": "N/A",
                        "Size": human_size(row.size),
                        "Tag": tag,
                        "UniqueSize": "N/A",
                        "VirtualSize": human_size(row.size),
                    })
                })
                .collect();
            print_rows(&mut out, &format, &objects)?;
        }
    }
    Ok(())
}
