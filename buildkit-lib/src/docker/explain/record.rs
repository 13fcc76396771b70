//! The inputs that decide BuildKit's cache, collected before a build and completed from its
//! progress, kept for the next build to compare with.
//!
//! Secrets never enter the record: a build secret (and a build arg whose value looks like
//! one) is kept as an identity, a salted SHA-256 that changes when the value changes. The
//! salt is random, kept with the record, and carried from one record to the next.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::progress::Vertex;
use super::rows::parse_step_name;
use super::{CacheImport, ImportStatus};
use crate::cmd::{Cmd, Runner};
use crate::docker::build::Build;
use crate::docker::cache::CacheKind;
use crate::docker::dockerfile;
use crate::pipeline::filehash::FileHashes;

/// The record format; a record of another version is not compared with.
const VERSION: u32 = 1;

/// The inputs of one image build that decide which instructions BuildKit can take from its
/// cache, as recorded after the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct CacheInputs {
    /// The record format.
    pub version: u32,
    /// The Dockerfile's path, as the build gave it.
    pub dockerfile: String,
    /// The stage built (`--target`).
    pub target: Option<String>,
    /// The `ARG`s before the first `FROM`.
    pub global_args: Vec<RecordedInstruction>,
    /// Every stage, parsed.
    pub stages: Vec<RecordedStage>,
    /// Build args and their values (`--build-arg`), except those that look like secrets.
    pub build_args: BTreeMap<String, String>,
    /// Build args whose value looks like a secret (or is masked): their identity only.
    pub hidden_args: BTreeMap<String, String>,
    /// Build secrets (`--secret`): their identity only, never the value.
    pub secrets: BTreeMap<String, String>,
    /// The salt of the identities (random; not a secret itself).
    pub salt: String,
    /// The base images, resolved (from BuildKit's progress).
    pub bases: Vec<BaseImage>,
    /// Named build contexts (`--build-context`), with the files of local ones.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// What each file `COPY`/`ADD` take from the build context is (`<mode>:<sha256>`), by
    /// path relative to the context; every file sent when a source could not be resolved.
    pub context_files: BTreeMap<String, String>,
    /// Whether the context's files were hashed (not for a remote context or a build
    /// without a place to keep its record).
    pub context_hashed: bool,
    /// The platforms asked for (empty: the builder's own).
    pub platforms: Vec<String>,
    /// The builder and the engine it runs on.
    pub builder: String,
    /// Whether the build was asked not to use the cache.
    pub no_cache: bool,
    /// The cache sources and what became of each.
    pub cache_imports: Vec<CacheImport>,
}

/// One stage of the Dockerfile as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedStage {
    /// Its name, or `stage-N` when unnamed (as BuildKit names it).
    pub name: String,
    /// The base as written (`${PYTHON_IMAGE}`, `scratch`, another stage).
    pub base: String,
    /// The base image reference with build args applied, when the base is an image
    /// (not `scratch`, not a stage).
    pub base_image: Option<String>,
    /// The line of its `FROM`.
    pub line: usize,
    /// Its `FROM` as written.
    pub from: String,
    /// Its instructions after the `FROM`.
    pub instructions: Vec<RecordedInstruction>,
}

/// One instruction as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedInstruction {
    /// The keyword, upper-cased.
    pub keyword: String,
    /// The instruction as one line (continuations joined, white space collapsed).
    pub text: String,
    /// Its first line.
    pub line: usize,
}

/// A stage's base image as BuildKit resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BaseImage {
    /// The stage.
    pub stage: String,
    /// The image reference (`docker.io/library/python:3.12-slim`).
    pub image: String,
    /// Its digest, when BuildKit showed it.
    pub digest: Option<String>,
}

/// A named build context (`--build-context name=value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct NamedContext {
    /// The value given.
    pub value: String,
    /// For a local directory: each file's identity by relative path.
    pub files: BTreeMap<String, String>,
}

