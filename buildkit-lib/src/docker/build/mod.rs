//! [`Build`]: one `docker buildx build`, as plain data, with its pre-flight checks and
//! typed result.
//!
//! How a build goes from data to command line to result is documented for users on
//! [`Build`].
//!
//! One job per file: this one holds the value (the build, its secrets, outputs and
//! provenance, its setters and its result) and the OCI labels; `command.rs` turns it into
//! the command line, `check.rs` refuses bad input before anything runs,
//! `run.rs` runs it and reads the result.

mod check;
mod command;
mod record;
mod run;
#[cfg(test)]
mod tests;

pub(crate) use check::looks_like_secret_value;
pub(crate) use command::build_arg;
pub use record::BuildFailed;
pub(crate) use record::BuildRecord;
pub(crate) use run::{engine_host, metadata_file, read_metadata, BuildMetadataRow};

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::cache::Cache;
use crate::cmd::Secret;
use crate::docker::explain::{CacheCheck, CacheNotWritten, CacheWarning};
use crate::finding::Finding;
use crate::session::Session;

/// Where a build secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SecretSource {
    /// A file on this machine (`src=...`).
    File(PathBuf),
    /// An environment variable of the build command (`env=...`).
    Env(String),
    /// A value held by the program ([`Secret`]): handed to buildx in the environment of
    /// its process only (`env=BUILDKIT_SECRET_<ID>`), never on a command line, in a log,
    /// a report or a plan.
    Value(Secret),
}

/// A build secret (`--secret`), mounted in `RUN --mount=type=secret,id=<id>` steps and
/// never stored in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildSecret {
    /// The id the Dockerfile mounts it by.
    pub(crate) id: String,
    /// Where its value comes from.
    pub(crate) source: SecretSource,
}

impl BuildSecret {
    /// A secret read from a file.
    pub(crate) fn file(id: impl Into<String>, path: impl Into<PathBuf>) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            source: SecretSource::File(path.into()),
        }
    }

    /// A secret read from an environment variable.
    pub(crate) fn env(id: impl Into<String>, var: impl Into<String>) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            source: SecretSource::Env(var.into()),
        }
    }

    /// A secret whose value the program holds.
    pub(crate) fn value(id: impl Into<String>, value: Secret) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            source: SecretSource::Value(value),
        }
    }

    /// The value of the `--secret` argument.
    pub(crate) fn to_arg(&self) -> String {
        match &self.source {
            SecretSource::File(path) => format!("id={},src={}", self.id, path.display()),
            SecretSource::Env(var) => format!("id={},env={var}", self.id),
            SecretSource::Value(_) => format!("id={},env={}", self.id, self.value_env()),
        }
    }

    /// The environment variable that carries a [`SecretSource::Value`] to buildx.
    pub(crate) fn value_env(&self) -> String {
        let id: String = self
            .id
            .chars()
            .map(|c| match c.is_ascii_alphanumeric() {
                true => c.to_ascii_uppercase(),
                false => '_',
            })
            .collect();
        format!("BUILDKIT_SECRET_{id}")
    }

    /// The value itself, read from where it comes from (for masking and for the
    /// fingerprint of the build's inputs); `None` when it cannot be read.
    pub(crate) fn read_value(&self, env: impl Fn(&str) -> Option<String>) -> Option<Vec<u8>> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path).ok(),
            SecretSource::Env(var) => env(var).map(String::into_bytes),
            SecretSource::Value(value) => Some(value.expose().as_bytes().to_vec()),
        }
    }
}

/// Where the build result goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Output {
    /// The builder's default (with the `docker` driver: the local image store).
    #[default]
    Default,
    /// Load into the local image store (`--load`).
    Load,
    /// Push to the registry named by the tags (`--push`).
    Push,
    /// Export the final stage's files into a directory (`--output type=local,dest=...`).
    Local(PathBuf),
    /// Export the final stage's files as a tar archive (`--output type=tar,dest=...`).
    Tar(PathBuf),
    /// Push to the registry as repository `name` without any tag, by digest only
    /// (`--output type=image,name=NAME,push-by-digest=true,name-canonical=true,push=true`):
    /// the per-platform half of a multi-engine build, merged later by
    /// `imagetools create`. Needs a builder whose driver is not `docker` (buildx 0.13's
    /// `docker` driver refuses push-by-digest).
    PushByDigest(String),
    /// Export the image as an OCI image layout directory
    /// (`--output type=oci,dest=DIR,tar=false`): its `index.json` and blobs can be read
    /// and compared without an engine or a registry (the reproducibility check does).
    OciLayout(PathBuf),
}

