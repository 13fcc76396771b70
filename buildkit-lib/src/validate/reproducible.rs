//! Reproducible images, verified: build twice, compare digests, and say what differs.
//!
//! What the check builds, compares and requires for its verdict is documented for users
//! on [`Reproducible`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};
use crate::docker::build::{Build, Output};
use crate::docker::dockerfile;
use crate::plan::Step;
use crate::rows::{nullable, Platform};
use crate::time::SOURCE_DATE_EPOCH;

/// How many differing files a report lists (the count says how many there were).
const MAX_FILES: usize = 20;

/// The reproducibility check of one image build.
///
/// [`Reproducible`] builds the same [`Build`] twice without the build cache, each time
/// into an OCI image layout with `SOURCE_DATE_EPOCH` set (the last commit's time by
/// default) and the exporter's `rewrite-timestamp=true`, and compares the two image
/// digests. The verdict "reproducible" needs two real builds that ran (a cached build
/// proves nothing, hence `--no-cache`) and equal digests read from the layouts
/// themselves. When they differ, the report names the first platform, the image config
/// fields or the first layer that differ and, in that layer, the files (content, mode,
/// owner, size, time, link target), read with `tar` from the two layouts.
///
/// # Verdict
///
/// Equal digests are not enough for the verdict: two builds on one day agree even when
/// `RUN` steps cannot see `SOURCE_DATE_EPOCH` (a stage that does not declare it) and write
/// the day instead, and context files older than the epoch keep their own times (a fresh
/// clone gives others). Either withholds "reproducible". Run the check alone on its
/// builder: BuildKit 0.13 can give a concurrent build of an identical layer the blob from
/// before its timestamps were rewritten (which shows as a difference, never as a pass).
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::Build;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::Reproducible;
/// use buildkit_lib::Runner;
///
/// # let dir = tempfile::tempdir().unwrap();
/// # std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS runtime\n").unwrap();
/// # let context = dir.path();
/// let build = Build::new(context).target("runtime");
/// let check = Reproducible::new(&build, "target/repro").source_date_epoch(1_700_000_000);
/// let plan = check.plan(&Runner::new()).unwrap().to_string();
/// assert_eq!(plan.matches("--no-cache").count(), 2, "{plan}");
/// assert!(plan.contains("SOURCE_DATE_EPOCH=1700000000"), "{plan}");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Reproducible {
    build: Build,
    work_dir: PathBuf,
    epoch: Option<u64>,
}

/// What two builds compared gave: two image builds ([`Reproducible`]) or two packagings
/// ([`Package::compare_runs`](crate::package::Package::compare_runs)). Its `Display`
/// says which it is and what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReproReport {
    /// What was compared.
    pub(crate) compared: Compared,
}

/// The two kinds of comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Compared {
    /// Two uncached image builds.
    Image(ImageRepro),
    /// Two clean packagings.
    Dist(crate::package::DistComparison),
}

impl ReproReport {
    /// True when the two builds agree: for images, the same digest with every `RUN` step
    /// seeing `SOURCE_DATE_EPOCH` (equal digests alone only show that two builds of one
    /// day agree); for packagings, the same files with the same bytes.
    pub fn is_reproducible(&self) -> bool {
        match &self.compared {
            Compared::Image(image) => image.is_reproducible(),
            Compared::Dist(dist) => dist.is_identical(),
        }
    }
}

impl fmt::Display for ReproReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.compared {
            Compared::Image(image) => image.fmt(f),
            Compared::Dist(dist) => dist.fmt(f),
        }
    }
}

