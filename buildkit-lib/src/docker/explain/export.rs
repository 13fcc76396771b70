//! A build whose image was made while its cache export failed, told apart from a build
//! that failed.
//!
//! BuildKit exports the image first and the cache after it, and buildx exits 1 when the
//! cache export fails, although the image was built (and loaded or pushed): with
//! buildx 0.29.1 and 0.13.1 alike, a `--cache-to type=registry` whose registry does not
//! answer ends the `exporting cache to registry` vertex with the engine's error after
//! `exporting to image` completed; a local cache whose folder cannot be written is
//! written by buildx itself after the solve, and its error comes in buildx's last line
//! only. (A local cache folder that cannot even be created fails before the build starts:
//! nothing was built then.) With `ignore-error=true` the same error is in the vertex and
//! buildx exits 0. The progress is read as rawjson when the build explains itself, else
//! from the plain text the error kept.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::progress::ProgressReader;
use crate::cmd::Runner;
use crate::docker::build::{Build, BuildResult, Output};
use crate::docker::cache::{Cache, CacheKind};
use crate::docker::image::ImageFacts;
use crate::finding::{Finding, Level};

/// A cache destination (`--cache-to`) the build did not write. Users read it as a
/// [`Finding`] ([`CacheNotWritten::to_finding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheNotWritten {
    /// The destination: a registry cache's reference, a local cache's folder, or the
    /// `--cache-to` value of another backend.
    pub(crate) destination: String,
    /// The engine's (or buildx's) error.
    pub(crate) error: String,
}

/// The rule of the finding of a cache the build did not write.
pub(crate) const NOT_WRITTEN_RULE: &str = "cache/not-written";

impl CacheNotWritten {
    /// The destination not written as a [`Finding`]: rule `cache/not-written`, level
    /// warning, the destination as its file, and as message `cache not written to REF:
    /// <error>`.
    pub(crate) fn to_finding(&self) -> Finding {
        Finding::new(
            super::setup::CACHE_TOOL,
            NOT_WRITTEN_RULE,
            Level::Warning,
            &self.destination,
            None,
            self.to_string(),
        )
    }
}

impl fmt::Display for CacheNotWritten {
    /// `cache not written to REF: <error>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache not written to {}: {}",
            self.destination, self.error
        )
    }
}

/// What became of the image of a build whose cache export failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub(crate) enum ImageDelivered {
    /// Built, and in the engine's image store under its tag (checked: the tag names the
    /// image this build exported).
    Loaded,
    /// Built and pushed.
    Pushed,
    /// Built and exported where the output says (a folder, a tar file, an OCI layout),
    /// or left in the builder (no output asked).
    Built,
}

impl ImageDelivered {
    fn words(self) -> &'static str {
        match self {
            ImageDelivered::Loaded => "built and loaded",
            ImageDelivered::Pushed => "built and pushed",
            ImageDelivered::Built => "built",
        }
    }
}

/// A build that made its image and failed to write its cache, when the cache was required
/// ([`Build::cache_required`]). Its message: `image app:1 built and loaded; cache not
/// written to REF: <engine error>`. The build's result (explanation included) is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheExportFailed {
    /// The image (its first tag, or the context).
    pub(crate) image: String,
    /// What became of it.
    pub(crate) delivered: ImageDelivered,
    /// The destinations not written.
    pub(crate) caches: Vec<CacheNotWritten>,
    /// The build's result, as a build with an optional cache would have returned it.
    pub result: Box<BuildResult>,
}

impl fmt::Display for CacheExportFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (the cache is required: `cache_required(true)`)",
            exported_text(&self.image, self.delivered, &self.caches)
        )
    }
}

impl std::error::Error for CacheExportFailed {}

/// `image X built and loaded; cache not written to A: e; cache not written to B: e`.
pub(crate) fn exported_text(
    image: &str,
    delivered: ImageDelivered,
    caches: &[CacheNotWritten],
) -> String {
    let mut out = format!("image {image} {}", delivered.words());
    for cache in caches {
        out.push_str(&format!("; {cache}"));
    }
    out
}

/// What the build's progress says about its exports.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Exports {
    /// An `exporting to ...` vertex (the image) completed without error.
    pub(crate) image_done: bool,
    /// The digests the image export named, each with what it is (`manifest list`,
    /// `manifest`, `config`, `image`), in order.
    pub(crate) image_digests: Vec<(&'static str, String)>,
    /// A vertex other than a cache export failed.
    pub(crate) other_failed: bool,
    /// Each failed `exporting cache to ...` vertex: its name and error.
    pub(crate) cache_errors: Vec<(String, String)>,
    /// buildx's last `ERROR:` line, its prefixes removed.
    pub(crate) final_error: Option<String>,
}

/// A vertex name without bake's `[target] ` prefix.
fn plain_name(name: &str) -> &str {
    match name.strip_prefix('[') {
        Some(rest) => match rest.split_once("] ") {
            Some((prefix, tail)) if !prefix.contains(' ') && tail.starts_with("exporting") => tail,
            _ => name,
        },
        None => name,
    }
}

