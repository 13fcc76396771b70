//! The explanation in words: one summary line for the step log, and the full table
//! `cargo xtask why` prints.

use std::fmt;
use std::fmt::Write as _;

use super::{Cause, Explanation, ImportStatus, InstructionRow, Outcome};

/// How many changed files a cause names before it counts the rest.
const FILES_SHOWN: usize = 3;

/// A digest cut to its first 12 hex digits, as `docker images` shows ids.
fn short_digest(digest: &str) -> String {
    let (algo, hex) = digest.split_once(':').unwrap_or(("", digest));
    let hex = &hex[..hex.len().min(12)];
    if algo.is_empty() {
        hex.to_string()
    } else {
        format!("{algo}:{hex}")
    }
}

fn files_text(files: &[String], shown: usize) -> String {
    let names = files
        .iter()
        .take(shown)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = files.len().saturating_sub(shown);
    match more {
        0 => format!("{names} changed"),
        1 => format!("{names} changed (+1 more file)"),
        n => format!("{names} changed (+{n} more files)"),
    }
}

fn cited(instruction: &str, line: Option<usize>, dockerfile: &str) -> String {
    match line {
        Some(line) => format!("{instruction} ({dockerfile}:{line})"),
        None => instruction.to_string(),
    }
}

impl Cause {
    /// The cause in words, as the summary line has it (the first changed file only, short
    /// digests); `dockerfile` is the file name lines are cited in.
    pub(crate) fn short_text(&self, dockerfile: &str) -> String {
        match self {
            Cause::FilesChanged { files } => files_text(files, 1),
            Cause::BaseImageMoved { image, old, new } => format!(
                "base image {image} moved ({} → {})",
                short_digest(old),
                short_digest(new)
            ),
            Cause::CacheNotImported { source, .. } => {
                format!("cache source {source} was not imported")
            }
            other => other.text(dockerfile),
        }
    }

    /// The cause in words, in full; `dockerfile` is the file name lines are cited in.
    pub(crate) fn text(&self, dockerfile: &str) -> String {
        match self {
            Cause::NoCache => "the build was asked not to use the cache (--no-cache)".into(),
            Cause::FilesChanged { files } => files_text(files, FILES_SHOWN),
            Cause::BuildArgChanged { names } => match names.as_slice() {
                [one] => format!("build arg {one} changed"),
                many => format!("build args {} changed", many.join(", ")),
            },
            Cause::BaseImageMoved { image, old, new } => {
                format!("base image {image} moved: {old} → {new}")
            }
            Cause::InstructionChanged { line, old, new } => match (old, new) {
                (Some(old), Some(new)) => format!(
                    "the instruction at {dockerfile}:{} changed: `{old}` → `{new}`",
                    line.unwrap_or(0)
                ),
                (None, Some(new)) => format!(
                    "the instruction at {dockerfile}:{} is new: `{new}`",
                    line.unwrap_or(0)
                ),
                (Some(old), None) => format!("the instruction `{old}` before it was removed"),
                (None, None) => "the instructions before it changed".into(),
            },
            Cause::EarlierRebuilt { instruction, line } => format!(
                "an earlier instruction was rebuilt: {}",
                cited(instruction, *line, dockerfile)
            ),
            Cause::StageRebuilt {
                stage,
                instruction,
                line,
            } => format!(
                "stage {stage}, which it builds on, was rebuilt: {}",
                cited(instruction, *line, dockerfile)
            ),
            Cause::CacheNotImported { source, error } => {
                format!("cache source {source} was not imported: {error}")
            }
            Cause::NoPreviousRecord => "no previous record (first build here)".into(),
            Cause::BuilderChanged { old, new } => format!("the builder changed: {old} → {new}"),
            Cause::PlatformChanged { old, new } => {
                format!("the platform changed: {old} → {new}")
            }
            Cause::Unknown => {
                "unknown — BuildKit rebuilt it although its inputs are unchanged".into()
            }
            Cause::UnknownWithCacheMounts { mounts } => format!(
                "unknown — BuildKit rebuilt it although its inputs are unchanged; not its \
                 cache mount{} {}: BuildKit does not key a RUN's cache on what a cache mount \
                 holds",
                if mounts.len() == 1 { "" } else { "s" },
                mounts.join(", ")
            ),
        }
    }

