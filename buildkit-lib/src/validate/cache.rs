//! Build cache and disk usage: `docker system df`, `docker buildx du` and the build cache
//! records parsed into typed usage, one reconciled figure ([`cache_usage`]: what each
//! command counts), and prune steps (`docker buildx prune` with `until` and
//! `--keep-storage`, globally or only for this project's records with [`prune_project`])
//! whose dry run lists what would go.
//!
//! The docker CLI prints these sizes only as human text (`"251.8MB"`, four significant
//! digits), so the byte counts here are parsed from it and exact to about 0.1%; image
//! sizes for budgets come from the engine's byte counts instead (see [`super::size`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd::{Cmd, Runner};
use crate::units::human_bytes;

/// Parses a size as the docker CLI prints it (`0B`, `61.44kB`, `3.05MB`, `1.2 GB`,
/// `112.6MB (52%)`, `93.34MB*`, `2GiB`) into bytes. Decimal units are powers of 1000,
/// `KiB`/`MiB`/... powers of 1024.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text
        .split('(')
        .next()
        .unwrap_or(text)
        .trim()
        .trim_end_matches('*')
        .trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a size"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "pb" | "p" => 1e15,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => bail!("`{text}` has an unknown size unit `{unit}`"),
    };
    Ok((value * factor).round() as u64)
}

/// A kind of disk usage in `docker system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageKind {
    /// Images.
    Images,
    /// Containers.
    Containers,
    /// Local volumes.
    Volumes,
    /// Build cache.
    BuildCache,
    /// A kind this library does not know (kept by name).
    Other(String),
}

impl UsageKind {
    fn from_type(name: &str) -> UsageKind {
        match name {
            "Images" => UsageKind::Images,
            "Containers" => UsageKind::Containers,
            "Local Volumes" => UsageKind::Volumes,
            "Build Cache" => UsageKind::BuildCache,
            other => UsageKind::Other(other.to_string()),
        }
    }
}

/// One line of `docker system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// What it counts.
    pub kind: UsageKind,
    /// How many there are.
    pub count: u64,
    /// How many are in use.
    pub active: u64,
    /// Their size in bytes.
    pub size_bytes: u64,
    /// What pruning could free, in bytes.
    pub reclaimable_bytes: u64,
}

/// `docker system df`, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemUsage {
    /// One row per kind, in the engine's order.
    pub rows: Vec<UsageRow>,
}

impl SystemUsage {
    /// The row of one kind.
    pub fn get(&self, kind: &UsageKind) -> Option<&UsageRow> {
        self.rows.iter().find(|r| &r.kind == kind)
    }

    /// Total bytes over all kinds.
    pub fn total_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.size_bytes).sum()
    }

    /// Total reclaimable bytes over all kinds.
    pub fn reclaimable_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.reclaimable_bytes).sum()
    }
}

impl fmt::Display for SystemUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {:>6} {:>6} {:>10} {:>12}",
            "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"
        )?;
        for r in &self.rows {
            let name = match &r.kind {
                UsageKind::Images => "images",
                UsageKind::Containers => "containers",
                UsageKind::Volumes => "volumes",
                UsageKind::BuildCache => "build cache",
                UsageKind::Other(o) => o.as_str(),
            };
            write!(
                f,
                "\n{name:<14} {:>6} {:>6} {:>10} {:>12}",
                r.count,
                r.active,
                human_bytes(r.size_bytes),
                human_bytes(r.reclaimable_bytes)
            )?;
        }
        Ok(())
    }
}

