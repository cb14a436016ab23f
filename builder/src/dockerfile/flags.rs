//! Validation of `--flag[=value]` words against the flags an instruction accepts.

use super::error::ParseErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    String,
    /// May be repeated; every value is kept.
    Strings,
}

/// The flags given to one instruction, checked against the accepted set.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(String, Vec<String>)>,
}

impl Flags {
    /// Parses `args` (each starting with `--`) against `accepted` (name, type) pairs.
    pub(crate) fn parse(
        args: &[String],
        accepted: &[(&str, FlagType)],
    ) -> Result<Self, ParseErrorKind> {
        let mut flags = Flags::default();
        for arg in args {
            let body = arg.strip_prefix("--").unwrap_or(arg);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(_, ty)) = accepted.iter().find(|(n, _)| *n == name) else {
                return Err(ParseErrorKind::UnknownFlag {
                    flag: name.to_string(),
                });
            };
            let seen = flags.values.iter().any(|(n, _)| n == name);
            if seen && ty != FlagType::Strings {
                return Err(ParseErrorKind::DuplicateFlag {
                    flag: name.to_string(),
                });
            }
            let value = match (ty, value) {
                (FlagType::Bool, None) => "true".to_string(),
                (FlagType::Bool, Some("")) | (_, None) => {
                    return Err(ParseErrorKind::MissingFlagValue {
                        flag: name.to_string(),
                    })
                }
                (FlagType::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    b @ ("true" | "false") => b.to_string(),
                    _ => {
                        return Err(ParseErrorKind::BadBoolFlag {
                            flag: name.to_string(),
                            value: v.to_string(),
                        })
                    }
                },
                (_, Some(v)) => v.to_string(),
            };
            match flags.values.iter_mut().find(|(n, _)| n == name) {
                Some((_, vs)) => vs.push(value),
                None => flags.values.push((name.to_string(), vec![value])),
            }
        }
        Ok(flags)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.strings(name).last().cloned()
    }

    pub(crate) fn strings(&self, name: &str) -> &[String] {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: &[(&str, FlagType)] = &[
        ("from", FlagType::String),
        ("link", FlagType::Bool),
        ("exclude", FlagType::Strings),
    ];

    fn parse(args: &[&str]) -> Result<Flags, ParseErrorKind> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Flags::parse(&args, ACCEPTED)
    }

    #[test]
    fn values_and_repeats() {
        let f = parse(&["--from=a", "--link", "--exclude=x", "--exclude=y"]).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        assert!(!parse(&["--link=FALSE"]).unwrap().bool("link"));
        assert_eq!(
            parse(&["--from="]).unwrap().string("from").as_deref(),
            Some("")
        );
    }

    #[test]
    fn errors_name_the_flag() {
        let msg = |a: &[&str]| parse(a).err().unwrap().to_string();
        assert_eq!(msg(&["--chwon=1"]), "unknown flag: --chwon");
        assert_eq!(
            msg(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(msg(&["--from"]), "missing a value on flag: --from");
        assert_eq!(msg(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            msg(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
    }
}
