//! What explaining a build costs (`explain_overhead`): a fully cached build of the
//! production-shaped mediaserver image with its explanation against the same build with
//! `.explain(false)`. (The in-process comparison of a one-file change in its 5,214-file
//! context is the library's unit test `a_change_in_the_mediaserver_context_names_the_file`:
//! the comparison's inputs are crate-private.)

use anyhow::{bail, Result};
use buildkit_lib::pipeline::{Pipeline, RunOptions, StepStatus};

use super::Bench;

impl Bench {
    /// A forced, fully cached run of the mediaserver's image step (the build
    /// `cargo xtask mediaserver` runs, in a pipeline of its own), explained or not.
    fn mediaserver_step(&self, explained: bool) -> Result<()> {
        let build = crate::mediaserver::image_build(&self.root)
            .explain(explained)
            // The size is read by its own step; both sides skip it.
            .read_size(false);
        let name = if explained { "explained" } else { "plain" };
        let mut pipeline = Pipeline::new(
            format!("bench-explain-{name}"),
            self.root.join("target/buildkit/bench"),
        );
        pipeline.image_build("image", build, "mediaserver");
        let report = pipeline.run(&self.runner, &RunOptions::new("bench").force(true).jobs(1))?;
        let step = &report.steps[0];
        if step.status != StepStatus::Ok {
            bail!(
                "the mediaserver step did not run: {:?} {:?}",
                step.status,
                step.error
            );
        }
        match (explained, step.why.as_deref()) {
            (true, Some(why)) if why.ends_with("nothing rebuilt") => Ok(()),
            (false, None) => Ok(()),
            (_, why) => bail!("the mediaserver step was not the cached build asked: {why:?}"),
        }
    }

    pub(super) fn explain_overhead(&mut self) -> Result<()> {
        self.runner
            .run(&crate::mediaserver::generate_cmd(&self.root))?;
        // The first explained run may build, and leaves the record the next ones compare
        // with.
        self.mediaserver_step(true)?;
        let (xs, ys) = self.paired(
            || self.mediaserver_step(true),
            || self.mediaserver_step(false),
        )?;
        self.push(
            "explain_overhead",
            "s",
            xs,
            "the same forced, cached pipeline step of the mediaserver image with \
             `.explain(false)`",
            ys,
            "ratio <= 1.05",
            |v, b| v <= b * 1.05,
        )
    }
}
