//! `kiln inspect`: a JSON array shaped like `docker image inspect`.

use std::io::Write;

use anyhow::{Context, Result};
use registry::image::LocalImage;
use registry::store::Store;
use registry::Platform;
use serde_json::{json, Value};

use super::{render_template, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// Images to inspect (name, ID or digest; docker://REF reads a registry without pulling)
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
    /// Print the manifest (or index) bytes exactly as stored or served
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    registry: super::remote::RegistryFlags,
    /// Format each image with a Go-style template, e.g. '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    format: Option<String>,
    /// Platform to show for multi-platform images (default: this machine's)
    #[arg(long)]
    platform: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let platform = match &args.platform {
        Some(p) => p
            .parse()
            .with_context(|| format!("invalid --platform {p:?}"))?,
        None => Platform::host(),
    };
    if args.raw {
        let mut out = std::io::stdout().lock();
        for name in &args.names {
            out.write_all(&raw_manifest(&store, name, &args.registry)?)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        let result = match name.strip_prefix("docker://") {
            Some(r) => inspect_remote(r, &platform, &args.registry),
            None => inspect_one(&store, name, &platform),
        };
        match result {
            Ok(v) => found.push(v),
            Err(e) => missing.push(format!("{e:#}")),
        }
    }
    let mut out = std::io::stdout().lock();
    match &args.format {
        Some(t) => {
            let t = t.replace("\\t", "\t").replace("\\n", "\n");
            for v in &found {
                writeln!(out, "{}", render_template(&t, v)?)?;
            }
        }
        None => writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?,
    }
    out.flush()?;
    match missing.len() {
        0 => Ok(()),
        _ => anyhow::bail!("{}", missing.join("\n")),
    }
}

/// The manifest bytes of a local or `docker://` image.
fn raw_manifest(
    store: &Store,
    name: &str,
    flags: &super::remote::RegistryFlags,
) -> Result<Vec<u8>> {
    if let Some(r) = name.strip_prefix("docker://") {
        let reference = registry::reference::Reference::parse(r)?;
        let remote = quiet(flags).remote(1, super::remote::Verb::Pull)?;
        let fetched = super::remote::runtime()?
            .block_on(registry::remote::ops::raw_manifest(&remote, &reference))
            .with_context(|| format!("fetching the manifest of {reference}"))?;
        return Ok(fetched.bytes);
    }
    let resolved = super::lookup(store, name)?;
    Ok(store.read_blob(&resolved.descriptor.digest)?)
}

fn quiet(flags: &super::remote::RegistryFlags) -> super::remote::RegistryFlags {
    let mut f = flags.clone();
    f.quiet = true;
    f
}

/// `docker image inspect`'s shape for an image in a registry, read without pulling layers.
fn inspect_remote(
    name: &str,
    platform: &Platform,
    flags: &super::remote::RegistryFlags,
) -> Result<Value> {
    let reference = registry::reference::Reference::parse(name)?;
    let remote = quiet(flags).remote(1, super::remote::Verb::Pull)?;
    let img = super::remote::runtime()?
        .block_on(registry::remote::ops::inspect(
            &remote, &reference, platform,
        ))
        .with_context(|| format!("inspecting {reference}"))?;
    let config = &img.config;
    let config_digest = registry::Digest::of(&img.raw_config);
    let repo = reference.name_only().familiar_name();
    Ok(json!({
        "Id": config_digest.to_string(),
        "RepoTags": reference.tag().map(|_| vec![reference.familiar()]).unwrap_or_default(),
        "RepoDigests": [format!("{repo}@{}", img.digest)],
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config,
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": img.size,
        "RootFS": {"Type": config.rootfs.fs_type, "Layers": img.diff_ids},
        "History": img.history,
        "Descriptor": {
            "mediaType": img.media_type,
            "digest": img.manifest_digest,
        },
        "Layers": img.layers,
    }))
}

fn inspect_one(store: &Store, name: &str, platform: &Platform) -> Result<Value> {
    let resolved = super::lookup(store, name)?;
    let img = LocalImage::open(store, &resolved.descriptor, platform)
        .with_context(|| format!("reading image {name}"))?;
    // Every tag pointing at the same manifest or index.
    let mut repo_tags = Vec::new();
    let mut repo_digests = Vec::new();
    for (r, d) in store.list()? {
        if d.digest == resolved.descriptor.digest {
            repo_tags.push(r.familiar());
            let rd = format!("{}@{}", r.familiar_name(), d.digest);
            if !repo_digests.contains(&rd) {
                repo_digests.push(rd);
            }
        }
    }
    let config = &img.config;
    let comment = config
        .extra
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| config.history.last().and_then(|h| h.comment.clone()))
        .unwrap_or_default();
    let mut v = json!({
        "Id": img.id().to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": comment,
        "Created": config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config,
        "Architecture": config.architecture,
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(variant) = &config.variant {
        obj.insert("Variant".into(), json!(variant));
    }
    obj.insert("Os".into(), json!(config.os));
    if let Some(os_version) = &config.os_version {
        obj.insert("OsVersion".into(), json!(os_version));
    }
    obj.insert(
        "Size".into(),
        json!(img.layers().iter().map(|l| l.size).sum::<u64>()),
    );
    obj.insert(
        "RootFS".into(),
        json!({"Type": config.rootfs.fs_type, "Layers": img.diff_ids()}),
    );
    obj.insert(
        "Metadata".into(),
        json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
    );
    obj.insert(
        "Descriptor".into(),
        json!({
            "mediaType": img.manifest_descriptor.media_type,
            "digest": img.manifest_descriptor.digest,
            "size": img.manifest_descriptor.size,
        }),
    );
    Ok(v)
}
