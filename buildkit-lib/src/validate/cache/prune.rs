//! Removing build cache: `docker buildx prune` with an age and a size to keep, globally or
//! only for the records this project's Dockerfile steps made, with a dry run that lists
//! what would go.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::usage::*;
use crate::cmd::{Cmd, Runner};
use crate::plan::Step;
use crate::units::{human_bytes, parse_docker_size as parse_size};

/// Removing build cache: `docker buildx prune --force` with an age and a size to keep.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::Prune;
/// use buildkit_lib::Runner;
///
/// let prune = Prune::new().until(Duration::from_secs(24 * 3600));
/// let plan = prune.plan(&Runner::new()).unwrap().to_string();
/// assert!(plan.starts_with("? docker system df --verbose"), "{plan}");
/// assert!(plan.contains("$ docker buildx prune --force --filter until=24h"), "{plan}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Prune {
    /// The builder (`--builder`), the current one when `None`.
    pub(crate) builder: Option<String>,
    /// Only records unused for longer than this (`--filter until=24h`).
    pub(crate) until: Option<Duration>,
    /// Keep this many bytes of the most recently used cache (`--keep-storage`).
    pub(crate) keep_storage: Option<u64>,
    /// Include internal and frontend records (`--all`).
    pub(crate) all: bool,
    /// More BuildKit filters (`--filter KEY=VALUE`, exact matches), such as `id=ID` or
    /// `type=regular`. The dry run understands `id`, `type` and `description`; other keys
    /// are passed on but not predicted.
    pub(crate) filters: Vec<String>,
    /// Only the records the steps of these Dockerfiles made: this project's cache.
    pub(crate) dockerfiles: Vec<std::path::PathBuf>,
}

impl Prune {
    /// A prune of the current builder's unused cache, with no age, size or filter limits
    /// until set.
    pub fn new() -> Prune {
        Prune::default()
    }

    /// The builder (`--builder`), the current one when `None`.
    pub fn builder(mut self, builder: impl Into<String>) -> Prune {
        self.builder = Some(builder.into());
        self
    }

    /// Only records unused for longer than this (`--filter until=24h`).
    pub fn until(mut self, until: Duration) -> Prune {
        self.until = Some(until);
        self
    }

    /// Keep this many bytes of the most recently used cache (`--keep-storage`).
    pub fn keep_storage(mut self, keep_storage: u64) -> Prune {
        self.keep_storage = Some(keep_storage);
        self
    }

    /// Include internal and frontend records (`--all`).
    pub fn all(mut self, on: bool) -> Prune {
        self.all = on;
        self
    }

    /// More BuildKit filters (`--filter KEY=VALUE`, exact matches), such as `id=ID` or
    /// `type=regular`. The dry run understands `id`, `type` and `description`; other keys
    /// are passed on but not predicted.
    ///
    /// Adds one; call again for more.
    pub fn filter(mut self, filter: impl Into<String>) -> Prune {
        self.filters.push(filter.into());
        self
    }

    /// Prunes only this project's build cache: the records the steps of this Dockerfile
    /// made (a record whose description names one of its steps, on a base image layer or
    /// on another such record), in groups of 100 ids, one `docker buildx prune` each; with
    /// no record of the project, no prune runs. The builder, `until` and `all` apply;
    /// [`Prune::filter`] and [`Prune::keep_storage`] cannot be set with it.
    ///
    /// Cache records carry no project name, so this is the closest scope there is:
    /// another project whose Dockerfile starts with the very same steps shares those
    /// records (content-addressed), and they are selected too.
    ///
    /// Adds one; call again for more.
    pub fn dockerfile(mut self, dockerfile: impl Into<std::path::PathBuf>) -> Prune {
        self.dockerfiles.push(dockerfile.into());
        self
    }
}

/// Whether a record passes one `--filter` expression; `None` when the dry run cannot tell.
fn filter_matches(filter: &str, r: &CacheRecord) -> Option<bool> {
    let (key, op, value) = ["==", "!=", "="].iter().find_map(|op| {
        filter
            .split_once(op)
            .map(|(k, v)| (k.trim(), *op, v.trim()))
    })?;
    if key == "id" && op == "=" && value.starts_with('^') && value.ends_with('$') {
        // What `id_filter` writes: buildx matches `id=` as a regular expression.
        let inner = value[1..value.len() - 1]
            .trim_start_matches('(')
            .trim_end_matches(')');
        return Some(inner.split('|').any(|id| id == r.id));
    }
    let field = match key {
        "id" => r.id.as_str(),
        "type" => r.kind.as_str(),
        "description" => r.description.as_str(),
        _ => return None,
    };
    Some(if op == "!=" {
        field != value
    } else {
        field == value
    })
}