    /// True for a cause that only repeats another row's (an earlier or upstream rebuild).
    pub(crate) fn is_consequence(&self) -> bool {
        matches!(
            self,
            Cause::EarlierRebuilt { .. } | Cause::StageRebuilt { .. }
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text("Dockerfile"))
    }
}

impl Explanation {
    /// The row the summary names: the first rebuilt instruction (stage by stage, in
    /// Dockerfile order) whose cause is its own rather than an earlier rebuild.
    pub(crate) fn root(&self) -> Option<&InstructionRow> {
        let first = self.first_rebuilt();
        first
            .iter()
            .find(|r| r.cause.as_ref().is_some_and(|c| !c.is_consequence()))
            .or(first.first())
            .copied()
    }

    /// One line: `14/17 instructions cached; first rebuilt: COPY src/ /app/src/
    /// (Dockerfile.production:23) because src/app.py changed (+1 more file)`.
    pub fn summary(&self) -> String {
        if !self.progress_read {
            return "no per-instruction progress was read (a progress mode other than the \
                    default was asked)"
                .into();
        }
        let (cached, total) = self.cached_count();
        let mut out = format!("{cached}/{total} instructions cached");
        match self.root() {
            None => out.push_str("; nothing rebuilt"),
            Some(row) => {
                let _ = write!(
                    out,
                    "; first rebuilt: {}",
                    cited(&row.instruction, row.line, &self.dockerfile)
                );
                if let Some(cause) = &row.cause {
                    let _ = write!(out, " because {}", cause.short_text(&self.dockerfile));
                }
            }
        }
        out
    }
}

/// The full explanation: the summary, every instruction with its outcome, time and cause,
/// the base images, the cache sources, and changed secrets (ids only).
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if !self.rows.is_empty() {
            let stage_width = self
                .rows
                .iter()
                .map(|r| r.stage.len() + r.platform.as_ref().map_or(0, |p| p.len() + 1))
                .max()
                .unwrap_or(5)
                .max(5);
            writeln!(f)?;
            writeln!(
                f,
                "{:<stage_width$}  {:>5}  {:<7}  {:>7}  instruction",
                "stage", "line", "result", "time"
            )?;
            for row in &self.rows {
                let stage = match &row.platform {
                    Some(p) => format!("{p} {}", row.stage),
                    None => row.stage.clone(),
                };
                let result = match &row.outcome {
                    Outcome::Cached => "cached",
                    Outcome::Built => "ran",
                    Outcome::Failed { .. } => "FAILED",
                    Outcome::NotReached => "-",
                };
                let time = row.seconds.map(|s| format!("{s:.1}s")).unwrap_or_default();
                let line = row.line.map(|l| l.to_string()).unwrap_or_default();
                writeln!(
                    f,
                    "{stage:<stage_width$}  {line:>5}  {result:<7}  {time:>7}  {}",
                    row.instruction
                )?;
                if let Some(cause) = &row.cause {
                    writeln!(
                        f,
                        "{:<stage_width$}  {:>5}  {:<7}  {:>7}    because {}",
                        "",
                        "",
                        "",
                        "",
                        cause.text(&self.dockerfile)
                    )?;
                }
                if let Outcome::Failed { error } = &row.outcome {
                    writeln!(f, "{:<w$}    error: {error}", "", w = stage_width + 26)?;
                }
            }
        }
        if !self.bases.is_empty() {
            writeln!(f)?;
            for base in &self.bases {
                writeln!(
                    f,
                    "base of {}: {}{}",
                    base.stage,
                    base.image,
                    base.digest
                        .as_ref()
                        .map(|d| format!("@{d}"))
                        .unwrap_or_default()
                )?;
            }
        }
        if !self.cache_imports.is_empty() {
            writeln!(f)?;
            for import in &self.cache_imports {
                let status = match &import.status {
                    ImportStatus::Imported => "imported".to_string(),
                    ImportStatus::Failed { error } => format!("NOT imported: {error}"),
                    ImportStatus::NotReported => "not reported by the engine".to_string(),
                };
                writeln!(f, "cache source {}: {status}", import.source)?;
            }
        }
        if !self.secrets_changed.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "secrets changed since the previous build: {} (BuildKit does not key its \
                 cache on secrets: nothing was rebuilt for them)",
                self.secrets_changed.join(", ")
            )?;
        }
        if !self.previous_record {
            writeln!(f)?;
            writeln!(
                f,
                "no previous build recorded here: the next build is compared with this one"
            )?;
        }
        Ok(())
    }
}
