//! `RUN --mount=type=...,target=...` specs: CSV fields parsed into a typed [`Mount`].

use serde::Serialize;

use super::error::ParseErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN instruction. Paths and ids are raw until the instruction is expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub mount_type: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    /// Defaults: read-only for bind, secret and ssh; read-write for cache and tmpfs.
    pub readonly: bool,
    pub id: Option<String>,
    pub sharing: Option<CacheSharing>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    /// Size limit of a tmpfs mount, in bytes.
    pub size: Option<u64>,
    /// Environment variable a secret is exposed as.
    pub env: Option<String>,
}

impl Mount {
    /// Parses the value of one `--mount` flag.
    pub fn parse(spec: &str) -> Result<Mount, ParseErrorKind> {
        let fields = split_csv(spec)?;
        let mut m = Mount {
            mount_type: MountType::Bind,
            target: None,
            source: None,
            from: None,
            readonly: false,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            required: false,
            size: None,
            env: None,
        };
        let mut ro_set = false;
        for field in &fields {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
                None => (field.to_ascii_lowercase(), None),
            };
            let bad_value = |value: &str| ParseErrorKind::MountValue {
                key: key.clone(),
                value: value.to_string(),
            };
            let wrong_type = |m: &Mount| ParseErrorKind::MountKeyForType {
                key: key.clone(),
                mount_type: m.mount_type.as_str().to_string(),
            };
            let flag = |value: &Option<String>| -> Result<bool, ParseErrorKind> {
                match value.as_deref() {
                    None => Ok(true),
                    Some(v) => parse_go_bool(v).ok_or_else(|| bad_value(v)),
                }
            };
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = flag(&value)?;
                    ro_set = true;
                    continue;
                }
                "readwrite" | "rw" => {
                    m.readonly = !flag(&value)?;
                    ro_set = true;
                    continue;
                }
                "required" => {
                    if !matches!(m.mount_type, MountType::Secret | MountType::Ssh) {
                        return Err(wrong_type(&m));
                    }
                    m.required = flag(&value)?;
                    continue;
                }
                _ => {}
            }
            let Some(value) = value else {
                return Err(ParseErrorKind::MountKey {
                    key,
                    field: field.clone(),
                });
            };
            match key.as_str() {
                "type" => {
                    m.mount_type = match value.to_ascii_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => return Err(ParseErrorKind::MountType { value }),
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "id" => m.id = Some(value),
                "env" => m.env = Some(value),
                "size" => {
                    if m.mount_type != MountType::Tmpfs {
                        return Err(wrong_type(&m));
                    }
                    m.size = Some(parse_ram_bytes(&value).ok_or_else(|| bad_value(&value))?);
                }
                "sharing" => {
                    if m.mount_type != MountType::Cache {
                        return Err(wrong_type(&m));
                    }
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        _ => return Err(ParseErrorKind::MountSharing { value }),
                    });
                }
                "mode" => {
                    m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| bad_value(&value))?)
                }
                "uid" => m.uid = Some(value.parse().map_err(|_| bad_value(&value))?),
                "gid" => m.gid = Some(value.parse().map_err(|_| bad_value(&value))?),
                _ => {
                    return Err(ParseErrorKind::MountKey {
                        key,
                        field: field.clone(),
                    })
                }
            }
        }
        m.validate(ro_set)?;
        Ok(m)
    }

    fn validate(&mut self, ro_set: bool) -> Result<(), ParseErrorKind> {
        let ty = self.mount_type;
        let type_name = ty.as_str().to_string();
        if !matches!(ty, MountType::Secret | MountType::Ssh | MountType::Cache) {
            for (key, set) in [
                ("mode", self.mode.is_some()),
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
            ] {
                if set {
                    return Err(ParseErrorKind::MountFileInfo {
                        key,
                        mount_type: type_name,
                    });
                }
            }
        }
        if !ro_set {
            self.readonly = !matches!(ty, MountType::Cache | MountType::Tmpfs);
        }
        if matches!(ty, MountType::Secret | MountType::Ssh) {
            for (key, set) in [
                ("from", self.from.is_some()),
                ("source", self.source.is_some()),
            ] {
                if set {
                    return Err(ParseErrorKind::MountUnsupported {
                        mount_type: type_name,
                        key,
                    });
                }
            }
        } else if self.target.as_deref().unwrap_or("").is_empty() {
            return Err(ParseErrorKind::MountTarget {
                mount_type: type_name,
            });
        }
        if ty != MountType::Secret && self.env.is_some() {
            return Err(ParseErrorKind::MountKeyForType {
                key: "env".to_string(),
                mount_type: type_name,
            });
        }
        Ok(())
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512kb`, `100` (binary multiples).
fn parse_ram_bytes(v: &str) -> Option<u64> {
    let num_len = v
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(v.len(), |(i, _)| i);
    let (num, unit) = v.split_at(num_len);
    let num: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((num * mult) as u64)
}

/// Splits one CSV record (Go `encoding/csv`): commas separate fields, `"..."` quotes a field and
/// `""` inside quotes is a literal quote.
fn split_csv(s: &str) -> Result<Vec<String>, ParseErrorKind> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(ParseErrorKind::MountCsv {
                            reason: "extraneous or missing \" in quoted-field",
                        })
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(ParseErrorKind::MountCsv {
                        reason: "extraneous or missing \" in quoted-field",
                    })
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(ParseErrorKind::MountCsv {
                            reason: "bare \" in non-quoted-field",
                        })
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_type() {
        let bind = Mount::parse("target=/src").unwrap();
        assert_eq!(bind.mount_type, MountType::Bind);
        assert!(bind.readonly);
        let cache =
            Mount::parse("type=cache,target=/root/.cache,sharing=locked,id=x,mode=0755,uid=1")
                .unwrap();
        assert!(!cache.readonly);
        assert_eq!(cache.sharing, Some(CacheSharing::Locked));
        assert_eq!(cache.mode, Some(0o755));
        assert_eq!(cache.uid, Some(1));
        let secret = Mount::parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(secret.required && secret.readonly);
        assert_eq!(secret.env.as_deref(), Some("TOKEN"));
        let tmpfs = Mount::parse("type=tmpfs,dst=/tmp,size=64m").unwrap();
        assert_eq!(tmpfs.size, Some(64 << 20));
        assert!(Mount::parse("type=bind,target=/x,rw").is_ok_and(|m| !m.readonly));
        assert!(Mount::parse("type=bind,target=/x,readonly=false").is_ok_and(|m| !m.readonly));
        assert!(Mount::parse("\"type=bind\",\"target=/a,b\"")
            .is_ok_and(|m| m.target.as_deref() == Some("/a,b")));
    }

    #[test]
    fn errors() {
        let msg = |s| Mount::parse(s).unwrap_err().to_string();
        assert_eq!(msg("type=foo,target=/x"), "unsupported mount type \"foo\"");
        assert_eq!(
            msg("type=bind,target=/x,sharing=locked"),
            "unexpected key 'sharing' for mount type 'bind'"
        );
        assert_eq!(
            msg("target=/x,bogus=1"),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            msg("type=cache,target=/x,uid=a"),
            "invalid value for uid: a"
        );
        assert_eq!(
            msg("type=bind,target=/x,mode=0644"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            msg("type=secret,id=a,source=x"),
            "secret mounts do not support a source"
        );
        assert_eq!(msg("type=cache"), "mount of type cache requires a target");
        assert_eq!(
            msg("type=cache,target=/x,sharing=no"),
            "unsupported sharing value \"no\""
        );
        assert_eq!(
            msg("type=bind,target=/x,required"),
            "unexpected key 'required' for mount type 'bind'"
        );
    }
}
