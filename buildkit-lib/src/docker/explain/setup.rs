//! Cache set-up checks: what in a build's Dockerfile and cache settings makes BuildKit's
//! cache miss more than it must, found before the build runs, each with its fix.
//!
//! Every check reads only the Dockerfile, the build's settings, the build context's
//! directory (to see which folders hold a dependency list) and two environment variables
//! (`CI`, `RUNNER_ENVIRONMENT`), so they cost no engine query. Only the stages the build
//! reaches (the target, what it builds on, what it copies or mounts from) are looked at:
//! BuildKit builds nothing else. A check that finds nothing says nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{copy_sources, expand, RecordedInstruction};
use crate::docker::build::Build;
use crate::docker::cache::CacheKind;
use crate::docker::dockerfile::{self, DockerfileInstruction, DockerfileStage};
use crate::finding::{Finding, Level};

/// One cache set-up check (the kind of a [`CacheWarning`]); its finding's rule is
/// [`CacheCheck::rule`] (`cache/copy-before-install`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CacheCheck {
    /// The whole context (`COPY . .`), or a folder that holds the dependency list, is
    /// copied before the dependency install of the same stage: any change to any copied
    /// file installs every dependency again.
    CopyBeforeInstall,
    /// The build exports its cache with `mode=min` (or inline, always min) while the
    /// target copies from other stages that run commands: their layers are not exported,
    /// and a runner without a local cache builds them again.
    ModeMinIntermediate,
    /// In CI, a cache is imported (`--cache-from`) and none is exported (`--cache-to`):
    /// what the run builds is lost with the runner.
    CacheFromWithoutCacheTo,
    /// A build arg whose value changes on every run (a date or time, a commit SHA, a build
    /// number) is declared in a stage before a `RUN`: that `RUN` and every later one
    /// rebuild on every run.
    VolatileBuildArg,
    /// In CI, a `RUN --mount=type=cache` keeps its files in the builder, which starts
    /// empty on every runner, and nothing exports the build cache.
    CacheMountNotPersisted,
    /// A reproducible build is asked for (`rewrite_timestamp`, or a `SOURCE_DATE_EPOCH`
    /// build arg), and a base image is named by tag without a digest: the tag can move.
    BaseWithoutDigest,
}

impl CacheCheck {
    /// Every check, in the order they run.
    pub(crate) const ALL: [CacheCheck; 6] = [
        CacheCheck::CopyBeforeInstall,
        CacheCheck::ModeMinIntermediate,
        CacheCheck::CacheFromWithoutCacheTo,
        CacheCheck::VolatileBuildArg,
        CacheCheck::CacheMountNotPersisted,
        CacheCheck::BaseWithoutDigest,
    ];

    /// The check's name, as reports write it (`copy-before-install`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheCheck::CopyBeforeInstall => "copy-before-install",
            CacheCheck::ModeMinIntermediate => "mode-min-intermediate",
            CacheCheck::CacheFromWithoutCacheTo => "cache-from-without-cache-to",
            CacheCheck::VolatileBuildArg => "volatile-build-arg",
            CacheCheck::CacheMountNotPersisted => "cache-mount-not-persisted",
            CacheCheck::BaseWithoutDigest => "base-without-digest",
        }
    }

    /// The rule of its findings ([`Finding::rule`]): `cache/` and its name
    /// (`cache/copy-before-install`).
    pub(crate) fn rule(self) -> String {
        format!("{CACHE_RULE_PREFIX}{}", self.as_str())
    }

    /// The check whose rule is `rule` (`cache/copy-before-install`, or its name alone,
    /// `copy-before-install`).
    pub(crate) fn of_rule(rule: &str) -> Option<CacheCheck> {
        let name = rule.strip_prefix(CACHE_RULE_PREFIX).unwrap_or(rule);
        CacheCheck::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What the rules of the cache findings start with.
pub(crate) const CACHE_RULE_PREFIX: &str = "cache/";

/// The tool the cache findings are of ([`Finding`]'s tool, in an annotation's title).
pub(crate) const CACHE_TOOL: &str = "buildkit-lib";

impl fmt::Display for CacheCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cache set-up check found: what is wrong, where, and how to fix it. Users read
/// it as a [`Finding`] ([`CacheWarning::to_finding`]); the pipeline's report keeps its
/// parts apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheWarning {
    /// The check that found it.
    pub(crate) check: CacheCheck,
    /// What is wrong and what it costs, citing Dockerfile lines as `Dockerfile:12`.
    pub(crate) message: String,
    /// What to change.
    pub(crate) fix: String,
    /// The Dockerfile, as the build names it, when the finding is in it.
    pub(crate) file: Option<String>,
    /// The 1-based line the fix belongs at, when there is one.
    pub(crate) line: Option<usize>,
}

