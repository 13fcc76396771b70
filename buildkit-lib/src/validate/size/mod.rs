//! Image size budget and history: the image's bytes from the engine against a target and a
//! maximum, its largest layers and how they changed since the last build, and a JSON-lines
//! history with a hand-written SVG chart of size over builds.
//!
//! Which size is judged, and where the byte counts come from, is documented for users on
//! [`SizeCheck`].
//!
//! The budget lives in `budget`, the history and layer diff in `history`, the chart in
//! `chart`; this module measures an image and puts them together.

mod budget;
mod chart;
mod history;

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cmd::Runner;
use crate::docker::image::{layer_indices, local_images, ImageFacts, ImageSizes, Layer};
use crate::files::write_atomic;
use crate::plan::Step;
use crate::units::{human_bytes, human_delta};

pub(crate) use budget::SizeOutcome;
pub(crate) use budget::{SizeBudget, SizeMeasure};
pub(crate) use chart::svg_chart;
pub(crate) use history::{diff_layers, read_history, LayerChange, LayerRecord, SizeRecord};

/// The outcome of a size check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SizeReport {
    /// What was measured (and appended to the history).
    pub(crate) record: SizeRecord,
    /// The budget.
    pub(crate) budget: SizeBudget,
    /// Pass, warn or fail; not checked when nothing was measured (a plan).
    pub outcome: crate::validate::Verdict,
    /// The largest layers, biggest first, by unpacked size.
    pub(crate) largest_layers: Vec<LayerRecord>,
    /// The previous record of the same image, if any.
    pub(crate) previous: Option<SizeRecord>,
    /// Layer changes since the previous record.
    pub(crate) changes: Vec<LayerChange>,
    /// The history file.
    pub(crate) history_file: PathBuf,
    /// The chart written next to it.
    pub(crate) chart_file: PathBuf,
}

impl SizeReport {
    /// Change of the judged size since the previous build of the same image judged the
    /// same way, in bytes.
    pub(crate) fn growth(&self) -> Option<i64> {
        self.previous
            .as_ref()
            .map(|p| self.record.bytes as i64 - p.bytes as i64)
    }

    /// The judged size in bytes: the unpacked size, or the compressed one when the check
    /// judges it ([`SizeCheck::compressed`]).
    pub fn bytes(&self) -> u64 {
        self.record.bytes
    }

    /// An error when the outcome is [`Verdict::Fail`](crate::validate::Verdict::Fail), for steps that must stop there.
    pub fn ensure_within_max(&self) -> Result<()> {
        if self.outcome == SizeOutcome::Fail {
            anyhow::bail!(
                "image {}:{} is {} {} ({} bytes), over the maximum of {}; see the largest \
                 layers in the size report",
                self.record.image,
                self.record.tag,
                human_bytes(self.record.bytes),
                self.budget.measure,
                self.record.bytes,
                human_bytes(self.budget.max_bytes)
            );
        }
        Ok(())
    }
}

