//! Build secrets (`kiln build --secret id=x,src=FILE` / `id=x,env=VAR`, docker/buildx
//! syntax). Values are read once when the build starts, held in memory, given to RUN steps
//! that ask for them with `--mount=type=secret`, and never printed: their `Debug` is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// BuildKit's limit on one secret (500 KiB).
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("invalid --secret {spec:?}: {reason}")]
    Syntax { spec: String, reason: String },
    #[error("secret {id}: reading {path}: {source}")]
    Read {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {id}: {path} is larger than {MAX_SECRET_SIZE} bytes")]
    TooLarge { id: String, path: PathBuf },
    #[error("secret {id}: environment variable {var} is not set")]
    MissingEnv { id: String, var: String },
}

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--secret` flag, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

impl SecretSpec {
    /// Parses buildx's `--secret` value: CSV `key=value` fields `id`, `type=file|env`,
    /// `src`/`source`, `env`. Without `src` or `env` the source is the environment variable
    /// named like the id if it is set, else the file named like the id.
    pub fn parse(spec: &str) -> Result<SecretSpec, SecretError> {
        let bad = |reason: String| SecretError::Syntax {
            spec: spec.to_string(),
            reason,
        };
        let (mut id, mut ty, mut src, mut env) = (None, None, None, None);
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("field {field:?} must be a key=value pair")))?;
            match key.to_ascii_lowercase().as_str() {
                "type" => match value {
                    "file" | "env" => ty = Some(value.to_string()),
                    _ => return Err(bad(format!("unsupported secret type {value:?}"))),
                },
                "id" => id = Some(value.to_string()),
                "source" | "src" => src = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                _ => return Err(bad(format!("unexpected key {key:?} in {field:?}"))),
            }
        }
        // `type=env,src=VAR` names the variable with `src`.
        if ty.as_deref() == Some("env") && env.is_none() {
            env = src.take();
        }
        let id = match id.or_else(|| src.clone()).or_else(|| env.clone()) {
            Some(id) if !id.is_empty() => id,
            _ => return Err(bad("an id is required".to_string())),
        };
        let source = match (ty.as_deref(), src, env) {
            (_, Some(_), Some(_)) => return Err(bad("give either src or env, not both".into())),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (_, Some(src), None) => SecretSource::File(PathBuf::from(src)),
            (_, None, Some(env)) => SecretSource::Env(env),
            (_, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (_, None, None) => SecretSource::File(PathBuf::from(&id)),
        };
        Ok(SecretSpec { id, source })
    }
}

/// A secret's bytes. Printing it shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> SecretValue {
        SecretValue(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The secrets of a build, by id.
#[derive(Clone, Debug, Default)]
pub struct Secrets(BTreeMap<String, SecretValue>);

impl Secrets {
    /// Reads every secret's value now (a later flag with the same id wins, as in buildx).
    pub fn load(specs: &[SecretSpec]) -> Result<Secrets, SecretError> {
        let mut out = Secrets::default();
        for s in specs {
            let value = match &s.source {
                SecretSource::File(path) => read_file(&s.id, path)?,
                SecretSource::Env(var) => std::env::var_os(var)
                    .map(std::os::unix::ffi::OsStringExt::into_vec)
                    .ok_or_else(|| SecretError::MissingEnv {
                        id: s.id.clone(),
                        var: var.clone(),
                    })?,
            };
            out.insert(&s.id, SecretValue::new(value));
        }
        Ok(out)
    }

    pub fn insert(&mut self, id: &str, value: SecretValue) {
        self.0.insert(id.to_string(), value);
    }

    pub fn get(&self, id: &str) -> Option<&SecretValue> {
        self.0.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn read_file(id: &str, path: &std::path::Path) -> Result<Vec<u8>, SecretError> {
    use std::io::Read;
    let err = |source| SecretError::Read {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut value = Vec::new();
    file.take(MAX_SECRET_SIZE + 1)
        .read_to_end(&mut value)
        .map_err(err)?;
    if value.len() as u64 > MAX_SECRET_SIZE {
        return Err(SecretError::TooLarge {
            id: id.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SecretSpec {
        SecretSpec::parse(s).unwrap()
    }

    #[test]
    fn buildx_forms() {
        assert_eq!(
            parse("id=tok,src=/run/tok"),
            SecretSpec {
                id: "tok".into(),
                source: SecretSource::File("/run/tok".into())
            }
        );
        assert_eq!(
            parse("id=tok,env=TOKEN").source,
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(
            parse("type=env,id=tok,src=TOKEN").source,
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(
            parse("type=file,id=tok").source,
            SecretSource::File("tok".into())
        );
        assert_eq!(parse("src=./a.txt").id, "./a.txt");
        assert_eq!(
            parse("id=KILN_SECRET_TEST_SURELY_UNSET").source,
            SecretSource::File("KILN_SECRET_TEST_SURELY_UNSET".into())
        );
    }

    #[test]
    fn syntax_errors_name_the_flag() {
        let msg = |s| SecretSpec::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("id=a,type=ssh"),
            "invalid --secret \"id=a,type=ssh\": unsupported secret type \"ssh\""
        );
        assert!(msg("id=a,bogus=1").contains("unexpected key \"bogus\""));
        assert!(msg("id=a,src").contains("must be a key=value pair"));
        assert!(msg("type=env").contains("an id is required"));
        assert!(msg("id=a,src=f,env=V").contains("not both"));
    }

    #[test]
    fn values_are_read_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "hunter2").unwrap();
        let specs = vec![SecretSpec {
            id: "pw".into(),
            source: SecretSource::File(f),
        }];
        let s = Secrets::load(&specs).unwrap();
        assert_eq!(s.get("pw").unwrap().expose(), b"hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let missing = vec![SecretSpec {
            id: "x".into(),
            source: SecretSource::File(dir.path().join("nope")),
        }];
        let e = Secrets::load(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("secret x: reading ") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn oversized_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'a'; MAX_SECRET_SIZE as usize + 1]).unwrap();
        let specs = vec![SecretSpec {
            id: "big".into(),
            source: SecretSource::File(f),
        }];
        assert!(matches!(
            Secrets::load(&specs),
            Err(SecretError::TooLarge { .. })
        ));
    }
}