impl CacheInputs {
    /// The stage named `name` (BuildKit's name: `stage-N` for unnamed ones).
    pub fn stage(&self, name: &str) -> Option<&RecordedStage> {
        self.stages
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The inputs of `build` as a build of it records them before it runs: its Dockerfile
    /// parsed, build args (secret-looking values as identities), secret identities,
    /// named contexts, cache sources, and each file `COPY`/`ADD` take from the context,
    /// hashed (every one read: no hash cache). `previous` carries the secrets' salt over,
    /// so that an unchanged secret keeps its identity. Runs no command; base image
    /// digests and cache imports are filled in from a build's progress only.
    ///
    /// With [`explain`](super::explain), it explains what a change would rebuild without
    /// building (given the vertexes a build reported).
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn of_build(build: &Build, previous: Option<&CacheInputs>) -> anyhow::Result<CacheInputs> {
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        collect(build, &runner, Some(&FileHashes::in_memory()), previous)
    }

    /// False for a record of another format, which is as good as none.
    pub(crate) fn is_usable(&self) -> bool {
        self.version == VERSION
    }

    /// The value a build arg had, as recorded (an identity for a hidden one).
    pub(crate) fn arg_value(&self, name: &str) -> Option<&str> {
        self.build_args
            .get(name)
            .or_else(|| self.hidden_args.get(name))
            .map(String::as_str)
    }

    /// Variables for expanding `$NAME` in a stage: global `ARG` defaults, the stage's own
    /// `ARG` defaults and `ENV`s, then the build args (hidden ones stay unresolved).
    pub(crate) fn vars(&self, stage: Option<&RecordedStage>) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        let mut add = |i: &RecordedInstruction| {
            if i.keyword == "ARG" || i.keyword == "ENV" {
                for (k, v) in key_values(i.text.split_once(' ').map_or("", |x| x.1)) {
                    if let Some(v) = v {
                        vars.insert(k, v);
                    }
                }
            }
        };
        self.global_args.iter().for_each(&mut add);
        if let Some(stage) = stage {
            stage.instructions.iter().for_each(&mut add);
        }
        for (k, v) in &self.build_args {
            vars.insert(k.clone(), v.clone());
        }
        for k in self.hidden_args.keys() {
            vars.remove(k);
        }
        vars
    }

    /// Completes the record from the build's progress: the base images' digests (from the
    /// `FROM` vertexes) and what became of each cache source.
    pub(crate) fn observe(&mut self, vertexes: &[Vertex], text_lines: &[String]) {
        let mut seen: Vec<(String, String, String)> = Vec::new();
        for v in vertexes {
            let Some(step) = parse_step_name(&v.name) else {
                continue;
            };
            let Some(rest) = step.text.strip_prefix("FROM ") else {
                continue;
            };
            let reference = rest.split_whitespace().next().unwrap_or(rest);
            if let Some((image, digest)) = reference.split_once('@') {
                seen.push((
                    step.stage.unwrap_or_default().to_string(),
                    image.to_string(),
                    digest.to_string(),
                ));
            }
        }
        self.bases = self
            .stages
            .iter()
            .filter_map(|stage| {
                let image = stage.base_image.clone()?;
                let digest = seen
                    .iter()
                    .find(|(s, _, _)| s.eq_ignore_ascii_case(&stage.name))
                    .or_else(|| {
                        seen.iter()
                            .find(|(_, i, _)| normalize_image(i) == normalize_image(&image))
                    })
                    .map(|(_, _, d)| d.clone());
                Some(BaseImage {
                    stage: stage.name.clone(),
                    image: normalize_image(&image),
                    digest,
                })
            })
            .collect();
        for import in &mut self.cache_imports {
            import.status = import_status(&import.source, vertexes, text_lines);
        }
    }
}

