//! What explaining a build costs (`explain_overhead`): a fully cached build of the
//! production-shaped mediaserver image with its explanation against the same build with
//! `.explain(false)`, and the explanation of a one-file change in its 5,214-file context
//! (of the fixture's 5,800 files) against the pipeline's own fingerprint of that context.

use anyhow::{bail, Result};
use buildkit_lib::docker::explain::{explain, CacheInputs, Cause, Vertex};
use buildkit_lib::pipeline::{Inputs, Pipeline, RunOptions, StepStatus};

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
        let previous = CacheInputs::of_build(&build, None)?;
        let files = previous.context_files.len();
        if files < 5_000 {
            bail!("the mediaserver context has {files} files: generate it first");
        }
        let changed = "app/views.py";
        let mut current = CacheInputs::of_build(&build, Some(&previous))?;
        current
            .context_files
            .insert(changed.into(), "644:sha256:changed".into());
        let vertexes = every_step_rebuilt(&previous);
        let fingerprint = Inputs::of_build(&build);
        let (xs, ys) = self.paired(
            || {
                let e = explain(Some(&previous), &current, &vertexes);
                let named = e.rows.iter().any(|r| {
                    r.cause
                        == Some(Cause::FilesChanged {
                            files: vec![changed.into()],
                        })
                });
                if !named {
                    bail!("the change was not explained:\n{e}");
                }
                let record = serde_json::json!({ "explanation": e, "inputs": current });
                let text = serde_json::to_string(&record)?;
                let _: serde_json::Value = serde_json::from_str(&text)?;
                Ok(())
            },
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

/// A vertex for every step of every stage, each run: the most the comparison can have.
fn every_step_rebuilt(inputs: &CacheInputs) -> Vec<Vertex> {
    let mut out = Vec::new();
    for stage in &inputs.stages {
        let steps: Vec<&str> = stage
            .instructions
            .iter()
            .filter(|i| matches!(i.keyword.as_str(), "RUN" | "COPY" | "ADD" | "WORKDIR"))
            .map(|i| i.text.lines().next().unwrap_or(""))
            .collect();
        let total = steps.len() + 1;
        for (n, text) in steps.iter().enumerate() {
            let mut v = Vertex::default();
            v.digest = format!("{}-{n}", stage.name);
            v.name = format!("[{} {}/{total}] {text}", stage.name, n + 2);
            v.started = Some("2026-01-01T00:00:00Z".into());
            v.completed = Some("2026-01-01T00:00:01Z".into());
            out.push(v);
        }
    }
    out
}