impl CacheWarning {
    /// The warning as a [`Finding`]: rule `cache/<check>`, level warning, the Dockerfile
    /// (`dockerfile`, the build's, when the warning names none) and line, and as message
    /// the warning's with its fix on the next line (`<message>\n  fix: <fix>`).
    pub(crate) fn to_finding(&self, dockerfile: &str) -> Finding {
        Finding::new(
            CACHE_TOOL,
            self.check.rule(),
            Level::Warning,
            self.file.as_deref().unwrap_or(dockerfile),
            self.line.and_then(|l| u32::try_from(l).ok()),
            self.to_string(),
        )
    }
}

impl fmt::Display for CacheWarning {
    /// `<message>` and, on the next line, `  fix: <fix>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  fix: {}", self.message, self.fix)
    }
}

/// The files that list a Python project's dependencies (and a few other ecosystems'),
/// as found at the top of a copied folder.
const DEPENDENCY_LISTS: [&str; 16] = [
    "requirements.txt",
    "requirements.in",
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "Pipfile",
    "Pipfile.lock",
    "setup.py",
    "setup.cfg",
    "environment.yml",
    "conda-lock.yml",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "go.mod",
];

/// Commands that install dependencies, matched on whole words in a `RUN`.
const INSTALLERS: [&str; 24] = [
    "pip install",
    "pip3 install",
    "pip wheel",
    "pip3 wheel",
    "pip-sync",
    "poetry install",
    "poetry sync",
    "uv sync",
    "uv pip sync",
    "pipenv install",
    "pipenv sync",
    "pdm install",
    "pdm sync",
    "conda install",
    "conda env create",
    "mamba install",
    "micromamba install",
    "npm ci",
    "npm install",
    "yarn install",
    "pnpm install",
    "bundle install",
    "go mod download",
    "hatch env create",
];

/// What `pip install` can install without it being the project's dependencies.
const TOOLS: [&str; 11] = [
    "pip",
    "setuptools",
    "wheel",
    "uv",
    "poetry",
    "pipenv",
    "pdm",
    "virtualenv",
    "pip-tools",
    "hatch",
    "build",
];

/// Whether the environment says this is a CI run (`CI` set, and not `false` or `0`).
pub(crate) fn in_ci(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("CI").is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && !v.eq_ignore_ascii_case("false") && v != "0"
    })
}

impl Build {
    /// The cache set-up checks ([`CacheCheck`]) of this build, with the environment the
    /// runner gives its commands (`CI`, `RUNNER_ENVIRONMENT`): each finding with its fix,
    /// none for a remote context. Reads the Dockerfile and the context's folders, asks no
    /// engine, prints nothing; [`Build::run`](crate::plan::Step::run) runs them (while [`Build::explain`] is on),
    /// says each in the step log and keeps them in
    /// [`BuildResult::cache_warnings`](crate::docker::BuildResult::cache_warnings).
    pub(crate) fn cache_setup_warnings(
        &self,
        runner: &crate::Runner,
    ) -> anyhow::Result<Vec<CacheWarning>> {
        let context = self.context.to_string_lossy();
        if context.contains("://") || context.starts_with("git@") || context == "-" {
            return Ok(Vec::new());
        }
        let path = self.dockerfile_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read Dockerfile {}: {e}", path.display()))?;
        let probe = crate::Cmd::new("docker");
        Ok(check(self, &text, &|k| runner.effective_env(&probe, k)))
    }
}

