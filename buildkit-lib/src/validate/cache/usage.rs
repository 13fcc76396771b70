//! What the engine says its disk and build cache use: `docker system df`, `docker buildx
//! du` and the cache records, parsed into typed rows (sizes from the CLI's human text).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cmd::{Cmd, Runner};
use crate::rows::{nullable, NumberOrText};
use crate::units::{human_bytes, parse_docker_size as parse_size};

/// A kind of disk usage in `docker system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum UsageKind {
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
#[non_exhaustive]
pub(crate) struct UsageRow {
    /// What it counts.
    pub(crate) kind: UsageKind,
    /// How many there are.
    pub(crate) count: u64,
    /// How many are in use.
    pub(crate) active: u64,
    /// Their size in bytes.
    pub(crate) size_bytes: u64,
    /// What pruning could free, in bytes.
    pub(crate) reclaimable_bytes: u64,
}

/// `docker system df`, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct SystemUsage {
    /// One row per kind, in the engine's order.
    pub(crate) rows: Vec<UsageRow>,
}

impl SystemUsage {
    /// The row of one kind.
    pub(crate) fn get(&self, kind: &UsageKind) -> Option<&UsageRow> {
        self.rows.iter().find(|r| &r.kind == kind)
    }

    /// Total bytes over all kinds.
    #[cfg(test)]
    pub(crate) fn total_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.size_bytes).sum()
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

fn count(v: Option<&NumberOrText>) -> u64 {
    match v {
        Some(NumberOrText::Number(n)) => n.as_u64().unwrap_or(0),
        Some(NumberOrText::Text(s)) => s.trim().parse().unwrap_or(0),
        None => 0,
    }
}

fn size(v: Option<&NumberOrText>) -> Result<u64> {
    match v {
        Some(NumberOrText::Number(n)) => Ok(n.as_u64().unwrap_or(0)),
        Some(NumberOrText::Text(s)) if s == "N/A" || s.is_empty() => Ok(0),
        Some(NumberOrText::Text(s)) => parse_size(s),
        None => Ok(0),
    }
}

/// One line of `docker system df --format json`. A line is about its `Type`, whose `Size`
/// it gives: both must be there.
#[derive(Debug, Deserialize)]
struct DfRow {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "TotalCount", default)]
    total_count: Option<NumberOrText>,
    #[serde(rename = "Active", default)]
    active: Option<NumberOrText>,
    #[serde(rename = "Size")]
    size: NumberOrText,
    #[serde(rename = "Reclaimable", default)]
    reclaimable: Option<NumberOrText>,
}

/// `docker system df --verbose --format json`: the part read.
#[derive(Debug, Deserialize)]
struct DfVerboseRow {
    #[serde(rename = "BuildCache", default, deserialize_with = "nullable")]
    build_cache: Vec<CacheRecordRow>,
}

/// `true` as docker prints it: a boolean or the text `"true"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

fn flag(f: Option<&Flag>) -> bool {
    matches!(f, Some(Flag::Bool(true))) || matches!(f, Some(Flag::Text(t)) if t == "true")
}

/// One build cache record; a record is known by its `ID`, which must be there.
#[derive(Debug, Deserialize)]
struct CacheRecordRow {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Parent", default, deserialize_with = "nullable")]
    parent: String,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    description: String,
    #[serde(rename = "CacheType", default, deserialize_with = "nullable")]
    cache_type: String,
    #[serde(rename = "Size", default)]
    size: Option<NumberOrText>,
    #[serde(rename = "Shared", default)]
    shared: Option<Flag>,
    #[serde(rename = "InUse", default)]
    in_use: Option<Flag>,
    #[serde(rename = "UsageCount", default)]
    usage_count: Option<NumberOrText>,
    #[serde(rename = "CreatedAt", default, deserialize_with = "nullable")]
    created_at: String,
    #[serde(rename = "LastUsedAt", default, deserialize_with = "nullable")]
    last_used_at: String,
    #[serde(rename = "LastUsedSince", default, deserialize_with = "nullable")]
    last_used_since: String,
}

