//! Running a build: the engine checks it needs, the secrets it masks, the caches it
//! resolves, and the result read from buildx's metadata file and the image store.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::record::{self, BuildFailed, BuildRecord};
use super::{Build, BuildResult, Output, Provenance};
use crate::cmd::{Cmd, Runner};
use crate::docker::cache::{self, CacheKind, GhaService};
use crate::docker::explain::export;
use crate::docker::image::ImageFacts;
use crate::plan::Step;

/// What a dry run reads in place of buildx's metadata file: the fields the library reads,
/// with placeholders.
const METADATA_DRY_ANSWER: &str = r#"{"containerimage.digest":"sha256:<digest>","containerimage.config.digest":"sha256:<image-id>","buildx.build.ref":"<builder>/<node>/<build-ref>"}"#;

impl Step for Build {
    type Output = BuildResult;

    /// Checks, runs the build and reads its result. A multi-platform `--load` is refused
    /// when the engine has no containerd image store (`docker info`). Without a
    /// [`Build::metadata_file`], buildx writes its metadata to a file in the temporary
    /// directory named after the run and the command, removed once read. Costs at most
    /// one `docker image inspect` (when loading) and one `docker info` (multi-platform
    /// load) besides the build and BuildKit's record of it.
    fn run(&self, runner: &Runner) -> anyhow::Result<BuildResult> {
        self.run_in(runner, None)
    }
}

impl Build {
    /// [`Build::run`](Step::run) in a pipeline, whose file-hash cache already holds this run's
    /// listing of the context (for the explanation).
    pub(crate) fn run_in(
        &self,
        runner: &Runner,
        hashes: Option<std::sync::Arc<crate::pipeline::filehash::FileHashes>>,
    ) -> anyhow::Result<BuildResult> {
        let Some(retry) = &self.retry_push else {
            return self.run_once(runner, hashes);
        };
        anyhow::ensure!(
            self.output == Output::Push,
            "`retry_push` needs `output(Output::Push)`: only pushes are retried"
        );
        let what = format!(
            "push of {}",
            self.tags.first().map(String::as_str).unwrap_or("the image")
        );
        retry.run_classified(
            runner,
            &what,
            crate::docker::registry::transient_push_of_build,
            || self.run_once(runner, hashes.clone()),
        )
    }

