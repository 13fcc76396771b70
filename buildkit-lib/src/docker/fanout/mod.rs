//! One multi-platform image built on several engines: each platform on its own engine or
//! builder, side by side, then merged into one index with `docker buildx imagetools
//! create`.
//!
//! This is the "native builders" pattern; how a run goes, step by step, and what a failed
//! platform leaves behind is documented for users on [`FanOut`].
//!
//! One job per file: this one holds the fan-out, its results and its run; `endpoint.rs`
//! reads where each platform builds, `probe.rs` asks each endpoint's builder how it
//! pushes.

mod endpoint;
mod probe;
#[cfg(test)]
mod tests;

use endpoint::check_platform;
pub(crate) use endpoint::Endpoint;
pub(crate) use endpoint::PlatformEndpoint;
use probe::probe;
pub(crate) use probe::BuilderProbe;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::build::{Build, BuildResult, Output};
use super::image::platforms_of_manifest;
use super::reference::{ImageRef, MAX_TAG_LEN};
use super::registry::{self, ImagetoolsCreate, Retry};
use crate::cmd::Runner;
use crate::hash::sha256_hex;
use crate::plan::Step;

/// A multi-platform image built one platform per engine, then merged. Make it with
/// [`FanOut::new`] and the setters, then [`FanOut::run`] it.
///
/// # How it runs
///
/// This is the "native builders" pattern: an arm64 machine builds arm64, an amd64 machine
/// builds amd64, instead of one machine emulating the other. A [`FanOut`] names, per
/// platform, where it builds (`PLATFORM=ENDPOINT`: a `DOCKER_HOST`, a docker context or a
/// buildx builder). [`FanOut::run`]:
///
/// 1. asks every endpoint's builder, side by side, whether it answers, which driver it
///    uses and which platforms it builds (`docker buildx inspect`; an engine on a unix
///    socket is pinged on the socket instead; a `remote` or `docker-container` builder is
///    read from what buildx stored for it and its daemon or engine is dialled, then asked
///    why through `docker buildx du` when it does not answer); any endpoint that does not
///    answer fails the run before anything is built (a daemon that answers but refuses
///    the TLS handshake fails its platform's build, with the reason);
/// 2. builds every platform on its endpoint, side by side;
/// 3. only when all platforms built, makes each one reachable by digest in the registry:
///    - builders with a driver other than `docker` (`docker-container`, `remote`,
///      `kubernetes`) push by digest during the build, with no tag at all;
///    - buildx 0.13's `docker` driver cannot push by digest, so the image is kept in that
///      engine's store under a per-platform tag (`<tag>-linux-arm64`, the usual per-arch
///      tag) and `docker push`ed from that engine once every platform has built;
/// 4. merges the digests with `docker buildx imagetools create --tag <tag> repo@sha256:..`
///    and reads the index back to check that every platform is in it.
///
/// The final tags are written only by the merge: when any platform fails, nothing is
/// merged and the tags keep whatever they pointed at before (a [`FanOutError`] lists each
/// platform's outcome).
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::Build;
/// use buildkit_lib::docker::FanOut;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("Dockerfile"), "FROM alpine\n")?;
/// let fanout = FanOut::new(
///     Build::new(dir.path()).tag("127.0.0.1:5000/app:1.0"),
///     ["linux/amd64=unix:///var/run/docker.sock", "linux/arm64=builder:arm"],
/// )?;
/// let plan = fanout.plan(&Runner::new())?.to_string();
/// assert!(plan.contains("probe engine ping GET /_ping on unix:///var/run/docker.sock"), "{plan}");
/// assert!(plan.contains("$ docker buildx imagetools create --tag 127.0.0.1:5000/app:1.0"), "{plan}");
/// # Ok::<(), anyhow::Error>(())
/// ```
///
/// With engines to build on:
///
/// ```no_run
/// use buildkit_lib::docker::FanOut;
/// use buildkit_lib::docker::Build;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// # fn main() -> anyhow::Result<()> {
/// let build = Build::new("fixtures/webapp").tag("registry.example.com/webapp:1.4.0");
/// let fan = FanOut::new(
///     build,
///     [
///         "linux/amd64=unix:///var/run/docker.sock",
///         "linux/arm64=context:arm-runner",
///     ],
/// )?;
/// let merged = fan.run(&Runner::new())?;
/// println!("{} {:?}", merged.digest.unwrap_or_default(), merged.platforms);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct FanOut {
    /// The build every platform runs: context, Dockerfile, target, args, labels,
    /// secrets, caches. Its `tags` are the merged image's tags (all in one registry
    /// repository's registry, the first one names the repository the platforms are
    /// pushed to); its `platforms`, `output` and `builder` are set per platform and must
    /// be left empty.
    pub(crate) build: Build,
    /// The platforms and their endpoints, in the order of the merged index.
    pub(crate) platforms: Vec<PlatformEndpoint>,
    /// Retries of the pushes and of the merge (not of the builds).
    pub(crate) retry: Retry,
}