/// What the two image builds gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRepro {
    /// The `SOURCE_DATE_EPOCH` both builds used.
    pub(crate) source_date_epoch: u64,
    /// The image digest of the first build (the OCI layout's index entry).
    pub(crate) first: String,
    /// The image digest of the second build.
    pub(crate) second: String,
    /// What differs, when the digests do.
    pub(crate) difference: Option<Difference>,
    /// Where the two layouts were kept for inspection (only when they differ).
    pub(crate) kept: Option<PathBuf>,
    /// Stages (up to the target) with `RUN` steps that cannot see `SOURCE_DATE_EPOCH`
    /// because the stage does not declare `ARG SOURCE_DATE_EPOCH` before them: tools
    /// that honour it (`useradd` writing `/etc/shadow`, for one) write the day of the
    /// build instead, so two builds on one day agree and a build on another day may not.
    pub(crate) epoch_hidden_from: Vec<String>,
    /// Context files older than `SOURCE_DATE_EPOCH` (at most 20, `/`-separated): the
    /// exporter clamps only newer times, so these keep their own time in the image, and
    /// a fresh clone (whose files are all newer) builds a different image.
    pub(crate) older_than_epoch: Vec<String>,
}

impl ImageRepro {
    /// True when both builds gave the same image digest and every `RUN` step saw
    /// `SOURCE_DATE_EPOCH`.
    pub(crate) fn is_reproducible(&self) -> bool {
        self.same_digest() && self.epoch_hidden_from.is_empty() && self.older_than_epoch.is_empty()
    }

    /// True when both builds gave the same image digest. Two answers that are not
    /// digests (empty, or a dry run's `sha256:<image-digest>`) are not the same image.
    pub(crate) fn same_digest(&self) -> bool {
        is_digest(&self.first) && self.first == self.second && self.difference.is_none()
    }
}

/// `algorithm:hex`, as an OCI layout names a blob.
fn is_digest(text: &str) -> bool {
    text.split_once(':').is_some_and(|(algo, hex)| {
        !algo.is_empty() && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The first thing that differs between the two images.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Difference {
    /// The images hold different platforms.
    Platforms {
        /// The first build's platforms.
        first: Vec<String>,
        /// The second build's platforms.
        second: Vec<String>,
    },
    /// A platform's layers differ in number.
    LayerCount {
        /// The platform (`linux/amd64`).
        platform: String,
        /// Layers in the first image.
        first: usize,
        /// Layers in the second image.
        second: usize,
    },
    /// A layer differs.
    Layer {
        /// The platform (`linux/amd64`).
        platform: String,
        /// The layer's position, from 0 (the base image's first layer).
        index: usize,
        /// The instruction that made it, from the image config's history, when known.
        created_by: Option<String>,
        /// The files that differ in it (at most 20; see `file_count`).
        files: Vec<FileDifference>,
        /// How many files differ in all.
        file_count: usize,
    },
    /// The layers are equal but the image configs differ.
    Config {
        /// The platform (`linux/amd64`).
        platform: String,
        /// The config's fields that differ (`created`, `history`, `config.Env`, ...).
        fields: Vec<String>,
    },
    /// The layouts differ somewhere else (an attestation, an annotation).
    Other {
        /// What was seen.
        detail: String,
    },
}

/// One file that differs between the two builds' versions of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct FileDifference {
    /// The path in the image (`app/version.json`).
    pub(crate) path: String,
    /// What differs: `content`, `mode`, `owner`, `size`, `time`, `link`, `only in first`,
    /// `only in second`.
    pub(crate) what: Vec<String>,
}

impl fmt::Display for ImageRepro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_reproducible() {
            return write!(
                f,
                "reproducible: two builds without cache gave {} (SOURCE_DATE_EPOCH={})",
                self.first, self.source_date_epoch
            );
        }
        if self.same_digest() && self.epoch_hidden_from.is_empty() {
            return write!(
                f,
                "not shown reproducible: two builds without cache gave {} \
                 (SOURCE_DATE_EPOCH={}), but context files are older than \
                 SOURCE_DATE_EPOCH and keep their own times in the image, so a fresh clone \
                 builds another image: {} (check out again, or `touch` them)",
                self.first,
                self.source_date_epoch,
                self.older_than_epoch.join(", ")
            );
        }
        if self.same_digest() {
            return write!(
                f,
                "not shown reproducible: two builds without cache gave {} \
                 (SOURCE_DATE_EPOCH={}), but RUN steps in stage(s) {} do not see \
                 SOURCE_DATE_EPOCH, so tools that honour it write the day of the build; \
                 declare `ARG SOURCE_DATE_EPOCH` at the top of each of them",
                self.first,
                self.source_date_epoch,
                self.epoch_hidden_from.join(", ")
            );
        }
        write!(
            f,
            "not reproducible: two builds without cache gave {} and {} \
             (SOURCE_DATE_EPOCH={})",
            self.first, self.second, self.source_date_epoch
        )?;
        match &self.difference {
            Some(Difference::Platforms { first, second }) => write!(
                f,
                "\nplatforms differ: {} vs {}",
                first.join(", "),
                second.join(", ")
            )?,
            Some(Difference::LayerCount {
                platform,
                first,
                second,
            }) => write!(f, "\n{platform}: {first} layers vs {second}")?,
            Some(Difference::Layer {
                platform,
                index,
                created_by,
                files,
                file_count,
            }) => {
                write!(f, "\n{platform}: first differing layer is #{index}")?;
                if let Some(step) = created_by {
                    write!(f, " ({})", step.trim())?;
                }
                write!(f, ", {file_count} file(s) differ:")?;
                for file in files {
                    write!(f, "\n  {} ({})", file.path, file.what.join(", "))?;
                }
                if *file_count > files.len() {
                    write!(f, "\n  ... and {} more", file_count - files.len())?;
                }
            }
            Some(Difference::Config { platform, fields }) => write!(
                f,
                "\n{platform}: layers are identical; the image config differs in: {}",
                fields.join(", ")
            )?,
            Some(Difference::Other { detail }) => write!(f, "\n{detail}")?,
            None => {}
        }
        if let Some(kept) = &self.kept {
            write!(f, "\nboth images are kept in {}", kept.display())?;
        }
        Ok(())
    }
}

