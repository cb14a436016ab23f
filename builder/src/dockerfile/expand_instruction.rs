//! Which parts of which instructions Docker expands, and how.
//!
//! Expanded (one word each, quotes removed): ENV and LABEL keys and values, ARG names and
//! defaults, ADD/COPY sources, destination and `--from --chown --chmod --checksum --exclude`,
//! FROM image and `--platform`, USER, WORKDIR, STOPSIGNAL, VOLUME items, RUN `--mount` fields.
//! EXPOSE items are expanded and then split into several ports. COPY/ADD heredoc bodies are
//! expanded (quotes kept) unless the delimiter was quoted. Never expanded: RUN, CMD, ENTRYPOINT,
//! SHELL, HEALTHCHECK, ONBUILD, MAINTAINER.
//!
//! Every word sees the same `env` (the state before the instruction): `ENV a=1 b=$a` gives `b`
//! the previous value of `a`, as in Docker.

use std::collections::BTreeSet;

use super::error::ExpandError;
use super::expand::{Env, Lexer};
use super::instruction::*;

struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    used: BTreeSet<String>,
}

impl Expander<'_> {
    fn word(&mut self, w: &str) -> Result<String, ExpandError> {
        let e = self.lexer.process_word_with_matches(w, self.env)?;
        self.used.extend(e.matched);
        Ok(e.word)
    }

    fn opt(&mut self, w: &Option<String>) -> Result<Option<String>, ExpandError> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn each(&mut self, ws: &[String]) -> Result<Vec<String>, ExpandError> {
        ws.iter().map(|w| self.word(w)).collect()
    }

    fn pairs(&mut self, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, ExpandError> {
        kvs.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key)?,
                    value: self.word(&kv.value)?,
                })
            })
            .collect()
    }

    fn heredocs(&mut self, docs: &[Heredoc]) -> Result<Vec<Heredoc>, ExpandError> {
        let body_lexer = self.lexer.with_skip_quotes(true);
        docs.iter()
            .map(|h| {
                let mut h = h.clone();
                if h.expand {
                    let e = body_lexer.process_word_with_matches(&h.content, self.env)?;
                    self.used.extend(e.matched);
                    h.content = e.word;
                }
                Ok(h)
            })
            .collect()
    }

    fn kind(&mut self, kind: &InstructionKind) -> Result<InstructionKind, ExpandError> {
        use InstructionKind as K;
        Ok(match kind {
            K::From(f) => K::From(FromInstr {
                image: self.word(&f.image)?,
                name: f.name.clone(),
                platform: self.opt(&f.platform)?,
            }),
            K::Env(kvs) => K::Env(self.pairs(kvs)?),
            K::Label(kvs) => K::Label(self.pairs(kvs)?),
            K::Arg(args) => K::Arg(
                args.iter()
                    .map(|a| {
                        Ok(ArgDef {
                            name: self.word(&a.name)?,
                            default: self.opt(&a.default)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            K::Copy(c) => K::Copy(CopyInstr {
                sources: self.each(&c.sources)?,
                dest: self.word(&c.dest)?,
                heredocs: self.heredocs(&c.heredocs)?,
                from: self.opt(&c.from)?,
                chown: self.opt(&c.chown)?,
                chmod: self.opt(&c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: self.each(&c.exclude)?,
            }),
            K::Add(a) => K::Add(AddInstr {
                sources: self.each(&a.sources)?,
                dest: self.word(&a.dest)?,
                heredocs: self.heredocs(&a.heredocs)?,
                chown: self.opt(&a.chown)?,
                chmod: self.opt(&a.chmod)?,
                link: a.link,
                checksum: self.opt(&a.checksum)?,
                keep_git_dir: a.keep_git_dir,
                exclude: self.each(&a.exclude)?,
            }),
            K::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    let e = self.lexer.process_word_with_matches(p, self.env)?;
                    self.used.extend(e.matched);
                    out.extend(e.words);
                }
                K::Expose(out)
            }
            K::Volume(vs) => K::Volume(self.each(vs)?),
            K::User(u) => K::User(self.word(u)?),
            K::Workdir(w) => K::Workdir(self.word(w)?),
            K::StopSignal(s) => K::StopSignal(self.word(s)?),
            K::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    m.target = self.opt(&m.target)?;
                    m.source = self.opt(&m.source)?;
                    m.from = self.opt(&m.from)?;
                    m.id = self.opt(&m.id)?;
                    m.env = self.opt(&m.env)?;
                }
                K::Run(r)
            }
            K::Cmd(_)
            | K::Entrypoint(_)
            | K::Shell(_)
            | K::Healthcheck(_)
            | K::Onbuild(_)
            | K::Maintainer(_) => kind.clone(),
        })
    }
}

impl InstructionKind {
    /// Expands variables in the parts Docker expands (see the module docs).
    pub fn expand(&self, lexer: &Lexer, env: &dyn Env) -> Result<Self, ExpandError> {
        Ok(self.expand_with_matches(lexer, env)?.0)
    }

    /// Like [`expand`](Self::expand), also returning the names of the set variables it used.
    pub fn expand_with_matches(
        &self,
        lexer: &Lexer,
        env: &dyn Env,
    ) -> Result<(Self, BTreeSet<String>), ExpandError> {
        let mut ex = Expander {
            lexer,
            env,
            used: BTreeSet::new(),
        };
        let kind = ex.kind(self)?;
        Ok((kind, ex.used))
    }
}