impl Build {
    /// Before a run: the set-up checks (while the build explains itself), each said in the step log as `warning: ...` and `  fix: ...`.
    pub(crate) fn note_cache_setup(&self, runner: &crate::Runner) -> Vec<CacheWarning> {
        if !self.explain {
            return Vec::new();
        }
        match self.cache_setup_warnings(runner) {
            Ok(warnings) => {
                let warnings: Vec<CacheWarning> = warnings
                    .into_iter()
                    .map(|w| CacheWarning {
                        message: runner.redact(&w.message),
                        fix: runner.redact(&w.fix),
                        ..w
                    })
                    .collect();
                for w in &warnings {
                    runner.note(&format!("warning: {}", w.message));
                    runner.note(&format!("  fix: {}", w.fix));
                }
                warnings
            }
            Err(e) => {
                runner.note(&format!("warning: the cache set-up was not checked: {e:#}"));
                Vec::new()
            }
        }
    }
}

/// The cache set-up checks of `build`, whose Dockerfile reads `text`, with the environment
/// `env`; the checks in `build`'s skip list are left out.
pub(crate) fn check(
    build: &Build,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<CacheWarning> {
    let cx = Setup::new(build, text, env);
    let mut out = Vec::new();
    for check in CacheCheck::ALL {
        if build
            .skip_cache_checks
            .iter()
            .any(|rule| CacheCheck::of_rule(rule) == Some(check))
        {
            continue;
        }
        match check {
            CacheCheck::CopyBeforeInstall => cx.copy_before_install(&mut out),
            CacheCheck::ModeMinIntermediate => cx.mode_min(&mut out),
            CacheCheck::CacheFromWithoutCacheTo => cx.imported_not_exported(&mut out),
            CacheCheck::VolatileBuildArg => cx.volatile_args(&mut out),
            CacheCheck::CacheMountNotPersisted => cx.cache_mounts(&mut out),
            CacheCheck::BaseWithoutDigest => cx.unpinned_bases(&mut out),
        }
    }
    out
}

/// What the checks read, worked out once.
struct Setup<'a> {
    build: &'a Build,
    /// The Dockerfile as the build names it.
    file: String,
    /// Its file name, as messages cite lines.
    name: String,
    stages: Vec<DockerfileStage>,
    /// Global `ARG` defaults with the build args over them.
    global_vars: BTreeMap<String, String>,
    /// The stages the build reaches, by index, in Dockerfile order.
    reached: Vec<usize>,
    /// The stages the target builds on (`FROM <stage>`), the target first.
    chain: Vec<usize>,
    ci: bool,
    self_hosted: bool,
}