impl Reproducible {
    /// A check of `build` (its context, Dockerfile, target, args, platforms and secrets;
    /// its output, tags and caches are replaced), working in `work_dir` (created; two OCI
    /// layouts go there, and stay only when they differ).
    pub fn new(build: &Build, work_dir: impl Into<PathBuf>) -> Reproducible {
        Reproducible {
            build: build.clone(),
            work_dir: work_dir.into(),
            epoch: None,
        }
    }

    /// The `SOURCE_DATE_EPOCH` to build with. Without it: the build's own
    /// `SOURCE_DATE_EPOCH` build arg, else the last commit's time of the context's git
    /// repository.
    pub fn source_date_epoch(mut self, secs: u64) -> Reproducible {
        self.epoch = Some(secs);
        self
    }

    /// The two builds this check runs, given the epoch: no cache, OCI layouts in
    /// `work_dir/first` and `work_dir/second`, timestamps rewritten.
    pub(crate) fn builds(&self, epoch: u64) -> [Build; 2] {
        ["first", "second"].map(|name| {
            let mut build = self.build.clone();
            build.no_cache = true;
            build.pull = false;
            build.tags.clear();
            build.cache_from.clear();
            build.cache_to.clear();
            build.metadata_file = None;
            build.read_size = false;
            build.read_record = false;
            build.rewrite_timestamp = true;
            build.output = Output::OciLayout(self.work_dir.join(name));
            build
                .build_args
                .insert(SOURCE_DATE_EPOCH.to_string(), epoch.to_string());
            build
        })
    }

