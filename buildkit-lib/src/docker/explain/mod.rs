//! Why was this rebuilt: every cache miss of an image build explained.
//!
//! How a rebuild is explained, and the cache checks before and after a build, are
//! documented for users on [`Explanation`].
//!
//! One job per file: `progress.rs` reads the stream and renders the plain progress,
//! `rows.rs` maps vertexes to Dockerfile instructions, `record.rs` collects and keeps the
//! inputs, `cause.rs` compares them, `text.rs` says it in words, `watch.rs` follows one
//! [`Build`](crate::docker::Build) through its run, `setup.rs` holds the set-up
//! checks, `export.rs` reads what became of the image and the cache exports, `bake.rs`
//! explains each target of a [`Bake`](crate::docker::Bake).

pub(crate) mod bake;
#[cfg(test)]
mod bake_tests;
mod cause;
pub(crate) mod export;
#[cfg(test)]
mod export_tests;
mod progress;
mod record;
mod rows;
pub(crate) mod setup;
#[cfg(test)]
mod setup_tests;
#[cfg(test)]
mod tests;
mod text;
mod watch;

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[cfg(feature = "bench-internals")]
pub mod bench;
pub use export::CacheExportFailed;
pub(crate) use export::CacheNotWritten;
pub(crate) use progress::Vertex;
pub(crate) use record::{BaseImage, CacheInputs};
pub(crate) use setup::{CacheCheck, CacheWarning};
#[cfg(test)]
use {export::ImageDelivered, progress::ProgressReader, record::RecordedInstruction};

pub(crate) use watch::Watch;

/// One Dockerfile instruction BuildKit ran or took from its cache, in one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstructionRow {
    /// The stage's name (`builder`), or `stage-N` for an unnamed stage, as BuildKit
    /// names it.
    pub stage: String,
    /// The platform, in a multi-platform build or a [`FanOut`](crate::docker::FanOut)
    /// (`linux/arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Its position in the stage, from 1, as BuildKit counts (`[builder 5/6]`).
    pub(crate) step: usize,
    /// How many steps BuildKit counts in the stage.
    pub(crate) steps: usize,
    /// The 1-based line of the instruction in the Dockerfile, when it could be matched.
    pub line: Option<usize>,
    /// The instruction as the Dockerfile has it (its first line for a here-document), or
    /// as BuildKit named it when it could not be matched.
    pub instruction: String,
    /// What BuildKit did with it.
    pub(crate) outcome: Outcome,
    /// Seconds it took, when it completed.
    pub seconds: Option<f64>,
    /// Why it was run instead of taken from the cache (`None` when cached or not reached).
    pub cause: Option<Cause>,
}

impl InstructionRow {
    /// True when BuildKit took it from its cache.
    pub fn cached(&self) -> bool {
        self.outcome == Outcome::Cached
    }

    /// True when BuildKit ran it (successfully or not).
    pub(crate) fn rebuilt(&self) -> bool {
        matches!(self.outcome, Outcome::Built | Outcome::Failed { .. })
    }
}

/// What BuildKit did with an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub(crate) enum Outcome {
    /// Taken from the cache.
    Cached,
    /// Run, and it succeeded.
    Built,
    /// Run, and it failed.
    Failed {
        /// BuildKit's error.
        error: String,
    },
    /// Never started: the build stopped before it.
    NotReached,
}

