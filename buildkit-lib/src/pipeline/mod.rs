//! Pipelines: steps with dependencies run in parallel, skipped when up to date, with logs and reports.
//!
//! A [`Pipeline`] is a list of named steps, each a closure over a [`StepCx`] (a runner
//! logging to the step's own file, the run's [`Session`](crate::Session), and a place to
//! record images and artifacts). [`Pipeline::run`] checks the graph, takes a lock, runs
//! independent steps side by side, skips steps whose declared inputs are unchanged, and
//! writes `report.json`. The fingerprinting lives in `fingerprint.rs`, the report in
//! `report.rs`, the scheduler in `run.rs`. Image builds added with [`Pipeline::image_build`]
//! can also be exported as one `docker-bake.json` ([`Pipeline::bake_file`]).

pub(crate) mod filehash;
pub(crate) mod fingerprint;
mod graph;
mod lock;
mod preflight;
pub(crate) mod report;
mod run;
mod terminal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;

use crate::docker::bake::{sanitize_name, BakeFile};
use crate::docker::build::Build;

pub use fingerprint::Inputs;
use fingerprint::OutputKind;
use fingerprint::StepOutput;
pub use preflight::EngineUnavailable;
pub use report::{ArtifactRecord, ImageRecord, Report, StepRecord, StepStatus};
use run::RunOptions;
pub use run::{PipelineError, StepCx};

/// The body of a step.
pub(crate) type StepFn = Arc<dyn Fn(&mut StepCx) -> anyhow::Result<()> + Send + Sync>;

/// One named step: what it runs, what it waits for, and what makes it up to date.
#[derive(Clone)]
pub struct Step {
    name: String,
    deps: Vec<String>,
    body: StepFn,
    inputs: Option<Inputs>,
    output: Option<StepOutput>,
    description: Option<String>,
    build: Option<Build>,
    needs_engine: bool,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("deps", &self.deps)
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .finish()
    }
}

impl Step {
    /// Marks the step as one that talks to the Docker engine: the pipeline then checks the
    /// engine once, before any step runs. Steps added with [`Pipeline::image_build`] and
    /// steps with an [`output_image`](Step::output_image) are marked already.
    pub fn needs_engine(&mut self) -> &mut Step {
        self.needs_engine = true;
        self
    }

    /// Whether the pipeline checks the engine before running this step.
    pub(crate) fn uses_engine(&self) -> bool {
        self.needs_engine
            || self.build.is_some()
            || matches!(self.output, Some(StepOutput(OutputKind::Image(_))))
    }

    /// Runs after the named steps have succeeded.
    pub fn after<I, S>(&mut self, deps: I) -> &mut Step
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deps.extend(deps.into_iter().map(Into::into));
        self
    }

    /// Declares the step's inputs: when their fingerprint matches the one recorded after
    /// the step last succeeded, and its output (if declared) still exists, the step is
    /// `up-to-date` and not run. A check with inputs and no output (a format check) is
    /// skipped when it already passed on the same inputs. Called again, it adds to them;
    /// an image build added with [`Pipeline::image_build`] starts with
    /// [`Inputs::of_build`].
    pub fn inputs(&mut self, inputs: Inputs) -> &mut Step {
        self.inputs = Some(match self.inputs.take() {
            Some(had) => had.merge(inputs),
            None => inputs,
        });
        self
    }

    /// Declares that the step produces the image `tag`, which the engine must still have
    /// for the step to be up to date (and marks the step as one that needs the engine).
    pub fn output_image(&mut self, tag: impl Into<String>) -> &mut Step {
        self.output = Some(StepOutput::image(tag));
        self
    }

    /// Declares that the step produces the directory `path`, which must still exist and
    /// not be empty for the step to be up to date.
    pub fn output_dir(&mut self, path: impl Into<PathBuf>) -> &mut Step {
        self.output = Some(StepOutput::dir(path));
        self
    }

    /// A one-line description shown in plans.
    pub fn describe(&mut self, text: impl Into<String>) -> &mut Step {
        self.description = Some(text.into());
        self
    }
}

/// A named set of steps.
#[derive(Clone, Debug)]
pub struct Pipeline {
    name: String,
    steps: Vec<Step>,
    target_dir: PathBuf,
    options: RunOptions,
}

impl Pipeline {
    /// An empty pipeline; its logs, state and report go under
    /// `<target_dir>/buildkit/<name>/`.
    pub fn new(name: impl Into<String>, target_dir: impl Into<PathBuf>) -> Pipeline {
        Pipeline {
            name: name.into(),
            steps: Vec::new(),
            target_dir: target_dir.into(),
            options: RunOptions::default(),
        }
    }