    /// The epoch the builds use (see [`Reproducible::source_date_epoch`]).
    pub(crate) fn epoch(&self, runner: &Runner) -> Result<u64> {
        if let Some(secs) = self.epoch {
            return Ok(secs);
        }
        if let Some(text) = self.build.build_args.get(SOURCE_DATE_EPOCH) {
            return text.trim().parse().map_err(|_| {
                anyhow!(
                    "build arg {SOURCE_DATE_EPOCH}={text:?} is not a whole number of seconds \
                     since 1970-01-01"
                )
            });
        }
        crate::version::last_commit_time(runner, &self.build.context)
    }
}

impl Step for Reproducible {
    type Output = ReproReport;

    /// Each image's two digests, compared.
    fn summary(&self, report: &ReproReport) -> Option<String> {
        Some(report.to_string())
    }

    /// Fails when the two builds differ ([`ReproReport::is_reproducible`]).
    fn judge(&self, report: &ReproReport) -> anyhow::Result<()> {
        anyhow::ensure!(report.is_reproducible(), "{report}");
        Ok(())
    }

    /// Runs both builds and compares them. An error means the check could not run (a
    /// build failed, a layout could not be read), never that the builds differ: that is
    /// a report whose [`ReproReport::is_reproducible`] is false. Its plan is this body
    /// recorded: the last commit's time (unless the epoch is given), the two uncached
    /// builds into OCI layouts (each replacing the last one's), then, the layouts read
    /// (a dry run reads equal placeholder digests), their removal.
    fn run(&self, runner: &Runner) -> Result<ReproReport> {
        let epoch = self.epoch(runner)?;
        let builds = self.builds(epoch);
        for build in &builds {
            build.check()?;
        }
        let epoch_hidden_from = self.stages_hiding_epoch()?;
        let older_than_epoch = self.files_older_than(epoch)?;
        let dirs = [self.work_dir.join("first"), self.work_dir.join("second")];
        for (build, dir) in builds.iter().zip(&dirs) {
            runner.remove(dir)?;
            build
                .run(runner)
                .context("the reproducibility check could not build the image")?;
        }
        let first = Layout::open(runner, &dirs[0])?;
        let second = Layout::open(runner, &dirs[1])?;
        let mut report = ImageRepro {
            source_date_epoch: epoch,
            first: first.digest.clone(),
            second: second.digest.clone(),
            difference: None,
            kept: None,
            epoch_hidden_from,
            older_than_epoch,
        };
        if report.first == report.second {
            for dir in &dirs {
                runner.remove(dir)?;
            }
            return Ok(ReproReport {
                compared: Compared::Image(report),
            });
        }
        let scratch = self.work_dir.join("layers");
        let found = compare(runner, &first, &second, &scratch);
        let _ = runner.remove(&scratch);
        report.difference = Some(found?);
        report.kept = Some(self.work_dir.clone());
        Ok(ReproReport {
            compared: Compared::Image(report),
        })
    }
}

impl Reproducible {
    /// Files the build context sends that are older than `epoch`.
    fn files_older_than(&self, epoch: u64) -> Result<Vec<String>> {
        let (_, _, files, _) =
            crate::validate::context::sent(&self.build.context, self.build.dockerfile.as_deref())?;
        let limit = i128::from(epoch) * 1_000_000_000;
        Ok(files
            .into_iter()
            .filter(|f| f.stat.as_ref().is_some_and(|s| s.mtime_ns < limit))
            .map(|f| f.path)
            .take(MAX_FILES)
            .collect())
    }

    /// Stages up to the target whose `RUN` steps run before `ARG SOURCE_DATE_EPOCH`.
    fn stages_hiding_epoch(&self) -> Result<Vec<String>> {
        let stages = dockerfile::read_stages(&self.build.dockerfile_path())?;
        let last = match &self.build.target {
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .unwrap_or(stages.len().saturating_sub(1)),
            None => stages.len().saturating_sub(1),
        };
        Ok(stages
            .iter()
            .take(last + 1)
            .filter(|s| s.runs_without_arg(SOURCE_DATE_EPOCH))
            .map(|s| s.name.clone().unwrap_or_else(|| format!("#{}", s.index)))
            .collect())
    }
}