/// What became of cache source `source` (a `--cache-from` value), read from the progress.
fn import_status(source: &str, vertexes: &[Vertex], text_lines: &[String]) -> ImportStatus {
    let field = |key: &str| {
        source
            .split(',')
            .find_map(|f| f.strip_prefix(key))
            .map(str::to_string)
    };
    let kind = field("type=").unwrap_or_default();
    if kind == "local" {
        let dir = field("src=").unwrap_or_default();
        // buildx reads a local cache itself and says so in a warning of its own, naming the
        // directory as it was given: a bake file's relative to the file (the source here
        // is the path it resolves to).
        if let Some(line) = text_lines.iter().find(|l| {
            local_import_warning_path(l).is_some_and(|shown| {
                let shown = Path::new(shown.trim_start_matches("./"));
                let dir = Path::new(&dir);
                if shown.is_absolute() {
                    shown == dir
                } else {
                    dir.is_absolute() && dir.ends_with(shown)
                }
            })
        }) {
            let error = line
                .split_once("due to err: ")
                .map_or(line.as_str(), |x| x.1);
            return ImportStatus::Failed {
                error: error.to_string(),
            };
        }
    }
    let wanted = match kind.as_str() {
        "local" => "local:".to_string(),
        "registry" => field("ref=").unwrap_or_default(),
        other => format!("{other}:"),
    };
    let importer = vertexes.iter().find(|v| {
        v.name
            .strip_prefix("importing cache manifest from ")
            .is_some_and(|what| !wanted.is_empty() && what.starts_with(&wanted))
    });
    match importer {
        Some(Vertex {
            error: Some(error), ..
        }) => ImportStatus::Failed {
            error: error.clone(),
        },
        Some(v) if v.completed.is_some() => ImportStatus::Imported,
        _ => ImportStatus::NotReported,
    }
}

/// The directory buildx's warning about a local cache it could not import names
/// (`WARNING: local cache import at DIR not found due to err: ...`).
fn local_import_warning_path(line: &str) -> Option<&str> {
    let rest = line.split_once("local cache import at ")?.1;
    rest.split_once(" not found").map(|(path, _)| path)
}

/// `NAME=value` pairs of an `ARG` or `ENV` (the old `ENV NAME value` form too); quotes
/// around a value are removed.
fn key_values(args: &str) -> Vec<(String, Option<String>)> {
    let words: Vec<&str> = args.split_whitespace().collect();
    if words.len() >= 2 && !words[0].contains('=') && !args.trim_start().starts_with('-') {
        // `ENV NAME value with spaces`.
        if !words.iter().any(|w| w.contains('=')) {
            return vec![(words[0].to_string(), Some(words[1..].join(" ")))];
        }
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (
                k.to_string(),
                Some(v.trim_matches(|c| c == '"' || c == '\'').to_string()),
            ),
            None => (w.to_string(), None),
        })
        .collect()
}

