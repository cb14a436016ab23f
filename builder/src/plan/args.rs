//! Build arguments: user-given values, the predefined proxy args and the platform args.

use std::collections::BTreeMap;

use registry::Platform;

use crate::dockerfile::EnvMap;

/// The proxy args every build accepts without an `ARG` line (Docker's predefined ARGs). They are
/// left out of history unless declared.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// `--build-arg` values as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildArgs(pub BTreeMap<String, String>);

impl BuildArgs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The target and build platforms behind `TARGETPLATFORM`, `BUILDPLATFORM` and friends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformArgs {
    pub target: Platform,
    pub build: Platform,
}

impl Default for PlatformArgs {
    fn default() -> Self {
        PlatformArgs {
            target: Platform::host(),
            build: Platform::host(),
        }
    }
}

/// BuildKit's automatic platform args, available in the global scope (and in a stage after an
/// `ARG NAME` line without a value).
pub fn predefined_args(p: &PlatformArgs) -> EnvMap {
    let mut env = EnvMap::new();
    for (prefix, plat) in [("TARGET", &p.target), ("BUILD", &p.build)] {
        env.set(format!("{prefix}PLATFORM"), plat.to_string());
        env.set(format!("{prefix}OS"), plat.os.clone());
        env.set(format!("{prefix}ARCH"), plat.architecture.clone());
        env.set(
            format!("{prefix}VARIANT"),
            plat.variant.clone().unwrap_or_default(),
        );
    }
    env
}