/// An OCI image layout on disk, read through the runner (a dry run answers placeholders).
struct Layout {
    runner: Runner,
    dir: PathBuf,
    /// The digest of the index's only entry: the image.
    digest: String,
    /// The image's per-platform manifests (attestation manifests left out), by platform.
    manifests: BTreeMap<String, Value>,
}

impl Layout {
    fn open(runner: &Runner, dir: &Path) -> Result<Layout> {
        let index_path = dir.join("index.json");
        let index: OciIndexRow = crate::rows::from_value(
            &read_json(runner, &index_path, DRY_INDEX)?,
            &index_path.display().to_string(),
        )?;
        let entry = index
            .manifests
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{}/index.json lists no image", dir.display()))?;
        let digest = entry
            .digest
            .ok_or_else(|| anyhow!("{}/index.json: an entry without digest", dir.display()))?;
        let layout = Layout {
            runner: runner.clone(),
            dir: dir.to_path_buf(),
            digest,
            manifests: BTreeMap::new(),
        };
        let top = layout.blob_json(&layout.digest)?;
        let top_row: OciIndexRow =
            crate::rows::from_value(&top, &layout.blob(&layout.digest).display().to_string())?;
        let mut manifests = BTreeMap::new();
        match top_row.manifests {
            Some(list) => {
                for m in list {
                    let platform = platform_of(m.platform.as_ref());
                    // Attestation manifests are listed as `unknown/unknown`.
                    if platform == "unknown/unknown" {
                        continue;
                    }
                    let digest = m.digest.ok_or_else(|| {
                        anyhow!(
                            "the image index {} lists the {platform} manifest without digest",
                            layout.blob(&layout.digest).display()
                        )
                    })?;
                    manifests.insert(platform, layout.blob_json(&digest)?);
                }
            }
            None => {
                manifests.insert(platform_of(entry.platform.as_ref()), top);
            }
        }
        Ok(Layout {
            manifests,
            ..layout
        })
    }

    fn blob(&self, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.dir.join("blobs").join(algo).join(hex)
    }

    fn blob_json(&self, digest: &str) -> Result<Value> {
        read_json(&self.runner, &self.blob(digest), DRY_BLOB)
    }
}

/// What a dry run reads for a layout's `index.json`: one image, by a placeholder digest.
const DRY_INDEX: &str = r#"{"manifests":[{"digest":"sha256:<image-digest>"}]}"#;

/// What a dry run reads for a blob: a manifest without layers.
const DRY_BLOB: &str = r#"{"config":{"digest":"sha256:<config-digest>"},"layers":[]}"#;