/// Why an instruction was run instead of taken from the cache, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// The build was asked not to use the cache (`--no-cache`).
    NoCache,
    /// Files it copies from the build context (or a named context) changed, appeared or
    /// went away since the previous build.
    FilesChanged {
        /// Their paths, relative to the context, sorted.
        files: Vec<String>,
    },
    /// Build args it sees changed value (names only: a value is never shown).
    BuildArgChanged {
        /// The args' names.
        names: Vec<String>,
    },
    /// The stage's base image resolves to another digest than in the previous build.
    BaseImageMoved {
        /// The base image as resolved (`docker.io/library/python:3.12-slim`).
        image: String,
        /// Its digest in the previous build.
        old: String,
        /// Its digest now.
        new: String,
    },
    /// The instruction's own text changed, or one before it in the stage that runs
    /// nothing itself but changes what follows (`ENV`, `ARG`, `USER`, `SHELL`).
    InstructionChanged {
        /// The line of the changed instruction now (`None` when it was removed).
        line: Option<usize>,
        /// Its text in the previous build (`None` when it is new).
        old: Option<String>,
        /// Its text now (`None` when it was removed).
        new: Option<String>,
    },
    /// An earlier instruction of the same stage was rebuilt.
    EarlierRebuilt {
        /// That instruction.
        instruction: String,
        /// Its line.
        line: Option<usize>,
    },
    /// A stage it builds on or copies from was rebuilt.
    StageRebuilt {
        /// That stage.
        stage: String,
        /// The instruction of that stage that was rebuilt.
        instruction: String,
        /// Its line.
        line: Option<usize>,
    },
    /// A cache source the build was given could not be imported.
    CacheNotImported {
        /// The source, as given to `--cache-from`.
        source: String,
        /// The engine's error.
        error: String,
    },
    /// There is no record of a previous build here to compare with: the first build on
    /// this machine (or since the record was removed).
    NoPreviousRecord,
    /// The build ran on another builder than the previous one (its caches differ).
    BuilderChanged {
        /// The previous builder.
        old: String,
        /// This one.
        new: String,
    },
    /// The build targets other platforms than the previous one.
    PlatformChanged {
        /// The previous platforms.
        old: String,
        /// These.
        new: String,
    },
    /// Every recorded input is unchanged, and BuildKit rebuilt it anyway (its cache may
    /// have been pruned or never kept it).
    Unknown,
    /// A `RUN` with cache mounts (`--mount=type=cache`) was rebuilt although every
    /// recorded input is unchanged: why is unknown, as for [`Cause::Unknown`], and what is
    /// known is that its cache mounts are not why.
    ///
    /// BuildKit keys a `RUN`'s cache on the instruction and on the content of its inputs,
    /// never on what a cache mount holds: its exec operation's cache map
    /// (`solver/llbsolver/ops/exec.go`, `ExecOp::CacheMap`) takes a content digest only of
    /// the mounts that have an input (`getMountDeps` skips a mount whose input is empty,
    /// as a cache mount's is unless it is seeded `from=` a stage, which is then an input
    /// like any other), and since BuildKit 0.13 (`checkShouldClearCacheOpts`) it leaves a
    /// cache mount's `id` and `sharing` out of the key too, unless they are the defaults.
    /// A cache mount that was emptied (pruned with `docker buildx prune --filter
    /// type=exec.cachemount`, on another builder, on a fresh CI runner) therefore rebuilds
    /// nothing, and a kept one keeps nothing cached: this `RUN` ran because BuildKit had no
    /// cached result of it under its key, whatever its mounts held. Nothing in BuildKit's
    /// progress says whether a mount was empty when the `RUN` ran, so that is not said
    /// either.
    UnknownWithCacheMounts {
        /// Its cache mounts, by the id BuildKit keeps them under (`id=`, else the target
        /// path), as written in the Dockerfile; not one seeded `from=` a stage or image
        /// (an input of the `RUN`, content and all).
        mounts: Vec<String>,
    },
}

/// What became of one `--cache-from` source ([`Explanation::cache_imports`]): imported,
/// not imported ([`CacheImport::error`] says why), or not reported by the engine (a GitHub
/// Actions cache without its runtime variables is skipped silently): neither
/// [`imported`](CacheImport::imported) nor with an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CacheImport {
    /// The source, as given to `--cache-from` (`type=registry,ref=...`).
    pub(crate) source: String,
    /// Whether it was imported.
    pub(crate) status: ImportStatus,
}

impl CacheImport {
    /// The source, as given to `--cache-from` (`type=registry,ref=...`), secrets masked.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether BuildKit imported its cache manifest.
    pub fn imported(&self) -> bool {
        self.status == ImportStatus::Imported
    }

    /// Why it was not imported: BuildKit's or buildx's error; `None` when it was imported,
    /// or when the engine said nothing about it.
    pub fn error(&self) -> Option<&str> {
        match &self.status {
            ImportStatus::Failed { error } => Some(error),
            _ => None,
        }
    }
}

