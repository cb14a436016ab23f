//! Stages and the edges between them.

use std::collections::BTreeSet;

use crate::dockerfile::{
    Dockerfile, EnvMap, ExpandError, Instruction, InstructionKind, Lexer, MountType, Span,
};

use super::args::{predefined_args, BuildArgs, PlatformArgs};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: no FROM instruction: a Dockerfile must start with FROM (after ARGs)")]
    NoFrom { file: String },
    #[error("target stage {0:?} could not be found")]
    UnknownTarget(String),
    #[error("{file}:{line}: {source}")]
    Expand {
        file: String,
        line: usize,
        #[source]
        source: ExpandError,
    },
    #[error("circular dependency between stages: {0}")]
    Cycle(String),
}

fn at(span: &Span, message: impl Into<String>) -> PlanError {
    PlanError::At {
        file: span.file.clone(),
        line: span.line_start,
        message: message.into(),
    }
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier (or any other) stage of this Dockerfile, by index.
    Stage(usize),
    /// An image reference (expanded), e.g. `busybox`, `localhost:5000/x@sha256:...` or
    /// `oci-layout://path:tag`.
    Image(String),
}

/// Where a `COPY --from` or `RUN --mount=from=` reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromRef {
    Stage(usize),
    Image(String),
}

#[derive(Clone, Debug)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// The `FROM` instruction.
    pub from: Instruction,
    pub base: Base,
    /// `FROM --platform=` after expansion.
    pub platform: Option<String>,
    /// The instructions after `FROM`, unexpanded: the executor expands each with the stage's
    /// state at that point.
    pub instructions: Vec<Instruction>,
    /// Other stages this one reads (base, `COPY --from`, mounts).
    pub deps: BTreeSet<usize>,
}