impl<'a> Setup<'a> {
    fn new(build: &'a Build, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Setup<'a> {
        let path = build.dockerfile_path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into());
        let mut global_vars = BTreeMap::new();
        for i in dockerfile::instructions(text)
            .iter()
            .take_while(|i| i.keyword != "FROM")
            .filter(|i| i.keyword == "ARG")
        {
            for word in i.args().split_whitespace() {
                if let Some((k, v)) = word.split_once('=') {
                    global_vars.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
        for (k, v) in &build.build_args {
            global_vars.insert(k.clone(), v.clone());
        }
        let stages = dockerfile::stages(text);
        let mut cx = Setup {
            build,
            file: path.display().to_string(),
            name,
            stages,
            global_vars,
            reached: Vec::new(),
            chain: Vec::new(),
            ci: in_ci(env),
            self_hosted: env("RUNNER_ENVIRONMENT").as_deref() == Some("self-hosted"),
        };
        let target = match &build.target {
            Some(t) => cx
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str())),
            None => cx.stages.len().checked_sub(1),
        };
        if let Some(target) = target {
            let mut at = Some(target);
            while let Some(i) = at {
                if cx.chain.contains(&i) {
                    break;
                }
                cx.chain.push(i);
                at = cx.stage_ref(&cx.stages[i].base, i);
            }
            let mut todo = vec![target];
            let mut seen = vec![false; cx.stages.len()];
            while let Some(i) = todo.pop() {
                if std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                todo.extend(cx.uses(i).into_iter().map(|(s, _)| s));
            }
            cx.reached = (0..cx.stages.len()).filter(|&i| seen[i]).collect();
        }
        cx
    }

    /// The stage `reference` names (a name or an index) as seen from stage `from`.
    fn stage_ref(&self, reference: &str, from: usize) -> Option<usize> {
        let r = expand(reference, &self.global_vars).unwrap_or_else(|| reference.to_string());
        let r = r.to_ascii_lowercase();
        if let Ok(n) = r.parse::<usize>() {
            return (n < from).then_some(n);
        }
        self.stages[..from]
            .iter()
            .position(|s| s.name.as_deref() == Some(r.as_str()))
    }

    /// The stages stage `i` uses (its base, `COPY --from`, `RUN --mount=from=`), each
    /// with the line that uses it.
    fn uses(&self, i: usize) -> Vec<(usize, usize)> {
        let stage = &self.stages[i];
        let mut out = Vec::new();
        if let Some(base) = self.stage_ref(&stage.base, i) {
            out.push((base, stage.line));
        }
        for instruction in &stage.instructions {
            for from in from_flags(instruction) {
                if let Some(s) = self.stage_ref(&from, i) {
                    out.push((s, instruction.line));
                }
            }
        }
        out
    }

    fn cite(&self, line: usize) -> String {
        format!("{}:{line}", self.name)
    }

    fn warning(
        &self,
        check: CacheCheck,
        line: Option<usize>,
        message: String,
        fix: String,
    ) -> CacheWarning {
        CacheWarning {
            check,
            message,
            fix,
            file: line.map(|_| self.file.clone()),
            line,
        }
    }

    fn stage_name(&self, i: usize) -> String {
        self.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    /// Whether the folder `path` of the build context (relative) holds a dependency list;
    /// `None` when it is not a folder there (a file, or not found).
    fn folder_holds_list(&self, path: &str) -> Option<bool> {
        let dir = self.build.context.join(path.trim_start_matches('/'));
        if !dir.is_dir() {
            return None;
        }
        Some(holds_dependency_list(&dir))
    }

    fn copy_before_install(&self, out: &mut Vec<CacheWarning>) {
        for &i in &self.reached {
            let stage = &self.stages[i];
            let mut installed = false;
            let mut broad: Option<(&DockerfileInstruction, bool)> = None;
            for instruction in &stage.instructions {
                match instruction.keyword.as_str() {
                    "COPY" | "ADD" if broad.is_none() && !installed => {
                        broad = self
                            .broad_copy(instruction)
                            .map(|whole| (instruction, whole));
                    }
                    "RUN" => {
                        let Some(tool) = installs_dependencies(&instruction.text) else {
                            continue;
                        };
                        if let Some((copy, whole)) = broad {
                            let what = if whole {
                                "copies the whole build context"
                            } else {
                                "copies a folder that holds the dependency list"
                            };
                            out.push(self.warning(
                                CacheCheck::CopyBeforeInstall,
                                Some(copy.line),
                                format!(
                                    "`{}` ({}) {what} before `{}` ({}) installs the \
                                     dependencies: a change to any copied file runs the \
                                     install ({tool}) again, every dependency downloaded \
                                     and built anew",
                                    first_line(&copy.text),
                                    self.cite(copy.line),
                                    short(&instruction.text),
                                    self.cite(instruction.line),
                                ),
                                "copy the dependency lists alone first (`COPY requirements.txt \
                                 pyproject.toml ./`), install from them, then copy the rest \
                                 of the sources"
                                    .into(),
                            ));
                            break;
                        }
                        installed = true;
                    }
                    _ => {}
                }
            }
        }
    }

    /// For a `COPY`/`ADD` from the build context that takes the whole context (`true`) or
    /// a folder holding a dependency list (`false`).
    fn broad_copy(&self, instruction: &DockerfileInstruction) -> Option<bool> {
        let recorded = RecordedInstruction {
            keyword: instruction.keyword.clone(),
            text: instruction.text.clone(),
            line: instruction.line,
        };
        let sources = copy_sources(&recorded, &self.global_vars)?;
        if sources.from.is_some() {
            return None;
        }
        let mut folder = false;
        for pattern in &sources.patterns {
            let p = pattern.trim_start_matches("./").trim_end_matches('/');
            if p.is_empty() || p == "." || p == "*" || p == "/" {
                return Some(true);
            }
            if !p.contains(['*', '?', '[']) && self.folder_holds_list(p) == Some(true) {
                folder = true;
            }
        }
        folder.then_some(false)
    }

    fn mode_min(&self, out: &mut Vec<CacheWarning>) {
        let caches = &self.build.cache_to;
        if caches.is_empty() || caches.iter().any(exports_max) {
            return;
        }
        // Stages the build reaches that the target does not build on, and that run
        // commands: mode=min exports none of their layers.
        let lost: Vec<usize> = self
            .reached
            .iter()
            .copied()
            .filter(|i| !self.chain.contains(i))
            .filter(|&i| {
                self.stages[i]
                    .instructions
                    .iter()
                    .any(|x| x.keyword == "RUN")
            })
            .collect();
        let Some(&first) = lost.first() else {
            return;
        };
        // Where the target's chain (or another stage) takes from it.
        let line = self
            .reached
            .iter()
            .flat_map(|&i| self.uses(i))
            .filter(|(s, _)| lost.contains(s))
            .map(|(_, line)| line)
            .min();
        let names: Vec<String> = lost
            .iter()
            .map(|&i| format!("`{}`", self.stage_name(i)))
            .collect();
        let target = self
            .chain
            .first()
            .map(|&i| self.stage_name(i))
            .unwrap_or_default();
        let dests: Vec<String> = caches.iter().map(|c| c.to_to_arg()).collect();
        let inline = caches.iter().any(|c| c.kind() == CacheKind::Inline);
        out.push(self.warning(
            CacheCheck::ModeMinIntermediate,
            line,
            format!(
                "the cache is exported with mode=min ({}): it keeps the layers of `{target}` \
                 only, not those of {} ({}), which the build copies from{}; a runner without \
                 a local cache runs {} again on every build",
                dests.join(" "),
                names.join(", "),
                self.cite(self.stages[first].line),
                line.map(|l| format!(" ({})", self.cite(l))).unwrap_or_default(),
                if lost.len() == 1 { "that stage" } else { "those stages" },
            ),
            if inline {
                "export a registry (or gha) cache with mode=max instead of the inline one: \
                 `Cache::registry(REF).mode_max(true)`; an inline cache is always mode=min"
                    .into()
            } else {
                "export with mode=max: `.mode_max(true)` on the `cache_to` cache".into()
            },
        ));
    }

    fn imported_not_exported(&self, out: &mut Vec<CacheWarning>) {
        if !self.ci || self.build.cache_from.is_empty() || !self.build.cache_to.is_empty() {
            return;
        }
        let sources: Vec<String> = self
            .build
            .cache_from
            .iter()
            .map(|c| c.to_from_arg())
            .collect();
        out.push(
            self.warning(
                CacheCheck::CacheFromWithoutCacheTo,
                None,
                format!(
                    "in CI (CI is set) the build imports a cache ({}) and exports none: every run \
                 starts from the same old cache (or none), and what it builds is lost with \
                 the runner",
                    sources.join(" ")
                ),
                "export the cache too: `.cache_to(..)` naming the same cache, with \
             `mode_max(true)`; when another job (the default branch's) writes it on purpose, \
             turn this check off with `skip_cache_check(\"cache/cache-from-without-cache-to\")`"
                    .into(),
            ),
        );
    }

    fn volatile_args(&self, out: &mut Vec<CacheWarning>) {
        for (name, value) in &self.build.build_args {
            let Some(kind) = volatile_value(name, value) else {
                continue;
            };
            let mut found: Option<(usize, usize, &DockerfileInstruction)> = None;
            for &i in &self.reached {
                let stage = &self.stages[i];
                let Some(declared) = stage
                    .args
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, line)| *line)
                    .min()
                else {
                    continue;
                };
                let run = stage
                    .instructions
                    .iter()
                    .find(|x| x.keyword == "RUN" && x.line > declared);
                if let Some(run) = run {
                    if found.is_none_or(|(_, line, _)| declared < line) {
                        found = Some((i, declared, run));
                    }
                }
            }
            let Some((stage, line, run)) = found else {
                continue;
            };
            out.push(self.warning(
                CacheCheck::VolatileBuildArg,
                Some(line),
                format!(
                    "build arg {name} looks like {kind}, which changes on every run, and \
                     stage `{}` declares it ({}) before `{}` ({}): BuildKit keys every later \
                     RUN of the stage on the values of the args declared before it, so that \
                     RUN and all after it rebuild on every run",
                    self.stage_name(stage),
                    self.cite(line),
                    short(&run.text),
                    self.cite(run.line),
                ),
                format!(
                    "declare `ARG {name}` after the stage's last RUN (where only LABEL or ENV \
                     read it), or pass the value as a label (`Build::label`) instead"
                ),
            ));
        }
    }