fn short(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

impl fmt::Display for SizeReport {
    /// ```text
    /// image app:1: 66.1 MB unpacked (66069698 bytes, as `docker images` shows), 1.13 MB
    /// compressed (1132570 bytes, pushed and pulled): fail, judging the unpacked size
    /// (target 10 MB, max 20 MB); +2 MB since the previous build
    /// largest layers (unpacked):
    ///      62.9 MB  RUN /bin/sh -c dd if=/dev/zero of=/zeros bs=1M count=60 # buildkit
    ///      1.99 MB  COPY busybox-amd64 /bin/busybox # buildkit
    ///    + 1.13 MB  compressed content the engine keeps beside the unpacked layers
    /// ```
    /// (The first line is one line.)
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.record;
        write!(f, "image {}:{}: ", r.image, r.tag)?;
        let unpacked = r.unpacked_bytes.unwrap_or(r.bytes);
        write!(
            f,
            "{} unpacked ({unpacked} bytes, as `docker images` shows), ",
            human_bytes(unpacked)
        )?;
        match r.compressed_bytes {
            Some(c) => write!(
                f,
                "{} compressed ({c} bytes, pushed and pulled)",
                human_bytes(c)
            )?,
            None => write!(f, "compressed size unknown (classic image store)")?,
        }
        write!(
            f,
            ": {}, judging the {} size (target {}, max {})",
            self.outcome,
            self.budget.measure,
            human_bytes(self.budget.target_bytes),
            human_bytes(self.budget.max_bytes)
        )?;
        if let Some(growth) = self.growth() {
            write!(f, "; {} since the previous build", human_delta(growth))?;
        }
        writeln!(f)?;
        if !self.largest_layers.is_empty() {
            match (self.budget.measure, r.compressed_bytes) {
                (SizeMeasure::Compressed, Some(_)) => writeln!(
                    f,
                    "largest layers (unpacked: the engine gives no per-layer compressed size):"
                )?,
                _ => writeln!(f, "largest layers (unpacked):")?,
            }
            for l in &self.largest_layers {
                writeln!(
                    f,
                    "  {:>10}  {}",
                    human_bytes(l.bytes),
                    short(&l.created_by, 100)
                )?;
            }
            let content = r.content_on_disk();
            if self.budget.measure == SizeMeasure::Unpacked && content > 0 {
                writeln!(
                    f,
                    "  {:>10}  compressed content the engine keeps beside the unpacked layers",
                    format!("+ {}", human_bytes(content))
                )?;
            }
        }
        if !self.changes.is_empty() {
            writeln!(f, "layer changes since the previous build (unpacked):")?;
            for c in &self.changes {
                let what = match (c.before, c.after) {
                    (None, _) => "new",
                    (_, None) => "gone",
                    _ if c.delta() > 0 => "grew",
                    _ => "shrank",
                };
                writeln!(
                    f,
                    "  {:>10}  {what:<6}  {}",
                    human_delta(c.delta()),
                    short(&c.created_by, 90)
                )?;
            }
        }
        writeln!(f, "history: {}", self.history_file.display())?;
        write!(f, "chart: {}", self.chart_file.display())
    }
}

/// The size step: measure an image, judge it, record it, chart the history.
///
/// # Sizes
///
/// An image has two sizes, and the report gives both, labelled: the unpacked size on disk,
/// as `docker images` shows it, and the compressed size a registry stores and a push or
/// pull transfers (both measured by the step). The budget ([`SizeCheck::budget`]) judges
/// one of them: by default the unpacked size, with [`SizeCheck::compressed`] the
/// compressed one. Sizes are the engine's byte counts (`docker image
/// inspect`, `docker history --human=false`, the engine's image list), never parsed from
/// human text, and printed in decimal units as `docker images` shows them (`354 MB`).
///
/// # Example
///
/// ```
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::SizeCheck;
/// use buildkit_lib::Runner;
///
/// let check = SizeCheck::new("myapp:dev", "target/size-history.jsonl");
/// let plan = check.plan(&Runner::new()).unwrap().to_string();
/// assert!(plan.starts_with("? docker image inspect"), "{plan}");
/// assert!(plan.contains("write target/size-history.jsonl"), "{plan}");
/// // With an engine: `check.run(&buildkit_lib::Runner::new())?.ensure_within_max()?;`
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SizeCheck {
    /// The image to measure (`name:tag` or an id).
    pub(crate) image: String,
    /// The budget.
    pub(crate) budget: SizeBudget,
    /// The JSON-lines history file.
    pub(crate) history_file: PathBuf,
    /// The git commit the image was built from, if known.
    pub(crate) git_commit: Option<String>,
    /// How many of the largest layers to report.
    pub(crate) top_layers: usize,
    /// The time the record carries (RFC 3339), when not the time of the run.
    pub(crate) time: Option<String>,
}

impl SizeCheck {
    /// The budget in bytes: warn above `target_bytes`, fail above `max_bytes` (by default
    /// the seed project's 1.5 GB and 1.8 GB), of the size the check judges.
    pub fn budget(mut self, target_bytes: u64, max_bytes: u64) -> SizeCheck {
        self.budget = SizeBudget {
            target_bytes,
            max_bytes,
            measure: self.budget.measure,
        };
        self
    }