impl FanOut {
    /// Retries of the pushes and of the merge (not of the builds), as
    /// [`Push::retry`](crate::docker::Push::retry) says: `attempts` in all,
    /// waiting `first_delay` before the first retry, doubled up to 30 s.
    pub fn retry(mut self, attempts: u32, first_delay: std::time::Duration) -> FanOut {
        self.retry = Retry::new(attempts, first_delay);
        self
    }
}

/// One platform's part of a fan-out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlatformResult {
    /// The platform.
    pub(crate) platform: String,
    /// Where it built.
    pub(crate) endpoint: Endpoint,
    /// The builder's driver.
    pub(crate) driver: String,
    /// The pushed image's digest (an index or a manifest).
    pub(crate) digest: String,
    /// The per-platform tag it was pushed under (`docker` driver only).
    pub(crate) platform_tag: Option<String>,
    /// Build (and push) time.
    pub(crate) elapsed: Duration,
    /// Which instructions its build took from the cache and why each of the others ran
    /// (see [`Build::explain`]); `None` when not explained. A build with an explanation
    /// record (a pipeline's) keeps one record per platform beside it
    /// (`image-linux-arm64.json` for `image.json`).
    pub(crate) explanation: Option<crate::docker::explain::Explanation>,
}

/// How one platform ended in a failed fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlatformOutcome {
    /// Its engine or builder did not answer; nothing was built anywhere.
    Unreachable(String),
    /// Its build (or push) failed.
    Failed(String),
    /// Built, but not merged because another platform failed.
    Built,
    /// Not started, because an endpoint did not answer.
    NotStarted,
}

/// A fan-out that failed: nothing was merged, and the final tags were not written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FanOutError {
    /// The tags that were to be written (and were not).
    pub(crate) tags: Vec<String>,
    /// Each platform, its endpoint and how it ended.
    pub(crate) outcomes: Vec<(PlatformEndpoint, PlatformOutcome)>,
}

impl fmt::Display for FanOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    PlatformOutcome::Unreachable(_) | PlatformOutcome::Failed(_)
                )
            })
            .map(|(p, _)| p.platform.as_str())
            .collect();
        writeln!(
            f,
            "multi-engine build of {} failed for {}; nothing was merged and {} {} not changed",
            self.tags.first().map(String::as_str).unwrap_or("the image"),
            failed.join(", "),
            self.tags.join(", "),
            if self.tags.len() == 1 { "was" } else { "were" },
        )?;
        for (p, outcome) in &self.outcomes {
            let what = match outcome {
                PlatformOutcome::Unreachable(e) => format!(
                    "its engine does not answer: {e}; start that engine or point the \
                     platform at another one"
                ),
                PlatformOutcome::Failed(e) => format!("failed: {e}"),
                PlatformOutcome::Built => "built, not merged".to_string(),
                PlatformOutcome::NotStarted => "not started".to_string(),
            };
            write!(f, "\n  {} on {}: {what}", p.platform, p.endpoint)?;
        }
        Ok(())
    }
}

impl std::error::Error for FanOutError {}