    fn cache_mounts(&self, out: &mut Vec<CacheWarning>) {
        if !self.ci || self.self_hosted || !self.build.cache_to.is_empty() {
            return;
        }
        let mut runs: Vec<&DockerfileInstruction> = self
            .reached
            .iter()
            .flat_map(|&i| &self.stages[i].instructions)
            .filter(|x| x.keyword == "RUN" && !cache_mount_targets(x).is_empty())
            .collect();
        runs.sort_by_key(|x| x.line);
        let Some(first) = runs.first() else {
            return;
        };
        let mut targets: Vec<String> = Vec::new();
        for run in &runs {
            for t in cache_mount_targets(run) {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
        let lines: Vec<String> = runs.iter().map(|x| x.line.to_string()).collect();
        let (steps, keep) = if runs.len() == 1 {
            ("the RUN step", "keeps")
        } else {
            ("the RUN steps", "keep")
        };
        out.push(
            self.warning(
                CacheCheck::CacheMountNotPersisted,
                Some(first.line),
                format!(
                    "in CI (CI is set), {steps} at {}:{} {keep} files in cache mounts of the \
                 builder ({}), and the build exports no cache: a CI runner starts with an \
                 empty builder, so those steps run from scratch, with empty mounts, on every \
                 run",
                    self.name,
                    lines.join(", "),
                    targets.join(", "),
                ),
                "export the build cache with mode=max (`.cache_to(Cache::gha().mode_max(true))` \
             or a registry cache), so that unchanged RUN steps come from it; to keep the \
             mounts' own files between runs, save and restore them around the build \
             (reproducible-containers/buildkit-cache-dance) or build on a persistent builder"
                    .into(),
            ),
        );
    }

    fn unpinned_bases(&self, out: &mut Vec<CacheWarning>) {
        let asked = if self.build.rewrite_timestamp {
            "rewrite_timestamp"
        } else if self
            .build
            .build_args
            .contains_key(crate::time::SOURCE_DATE_EPOCH)
        {
            "SOURCE_DATE_EPOCH"
        } else {
            return;
        };
        let mut seen: Vec<String> = Vec::new();
        for &i in &self.reached {
            let stage = &self.stages[i];
            if self.stage_ref(&stage.base, i).is_some() {
                continue;
            }
            let Some(image) = expand(&stage.base, &self.global_vars) else {
                continue;
            };
            if image.eq_ignore_ascii_case("scratch") || image.contains('@') || seen.contains(&image)
            {
                continue;
            }
            seen.push(image.clone());
            let via_arg = stage
                .base
                .contains('$')
                .then(|| arg_names(&stage.base))
                .filter(|names| !names.is_empty());
            out.push(self.warning(
                CacheCheck::BaseWithoutDigest,
                Some(stage.line),
                format!(
                    "a reproducible build is asked for ({asked}), and stage `{}` starts from \
                     `{image}` ({}) by tag, without a digest: the tag can move to another \
                     image, and the same sources then build another image",
                    self.stage_name(i),
                    self.cite(stage.line),
                ),
                match via_arg {
                    Some(names) => format!(
                        "pass the base by digest in the build arg {} \
                         (`{image}@sha256:<digest>`; `docker buildx imagetools inspect \
                         {image}` prints it)",
                        names.join(", ")
                    ),
                    None => format!(
                        "name the base by digest: `FROM {image}@sha256:<digest>` (`docker \
                         buildx imagetools inspect {image}` prints it)"
                    ),
                },
            ));
        }
    }
}

/// Whether a `--cache-to` cache exports every stage's layers (`mode=max`).
fn exports_max(cache: &crate::docker::cache::Cache) -> bool {
    cache.kind() != CacheKind::Inline && cache.to_to_arg().split(',').any(|f| f == "mode=max")
}

/// The `--from=` of a `COPY` and the `from=` of each `RUN --mount`.
fn from_flags(instruction: &DockerfileInstruction) -> Vec<String> {
    let mut out = Vec::new();
    for word in instruction.args().split_whitespace() {
        let Some(flag) = word.strip_prefix("--") else {
            break;
        };
        if let Some(from) = flag.strip_prefix("from=") {
            out.push(from.to_string());
        } else if let Some(mount) = flag.strip_prefix("mount=") {
            if let Some(from) = mount.split(',').find_map(|f| f.strip_prefix("from=")) {
                out.push(from.to_string());
            }
        }
    }
    out
}

/// The targets of a `RUN`'s cache mounts (`--mount=type=cache,target=/root/.cache/pip`).
fn cache_mount_targets(instruction: &DockerfileInstruction) -> Vec<String> {
    let mut out = Vec::new();
    for word in instruction.args().split_whitespace() {
        let Some(flag) = word.strip_prefix("--") else {
            break;
        };
        let Some(mount) = flag.strip_prefix("mount=") else {
            continue;
        };
        let fields: Vec<&str> = mount.split(',').collect();
        if fields.contains(&"type=cache") {
            let target = fields.iter().find_map(|f| {
                f.strip_prefix("target=")
                    .or_else(|| f.strip_prefix("dst="))
                    .or_else(|| f.strip_prefix("destination="))
            });
            out.push(target.unwrap_or("?").to_string());
        }
    }
    out
}

/// The names of the `$VAR`/`${VAR}` in `text`.
fn arg_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let after = rest[i + 1..].trim_start_matches('{');
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 {
            out.push(after[..len].to_string());
        }
        rest = &after[len..];
    }
    out
}