/// What a prune would remove, computed from the cache records with BuildKit's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PrunePlan {
    /// The records that would go, least recently used first.
    pub(crate) records: Vec<CacheRecord>,
    /// Their bytes (shared records free less than this).
    pub(crate) bytes: u64,
    /// Bytes of cache that stay.
    pub(crate) kept_bytes: u64,
}

impl fmt::Display for PrunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.records.len() == 1 { "" } else { "s" };
        write!(
            f,
            "would remove {} build cache record{plural}, {} ({} kept)",
            self.records.len(),
            human_bytes(self.bytes),
            human_bytes(self.kept_bytes)
        )?;
        for r in &self.records {
            let used = r.last_used.as_deref().unwrap_or("never used");
            write!(
                f,
                "\n  {:>10}  {}  {} ({used})",
                human_bytes(r.size_bytes),
                r.id,
                r.description
            )?;
        }
        Ok(())
    }
}

/// What a prune did: what it expected to remove, computed before pruning (its `Display`
/// lists those records, least recently used first: in a dry run, all there is to see of
/// what the prune would do), and what the engine reported freed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneResult {
    /// The records computed before pruning (what was expected to go).
    pub(crate) plan: PrunePlan,
    /// The bytes of the records expected to go (shared records free less than this).
    pub planned_bytes: u64,
    /// The bytes the engine reported freed (`Total:`), 0 in a dry run.
    pub reclaimed_bytes: u64,
}

impl PruneResult {
    fn new(plan: PrunePlan, reclaimed_bytes: u64) -> PruneResult {
        PruneResult {
            planned_bytes: plan.bytes,
            plan,
            reclaimed_bytes,
        }
    }
}

impl fmt::Display for PruneResult {
    /// The records expected to go (`would remove 1 build cache record, 3.05 MB (0 B
    /// kept)`, then one line per record).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.plan.fmt(f)
    }
}

impl Prune {
    /// The command line.
    pub(crate) fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "prune", "--force"]);
        if let Some(b) = &self.builder {
            cmd = cmd.arg("--builder").arg(b);
        }
        if self.all {
            cmd = cmd.arg("--all");
        }
        if let Some(age) = self.until {
            cmd = cmd
                .arg("--filter")
                .arg(format!("until={}", go_duration(age)));
        }
        for f in &self.filters {
            cmd = cmd.arg("--filter").arg(f);
        }
        if let Some(keep) = self.keep_storage {
            cmd = cmd.arg("--keep-storage").arg(keep.to_string());
        }
        cmd
    }

    /// The records this prune would remove at time `now` (seconds since the epoch), with
    /// BuildKit's rules: never a record in use; internal and frontend records only with
    /// `all`; with `until`, only records last used (or, never used, created) before
    /// `now - until`; only records passing [`Prune::filter`]; with `keep_storage`, least
    /// recently used first until what stays fits.
    pub(crate) fn predict(&self, records: &[CacheRecord], now: i64) -> PrunePlan {
        let total: u64 = records.iter().map(|r| r.size_bytes).sum();
        let mut candidates: Vec<&CacheRecord> = records
            .iter()
            .filter(|r| !r.in_use && r.reclaimable)
            .filter(|r| self.all || !matches!(r.kind.as_str(), "internal" | "frontend"))
            .filter(|r| {
                self.filters
                    .iter()
                    .all(|f| filter_matches(f, r).unwrap_or(true))
            })
            .filter(|r| match self.until {
                Some(age) => {
                    let used = r.last_used_at.or(r.created_at).unwrap_or(now);
                    used < now - age.as_secs() as i64
                }
                None => true,
            })
            .collect();
        candidates.sort_by_key(|r| {
            (
                r.last_used_at.or(r.created_at).unwrap_or(i64::MAX),
                r.id.clone(),
            )
        });
        let mut chosen = Vec::new();
        let mut remaining = total;
        for r in candidates {
            if let Some(keep) = self.keep_storage {
                if remaining <= keep {
                    break;
                }
            }
            remaining -= r.size_bytes;
            chosen.push(r.clone());
        }
        PrunePlan {
            bytes: chosen.iter().map(|r| r.size_bytes).sum(),
            records: chosen,
            kept_bytes: remaining,
        }
    }

    /// What this prune would remove now. For the engine's own builder the records come from
    /// `docker system df --verbose` (exact times); for a named builder from `docker buildx
    /// du --verbose`, whose last-use times are read back from text like `3 hours ago`
    /// (so an `until` near a record's age may be predicted either way).
    ///
    /// The listing is a read-only query: a dry run makes it when its runner allows
    /// queries ([`Runner::dry_run_queries`]); otherwise it answers an empty cache.
    pub(crate) fn dry_run(&self, runner: &Runner) -> Result<PrunePlan> {
        if !self.dockerfiles.is_empty() {
            return Ok(self.project_plan(runner)?.1);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let records = match &self.builder {
            None => cache_records(runner)?,
            Some(builder) => {
                let mut records = buildx_du(runner, Some(builder))?.records;
                for r in &mut records {
                    r.last_used_at = r
                        .last_used
                        .as_deref()
                        .and_then(parse_ago)
                        .map(|ago| now - ago as i64);
                }
                records
            }
        };
        Ok(self.predict(&records, now))
    }
}