/// `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME-default}` replaced from `vars`;
/// `None` when a variable has no value.
pub(crate) fn expand(text: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            let body = &inner[..end];
            let (name, default) = match body.split_once(":-").or_else(|| body.split_once('-')) {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            match (vars.get(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(v),
                (_, Some(d)) => out.push_str(d),
                (None, None) => return None,
                (Some(v), None) => out.push_str(v),
            }
            rest = &inner[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(vars.get(&after[..len])?);
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Some(out)
}

/// An image reference as BuildKit shows it: `docker.io/library/` spelled out, `:latest`
/// when no tag is given, and no digest.
pub(crate) fn normalize_image(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut name = if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_registry {
        if !name.contains('/') {
            name = format!("library/{name}");
        }
        name = format!("docker.io/{name}");
    }
    name
}

/// What `COPY`/`ADD` takes from a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopySources {
    /// `--from=`: a stage, an image or a named context; `None` for the build context.
    pub(crate) from: Option<String>,
    /// Source paths or patterns, relative to the context.
    pub(crate) patterns: Vec<String>,
    /// `--exclude=` patterns.
    pub(crate) excludes: Vec<String>,
    /// A source could not be resolved (a variable without a value): it may take anything.
    pub(crate) unresolved: bool,
    /// `patterns`, each prepared, with the folder its `--exclude`s also apply from.
    sources: Vec<(PathPattern, String)>,
    /// `excludes`, prepared.
    exclusions: Vec<PathPattern>,
}

impl CopySources {
    /// Whether the file at `path` (relative to its context) is one it takes. An
    /// `--exclude` pattern applies from the context's root and from the copied folder's.
    /// The patterns are prepared once, so a context of thousands of files costs a string
    /// comparison or two per file and plain source.
    pub(crate) fn takes(&self, path: &str) -> bool {
        if self.unresolved {
            return !self.excluded(path, "");
        }
        self.sources
            .iter()
            .any(|(pattern, base)| pattern.matches(path) && !self.excluded(path, base))
    }

    fn excluded(&self, path: &str, base: &str) -> bool {
        if self.exclusions.is_empty() {
            return false;
        }
        let inner = path
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(path);
        self.exclusions
            .iter()
            .any(|x| x.matches(path) || x.matches(inner))
    }

    /// Prepares `patterns` and `excludes` for [`CopySources::takes`].
    fn prepare(mut self) -> CopySources {
        self.sources = self
            .patterns
            .iter()
            .map(|p| {
                let base = p.trim_start_matches("./").trim_end_matches('/');
                let base = if base.contains(['*', '?', '[']) || base == "." {
                    ""
                } else {
                    base
                };
                (PathPattern::new(p), base.to_string())
            })
            .collect();
        self.exclusions = self.excludes.iter().map(|x| PathPattern::new(x)).collect();
        self
    }
}

/// The sources of a `COPY` or `ADD` (`None` for any other instruction), variables expanded
/// from `vars`. URLs and git sources of `ADD`, and here-documents, take nothing from a
/// context.
pub(crate) fn copy_sources(
    instruction: &RecordedInstruction,
    vars: &BTreeMap<String, String>,
) -> Option<CopySources> {
    if instruction.keyword != "COPY" && instruction.keyword != "ADD" {
        return None;
    }
    let first_line = instruction.text.lines().next().unwrap_or("");
    let args = first_line.split_once(' ').map_or("", |x| x.1).trim();
    let mut out = CopySources {
        from: None,
        patterns: Vec::new(),
        excludes: Vec::new(),
        unresolved: false,
        sources: Vec::new(),
        exclusions: Vec::new(),
    };
    let mut words: Vec<String> = Vec::new();
    let mut rest = args;
    // Flags first.
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(' ').unwrap_or((flag, ""));
        if let Some(from) = word.strip_prefix("from=") {
            out.from = Some(from.to_string());
        } else if let Some(ex) = word.strip_prefix("exclude=") {
            out.excludes.push(ex.to_string());
        }
        rest = after.trim_start();
    }
    if rest.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(rest) {
            words = list;
        }
    } else {
        words = rest.split_whitespace().map(str::to_string).collect();
    }
    words.pop(); // The destination.
    for word in words {
        if word.starts_with("<<") || word.contains("://") || word.starts_with("git@") {
            continue;
        }
        match expand(&word, vars) {
            Some(path) => out.patterns.push(path),
            None => out.unresolved = true,
        }
    }
    Some(out.prepare())
}

/// Whether `path` (relative, `/`-separated) is `pattern` or lies beneath what it matches.
#[cfg(test)]
pub(crate) fn matches_path(pattern: &str, path: &str) -> bool {
    PathPattern::new(pattern).matches(path)
}

/// A source or exclude pattern of `COPY`/`ADD`, normalized once. A path matches when it is
/// what the pattern matches or lies beneath it: `src/` takes `src/app.py`, `*.txt` takes
/// `a.txt`, `.` takes everything; `*`, `?`, `[..]` match within one path component, `**`
/// any number of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathPattern {
    /// `.`, `/` or `./`: the whole context.
    Everything,
    /// A path without wildcards (most sources): itself and what lies beneath it.
    Plain(String),
    /// With wildcards: its components, `.` and empty ones left out.
    Glob(Vec<String>),
}

