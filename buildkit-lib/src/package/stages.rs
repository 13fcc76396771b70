//! [`Stages`]: the three images of a PyInstaller release (base, runtime, package), each
//! a named, tagged image that can be built, cached and rebuilt on its own.
//!
//! Each stage is a `docker buildx build --target <stage>` of the project's Dockerfile.
//! A later stage is built *from the tagged image* of the one before (a named build
//! context `base=docker-image://<base tag>` replaces the Dockerfile's stage), so
//! rebuilding the runtime does not rebuild the base, as in the seed's separate steps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::Runner;
use crate::docker::build::{Build, BuildResult, Output};
use crate::session::Session;

/// One stage of the release Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub fn default_name(self) -> &'static str {
        match self {
            Stage::Base => "base",
            Stage::Runtime => "runtime",
            Stage::Package => "package",
            Stage::Artifact => "artifact",
        }
    }

    /// The stage this one is built from, if any.
    pub fn parent(self) -> Option<Stage> {
        match self {
            Stage::Base => None,
            Stage::Runtime => Some(Stage::Base),
            Stage::Package => Some(Stage::Runtime),
            Stage::Artifact => Some(Stage::Runtime),
        }
    }
}

/// The release Dockerfile and the images its stages become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// The build context (the project root, holding the source).
    pub context: PathBuf,
    /// The Dockerfile, if not `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// Stage names in the Dockerfile, when they differ from [`Stage::default_name`].
    pub names: BTreeMap<Stage, String>,
    /// The image each stage is tagged as.
    pub images: BTreeMap<Stage, String>,
    /// Build arguments for every stage (`PYTHON_IMAGE`, versions).
    pub build_args: BTreeMap<String, String>,
    /// Network for `RUN` steps of the base and runtime stages (`host` where the engine
    /// has no bridge and pip or apt must reach the network).
    pub network: Option<String>,
    /// Ignore the build cache.
    pub no_cache: bool,
}

impl Stages {
    /// The stages of `context/Dockerfile`, tagged `<image>:base`, `<image>:runtime` and
    /// `<image>:package`.
    pub fn new(context: impl Into<PathBuf>, image: &str) -> Stages {
        let images = [Stage::Base, Stage::Runtime, Stage::Package]
            .into_iter()
            .map(|s| (s, format!("{image}:{}", s.default_name())))
            .collect();
        Stages {
            context: context.into(),
            dockerfile: None,
            names: BTreeMap::new(),
            images,
            build_args: BTreeMap::new(),
            network: None,
            no_cache: false,
        }
    }

    /// Sets a build argument.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Stages {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Sets the network of `RUN` steps.
    pub fn network(self, network: impl Into<String>) -> Stages {
        Stages {
            network: Some(network.into()),
            ..self
        }
    }

    /// The stage's name in the Dockerfile.
    pub fn name(&self, stage: Stage) -> String {
        self.names
            .get(&stage)
            .cloned()
            .unwrap_or_else(|| stage.default_name().to_string())
    }

    /// The image a stage is tagged as (the artifact stage has none).
    pub fn image(&self, stage: Stage) -> Option<&str> {
        self.images.get(&stage).map(String::as_str)
    }

    /// The build of one stage: `--target`, the previous stage's image as a named build
    /// context, the session labels; loaded into the image store under its tag.
    pub fn build(&self, stage: Stage, session: &Session) -> Build {
        let mut build = Build {
            context: self.context.clone(),
            dockerfile: self.dockerfile.clone(),
            target: Some(self.name(stage)),
            build_args: self.build_args.clone(),
            network: self.network.clone(),
            no_cache: self.no_cache,
            output: Output::Load,
            ..Build::default()
        }
        .with_session_labels(session);
        if let Some(image) = self.image(stage) {
            build.tags.push(image.to_string());
        }
        if let Some(parent) = stage.parent() {
            if let Some(image) = self.image(parent) {
                build
                    .build_contexts
                    .insert(self.name(parent), format!("docker-image://{image}"));
            }
        }
        build
    }

    /// Builds the base image.
    pub fn build_base(&self, runner: &Runner, session: &Session) -> Result<BuildResult> {
        self.build(Stage::Base, session).run(runner)
    }

    /// Builds the runtime image from the base image.
    pub fn build_runtime(&self, runner: &Runner, session: &Session) -> Result<BuildResult> {
        self.build(Stage::Runtime, session).run(runner)
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
        let stages = Stages::new("app", "deskapp")
            .build_arg("PYTHON_IMAGE", "local/python:3.11")
            .network("host");
        assert_eq!(
            stages.build(Stage::Base, &session).command().to_string(),
            "docker buildx build --progress=plain --target base --tag deskapp:base \
             --build-arg PYTHON_IMAGE=local/python:3.11 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --network=host --load app"
        );
        assert_eq!(
            stages.build(Stage::Runtime, &session).command().to_string(),
            "docker buildx build --progress=plain --target runtime --tag deskapp:runtime \
             --build-arg PYTHON_IMAGE=local/python:3.11 \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --build-context base=docker-image://deskapp:base --network=host --load app"
        );
    }
}
