//! [`Stages`]: the three images of a PyInstaller release (base, runtime, package), each
//! a named, tagged image that can be built, cached and rebuilt on its own.
//!
//! Each stage is a `docker buildx build --target <stage>` of the project's Dockerfile,
//! tagged and labelled; the layer cache makes an unchanged earlier stage free. With
//! [`Stages::from_tagged_images`] a later stage is built from the *tagged image* of the
//! one before instead (a named build context `base=docker-image://<tag>` replaces the
//! Dockerfile's stage), as when CI pulls a prebuilt base image.

use std::collections::BTreeMap;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

#[cfg(test)]
use crate::cmd::Cmd;
use crate::docker::build::{Build, Output};
use crate::docker::cache::{Cache, CacheKind};
use crate::session::Session;

/// One stage of the release Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// System libraries PyInstaller needs (`libpython3.x`, binutils).
    Base,
    /// A virtual environment with PyInstaller and the app's dependencies.
    Runtime,
    /// PyInstaller run over the source, the result in `/out`.
    Package,
    /// `FROM scratch` with `/out` alone, for `--output type=local`.
    Artifact,
}

impl Stage {
    /// The default stage name in the Dockerfile.
    pub(crate) fn default_name(self) -> &'static str {
        match self {
            Stage::Base => "base",
            Stage::Runtime => "runtime",
            Stage::Package => "package",
            Stage::Artifact => "artifact",
        }
    }

    /// The stage this one is built from, if any.
    pub(crate) fn parent(self) -> Option<Stage> {
        match self {
            Stage::Base => None,
            Stage::Runtime => Some(Stage::Base),
            Stage::Package => Some(Stage::Runtime),
            Stage::Artifact => Some(Stage::Runtime),
        }
    }
}

/// The release Dockerfile and the images its stages become.
///
/// Made from a [`Build`] of the project ([`Stages::new`]): its context, Dockerfile, build
/// arguments, network, `no_cache` and every other setting apply to each stage's build,
/// whose target, tags and output are the stage's own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Stages {
    /// The build every stage's build starts from: the context (the project root, holding
    /// the source), the Dockerfile, build arguments (`PYTHON_IMAGE`, versions), the
    /// network of `RUN` steps (`host` where the engine has no bridge and pip or apt must
    /// reach the network), `no_cache`...
    pub(crate) build: Build,
    /// Stage names in the Dockerfile, when they differ from [`Stage::default_name`].
    pub(crate) names: BTreeMap<Stage, String>,
    /// The image each stage is tagged as.
    pub(crate) images: BTreeMap<Stage, String>,
    /// Build each stage from the tagged image of the previous one rather than from the
    /// Dockerfile. Off by default: the images carry this run's labels, so a parent image
    /// differs on every run and would invalidate the cache of every stage after it.
    pub(crate) from_tagged_images: bool,
    /// A directory of wheels the runtime stage installs from, offline: passed as the
    /// named build context [`WHEELS_CONTEXT`] with the build arg `PIP_OFFLINE=1`.
    pub(crate) wheelhouse: Option<PathBuf>,
    /// A build cache per stage, read before and written after its build (`--cache-from`
    /// and `--cache-to` of the same cache).
    pub(crate) caches: BTreeMap<Stage, Cache>,
}

/// The named build context a wheelhouse is passed as.
pub(crate) const WHEELS_CONTEXT: &str = "wheels";

/// `python -m pip download` of `requirements` (binary wheels only) into `dir`: the
/// wheelhouse for an offline runtime build. Run it with an interpreter of the image's
/// Python version and platform.
#[cfg(test)]
pub(crate) fn download_wheels_command<I, S>(python: &str, dir: &Path, requirements: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Cmd::new(python)
        .args(["-m", "pip", "download", "--only-binary=:all:", "--dest"])
        .arg_path(dir)
        .args(requirements)
}

impl Stages {
    /// The stages of `build`'s Dockerfile (`Build::new(context)` with the settings every
    /// stage shares: `dockerfile`, `build_arg`, `network`, `no_cache`...), tagged
    /// `<image>:base`, `<image>:runtime` and `<image>:package`. Its target, tags and
    /// output are replaced by each stage's. Its `no_cache` also reaches the isolated
    /// package build of a [`Package`](super::Package) made with these stages, and empties
    /// the incremental packaging state of the mounted mode, whose PyInstaller always runs
    /// with `--clean`.
    pub fn new(build: Build, image: &str) -> Stages {
        let images = [Stage::Base, Stage::Runtime, Stage::Package]
            .into_iter()
            .map(|s| (s, format!("{image}:{}", s.default_name())))
            .collect();
        Stages {
            build,
            names: BTreeMap::new(),
            images,
            from_tagged_images: false,
            wheelhouse: None,
            caches: BTreeMap::new(),
        }
    }

    /// Reads and writes `stage`'s build cache at `cache`.
    pub fn cache(mut self, stage: Stage, cache: Cache) -> Stages {
        self.caches.insert(stage, cache);
        self
    }

    /// Installs the runtime stage's packages offline from the wheels in `dir`.
    pub fn wheelhouse(self, dir: impl Into<PathBuf>) -> Stages {
        Stages {
            wheelhouse: Some(dir.into()),
            ..self
        }
    }

    /// Builds each stage from the tagged image of the previous one (see the field).
    pub fn from_tagged_images(self, on: bool) -> Stages {
        Stages {
            from_tagged_images: on,
            ..self
        }
    }