/// A JSON file a build wrote, read through the runner (`dry_answer` in a dry run).
fn read_json(runner: &Runner, path: &Path, dry_answer: &str) -> Result<Value> {
    let text = runner
        .read_output(path, dry_answer)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// An OCI index (`index.json`, or an image index blob): a manifest has no `manifests`.
#[derive(Debug, Deserialize)]
struct OciIndexRow {
    #[serde(default)]
    manifests: Option<Vec<DescriptorRow>>,
}

/// A descriptor: of a manifest in an index, or of a manifest's config or layer.
#[derive(Debug, Deserialize)]
struct DescriptorRow {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    platform: Option<Platform>,
}

/// An image manifest: its config and layers.
#[derive(Debug, Deserialize)]
struct ManifestRow {
    #[serde(default)]
    config: Option<DescriptorRow>,
    #[serde(default, deserialize_with = "nullable")]
    layers: Vec<DescriptorRow>,
}

/// An image config's history, oldest first.
#[derive(Debug, Deserialize)]
struct ConfigHistoryRow {
    #[serde(default, deserialize_with = "nullable")]
    history: Vec<HistoryRow>,
}

#[derive(Debug, Deserialize)]
struct HistoryRow {
    #[serde(default)]
    created_by: Option<String>,
    /// The entry made no layer (`ENV`, `CMD`, ...).
    #[serde(default)]
    empty_layer: bool,
}

fn platform_of(p: Option<&Platform>) -> String {
    let os = p.and_then(|p| p.os.as_deref()).unwrap_or("unknown");
    let arch = p
        .and_then(|p| p.architecture.as_deref())
        .unwrap_or("unknown");
    match p.and_then(|p| p.variant.as_deref()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// The manifest of `platform` in layout `l`, read.
fn manifest_row(l: &Layout, platform: &str, manifest: &Value) -> Result<ManifestRow> {
    crate::rows::from_value(
        manifest,
        &format!("the {platform} manifest of {}", l.dir.display()),
    )
}

fn digests(manifest: &ManifestRow) -> Vec<String> {
    manifest
        .layers
        .iter()
        .filter_map(|x| x.digest.clone())
        .collect()
}

/// The digest of a manifest's config; a manifest without one is an error.
fn config_digest<'m>(l: &Layout, platform: &str, manifest: &'m ManifestRow) -> Result<&'m str> {
    manifest
        .config
        .as_ref()
        .and_then(|c| c.digest.as_deref())
        .ok_or_else(|| {
            anyhow!(
                "the {platform} manifest of {} names no config digest",
                l.dir.display()
            )
        })
}

/// Finds the first difference between two layouts whose digests differ.
fn compare(runner: &Runner, a: &Layout, b: &Layout, scratch: &Path) -> Result<Difference> {
    let platforms_a: Vec<String> = a.manifests.keys().cloned().collect();
    let platforms_b: Vec<String> = b.manifests.keys().cloned().collect();
    if platforms_a != platforms_b {
        return Ok(Difference::Platforms {
            first: platforms_a,
            second: platforms_b,
        });
    }
    for (platform, ma) in &a.manifests {
        let mb = &b.manifests[platform];
        let (row_a, row_b) = (
            manifest_row(a, platform, ma)?,
            manifest_row(b, platform, mb)?,
        );
        let (la, lb) = (digests(&row_a), digests(&row_b));
        if la.len() != lb.len() {
            return Ok(Difference::LayerCount {
                platform: platform.clone(),
                first: la.len(),
                second: lb.len(),
            });
        }
        let config_a = a.blob_json(config_digest(a, platform, &row_a)?)?;
        let config_b = b.blob_json(config_digest(b, platform, &row_b)?)?;
        if let Some(index) = la.iter().zip(&lb).position(|(x, y)| x != y) {
            let files = layer_files(runner, &a.blob(&la[index]), &b.blob(&lb[index]), scratch)?;
            return Ok(Difference::Layer {
                platform: platform.clone(),
                index,
                created_by: created_by(&config_a, index),
                file_count: files.len(),
                files: files.into_iter().take(MAX_FILES).collect(),
            });
        }
        if config_a != config_b {
            return Ok(Difference::Config {
                platform: platform.clone(),
                fields: differing_fields(&config_a, &config_b),
            });
        }
        if ma != mb {
            return Ok(Difference::Other {
                detail: format!("{platform}: the manifests differ outside layers and config"),
            });
        }
    }
    Ok(Difference::Other {
        detail: "the image indexes differ (annotations or attestations)".to_string(),
    })
}

/// The history entry of the `index`-th layer (history entries marked `empty_layer` make
/// no layer).
fn created_by(config: &Value, index: usize) -> Option<String> {
    ConfigHistoryRow::deserialize(config)
        .ok()?
        .history
        .into_iter()
        .filter(|h| !h.empty_layer)
        .nth(index)
        .and_then(|h| h.created_by)
}

/// The top-level config fields (and `config.*` fields) that differ.
fn differing_fields(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(ma), Some(mb)) = (a.as_object(), b.as_object()) else {
        return vec!["(whole config)".to_string()];
    };
    let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    for key in keys {
        let (x, y) = (&a[key.as_str()], &b[key.as_str()]);
        if x == y {
            continue;
        }
        match (key.as_str(), x.as_object(), y.as_object()) {
            ("config", Some(cx), Some(cy)) => {
                let inner: std::collections::BTreeSet<&String> =
                    cx.keys().chain(cy.keys()).collect();
                for k in inner {
                    if cx.get(k) != cy.get(k) {
                        out.push(format!("config.{k}"));
                    }
                }
            }
            _ => out.push(key.clone()),
        }
    }
    out
}