    /// Judges the compressed size (what a registry stores and a push or pull transfers)
    /// instead of the unpacked size `docker images` shows. Where the engine does not
    /// know the compressed size (the classic image store), the larger unpacked size is
    /// judged, so it never passes an image it should not.
    pub fn compressed(mut self) -> SizeCheck {
        self.budget.measure = SizeMeasure::Compressed;
        self
    }

    /// The git commit the image was built from, if known.
    pub fn git_commit(mut self, git_commit: impl Into<String>) -> SizeCheck {
        self.git_commit = Some(git_commit.into());
        self
    }

    /// The time the record carries (RFC 3339, such as `2024-05-01T12:00:00Z`) instead of
    /// the time of the run: for a record that must not depend on the clock (a plan
    /// compared with a run, a golden file).
    pub fn time(mut self, time: impl Into<String>) -> SizeCheck {
        self.time = Some(time.into());
        self
    }
}

/// Splits `name:tag` (a `:` after the last `/`), dropping any `@digest`.
pub(crate) fn split_tag(image: &str) -> (String, String) {
    let image = image.split('@').next().unwrap_or(image);
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), String::new()),
    }
}

impl SizeCheck {
    /// A check of `image` with the default budget, recording into `history_file`.
    pub fn new(image: impl Into<String>, history_file: impl Into<PathBuf>) -> SizeCheck {
        SizeCheck {
            image: image.into(),
            budget: SizeBudget::default(),
            history_file: history_file.into(),
            git_commit: None,
            top_layers: 5,
            time: None,
        }
    }

    /// The record for an image with these facts, sizes and history (newest first, as
    /// `docker history` lists it), measured at `time`. `bytes` is the size the budget
    /// judges. A layer without an instruction is described as `base layer`.
    pub(crate) fn record(
        &self,
        facts: &ImageFacts,
        sizes: &ImageSizes,
        layers: &[Layer],
        time: &str,
    ) -> SizeRecord {
        let name = match facts.repo_tags.first() {
            Some(tagged) if self.image.starts_with("sha256:") => tagged.clone(),
            _ => self.image.clone(),
        };
        let (image, mut tag) = split_tag(&name);
        if tag.is_empty() && !name.starts_with("sha256:") {
            tag = "latest".to_string();
        }
        let digest = facts
            .repo_digests
            .iter()
            .find_map(|d| d.split_once('@').map(|(_, dg)| dg.to_string()))
            .unwrap_or_default();
        SizeRecord {
            time: time.to_string(),
            image,
            tag,
            digest,
            id: facts.id.clone(),
            bytes: self.budget.judged_bytes(sizes),
            measure: Some(self.budget.measure),
            unpacked_bytes: Some(sizes.unpacked_bytes),
            compressed_bytes: sizes.compressed_bytes,
            git_commit: self.git_commit.clone().unwrap_or_default(),
            // `docker history` lists newest first; the record keeps build order.
            layers: layers
                .iter()
                .rev()
                .map(|l| LayerRecord {
                    created_by: if l.created_by.trim().is_empty() {
                        base_layer_text(&l.comment)
                    } else {
                        l.created_by.clone()
                    },
                    bytes: l.size_bytes,
                })
                .collect(),
        }
    }

    /// Judges `record` against the budget and `previous`.
    pub(crate) fn report(
        &self,
        record: SizeRecord,
        previous: Option<SizeRecord>,
        chart_file: PathBuf,
    ) -> SizeReport {
        let mut largest: Vec<LayerRecord> = record.layers.clone();
        largest.sort_by_key(|l| std::cmp::Reverse(l.bytes));
        largest.retain(|l| l.bytes > 0);
        largest.truncate(self.top_layers);
        let changes = previous
            .as_ref()
            .map(|p| diff_layers(&p.layers, &record.layers))
            .unwrap_or_default();
        // A real image always has an ID; none means the answers were placeholders.
        let outcome = if record.id.is_empty() {
            SizeOutcome::NotChecked
        } else {
            self.budget.check(record.bytes)
        };
        SizeReport {
            outcome,
            budget: self.budget,
            largest_layers: largest,
            previous,
            changes,
            history_file: self.history_file.clone(),
            chart_file,
            record,
        }
    }
}