impl Stage {
    /// The name shown in progress output: `stage-N` or the `AS` name.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

#[derive(Clone, Debug)]
pub struct BuildGraph {
    pub escape: char,
    /// `ARG`s before the first `FROM`, with their values (build arg, else default).
    pub global_args: EnvMap,
    pub stages: Vec<Stage>,
    pub target: usize,
}

impl BuildGraph {
    pub fn plan(
        dockerfile: &Dockerfile,
        file_name: &str,
        build_args: &BuildArgs,
        platforms: &PlatformArgs,
        target: Option<&str>,
    ) -> Result<BuildGraph, PlanError> {
        let lexer = Lexer::new(dockerfile.directives.escape);
        let mut instructions = dockerfile.instructions.iter().peekable();

        // Global scope: ARGs before the first FROM. Their defaults see earlier global ARGs and
        // the predefined platform args.
        let mut global_scope = predefined_args(platforms);
        let mut global_args = EnvMap::new();
        while let Some(ins) = instructions.peek() {
            match &ins.kind {
                InstructionKind::Arg(defs) => {
                    for def in defs {
                        let value = match (build_args.get(&def.name), &def.default) {
                            (Some(v), _) => Some(v.to_string()),
                            (None, Some(d)) => Some(expand(&lexer, d, &global_scope, &ins.span)?),
                            (None, None) => None,
                        };
                        if let Some(v) = value {
                            global_scope.set(def.name.clone(), v.clone());
                            global_args.set(def.name.clone(), v);
                        }
                    }
                    instructions.next();
                }
                InstructionKind::From(_) => break,
                _ => {
                    return Err(at(
                        &ins.span,
                        format!(
                            "{} before the first FROM: only ARG may come first",
                            ins.kind.name()
                        ),
                    ))
                }
            }
        }

        let mut stages: Vec<Stage> = Vec::new();
        for ins in instructions {
            if let InstructionKind::From(from) = &ins.kind {
                let image = expand(&lexer, &from.image, &global_scope, &ins.span)?;
                let platform = match &from.platform {
                    Some(p) => Some(expand(&lexer, p, &global_scope, &ins.span)?),
                    None => None,
                };
                if image.is_empty() {
                    return Err(at(&ins.span, "base name should not be blank"));
                }
                let base = if image.eq_ignore_ascii_case("scratch") {
                    Base::Scratch
                } else if let Some(i) = find_stage(&stages, &image.to_ascii_lowercase()) {
                    Base::Stage(i)
                } else {
                    Base::Image(image)
                };
                if let Some(name) = &from.name {
                    if !valid_stage_name(name) {
                        return Err(at(&ins.span, format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols")));
                    }
                    if find_stage(&stages, name).is_some() {
                        return Err(at(&ins.span, format!("duplicate stage name {name:?}")));
                    }
                }
                let mut deps = BTreeSet::new();
                if let Base::Stage(i) = base {
                    deps.insert(i);
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: from.name.clone(),
                    from: ins.clone(),
                    base,
                    platform,
                    instructions: Vec::new(),
                    deps,
                });
            } else {
                let stage = stages
                    .last_mut()
                    .expect("first non-ARG instruction is FROM");
                stage.instructions.push(ins.clone());
            }
        }
        if stages.is_empty() {
            return Err(PlanError::NoFrom {
                file: file_name.to_string(),
            });
        }

        // Edges from --from references, resolved once all stage names are known.
        for i in 0..stages.len() {
            let mut refs = Vec::new();
            for ins in &stages[i].instructions {
                for raw in from_refs(&ins.kind) {
                    let value = expand(&lexer, raw, &global_scope, &ins.span)?;
                    refs.push((ins.span.clone(), value));
                }
            }
            for (span, value) in refs {
                if let FromRef::Stage(j) = resolve_from(&stages, &value) {
                    if j == i {
                        return Err(at(
                            &span,
                            format!("stage {value:?} cannot copy from itself"),
                        ));
                    }
                    stages[i].deps.insert(j);
                }
            }
        }

        let target = match target {
            None => stages.len() - 1,
            Some(t) => find_stage(&stages, &t.to_ascii_lowercase())
                .ok_or_else(|| PlanError::UnknownTarget(t.to_string()))?,
        };
        let graph = BuildGraph {
            escape: dockerfile.directives.escape,
            global_args,
            stages,
            target,
        };
        graph.needed()?;
        Ok(graph)
    }

    /// The stages the target needs, dependencies first (a topological order); the target last.
    pub fn needed(&self) -> Result<Vec<usize>, PlanError> {
        let mut order = Vec::new();
        let mut state = vec![0u8; self.stages.len()]; // 0 new, 1 visiting, 2 done
        self.visit(self.target, &mut state, &mut order)?;
        Ok(order)
    }

    fn visit(&self, i: usize, state: &mut [u8], order: &mut Vec<usize>) -> Result<(), PlanError> {
        match state[i] {
            2 => return Ok(()),
            1 => return Err(PlanError::Cycle(self.stages[i].display_name())),
            _ => {}
        }
        state[i] = 1;
        for &d in &self.stages[i].deps {
            self.visit(d, state, order)?;
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }

    /// Resolves a `--from` value (already expanded) to a stage or an image.
    pub fn resolve_from(&self, value: &str) -> FromRef {
        resolve_from(&self.stages, value)
    }
}

fn expand(lexer: &Lexer, word: &str, env: &EnvMap, span: &Span) -> Result<String, PlanError> {
    lexer
        .process_word(word, env)
        .map_err(|source| PlanError::Expand {
            file: span.file.clone(),
            line: span.line_start,
            source,
        })
}

fn find_stage(stages: &[Stage], name: &str) -> Option<usize> {
    stages.iter().position(|s| s.name.as_deref() == Some(name))
}

fn resolve_from(stages: &[Stage], value: &str) -> FromRef {
    let lower = value.to_ascii_lowercase();
    if let Some(i) = find_stage(stages, &lower) {
        return FromRef::Stage(i);
    }
    if let Ok(i) = value.parse::<usize>() {
        if i < stages.len() {
            return FromRef::Stage(i);
        }
    }
    FromRef::Image(value.to_string())
}

/// The raw `--from` values of an instruction (COPY --from, RUN --mount from=).
fn from_refs(kind: &InstructionKind) -> Vec<&str> {
    match kind {
        InstructionKind::Copy(c) => c.from.as_deref().into_iter().collect(),
        InstructionKind::Run(r) => r
            .mounts
            .iter()
            .filter(|m| m.mount_type != MountType::Secret && m.mount_type != MountType::Ssh)
            .filter_map(|m| m.from.as_deref())
            .collect(),
        _ => Vec::new(),
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn plan(src: &str, target: Option<&str>) -> Result<BuildGraph, PlanError> {
        let df = parse("Dockerfile", src).unwrap();
        BuildGraph::plan(
            &df,
            "Dockerfile",
            &BuildArgs::default(),
            &PlatformArgs::default(),
            target,
        )
    }

    #[test]
    fn unused_stages_are_not_needed() {
        let g = plan(
            "FROM scratch AS a\nFROM scratch AS unused\nFROM a AS b\nCOPY --from=0 /x /y\nFROM b\n",
            None,
        )
        .unwrap();
        assert_eq!(g.needed().unwrap(), vec![0, 2, 3]);
        let g = plan("FROM scratch AS a\nFROM scratch AS b\nFROM a\n", Some("B")).unwrap();
        assert_eq!(g.needed().unwrap(), vec![1]);
    }

    #[test]
    fn global_args_expand_in_from_and_build_args_override() {
        let df = parse("Dockerfile", "ARG V=1.0\nARG IMG=base:$V\nFROM $IMG\n").unwrap();
        let g = BuildGraph::plan(
            &df,
            "Dockerfile",
            &BuildArgs::default(),
            &PlatformArgs::default(),
            None,
        )
        .unwrap();
        assert_eq!(g.stages[0].base, Base::Image("base:1.0".into()));
        let args = BuildArgs([("V".to_string(), "2.0".to_string())].into());
        let g = BuildGraph::plan(&df, "Dockerfile", &args, &PlatformArgs::default(), None).unwrap();
        assert_eq!(g.stages[0].base, Base::Image("base:2.0".into()));
    }

    #[test]
    fn copy_from_image_is_not_a_stage_edge() {
        let g = plan("FROM scratch\nCOPY --from=busybox:1 /bin/sh /sh\n", None).unwrap();
        assert!(g.stages[0].deps.is_empty());
        assert_eq!(
            g.resolve_from("busybox:1"),
            FromRef::Image("busybox:1".into())
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert!(matches!(
            plan("FROM scratch\n", Some("nope")),
            Err(PlanError::UnknownTarget(_))
        ));
        let e = plan("FROM scratch AS a\nCOPY --from=a /x /y\n", None).unwrap_err();
        assert!(e.to_string().contains("cannot copy from itself"));
    }

    #[test]
    fn cycles_are_errors() {
        let e = plan(
            "FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nCOPY --from=a /x /y\n",
            None,
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::Cycle(_)));
    }
}