/// The provenance attestation a build attaches (`--provenance`), as
/// [`Build::attest`] reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Provenance {
    /// Whatever buildx does by default (no flag; buildx 0.10+ attaches `mode=min` when it
    /// exports an image with attestations).
    #[default]
    Default,
    /// None (`--provenance=false`): for registries that refuse image indexes.
    Off,
    /// Build timestamps, frontend and sources (`--provenance=mode=min`).
    Min,
    /// Everything `Min` has plus the full build definition and the values of every
    /// build arg (`--provenance=mode=max`): anyone who can pull the image can read them,
    /// so a build arg whose value looks like a secret is refused.
    Max,
}

/// One `docker buildx build`: [`Build::new`] with the context, the setters for the rest,
/// then [`Build::run`](crate::plan::Step::run) it.
///
/// ```
/// use buildkit_lib::docker::{Build, Output};
///
/// let build = Build::new("fixtures/webapp")
///     .dockerfile("fixtures/webapp/Dockerfile.production")
///     .target("runtime")
///     .tag("webapp:dev")
///     .build_arg("PYTHON_IMAGE", "python:3.11-slim")
///     .network("none")
///     .output(Output::Load);
/// assert_eq!(
///     build.command().to_string(),
///     "docker buildx build --progress=rawjson --file fixtures/webapp/Dockerfile.production \
///      --target runtime --tag webapp:dev --build-arg PYTHON_IMAGE=python:3.11-slim \
///      --network=none --load fixtures/webapp"
/// );
/// ```
///
/// The plan is data ([`Build::new`] and chained setters), [`Build::command`] turns it
/// into the exact command line (golden-tested), its pre-flight checks refuse bad input
/// before anything runs, and [`Build::run`](crate::plan::Step::run) runs it and reads the
/// result from `--metadata-file` and `docker image inspect`, never from progress text.
///
/// Setters of lists and maps (tags, build args, labels, secrets, caches, ...) add to
/// what is there; the others replace the value. Relative paths are relative to the
/// current directory, as for `docker buildx build`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Build {
    /// The build context directory (or a URL buildx understands).
    pub(crate) context: PathBuf,
    /// The Dockerfile (`-f`); `None` means `<context>/Dockerfile`.
    pub(crate) dockerfile: Option<PathBuf>,
    /// The stage to build (`--target`).
    pub(crate) target: Option<String>,
    /// Image references to tag the result with (`-t`).
    pub(crate) tags: Vec<String>,
    /// Build arguments (`--build-arg K=V`). Never secrets: see [`Build::secret_value`].
    pub(crate) build_args: BTreeMap<String, String>,
    /// Image labels (`--label K=V`); see [`oci_labels`].
    pub(crate) labels: BTreeMap<String, String>,
    /// Named build contexts (`--build-context name=value`).
    pub(crate) build_contexts: BTreeMap<String, String>,
    /// Build secrets (`--secret`).
    pub(crate) secrets: Vec<BuildSecret>,
    /// Network for `RUN` steps (`--network host|none|default`).
    pub(crate) network: Option<String>,
    /// Always look for newer base images (`--pull`).
    pub(crate) pull: bool,
    /// Ignore the build cache (`--no-cache`).
    pub(crate) no_cache: bool,
    /// Target platforms (`--platform a,b`); empty means the builder's own.
    pub(crate) platforms: Vec<String>,
    /// Where the result goes.
    pub(crate) output: Output,
    /// Cache sources (`--cache-from`).
    pub(crate) cache_from: Vec<Cache>,
    /// Cache destinations (`--cache-to`).
    pub(crate) cache_to: Vec<Cache>,
    /// Where buildx writes the build's metadata JSON; [`Build::run`](crate::plan::Step::run) uses a temporary
    /// file when this is `None`.
    pub(crate) metadata_file: Option<PathBuf>,
    /// The buildx builder to use (`--builder`).
    pub(crate) builder: Option<String>,
    /// Progress output (`--progress`); `plain` by default, `None` leaves buildx's default.
    pub(crate) progress: Option<String>,
    /// Flags this type does not know yet, added before the context argument.
    pub(crate) extra_args: Vec<String>,
    /// After a `--load`, ask the engine for the image's size (one `docker image
    /// inspect`, about 35 ms on a containerd image store: over 10% of a fully cached
    /// build). On by default; turn it off on hot paths that read the size elsewhere. The
    /// image id comes from the build metadata either way.
    pub(crate) read_size: bool,
    /// After a successful build, read BuildKit's record of it (`docker buildx history
    /// inspect`, buildx 0.21 or later: cached and total steps, about 0.35 s). On by
    /// default. A failed build's record is always looked for (its error is BuildKit's own
    /// words); the reference (`buildx.build.ref`) is kept either way.
    pub(crate) read_record: bool,
    /// Clamp the timestamps of the files in the image's layers to `SOURCE_DATE_EPOCH`
    /// (the exporter's `rewrite-timestamp=true`, BuildKit 0.13 and later), so that two
    /// builds of the same sources can give the same digest. Only for exports that write
    /// image blobs themselves: [`Output::Push`], [`Output::PushByDigest`] and
    /// [`Output::OciLayout`]; the `docker` driver's `--load` unpacks the image and
    /// refuses it.
    pub(crate) rewrite_timestamp: bool,
    /// The provenance attestation (`--provenance`; see [`Build::attest`]).
    pub(crate) provenance: Provenance,
    /// Attach an SBOM attestation (`--sbom=true`; see [`Build::attest`]).
    pub(crate) sbom: bool,
    /// Other attestations, as buildx takes them (`--attest type=sbom,generator=IMAGE`).
    pub(crate) attest: Vec<String>,
    /// Read BuildKit's per-instruction progress (`--progress=rawjson` in place of
    /// `plain`, rendered as plain text in the log) and explain each rebuilt instruction.
    pub(crate) explain: bool,
    /// Where the inputs that decided the cache and the explanation are kept between
    /// builds (see [`Build::explain_record`]).
    pub(crate) explain_record: Option<PathBuf>,
    /// A cache export that fails fails the build (see [`Build::cache_required`]).
    pub(crate) cache_required: bool,
    /// The rules of the cache set-up checks not to run (see [`Build::skip_cache_check`]).
    pub(crate) skip_cache_checks: Vec<String>,
    /// How to retry the push of an [`Output::Push`] build; `None`: run once.
    pub(crate) retry_push: Option<crate::docker::registry::Retry>,
}