/// Whether the folder holds a dependency list at its top (or a `requirements/` folder).
fn holds_dependency_list(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        DEPENDENCY_LISTS.contains(&name.as_str())
            || (name.starts_with("requirements") && name.ends_with(".txt"))
            || (name == "requirements" && e.path().is_dir())
    })
}

/// The instruction's first line.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The instruction's first line, cut to 80 characters.
fn short(text: &str) -> String {
    let line = first_line(text);
    if line.chars().count() <= 80 {
        line.to_string()
    } else {
        format!("{}...", line.chars().take(77).collect::<String>())
    }
}

/// The installer a `RUN` runs to install dependencies (`pip install`), if it does: not a
/// `pip install` of packaging tools alone (`pip install --upgrade pip setuptools`).
pub(crate) fn installs_dependencies(run: &str) -> Option<&'static str> {
    let lower = run.to_ascii_lowercase();
    // The command, without the RUN keyword and its flags.
    let command: Vec<&str> = lower
        .split_whitespace()
        .skip(1)
        .skip_while(|w| w.starts_with("--"))
        .collect();
    let command = command.join(" ");
    for installer in INSTALLERS {
        let mut from = 0;
        while let Some(at) = command[from..].find(installer) {
            let start = from + at;
            let end = start + installer.len();
            from = end;
            let before_ok = command[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            let after_ok = command[end..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            if !before_ok || !after_ok {
                continue;
            }
            let pip = installer.ends_with("pip install") || installer.ends_with("pip3 install");
            if pip && installs_tools_only(&command[end..]) {
                continue;
            }
            return Some(installer);
        }
    }
    None
}

/// Whether the arguments of one `pip install` (up to the end of its command) name only
/// packaging tools.
fn installs_tools_only(args: &str) -> bool {
    let end = args.find(['&', ';', '|', '\n']).unwrap_or(args.len());
    let mut packages = Vec::new();
    let mut words = args[..end].split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "-r" | "--requirement" | "-e" | "--editable" | "-c" | "--constraint" => return false,
            w if w.starts_with("--requirement=") || w.starts_with("--editable=") => return false,
            // Options with a value of their own.
            "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links" | "--target"
            | "-t" | "--prefix" | "--root" | "--cache-dir" | "--platform" => {
                words.next();
            }
            w if w.starts_with('-') => {}
            w => packages.push(w.trim_matches(['"', '\''])),
        }
    }
    !packages.is_empty()
        && packages.iter().all(|p| {
            let name = p
                .split(['=', '<', '>', '~', '!', '[', ';'])
                .next()
                .unwrap_or(p);
            TOOLS.contains(&name)
        })
}