/// One entry of a layer, as `tar` lists it, plus its content hash.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    mode: String,
    owner: String,
    size: String,
    time: String,
    link: String,
    content: Option<String>,
}

/// The files that differ between two versions of a layer: both are listed by `tar`
/// (mode, owner, size, time, link) and unpacked into `scratch` to compare contents.
fn layer_files(runner: &Runner, a: &Path, b: &Path, scratch: &Path) -> Result<Vec<FileDifference>> {
    let ea = entries(runner, a, &scratch.join("first"))?;
    let eb = entries(runner, b, &scratch.join("second"))?;
    let paths: std::collections::BTreeSet<&String> = ea.keys().chain(eb.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        let what = match (ea.get(path), eb.get(path)) {
            (Some(_), None) => vec!["only in first".to_string()],
            (None, Some(_)) => vec!["only in second".to_string()],
            (Some(x), Some(y)) if x != y => {
                let mut what = Vec::new();
                for (name, differs) in [
                    ("content", x.content != y.content),
                    ("mode", x.mode != y.mode),
                    ("owner", x.owner != y.owner),
                    ("size", x.size != y.size),
                    ("time", x.time != y.time),
                    ("link", x.link != y.link),
                ] {
                    if differs {
                        what.push(name.to_string());
                    }
                }
                what
            }
            _ => continue,
        };
        out.push(FileDifference {
            path: path.clone(),
            what,
        });
    }
    Ok(out)
}