impl Build {
    /// A build of the context directory `context` (or a URL buildx understands), with
    /// the defaults: `<context>/Dockerfile`, no tags, the builder's default output,
    /// `--progress=plain`, and the image size read after a `--load`.
    pub fn new(context: impl Into<PathBuf>) -> Build {
        Build {
            context: context.into(),
            dockerfile: None,
            target: None,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            build_contexts: BTreeMap::new(),
            secrets: Vec::new(),
            network: None,
            pull: false,
            no_cache: false,
            platforms: Vec::new(),
            output: Output::Default,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            metadata_file: None,
            builder: None,
            progress: Some("plain".to_string()),
            extra_args: Vec::new(),
            read_size: true,
            read_record: true,
            rewrite_timestamp: false,
            provenance: Provenance::Default,
            sbom: false,
            attest: Vec::new(),
            explain: true,
            explain_record: None,
            cache_required: false,
            skip_cache_checks: Vec::new(),
            retry_push: None,
        }
    }

    /// The build context directory (or a URL buildx understands), in place of the one
    /// the build was made with.
    pub fn context(mut self, context: impl Into<PathBuf>) -> Build {
        self.context = context.into();
        self
    }

    /// The Dockerfile (`-f`); without it, `<context>/Dockerfile`. A relative path is
    /// relative to the current directory, as with docker's `-f`, not to the context:
    /// `Build::new("app").dockerfile("app/Dockerfile.production")`.
    pub fn dockerfile(mut self, path: impl Into<PathBuf>) -> Build {
        self.dockerfile = Some(path.into());
        self
    }

