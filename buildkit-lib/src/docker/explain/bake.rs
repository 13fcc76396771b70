//! Explaining the targets of one `docker buildx bake`: each target's inputs collected as
//! a [`Build`] of it would collect them, one progress stream read for all, and each
//! target's share of it explained on its own.
//!
//! With more than one target, buildx names every vertex after its target (`[web base
//! 2/2] RUN ...`, `[web internal] load ...`, `[web] exporting to image`) and shows a step
//! two targets share once, under one of them: a target's vertexes are those named after
//! it and every vertex they depend on (`inputs`), their target's name taken off. With one
//! target, nothing is named after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::progress::{ProgressReader, Vertex};
use super::watch::Pending;
use super::Explanation;
use crate::cmd::{OutputFilter, Runner};
use crate::docker::bake::{BakeFile, BakeTarget};
use crate::docker::build::{Build, BuildSecret};
use crate::docker::cache::Cache;
use crate::finding::Finding;

/// The targets of one bake being explained.
#[derive(Debug)]
pub(crate) struct BakeWatch {
    reader: ProgressReader,
    /// Every target the bake builds.
    names: Vec<String>,
    /// The targets explained (not those with an inline Dockerfile or a remote context).
    targets: Vec<(String, Pending)>,
    warnings: BTreeMap<String, Vec<Finding>>,
}

/// What a bake's explanation found, by target.
#[derive(Debug, Default)]
pub(crate) struct BakeExplained {
    pub(crate) explanations: BTreeMap<String, Explanation>,
    pub(crate) warnings: BTreeMap<String, Vec<Finding>>,
}

impl BakeWatch {
    /// Starts explaining the targets `names` of `file`, which bake reads in `dir`, built
    /// on `builder`; each target's record is `<records>/<target>.json` when `records` is
    /// given. The cache set-up checks of each target are said in the log now, as
    /// `target <name>: warning: ...`.
    pub(crate) fn start(
        dir: &Path,
        file: &BakeFile,
        names: &[String],
        records: Option<&Path>,
        builder: Option<&str>,
        runner: &Runner,
    ) -> Option<BakeWatch> {
        let mut watch = BakeWatch {
            reader: ProgressReader::new(),
            names: names.to_vec(),
            targets: Vec::new(),
            warnings: BTreeMap::new(),
        };
        for name in names {
            let Some(target) = file.target.get(name) else {
                continue;
            };
            let Some(mut build) = build_of(dir, target, builder) else {
                runner.note(&format!(
                    "target {name}: not explained (an inline Dockerfile or a remote context)"
                ));
                continue;
            };
            build.explain_record = records.map(|d| d.join(format!("{name}.json")));
            match build.cache_setup_warnings(runner) {
                Ok(found) => {
                    for w in &found {
                        runner.note(&format!("target {name}: warning: {}", w.message));
                        runner.note(&format!("target {name}:   fix: {}", w.fix));
                    }
                    let findings = build.cache_findings(&found, &[]);
                    watch.warnings.insert(name.clone(), findings);
                }
                Err(e) => runner.note(&format!(
                    "target {name}: warning: the cache set-up was not checked: {e:#}"
                )),
            }
            watch
                .targets
                .push((name.clone(), Pending::start(&build, runner, None)));
        }
        Some(watch)
    }

    /// The reader bake's output goes through.
    pub(crate) fn filter(&mut self) -> &mut dyn OutputFilter {
        &mut self.reader
    }

    /// After the bake: each target's explanation (its summary said in the log as
    /// `target <name>: ...`, its record kept), and the set-up warnings.
    pub(crate) fn finish(self, runner: &Runner) -> BakeExplained {
        let mut out = BakeExplained {
            warnings: self.warnings,
            ..BakeExplained::default()
        };
        let vertexes = self.reader.vertexes();
        for (name, pending) in self.targets {
            let own = target_vertexes(vertexes, &name, &self.names);
            let label = format!("target {name}");
            if let Some(e) = pending.finish(runner, &own, self.reader.text_lines(), &label) {
                out.explanations.insert(name, e);
            }
        }
        out
    }
}

