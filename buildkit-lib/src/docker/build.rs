//! [`Build`]: one `docker buildx build`, as plain data, with its pre-flight checks and
//! typed result.
//!
//! The plan is data ([`Build::new`] and chained setters), [`Build::command`] turns it
//! into the exact command line (golden-tested), [`Build::check`] refuses bad input before
//! anything runs, and [`Build::run`] runs it and reads the result from `--metadata-file`
//! and `docker image inspect`, never from progress text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::cache::{self, Cache, CacheKind, GhaService};
use super::dockerfile;
use super::image::ImageFacts;
use super::reference::ImageRef;
use crate::cmd::{Cmd, Runner};
use crate::plan::{Plan, Planned};
use crate::session::Session;

/// Where a build secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// A file on this machine (`src=...`).
    File(PathBuf),
    /// An environment variable of the build command (`env=...`).
    Env(String),
}

/// A build secret (`--secret`), mounted in `RUN --mount=type=secret,id=<id>` steps and
/// never stored in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    /// The id the Dockerfile mounts it by.
    pub id: String,
    /// Where its value comes from.
    pub source: SecretSource,
}

impl BuildSecret {
    /// A secret read from a file.
    pub fn file(id: impl Into<String>, path: impl Into<PathBuf>) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            source: SecretSource::File(path.into()),
        }
    }

    /// A secret read from an environment variable.
    pub fn env(id: impl Into<String>, var: impl Into<String>) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            source: SecretSource::Env(var.into()),
        }
    }

    /// The value of the `--secret` argument.
    pub fn to_arg(&self) -> String {
        match &self.source {
            SecretSource::File(path) => format!("id={},src={}", self.id, path.display()),
            SecretSource::Env(var) => format!("id={},env={var}", self.id),
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

/// The provenance attestation a build attaches (`--provenance`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
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
/// then [`Build::run`] it.
///
/// ```
/// use buildkit_lib::docker::build::{Build, Output};
///
/// let build = Build::new("fixtures/webapp")
///     .dockerfile("fixtures/webapp/Dockerfile.production")
///     .target("runtime")
///     .tag("webapp:dev")
///     .build_arg("PYTHON_IMAGE", "python:3.11-slim")
///     .network("none")
///     .output(Output::Load);
/// assert_eq!(build.get_tags(), ["webapp:dev"]);
/// assert_eq!(
///     build.command().to_string(),
///     "docker buildx build --progress=plain --file fixtures/webapp/Dockerfile.production \
///      --target runtime --tag webapp:dev --build-arg PYTHON_IMAGE=python:3.11-slim \
///      --network=none --load fixtures/webapp"
/// );
/// ```
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
    /// Build arguments (`--build-arg K=V`). Never secrets: see [`Build::secret`].
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
    /// Where buildx writes the build's metadata JSON; [`Build::run`] uses a temporary
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
    /// Clamp the timestamps of the files in the image's layers to `SOURCE_DATE_EPOCH`
    /// (the exporter's `rewrite-timestamp=true`, BuildKit 0.13 and later), so that two
    /// builds of the same sources can give the same digest. Only for exports that write
    /// image blobs themselves: [`Output::Push`], [`Output::PushByDigest`] and
    /// [`Output::OciLayout`]; the `docker` driver's `--load` unpacks the image and
    /// refuses it.
    pub(crate) rewrite_timestamp: bool,
    /// The provenance attestation (`--provenance`).
    pub(crate) provenance: Provenance,
    /// Attach an SBOM attestation (`--sbom=true`). BuildKit runs its scanner image
    /// (`docker/buildkit-syft-scanner`), which must be pullable by the builder.
    pub(crate) sbom: bool,
    /// Other attestations, as buildx takes them (`--attest type=sbom,generator=IMAGE`).
    pub(crate) attest: Vec<String>,
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
            rewrite_timestamp: false,
            provenance: Provenance::Default,
            sbom: false,
            attest: Vec::new(),
        }
    }

    /// The build context directory (or a URL buildx understands).
    pub fn context(mut self, context: impl Into<PathBuf>) -> Build {
        self.context = context.into();
        self
    }

    /// The Dockerfile (`-f`); without it, `<context>/Dockerfile`.
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

    /// Adds image references to tag the result with (`-t`).
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Build {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds a build argument (`--build-arg K=V`). Never a secret: see [`Build::secret`].
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Build {
        self.build_args.insert(name.into(), value.into());
        self
    }

    /// Adds build arguments (`--build-arg K=V`). Never secrets: see [`Build::secret`].
    pub fn build_args<K: Into<String>, V: Into<String>>(
        mut self,
        args: impl IntoIterator<Item = (K, V)>,
    ) -> Build {
        self.build_args
            .extend(args.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds an image label (`--label K=V`).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Build {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Adds image labels (`--label K=V`), such as those of [`oci_labels`].
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

    /// Adds named build contexts (`--build-context name=value`).
    pub fn build_contexts<K: Into<String>, V: Into<String>>(
        mut self,
        contexts: impl IntoIterator<Item = (K, V)>,
    ) -> Build {
        self.build_contexts
            .extend(contexts.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a build secret (`--secret`).
    pub fn secret(mut self, secret: BuildSecret) -> Build {
        self.secrets.push(secret);
        self
    }

    /// Adds build secrets (`--secret`).
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = BuildSecret>) -> Build {
        self.secrets.extend(secrets);
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

    /// Adds target platforms (`--platform a,b`); without any, the builder's own.
    pub fn platforms<S: Into<String>>(mut self, platforms: impl IntoIterator<Item = S>) -> Build {
        self.platforms.extend(platforms.into_iter().map(Into::into));
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

    /// Where buildx writes the build's metadata JSON; without it, [`Build::run`] uses a
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

    /// Progress output (`--progress`); `plain` by default, `None` leaves buildx's default.
    pub fn progress(mut self, mode: Option<&str>) -> Build {
        self.progress = mode.map(str::to_string);
        self
    }

    /// Adds a flag this type does not know yet, placed before the context argument.
    pub fn extra_arg(mut self, arg: impl Into<String>) -> Build {
        self.extra_args.push(arg.into());
        self
    }

    /// Adds flags this type does not know yet, placed before the context argument.
    pub fn extra_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Build {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// After a `--load`, ask the engine for the image's size (one `docker image
    /// inspect`, about 35 ms on a containerd image store: over 10% of a fully cached
    /// build). On by default; turn it off on hot paths that read the size elsewhere. The
    /// image id comes from the build metadata either way.
    pub fn read_size(mut self, on: bool) -> Build {
        self.read_size = on;
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

    /// The provenance attestation (`--provenance`).
    pub fn provenance(mut self, provenance: Provenance) -> Build {
        self.provenance = provenance;
        self
    }

    /// Attach an SBOM attestation (`--sbom=true`). BuildKit runs its scanner image
    /// (`docker/buildkit-syft-scanner`), which must be pullable by the builder.
    pub fn sbom(mut self, on: bool) -> Build {
        self.sbom = on;
        self
    }

    /// Adds another attestation, as buildx takes it (`--attest type=sbom,generator=IMAGE`).
    pub fn attest(mut self, attestation: impl Into<String>) -> Build {
        self.attest.push(attestation.into());
        self
    }

    /// The build context.
    pub fn get_context(&self) -> &Path {
        &self.context
    }

    /// The stage to build, if set.
    pub fn get_target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The image references the result is tagged with.
    pub fn get_tags(&self) -> &[String] {
        &self.tags
    }

    /// The build arguments.
    pub fn get_build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }

    /// The named build contexts.
    pub fn get_build_contexts(&self) -> &BTreeMap<String, String> {
        &self.build_contexts
    }

    /// The image labels.
    pub fn get_labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The target platforms (empty: the builder's own).
    pub fn get_platforms(&self) -> &[String] {
        &self.platforms
    }

    /// Where the result goes.
    pub fn get_output(&self) -> &Output {
        &self.output
    }

    /// The buildx builder, if set.
    pub fn get_builder(&self) -> Option<&str> {
        self.builder.as_deref()
    }
}

/// What a build produced, read from buildx's metadata file and the image store.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BuildResult {
    /// The first image name buildx reports (`docker.io/library/app:1.0`), if any.
    pub image_name: Option<String>,
    /// The tags the build was asked to apply, as given.
    pub tags: Vec<String>,
    /// The digest of the image manifest or index (`containerimage.digest`).
    pub digest: Option<String>,
    /// The local image id, when the image was loaded.
    pub image_id: Option<String>,
    /// The platforms built (`linux/amd64`, ...).
    pub platforms: Vec<String>,
    /// The image size in bytes in the local store, when loaded.
    pub size_bytes: Option<u64>,
    /// The buildx metadata JSON as written (empty object in a dry run).
    pub metadata: serde_json::Value,
    /// The command line run (secrets masked).
    pub command: String,
    /// True when nothing ran because of a dry run.
    pub dry_run: bool,
}

/// Name words that make a build arg look like a secret.
const SECRET_WORDS: [&str; 4] = ["TOKEN", "PASSWORD", "SECRET", "KEY"];

impl Build {
    /// The Dockerfile this build reads: `dockerfile`, or `<context>/Dockerfile`.
    pub fn dockerfile_path(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }

    /// Adds the `org.opencontainers.image.*` labels from [`oci_labels`].
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Build {
        self.labels.extend(labels);
        self
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

    /// The `docker buildx build` command line, in a fixed argument order.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "build"]);
        if let Some(builder) = &self.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        if let Some(progress) = &self.progress {
            cmd = cmd.arg(format!("--progress={progress}"));
        }
        if let Some(file) = &self.dockerfile {
            cmd = cmd.arg("--file").arg_path(file);
        }
        if let Some(target) = &self.target {
            cmd = cmd.args(["--target", target]);
        }
        if !self.platforms.is_empty() {
            cmd = cmd.arg("--platform").arg(self.platforms.join(","));
        }
        for tag in &self.tags {
            cmd = cmd.args(["--tag", tag]);
        }
        for (k, v) in &self.build_args {
            cmd = cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.labels {
            cmd = cmd.arg("--label").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.build_contexts {
            cmd = cmd.arg("--build-context").arg(format!("{k}={v}"));
        }
        for secret in &self.secrets {
            cmd = cmd.arg("--secret").arg(secret.to_arg());
        }
        if let Some(network) = &self.network {
            cmd = cmd.arg(format!("--network={network}"));
        }
        if self.pull {
            cmd = cmd.arg("--pull");
        }
        if self.no_cache {
            cmd = cmd.arg("--no-cache");
        }
        if let Some(value) = self.provenance_arg() {
            cmd = cmd.arg(format!("--provenance={value}"));
        }
        if self.sbom {
            cmd = cmd.arg("--sbom=true");
        }
        for attest in &self.attest {
            cmd = cmd.args(["--attest", attest]);
        }
        for cache in &self.cache_from {
            cmd = cmd.arg("--cache-from").arg(cache.to_from_arg());
        }
        for cache in &self.cache_to {
            cmd = cmd.arg("--cache-to").arg(cache.to_to_arg());
        }
        let rewrite = if self.rewrite_timestamp {
            ",rewrite-timestamp=true"
        } else {
            ""
        };
        cmd = match &self.output {
            Output::Default => cmd,
            Output::Load => cmd.arg("--load"),
            Output::Push if self.rewrite_timestamp => cmd
                .arg("--output")
                .arg(format!("type=image,push=true{rewrite}")),
            Output::Push => cmd.arg("--push"),
            Output::OciLayout(dir) => cmd.arg("--output").arg(format!(
                "type=oci,dest={},tar=false{rewrite}",
                dir.display()
            )),
            Output::Local(dir) => cmd
                .arg("--output")
                .arg(format!("type=local,dest={}", dir.display())),
            Output::Tar(file) => cmd
                .arg("--output")
                .arg(format!("type=tar,dest={}", file.display())),
            Output::PushByDigest(name) => cmd.arg("--output").arg(format!(
                "type=image,name={name},push-by-digest=true,name-canonical=true,push=true{rewrite}"
            )),
        };
        if let Some(file) = &self.metadata_file {
            cmd = cmd.arg("--metadata-file").arg_path(file);
        }
        cmd.args(self.extra_args.iter().cloned())
            .arg_path(&self.context)
    }

    /// The value of `--provenance`, when the build sets one.
    pub(crate) fn provenance_arg(&self) -> Option<&'static str> {
        match self.provenance {
            Provenance::Default => None,
            Provenance::Off => Some("false"),
            Provenance::Min => Some("mode=min"),
            Provenance::Max => Some("mode=max"),
        }
    }

    /// The pre-flight checks, with this process's environment: the Dockerfile exists,
    /// the target stage is in it, tags are valid references, no build arg looks like a
    /// secret, secret sources exist, caches have what they need.
    pub fn check(&self) -> anyhow::Result<()> {
        self.check_with_env(&|k| std::env::var(k).ok())
    }

    /// [`Build::check`] with the environment the runner gives its commands.
    fn check_for(&self, runner: &Runner) -> anyhow::Result<()> {
        let probe = Cmd::new("docker");
        self.check_with_env(&|k| runner.effective_env(&probe, k))
    }

    fn check_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let context = self.context.to_string_lossy();
        let remote = context.contains("://") || context.starts_with("git@") || context == "-";
        if !remote && !self.context.is_dir() {
            bail!(
                "build context `{}` is not a directory; set `context` to the directory the \
                 Dockerfile's COPY paths are relative to",
                self.context.display()
            );
        }
        if self.rewrite_timestamp
            && !matches!(
                self.output,
                Output::Push | Output::PushByDigest(_) | Output::OciLayout(_)
            )
        {
            bail!(
                "`rewrite_timestamp` needs an export that writes the image's blobs itself \
                 (Output::Push, Output::PushByDigest or Output::OciLayout); with {:?} the \
                 layers are unpacked into an image store, which refuses it (\"exporter \
                 option rewrite-timestamp conflicts with unpack\")",
                self.output
            );
        }
        let dockerfile = self.dockerfile_path();
        if !remote && !dockerfile.is_file() {
            bail!(
                "Dockerfile `{}` does not exist; set `dockerfile` to its path (the default \
                 is `Dockerfile` in the context)",
                dockerfile.display()
            );
        }
        if let (Some(target), false) = (&self.target, remote) {
            let stages = dockerfile::read_stages(&dockerfile)?;
            let wanted = target.to_ascii_lowercase();
            if !stages
                .iter()
                .any(|s| s.name.as_deref() == Some(wanted.as_str()))
            {
                bail!(
                    "target stage `{target}` is not in Dockerfile `{}`; its stages are: {}",
                    dockerfile.display(),
                    dockerfile::stage_list(&stages)
                );
            }
        }
        for tag in &self.tags {
            match ImageRef::parse(tag) {
                Err(e) => bail!("invalid tag `{tag}`: {}", e.problem),
                Ok(r) if r.digest.is_some() => bail!(
                    "invalid tag `{tag}`: a tag names an image to create and cannot carry a \
                     digest; drop the `@...` part"
                ),
                Ok(_) => {}
            }
        }
        for name in self.build_args.keys() {
            let upper = name.to_ascii_uppercase();
            if let Some(word) = SECRET_WORDS.iter().find(|w| upper.contains(*w)) {
                bail!(
                    "build arg `{name}` looks like a secret (its name contains `{word}`), and \
                     build args are readable in the image history; pass it as a build secret \
                     instead (`BuildSecret::env(\"{id}\", \"{name}\")`, read with \
                     `RUN --mount=type=secret,id={id}`)",
                    id = name.to_ascii_lowercase()
                );
            }
        }
        if self.provenance == Provenance::Max {
            for (name, value) in &self.build_args {
                if let Some(why) = looks_like_secret_value(value) {
                    bail!(
                        "build arg `{name}` has a value that looks like a secret ({why}), and \
                         `mode=max` provenance records every build arg's value in the image's \
                         attestation, readable by anyone who can pull it; pass it as a build \
                         secret (`BuildSecret::env`) or use `Provenance::Min`"
                    );
                }
            }
        }
        for secret in &self.secrets {
            if secret.id.is_empty() || secret.id.contains([',', '=']) {
                bail!(
                    "build secret id `{}` is not usable: it must be non-empty, without `,` or `=`",
                    secret.id
                );
            }
            match &secret.source {
                SecretSource::File(path) if !path.is_file() => bail!(
                    "build secret `{}` reads file `{}`, which does not exist",
                    secret.id,
                    path.display()
                ),
                SecretSource::Env(var) if env(var).is_none() => bail!(
                    "build secret `{}` reads the environment variable `{var}`, which is not set",
                    secret.id
                ),
                _ => {}
            }
        }
        if self
            .cache_from
            .iter()
            .any(|c| c.kind() == CacheKind::Inline)
        {
            bail!(
                "an inline cache cannot be a cache source: import it with \
                 `Cache::registry` naming the image that carries it"
            );
        }
        for cache in self.cache_from.iter().chain(&self.cache_to) {
            cache.check()?;
            let _checked = cache.resolve(env)?;
        }
        if let Output::PushByDigest(name) = &self.output {
            match ImageRef::parse(name) {
                Err(e) => bail!(
                    "invalid repository `{name}` to push by digest: {}",
                    e.problem
                ),
                Ok(r) if r.tag.is_some() || r.digest.is_some() => bail!(
                    "`{name}` names a tag or digest; a push by digest takes the repository \
                     alone (`{}`)",
                    r.name()
                ),
                Ok(_) => {}
            }
        }
        if self.output == Output::Push && self.tags.is_empty() {
            bail!("a pushed build needs at least one tag naming the registry and repository");
        }
        Ok(())
    }

    /// Checks, runs the build and reads its result. A multi-platform `--load` is refused
    /// when the engine has no containerd image store. Costs at most one `docker image
    /// inspect` (when loading) and one cached `docker info` (multi-platform load) besides
    /// the build.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<BuildResult> {
        self.check_for(runner)?;
        if self.output == Output::Load && self.platforms.len() > 1 && !runner.is_dry_run() {
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

        let mut build = self.clone();
        build.resolve_caches(runner)?;
        let (metadata_file, temp) = metadata_file(self.metadata_file.as_deref(), runner)?;
        build.metadata_file = metadata_file;
        let cmd = build.command();
        let what = self
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| self.context.display().to_string());
        let ran = runner.run(&cmd).map_err(|e| {
            // BuildKit reports a daemon that went away mid-build as "Canceled: context
            // canceled", as if the user had cancelled: when nobody did, ask the builder.
            let gone = match (&self.builder, &e.failure) {
                (Some(builder), crate::cmd::Failure::Exit(_))
                    if e.tail.iter().any(|l| {
                        l.contains("context canceled") || l.contains("context deadline exceeded")
                    }) =>
                {
                    super::builder::connection_error(runner, builder).map(|why| {
                        match super::builder::explain(&why, None, &Default::default()) {
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
            let scanner = self.sbom && e.tail.iter().any(|l| l.contains("buildkit-syft-scanner"));
            let err = anyhow::Error::new(e);
            if scanner {
                err.context(format!(
                    "cannot build image {what}: the builder cannot pull BuildKit's SBOM \
                     scanner image (docker/buildkit-syft-scanner); push it to a registry the \
                     builder reaches and name it with `.attest(\"type=sbom,generator=IMAGE\")` \
                     instead of `.sbom(true)`"
                ))
            } else {
                err.context(format!(
                    "cannot build image {what}{}",
                    gone.unwrap_or_default()
                ))
            }
        })?;
        let mut result = BuildResult {
            tags: self.tags.clone(),
            platforms: self.platforms.clone(),
            command: cmd.to_string(),
            dry_run: ran.dry_run,
            metadata: serde_json::Value::Object(Default::default()),
            ..BuildResult::default()
        };
        if ran.dry_run {
            return Ok(result);
        }
        let metadata_path = build.metadata_file.as_deref().unwrap_or(Path::new(""));
        let text = std::fs::read_to_string(metadata_path)
            .with_context(|| format!("cannot read build metadata {}", metadata_path.display()))?;
        drop(temp);
        let metadata: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("build metadata {} is not JSON", metadata_path.display()))?;
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
        Ok(result)
    }

    /// The plan as [`Build::run`] will run it with `runner`: like [`Planned::plan`], with
    /// each GitHub Actions cache's service (`version=1|2`) read from the runner's
    /// environment; fails as the run would when the runtime variables are missing. Asks
    /// nothing of the engine (the v2 builder check is the run's).
    pub fn plan_with(&self, runner: &Runner) -> anyhow::Result<Plan> {
        let mut build = self.clone();
        build.resolve_caches(&runner.clone().dry_run(true))?;
        Ok(build.plan())
    }

    /// Writes the GitHub Actions cache service each `gha` cache uses (`version=1|2`, read
    /// from the runner's environment), masks the runtime token, and (outside a dry run)
    /// refuses a v2 cache on a builder too old for it ([`cache::check_gha_v2`], asked
    /// once per runner and builder).
    fn resolve_caches(&mut self, runner: &Runner) -> anyhow::Result<()> {
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
        if v2 && !runner.is_dry_run() {
            let key = format!(
                "gha-v2 {} {}",
                self.builder.as_deref().unwrap_or(""),
                engine_host(runner)
            );
            if runner.known_answer(&key).is_none() {
                cache::check_gha_v2(runner, self.builder.as_deref())?;
                runner.keep_answer(&key, true);
            }
        }
        Ok(())
    }

    /// Registers secret values for redaction, so a tool echoing one cannot leak it into
    /// the terminal, the logs or an error.
    fn register_secret_values(&self, runner: &Runner) {
        let probe = Cmd::new("docker");
        for secret in &self.secrets {
            let value = match &secret.source {
                SecretSource::File(path) => std::fs::read(path).ok(),
                SecretSource::Env(var) => runner.effective_env(&probe, var).map(String::into_bytes),
            };
            if let Some(value) = value {
                runner.mask_bytes(&value);
            }
        }
    }
}

/// Why a build arg's value looks like a secret, if it does: a known token or key
/// prefix, a PEM block, or a long random-looking string (mixed case and digits, no
/// separators; hex strings such as commit hashes and digests do not count).
pub(crate) fn looks_like_secret_value(value: &str) -> Option<&'static str> {
    const PREFIXES: [(&str, &str); 9] = [
        ("ghp_", "a GitHub token"),
        ("gho_", "a GitHub token"),
        ("ghs_", "a GitHub token"),
        ("github_pat_", "a GitHub token"),
        ("glpat-", "a GitLab token"),
        ("xoxb-", "a Slack token"),
        ("xoxp-", "a Slack token"),
        ("sk_live_", "a Stripe key"),
        ("AKIA", "an AWS access key id"),
    ];
    let v = value.trim();
    if let Some((_, what)) = PREFIXES.iter().find(|(p, _)| v.starts_with(p)) {
        return Some(what);
    }
    if v.contains("-----BEGIN") {
        return Some("a PEM block");
    }
    let token_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '-'));
    let hex = v.chars().all(|c| c.is_ascii_hexdigit());
    let (upper, lower, digit) = (
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    );
    (v.len() >= 24 && token_chars && !hex && upper && lower && digit)
        .then_some("a long random-looking string")
}

/// Where buildx writes a run's metadata: `given`, else `metadata.json` in a new temporary
/// directory (deleted when the returned guard drops). Nothing in a dry run: its plan must
/// not show a path that differs on every run.
pub(crate) fn metadata_file(
    given: Option<&Path>,
    runner: &Runner,
) -> anyhow::Result<(Option<PathBuf>, Option<tempfile::TempDir>)> {
    match given {
        Some(path) => Ok((Some(path.to_path_buf()), None)),
        None if runner.is_dry_run() => Ok((None, None)),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("buildx-metadata-")
                .tempdir()
                .context("cannot create a temporary directory for the buildx metadata file")?;
            Ok((Some(dir.path().join("metadata.json")), Some(dir)))
        }
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

fn engine_host(runner: &Runner) -> String {
    runner
        .effective_env(&Cmd::new("docker"), "DOCKER_HOST")
        .unwrap_or_else(|| "the default socket".to_string())
}

/// `docker info --format '{{json .DriverStatus}}'`: how the engine stores images.
fn image_store_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["info", "--format", "{{json .DriverStatus}}"])
        .read_only()
}

/// Whether the engine stores images with the containerd image store (needed to load
/// multi-platform images). Asked once per engine by a runner and its clones: `docker info`.
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
    runner.keep_answer(&key, containerd);
    Ok(containerd)
}

impl Planned for Build {
    /// The engine's image store query (a multi-platform `--load`), the build command,
    /// and the image inspection that reads its size (a `--load` with
    /// [`Build::read_size`]). Without a [`Build::metadata_file`], [`Build::run`] adds
    /// `--metadata-file` with a temporary path, which the plan leaves out.
    fn plan(&self) -> Plan {
        let mut plan = Plan::new();
        if self.output == Output::Load && self.platforms.len() > 1 {
            plan = plan
                .query(image_store_cmd())
                .note("refused unless the engine keeps images in the containerd image store");
        }
        if self
            .cache_from
            .iter()
            .chain(&self.cache_to)
            .any(|c| c.kind() == CacheKind::Gha)
        {
            plan = plan.note(
                "the GitHub Actions cache service (v1 or v2) is read from the environment; \
                 a v2 cache is refused on a builder too old for it",
            );
        }
        plan = plan.run(self.command());
        if self.output == Output::Load && self.read_size {
            if let Some(tag) = self.tags.first() {
                plan = plan.query(super::image::inspect_cmd(tag));
            }
        }
        plan
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_labels_fill_the_standard_keys() {
        let labels = oci_labels("webapp", "0.9.2", "abc123", "2026-01-01T00:00:00Z", "");
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    "org.opencontainers.image.created".into(),
                    "2026-01-01T00:00:00Z".into()
                ),
                ("org.opencontainers.image.revision".into(), "abc123".into()),
                ("org.opencontainers.image.title".into(), "webapp".into()),
                ("org.opencontainers.image.version".into(), "0.9.2".into()),
            ]
        );
    }

    #[test]
    fn session_labels_become_labels() {
        let session = Session {
            project: "webapp".into(),
            run_id: "r1".into(),
        };
        let build = Build::new(".").with_session_labels(&session);
        assert_eq!(build.labels["dev.buildkit-lib.project"], "webapp");
        assert_eq!(build.labels["dev.buildkit-lib.run"], "r1");
    }

    #[test]
    fn secret_looking_build_args_and_gha_without_token_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS a\n").unwrap();
        let mut build = Build {
            context: dir.path().into(),
            ..Build::new(".")
        };
        build.build_args.insert("Api_Key".into(), "x".into());
        assert_eq!(
            build.check_with_env(&|_| None).unwrap_err().to_string(),
            "build arg `Api_Key` looks like a secret (its name contains `KEY`), and build \
             args are readable in the image history; pass it as a build secret instead \
             (`BuildSecret::env(\"api_key\", \"Api_Key\")`, read with \
             `RUN --mount=type=secret,id=api_key`)"
        );
        build.build_args.clear();
        build
            .cache_to
            .push(Cache::gha().scope("web").mode_max(true));
        assert_eq!(
            format!("{:#}", build.check_with_env(&|_| None).unwrap_err()),
            "cache `type=gha,scope=web,mode=max` cannot be used: the gha cache needs the \
             GitHub Actions runtime (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL), and this \
             process is not in a GitHub Actions job (GITHUB_ACTIONS is not `true`); use a \
             registry or local cache here"
        );
        assert!(build.check_with_env(&|_| Some("set".into())).is_ok());
        build.secrets.push(BuildSecret::env("tok", "NOPE_VAR"));
        assert_eq!(
            build
                .check_with_env(&|k| (k != "NOPE_VAR").then(|| "x".into()))
                .unwrap_err()
                .to_string(),
            "build secret `tok` reads the environment variable `NOPE_VAR`, which is not set"
        );
    }

    #[test]
    fn other_bad_input_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS a\n").unwrap();
        let base = Build {
            context: dir.path().into(),
            ..Build::new(".")
        };
        let err = |b: Build| b.check_with_env(&|_| None).unwrap_err().to_string();
        let digest = format!("app@sha256:{}", "0".repeat(64));
        assert_eq!(
            err(Build {
                tags: vec![digest.clone()],
                ..base.clone()
            }),
            format!(
                "invalid tag `{digest}`: a tag names an image to create and cannot carry a \
                 digest; drop the `@...` part"
            )
        );
        assert_eq!(
            err(Build {
                cache_from: vec![Cache::inline()],
                ..base.clone()
            }),
            "an inline cache cannot be a cache source: import it with `Cache::registry` \
             naming the image that carries it"
        );
        assert_eq!(
            err(Build {
                output: Output::Push,
                ..base.clone()
            }),
            "a pushed build needs at least one tag naming the registry and repository"
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            err(Build {
                context: missing.clone(),
                ..base.clone()
            }),
            format!(
                "build context `{}` is not a directory; set `context` to the directory the \
                 Dockerfile's COPY paths are relative to",
                missing.display()
            )
        );
        assert_eq!(
            err(Build {
                secrets: vec![BuildSecret::file("pip", dir.path().join("pip.conf"))],
                ..base.clone()
            }),
            format!(
                "build secret `pip` reads file `{}`, which does not exist",
                dir.path().join("pip.conf").display()
            )
        );
        // A target matches case-insensitively, as BuildKit matches stage names.
        assert!(Build {
            target: Some("A".into()),
            ..base.clone()
        }
        .check_with_env(&|_| None)
        .is_ok());
        // A remote context is not looked for on disk.
        assert!(Build {
            context: "https://example.org/repo.git#main".into(),
            ..Build::new(".")
        }
        .check_with_env(&|_| None)
        .is_ok());
    }

    #[test]
    fn attestations_render_as_buildx_flags() {
        let mut build = Build {
            context: PathBuf::from("/src"),
            output: Output::Push,
            tags: vec!["127.0.0.1:5000/app:1".into()],
            ..Build::new(".")
        };
        let line = |b: &Build| b.command().to_string();
        assert!(!line(&build).contains("--provenance"));
        build.provenance = Provenance::Off;
        assert!(line(&build).contains(" --provenance=false "));
        build.provenance = Provenance::Min;
        assert!(line(&build).contains(" --provenance=mode=min "));
        build.provenance = Provenance::Max;
        build.sbom = true;
        build.attest = vec!["type=sbom,generator=127.0.0.1:5000/scanner".into()];
        assert!(
            line(&build).contains(
                " --provenance=mode=max --sbom=true --attest type=sbom,generator=127.0.0.1:5000/scanner "
            ),
            "{}",
            line(&build)
        );
    }

    #[test]
    fn secret_looking_values_are_told_from_commits_versions_and_images() {
        for secret in [
            "ghp_0123456789abcdefABCDEF0123456789abcd",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "q8Xz2LmP0vR7tY4wK9sN3bH6jD1fG5cA",
        ] {
            assert!(looks_like_secret_value(secret).is_some(), "{secret}");
        }
        for plain in [
            "3f9c2a7e1b8d4c6f0a5e9b2d7c1f8a4e6b3d9c0f",
            "sha256:4cc5addefaae8fe4cd4b9a3ed94cf7ead5a1b6ea9f00190073341c9ff6d9c71c",
            "buildkit-local/python:3.11",
            "1.2.3rc1",
            "production",
            "2026-11-30T21:33:28Z",
        ] {
            assert_eq!(looks_like_secret_value(plain), None, "{plain}");
        }
    }

    #[test]
    fn max_provenance_refuses_a_secret_looking_build_arg_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut build = Build {
            context: dir.path().to_path_buf(),
            provenance: Provenance::Max,
            ..Build::new(".")
        };
        build
            .build_args
            .insert("UPSTREAM".into(), "glpat-abcdefghij0123456789".into());
        let err = build.check().unwrap_err().to_string();
        assert!(
            err.contains("build arg `UPSTREAM`")
                && err.contains("a GitLab token")
                && err.contains("mode=max")
                && !err.contains("glpat-abcdefghij"),
            "{err}"
        );
        build.provenance = Provenance::Min;
        build.check().unwrap();
    }

    #[test]
    fn metadata_rows_read_the_digests_and_names() {
        let metadata = serde_json::json!({"buildx.build.ref": "default/default/x",
            "containerimage.digest": "sha256:d", "containerimage.config.digest": "sha256:c",
            "image.name": "web:1,web:latest"});
        let row: BuildMetadataRow = crate::rows::from_value(&metadata, "build metadata m").unwrap();
        assert_eq!(row.digest.as_deref(), Some("sha256:d"));
        assert_eq!(row.config_digest.as_deref(), Some("sha256:c"));
        assert_eq!(row.image_name.as_deref(), Some("web:1,web:latest"));
        let e = crate::rows::from_value::<BuildMetadataRow>(
            &serde_json::json!({"image.name": ["web:1"]}),
            "build metadata m",
        )
        .unwrap_err();
        assert!(format!("{e:#}").starts_with("build metadata m is JSON of an unexpected shape"));
    }
}