    /// The stage to build (`--target`).
    pub fn target(mut self, stage: impl Into<String>) -> Build {
        self.target = Some(stage.into());
        self
    }

    /// Adds an image reference to tag the result with (`-t`).
    pub fn tag(mut self, tag: impl Into<String>) -> Build {
        self.tags.push(tag.into());
        self
    }

    /// Adds a build argument (`--build-arg K=V`). Never a secret: see
    /// [`Build::secret_value`], [`Build::secret_file`] and [`Build::secret_env`].
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Build {
        self.build_args.insert(name.into(), value.into());
        self
    }

    /// Adds image labels (`--label K=V`), such as those of [`oci_labels`] (one:
    /// `.labels([("maintainer", "Web Team")])`).
    pub fn labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Build {
        self.labels
            .extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a named build context (`--build-context name=value`).
    pub fn build_context(mut self, name: impl Into<String>, value: impl Into<String>) -> Build {
        self.build_contexts.insert(name.into(), value.into());
        self
    }

    /// Adds a build secret whose value the program holds, mounted by `id` (`RUN
    /// --mount=type=secret,id=<id>`): the same [`Secret`] a smoke test's or a service's
    /// environment takes.
    pub fn secret_value(self, id: impl Into<String>, value: Secret) -> Build {
        self.secret(BuildSecret::value(id, value))
    }

    /// Adds a build secret read from the file `path` on this machine, mounted by `id`
    /// (`--secret id=ID,src=PATH`).
    pub fn secret_file(self, id: impl Into<String>, path: impl Into<PathBuf>) -> Build {
        self.secret(BuildSecret::file(id, path))
    }

    /// Adds a build secret read from the environment variable `var` of the build
    /// command, mounted by `id` (`--secret id=ID,env=VAR`).
    pub fn secret_env(self, id: impl Into<String>, var: impl Into<String>) -> Build {
        self.secret(BuildSecret::env(id, var))
    }

    /// Adds a build secret (`--secret`).
    pub(crate) fn secret(mut self, secret: BuildSecret) -> Build {
        self.secrets.push(secret);
        self
    }

    /// Network for `RUN` steps (`--network host|none|default`).
    pub fn network(mut self, network: impl Into<String>) -> Build {
        self.network = Some(network.into());
        self
    }

    /// Always look for newer base images (`--pull`).
    pub fn pull(mut self, on: bool) -> Build {
        self.pull = on;
        self
    }

    /// Ignore the build cache (`--no-cache`).
    pub fn no_cache(mut self, on: bool) -> Build {
        self.no_cache = on;
        self
    }

    /// Adds a target platform (`--platform a,b`); without any, the builder's own.
    pub fn platform(mut self, platform: impl Into<String>) -> Build {
        self.platforms.push(platform.into());
        self
    }

    /// Where the result goes.
    pub fn output(mut self, output: Output) -> Build {
        self.output = output;
        self
    }

    /// Adds a cache source (`--cache-from`).
    pub fn cache_from(mut self, cache: Cache) -> Build {
        self.cache_from.push(cache);
        self
    }

    /// Adds a cache destination (`--cache-to`).
    pub fn cache_to(mut self, cache: Cache) -> Build {
        self.cache_to.push(cache);
        self
    }

    /// Where buildx writes the build's metadata JSON; without it, [`Build::run`](crate::plan::Step::run) uses a
    /// temporary file.
    pub fn metadata_file(mut self, path: impl Into<PathBuf>) -> Build {
        self.metadata_file = Some(path.into());
        self
    }

    /// The buildx builder to use (`--builder`).
    pub fn builder(mut self, name: impl Into<String>) -> Build {
        self.builder = Some(name.into());
        self
    }

    /// Adds a flag this type does not know yet, placed before the context argument.
    pub fn extra_arg(mut self, arg: impl Into<String>) -> Build {
        self.extra_args.push(arg.into());
        self
    }

    /// After a successful build, read what the engine knows of it (on by default; turn
    /// it off on hot paths): after a `--load`, the image's size (one `docker image
    /// inspect`, about 35 ms on a containerd image store: over 10% of a fully cached
    /// build), and BuildKit's record of the build, which a pipeline reports (`docker
    /// buildx history inspect`, buildx 0.21 or later: cached and total steps, about
    /// 0.35 s). The image id comes from the build metadata either way; a failed build's
    /// record is always looked for (its error is BuildKit's own words).
    pub fn read_facts(mut self, on: bool) -> Build {
        self.read_size = on;
        self.read_record = on;
        self
    }

    /// Clamp the timestamps of the files in the image's layers to `SOURCE_DATE_EPOCH`
    /// (the exporter's `rewrite-timestamp=true`, BuildKit 0.13 and later), so that two
    /// builds of the same sources can give the same digest. Only for exports that write
    /// image blobs themselves: [`Output::Push`], [`Output::PushByDigest`] and
    /// [`Output::OciLayout`]; the `docker` driver's `--load` unpacks the image and
    /// refuses it.
    pub fn rewrite_timestamp(mut self, on: bool) -> Build {
        self.rewrite_timestamp = on;
        self
    }

    /// Adds an attestation, as buildx's `--attest` takes it:
    ///
    /// - `type=provenance,mode=min` or `mode=max` (`--provenance=mode=...`; without it,
    ///   buildx's default, which attaches `mode=min` when it exports an image with
    ///   attestations), `type=provenance,disabled=true` for none (`--provenance=false`:
    ///   for registries that refuse image indexes). `mode=max` records the full build
    ///   definition and the value of every build arg: anyone who can pull the image can
    ///   read them, so a build arg whose value looks like a secret is refused;
    /// - `type=sbom` (`--sbom=true`): BuildKit runs its scanner image
    ///   (`docker/buildkit-syft-scanner`), which must be pullable by the builder;
    /// - any other (`type=sbom,generator=IMAGE`, ...) as it is (`--attest ...`).
    pub fn attest(mut self, attestation: impl Into<String>) -> Build {
        let spec = attestation.into();
        let fields: Vec<&str> = spec.split(',').collect();
        match fields.as_slice() {
            ["type=provenance"] | ["type=provenance", "mode=min"] => {
                self.provenance = Provenance::Min
            }
            ["type=provenance", "mode=max"] => self.provenance = Provenance::Max,
            ["type=provenance", "disabled=true"] => self.provenance = Provenance::Off,
            ["type=sbom"] => self.sbom = true,
            _ => self.attest.push(spec),
        }
        self
    }

    /// Explain the build (on by default): with the default `plain` progress, the build
    /// runs with `--progress=rawjson`, its progress is rendered as plain text in the log
    /// as before, and [`BuildResult::explanation`] says which instructions were taken from
    /// the cache and why each of the others ran. Before it runs, the cache set-up checks
    /// (see [`Build::skip_cache_check`]) are said in the log and kept in
    /// [`BuildResult::cache_warnings`]. Off: `--progress=plain` as it is, and no checks.
    pub fn explain(mut self, on: bool) -> Build {
        self.explain = on;
        self
    }

    /// Keep the inputs that decide the cache (and the explanation) in the file `path`
    /// between builds, so that each build's explanation compares with the previous one:
    /// without it, causes that need the previous build's inputs (changed files, build
    /// args, base images, instructions) cannot be named. A pipeline's image builds keep
    /// theirs under `target/buildkit/<pipeline>/why/`. Secrets are kept as identities
    /// only, never their values.
    pub fn explain_record(mut self, path: impl Into<PathBuf>) -> Build {
        self.explain_record = Some(path.into());
        self
    }

    /// Whether a cache export that fails fails the build (off by default: the cache is
    /// optional). BuildKit exports the cache after the image, and buildx exits 1 when the
    /// cache export fails although the image was built (and loaded or pushed). With the
    /// cache optional, [`Build::run`](crate::plan::Step::run) returns the result, its
    /// [`BuildResult::cache_warnings`] naming each destination not written with the
    /// engine's error (rule `cache/not-written`), and says `image X built and loaded; cache not written to REF:
    /// <error>` in the step log; required, it returns that as a
    /// [`CacheExportFailed`](crate::docker::CacheExportFailed) error. Either way
    /// the error is no longer "cannot build image".
    pub fn cache_required(mut self, on: bool) -> Build {
        self.cache_required = on;
        self
    }

    /// Leaves one of the cache set-up checks out, named by the rule of its findings
    /// ([`BuildResult::cache_warnings`]): for a set-up that is so on purpose, such as a
    /// pull-request job that imports the cache the default branch's job writes
    /// (`cache/cache-from-without-cache-to`). The checks: `cache/copy-before-install`
    /// (the context, or the folder of the dependency list, copied before the dependency
    /// install), `cache/mode-min-intermediate` (a `mode=min` export leaves out the stages
    /// the target copies from), `cache/cache-from-without-cache-to` (in CI, a cache
    /// imported and none exported), `cache/volatile-build-arg` (a build arg that changes
    /// on every run declared before a `RUN`), `cache/cache-mount-not-persisted` (in CI, a
    /// cache mount on a builder that starts empty, with no cache exported) and
    /// `cache/base-without-digest` (a reproducible build from a base image named by tag
    /// only). The name alone (`cache-from-without-cache-to`) will do too; another name is
    /// refused before the build runs.
    pub fn skip_cache_check(mut self, rule: impl Into<String>) -> Build {
        let rule = rule.into();
        if !self.skip_cache_checks.contains(&rule) {
            self.skip_cache_checks.push(rule);
        }
        self
    }

    /// Retries an [`Output::Push`] build (`attempts` in all, waiting `first_delay` before
    /// the first retry, doubled after each failure up to 30 s), only when the build succeeded
    /// and the push failed for a transient reason (a network error, an HTTP 5xx or 429
    /// from the registry): a retry is then a cached rebuild plus the upload, noted in the
    /// step log with its reason. A failed build (a missing base image, a failing `RUN`,
    /// bad input) is never retried. Without it a build runs once; with it, a build whose
    /// output is not [`Output::Push`] is refused before it runs.
    pub fn retry_push(mut self, attempts: u32, first_delay: std::time::Duration) -> Build {
        self.retry_push = Some(crate::docker::registry::Retry::new(attempts, first_delay));
        self
    }

    /// Whether the build reads BuildKit's per-instruction progress to explain itself.
    pub(crate) fn explains(&self) -> bool {
        self.explain && self.progress.as_deref() == Some("plain")
    }

    /// The build context.
    #[cfg(test)]
    pub(crate) fn get_context(&self) -> &std::path::Path {
        &self.context
    }

    /// The stage to build, if set.
    #[cfg(test)]
    pub(crate) fn get_target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The image references the result is tagged with.
    #[cfg(test)]
    pub(crate) fn get_tags(&self) -> &[String] {
        &self.tags
    }

    /// The named build contexts.
    #[cfg(test)]
    pub(crate) fn get_build_contexts(&self) -> &BTreeMap<String, String> {
        &self.build_contexts
    }

    /// The buildx builder, if set.
    #[cfg(test)]
    pub(crate) fn get_builder(&self) -> Option<&str> {
        self.builder.as_deref()
    }
}

/// What a build produced, read from buildx's metadata file and the image store: the
/// output of [`Build::run`](crate::plan::Step::run), and of a
/// [`Bake`](crate::docker::Bake) for each target (by target name; there from the metadata
/// alone: no image size or platforms, and, with
/// [`Bake::explain_records`](crate::docker::Bake::explain_records), the explanation and the
/// cache set-up findings).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BuildResult {
    /// The first image name buildx reports (`docker.io/library/app:1.0`), if any.
    pub(crate) image_name: Option<String>,
    /// The tags the build was asked to apply, as given; for a bake target, the image names
    /// buildx reports (`image.name`, normalized: `docker.io/library/web:1`).
    pub tags: Vec<String>,
    /// The digest of the image manifest or index (`containerimage.digest`).
    pub digest: Option<String>,
    /// The local image id, when the image was loaded (for a bake target, the image's config
    /// digest, which the `docker` driver uses as the id).
    pub image_id: Option<String>,
    /// The platforms built (`linux/amd64`, ...).
    pub platforms: Vec<String>,
    /// The image size in bytes in the local store, when loaded.
    pub size_bytes: Option<u64>,
    /// The buildx metadata JSON as written (in a dry run, its placeholder).
    pub metadata: serde_json::Value,
    /// The command line run (secrets masked).
    pub(crate) command: String,
    /// Which instructions were taken from the cache and why each of the others ran
    /// ([`Build::explain`]); `None` when not asked.
    pub explanation: Option<crate::docker::explain::Explanation>,
    /// What went wrong with the build cache, as [`Finding`]s of level warning (the build
    /// itself succeeded):
    ///
    /// - before the build, what the cache set-up checks found (they run while
    ///   [`Build::explain`] is on), each at its Dockerfile line, its message ending with
    ///   the fix (`<message>\n  fix: <fix>`), its rule the check's (see
    ///   [`Build::skip_cache_check`]);
    /// - after it, each cache destination (`--cache-to`) the build did not write (rule
    ///   `cache/not-written`, the destination as the file, the engine's error in the
    ///   message): the image was built, the cache export failed (see
    ///   [`Build::cache_required`]).
    pub cache_warnings: Vec<Finding>,
    /// The cache set-up checks' findings, as the pipeline's report keeps them.
    pub(crate) cache_checks: Vec<CacheWarning>,
    /// The cache destinations the build did not write, as the pipeline's report keeps
    /// them.
    pub(crate) cache_not_written: Vec<CacheNotWritten>,
    /// BuildKit's record of the build: its reference (`buildx.build.ref`), and with
    /// buildx 0.21 or later its cached and total steps (see [`Build::read_facts`]); a
    /// pipeline keeps it in its report.
    pub(crate) record: BuildRecord,
}