impl FanOut {
    /// A fan-out of `build` over `platforms`, with the default push retries. Each
    /// platform reads `PLATFORM=ENDPOINT`, for example `linux/arm64=context:arm-box`: the
    /// endpoint a `DOCKER_HOST` address (`unix://`, `tcp://`, `ssh://`, `npipe://`),
    /// `context:NAME` for a docker context or `builder:NAME` for a buildx builder; one
    /// that does not read so (or whose platform is not `os/arch[/variant]`) is refused
    /// here.
    pub fn new<S: AsRef<str>>(
        build: Build,
        platforms: impl IntoIterator<Item = S>,
    ) -> anyhow::Result<FanOut> {
        let platforms = platforms
            .into_iter()
            .map(|p| PlatformEndpoint::parse(p.as_ref()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(FanOut::of(build, platforms))
    }

    /// A fan-out of `build` over platforms already read.
    pub(crate) fn of(build: Build, platforms: Vec<PlatformEndpoint>) -> FanOut {
        FanOut {
            build,
            platforms,
            retry: Retry::default(),
        }
    }

    /// The repository every platform is pushed to: the first tag's name.
    fn repository(&self) -> anyhow::Result<ImageRef> {
        let first = self.build.tags.first().context(
            "a multi-engine build needs at least one tag naming the registry repository the \
             merged image goes to (for example registry.example.com/app:1.2.0)",
        )?;
        ImageRef::parse(first).map_err(|e| anyhow::anyhow!("invalid tag `{first}`: {}", e.problem))
    }

    /// The checks made before anything runs: the tags, the platforms, and the build
    /// fields that are set per platform.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let repo = self.repository()?;
        if repo.registry.is_none() {
            anyhow::bail!(
                "tag `{}` names no registry, and a multi-engine build merges its platforms \
                 in a registry; write the registry host first (for example \
                 127.0.0.1:5000/{})",
                self.build.tags[0],
                repo.repository
            );
        }
        anyhow::ensure!(
            self.build.platforms.is_empty(),
            "set the platforms on the FanOut (one engine each), not on its Build"
        );
        anyhow::ensure!(
            self.build.output == Output::Default,
            "a multi-engine build pushes and merges its platforms itself: leave the Build's \
             output at Output::Default"
        );
        anyhow::ensure!(
            self.build.builder.is_none(),
            "a multi-engine build picks each platform's builder from its endpoint: leave the \
             Build's builder unset"
        );
        anyhow::ensure!(
            !self.platforms.is_empty(),
            "a multi-engine build needs at least one PLATFORM=ENDPOINT"
        );
        let mut seen = Vec::new();
        for p in &self.platforms {
            check_platform(&p.platform)?;
            anyhow::ensure!(
                !seen.contains(&p.platform.as_str()),
                "platform {} is listed twice; give each platform one endpoint",
                p.platform
            );
            seen.push(&p.platform);
        }
        let mut probe = self.build.clone();
        probe.output = Output::Push;
        probe.check()
    }

    /// The per-platform tag a `docker`-driver platform is pushed under:
    /// `<first tag>-<os>-<arch>[-<variant>]` (cut to the 128 characters a tag may have).
    pub(crate) fn platform_tag(&self, platform: &str) -> anyhow::Result<String> {
        let repo = self.repository()?;
        let base = repo.tag.clone().unwrap_or_else(|| "latest".to_string());
        let mut tag = format!("{base}-{}", platform.replace('/', "-"));
        if tag.len() > MAX_TAG_LEN {
            let suffix = format!("-{}", platform.replace('/', "-"));
            tag = format!("{}{suffix}", &base[..MAX_TAG_LEN - suffix.len()]);
        }
        Ok(repo.with_tag(&tag).to_string())
    }

    /// The build one platform runs, for a builder that does (`by_digest`) or does not push
    /// by digest.
    pub(crate) fn platform_build(
        &self,
        platform: &PlatformEndpoint,
        by_digest: bool,
    ) -> anyhow::Result<Build> {
        let repo = self.repository()?;
        let mut build = self.build.clone();
        build.platforms = vec![platform.platform.clone()];
        build.builder = Some(platform.endpoint.builder().to_string());
        build.read_size = false;
        // One record per platform: each compares with its own previous build.
        if let Some(record) = &build.explain_record {
            let stem = record
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "build".into());
            let platform: String = platform
                .platform
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            build.explain_record = Some(record.with_file_name(format!("{stem}-{platform}.json")));
        }
        // One metadata file per platform too: the builds run side by side.
        if let Some(file) = &build.metadata_file {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "metadata".into());
            let platform: String = platform
                .platform
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            build.metadata_file = Some(file.with_file_name(format!("{stem}-{platform}.json")));
        }
        // The merge reads what it needs; BuildKit's record of a success costs 0.35 s.
        build.read_record = false;
        if by_digest {
            build.tags = Vec::new();
            build.output = Output::PushByDigest(repo.name());
        } else {
            build.tags = vec![self.platform_tag(&platform.platform)?];
            build.output = Output::Load;
        }
        Ok(build)
    }

    /// The merge: `imagetools create` of the platforms' digests under the tags.
    pub(crate) fn merge_command(&self, digests: &[String]) -> anyhow::Result<ImagetoolsCreate> {
        let repo = self.repository()?.name();
        Ok(ImagetoolsCreate {
            tags: self.build.tags.clone(),
            sources: digests.iter().map(|d| format!("{repo}@{d}")).collect(),
            append: false,
            retry: self.retry.clone(),
        })
    }
}