/// The vertexes of target `name` among those of a bake of `names`, named as a build of
/// that target alone names them.
pub(crate) fn target_vertexes(all: &[Vertex], name: &str, names: &[String]) -> Vec<Vertex> {
    if names.len() < 2 {
        return all.to_vec();
    }
    let by_digest: HashMap<&str, &Vertex> = all.iter().map(|v| (v.digest.as_str(), v)).collect();
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = all
        .iter()
        .filter(|v| strip_target(&v.name, &[name.to_string()]).is_some())
        .map(|v| v.digest.as_str())
        .collect();
    while let Some(digest) = todo.pop() {
        if !wanted.insert(digest) {
            continue;
        }
        if let Some(v) = by_digest.get(digest) {
            todo.extend(v.inputs.iter().map(String::as_str));
        }
    }
    all.iter()
        .filter(|v| wanted.contains(v.digest.as_str()))
        .map(|v| {
            let mut v = v.clone();
            if let Some(name) = strip_target(&v.name, names) {
                v.name = name;
            }
            v
        })
        .collect()
}

/// `name` without the target name bake put before it (`[web base 2/2] RUN` → `[base
/// 2/2] RUN`, `[web] exporting to image` → `exporting to image`), when one of `targets`
/// is there.
fn strip_target(name: &str, targets: &[String]) -> Option<String> {
    let inner = name.strip_prefix('[')?;
    targets.iter().find_map(|t| {
        let rest = inner.strip_prefix(t.as_str())?;
        if let Some(rest) = rest.strip_prefix("] ") {
            Some(rest.to_string())
        } else {
            rest.strip_prefix(' ').map(|rest| format!("[{rest}"))
        }
    })
}

/// Whether a bake value names something on this machine (not a URL, an image, a target).
fn is_local(value: &str) -> bool {
    !(value.contains("://")
        || value.starts_with("git@")
        || value.starts_with("target:")
        || value.starts_with("docker-image:")
        || value == "-")
}

/// The [`Build`] a bake target stands for, its paths read from `dir` as bake reads
/// them: `None` for an inline Dockerfile or a remote context.
pub(crate) fn build_of(dir: &Path, target: &BakeTarget, builder: Option<&str>) -> Option<Build> {
    if target.dockerfile_inline.is_some() {
        return None;
    }
    let context = target.context.as_deref().unwrap_or(".");
    if !is_local(context) {
        return None;
    }
    let context = dir.join(context);
    let dockerfile = target.dockerfile.as_deref().unwrap_or("Dockerfile");
    let dockerfile = if Path::new(dockerfile).is_absolute() {
        PathBuf::from(dockerfile)
    } else {
        context.join(dockerfile)
    };
    let mut build = Build::new(&context).dockerfile(dockerfile);
    build.target = target.target.clone();
    build.build_args = target.args.clone();
    build.platforms = target.platforms.clone();
    build.no_cache = target.no_cache;
    build.network = target.network.clone();
    build.builder = builder.map(str::to_string);
    for (key, value) in &target.contexts {
        let value = if is_local(value) {
            dir.join(value).display().to_string()
        } else {
            value.clone()
        };
        build.build_contexts.insert(key.clone(), value);
    }
    for entry in &target.secret {
        let field = |key: &str| {
            entry
                .split(',')
                .find_map(|f| f.strip_prefix(key))
                .map(str::to_string)
        };
        let Some(id) = field("id=") else { continue };
        if let Some(src) = field("src=").or_else(|| field("source=")) {
            build.secrets.push(BuildSecret::file(id, dir.join(src)));
        } else if let Some(var) = field("env=") {
            build.secrets.push(BuildSecret::env(id, var));
        }
    }
    build.cache_from = target
        .cache_from
        .iter()
        .filter_map(|c| cache_of(c, dir))
        .collect();
    build.cache_to = target
        .cache_to
        .iter()
        .filter_map(|c| cache_of(c, dir))
        .collect();
    Some(build)
}

/// A `--cache-from`/`--cache-to` value of a bake file as a [`Cache`] (as far as the
/// checks and the explanation read it).
fn cache_of(entry: &str, dir: &Path) -> Option<Cache> {
    let field = |key: &str| entry.split(',').find_map(|f| f.strip_prefix(key));
    let cache = match field("type=").unwrap_or("registry") {
        "registry" => Cache::registry(field("ref=")?),
        "local" => Cache::local(dir.join(field("dest=").or_else(|| field("src="))?)),
        "inline" => Cache::inline(),
        "gha" => Cache::gha(),
        _ => return None,
    };
    Some(cache.mode_max(field("mode=") == Some("max")))
}