/// Whether a cache source was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum ImportStatus {
    /// BuildKit imported its cache manifest.
    Imported,
    /// BuildKit or buildx could not import it.
    Failed {
        /// Their error.
        error: String,
    },
    /// The progress said nothing about it (a GitHub Actions cache without its runtime
    /// variables is skipped silently).
    NotReported,
}

/// The explanation of one image build: each instruction, cached or run, and why.
///
/// # How a rebuild is explained
///
/// BuildKit says which instructions it took from its cache (`--progress=rawjson`), but not
/// why it ran the others. The library reads that progress, keeps the
/// inputs that decide the cache beside the pipeline's report (the parsed
/// Dockerfile, build args, secret identities, base image digests, named contexts, the
/// per-file hashes of what `COPY`/`ADD` take, platform, builder, cache imports), and
/// compares them with the previous build's to name, for each rebuilt instruction, the most
/// specific cause it can prove ([`Cause`]), never a guess.
///
/// Before the build, the cache set-up checks say what in the Dockerfile and the cache
/// settings makes the cache miss more than it must, each a [`Finding`](crate::Finding)
/// with its fix ([`BuildResult::cache_warnings`](crate::docker::BuildResult::cache_warnings),
/// [`Build::skip_cache_check`](crate::docker::Build::skip_cache_check)). After it, a build
/// whose image was made while its cache export failed is told apart from a failed build
/// (a `cache/not-written` finding, or with the cache required a [`CacheExportFailed`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Explanation {
    /// The Dockerfile's file name, as lines are cited (`Dockerfile.production`).
    pub(crate) dockerfile: String,
    /// Every instruction BuildKit reported, in Dockerfile order (stage by stage).
    pub(crate) rows: Vec<InstructionRow>,
    /// The base images, resolved.
    pub(crate) bases: Vec<BaseImage>,
    /// What became of each cache source.
    pub(crate) cache_imports: Vec<CacheImport>,
    /// The build secrets whose value changed since the previous build (ids only).
    /// BuildKit does not key its cache on secrets: a changed secret rebuilds nothing.
    pub(crate) secrets_changed: Vec<String>,
    /// Whether a previous build's record was there to compare with.
    pub(crate) previous_record: bool,
    /// Whether BuildKit's per-instruction progress was read (not with a progress mode
    /// other than the default).
    pub(crate) progress_read: bool,
}

impl Explanation {
    /// Every instruction BuildKit reported, in Dockerfile order (stage by stage).
    pub fn rows(&self) -> &[InstructionRow] {
        &self.rows
    }

    /// Each cache source the build was given (`--cache-from`, not `inline`), in order,
    /// with whether BuildKit imported it.
    pub fn cache_imports(&self) -> &[CacheImport] {
        &self.cache_imports
    }

    /// For each stage (and platform), its first instruction BuildKit ran, in Dockerfile
    /// order.
    pub(crate) fn first_rebuilt(&self) -> Vec<&InstructionRow> {
        let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
        let mut out = Vec::new();
        for row in self.rows.iter().filter(|r| r.rebuilt()) {
            let key = (row.stage.as_str(), row.platform.as_deref());
            if !seen.contains(&key) {
                seen.push(key);
                out.push(row);
            }
        }
        out
    }

    /// Reads the explanation a build keeps in its explanation record
    /// ([`Build::explain_record`](crate::docker::Build::explain_record), a bake target's
    /// in [`Bake::explain_records`](crate::docker::Bake::explain_records), a pipeline's
    /// image build's under `target/buildkit/<pipeline>/why/`): the explanation of the last
    /// build that changed it (a build with the same explanation and inputs leaves the file
    /// as it is, so its modification time is when that build ended). `Ok(None)` when there
    /// is no record; an error when it is there but cannot be read.
    pub fn load(path: &Path) -> anyhow::Result<Option<Explanation>> {
        Ok(ExplainRecord::load(path)?.map(|record| record.explanation))
    }