impl Step for FanOut {
    /// The merged image: its tags; its digest, the hash of the index read back (in a
    /// dry run, of the placeholder index the read-back answers); its platforms, as the
    /// merged index lists them, read back from the registry; each platform build's
    /// metadata by platform (`{"linux/arm64": {...}}`); the cache findings of the
    /// platforms' builds (each once); and one explanation of every platform's build, each
    /// row naming its platform ([`InstructionRow::platform`]), as a multi-platform build's
    /// explanation does (see [`Build::explain`]). A build with an explanation record (a
    /// pipeline's) keeps one record per platform beside it (`image-linux-arm64.json` for
    /// `image.json`).
    ///
    /// [`InstructionRow::platform`]: crate::docker::InstructionRow::platform
    type Output = BuildResult;

    /// Checks, asks every endpoint whether it answers and how it pushes, builds every
    /// platform on its endpoint side by side, pushes them, and merges them into the tags.
    /// On failure the error is a [`FanOutError`] (downcast it to see each platform's
    /// outcome) and no tag was written. The plan shows each platform's part in platform
    /// order (the probes, then the builds, then the pushes), whatever order the threads
    /// ran in; where a build reports no digest (a plan), the merge names
    /// `<digest-PLATFORM>`.
    fn run(&self, runner: &Runner) -> anyhow::Result<BuildResult> {
        self.check()?;
        let probes = self.probe_all(runner)?;

        // Build every platform side by side.
        let built = self.each_platform(runner, &probes, |p, probe, r| {
            let started = Instant::now();
            let result = self.platform_build(p, probe.pushes_by_digest())?.run(r)?;
            Ok((result, started.elapsed()))
        })?;

        // Push what is not pushed yet (the docker driver's per-platform tags), side by side.
        let push_times = self.each_platform(runner, &probes, |p, probe, r| {
            let started = Instant::now();
            if !probe.pushes_by_digest() {
                registry::Push::new(self.platform_tag(&p.platform)?)
                    .with_retry(self.retry.clone())
                    .run(r)?;
            }
            Ok(started.elapsed())
        })?;
        let results = self.results(&probes, &built, push_times);
        let digests: Vec<String> = results.iter().map(|r| r.digest.clone()).collect();

        self.merge_command(&digests)?
            .run(runner)
            .context("cannot merge the platforms' images")?;
        let first = &self.build.tags[0];
        let out = runner
            .capture(&registry::inspect_raw_cmd(first).dry_answer(self.dry_index(&digests)))
            .with_context(|| format!("cannot read the merged index {first} back"))?;
        // `--raw` prints the index byte for byte: its digest is the hash of those bytes.
        let digest = format!("sha256:{}", sha256_hex(out.stdout.as_bytes()));
        let raw: serde_json::Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("the merged index {first} is not JSON"))?;
        let merged_platforms = platforms_of_manifest(&raw);
        let missing: Vec<&str> = self
            .platforms
            .iter()
            .map(|p| p.platform.as_str())
            .filter(|p| !merged_platforms.iter().any(|m| m == p))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "the merged index {first} lacks {} (it lists {})",
            missing.join(", "),
            merged_platforms.join(", ")
        );
        let mut cache_warnings = Vec::new();
        for (result, _) in &built {
            for finding in &result.cache_warnings {
                if !cache_warnings.contains(finding) {
                    cache_warnings.push(finding.clone());
                }
            }
        }
        Ok(BuildResult {
            image_name: Some(first.clone()),
            tags: self.build.tags.clone(),
            digest: Some(digest),
            platforms: merged_platforms,
            metadata: serde_json::Value::Object(
                self.platforms
                    .iter()
                    .zip(&built)
                    .map(|(p, (result, _))| (p.platform.clone(), result.metadata.clone()))
                    .collect(),
            ),
            explanation: crate::docker::explain::merge_platforms(
                results
                    .into_iter()
                    .filter_map(|r| Some((r.platform, r.explanation?)))
                    .collect(),
            ),
            cache_warnings,
            ..BuildResult::default()
        })
    }
}