/// `base layer`, with the engine's comment when it has one (`base layer (Imported from -)`).
fn base_layer_text(comment: &str) -> String {
    match comment.trim() {
        "" => "base layer".to_string(),
        c => format!("base layer ({c})"),
    }
}

/// Gives each layer without an instruction (an imported base, such as an image made with
/// `docker import`) the name of the local image it comes from: the image with the fewest
/// layers whose layers are a prefix of `facts`' layers and include that one
/// (`base image buildkit-local/python:3.11`). Layers whose base is not a local tagged
/// image keep their empty text (the record calls them `base layer`).
fn describe_base_layers(layers: &mut [Layer], facts: &ImageFacts, locals: &[ImageFacts]) {
    let Some(indices) = layer_indices(facts.diff_ids.len(), layers) else {
        return;
    };
    for (layer, index) in layers.iter_mut().zip(indices) {
        let (true, Some(i)) = (layer.created_by.trim().is_empty(), index) else {
            continue;
        };
        let base = locals
            .iter()
            .filter(|other| {
                other.id != facts.id
                    && !other.repo_tags.is_empty()
                    && other.diff_ids.len() > i
                    && facts.diff_ids.starts_with(&other.diff_ids)
            })
            .min_by_key(|other| (other.diff_ids.len(), other.repo_tags[0].clone()));
        if let Some(base) = base {
            layer.created_by = format!("base image {}", base.repo_tags[0]);
        }
    }
}

impl Step for SizeCheck {
    type Output = SizeReport;

    /// The size against the budget and the change since the last record.
    fn summary(&self, report: &SizeReport) -> Option<String> {
        Some(report.to_string())
    }

    /// Fails over the maximum ([`SizeReport::ensure_within_max`]).
    fn judge(&self, report: &SizeReport) -> anyhow::Result<()> {
        report.ensure_within_max()
    }