/// Lists and unpacks one layer blob (tar, gzip or zstd: GNU tar detects which).
fn entries(runner: &Runner, blob: &Path, dir: &Path) -> Result<BTreeMap<String, Entry>> {
    runner.remove(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let list = Cmd::new("tar")
        .args([
            "--list",
            "--verbose",
            "--full-time",
            "--numeric-owner",
            "--file",
        ])
        .arg_path(blob)
        .read_only();
    let listing = runner.capture(&list)?.stdout;
    let unpack = Cmd::new("tar")
        .args([
            "--extract",
            "--no-same-owner",
            "--no-same-permissions",
            "--file",
        ])
        .arg_path(blob)
        .arg("--directory")
        .arg_path(dir);
    runner.capture(&unpack)?;
    let mut out = BTreeMap::new();
    for line in listing.lines() {
        // `-rw-r--r-- 0/0    6 2023-11-14 22:13:20 path[ -> target]`
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() < 6 {
            bail!("cannot read tar's listing line {line:?}");
        }
        let (mode, owner, size) = (tokens[0], tokens[1], tokens[2].to_string());
        let time = format!("{} {}", tokens[3], tokens[4]);
        let name_and_link = tokens[5..].join(" ");
        let (name, link) = match name_and_link.split_once(" -> ") {
            Some((n, l)) => (n.to_string(), l.to_string()),
            None => match name_and_link.split_once(" link to ") {
                Some((n, l)) => (n.to_string(), l.to_string()),
                None => (name_and_link, String::new()),
            },
        };
        let name = name.trim_end_matches('/').to_string();
        let content =
            if mode.starts_with('-') {
                let path = dir.join(&name);
                Some(crate::hash::sha256_file(&path).with_context(|| {
                    format!("cannot read {name} unpacked from {}", blob.display())
                })?)
            } else {
                None
            };
        out.insert(
            name,
            Entry {
                mode: mode.to_string(),
                owner: owner.to_string(),
                size,
                time,
                link,
                content,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_builds_are_uncached_oci_layouts_with_the_epoch() {
        let build = Build {
            context: PathBuf::from("/src/app"),
            tags: vec!["app:1".into()],
            output: Output::Load,
            cache_from: vec![crate::docker::cache::Cache::inline()],
            ..Build::new(".")
        };
        let check = Reproducible::new(&build, "/work/repro").source_date_epoch(1_700_000_000);
        let [first, second] = check.builds(1_700_000_000);
        assert_eq!(
            first.command().to_string(),
            "docker buildx build --progress=rawjson --build-arg SOURCE_DATE_EPOCH=1700000000 \
             --no-cache --output type=oci,dest=/work/repro/first,tar=false,rewrite-timestamp=true \
             /src/app"
        );
        assert_eq!(
            second.output,
            Output::OciLayout(PathBuf::from("/work/repro/second"))
        );
    }

    #[test]
    fn differing_config_fields_are_named() {
        let a: Value =
            serde_json::json!({"created": "1", "config": {"Env": ["A=1"], "User": "app"}});
        let b: Value =
            serde_json::json!({"created": "2", "config": {"Env": ["A=2"], "User": "app"}});
        assert_eq!(differing_fields(&a, &b), ["config.Env", "created"]);
    }

    #[test]
    fn history_entries_without_layers_are_skipped() {
        let config = serde_json::json!({"history": [
            {"created_by": "ADD rootfs"},
            {"created_by": "ENV A=1", "empty_layer": true},
            {"created_by": "RUN date > /built"},
        ]});
        assert_eq!(created_by(&config, 1).as_deref(), Some("RUN date > /built"));
    }

    fn write_blob(dir: &Path, name: &str, json: &str) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("blobs/sha256").join(name), json).unwrap();
    }

    #[test]
    fn layouts_are_read_into_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("index.json"),
            r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:top"}]}"#,
        )
        .unwrap();
        write_blob(
            dir,
            "top",
            r#"{"manifests":[{"digest":"sha256:m1","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"digest":"sha256:att","platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        );
        write_blob(
            dir,
            "m1",
            r#"{"config":{"digest":"sha256:c"},"layers":[{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}"#,
        );
        let layout = Layout::open(&Runner::new(), dir).unwrap();
        assert_eq!(layout.digest, "sha256:top");
        let platforms: Vec<&String> = layout.manifests.keys().collect();
        assert_eq!(platforms, ["linux/arm64/v8"]);
        let row = manifest_row(
            &layout,
            "linux/arm64/v8",
            &layout.manifests["linux/arm64/v8"],
        )
        .unwrap();
        assert_eq!(digests(&row), ["sha256:l1", "sha256:l2"]);
        assert_eq!(
            config_digest(&layout, "linux/arm64/v8", &row).unwrap(),
            "sha256:c"
        );
        // A manifest without its config digest, and an index entry without a digest.
        let row: ManifestRow = serde_json::from_str(r#"{"layers":[]}"#).unwrap();
        let e = config_digest(&layout, "linux/arm64/v8", &row).unwrap_err();
        assert!(e.to_string().contains("names no config digest"), "{e}");
        std::fs::write(dir.join("index.json"), r#"{"manifests":[{"size":1}]}"#).unwrap();
        let e = Layout::open(&Runner::new(), dir).err().unwrap();
        assert!(
            e.to_string()
                .contains("index.json: an entry without digest"),
            "{e}"
        );
        std::fs::write(dir.join("index.json"), r#"{"manifests":{"digest":"x"}}"#).unwrap();
        let e = Layout::open(&Runner::new(), dir).err().unwrap();
        assert!(
            format!("{e:#}").contains("index.json is JSON of an unexpected shape"),
            "{e:#}"
        );
    }
}
