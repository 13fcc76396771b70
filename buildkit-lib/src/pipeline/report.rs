//! The run report: `report.json`, the summary table, and the GitHub Actions summary.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::docker::build::BuildRecord;
use crate::finding::Finding;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepStatus {
    /// It ran and succeeded.
    #[serde(rename = "ok")]
    Ok,
    /// It ran and failed (or panicked).
    #[serde(rename = "failed")]
    Failed,
    /// It did not run: a dependency failed, or the run stopped after a failure.
    #[serde(rename = "skipped")]
    Skipped,
    /// It did not run: its inputs are unchanged and its output exists.
    #[serde(rename = "up-to-date")]
    UpToDate,
    /// It ran and checked nothing, because the engine or the tools cannot do what it
    /// does (such as BuildKit's build checks on buildx 0.13); its record's `reason`
    /// says why. It does not stop the steps after it, and is never recorded as up to
    /// date.
    #[serde(rename = "unsupported")]
    Unsupported,
}

impl StepStatus {
    /// The status as written in reports (its `Display`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::UpToDate => "up-to-date",
            StepStatus::Unsupported => "unsupported",
        }
    }

    /// True for `ok`, `up-to-date` and `unsupported` (a step that could not check
    /// anything here does not stop the run; its reason is in the report).
    pub(crate) fn succeeded(self) -> bool {
        matches!(
            self,
            StepStatus::Ok | StepStatus::UpToDate | StepStatus::Unsupported
        )
    }
}

impl std::fmt::Display for StepStatus {
    /// The status as written in reports: `ok`, `failed`, `skipped`, `up-to-date`,
    /// `unsupported`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One step in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step's name.
    pub name: String,
    /// How it ended.
    pub status: StepStatus,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Its log file, relative to the pipeline folder when inside it.
    pub log: Option<String>,
    /// Every command it ran, as argv arrays (secrets masked).
    pub commands: Vec<Vec<String>>,
    /// The error, when it failed (secrets masked).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// For an image build: which instructions were cached, and why the first rebuilt one
    /// ran (one line).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub why: Option<String>,
    /// For an image build: each Dockerfile instruction, cached or run, and why it ran.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub(crate) instructions: Vec<InstructionRecord>,
    /// What the step warned about without failing: cache set-up findings with their fix, a
    /// cache the build did not write.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub(crate) warnings: Vec<WarningRecord>,
    /// Why it checked nothing, when its status is `unsupported`; why it did not run, when
    /// it is `skipped` (an earlier step failed, the run was cancelled).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) reason: Option<String>,
    /// What its checks found, each with its file and line ([`StepCx::add_findings`]):
    /// written as GitHub annotations in GitHub Actions.
    ///
    /// [`StepCx::add_findings`]: super::StepCx::add_findings
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub findings: Vec<Finding>,
    /// BuildKit's records of the builds it ran ([`StepCx::add_build`]): each build's
    /// reference, and its step counts or BuildKit's error where buildx keeps them.
    ///
    /// [`StepCx::add_build`]: super::StepCx::add_build
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub(crate) builds: Vec<BuildRecord>,
}

impl StepRecord {
    /// A record of `name` with `status` and nothing else.
    pub(crate) fn new(name: &str, status: StepStatus) -> StepRecord {
        StepRecord {
            name: name.to_string(),
            status,
            seconds: 0.0,
            log: None,
            commands: Vec::new(),
            error: None,
            reason: None,
            findings: Vec::new(),
            builds: Vec::new(),
            warnings: Vec::new(),
            why: None,
            instructions: Vec::new(),
        }
    }

    /// What the summary says besides the status: the reason of an unsupported step,
    /// else how many findings it has.
    fn remark(&self) -> Option<String> {
        if let Some(reason) = &self.reason {
            // A skipped step's status already says it was skipped.
            if self.status == StepStatus::Skipped {
                return Some(reason.clone());
            }
            return Some(format!("skipped: {reason}"));
        }
        match self.findings.len() {
            0 => None,
            1 => Some("1 finding".into()),
            n => Some(format!("{n} findings")),
        }
    }
}