    /// How many instructions were taken from the cache, out of how many BuildKit reported.
    pub fn cached_count(&self) -> (usize, usize) {
        (
            self.rows.iter().filter(|r| r.cached()).count(),
            self.rows.len(),
        )
    }
}

/// One explanation of the builds of several platforms (a fan-out's, one build per
/// platform), in the order given: each row names its platform, as in a multi-platform
/// build; the base images and cache sources are listed once each, the secrets that
/// changed in any; a previous record and the progress count only when every platform had
/// them. `None` when no platform was explained.
pub(crate) fn merge_platforms(parts: Vec<(String, Explanation)>) -> Option<Explanation> {
    fn with_platform(platform: &str, mut rows: Vec<InstructionRow>) -> Vec<InstructionRow> {
        for row in &mut rows {
            row.platform.get_or_insert_with(|| platform.to_string());
        }
        rows
    }
    let mut parts = parts.into_iter();
    let (platform, mut merged) = parts.next()?;
    merged.rows = with_platform(&platform, std::mem::take(&mut merged.rows));
    for (platform, e) in parts {
        merged.rows.extend(with_platform(&platform, e.rows));
        for base in e.bases {
            if !merged.bases.contains(&base) {
                merged.bases.push(base);
            }
        }
        for import in e.cache_imports {
            if !merged.cache_imports.contains(&import) {
                merged.cache_imports.push(import);
            }
        }
        for id in e.secrets_changed {
            if !merged.secrets_changed.contains(&id) {
                merged.secrets_changed.push(id);
            }
        }
        merged.previous_record &= e.previous_record;
        merged.progress_read &= e.progress_read;
    }
    Some(merged)
}

/// What a build leaves in `target/` for the next one and for `cargo xtask why`: the inputs
/// that decided its cache, and its explanation (read with [`Explanation::load`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExplainRecord {
    /// When the build that wrote it ended (RFC 3339). A later build with the same
    /// explanation and inputs leaves the record as it is.
    pub(crate) written: String,
    /// The one-line summary, as the step log has it.
    pub(crate) summary: String,
    /// The explanation.
    pub(crate) explanation: Explanation,
    /// The inputs the next build compares with.
    pub(crate) inputs: CacheInputs,
}

impl ExplainRecord {
    /// Reads a record written by a build. `Ok(None)` when there is none; an error when it
    /// is there but cannot be read.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Option<ExplainRecord>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        ExplainRecord::from_json(&text)
            .map(Some)
            .with_context(|| format!("{} is not a build record of this version", path.display()))
    }

    /// The record as JSON text. Through [`serde_json::Value`], whose serializer is compiled
    /// in `serde_json` itself: a record holds a hash per context file (590 KB for the
    /// mediaserver's 5,214), and in a debug build of an xtask that gives `serde_json` an
    /// `opt-level` (as this workspace does) this costs a third of a direct `to_string`,
    /// whose serializer is compiled, unoptimized, with the library.
    pub(crate) fn to_json(&self) -> anyhow::Result<String> {
        let value = serde_json::to_value(self).context("cannot encode the build record")?;
        Ok(value.to_string())
    }

    /// A record from its JSON text ([`ExplainRecord::to_json`]).
    pub(crate) fn from_json(text: &str) -> serde_json::Result<ExplainRecord> {
        serde_json::from_str(text)
    }

    /// Writes it at `path` through the runner ([`Runner::write`](crate::Runner::write):
    /// atomically, a whole record or none; recorded in the plan), every secret `runner`
    /// masks masked.
    pub(crate) fn save_redacted(&self, path: &Path, runner: &crate::Runner) -> anyhow::Result<()> {
        let json = runner.redact(&self.to_json()?);
        runner.write(path, json.as_bytes())
    }
}

/// Explains a build: maps the vertexes BuildKit reported to the Dockerfile instructions of
/// `current`, and names the cause of each rebuilt one by comparing `current` with the
/// `previous` build's inputs.
pub(crate) fn explain(
    previous: Option<&CacheInputs>,
    current: &CacheInputs,
    vertexes: &[Vertex],
) -> Explanation {
    let rows = rows::rows(current, vertexes);
    cause::explain(previous, current, vertexes, rows)
}