impl Step for Prune {
    type Output = PruneResult;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &PruneResult) -> Option<String> {
        Some(output.to_string())
    }

    /// Prunes: lists the cache to predict what goes (the [`PruneResult`]'s records; on a dry-run
    /// runner that lets queries run, all a dry run does), says so, then
    /// prunes. Its plan is this body recorded: the listing (`docker system df --verbose`
    /// for the engine's own builder, `docker buildx du --verbose` for a named one), then
    /// the prune (for a [`Prune::dockerfile`] prune, one per 100 records of the project:
    /// none in a plan, whose listing is empty).
    fn run(&self, runner: &Runner) -> Result<PruneResult> {
        if !self.dockerfiles.is_empty() {
            return self.prune_project(runner);
        }
        let plan = self.dry_run(runner)?;
        runner.note(&plan.to_string());
        let out = runner
            .capture(&self.command())
            .context("cannot prune the build cache")?;
        let reclaimed_bytes = reclaimed(&out.stdout)?;
        Ok(PruneResult::new(plan, reclaimed_bytes))
    }
}

/// The steps of a Dockerfile as BuildKit describes the cache records they make, with
/// whitespace collapsed: `WORKDIR /app`, `COPY src/ /app/`, and for `RUN` the command as
/// the record's `mount / from exec` names it (`/bin/sh -c pip install ...`). Heredocs
/// count by their first line, as BuildKit describes them.
pub(crate) fn dockerfile_steps(text: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut current = String::new();
    let mut heredoc: Option<String> = None;
    for line in text.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if !current.is_empty() && trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        if let Some(pos) = current.find("<<") {
            let word: String = current[pos + 2..]
                .trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                heredoc = Some(word);
            }
        }
        let step = std::mem::take(&mut current);
        let step = collapse(&step);
        let (instruction, rest) = step.split_once(' ').unwrap_or((&step, ""));
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" | "ARG" | "ENV" | "LABEL" | "EXPOSE" | "USER" | "CMD" | "ENTRYPOINT"
            | "HEALTHCHECK" | "STOPSIGNAL" | "SHELL" | "VOLUME" | "ONBUILD" | "MAINTAINER" => {}
            "RUN" => {
                // Options (`--mount=...`) are not part of the record's description.
                let words: Vec<&str> = rest.split(' ').collect();
                let body = words
                    .iter()
                    .skip_while(|w| w.starts_with("--"))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                match serde_json::from_str::<Vec<String>>(&body) {
                    Ok(argv) => steps.push(collapse(&argv.join(" "))),
                    Err(_) => steps.push(format!("/bin/sh -c {body}")),
                }
            }
            _ => steps.push(step.clone()),
        }
    }
    steps.sort();
    steps.dedup();
    steps
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The step a cache record's description names, in the form of [`dockerfile_steps`]:
/// `[runtime 5/11] COPY a b` gives `COPY a b`; `mount / from exec /bin/sh -c x` and
/// `cached mount /root/.cache from exec /bin/sh -c x` give `/bin/sh -c x`. `None` for
/// records no Dockerfile step names (local sources, pulled base layers).
pub(crate) fn record_step(description: &str) -> Option<String> {
    if let Some(rest) = description.strip_prefix('[') {
        let (_, step) = rest.split_once("] ")?;
        return Some(collapse(step));
    }
    if description.starts_with("mount ") || description.starts_with("cached mount ") {
        let (_, cmd) = description.split_once(" from exec ")?;
        return Some(collapse(cmd));
    }
    None
}