    /// Adds a step that runs one [`plan::Step`](crate::plan::Step) value, and returns it
    /// for `.after(..)`, `.inputs(..)`. The step fails when the value's run fails or when
    /// its output does not pass the value's own
    /// [`judge`](crate::plan::Step::judge) (a size over its maximum, a scan over its
    /// threshold, builds that differ); the value's
    /// [`summary`](crate::plan::Step::summary) of its output goes to the step's log and
    /// the terminal. A dry run records the same body: its plan is what the step does;
    /// nothing is measured, so it gives no summary and no verdict.
    pub fn add<S>(&mut self, name: impl Into<String>, step: S) -> &mut Step
    where
        S: crate::plan::Step + Send + Sync + 'static,
    {
        self.step(name, move |cx| {
            let output = step.run(&cx.runner)?;
            if cx.dry_run {
                return Ok(());
            }
            if let Some(summary) = step.summary(&output) {
                cx.runner.note(&summary);
            }
            step.judge(&output)
        })
    }

    /// Adds a step and returns it for `.after(..)`, `.inputs(..)`, `.output_image(..)`.
    pub fn step<F>(&mut self, name: impl Into<String>, body: F) -> &mut Step
    where
        F: Fn(&mut StepCx) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        self.steps.push(Step {
            name: name.into(),
            deps: Vec::new(),
            body: Arc::new(body),
            inputs: None,
            output: None,
            description: None,
            build: None,
            needs_engine: false,
        });
        self.steps.last_mut().expect("just pushed")
    }

    /// Adds a step that runs `build` (with the run's session labels) and records the
    /// image as `record_name` in the report, with BuildKit's record of the build (its
    /// reference, and its cached and total steps or its error where buildx keeps build
    /// records); its output is the build's first tag. The
    /// pipeline keeps the build, for [`Pipeline::bake_file`].
    pub fn image_build(
        &mut self,
        name: impl Into<String>,
        build: Build,
        record_name: impl Into<String>,
    ) -> &mut Step {
        let name = name.into();
        let (kept, record_name) = (build.clone(), record_name.into());
        let first_tag = build.tags.first().cloned();
        let why = self
            .dir()
            .join("why")
            .join(format!("{}.json", run::file_stem(&name)));
        let step = self.step(name, move |cx| {
            let ran = build
                .clone()
                .with_session_labels(&cx.session)
                .explain_record(&why)
                .run_in(&cx.runner, cx.file_hashes.clone());
            let result = match ran {
                Ok(result) => result,
                Err(e) => {
                    if let Some(failed) = e.downcast_ref::<crate::docker::build::BuildFailed>() {
                        cx.add_build(failed.record.clone());
                    }
                    // The image was made, the required cache was not written: the report
                    // keeps the explanation and says which cache.
                    if let Some(failed) =
                        e.downcast_ref::<crate::docker::explain::CacheExportFailed>()
                    {
                        if let Some(explanation) = &failed.result.explanation {
                            cx.add_explanation(explanation);
                        }
                        cx.add_build_warnings(&failed.result);
                    }
                    return Err(e);
                }
            };
            if let Some(explanation) = &result.explanation {
                cx.add_explanation(explanation);
            }
            cx.add_build_warnings(&result);
            cx.add_build(result.record.clone());
            cx.add_image(record_name.clone(), &result);
            Ok(())
        });
        step.inputs = Some(Inputs::of_build(&kept));
        step.build = Some(kept);
        if let Some(tag) = first_tag {
            step.output_image(tag);
        }
        step
    }

    /// The pipeline's image builds as one bake file that lives in `dir` (its paths are
    /// written relative to it; [`Pipeline::dir`] is where `docker-bake.json` belongs to the
    /// pipeline): one target per [`Pipeline::image_build`] step, named after the step (in
    /// bake's charset: `image[3.11]` becomes `image-3-11`), and a `default` group of all
    /// of them. Session labels are not included: see [`BakeFile::with_session_labels`].
    pub fn bake_file(&self, dir: &Path) -> anyhow::Result<BakeFile> {
        let mut file = BakeFile::new(dir);
        let mut names: std::collections::BTreeMap<String, &str> = Default::default();
        for step in &self.steps {
            let Some(build) = &step.build else {
                continue;
            };
            let target = sanitize_name(&step.name);
            if let Some(other) = names.insert(target.clone(), &step.name) {
                bail!(
                    "steps `{other}` and `{}` of pipeline `{}` would both be bake target \
                     `{target}`; rename one of them",
                    step.name,
                    self.name
                );
            }
            file.build(&target, build)?;
        }
        if names.is_empty() {
            bail!(
                "pipeline `{}` has no image builds to export to a bake file; add them with \
                 `Pipeline::image_build`",
                self.name
            );
        }
        Ok(file)
    }

    /// Where logs, state and the report of this pipeline live.
    pub fn dir(&self) -> PathBuf {
        self.target_dir.join("buildkit").join(&self.name)
    }
}
