//! Build cache and disk usage: `docker system df`, `docker buildx du` and the build cache
//! records parsed into typed usage, one reconciled figure ([`Usage`]: what each
//! command counts), and prune steps (`docker buildx prune` with `until` and
//! `--keep-storage`, globally or only for this project's records with [`Prune::dockerfile`])
//! whose dry run lists what would go.
//!
//! How exact the byte counts are is documented for users on [`Usage`].
//!
//! The parsing lives in `usage`, the prune steps in `prune`; this module reconciles the
//! figures.

mod prune;
mod usage;

use std::fmt;

use anyhow::Result;

use crate::cmd::Runner;
use crate::plan::Step;
use crate::units::human_bytes;

#[cfg(test)]
use crate::units::parse_docker_size as parse_size;
#[cfg(test)]
use prune::PrunePlan;
#[cfg(test)]
use prune::{dockerfile_steps, id_filter, project_records};
pub use prune::{Prune, PruneResult};
use usage::capture_df;
#[cfg(test)]
use usage::CacheRecord;
use usage::{buildx_du, UsageKind};
pub(crate) use usage::{parse_system_df, system_df_command};

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
    pub(crate) builder: Option<String>,
    /// How many records it holds.
    pub(crate) records: usize,
    /// Every record's bytes: the one figure to report (`buildx du` `Total`).
    pub total_bytes: u64,
    /// Bytes of records that are also image layers (`buildx du` `Shared`).
    pub(crate) shared_bytes: u64,
    /// Bytes only the cache holds (`buildx du` `Private`); what a prune frees at most.
    pub(crate) private_bytes: u64,
    /// Bytes a prune may remove (not in use), shared ones included.
    pub reclaimable_bytes: u64,
    /// The `Build Cache` size of `docker system df`, when it answered.
    pub(crate) system_df_bytes: Option<u64>,
    /// What could not be read, and why (a `system df` that failed on a container being
    /// removed, for instance); the figures above stand without it.
    pub(crate) warnings: Vec<String>,
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

/// Reading the build cache as one reconciled figure ([`CacheUsage`]): `docker buildx du
/// --verbose`, then `docker system df`.
///
/// # Precision
///
/// The docker CLI prints these sizes only as human text (`"251.8MB"`, four significant
/// digits), so the byte counts here are parsed from it and exact to about 0.1%; image
/// sizes for budgets come from the engine's byte counts instead (see [`SizeCheck`]).
///
/// [`SizeCheck`]: crate::validate::SizeCheck
///
/// # Example
///
/// ```
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::Usage;
/// use buildkit_lib::Runner;
///
/// let plan = Usage::new().builder("ci").plan(&Runner::new()).unwrap().to_string();
/// assert!(plan.starts_with("? docker buildx du --verbose --builder ci"), "{plan}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Usage {
    /// The builder read (`--builder`), the current one when `None`.
    builder: Option<String>,
}

impl Usage {
    /// The usage of the current builder's cache.
    pub fn new() -> Usage {
        Usage::default()
    }

    /// The builder read (`--builder`), the current one when unset.
    pub fn builder(mut self, builder: impl Into<String>) -> Usage {
        self.builder = Some(builder.into());
        self
    }
}

impl Step for Usage {
    type Output = CacheUsage;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &CacheUsage) -> Option<String> {
        Some(output.to_string())
    }

    /// Reads the builder's cache as one reconciled figure. A `docker system df` that fails
    /// (a container stuck in `Removal In Progress`) becomes a warning, not a failure: the
    /// figure comes from `buildx du`. Its plan is this body recorded: the two queries.
    fn run(&self, runner: &Runner) -> Result<CacheUsage> {
        cache_usage(runner, self.builder.as_deref())
    }
}

/// The build cache of `builder` (the current one when `None`) as one reconciled figure.
fn cache_usage(runner: &Runner, builder: Option<&str>) -> Result<CacheUsage> {
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

#[cfg(test)]
mod tests {
    use super::prune::record_step;
    use super::usage::{go_duration, parse_ago, parse_buildx_du, parse_docker_time};
    use super::*;
    use std::time::Duration;

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
        let kinds: Vec<&UsageKind> = usage.rows.iter().map(|r| &r.kind).collect();
        assert_eq!(
            kinds,
            vec![
                &UsageKind::Images,
                &UsageKind::Containers,
                &UsageKind::Volumes,
                &UsageKind::BuildCache
            ]
        );
        let images = usage.get(&UsageKind::Images).unwrap();
        assert_eq!((images.count, images.size_bytes), (37, 272_900_000));
        assert!(images.reclaimable_bytes <= images.size_bytes);
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
        let plan = day.predict(&records, now);
        assert_eq!(ids(&plan), vec!["older", "old"]);
        assert_eq!((plan.bytes, plan.kept_bytes), (800, 1_250));
        let all = Prune {
            all: true,
            ..day.clone()
        };
        assert_eq!(
            ids(&all.predict(&records, now)),
            vec!["front", "older", "old"]
        );
        let keep = Prune {
            keep_storage: Some(1_500),
            ..Prune::default()
        };
        assert_eq!(ids(&keep.predict(&records, now)), vec!["older", "old"]);
        let one = Prune {
            filters: vec!["id=fresh".into()],
            ..Prune::default()
        };
        assert_eq!(ids(&one.predict(&records, now)), vec!["fresh"]);
        assert_eq!(
            Prune {
                builder: Some("ci".into()),
                until: Some(Duration::from_secs(86_400)),
                keep_storage: Some(5_000_000_000),
                all: true,
                filters: vec!["type==regular".into()],
                dockerfiles: Vec::new(),
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
        .predict(&records, 100);
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

    #[test]
    fn pruning_all_passes_all_and_takes_internal_and_frontend_records_too() {
        let now = 100_000;
        let records = vec![
            record("old", 500, now - 90_000, "regular", false),
            record("front", 50, now - 99_000, "frontend", false),
            record("inner", 20, now - 99_000, "internal", false),
        ];
        let ids = |p: &PrunePlan| p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let some = Prune::new();
        assert_eq!(ids(&some.predict(&records, now)), vec!["old"]);
        assert!(!some.command().to_string().contains("--all"));
        let all = Prune::new().all(true);
        assert_eq!(
            all.command().to_string(),
            "docker buildx prune --force --all"
        );
        let mut took = ids(&all.predict(&records, now));
        took.sort();
        assert_eq!(took, vec!["front", "inner", "old"]);
        assert!(!all.all(false).command().to_string().contains("--all"));
    }
}