/// What a build arg's value looks like when it changes on every run: a date or time, a
/// commit SHA (or a version that carries one), a build number. `SOURCE_DATE_EPOCH` is left
/// alone: reproducible builds need it declared, and it changes only with the commit.
pub(crate) fn volatile_value(name: &str, value: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let v = value.trim();
    if upper == crate::time::SOURCE_DATE_EPOCH || v.is_empty() {
        return None;
    }
    let digits = v.chars().all(|c| c.is_ascii_digit());
    let hex = v.chars().all(|c| c.is_ascii_hexdigit());
    if looks_like_time(v) {
        return Some("a date or time");
    }
    if hex
        && !digits
        && (v.len() == 40 || (7..=12).contains(&v.len()))
        && v.chars().any(|c| c.is_ascii_alphabetic())
        && v.chars().any(|c| c.is_ascii_digit())
    {
        return Some("a commit SHA");
    }
    if carries_commit(v) {
        return Some("a version that carries a commit SHA");
    }
    let named = |words: &[&str]| words.iter().any(|w| upper.contains(w));
    if digits
        && named(&[
            "BUILD_NUM",
            "BUILD_ID",
            "RUN_NUMBER",
            "RUN_ID",
            "PIPELINE_ID",
            "JOB_ID",
            "BUILD_NO",
        ])
    {
        return Some("a build number");
    }
    if named(&["BUILD_DATE", "BUILD_TIME", "TIMESTAMP", "CREATED"]) {
        return Some("a date or time");
    }
    if hex && v.len() >= 7 && named(&["SHA", "COMMIT", "REVISION", "VCS_REF", "GIT_REF"]) {
        return Some("a commit SHA");
    }
    None
}