    /// One attempt of [`Build::run_in`].
    fn run_once(
        &self,
        runner: &Runner,
        hashes: Option<std::sync::Arc<crate::pipeline::filehash::FileHashes>>,
    ) -> anyhow::Result<BuildResult> {
        self.check_for(runner)?;
        if self.output == Output::Load && self.platforms.len() > 1 {
            let host = engine_host(runner);
            if !containerd_image_store(runner)? {
                bail!(
                    "a multi-platform build ({}) cannot be loaded: the engine at {host} \
                     stores images without the containerd image store; enable it \
                     (`\"features\": {{\"containerd-snapshotter\": true}}` in daemon.json), \
                     or push instead (`Output::Push`), or build one platform at a time",
                    self.platforms.join(", ")
                );
            }
        }
        self.register_secret_values(runner);
        if self.provenance == Provenance::Max && !self.build_args.is_empty() {
            runner.note(&format!(
                "warning: `mode=max` provenance records the values of the build args {} in \
                 the image's attestation, readable by anyone who can pull the image",
                self.build_args
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }

        let cache_warnings = self.note_cache_setup(runner);

        let mut build = self.clone();
        build.resolve_caches(runner)?;
        let (metadata_path, ours) =
            metadata_file(self.metadata_file.as_deref(), &build.command(), runner);
        build.metadata_file = Some(metadata_path.clone());
        let cmd = build.command();
        let what = self.what();
        let started = std::time::SystemTime::now();
        let mut why = crate::docker::explain::Watch::start(self, runner, hashes);
        let ran = runner.run_filtered(&cmd, why.as_mut().map(|w| w.filter()));
        if let Err(e) = &ran {
            // The image made, only the cache export failed: say that, not "cannot build".
            let reader = why.as_ref().map(|w| w.reader());
            if let Some(made) = export::made_anyway(self, runner, reader, &e.tail) {
                let result = BuildResult {
                    tags: self.tags.clone(),
                    platforms: self.platforms.clone(),
                    command: cmd.to_string(),
                    metadata: serde_json::Value::Object(Default::default()),
                    cache_checks: cache_warnings,
                    explanation: why.and_then(|w| w.finish(runner)),
                    ..BuildResult::default()
                };
                return made.finish(self, runner, result);
            }
        }
        let ran = ran.map_err(|mut e| {
            // A builder's daemon that went away mid-build reads "Canceled: context
            // canceled" (BuildKit 0.13), as if the user had cancelled, or "error
            // reading from server: EOF" (0.25, which stops gracefully), as if the
            // engine had gone: when the build ran on a builder of its own, ask it.
            let lost = matches!(e.failure, crate::cmd::Failure::EngineLost { .. });
            let gone = match (&self.builder, &e.failure) {
                (
                    Some(builder),
                    crate::cmd::Failure::Exit(_) | crate::cmd::Failure::EngineLost { .. },
                ) if lost
                    || e.tail.iter().any(|l| {
                        l.contains("context canceled") || l.contains("context deadline exceeded")
                    }) =>
                {
                    crate::docker::builder::connection_error(runner, builder).map(|why| {
                        match crate::docker::builder::explain(&why, None, &Default::default()) {
                            Some(explained) if !why.contains("connection refused") => {
                                format!("; builder {builder}: {explained} ({why})")
                            }
                            _ => format!(
                                "; the BuildKit daemon of builder {builder} went away during \
                                 the build ({why}): restart it, or build on another builder"
                            ),
                        }
                    })
                }
                _ => None,
            };
            if lost && gone.is_some() {
                // The engine is there; the builder's daemon is not.
                e.failure = crate::cmd::Failure::Exit(1);
            }
            let scanner = self.sbom && e.tail.iter().any(|l| l.contains("buildkit-syft-scanner"));
            let message = if scanner {
                format!(
                    "cannot build {what}: the builder cannot pull BuildKit's SBOM \
                     scanner image (docker/buildkit-syft-scanner); push it to a registry the \
                     builder reaches and name it with `.attest(\"type=sbom,generator=IMAGE\")` \
                     instead of `.attest(\"type=sbom\")`"
                )
            } else {
                format!("cannot build {what}{}", gone.unwrap_or_default())
            };
            // Only a build that ran and failed has a record; BuildKit's own error is
            // worth the two history queries on a failure.
            let record = match e.failure {
                crate::cmd::Failure::Exit(_) => record::of_failure(runner, &build, started),
                _ => BuildRecord::without_history(
                    None,
                    false,
                    "the build did not run to a failure of its own".into(),
                ),
            };
            anyhow::Error::new(e).context(BuildFailed { message, record })
        })?;
        let mut result = BuildResult {
            tags: self.tags.clone(),
            platforms: self.platforms.clone(),
            command: cmd.to_string(),
            metadata: serde_json::Value::Object(Default::default()),
            ..BuildResult::default()
        };
        let metadata = read_metadata(runner, &metadata_path, METADATA_DRY_ANSWER, "build")?;
        if ours {
            runner.remove(&metadata_path)?;
        }
        let row: BuildMetadataRow = crate::rows::from_value(
            &metadata,
            &format!("build metadata {}", metadata_path.display()),
        )?;
        result.digest = row.digest;
        result.image_name = row
            .image_name
            .as_deref()
            .and_then(|n| n.split(',').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        result.record = if self.read_record {
            record::of_success(runner, row.build_ref.clone())
        } else {
            BuildRecord::without_history(
                row.build_ref.clone(),
                true,
                "not read (`Build::read_facts(false)`)".into(),
            )
        };
        result.metadata = metadata;
        // With the docker driver the config digest is the local image id.
        result.image_id = row.config_digest;
        if self.output == Output::Load && self.read_size {
            let image = self.tags.first().cloned().or_else(|| result.digest.clone());
            if let Some(image) = image {
                let facts = ImageFacts::inspect(runner, &image)?;
                result.image_id = Some(facts.id.clone());
                result.size_bytes = Some(facts.size_bytes);
                if result.platforms.is_empty() {
                    result.platforms.push(facts.platform());
                }
            }
        }
        let reader = why.as_ref().map(|w| w.reader());
        result.cache_not_written =
            export::not_written_after_success(self, runner, reader, &ran.tail);
        for cache in &result.cache_not_written {
            runner.note(&format!(
                "warning: {cache} (`ignore-error=true` let the build go on without it)"
            ));
        }
        result.cache_warnings = self.cache_findings(&cache_warnings, &result.cache_not_written);
        result.cache_checks = cache_warnings;
        result.explanation = why.and_then(|w| w.finish(runner));
        Ok(result)
    }

    /// What the build makes, as its error names it: `image app:dev` (its first tag), else
    /// ``target `artifact` of CONTEXT``, else `context CONTEXT`; a context path is never
    /// called an image.
    pub(crate) fn what(&self) -> String {
        match (self.tags.first(), &self.target) {
            (Some(tag), _) => format!("image {tag}"),
            (None, Some(target)) => {
                format!("target `{target}` of {}", self.context.display())
            }
            (None, None) => format!("context {}", self.context.display()),
        }
    }

    /// Writes the GitHub Actions cache service each `gha` cache uses (`version=1|2`, read
    /// from the runner's environment; a `type=gha` in `extra_args` is checked against it
    /// too, and refused when the runtime is missing), masks the runtime token, and refuses
    /// a v2 cache on a builder too old for it ([`cache::check_gha_v2`]).
    pub(super) fn resolve_caches(&mut self, runner: &Runner) -> anyhow::Result<()> {
        let probe = Cmd::new("docker");
        let env = |k: &str| runner.effective_env(&probe, k);
        let mut v2 = false;
        for cache in self.cache_from.iter_mut().chain(self.cache_to.iter_mut()) {
            if cache.kind() == CacheKind::Gha {
                *cache = cache.resolve(&env)?;
                v2 |= cache.get_gha_service() == GhaService::V2;
                cache::mask_gha_token(runner);
            }
        }
        // A raw `--cache-to type=gha` passed through is checked the same way: without the
        // runtime variables buildx drops it and exits 0 as if the cache had been written.
        let raw = cache::gha_in_args(&self.extra_args);
        if !raw.is_empty() {
            v2 |= cache::resolve_gha_entries(&raw, &env)?;
            cache::mask_gha_token(runner);
        }
        if v2 {
            cache::check_gha_v2(runner, self.builder.as_deref())?;
        }
        Ok(())
    }

    /// Registers secret values for redaction, so a tool echoing one cannot leak it into
    /// the terminal, the logs or an error: the build secrets', and each build arg's whose
    /// value looks like a secret (BuildKit's progress names a `RUN` with the build args it
    /// sees expanded: `[2/2] RUN test -n "<value>"`).
    fn register_secret_values(&self, runner: &Runner) {
        let probe = Cmd::new("docker");
        for secret in &self.secrets {
            let value = secret.read_value(|var| runner.effective_env(&probe, var));
            if let Some(value) = value {
                runner.mask_bytes(&value);
            }
        }
        for value in self.build_args.values() {
            if super::looks_like_secret_value(value).is_some() {
                runner.mask_bytes(value.trim().as_bytes());
            }
        }
    }
}

/// Where buildx writes a run's metadata: `given`, else (the `bool` is then true: the
/// caller removes it once read) `buildkit-lib-buildx-metadata-<run>-<hash>.json` in the
/// temporary directory, named after the runner's session (else this process) and the
/// command `step` runs, so that a plan shows the path its run uses.
pub(crate) fn metadata_file(
    given: Option<&Path>,
    step: &impl std::fmt::Display,
    runner: &Runner,
) -> (PathBuf, bool) {
    if let Some(path) = given {
        return (path.to_path_buf(), false);
    }
    let run = match runner.get_session() {
        Some(session) => session.run_id.clone(),
        None => format!("pid{}", std::process::id()),
    };
    let hash = crate::hash::sha256_hex(step.to_string().as_bytes());
    let name = format!("buildkit-lib-buildx-metadata-{run}-{}.json", &hash[..12]);
    (std::env::temp_dir().join(name), true)
}

/// Reads the metadata file buildx wrote at `path` (`what`: `build`, `bake`) as JSON. A dry
/// run reads `dry_answer`, and so does a run whose buildx wrote no file (a fake engine;
/// buildx writes one whenever it is asked to), said in a warning: the result then holds
/// the placeholders (`sha256:<digest>`), and what follows takes the path the plan shows.
pub(crate) fn read_metadata(
    runner: &Runner,
    path: &Path,
    dry_answer: &str,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let text = runner.read_output(path, dry_answer).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "buildx wrote no readable {what} metadata file {}: the build's result is unknown",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{what} metadata {} is not JSON", path.display()))
}

pub(crate) fn engine_host(runner: &Runner) -> String {
    runner
        .effective_env(&Cmd::new("docker"), "DOCKER_HOST")
        .unwrap_or_else(|| "the default socket".to_string())
}

/// `docker info --format '{{json .DriverStatus}}'`: how the engine stores images (a dry
/// run answers the containerd image store).
pub(super) fn image_store_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["info", "--format", "{{json .DriverStatus}}"])
        .read_only()
        .dry_answer(r#"[["driver-type","io.containerd.snapshotter.v1"],["<placeholder>","a dry run's answer"]]"#)
}

/// Whether the engine stores images with the containerd image store (needed to load
/// multi-platform images). Asked once per engine by a runner and its clones: `docker info`
/// (a placeholder answer, a dry run's, is never kept as the engine's).
pub fn containerd_image_store(runner: &Runner) -> anyhow::Result<bool> {
    let key = format!("containerd-image-store {}", engine_host(runner));
    if let Some(known) = runner.known_answer(&key) {
        return Ok(known);
    }
    let out = runner
        .capture(&image_store_cmd())
        .context("cannot ask the engine how it stores images")?;
    let status: Vec<Vec<String>> = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    let containerd = status.iter().any(|pair| {
        pair.first().map(String::as_str) == Some("driver-type")
            && pair
                .get(1)
                .is_some_and(|v| v.contains("containerd.snapshotter"))
    });
    if !out.stdout.contains("<placeholder>") {
        runner.keep_answer(&key, containerd);
    }
    Ok(containerd)
}

/// What the library reads of buildx's metadata file (`--metadata-file`; bake writes one
/// such object per target). The rest of it is free-form and kept as it is.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct BuildMetadataRow {
    /// The image's (or index's) digest, when an image was made.
    #[serde(rename = "containerimage.digest", default)]
    pub(crate) digest: Option<String>,
    /// The config digest: with the docker driver, the local image id.
    #[serde(rename = "containerimage.config.digest", default)]
    pub(crate) config_digest: Option<String>,
    /// The names given, comma-separated.
    #[serde(rename = "image.name", default)]
    pub(crate) image_name: Option<String>,
    /// BuildKit's record of the build, `builder/node/id`.
    #[serde(rename = "buildx.build.ref", default)]
    pub(crate) build_ref: Option<String>,
}
