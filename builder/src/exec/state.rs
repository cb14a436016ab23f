//! The state of a stage between steps: the image config being built, its layers, and the
//! variables in scope (ARG and ENV, with Docker's precedence).

use registry::spec::{History, ImageConfig};
use registry::Descriptor;

use crate::dockerfile::{Env, EnvMap};
use crate::plan::{PlatformArgs, PROXY_ARGS};

/// The PATH Docker gives an image with no PATH of its own (`FROM scratch`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The shell for shell-form instructions when the image sets none.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// A committed layer of the image being built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRef {
    pub descriptor: Descriptor,
    pub diff_id: registry::Digest,
}

#[derive(Clone, Debug)]
pub struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    /// ARGs declared in this stage, with their values (a declared ARG without a value is absent).
    pub args: EnvMap,
    /// Names declared with ARG in this stage (with or without value), in order.
    pub declared: Vec<String>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// The digest of the base manifest, or None for scratch: the root of the cache chain.
    pub base_digest: Option<registry::Digest>,
}

impl StageState {
    /// The state of `FROM scratch`: Docker gives it a default PATH.
    pub fn scratch(platform: &PlatformArgs) -> StageState {
        let mut config = ImageConfig {
            architecture: platform.target.architecture.clone(),
            os: platform.target.os.clone(),
            variant: platform.target.variant.clone(),
            ..ImageConfig::default()
        };
        config.container_config_mut().env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
        StageState::from_config(config, Vec::new(), None)
    }

    /// The state of `FROM image` (or a stage): the image's config and layers.
    pub fn from_config(
        config: ImageConfig,
        layers: Vec<LayerRef>,
        base_digest: Option<registry::Digest>,
    ) -> StageState {
        StageState {
            config,
            layers,
            args: EnvMap::new(),
            declared: Vec::new(),
            cmd_set: false,
            base_digest,
        }
    }

    /// The image's environment as an ordered map.
    pub fn image_env(&self) -> EnvMap {
        let mut env = EnvMap::new();
        for kv in self.config.container_config().env.unwrap_or_default() {
            match kv.split_once('=') {
                Some((k, v)) => env.set(k, v),
                None => env.set(kv.clone(), ""),
            }
        }
        env
    }

    /// Variables for expanding an instruction: stage ARGs, overridden by ENV (Docker: "ENV
    /// always overrides ARG of the same name").
    pub fn expansion_env(&self) -> EnvMap {
        let mut env = self.args.clone();
        for (k, v) in self.image_env().iter() {
            env.set(k, v);
        }
        env
    }

    /// Sets (or replaces, keeping its position) an environment variable in the config.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let cc = self.config.container_config_mut();
        let env = cc.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e.as_str() == key)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    /// Declares `ARG name[=default]` in this stage. The value is the build arg if given, else the
    /// global ARG's value when this line has no default, else the default, else the predefined
    /// platform arg of that name.
    pub fn declare_arg(
        &mut self,
        name: &str,
        default: Option<String>,
        build_args: &crate::plan::BuildArgs,
        global_args: &EnvMap,
        predefined: &EnvMap,
    ) {
        let value = build_args
            .get(name)
            .map(str::to_string)
            .or_else(|| match &default {
                None => global_args.get(name),
                Some(_) => None,
            })
            .or(default)
            .or_else(|| predefined.get(name));
        match value {
            Some(v) => self.args.set(name, v),
            None => self.args.remove(name),
        }
        if !self.declared.iter().any(|d| d == name) {
            self.declared.push(name.to_string());
        }
    }

    /// The ARGs a RUN step sees as environment variables: declared args (not shadowed by ENV)
    /// plus proxy args given on the command line. Returned in declaration order.
    pub fn run_args(&self, build_args: &crate::plan::BuildArgs) -> Vec<(String, String)> {
        let image_env = self.image_env();
        let mut out: Vec<(String, String)> = self
            .args
            .iter()
            .filter(|(k, _)| image_env.get(k).is_none())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = build_args.get(p) {
                if !out.iter().any(|(k, _)| k == p) {
                    out.push((p.to_string(), v.to_string()));
                }
            }
        }
        out
    }

    pub fn working_dir(&self) -> String {
        self.config
            .container_config()
            .working_dir
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    }

    pub fn shell(&self) -> Vec<String> {
        self.config
            .container_config()
            .shell
            .filter(|s| !s.is_empty())
            .unwrap_or_else(default_shell)
    }

    /// Appends a history entry and, for a layer, the layer and its diff_id.
    pub fn commit(&mut self, history: History, layer: Option<LayerRef>) {
        if let Some(l) = layer {
            self.config.rootfs.diff_ids.push(l.diff_id.clone());
            self.layers.push(l);
        }
        self.config.history.push(history);
    }
}

/// Resolves `path` against the working directory the way Docker does for WORKDIR and COPY
/// destinations: relative paths join the current dir; the result is cleaned. A trailing slash is
/// kept when `keep_slash` (it marks a directory destination).
pub fn resolve_path(workdir: &str, path: &str, keep_slash: bool) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in joined.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    let wants_dir = path.ends_with('/') || path.ends_with("/.") || path == ".";
    if keep_slash && wants_dir && out != "/" {
        out.push('/');
    }
    out
}

impl Env for StageState {
    fn get(&self, name: &str) -> Option<String> {
        self.expansion_env().get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BuildArgs;

    #[test]
    fn env_overrides_arg_in_expansion() {
        let mut s = StageState::scratch(&PlatformArgs::default());
        s.declare_arg(
            "X",
            Some("arg".into()),
            &BuildArgs::default(),
            &EnvMap::new(),
            &EnvMap::new(),
        );
        assert_eq!(s.expansion_env().get("X").as_deref(), Some("arg"));
        s.set_env("X", "env");
        assert_eq!(s.expansion_env().get("X").as_deref(), Some("env"));
        assert!(s.run_args(&BuildArgs::default()).is_empty());
    }

    #[test]
    fn arg_takes_build_arg_then_global_then_default() {
        let global: EnvMap = [("G", "global")].into_iter().collect();
        let build = BuildArgs([("B".to_string(), "cli".to_string())].into());
        let mut s = StageState::scratch(&PlatformArgs::default());
        s.declare_arg("B", Some("default".into()), &build, &global, &EnvMap::new());
        s.declare_arg("G", None, &build, &global, &EnvMap::new());
        s.declare_arg("D", Some("default".into()), &build, &global, &EnvMap::new());
        s.declare_arg("U", None, &build, &global, &EnvMap::new());
        assert_eq!(s.args.get("B").as_deref(), Some("cli"));
        assert_eq!(s.args.get("G").as_deref(), Some("global"));
        assert_eq!(s.args.get("D").as_deref(), Some("default"));
        assert_eq!(s.args.get("U"), None);
    }

    #[test]
    fn set_env_replaces_in_place() {
        let mut s = StageState::scratch(&PlatformArgs::default());
        s.set_env("A", "1");
        s.set_env("PATH", "/x");
        assert_eq!(
            s.config.container_config().env.unwrap(),
            vec!["PATH=/x".to_string(), "A=1".to_string()]
        );
    }

    #[test]
    fn paths_resolve_like_docker() {
        assert_eq!(resolve_path("/", "app", false), "/app");
        assert_eq!(resolve_path("/app", "sub/../x", false), "/app/x");
        assert_eq!(resolve_path("/app", ".", true), "/app/");
        assert_eq!(resolve_path("/app", "rel/", true), "/app/rel/");
        assert_eq!(resolve_path("/app", "/abs", true), "/abs");
        assert_eq!(resolve_path("/", "../../x", false), "/x");
    }
}
