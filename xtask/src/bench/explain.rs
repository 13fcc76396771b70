//! What explaining a build costs (`explain_overhead`): a fully cached build of the
//! production-shaped mediaserver image with its explanation against the same build with
//! `.explain(false)`, and the explanation of a one-file change in its 5,214-file context
//! (of the fixture's 5,800 files) against the pipeline's own fingerprint of that context
//! (the in-process comparison through `docker::bench`, which the library builds
//! only with the `bench-internals` feature this xtask turns on).

use anyhow::{bail, Result};
use buildkit_lib::docker::bench::ContextChange;
use buildkit_lib::pipeline::{Inputs, Pipeline, StepStatus};
use buildkit_lib::Session;

use super::Bench;

impl Bench {
    /// A forced run of the mediaserver's image step (the build `cargo xtask mediaserver`
    /// runs, in a pipeline of its own), explained or not; fully cached unless it is the
    /// `warm_up`, which may build and leaves the record the next runs compare with.
    fn mediaserver_step(&self, explained: bool, warm_up: bool) -> Result<()> {
        let build = crate::mediaserver::image_build(&self.root)
            .explain(explained)
            // The size is read by its own step; both sides skip it.
            .read_facts(false);
        let name = if explained { "explained" } else { "plain" };
        let mut pipeline = Pipeline::new(
            format!("bench-explain-{name}"),
            self.root.join("target/buildkit/bench"),
        );
        pipeline.image_build("image", build, "mediaserver");
        pipeline.force(true).jobs(1);
        let report = pipeline.run(&self.runner.clone().session(Session::new("bench")))?;
        let step = &report.steps[0];
        if step.status != StepStatus::Ok {
            bail!(
                "the mediaserver step did not run: {:?} {:?}",
                step.status,
                step.error
            );
        }
        match (explained, step.why.as_deref()) {
            (true, Some(_)) if warm_up => Ok(()),
            (true, Some(why)) if why.ends_with("nothing rebuilt") => Ok(()),
            (false, None) => Ok(()),
            (_, why) => bail!("the mediaserver step was not the cached build asked: {why:?}"),
        }
    }

    pub(super) fn explain_overhead(&mut self) -> Result<()> {
        self.runner
            .run(&crate::mediaserver::generate_cmd(&self.root))?;
        self.mediaserver_step(true, true)?;
        let (xs, ys) = self.paired(
            || self.mediaserver_step(true, false),
            || self.mediaserver_step(false, false),
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
        )?;
        self.explain_change()
    }

    /// Explaining a one-file change in the mediaserver context (5,214 files sent of the
    /// fixture's 5,800), in process, given the inputs recorded before and after (which a
    /// pipeline collects from the listing its fingerprint makes anyway): every step
    /// compared with the previous record (all of them rebuilt, the most work there can
    /// be), and the record of 5,214 file hashes written and read back as JSON. Against
    /// the pipeline's fingerprint of the same context, walked and hashed without a cache.
    fn explain_change(&mut self) -> Result<()> {
        let build = crate::mediaserver::image_build(&self.root);
        let change = ContextChange::of(&build, "app/views.py")?;
        if change.files() < 5_000 {
            bail!(
                "the mediaserver context has {} files: generate it first",
                change.files()
            );
        }
        let fingerprint = Inputs::of_build(&build);
        let (xs, ys) = self.paired(
            || change.explain_once(),
            || {
                fingerprint.fingerprint()?;
                Ok(())
            },
        )?;
        let xs = xs.into_iter().map(|s| s * 1000.0).collect();
        let ys = ys.into_iter().map(|s| s * 1000.0).collect();
        self.push(
            "explain_5800_files",
            "ms",
            xs,
            "the pipeline's fingerprint of the same context (walked and hashed, no cache)",
            ys,
            "<= 50 ms",
            |v, _| v <= 50.0,
        )
    }
}