    /// Measures the image (both sizes), judges the size the budget
    /// names, compares it with the previous record judged the same way, appends a record
    /// to the history and rewrites the chart beside it (`.svg`). The outcome is returned,
    /// not raised: call [`SizeReport::ensure_within_max`] to stop on a failure.
    ///
    /// Its plan is this body recorded: the queries that measure the image, then the
    /// history file and the chart it writes, with what a dry run's answers give.
    fn run(&self, runner: &Runner) -> Result<SizeReport> {
        let (sizes, facts, mut layers) = ImageSizes::measure(runner, &self.image)?;
        if layers.iter().any(|l| l.created_by.trim().is_empty()) {
            // Name the base image of imported layers, when it is a local image.
            let locals = local_images(runner).unwrap_or_default();
            describe_base_layers(&mut layers, &facts, &locals);
        }
        let record = self.record(
            &facts,
            &sizes,
            &layers,
            &self
                .time
                .clone()
                .unwrap_or_else(|| crate::time::rfc3339(SystemTime::now())),
        );
        let existing = read_history(&self.history_file)?;
        let previous = existing
            .iter()
            .rev()
            .find(|r| r.image == record.image && r.measure == record.measure)
            .cloned();
        let mut all = existing;
        all.push(record.clone());
        let mut text = String::new();
        for r in &all {
            text.push_str(&serde_json::to_string(r).context("cannot encode a size record")?);
            text.push('\n');
        }
        write_atomic(runner, &self.history_file, text.as_bytes())?;
        let chart_file = self.history_file.with_extension("svg");
        let same_image: Vec<SizeRecord> = all
            .into_iter()
            .filter(|r| r.image == record.image && r.measure == record.measure)
            .collect();
        write_atomic(
            runner,
            &chart_file,
            svg_chart(&record.image, &same_image, &self.budget).as_bytes(),
        )?;
        Ok(self.report(record, previous, chart_file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(created_by: &str, bytes: u64) -> LayerRecord {
        LayerRecord {
            created_by: created_by.into(),
            bytes,
        }
    }

    #[test]
    fn budget_outcomes_and_exit_codes() {
        let budget = SizeBudget::default();
        assert_eq!(budget.check(1_500_000_000), SizeOutcome::Pass);
        assert_eq!(budget.check(1_500_000_001), SizeOutcome::Warn);
        assert_eq!(budget.check(1_800_000_000), SizeOutcome::Warn);
        assert_eq!(budget.check(1_800_000_001), SizeOutcome::Fail);
        let codes: Vec<i32> = [SizeOutcome::Pass, SizeOutcome::Warn, SizeOutcome::Fail]
            .iter()
            .map(|o| o.exit_code())
            .collect();
        assert_eq!(codes, vec![0, 3, 1]);
    }

    fn entry(created_by: &str, bytes: u64, comment: &str) -> Layer {
        Layer {
            id: None,
            size_bytes: bytes,
            created_by: created_by.into(),
            created_at: String::new(),
            comment: comment.into(),
        }
    }

    /// The numbers the project's engine (containerd image store) gave for an image of
    /// 60 MB of zeros on busybox: `docker image inspect` 1132570 (compressed content),
    /// `docker images` 66069698, `docker history` the unpacked layers.
    fn zeros_image() -> (ImageFacts, Vec<Layer>) {
        let facts = ImageFacts {
            id: "sha256:42f7".into(),
            repo_tags: vec!["zeros:1".into()],
            size_bytes: 1_132_570,
            diff_ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            ..ImageFacts::default()
        };
        let history = vec![
            entry("RUN /bin/sh -c echo hi > /hi # buildkit", 8_192, ""),
            entry(
                "RUN /bin/sh -c dd if=/dev/zero of=/zeros bs=1M count=60",
                62_918_656,
                "",
            ),
            entry("CMD [\"sh\"]", 0, ""),
            entry("ENV PATH=/bin", 0, ""),
            entry(
                "RUN |1 TARGETARCH=amd64 /bin/busybox --install -s /bin",
                20_480,
                "",
            ),
            entry("", 1_990_656, "Imported from -"),
            entry("ARG TARGETARCH", 0, ""),
        ];
        (facts, history)
    }

    #[test]
    fn the_default_budget_judges_the_unpacked_size_docker_images_shows() {
        let (facts, history) = zeros_image();
        let sizes = ImageSizes::from_parts(&facts, &history, Some(66_069_698));
        assert_eq!(sizes.compressed_bytes, Some(1_132_570));
        assert_eq!(sizes.unpacked_bytes, 66_069_698);
        // A budget between the two sizes: passes the compressed size, fails the unpacked.
        let budget = SizeBudget::new(5_000_000, 10_000_000);
        assert_eq!(budget.measure, SizeMeasure::Unpacked);
        assert_eq!(SizeBudget::default().measure, SizeMeasure::Unpacked);
        assert_eq!(budget.judged_bytes(&sizes), 66_069_698);
        assert_eq!(budget.check(budget.judged_bytes(&sizes)), SizeOutcome::Fail);
        let compressed = budget.measure(SizeMeasure::Compressed);
        assert_eq!(compressed.judged_bytes(&sizes), 1_132_570);
        assert_eq!(
            compressed.check(compressed.judged_bytes(&sizes)),
            SizeOutcome::Pass
        );
        // Without the engine's list figure, the disk size is content plus layers.
        let computed = ImageSizes::from_parts(&facts, &history, None);
        assert_eq!(computed.unpacked_bytes, 1_132_570 + 64_937_984);
        // Classic store: `.Size` is the layers; no compressed size, a compressed budget
        // judges the (larger) unpacked size rather than passing blind.
        let classic = ImageFacts {
            size_bytes: 64_937_984,
            ..facts.clone()
        };
        let sizes = ImageSizes::from_parts(&classic, &history, None);
        assert_eq!(sizes.compressed_bytes, None);
        assert_eq!(sizes.unpacked_bytes, 64_937_984);
        assert_eq!(compressed.judged_bytes(&sizes), 64_937_984);
    }

    #[test]
    fn report_labels_both_sizes_and_lists_layers_in_the_judged_measure() {
        let (facts, mut history) = zeros_image();
        let sizes = ImageSizes::from_parts(&facts, &history, Some(66_069_698));
        let base = ImageFacts {
            id: "sha256:b".into(),
            repo_tags: vec!["buildkit-local/busybox:latest".into()],
            diff_ids: vec!["a".into(), "b".into()],
            ..ImageFacts::default()
        };
        describe_base_layers(&mut history, &facts, &[base, facts.clone()]);
        let mut check = SizeCheck::new("zeros:1", "/t/h.jsonl");
        check.budget = SizeBudget::new(5_000_000, 10_000_000);
        check.top_layers = 3;
        let record = check.record(&facts, &sizes, &history, "2026-11-30T18:32:02Z");
        assert_eq!(record.bytes, 66_069_698);
        assert_eq!(record.measure, Some(SizeMeasure::Unpacked));
        assert_eq!(
            record.layers[1].created_by,
            "base image buildkit-local/busybox:latest"
        );
        assert!(record.layers.iter().all(|l| !l.created_by.is_empty()));
        let report = check.report(record, None, "/t/h.svg".into());
        assert_eq!(report.outcome, SizeOutcome::Fail);
        assert_eq!(
            report.to_string(),
            "image zeros:1: 66.1 MB unpacked (66069698 bytes, as `docker images` shows), \
             1.13 MB compressed (1132570 bytes, pushed and pulled): fail, judging the \
             unpacked size (target 5 MB, max 10 MB)\n\
             largest layers (unpacked):\n     \
             62.9 MB  RUN /bin/sh -c dd if=/dev/zero of=/zeros bs=1M count=60\n     \
             1.99 MB  base image buildkit-local/busybox:latest\n     \
             20.5 kB  RUN |1 TARGETARCH=amd64 /bin/busybox --install -s /bin\n   \
             + 1.13 MB  compressed content the engine keeps beside the unpacked layers\n\
             history: /t/h.jsonl\n\
             chart: /t/h.svg"
        );
        assert_eq!(
            report.ensure_within_max().unwrap_err().to_string(),
            "image zeros:1 is 66.1 MB unpacked (66069698 bytes), over the maximum of 10 MB; \
             see the largest layers in the size report"
        );

        // Judging the compressed size: it passes, and says the layers are unpacked.
        check.budget = check.budget.measure(SizeMeasure::Compressed);
        let record = check.record(&facts, &sizes, &history, "2026-11-30T18:32:02Z");
        assert_eq!(record.bytes, 1_132_570);
        let report = check.report(record, None, "/t/h.svg".into());
        assert_eq!(report.outcome, SizeOutcome::Pass);
        let text = report.to_string();
        assert!(text.contains(": pass, judging the compressed size (target 5 MB, max 10 MB)"));
        assert!(text
            .contains("largest layers (unpacked: the engine gives no per-layer compressed size):"));
        assert!(!text.contains("compressed content the engine keeps"));

        // An imported layer without a local base image is still described.
        let (facts, history) = zeros_image();
        let record = check.record(&facts, &sizes, &history, "t");
        assert_eq!(record.layers[1].created_by, "base layer (Imported from -)");
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("app:1.0"), ("app".into(), "1.0".into()));
        assert_eq!(
            split_tag("127.0.0.1:5000/org/app"),
            ("127.0.0.1:5000/org/app".into(), String::new())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/app:v2@sha256:ab"),
            ("127.0.0.1:5000/app".into(), "v2".into())
        );
    }

    #[test]
    fn layer_diff_names_what_grew_shrank_came_and_went() {
        let before = vec![
            layer("COPY busybox /bin/busybox", 2_000_000),
            layer("RUN pip install -r req.txt", 50_000_000),
            layer("ENV A=1", 0),
            layer("RUN rm -rf /tmp/x", 10),
        ];
        let after = vec![
            layer("COPY busybox /bin/busybox", 2_000_000),
            layer("RUN pip install -r req.txt", 80_000_000),
            layer("ENV A=1", 0),
            layer("COPY app /app", 1_000),
        ];
        let changes = diff_layers(&before, &after);
        let got: Vec<(&str, i64)> = changes
            .iter()
            .map(|c| (c.created_by.as_str(), c.delta()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("RUN pip install -r req.txt", 30_000_000),
                ("COPY app /app", 1_000),
                ("RUN rm -rf /tmp/x", -10),
            ]
        );
        assert_eq!(changes[1].before, None);
        assert_eq!(changes[2].after, None);

        // A RUN whose text changed (a build argument) at the same position "grew".
        let before = vec![layer("FROM x", 5), layer("RUN |1 N=1 /bin/sh -c make", 100)];
        let after = vec![layer("FROM x", 5), layer("RUN |1 N=2 /bin/sh -c make", 300)];
        let changes = diff_layers(&before, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].before, changes[0].after),
            (Some(100), Some(300))
        );
        assert_eq!(changes[0].created_by, "RUN |1 N=2 /bin/sh -c make");
    }