/// The digest a status line of an image export names, if it names one, with what it is.
fn export_digest(status: &str) -> Option<(&'static str, String)> {
    for (prefix, what) in [
        ("exporting manifest list ", "manifest list"),
        ("exporting manifest ", "manifest"),
        ("exporting config ", "config"),
        ("writing image ", "image"),
    ] {
        if let Some(rest) = status.strip_prefix(prefix) {
            let digest = rest.split_whitespace().next()?;
            if digest.starts_with("sha256:") {
                return Some((what, digest.to_string()));
            }
        }
    }
    None
}

/// buildx's error line without `ERROR: failed to build: failed to solve: `.
fn final_error(lines: &[String]) -> Option<String> {
    let line = lines.iter().rev().find(|l| l.starts_with("ERROR: "))?;
    let mut rest = line.trim_start_matches("ERROR: ");
    for prefix in ["failed to build: ", "failed to solve: "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    Some(rest.trim().to_string())
}

impl Exports {
    /// From the rawjson progress.
    pub(crate) fn from_progress(reader: &ProgressReader) -> Exports {
        let mut out = Exports {
            final_error: final_error(reader.text_lines()),
            ..Exports::default()
        };
        for v in reader.vertexes() {
            let name = plain_name(&v.name);
            if name.starts_with("exporting cache to ") {
                if let Some(error) = &v.error {
                    out.cache_errors.push((name.to_string(), error.clone()));
                }
            } else if name.starts_with("exporting to ") {
                if v.error.is_some() {
                    out.other_failed = true;
                } else if v.completed.is_some() {
                    out.image_done = true;
                    out.image_digests.extend(
                        reader
                            .statuses(&v.digest)
                            .iter()
                            .filter_map(|s| export_digest(s)),
                    );
                }
            } else if v.error.is_some() {
                out.other_failed = true;
            }
        }
        out
    }

    /// From the plain progress text (`#6 exporting to image` ... `#6 DONE 0.1s`), as far
    /// as the lines go.
    pub(crate) fn from_plain(lines: &[String]) -> Exports {
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut out = Exports {
            final_error: final_error(lines),
            ..Exports::default()
        };
        let mut image: Vec<&str> = Vec::new();
        for line in lines {
            let Some(rest) = line.strip_prefix('#') else {
                continue;
            };
            let Some((number, text)) = rest.split_once(' ') else {
                continue;
            };
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Some(&name) = names.get(number) else {
                names.insert(number, plain_name(text));
                continue;
            };
            if let Some(error) = text.strip_prefix("ERROR: ") {
                if name.starts_with("exporting cache to ") {
                    out.cache_errors.push((name.to_string(), error.to_string()));
                } else {
                    out.other_failed = true;
                }
            } else if name.starts_with("exporting to ") {
                if text.starts_with("DONE") {
                    image.push(number);
                    out.image_done = true;
                } else if let Some(status) = text.strip_suffix(" done") {
                    out.image_digests.extend(export_digest(status));
                }
            }
        }
        out
    }

    /// The cache destinations of `build` these exports did not write.
    pub(crate) fn not_written(&self, build: &Build) -> Vec<CacheNotWritten> {
        let mut out: Vec<CacheNotWritten> = Vec::new();
        for (vertex, error) in &self.cache_errors {
            let kind = if vertex.contains("registry") {
                Some(CacheKind::Registry)
            } else if vertex.contains("client directory") || vertex.contains("local") {
                Some(CacheKind::Local)
            } else if vertex.to_ascii_lowercase().contains("github actions") {
                Some(CacheKind::Gha)
            } else {
                None
            };
            let of_kind: Vec<&Cache> = build
                .cache_to
                .iter()
                .filter(|c| Some(c.kind()) == kind)
                .collect();
            let named: Vec<&Cache> = of_kind
                .iter()
                .copied()
                .filter(|c| {
                    let d = destination(c);
                    let host = d.split('/').next().unwrap_or(&d);
                    error.contains(&d) || error.contains(host)
                })
                .collect();
            let chosen = if named.is_empty() { of_kind } else { named };
            let destination = if chosen.is_empty() {
                vertex.trim_start_matches("exporting cache to ").to_string()
            } else {
                chosen
                    .iter()
                    .map(|c| destination(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(CacheNotWritten {
                destination,
                error: error.clone(),
            });
        }
        if out.is_empty() {
            // A local cache buildx writes itself: its error is buildx's last line.
            if let Some(error) = &self.final_error {
                for cache in build
                    .cache_to
                    .iter()
                    .filter(|c| c.kind() == CacheKind::Local)
                {
                    let d = destination(cache);
                    if error.contains(d.trim_end_matches('/')) {
                        out.push(CacheNotWritten {
                            destination: d,
                            error: error.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Whether the image was made and only cache exports failed.
    pub(crate) fn image_made(&self) -> bool {
        self.image_done && !self.other_failed
    }

    /// The image's digest as buildx's metadata gives it (`containerimage.digest`): the
    /// manifest list's, else the manifest's.
    pub(crate) fn image_digest(&self) -> Option<String> {
        let of = |what: &str| {
            self.image_digests
                .iter()
                .rev()
                .find(|(w, _)| *w == what)
                .map(|(_, d)| d.clone())
        };
        of("manifest list").or_else(|| of("manifest"))
    }
}

/// A cache's destination in words: a registry cache's reference, a local cache's folder,
/// the `--cache-to` value otherwise.
fn destination(cache: &Cache) -> String {
    match cache.kind() {
        CacheKind::Registry => cache.reference().unwrap_or_default().to_string(),
        CacheKind::Local => cache
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        _ => cache.to_to_arg(),
    }
}

/// What became of the image, given the exports and a look at the image store for a
/// loaded build (`loaded_id`: the id the engine has under the build's first tag, when it
/// was asked). `None` when a build that should have loaded its image did not.
pub(crate) fn delivered(
    build: &Build,
    exports: &Exports,
    loaded_id: Option<&str>,
) -> Option<ImageDelivered> {
    let matches = loaded_id.is_some_and(|id| exports.image_digests.iter().any(|(_, d)| d == id));
    match &build.output {
        Output::Load => matches.then_some(ImageDelivered::Loaded),
        Output::Default if matches => Some(ImageDelivered::Loaded),
        Output::Push | Output::PushByDigest(_) => Some(ImageDelivered::Pushed),
        _ => Some(ImageDelivered::Built),
    }
}

/// A build whose image was made while a cache export failed: what the result says.
#[derive(Debug)]
pub(crate) struct MadeAnyway {
    pub(crate) delivered: ImageDelivered,
    pub(crate) caches: Vec<CacheNotWritten>,
    pub(crate) digest: Option<String>,
    pub(crate) facts: Option<ImageFacts>,
}

/// After a build that failed: `Some` when its image was made (and, for a load, is in the
/// image store under its tag) and only cache exports failed. `reader` is the build's
/// rawjson progress when it was read, `tail` the last lines of its output. Costs one image
/// inspect for a loaded build, on this path only.
pub(crate) fn made_anyway(
    build: &Build,
    runner: &Runner,
    reader: Option<&ProgressReader>,
    tail: &[String],
) -> Option<MadeAnyway> {
    if build.cache_to.is_empty() {
        return None;
    }
    let exports = match reader {
        Some(reader) => Exports::from_progress(reader),
        None => Exports::from_plain(tail),
    };
    if !exports.image_made() {
        return None;
    }
    let caches = redacted(runner, exports.not_written(build));
    if caches.is_empty() {
        return None;
    }
    let facts = match (&build.output, build.tags.first()) {
        (Output::Load | Output::Default, Some(tag)) => ImageFacts::inspect(runner, tag).ok(),
        _ => None,
    };
    let delivered = delivered(build, &exports, facts.as_ref().map(|f| f.id.as_str()))?;
    Some(MadeAnyway {
        delivered,
        caches,
        digest: exports.image_digest(),
        facts: facts.filter(|_| delivered == ImageDelivered::Loaded),
    })
}

/// After a build that succeeded: the cache destinations it did not write (a cache with
/// `ignore-error=true` lets the build succeed without them).
pub(crate) fn not_written_after_success(
    build: &Build,
    runner: &Runner,
    reader: Option<&ProgressReader>,
    tail: &[String],
) -> Vec<CacheNotWritten> {
    if build.cache_to.is_empty() {
        return Vec::new();
    }
    let exports = match reader {
        Some(reader) => Exports::from_progress(reader),
        None => Exports::from_plain(tail),
    };
    redacted(runner, exports.not_written(build))
}

/// The progress is read before the runner masks it: every secret it masks masked.
fn redacted(runner: &Runner, caches: Vec<CacheNotWritten>) -> Vec<CacheNotWritten> {
    caches
        .into_iter()
        .map(|c| CacheNotWritten {
            destination: runner.redact(&c.destination),
            error: runner.redact(&c.error),
        })
        .collect()
}

impl MadeAnyway {
    /// Completes `result` (its digest, id, size, platform and the caches not written),
    /// says in the step log what was made and what was not, and returns the result, or,
    /// when the cache is required, the [`CacheExportFailed`] error carrying it.
    pub(crate) fn finish(
        self,
        build: &Build,
        runner: &Runner,
        mut result: BuildResult,
    ) -> anyhow::Result<BuildResult> {
        result.digest = self.digest.clone();
        if let Some(facts) = &self.facts {
            result.image_id = Some(facts.id.clone());
            if build.read_size {
                result.size_bytes = Some(facts.size_bytes);
            }
            if result.platforms.is_empty() {
                result.platforms.push(facts.platform());
            }
        }
        result.cache_not_written = self.caches.clone();
        result.cache_warnings = build.cache_findings(&result.cache_checks, &self.caches);
        let image = build
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| build.context.display().to_string());
        if build.cache_required {
            return Err(anyhow::Error::new(CacheExportFailed {
                image,
                delivered: self.delivered,
                caches: self.caches,
                result: Box::new(result),
            }));
        }
        runner.note(&format!(
            "warning: {} (the cache is optional: `cache_required(true)` fails the build \
             instead)",
            exported_text(&image, self.delivered, &self.caches)
        ));
        Ok(result)
    }
}