/// A workflow command's message: `%`, CR and LF escaped.
pub(crate) fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,` escaped.
pub(crate) fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// A warning of a step, in the report (and, in GitHub Actions, a `::warning` annotation
/// at its Dockerfile line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub(crate) struct WarningRecord {
    /// What it is about: a [`CacheCheck`](crate::docker::explain::CacheCheck) name
    /// (`copy-before-install`, ...) or `cache-not-written`.
    pub(crate) kind: String,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it, when there is a fix to give.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) fix: Option<String>,
    /// The file it is in (a Dockerfile, as the build names it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) file: Option<String>,
    /// The 1-based line in that file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) line: Option<usize>,
}

impl WarningRecord {
    /// A warning of `kind` saying `message`, at no particular place.
    pub(crate) fn new(kind: impl Into<String>, message: impl Into<String>) -> WarningRecord {
        WarningRecord {
            kind: kind.into(),
            message: message.into(),
            fix: None,
            file: None,
            line: None,
        }
    }

    /// The warning of a cache that `image`'s build did not write.
    pub(crate) fn cache_not_written(
        image: &str,
        cache: &crate::docker::explain::CacheNotWritten,
    ) -> WarningRecord {
        WarningRecord::new("cache-not-written", format!("image {image} built; {cache}"))
    }
}

impl From<&crate::docker::explain::CacheWarning> for WarningRecord {
    fn from(w: &crate::docker::explain::CacheWarning) -> WarningRecord {
        WarningRecord {
            kind: w.check.as_str().to_string(),
            message: w.message.clone(),
            fix: Some(w.fix.clone()),
            file: w.file.clone(),
            line: w.line,
        }
    }
}

/// One Dockerfile instruction of an image build, in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub(crate) struct InstructionRecord {
    /// The stage (`stage-N` when unnamed), with the platform first in a multi-platform
    /// build (`linux/arm64 builder`).
    pub(crate) stage: String,
    /// The Dockerfile line, when known.
    pub(crate) line: Option<usize>,
    /// The instruction as written.
    pub(crate) instruction: String,
    /// Taken from the cache.
    pub(crate) cached: bool,
    /// Seconds it ran, when it ran.
    pub(crate) seconds: Option<f64>,
    /// Why it ran, in words.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) cause: Option<String>,
}

impl InstructionRecord {
    /// The report's row for one explained instruction of a build of `dockerfile` (the
    /// file name lines are cited in).
    pub(crate) fn of(
        row: &crate::docker::explain::InstructionRow,
        dockerfile: &str,
    ) -> InstructionRecord {
        InstructionRecord {
            stage: match &row.platform {
                Some(p) => format!("{p} {}", row.stage),
                None => row.stage.clone(),
            },
            line: row.line,
            instruction: row.instruction.clone(),
            cached: row.cached(),
            seconds: row.seconds,
            cause: row.cause.as_ref().map(|c| c.text(dockerfile)),
        }
    }
}

/// An image a step built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct ImageRecord {
    /// Image name (repository).
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its digest, when known.
    pub digest: Option<String>,
    /// Its size in bytes, when loaded into the engine.
    pub size_bytes: Option<u64>,
    /// Its platforms.
    pub platforms: Vec<String>,
}

/// A file a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArtifactRecord {
    /// The file's path.
    pub path: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of its content, hex.
    pub sha256: String,
}

impl ImageRecord {
    /// The record of an image `build` made, under the name `name`.
    pub(crate) fn of(
        name: impl Into<String>,
        build: &crate::docker::build::BuildResult,
    ) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            tags: build.tags.clone(),
            digest: build.digest.clone(),
            size_bytes: build.size_bytes,
            platforms: build.platforms.clone(),
        }
    }
}

impl std::fmt::Display for Report {
    /// The summary table printed at the end of a run: one row per step (its status, time
    /// and remark), then the images and artifacts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table())
    }
}

/// The report of one pipeline run, written to `target/buildkit/<pipeline>/report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The pipeline's name.
    pub(crate) pipeline: String,
    /// True when every step succeeded or was up to date (a program exits 0 then, 1 when a
    /// step failed).
    pub ok: bool,
    /// Wall time of the run in seconds.
    pub seconds: f64,
    /// The run id (as in the `dev.buildkit-lib.run` label).
    pub(crate) run_id: String,
    /// Every step, in plan order.
    pub steps: Vec<StepRecord>,
    /// Images built.
    pub images: Vec<ImageRecord>,
    /// Artifacts produced.
    pub artifacts: Vec<ArtifactRecord>,
}

