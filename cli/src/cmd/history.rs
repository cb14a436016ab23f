//! `kiln history`: an image's history, newest first, like `docker history`.

use std::io::Write;

use anyhow::{Context, Result};
use registry::image::LocalImage;
use registry::Platform;
use serde_json::json;

use super::{
    created_since, ellipsis, human_size, parse_created, print_rows, print_table, Globals,
    OutputFormat,
};

/// Docker truncates CREATED BY to this many characters.
const CREATED_BY_WIDTH: usize = 45;

#[derive(clap::Args)]
pub struct Args {
    /// Image (name, ID or digest)
    #[arg(value_name = "IMAGE")]
    name: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table (default), json, or a Go-style template like '{{.CreatedBy}}'
    #[arg(long)]
    format: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let resolved = super::lookup(&store, &args.name)?;
    let img = LocalImage::open(&store, &resolved.descriptor, &Platform::host())
        .with_context(|| format!("reading image {}", args.name))?;
    // Pair each history entry with its layer: every entry that is not an empty layer
    // consumed the next one.
    let mut layers = img.layers().iter();
    let mut rows = Vec::new();
    for h in &img.config.history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        rows.push((h, size));
    }
    rows.reverse();
    let id = |i: usize| match i {
        0 if args.no_trunc => img.id().to_string(),
        0 => img.id().short().to_string(),
        _ => "<missing>".to_string(),
    };
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for i in 0..rows.len() {
            writeln!(out, "{}", id(i))?;
        }
        return Ok(());
    }
    let created_by = |s: &Option<String>| {
        let s = s.clone().unwrap_or_default().replace('\t', " ");
        if args.no_trunc {
            s
        } else {
            ellipsis(&s, CREATED_BY_WIDTH)
        }
    };
    match OutputFormat::parse(args.format.as_deref()) {
        OutputFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .enumerate()
                .map(|(i, (h, size))| {
                    vec![
                        id(i),
                        created_since(parse_created(h.created.as_deref())),
                        created_by(&h.created_by),
                        human_size(*size),
                        h.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &mut out,
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &table,
            )?;
        }
        format => {
            let objects: Vec<serde_json::Value> = rows
                .iter()
                .enumerate()
                .map(|(i, (h, size))| {
                    let t = parse_created(h.created.as_deref());
                    json!({
                        "Comment": h.comment.clone().unwrap_or_default(),
                        "CreatedAt": t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                        "CreatedBy": created_by(&h.created_by),
                        "CreatedSince": created_since(t),
                        "ID": id(i),
                        "Size": human_size(*size),
                    })
                })
                .collect();
            print_rows(&mut out, &format, &objects)?;
        }
    }
    Ok(())
}