impl Build {
    /// The Dockerfile this build reads: `dockerfile`, or `<context>/Dockerfile`.
    pub(crate) fn dockerfile_path(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }

    /// The cache findings of this build's result ([`BuildResult::cache_warnings`]): the
    /// set-up checks' `checks`, then the destinations `not_written`.
    pub(crate) fn cache_findings(
        &self,
        checks: &[CacheWarning],
        not_written: &[CacheNotWritten],
    ) -> Vec<Finding> {
        let dockerfile = self.dockerfile_path().display().to_string();
        checks
            .iter()
            .map(|w| w.to_finding(&dockerfile))
            .chain(not_written.iter().map(CacheNotWritten::to_finding))
            .collect()
    }

    /// Refuses a [`Build::skip_cache_check`] that names no check.
    pub(crate) fn check_skipped_cache_checks(&self) -> anyhow::Result<()> {
        for rule in &self.skip_cache_checks {
            if CacheCheck::of_rule(rule).is_none() {
                anyhow::bail!(
                    "`skip_cache_check(\"{rule}\")` names no cache set-up check; the checks \
                     are {}",
                    CacheCheck::ALL.map(CacheCheck::rule).join(", ")
                );
            }
        }
        Ok(())
    }

    /// Adds the session's ownership labels (project and run), so clean-up can find the
    /// image.
    pub fn with_session_labels(mut self, session: &Session) -> Build {
        for pair in session.label_args().chunks(2) {
            if let [_, kv] = pair {
                if let Some((k, v)) = kv.split_once('=') {
                    self.labels.insert(k.to_string(), v.to_string());
                }
            }
        }
        self
    }
}

/// The `org.opencontainers.image.*` labels: title, version, revision (the full commit),
/// created (RFC 3339 time) and source (repository URL). Empty values are left out.
pub fn oci_labels(
    title: &str,
    version: &str,
    revision: &str,
    created: &str,
    source: &str,
) -> BTreeMap<String, String> {
    [
        ("title", title),
        ("version", version),
        ("revision", revision),
        ("created", created),
        ("source", source),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (format!("org.opencontainers.image.{k}"), v.to_string()))
    .collect()
}