fn count(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn size(v: &Value) -> Result<u64> {
    match v {
        Value::Number(n) => Ok(n.as_u64().unwrap_or(0)),
        Value::String(s) if s == "N/A" || s.is_empty() => Ok(0),
        Value::String(s) => parse_size(s),
        _ => Ok(0),
    }
}

/// The command for [`system_df`].
pub fn system_df_command() -> Cmd {
    Cmd::new("docker")
        .args(["system", "df", "--format", "json"])
        .read_only()
}

/// Runs a `docker system df` query, again (up to 3 times) when it trips over an image or a
/// container being removed at the same moment (the engine then fails the whole listing),
/// or over another disk-usage query.
fn capture_df(runner: &Runner, cmd: &Cmd) -> Result<String, crate::CommandError> {
    let mut attempt = 0;
    loop {
        match runner.capture(cmd) {
            Ok(out) => return Ok(out.stdout),
            Err(e) if attempt < 2 && transient_df(&e) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(300 * attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads `docker system df --format json`.
pub fn system_df(runner: &Runner) -> Result<SystemUsage> {
    let stdout =
        capture_df(runner, &system_df_command()).context("cannot read the engine's disk usage")?;
    parse_system_df(&stdout)
}

/// Parses `docker system df --format json` (one object a line, or one JSON array).
pub fn parse_system_df(text: &str) -> Result<SystemUsage> {
    let text = text.trim();
    let items: Vec<Value> = if text.starts_with('[') {
        serde_json::from_str(text).context("`docker system df` printed bad JSON")?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .context("`docker system df` printed a line that is not JSON")
            })
            .collect::<Result<_>>()?
    };
    let rows = items
        .iter()
        .map(|v| {
            Ok(UsageRow {
                kind: UsageKind::from_type(v["Type"].as_str().unwrap_or_default()),
                count: count(&v["TotalCount"]),
                active: count(&v["Active"]),
                size_bytes: size(&v["Size"])?,
                reclaimable_bytes: size(&v["Reclaimable"])?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(SystemUsage { rows })
}

/// One build cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// Its id.
    pub id: String,
    /// The record it builds on, if any.
    pub parent: Option<String>,
    /// What made it (`[stage 2/4] RUN pip install ...`, `local source for context`).
    pub description: String,
    /// Its type (`regular`, `source.local`, `exec.cachemount`, `frontend`, `internal`).
    pub kind: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Shared with other records (pruning it alone frees less).
    pub shared: bool,
    /// In use by a running build: never pruned.
    pub in_use: bool,
    /// Whether a prune may remove it (`buildx du`; `!in_use` from `system df`).
    pub reclaimable: bool,
    /// How often it was used.
    pub usage_count: u64,
    /// When it was made, seconds since the epoch (when known).
    pub created_at: Option<i64>,
    /// When it was last used, seconds since the epoch (when known).
    pub last_used_at: Option<i64>,
    /// When it was last used as the CLI says it (`4 minutes ago`), for `buildx du`.
    pub last_used: Option<String>,
}

/// The command for [`cache_records`].
pub fn cache_records_command() -> Cmd {
    Cmd::new("docker")
        .args(["system", "df", "--verbose", "--format", "json"])
        .read_only()
}

/// The engine's build cache records with absolute times (`docker system df --verbose
/// --format json`, the builder of the `docker` driver).
pub fn cache_records(runner: &Runner) -> Result<Vec<CacheRecord>> {
    let stdout =
        capture_df(runner, &cache_records_command()).context("cannot list the build cache")?;
    parse_cache_records(&stdout)
}

/// Parses the `BuildCache` list of `docker system df --verbose --format json`.
pub fn parse_cache_records(text: &str) -> Result<Vec<CacheRecord>> {
    let v: Value = serde_json::from_str(text.trim())
        .context("`docker system df --verbose` printed bad JSON")?;
    let flag = |x: &Value| x.as_str() == Some("true") || x.as_bool() == Some(true);
    v["BuildCache"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let in_use = flag(&r["InUse"]);
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            Ok(CacheRecord {
                id: text("ID").trim_end_matches('*').to_string(),
                parent: Some(text("Parent")).filter(|p| !p.is_empty()),
                description: text("Description"),
                kind: text("CacheType"),
                size_bytes: size(&r["Size"])?,
                shared: flag(&r["Shared"]),
                in_use,
                reclaimable: !in_use,
                usage_count: count(&r["UsageCount"]),
                created_at: parse_docker_time(&text("CreatedAt")),
                last_used_at: parse_docker_time(&text("LastUsedAt")),
                last_used: Some(text("LastUsedSince")).filter(|s| !s.is_empty()),
            })
        })
        .collect()
}

/// `docker buildx du --verbose`, typed: the records and the totals it prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderUsage {
    /// Every record.
    pub records: Vec<CacheRecord>,
    /// Bytes shared between records.
    pub shared_bytes: u64,
    /// Bytes private to one record.
    pub private_bytes: u64,
    /// Bytes a prune could free.
    pub reclaimable_bytes: u64,
    /// All bytes.
    pub total_bytes: u64,
}

impl BuilderUsage {
    /// Bytes per record type (`regular`, `source.local`, ...), biggest first, with counts.
    pub fn by_kind(&self) -> Vec<(String, usize, u64)> {
        let mut out: Vec<(String, usize, u64)> = Vec::new();
        for r in &self.records {
            match out.iter_mut().find(|(k, _, _)| *k == r.kind) {
                Some(slot) => {
                    slot.1 += 1;
                    slot.2 += r.size_bytes;
                }
                None => out.push((r.kind.clone(), 1, r.size_bytes)),
            }
        }
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// The command for [`buildx_du`].
pub fn buildx_du_command(builder: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("docker").args(["buildx", "du", "--verbose"]);
    if let Some(b) = builder {
        cmd = cmd.arg("--builder").arg(b);
    }
    cmd.read_only()
}

/// Reads `docker buildx du --verbose` of a builder (the current one when `None`).
pub fn buildx_du(runner: &Runner, builder: Option<&str>) -> Result<BuilderUsage> {
    let out = runner
        .capture(&buildx_du_command(builder))
        .context("cannot read the builder's cache usage")?;
    parse_buildx_du(&out.stdout)
}

/// Parses `docker buildx du --verbose`: `Key:<tabs>value` blocks separated by blank lines,
/// then the `Shared`/`Private`/`Reclaimable`/`Total` lines.
pub fn parse_buildx_du(text: &str) -> Result<BuilderUsage> {
    let mut usage = BuilderUsage::default();
    for block in text.split("\n\n") {
        let fields: Vec<(&str, &str)> = block
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if let Some(id) = get("ID") {
            let yes = |key: &str| get(key) == Some("true");
            usage.records.push(CacheRecord {
                id: id.trim_end_matches('*').to_string(),
                parent: get("Parent").map(str::to_string),
                description: get("Description").unwrap_or_default().to_string(),
                kind: get("Type").unwrap_or_default().to_string(),
                size_bytes: get("Size").map(parse_size).transpose()?.unwrap_or(0),
                shared: yes("Shared"),
                // `buildx du` prints `Reclaimable` as "not in use".
                in_use: get("Reclaimable") == Some("false"),
                reclaimable: yes("Reclaimable"),
                usage_count: get("Usage count").and_then(|c| c.parse().ok()).unwrap_or(0),
                created_at: get("Created at").and_then(parse_docker_time),
                last_used_at: None,
                last_used: get("Last used").map(str::to_string),
            });
            continue;
        }
        for (key, value) in fields {
            let bytes = || parse_size(value);
            match key {
                "Shared" => usage.shared_bytes = bytes()?,
                "Private" => usage.private_bytes = bytes()?,
                "Reclaimable" => usage.reclaimable_bytes = bytes()?,
                "Total" => usage.total_bytes = bytes()?,
                _ => {}
            }
        }
    }
    Ok(usage)
}

/// Parses the engine's `2026-11-21 05:45:02.276432007 +0000 UTC` into seconds since the
/// epoch.
pub fn parse_docker_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let offset = parts.next().unwrap_or("+0000");
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let min: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.split('.').next()?.parse().ok()?;
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = offset.trim_start_matches(['+', '-']);
    let off = if digits.len() == 4 {
        sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
    } else {
        0
    };
    Some(days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + sec - off)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads back a relative time as the docker CLI prints it (`Less than a second ago`,
/// `About a minute ago`, `5 hours ago`, `3 weeks ago`) as seconds; months are 30 days,
/// years 365.
pub fn parse_ago(text: &str) -> Option<u64> {
    let t = text.trim().trim_end_matches(" ago").to_ascii_lowercase();
    match t.as_str() {
        "less than a second" => return Some(0),
        "about a minute" => return Some(60),
        "about an hour" => return Some(3600),
        _ => {}
    }
    let (n, unit) = t.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_secs = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 30 * 86_400,
        "year" => 365 * 86_400,
        _ => return None,
    };
    Some(n * unit_secs)
}

/// A duration as Go parses it for `--filter until=` (`24h`, `90m`, `45s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Removing build cache: `docker buildx prune --force` with an age and a size to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prune {
    /// The builder (`--builder`), the current one when `None`.
    pub builder: Option<String>,
    /// Only records unused for longer than this (`--filter until=24h`).
    pub until: Option<Duration>,
    /// Keep this many bytes of the most recently used cache (`--keep-storage`).
    pub keep_storage: Option<u64>,
    /// Include internal and frontend records (`--all`).
    pub all: bool,
    /// More BuildKit filters (`--filter KEY=VALUE`, exact matches), such as `id=ID` or
    /// `type=regular`. The dry run understands `id`, `type` and `description`; other keys
    /// are passed on but not predicted.
    pub filters: Vec<String>,
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
pub struct PrunePlan {
    /// The records that would go, least recently used first.
    pub records: Vec<CacheRecord>,
    /// Their bytes (shared records free less than this).
    pub bytes: u64,
    /// Bytes of cache that stay.
    pub kept_bytes: u64,
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

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneResult {
    /// The plan computed before pruning (what was expected to go).
    pub plan: PrunePlan,
    /// The bytes the engine reported freed (`Total:`), 0 in a dry run.
    pub reclaimed_bytes: u64,
    /// True when nothing was removed because of a dry run.
    pub dry_run: bool,
}

impl Prune {
    /// The command line.
    pub fn command(&self) -> Cmd {
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
    /// `now - until`; only records passing [`Prune::filters`]; with `keep_storage`, least
    /// recently used first until what stays fits.
    pub fn plan(&self, records: &[CacheRecord], now: i64) -> PrunePlan {
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
    pub fn dry_run(&self, runner: &Runner) -> Result<PrunePlan> {
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
        Ok(self.plan(&records, now))
    }

    /// Prunes. In a dry run it prints the plan and the command and removes nothing.
    pub fn run(&self, runner: &Runner) -> Result<PruneResult> {
        let plan = self.dry_run(runner)?;
        if runner.is_dry_run() {
            println!("{plan}");
        }
        let out = runner
            .capture(&self.command())
            .context("cannot prune the build cache")?;
        let reclaimed_bytes = reclaimed(&out.stdout)?;
        Ok(PruneResult {
            plan,
            reclaimed_bytes,
            dry_run: out.dry_run,
        })
    }
}

/// Engine errors that pass on their own: a container or image being removed while the
/// engine lists them (`Removal In Progress`), or another disk-usage query running.
const TRANSIENT_DF: &[&str] = &[
    "failed to retrieve image list",
    "not found",
    "removal in progress",
    "marked for removal",
    "is being removed",
    "is already in progress",
    "a disk usage operation is already running",
    "failed to compute size",
    "no such container",
];

/// Whether a `docker system df` failure is one of [`TRANSIENT_DF`].
fn transient_df(e: &crate::CommandError) -> bool {
    e.tail.iter().any(|l| {
        let lower = l.to_ascii_lowercase();
        TRANSIENT_DF.iter().any(|t| lower.contains(t))
    })
}

/// The build cache in one figure, reconciled from `docker buildx du --verbose` and
/// `docker system df`.
///
/// What each command counts (checked on Docker 26 with BuildKit 0.13):
///
/// - `docker buildx du` lists every cache record of the builder and totals them all:
///   `Total` = `Shared` + `Private`. *Shared* records are also layers of images in the
///   image store (with the containerd image store, every layer of a built image is one).
/// - `docker system df` (the `Build Cache` row) sums only the records that are **not**
///   shared, since it already counts the shared ones under `Images`; its `TOTAL` still
///   counts every record. It only sees the engine's built-in builder: a `docker-container`
///   or remote builder keeps its cache elsewhere, which `buildx du --builder` shows.
/// - Neither counts records in use by a running build as reclaimable.
///
/// So "192 MB" from `system df` next to "5.04 GB" from `buildx du` means 192 MB private
/// to the cache and about 4.85 GB shared with images (or another builder's cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheUsage {
    /// The builder read (`None`: the current one).
    pub builder: Option<String>,
    /// How many records it holds.
    pub records: usize,
    /// Every record's bytes: the one figure to report (`buildx du` `Total`).
    pub total_bytes: u64,
    /// Bytes of records that are also image layers (`buildx du` `Shared`).
    pub shared_bytes: u64,
    /// Bytes only the cache holds (`buildx du` `Private`); what a prune frees at most.
    pub private_bytes: u64,
    /// Bytes a prune may remove (not in use), shared ones included.
    pub reclaimable_bytes: u64,
    /// The `Build Cache` size of `docker system df`, when it answered.
    pub system_df_bytes: Option<u64>,
    /// What could not be read, and why (a `system df` that failed on a container being
    /// removed, for instance); the figures above stand without it.
    pub warnings: Vec<String>,
}

impl fmt::Display for CacheUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.records == 1 { "" } else { "s" };
        write!(
            f,
            "build cache: {} in {} record{plural} ({} only in the cache, {} shared with images; \
             {} reclaimable)",
            human_bytes(self.total_bytes),
            self.records,
            human_bytes(self.private_bytes),
            human_bytes(self.shared_bytes),
            human_bytes(self.reclaimable_bytes),
        )?;
        write!(
            f,
            "\n  `docker buildx du` counts every record ({}); `docker system df` counts only \
             the records not shared with images",
            human_bytes(self.total_bytes)
        )?;
        match self.system_df_bytes {
            Some(df) if self.builder.is_some() && !close(df, self.private_bytes) => write!(
                f,
                " ({}) and only of the engine's built-in builder, not of builder {}",
                human_bytes(df),
                self.builder.as_deref().unwrap_or_default()
            )?,
            Some(df) => write!(
                f,
                " ({}), the shared ones being counted under Images",
                human_bytes(df)
            )?,
            None => write!(f, ", the shared ones being counted under Images")?,
        }
        for w in &self.warnings {
            write!(f, "\n  note: {w}")?;
        }
        Ok(())
    }
}

/// Equal up to the CLI's four significant digits.
fn close(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= a.max(b) / 200 + 1
}

/// Reads the build cache of `builder` (the current one when `None`) as one reconciled
/// figure. A `docker system df` that fails (a container stuck in `Removal In Progress`)
/// becomes a warning, not a failure: the figure comes from `buildx du`.
pub fn cache_usage(runner: &Runner, builder: Option<&str>) -> Result<CacheUsage> {
    let du = buildx_du(runner, builder)?;
    let mut usage = CacheUsage {
        builder: builder.map(str::to_string),
        records: du.records.len(),
        total_bytes: du.total_bytes,
        shared_bytes: du.shared_bytes,
        private_bytes: du.private_bytes,
        reclaimable_bytes: du.reclaimable_bytes,
        ..CacheUsage::default()
    };
    match capture_df(runner, &system_df_command()).map_err(anyhow::Error::new) {
        Ok(text) => match parse_system_df(&text) {
            Ok(df) => usage.system_df_bytes = df.get(&UsageKind::BuildCache).map(|r| r.size_bytes),
            Err(e) => usage
                .warnings
                .push(format!("`docker system df` unreadable: {e:#}")),
        },
        Err(e) => {
            let why = e
                .downcast_ref::<crate::CommandError>()
                .and_then(|c| c.tail.last().cloned())
                .unwrap_or_else(|| format!("{e:#}"));
            usage
                .warnings
                .push(format!("`docker system df` did not answer: {why}"));
        }
    }
    Ok(usage)
}

/// The steps of a Dockerfile as BuildKit describes the cache records they make, with
/// whitespace collapsed: `WORKDIR /app`, `COPY src/ /app/`, and for `RUN` the command as
/// the record's `mount / from exec` names it (`/bin/sh -c pip install ...`). Heredocs
/// count by their first line, as BuildKit describes them.
pub fn dockerfile_steps(text: &str) -> Vec<String> {
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
pub fn record_step(description: &str) -> Option<String> {
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
pub fn project_records(records: &[CacheRecord], steps: &[String]) -> Vec<CacheRecord> {
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
pub fn id_filter(ids: &[&str]) -> String {
    format!("id=^({})$", ids.join("|"))
}

/// Prunes only the build cache of this project's Dockerfiles ([`project_records`]), next
/// to the global [`Prune`]: `base` gives the builder, `until` and `all`; its filters and
/// `keep_storage` are replaced by the ids of the records to remove (in groups of 100, one
/// `docker buildx prune` each). With no record of the project, nothing runs.
pub fn prune_project(
    runner: &Runner,
    dockerfiles: &[std::path::PathBuf],
    base: &Prune,
) -> Result<PruneResult> {
    let mut steps = Vec::new();
    for file in dockerfiles {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        steps.extend(dockerfile_steps(&text));
    }
    steps.sort();
    steps.dedup();
    let scope = Prune {
        filters: Vec::new(),
        keep_storage: None,
        ..base.clone()
    };
    let everything = scope.dry_run(runner)?;
    let plan_records = project_records(&everything.records, &steps);
    let bytes = plan_records.iter().map(|r| r.size_bytes).sum();
    let plan = PrunePlan {
        kept_bytes: everything.bytes + everything.kept_bytes - bytes,
        bytes,
        records: plan_records,
    };
    if runner.is_dry_run() {
        println!("{plan}");
    }
    let mut reclaimed_bytes = 0;
    let mut dry_run = runner.is_dry_run();
    for chunk in plan.records.chunks(100) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
        let prune = Prune {
            filters: vec![id_filter(&ids)],
            ..scope.clone()
        };
        let out = runner
            .capture(&prune.command())
            .context("cannot prune the project's build cache")?;
        dry_run = out.dry_run;
        reclaimed_bytes += reclaimed(&out.stdout)?;
    }
    Ok(PruneResult {
        plan,
        reclaimed_bytes,
        dry_run,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_to_bytes() {
        assert_eq!(parse_size("0B").unwrap(), 0);
        assert_eq!(parse_size("112B").unwrap(), 112);
        assert_eq!(parse_size("61.44kB").unwrap(), 61_440);
        assert_eq!(parse_size("3.05MB").unwrap(), 3_050_000);
        assert_eq!(parse_size("1.2 GB").unwrap(), 1_200_000_000);
        assert_eq!(parse_size("112.6MB (52%)").unwrap(), 112_600_000);
        assert_eq!(parse_size("93.34MB*").unwrap(), 93_340_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2_147_483_648);
        assert_eq!(
            parse_size("12XB").unwrap_err().to_string(),
            "`12XB` has an unknown size unit `XB`"
        );
        assert_eq!(
            parse_size("N/A").unwrap_err().to_string(),
            "`N/A` is not a size"
        );
    }

    #[test]
    fn system_df_lines() {
        let text = r#"{"Active":"0","Reclaimable":"272.9MB (100%)","Size":"272.9MB","TotalCount":"37","Type":"Images"}
{"Active":"1","Reclaimable":"0B (0%)","Size":"4.018MB","TotalCount":"1","Type":"Containers"}
{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Local Volumes"}
{"Active":"9","Reclaimable":"251.8MB","Size":"251.8MB","TotalCount":"277","Type":"Build Cache"}
"#;
        let usage = parse_system_df(text).unwrap();
        let cache = usage.get(&UsageKind::BuildCache).unwrap();
        assert_eq!(
            (
                cache.count,
                cache.active,
                cache.size_bytes,
                cache.reclaimable_bytes
            ),
            (277, 9, 251_800_000, 251_800_000)
        );
        assert_eq!(
            usage.get(&UsageKind::Images).unwrap().reclaimable_bytes,
            272_900_000
        );
        assert_eq!(usage.total_bytes(), 272_900_000 + 4_018_000 + 251_800_000);
    }

    #[test]
    fn buildx_du_verbose_blocks() {
        let text = "ID:\t\thzedzdz97eve0dq7d17jp1x7e\nCreated at:\t2026-11-21 05:45:02.276432007 +0000 UTC\n\
Mutable:\tfalse\nReclaimable:\ttrue\nShared:\t\ttrue\nSize:\t\t3.055MB\n\
Description:\t[linux/amd64 1/2] COPY busybox-amd64 /bin/busybox\nUsage count:\t2\n\
Last used:\tAbout a minute ago\nType:\t\tregular\n\n\
ID:\t\ta2nk7l07hff5jgt86xz561c4d\nParent:\t\tize54uf911t3zzw58ej3q3p39\n\
Created at:\t2026-11-21 05:54:15.848141133 +0000 UTC\nMutable:\ttrue\nReclaimable:\tfalse\n\
Shared:\t\ttrue\nSize:\t\t0B\nDescription:\tmount / from exec /bin/sh -c echo a:b\n\
Usage count:\t0\nType:\t\tregular\n\n\
Shared:\t\t234.1MB\nPrivate:\t252.1MB\nReclaimable:\t343.8MB\nTotal:\t\t486.2MB\n";
        let usage = parse_buildx_du(text).unwrap();
        assert_eq!(usage.records.len(), 2);
        let first = &usage.records[0];
        assert_eq!(first.size_bytes, 3_055_000);
        assert_eq!(first.created_at, Some(1_795_239_902));
        assert_eq!(first.last_used.as_deref(), Some("About a minute ago"));
        assert!(first.reclaimable && first.shared && !first.in_use);
        let second = &usage.records[1];
        assert_eq!(second.parent.as_deref(), Some("ize54uf911t3zzw58ej3q3p39"));
        assert_eq!(second.description, "mount / from exec /bin/sh -c echo a:b");
        assert!(second.in_use);
        assert_eq!(
            (
                usage.shared_bytes,
                usage.private_bytes,
                usage.reclaimable_bytes,
                usage.total_bytes
            ),
            (234_100_000, 252_100_000, 343_800_000, 486_200_000)
        );
        assert_eq!(usage.by_kind(), vec![("regular".to_string(), 2, 3_055_000)]);
    }

    #[test]
    fn relative_times() {
        assert_eq!(parse_ago("Less than a second ago"), Some(0));
        assert_eq!(parse_ago("1 second ago"), Some(1));
        assert_eq!(parse_ago("About a minute ago"), Some(60));
        assert_eq!(parse_ago("4 minutes ago"), Some(240));
        assert_eq!(parse_ago("About an hour ago"), Some(3600));
        assert_eq!(parse_ago("3 weeks ago"), Some(21 * 86_400));
        assert_eq!(parse_ago("soon"), None);
    }

    #[test]
    fn docker_times() {
        assert_eq!(parse_docker_time("1970-01-01 00:00:00 +0000 UTC"), Some(0));
        assert_eq!(
            parse_docker_time("2026-11-21 05:45:28.5 +0000 UTC"),
            Some(1_795_239_928)
        );
        assert_eq!(
            parse_docker_time("2026-11-21 06:45:28 +0100 CET"),
            Some(1_795_239_928)
        );
        assert_eq!(parse_docker_time(""), None);
    }

    fn record(id: &str, bytes: u64, last_used: i64, kind: &str, in_use: bool) -> CacheRecord {
        CacheRecord {
            id: id.into(),
            parent: None,
            description: format!("step {id}"),
            kind: kind.into(),
            size_bytes: bytes,
            shared: false,
            in_use,
            reclaimable: !in_use,
            usage_count: 1,
            created_at: Some(0),
            last_used_at: Some(last_used),
            last_used: None,
        }
    }

    #[test]
    fn prune_plans_follow_buildkit_rules() {
        let now = 100_000;
        let records = vec![
            record("old", 500, now - 90_000, "regular", false),
            record("older", 300, now - 95_000, "regular", false),
            record("fresh", 200, now - 60, "regular", false),
            record("busy", 1_000, now - 99_000, "regular", true),
            record("front", 50, now - 99_000, "frontend", false),
        ];
        let ids = |p: &PrunePlan| p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let day = Prune {
            until: Some(Duration::from_secs(86_400)),
            ..Prune::default()
        };
        let plan = day.plan(&records, now);
        assert_eq!(ids(&plan), vec!["older", "old"]);
        assert_eq!((plan.bytes, plan.kept_bytes), (800, 1_250));
        let all = Prune {
            all: true,
            ..day.clone()
        };
        assert_eq!(ids(&all.plan(&records, now)), vec!["front", "older", "old"]);
        let keep = Prune {
            keep_storage: Some(1_500),
            ..Prune::default()
        };
        assert_eq!(ids(&keep.plan(&records, now)), vec!["older", "old"]);
        let one = Prune {
            filters: vec!["id=fresh".into()],
            ..Prune::default()
        };
        assert_eq!(ids(&one.plan(&records, now)), vec!["fresh"]);
        assert_eq!(
            Prune {
                builder: Some("ci".into()),
                until: Some(Duration::from_secs(86_400)),
                keep_storage: Some(5_000_000_000),
                all: true,
                filters: vec!["type==regular".into()],
            }
            .command()
            .to_string(),
            "docker buildx prune --force --builder ci --all --filter until=24h --filter type==regular \
             --keep-storage 5000000000"
        );
        assert_eq!(go_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn dockerfile_steps_as_records_name_them() {
        let text = "# syntax=docker/dockerfile:1\nFROM python:3.11 AS builder\nWORKDIR /build\n\
RUN apt-get update \\\n    && apt-get install -y gcc   # compilers\n\
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n\
RUN [\"python3\", \"-m\", \"venv\", \"/opt/venv\"]\nENV A=1\n\
COPY <<EOF /usr/local/bin/entrypoint.sh\n#!/bin/sh\nexec \"$@\"\nEOF\n\
FROM builder AS runtime\nCOPY --from=builder /opt/venv /opt/venv\n";
        assert_eq!(
            dockerfile_steps(text),
            [
                "/bin/sh -c apt-get update && apt-get install -y gcc # compilers",
                "/bin/sh -c pip install -r requirements.txt",
                "COPY --from=builder /opt/venv /opt/venv",
                "COPY <<EOF /usr/local/bin/entrypoint.sh",
                "WORKDIR /build",
                "python3 -m venv /opt/venv",
            ]
        );
        assert_eq!(
            record_step("[runtime  7/11] COPY --from=builder /opt/venv /opt/venv").as_deref(),
            Some("COPY --from=builder /opt/venv /opt/venv")
        );
        assert_eq!(
            record_step("mount / from exec /bin/sh -c pip install -r requirements.txt").as_deref(),
            Some("/bin/sh -c pip install -r requirements.txt")
        );
        assert_eq!(
            record_step("cached mount /root/.cache/pip from exec /bin/sh -c pip install -r requirements.txt").as_deref(),
            Some("/bin/sh -c pip install -r requirements.txt")
        );
        assert_eq!(record_step("local source for context"), None);
        assert_eq!(id_filter(&["a1", "b2"]), "id=^(a1|b2)$");
    }

    #[test]
    fn project_records_follow_the_chain_of_the_projects_steps() {
        let rec = |id: &str, parent: Option<&str>, description: &str| CacheRecord {
            parent: parent.map(str::to_string),
            description: description.into(),
            ..record(id, 10, 0, "regular", false)
        };
        let records = vec![
            rec("base", None, "pulled from docker.io/library/python:3.11"),
            rec("ours1", Some("base"), "[builder 2/3] WORKDIR /build"),
            rec("ours2", Some("ours1"), "mount / from exec /bin/sh -c make"),
            rec("theirs1", Some("base"), "[1/3] WORKDIR /srv"),
            // Same step text as ours, but on top of another project's step.
            rec(
                "theirs2",
                Some("theirs1"),
                "mount / from exec /bin/sh -c make",
            ),
            rec("ctx", None, "local source for context"),
        ];
        let steps = dockerfile_steps("FROM python:3.11 AS builder\nWORKDIR /build\nRUN make\n");
        let ids: Vec<String> = project_records(&records, &steps)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["ours1", "ours2"]);
        let plan = Prune {
            filters: vec![id_filter(&["ours1", "ours2"])],
            ..Prune::default()
        }
        .plan(&records, 100);
        assert_eq!(plan.records.len(), 2);
    }

    #[test]
    fn cache_usage_says_what_each_command_counts() {
        let usage = CacheUsage {
            builder: None,
            records: 387,
            total_bytes: 5_040_000_000,
            shared_bytes: 4_848_000_000,
            private_bytes: 192_000_000,
            reclaimable_bytes: 5_040_000_000,
            system_df_bytes: Some(192_000_000),
            warnings: vec![],
        };
        assert_eq!(
            usage.to_string(),
            format!(
                "build cache: {t} in 387 records ({p} only in the cache, {s} shared with images; \
                 {t} reclaimable)\n  `docker buildx du` counts every record ({t}); `docker \
                 system df` counts only the records not shared with images ({p}), the shared \
                 ones being counted under Images",
                t = human_bytes(5_040_000_000),
                p = human_bytes(192_000_000),
                s = human_bytes(4_848_000_000)
            )
        );
    }
}