impl FanOut {
    /// What a plan reads back for the merged index: an index listing each platform under
    /// the digest its merge names.
    fn dry_index(&self, digests: &[String]) -> String {
        let manifests: Vec<serde_json::Value> = self
            .platforms
            .iter()
            .zip(digests)
            .map(|(p, digest)| {
                let mut parts = p.platform.splitn(3, '/');
                let mut platform = serde_json::Map::new();
                for key in ["os", "architecture", "variant"] {
                    if let Some(part) = parts.next() {
                        platform.insert(key.into(), part.into());
                    }
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        })
        .to_string()
    }

    /// Runs `work` for every platform side by side, with that endpoint's runner (on a
    /// record of its own, adopted platform after platform). When any fails, the error is
    /// a [`FanOutError`]: the others count as built, not merged.
    fn each_platform<T: Send>(
        &self,
        runner: &Runner,
        probes: &[BuilderProbe],
        work: impl Fn(&PlatformEndpoint, &BuilderProbe, &Runner) -> anyhow::Result<T> + Sync,
    ) -> anyhow::Result<Vec<T>> {
        let work = &work;
        let done: Vec<anyhow::Result<T>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .platforms
                .iter()
                .zip(probes)
                .map(|(p, probe)| {
                    let r = p
                        .endpoint
                        .runner(runner)
                        .prefix(p.platform.clone())
                        .with_fresh_record();
                    scope.spawn(move || {
                        let done = work(p, probe, &r);
                        (done, r.recorded())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok((done, recorded)) => {
                        runner.adopt(&recorded);
                        done
                    }
                    Err(_) => Err(anyhow::anyhow!("the platform's thread panicked")),
                })
                .collect()
        });
        if done.iter().any(Result::is_err) {
            return Err(self.failure(
                done.into_iter()
                    .map(|r| match r {
                        Ok(_) => PlatformOutcome::Built,
                        Err(e) => PlatformOutcome::Failed(format!("{e:#}")),
                    })
                    .collect(),
            ));
        }
        Ok(done.into_iter().map(|r| r.expect("checked")).collect())
    }

    /// Every endpoint asked whether it answers and how it pushes, side by side (each on a
    /// record of its own, adopted platform after platform).
    fn probe_all(&self, runner: &Runner) -> anyhow::Result<Vec<BuilderProbe>> {
        let probes: Vec<Result<BuilderProbe, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .platforms
                .iter()
                .map(|p| {
                    let r = p.endpoint.runner(runner).with_fresh_record();
                    scope.spawn(move || {
                        let found = probe(&r, p);
                        (found, r.recorded())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok((found, recorded)) => {
                        runner.adopt(&recorded);
                        found
                    }
                    Err(_) => Err("the probe thread panicked".into()),
                })
                .collect()
        });
        if probes.iter().any(Result::is_err) {
            return Err(self.failure(
                probes
                    .iter()
                    .map(|r| match r {
                        Ok(_) => PlatformOutcome::NotStarted,
                        Err(e) => PlatformOutcome::Unreachable(e.clone()),
                    })
                    .collect(),
            ));
        }
        Ok(probes.into_iter().map(|r| r.expect("checked")).collect())
    }

    fn failure(&self, outcomes: Vec<PlatformOutcome>) -> anyhow::Error {
        anyhow::Error::new(FanOutError {
            tags: self.build.tags.clone(),
            outcomes: self.platforms.iter().cloned().zip(outcomes).collect(),
        })
    }

    fn results(
        &self,
        probes: &[BuilderProbe],
        built: &[(crate::docker::build::BuildResult, Duration)],
        push_times: Vec<Duration>,
    ) -> Vec<PlatformResult> {
        self.platforms
            .iter()
            .zip(probes)
            .zip(built)
            .enumerate()
            .map(|(i, ((p, probe), (result, took)))| PlatformResult {
                platform: p.platform.clone(),
                endpoint: p.endpoint.clone(),
                driver: probe.driver.clone(),
                // A build that reports no digest (a plan of a build that reads none):
                // the merge names the placeholder.
                digest: result
                    .digest
                    .clone()
                    .unwrap_or_else(|| format!("<digest-{}>", p.platform)),
                platform_tag: (!probe.pushes_by_digest())
                    .then(|| self.platform_tag(&p.platform).ok())
                    .flatten(),
                elapsed: *took + push_times.get(i).copied().unwrap_or_default(),
                explanation: result.explanation.clone(),
            })
            .collect()
    }
}
