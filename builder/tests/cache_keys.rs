//! Golden cache keys under `testdata/cache-keys/<case>/`: `steps.txt` describes a stage's chain
//! of steps, `keys.txt` holds the keys they must get, forever (a change there invalidates every
//! user's cache and needs a `CACHE_FORMAT_VERSION` bump). `KILN_UPDATE_GOLDEN=1` rewrites
//! `keys.txt`.
//!
//! `steps.txt`, one directive per line (`#` comments):
//! ```text
//! root scratch linux/amd64          first key: base manifest digest or `scratch`, platform
//! step                               starts the next step (its parent is the previous key)
//! instruction RUN make               the expanded instruction text
//! arg NAME=value                     a build arg the step uses
//! platform linux/arm64               the step's platform
//! input sha256:<hex>                 an input checksum; `input-of TEXT` uses sha256(TEXT)
//! mount type=cache,target=/c         a RUN --mount spec
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use builder::cache::{CacheKey, CacheKeyBuilder};
use builder::dockerfile::Mount;
use registry::{Digest, Platform};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/cache-keys");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The keys of a case, one `name key` line each.
fn run_case(steps: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut current: Option<CacheKey> = None;
    let mut pending: Option<CacheKeyBuilder> = None;
    let mut n = 0;
    let mut finish = |pending: &mut Option<CacheKeyBuilder>,
                      current: &mut Option<CacheKey>,
                      out: &mut String| {
        if let Some(b) = pending.take() {
            n += 1;
            let key = b.finish();
            out.push_str(&format!("step {n} {key}\n"));
            *current = Some(key);
        }
    };
    for (i, line) in steps.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("steps.txt:{}: {why}: {line}", i + 1);
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let platform = |s: &str| s.parse::<Platform>().map_err(|e| bad(&e.to_string()));
        if word == "step" {
            finish(&mut pending, &mut current, &mut out);
            let parent = current.as_ref().ok_or_else(|| bad("step before root"))?;
            pending = Some(CacheKey::builder(parent));
            continue;
        }
        if word == "root" {
            let (base, plat) = rest
                .split_once(' ')
                .ok_or_else(|| bad("root BASE PLATFORM"))?;
            let base = match base {
                "scratch" => None,
                d => Some(d.parse::<Digest>().map_err(|e| bad(&e.to_string()))?),
            };
            let key = CacheKey::root(base.as_ref(), &platform(plat)?);
            out.push_str(&format!("root {key}\n"));
            current = Some(key);
            continue;
        }
        let b = pending.take().ok_or_else(|| bad("outside a step"))?;
        pending = Some(match word {
            "instruction" => b.instruction(rest),
            "arg" => {
                let (k, v) = rest.split_once('=').ok_or_else(|| bad("arg NAME=VALUE"))?;
                b.build_arg(k, v)
            }
            "platform" => b.platform(&platform(rest)?),
            "input" => b.input(
                &rest
                    .parse()
                    .map_err(|e: registry::Error| bad(&e.to_string()))?,
            ),
            "input-of" => b.input(&Digest::of(rest.as_bytes())),
            "mount" => b.mount(&Mount::parse(rest).map_err(|e| bad(&format!("{e:?}")))?),
            _ => return Err(bad("unknown directive")),
        });
    }
    finish(&mut pending, &mut current, &mut out);
    Ok(out)
}

#[test]
fn golden_cache_keys() {
    let update = std::env::var_os("KILN_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(!cases.is_empty(), "no cases under testdata/cache-keys");
    let mut failures = Vec::new();
    let mut all_keys = std::collections::HashMap::new();
    for case in &cases {
        let steps = fs::read_to_string(case.join("steps.txt")).unwrap();
        let actual = match run_case(&steps) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{}: {e}", case.display()));
                continue;
            }
        };
        // Different cases describe different steps: no key may repeat across cases.
        for line in actual.lines() {
            let key = line.rsplit(' ').next().unwrap().to_string();
            if let Some(prev) = all_keys.insert(key.clone(), case.clone()) {
                if &prev != case && !line.starts_with("root") {
                    failures.push(format!("{key} in both {prev:?} and {case:?}"));
                }
            }
        }
        let path = case.join("keys.txt");
        if update {
            fs::write(&path, &actual).unwrap();
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e} (run with KILN_UPDATE_GOLDEN=1)",
                path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