impl PathPattern {
    /// `pattern` prepared.
    pub(crate) fn new(pattern: &str) -> PathPattern {
        let mut p = pattern.trim();
        loop {
            let before = p;
            p = p.trim_start_matches("./").trim_start_matches('/');
            if p == before {
                break;
            }
        }
        let p = p.trim_end_matches('/');
        if p.is_empty() || p == "." {
            return PathPattern::Everything;
        }
        if !p.contains(['*', '?', '[', '\\']) && !p.contains("/./") && !p.contains("//") {
            return PathPattern::Plain(p.to_string());
        }
        PathPattern::Glob(
            p.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_string)
                .collect(),
        )
    }

    /// Whether `path` (relative, `/`-separated) is what it matches or lies beneath it.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Everything => true,
            PathPattern::Plain(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathPattern::Glob(components) => {
                let pattern: Vec<&str> = components.iter().map(String::as_str).collect();
                let parts: Vec<&str> = path.split('/').collect();
                (1..=parts.len()).any(|n| match_components(&pattern, &parts[..n]))
            }
        }
    }
}

fn match_components(pattern: &[&str], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((&"**", rest)) => (0..=parts.len()).any(|skip| match_components(rest, &parts[skip..])),
        Some((first, rest)) => match parts.split_first() {
            Some((part, others)) => glob(first, part) && match_components(rest, others),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one component: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`, `\x`.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(c) = n.first() else { return false };
                let Some(end) = p.iter().skip(1).position(|&x| x == ']').map(|e| e + 1) else {
                    return false;
                };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// A salted identity of a secret value: it changes when the value changes, and does not
/// give the value away.
fn identity(salt: &str, id: &str, value: &[u8]) -> String {
    let mut h = crate::hash::Sha256::new();
    h.update(b"buildkit-lib secret identity\0");
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(value);
    format!("sha256:{}", &h.finish_hex()[..32])
}

/// 16 random bytes as hex, from the kernel.
fn random_salt() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Without the kernel's randomness, at least not the same salt on every machine.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (now ^ u128::from(std::process::id())).to_le_bytes();
    }
    crate::hash::sha256_hex(&bytes)[..32].to_string()
}

/// Collects the inputs of `build` before it runs: its Dockerfile parsed, build args,
/// secret identities (salt carried over from `previous`), named contexts, platforms,
/// builder, cache sources, and, with `hashes`, the per-file hashes of what `COPY`/`ADD`
/// take from the context (the pipeline's own listing of the context when its fingerprint
/// made one in this run, so that it is not walked twice).
pub(crate) fn collect(
    build: &Build,
    runner: &Runner,
    hashes: Option<&FileHashes>,
    previous: Option<&CacheInputs>,
) -> anyhow::Result<CacheInputs> {
    let dockerfile_path = build.dockerfile_path();
    let mut inputs = CacheInputs {
        version: VERSION,
        dockerfile: dockerfile_path.display().to_string(),
        target: build.target.clone(),
        salt: previous
            .map(|p| p.salt.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(random_salt),
        platforms: build.platforms.clone(),
        builder: format!(
            "{} on {}",
            build.builder.as_deref().unwrap_or("default"),
            crate::docker::build::engine_host(runner)
        ),
        no_cache: build.no_cache,
        ..CacheInputs::default()
    };
    for (name, value) in &build.build_args {
        let secret_like = crate::docker::build::looks_like_secret_value(value).is_some()
            || runner.redact(value) != *value;
        if secret_like {
            let id = identity(&inputs.salt, name, value.as_bytes());
            inputs.hidden_args.insert(name.clone(), id);
        } else {
            inputs.build_args.insert(name.clone(), value.clone());
        }
    }
    let probe = Cmd::new("docker");
    for secret in &build.secrets {
        let value = secret.read_value(|var| runner.effective_env(&probe, var));
        let id = match value {
            Some(value) => identity(&inputs.salt, &secret.id, &value),
            None => "unreadable".to_string(),
        };
        inputs.secrets.insert(secret.id.clone(), id);
    }
    for cache in &build.cache_from {
        if cache.kind() == CacheKind::Inline {
            continue;
        }
        inputs.cache_imports.push(CacheImport {
            source: runner.redact(&cache.to_from_arg()),
            status: ImportStatus::NotReported,
        });
    }
    let remote = {
        let c = build.context.to_string_lossy();
        c.contains("://") || c.starts_with("git@") || c == "-"
    };
    if remote {
        return Ok(inputs);
    }
    let text = std::fs::read_to_string(&dockerfile_path)
        .with_context(|| format!("cannot read Dockerfile {}", dockerfile_path.display()))?;
    let all = dockerfile::instructions(&text);
    inputs.global_args = all
        .iter()
        .take_while(|i| i.keyword != "FROM")
        .filter(|i| i.keyword == "ARG")
        .map(recorded)
        .collect();
    let stages = dockerfile::stages(&text);
    let stage_names: Vec<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
    let global_vars = inputs.vars(None);
    for stage in &stages {
        let from = all
            .iter()
            .find(|i| i.line == stage.line)
            .map(|i| i.text.clone())
            .unwrap_or_default();
        let base = stage.base.clone();
        let expanded = expand(&base, &global_vars);
        let base_image = match &expanded {
            Some(b) if b.eq_ignore_ascii_case("scratch") => None,
            Some(b) if stage_names.iter().any(|n| n.eq_ignore_ascii_case(b)) => None,
            Some(b) if b.parse::<usize>().is_ok() => None,
            Some(b) => Some(b.clone()),
            None => None,
        };
        inputs.stages.push(RecordedStage {
            name: stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", stage.index)),
            base,
            base_image,
            line: stage.line,
            from,
            instructions: stage.instructions.iter().map(recorded).collect(),
        });
    }
    let Some(hashes) = hashes else {
        return Ok(inputs);
    };
    for (name, value) in &build.build_contexts {
        let dir = Path::new(value);
        let mut named = NamedContext {
            value: value.clone(),
            files: BTreeMap::new(),
        };
        if !value.contains("://") && !value.contains(':') && dir.is_dir() {
            named.files = tree_files(dir, hashes)?;
        }
        inputs.named_contexts.insert(name.clone(), named);
    }
    let listing = crate::pipeline::fingerprint::context_listing(
        &build.context,
        Some(&dockerfile_path),
        hashes,
    )?;
    let mut sources = Vec::new();
    for stage in &inputs.stages {
        let vars = inputs.vars(Some(stage));
        for i in &stage.instructions {
            if let Some(s) = copy_sources(i, &vars) {
                let named = s
                    .from
                    .as_ref()
                    .is_some_and(|f| inputs.named_contexts.contains_key(f));
                if s.from.is_none() && !named {
                    sources.push(s);
                }
            }
        }
    }
    inputs.context_files = listing
        .files
        .iter()
        .filter(|(path, _)| sources.iter().any(|s| s.takes(path)))
        .cloned()
        .collect();
    inputs.context_hashed = true;
    Ok(inputs)
}

fn recorded(i: &dockerfile::DockerfileInstruction) -> RecordedInstruction {
    RecordedInstruction {
        keyword: i.keyword.clone(),
        text: i.text.clone(),
        line: i.line,
    }
}

/// Every file under `dir` with its identity, hashed through `hashes`.
fn tree_files(dir: &Path, hashes: &FileHashes) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let meta = std::fs::symlink_metadata(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let stat = crate::files::FileStat::of(&meta);
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let mut identity = format!("{:o}:", stat.mode & 0o7777);
        if stat.is_symlink {
            let target = std::fs::read_link(entry.path())
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            identity.push_str("link:");
            identity.push_str(&target.to_string_lossy());
        } else if stat.is_file {
            let digest = hashes
                .hash(entry.path(), &stat)
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            identity.push_str(&digest);
        }
        out.insert(rel, identity);
    }
    Ok(out)
}