/// The records the steps of a project's Dockerfiles made: a record whose description names
/// one of `steps`, and whose parent is not itself a step record of another Dockerfile (its
/// parent is a base image layer, or a record selected here).
///
/// Cache records carry no labels or project name in BuildKit 0.13, so this is the closest
/// scope there is: another project whose Dockerfile starts with the very same steps makes
/// records with the same descriptions, and they are selected too (when on the same parent,
/// they are in fact the same record, content-addressed and shared by both). Local sources
/// (`local source for context`) name no project and are never selected.
pub(crate) fn project_records(records: &[CacheRecord], steps: &[String]) -> Vec<CacheRecord> {
    use std::collections::{BTreeMap, BTreeSet};
    let by_id: BTreeMap<&str, &CacheRecord> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let ours = |r: &CacheRecord| record_step(&r.description).is_some_and(|s| steps.contains(&s));
    let mut selected: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = selected.len();
        for r in records.iter().filter(|r| ours(r)) {
            let parent_ok = match r.parent.as_deref().and_then(|p| by_id.get(p)) {
                None => true,
                Some(p) => {
                    selected.contains(p.id.as_str()) || record_step(&p.description).is_none()
                }
            };
            if parent_ok {
                selected.insert(r.id.as_str());
            }
        }
        if selected.len() == before {
            break;
        }
    }
    records
        .iter()
        .filter(|r| selected.contains(r.id.as_str()))
        .cloned()
        .collect()
}

/// The `--filter` naming exactly these record ids: BuildKit matches `id` as a regular
/// expression, so the ids are anchored (`id=^(a|b)$`), one filter for many ids (buildx
/// takes one value per filter key).
pub(crate) fn id_filter(ids: &[&str]) -> String {
    format!("id=^({})$", ids.join("|"))
}

impl Prune {
    /// What a [`Prune::dockerfile`] prune would remove: the records of the project's
    /// Dockerfiles among those the same prune without them would.
    fn project_plan(&self, runner: &Runner) -> Result<(Prune, PrunePlan)> {
        anyhow::ensure!(
            self.filters.is_empty() && self.keep_storage.is_none(),
            "a prune of the project's Dockerfiles' records takes no `filter` and no \
             `keep_storage`: it names the records to remove by id"
        );
        let mut steps = Vec::new();
        for file in &self.dockerfiles {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            steps.extend(dockerfile_steps(&text));
        }
        steps.sort();
        steps.dedup();
        let scope = Prune {
            dockerfiles: Vec::new(),
            ..self.clone()
        };
        let everything = scope.dry_run(runner)?;
        let plan_records = project_records(&everything.records, &steps);
        let bytes = plan_records.iter().map(|r| r.size_bytes).sum();
        let plan = PrunePlan {
            kept_bytes: everything.bytes + everything.kept_bytes - bytes,
            bytes,
            records: plan_records,
        };
        Ok((scope, plan))
    }

    /// The [`Prune::dockerfile`] prune: the records of the project's Dockerfiles, by id.
    fn prune_project(&self, runner: &Runner) -> Result<PruneResult> {
        let (scope, plan) = self.project_plan(runner)?;
        runner.note(&plan.to_string());
        let mut reclaimed_bytes = 0;
        for chunk in plan.records.chunks(100) {
            let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
            let prune = Prune {
                filters: vec![id_filter(&ids)],
                ..scope.clone()
            };
            let out = runner
                .capture(&prune.command())
                .context("cannot prune the project's build cache")?;
            reclaimed_bytes += reclaimed(&out.stdout)?;
        }
        Ok(PruneResult::new(plan, reclaimed_bytes))
    }
}

/// The `Total:` a prune printed, in bytes.
fn reclaimed(stdout: &str) -> Result<u64> {
    Ok(stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Total:"))
        .next_back()
        .map(|v| parse_size(v.trim()))
        .transpose()?
        .unwrap_or(0))
}