    /// The Dockerfile's name of `stage`, when it is not the default (`base`, `runtime`,
    /// `package`, `artifact`).
    pub fn stage_name(mut self, stage: Stage, name: impl Into<String>) -> Stages {
        self.names.insert(stage, name.into());
        self
    }

    /// The stage's name in the Dockerfile.
    pub(crate) fn name(&self, stage: Stage) -> String {
        self.names
            .get(&stage)
            .cloned()
            .unwrap_or_else(|| stage.default_name().to_string())
    }

    /// The image a stage is tagged as (the artifact stage has none).
    pub(crate) fn image(&self, stage: Stage) -> Option<&str> {
        self.images.get(&stage).map(String::as_str)
    }

    /// The build of one stage: `--target`, the session labels, loaded into the image
    /// store under its tag; with [`Stages::from_tagged_images`], the previous stage's
    /// image as a named build context. Build the base and runtime images with it before
    /// packaging: `stages.build(Stage::Runtime, &session).run(&runner)?` (in a pipeline
    /// step, `cx.session` and `cx.runner`).
    pub fn build(&self, stage: Stage, session: &Session) -> Build {
        let mut build = Build {
            target: Some(self.name(stage)),
            tags: self.image(stage).map(str::to_string).into_iter().collect(),
            output: Output::Load,
            ..self.build.clone()
        }
        .with_session_labels(session);
        if let Some(cache) = self.caches.get(&stage) {
            if cache.kind() != CacheKind::Inline {
                build.cache_from.push(cache.clone());
            }
            build.cache_to.push(cache.clone());
        }
        if let (Some(dir), true) = (&self.wheelhouse, stage >= Stage::Runtime) {
            build
                .build_contexts
                .insert(WHEELS_CONTEXT.into(), dir.display().to_string());
            build.build_args.insert("PIP_OFFLINE".into(), "1".into());
        }
        if let (true, Some(parent)) = (self.from_tagged_images, stage.parent()) {
            if let Some(image) = self.image(parent) {
                build
                    .build_contexts
                    .insert(self.name(parent), format!("docker-image://{image}"));
            }
        }
        build
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_stage_builds() {
        let session = Session {
            project: "deskapp".into(),
            run_id: "r1".into(),
        };
        let stages = Stages::new(
            Build::new("app")
                .build_arg("PYTHON_IMAGE", "local/python:3.11")
                .network("host"),
            "deskapp",
        );
        assert_eq!(
            stages.build(Stage::Base, &session).command().to_string(),
            "docker buildx build --progress=rawjson --target base --tag deskapp:base \
             --build-arg PYTHON_IMAGE=local/python:3.11 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --network=host --load app"
        );
        assert_eq!(
            stages.build(Stage::Runtime, &session).command().to_string(),
            "docker buildx build --progress=rawjson --target runtime --tag deskapp:runtime \
             --build-arg PYTHON_IMAGE=local/python:3.11 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --network=host --load app"
        );
        assert_eq!(
            stages
                .from_tagged_images(true)
                .build(Stage::Runtime, &session)
                .command()
                .to_string(),
            "docker buildx build --progress=rawjson --target runtime --tag deskapp:runtime \
             --build-arg PYTHON_IMAGE=local/python:3.11 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --build-context base=docker-image://deskapp:base --network=host --load app"
        );
        let offline = Stages::new(Build::new("app").network("none"), "deskapp")
            .wheelhouse("wheels-dir")
            .cache(Stage::Runtime, Cache::local("cache/runtime"));
        assert_eq!(
            offline
                .build(Stage::Runtime, &session)
                .command()
                .to_string(),
            "docker buildx build --progress=rawjson --target runtime --tag deskapp:runtime \
             --build-arg PIP_OFFLINE=1 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --build-context wheels=wheels-dir --network=none \
             --cache-from type=local,src=cache/runtime --cache-to type=local,dest=cache/runtime \
             --load app"
        );
        assert_eq!(
            download_wheels_command("python3", Path::new("w"), ["pyinstaller==6.11.1"]).to_string(),
            "python3 -m pip download --only-binary=:all: --dest w pyinstaller==6.11.1"
        );
    }

    #[test]
    fn a_renamed_stage_is_the_target_and_the_build_context_name_of_its_child() {
        let session = Session {
            project: "deskapp".into(),
            run_id: "r1".into(),
        };
        let stages = Stages::new(Build::new("app"), "deskapp")
            .stage_name(Stage::Base, "system")
            .stage_name(Stage::Runtime, "venv")
            .from_tagged_images(true);
        assert_eq!(
            stages.build(Stage::Base, &session).command().to_string(),
            "docker buildx build --progress=rawjson --target system --tag deskapp:base \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --load app"
        );
        assert_eq!(
            stages.build(Stage::Runtime, &session).command().to_string(),
            "docker buildx build --progress=rawjson --target venv --tag deskapp:runtime \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --build-context system=docker-image://deskapp:base --load app"
        );
        assert_eq!(stages.name(Stage::Package), "package");
    }

    #[test]
    fn another_dockerfile_is_passed_to_every_stage_build() {
        let session = Session {
            project: "deskapp".into(),
            run_id: "r1".into(),
        };
        let stages = Stages::new(
            Build::new("app").dockerfile("app/Dockerfile.desktop"),
            "deskapp",
        );
        for stage in [Stage::Base, Stage::Runtime] {
            let line = stages.build(stage, &session).command().to_string();
            assert!(line.contains(" --file app/Dockerfile.desktop "), "{line}");
        }
        let line = Stages::new(Build::new("app"), "deskapp")
            .build(Stage::Base, &session)
            .command()
            .to_string();
        assert!(!line.contains("--file"), "{line}");
    }
}