/// `2025-01-31`, `2025-01-31T12:00:00Z`, `20250131`, `12:34:56`, or Unix seconds of this
/// century (10 digits from 1).
fn looks_like_time(v: &str) -> bool {
    let b = v.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let plausible = |y: &[u8], m: &[u8], day: &[u8]| {
        let n = |s: &[u8]| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
        };
        matches!((n(y), n(m), n(day)), (Some(y), Some(m), Some(dd))
            if (1970..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&dd))
    };
    // 2025-01-31...
    if b.len() >= 10
        && (0..4).all(d)
        && b[4] == b'-'
        && d(5)
        && d(6)
        && b[7] == b'-'
        && d(8)
        && d(9)
    {
        return plausible(&b[0..4], &b[5..7], &b[8..10]);
    }
    // 20250131, 20250131T1200, 20250131-120000
    if b.len() >= 8 && (0..8).all(d) && (b.len() == 8 || matches!(b[8], b'T' | b'-' | b'_' | b'.'))
    {
        return plausible(&b[0..4], &b[4..6], &b[6..8]);
    }
    // 12:34 / 12:34:56
    if b.len() >= 5 && d(0) && d(1) && b[2] == b':' && d(3) && d(4) {
        return true;
    }
    // Unix seconds 1000000000..=1999999999 (2001..2033).
    b.len() == 10 && b[0] == b'1' && (0..10).all(d)
}

/// A version that carries a commit: `1.2.dev3+g1a2b3c4`, `v1.2-5-g1a2b3c4`.
fn carries_commit(v: &str) -> bool {
    for marker in ["+g", "-g", ".g"] {
        for (at, _) in v.match_indices(marker) {
            let tail: String = v[at + 2..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            if tail.len() >= 7 && tail.chars().any(|c| c.is_ascii_digit()) {
                return true;
            }
        }
    }
    false
}