impl Report {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The summary table printed at the end of a run (the report's `Display`).
    pub(crate) fn table(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:<width$}  {:<11}  {:>8}\n", "step", "status", "time");
        for step in &self.steps {
            let _ = write!(
                out,
                "{:<width$}  {:<11}  {:>7.1}s",
                step.name,
                step.status.as_str(),
                step.seconds
            );
            if let Some(remark) = step.remark() {
                let _ = write!(out, "  {remark}");
            }
            out.push('\n');
        }
        let _ = write!(
            out,
            "pipeline `{}` {} in {:.1}s",
            self.pipeline,
            if self.ok { "succeeded" } else { "FAILED" },
            self.seconds
        );
        out
    }

    /// The summary as Markdown (for `$GITHUB_STEP_SUMMARY`).
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "### Pipeline `{}`: {}\n\n| step | status | time |\n|---|---|---:|\n",
            self.pipeline,
            if self.ok { "succeeded" } else { "failed" }
        );
        for step in &self.steps {
            let status = match step.remark() {
                Some(remark) => {
                    format!("{} ({})", step.status.as_str(), remark.replace('|', "\\|"))
                }
                None => step.status.as_str().to_string(),
            };
            let _ = writeln!(out, "| {} | {} | {:.1}s |", step.name, status, step.seconds);
        }
        for step in self.steps.iter().filter(|s| s.why.is_some()) {
            let _ = writeln!(
                out,
                "\n**{}**: {}",
                step.name,
                step.why.as_deref().unwrap_or_default()
            );
            let ran: Vec<&InstructionRecord> =
                step.instructions.iter().filter(|i| !i.cached).collect();
            if !ran.is_empty() {
                out.push_str(
                    "\n| stage | line | instruction | time | why |\n|---|---:|---|---:|---|\n",
                );
                for i in ran {
                    let _ = writeln!(
                        out,
                        "| {} | {} | `{}` | {} | {} |",
                        i.stage,
                        i.line.map(|l| l.to_string()).unwrap_or_default(),
                        i.instruction.replace('|', "\\|").replace('`', "'"),
                        i.seconds.map(|s| format!("{s:.1}s")).unwrap_or_default(),
                        i.cause.as_deref().unwrap_or_default().replace('|', "\\|")
                    );
                }
            }
        }
        for step in &self.steps {
            for w in &step.warnings {
                let place = match (&w.file, w.line) {
                    (Some(file), Some(line)) => format!(" ({file}:{line})"),
                    _ => String::new(),
                };
                let _ = write!(
                    out,
                    "\n> **warning** ({}){place}: {}",
                    step.name,
                    w.message.replace('\n', " ")
                );
                if let Some(fix) = &w.fix {
                    let _ = write!(out, " — fix: {}", fix.replace('\n', " "));
                }
                out.push('\n');
            }
        }
        if !self.images.is_empty() {
            out.push_str("\n| image | digest | size |\n|---|---|---:|\n");
            for image in &self.images {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    image.tags.join(", "),
                    image.digest.as_deref().unwrap_or("-"),
                    image
                        .size_bytes
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        out
    }

    /// Reads a report back.
    pub fn load(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Level;

    #[test]
    fn the_summary_tables_the_instructions_an_image_build_ran_and_why() {
        let row = |line, instruction: &str, cause: Option<&str>| InstructionRecord {
            stage: "builder".into(),
            line: Some(line),
            instruction: instruction.into(),
            cached: cause.is_none(),
            seconds: cause.map(|_| 1.25),
            cause: cause.map(str::to_string),
        };
        let report = Report {
            pipeline: "build".into(),
            ok: true,
            seconds: 3.0,
            run_id: "r".into(),
            steps: vec![StepRecord {
                seconds: 2.0,
                why: Some("1/2 instructions cached; first rebuilt: ...".into()),
                instructions: vec![
                    row(14, "WORKDIR /build", None),
                    row(23, "COPY src/ /opt/app/lib/", Some("src/a|b.py changed")),
                ],
                warnings: vec![WarningRecord {
                    kind: "copy-before-install".into(),
                    message: "`COPY . .` (Dockerfile:3) copies the whole build context".into(),
                    fix: Some("copy the dependency lists alone first".into()),
                    file: Some("Dockerfile".into()),
                    line: Some(3),
                }],
                ..StepRecord::new("image", StepStatus::Ok)
            }],
            images: Vec::new(),
            artifacts: Vec::new(),
        };
        let md = report.markdown();
        assert!(
            md.contains("**image**: 1/2 instructions cached; first rebuilt: ..."),
            "{md}"
        );
        assert!(
            md.contains(
                "| builder | 23 | `COPY src/ /opt/app/lib/` | 1.2s | src/a\\|b.py changed |"
            ),
            "{md}"
        );
        assert!(!md.contains("WORKDIR"), "cached rows are left out: {md}");
        assert!(
            md.contains(
                "> **warning** (image) (Dockerfile:3): `COPY . .` (Dockerfile:3) copies the \
                 whole build context — fix: copy the dependency lists alone first\n"
            ),
            "{md}"
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains(r#""warnings":[{"kind":"copy-before-install""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }

    #[test]
    fn a_finding_built_by_hand_annotates_its_file_and_only_then_its_line() {
        let finding = Finding::new(
            "ruff",
            "F401",
            Level::Error,
            "/ws/src/app.py",
            None,
            "`os` imported but unused",
        );
        assert_eq!(
            (finding.tool.as_str(), finding.rule.as_str(), finding.line),
            ("ruff", "F401", None)
        );
        assert_eq!(
            finding.annotation(Some(Path::new("/ws"))),
            "::error file=src/app.py,title=ruff F401::`os` imported but unused"
        );
        let at = Finding {
            line: Some(7),
            ..finding
        };
        assert_eq!(at.line, Some(7));
        assert_eq!(
            at.annotation(None),
            "::error file=/ws/src/app.py,line=7,title=ruff F401::`os` imported but unused"
        );
    }

    #[test]
    fn a_status_and_a_level_name_themselves_as_the_report_json_does() {
        for status in [
            StepStatus::Ok,
            StepStatus::Failed,
            StepStatus::Skipped,
            StepStatus::UpToDate,
            StepStatus::Unsupported,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                status.as_str(),
                "{status:?}"
            );
        }
        assert_eq!(StepStatus::UpToDate.as_str(), "up-to-date");
        assert_eq!(format!("{:<12}|", StepStatus::UpToDate), "up-to-date  |");
        let levels = [
            (Level::Style, "style"),
            (Level::Info, "info"),
            (Level::Warning, "warning"),
            (Level::Error, "error"),
        ];
        for (level, name) in levels {
            assert_eq!(level.as_str(), name);
            assert_eq!(serde_json::to_value(level).unwrap(), name);
        }
    }
}