    #[test]
    fn history_round_trips_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        assert!(read_history(&path).unwrap().is_empty());
        let record = SizeRecord {
            time: "2026-11-21T05:45:28Z".into(),
            image: "app".into(),
            tag: "1".into(),
            digest: String::new(),
            id: "sha256:1".into(),
            bytes: 42,
            measure: Some(SizeMeasure::Unpacked),
            unpacked_bytes: Some(42),
            compressed_bytes: Some(7),
            git_commit: "abc".into(),
            layers: vec![layer("RUN x", 42)],
        };
        let line = serde_json::to_string(&record).unwrap();
        std::fs::write(&path, format!("{line}\n\nnot json\n")).unwrap();
        let err = read_history(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} line 3 is not a size record (fix or remove that line)",
                path.display()
            )
        );
        std::fs::write(&path, format!("{line}\n")).unwrap();
        assert_eq!(read_history(&path).unwrap(), vec![record]);
    }

    #[test]
    fn chart_has_a_point_per_build_and_budget_lines() {
        let records: Vec<SizeRecord> = (0..4)
            .map(|i| SizeRecord {
                time: format!("2026-11-2{i}T00:00:00Z"),
                image: "app<&>".into(),
                tag: format!("v{i}"),
                digest: String::new(),
                id: String::new(),
                bytes: 1_000_000_000 + i * 300_000_000,
                measure: Some(SizeMeasure::Unpacked),
                unpacked_bytes: None,
                compressed_bytes: None,
                git_commit: "0123456789".into(),
                layers: vec![],
            })
            .collect();
        let svg = svg_chart("app<&>", &records, &SizeBudget::default());
        if let Ok(path) = std::env::var("SIZE_CHART_SAMPLE") {
            let many: Vec<SizeRecord> = (0..12u64)
                .map(|i| SizeRecord {
                    time: format!("2026-11-{:02}T09:00:00Z", i + 1),
                    tag: format!("1.{i}.0"),
                    bytes: 1_100_000_000 + i * i * 6_000_000,
                    git_commit: format!("{:07x}", 0xabc123 + i),
                    ..records[0].clone()
                })
                .collect();
            std::fs::write(
                path,
                svg_chart("ghcr.io/org/app", &many, &SizeBudget::default()),
            )
            .unwrap();
        }
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("Image size (unpacked): app&lt;&amp;&gt; (4 builds)"));
        assert!(svg.contains(">target 1.5 GB</text>"));
        assert!(svg.contains(">max 1.8 GB</text>"));
        // The fourth build (1.9 GB) is over the maximum: drawn red.
        assert!(svg.contains("fill=\"#c62828\"><title>2026-11-23T00:00:00Z v3 1.9 GB</title>"));
    }
}