/// The command for [`system_df`].
pub(crate) fn system_df_command() -> Cmd {
    Cmd::new("docker")
        .args(["system", "df", "--format", "json"])
        .read_only()
}

/// Runs a `docker system df` query, again (up to 3 times) when it trips over an image or a
/// container being removed at the same moment (the engine then fails the whole listing),
/// or over another disk-usage query.
pub(super) fn capture_df(runner: &Runner, cmd: &Cmd) -> Result<String, crate::CommandError> {
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

/// Parses `docker system df --format json` (one object a line, or one JSON array).
pub(crate) fn parse_system_df(text: &str) -> Result<SystemUsage> {
    let text = text.trim();
    let items: Vec<DfRow> = if text.starts_with('[') {
        crate::rows::parse(text, "`docker system df`")?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| crate::rows::parse(l, "`docker system df`"))
            .collect::<Result<_>>()?
    };
    let rows = items
        .iter()
        .map(|v| {
            Ok(UsageRow {
                kind: UsageKind::from_type(&v.kind),
                count: count(v.total_count.as_ref()),
                active: count(v.active.as_ref()),
                size_bytes: size(Some(&v.size))?,
                reclaimable_bytes: size(v.reclaimable.as_ref())?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(SystemUsage { rows })
}

/// One build cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct CacheRecord {
    /// Its id.
    pub(crate) id: String,
    /// The record it builds on, if any.
    pub(crate) parent: Option<String>,
    /// What made it (`[stage 2/4] RUN pip install ...`, `local source for context`).
    pub(crate) description: String,
    /// Its type (`regular`, `source.local`, `exec.cachemount`, `frontend`, `internal`).
    pub(crate) kind: String,
    /// Size in bytes.
    pub(crate) size_bytes: u64,
    /// Shared with other records (pruning it alone frees less).
    pub(crate) shared: bool,
    /// In use by a running build: never pruned.
    pub(crate) in_use: bool,
    /// Whether a prune may remove it (`buildx du`; `!in_use` from `system df`).
    pub(crate) reclaimable: bool,
    /// How often it was used.
    pub(crate) usage_count: u64,
    /// When it was made, seconds since the epoch (when known).
    pub(crate) created_at: Option<i64>,
    /// When it was last used, seconds since the epoch (when known).
    pub(crate) last_used_at: Option<i64>,
    /// When it was last used as the CLI says it (`4 minutes ago`), for `buildx du`.
    pub(crate) last_used: Option<String>,
}

/// The command for [`cache_records`].
pub(crate) fn cache_records_command() -> Cmd {
    Cmd::new("docker")
        .args(["system", "df", "--verbose", "--format", "json"])
        .read_only()
        .dry_answer(r#"{"BuildCache":[]}"#)
}

/// The engine's build cache records with absolute times (`docker system df --verbose
/// --format json`, the builder of the `docker` driver).
pub(crate) fn cache_records(runner: &Runner) -> Result<Vec<CacheRecord>> {
    let stdout =
        capture_df(runner, &cache_records_command()).context("cannot list the build cache")?;
    parse_cache_records(&stdout)
}

/// Parses the `BuildCache` list of `docker system df --verbose --format json`.
pub(crate) fn parse_cache_records(text: &str) -> Result<Vec<CacheRecord>> {
    let v: DfVerboseRow = crate::rows::parse(text, "`docker system df --verbose`")?;
    v.build_cache
        .into_iter()
        .map(|r| {
            let in_use = flag(r.in_use.as_ref());
            Ok(CacheRecord {
                id: r.id.trim_end_matches('*').to_string(),
                parent: Some(r.parent).filter(|p| !p.is_empty()),
                description: r.description,
                kind: r.cache_type,
                size_bytes: size(r.size.as_ref())?,
                shared: flag(r.shared.as_ref()),
                in_use,
                reclaimable: !in_use,
                usage_count: count(r.usage_count.as_ref()),
                created_at: parse_docker_time(&r.created_at),
                last_used_at: parse_docker_time(&r.last_used_at),
                last_used: Some(r.last_used_since).filter(|s| !s.is_empty()),
            })
        })
        .collect()
}

/// `docker buildx du --verbose`, typed: the records and the totals it prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct BuilderUsage {
    /// Every record.
    pub(crate) records: Vec<CacheRecord>,
    /// Bytes shared between records.
    pub(crate) shared_bytes: u64,
    /// Bytes private to one record.
    pub(crate) private_bytes: u64,
    /// Bytes a prune could free.
    pub(crate) reclaimable_bytes: u64,
    /// All bytes.
    pub(crate) total_bytes: u64,
}

impl BuilderUsage {
    /// Bytes per record type (`regular`, `source.local`, ...), biggest first, with counts.
    #[cfg(test)]
    pub(crate) fn by_kind(&self) -> Vec<(String, usize, u64)> {
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
pub(crate) fn buildx_du_command(builder: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("docker").args(["buildx", "du", "--verbose"]);
    if let Some(b) = builder {
        cmd = cmd.arg("--builder").arg(b);
    }
    cmd.read_only()
}

/// Reads `docker buildx du --verbose` of a builder (the current one when `None`).
pub(crate) fn buildx_du(runner: &Runner, builder: Option<&str>) -> Result<BuilderUsage> {
    let out = runner
        .capture(&buildx_du_command(builder))
        .context("cannot read the builder's cache usage")?;
    parse_buildx_du(&out.stdout)
}

/// Parses `docker buildx du --verbose`: `Key:<tabs>value` blocks separated by blank lines,
/// then the `Shared`/`Private`/`Reclaimable`/`Total` lines.
pub(crate) fn parse_buildx_du(text: &str) -> Result<BuilderUsage> {
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
pub(crate) fn parse_docker_time(text: &str) -> Option<i64> {
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
    Some(
        crate::time::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(day).ok()?) * 86_400
            + h * 3600
            + min * 60
            + sec
            - off,
    )
}

/// Reads back a relative time as the docker CLI prints it (`Less than a second ago`,
/// `About a minute ago`, `5 hours ago`, `3 weeks ago`) as seconds; months are 30 days,
/// years 365.
pub(crate) fn parse_ago(text: &str) -> Option<u64> {
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
pub(crate) fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_records_are_typed_rows() {
        let text = r#"{"BuildCache":[{"ID":"abc*","Parent":"","Description":"mount / from exec",
          "CacheType":"exec.cachemount","Size":"12.5MB","Shared":true,"InUse":"false",
          "UsageCount":"3","CreatedAt":"","LastUsedAt":"","LastUsedSince":"2 hours ago"},
          {"ID":"def","Parent":"abc","CacheType":"regular","Size":1024,"InUse":true,"UsageCount":1}],
          "Images":null}"#;
        let records = parse_cache_records(text).unwrap();
        assert_eq!(records.len(), 2);
        let (a, b) = (&records[0], &records[1]);
        assert_eq!((a.id.as_str(), a.parent.as_deref()), ("abc", None));
        assert_eq!((a.size_bytes, a.usage_count), (12_500_000, 3));
        assert!(a.shared && !a.in_use && a.reclaimable);
        assert_eq!(a.last_used.as_deref(), Some("2 hours ago"));
        assert_eq!((b.parent.as_deref(), b.size_bytes), (Some("abc"), 1024));
        assert!(b.in_use && !b.reclaimable && !b.shared);
        assert!(parse_cache_records(r#"{"BuildCache":null}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rows_without_their_key_field_are_errors() {
        let e = parse_cache_records(r#"{"BuildCache":[{"Size":"1B","CacheType":"regular"}]}"#)
            .unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("`docker system df --verbose`"), "{text}");
        assert!(text.contains("missing field `ID`"), "{text}");
        let e = parse_system_df(r#"{"Active":"0","Size":"0B","TotalCount":"0"}"#).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("`docker system df`") && text.contains("missing field `Type`"),
            "{text}"
        );
        let e = parse_system_df(r#"[{"Type":"Images","Size":"lots"}]"#).unwrap_err();
        assert!(format!("{e:#}").contains("`lots` is not a size"), "{e:#}");
    }
}
