//! What the repository's benchmark measures of the explanation, in process: not part of the
//! library's API (only with the `bench-internals` feature, which this repository's xtask
//! turns on for `cargo xtask bench`).

use anyhow::{bail, Result};

use super::record::CacheInputs;
use super::{Cause, Vertex};
use crate::docker::build::Build;

/// A one-file change in a build's context, prepared once: the inputs recorded before and
/// after, and a vertex for every step of every stage, each run (the most the comparison
/// can have to do).
#[derive(Debug)]
pub struct ContextChange {
    previous: CacheInputs,
    current: CacheInputs,
    vertexes: Vec<Vertex>,
    changed: String,
}

impl ContextChange {
    /// The inputs of `build` as recorded, and the same with `changed` (a path in its
    /// context) given new content.
    pub fn of(build: &Build, changed: &str) -> Result<ContextChange> {
        let previous = CacheInputs::of_build(build, None)?;
        let mut current = CacheInputs::of_build(build, Some(&previous))?;
        current
            .context_files
            .insert(changed.into(), "644:sha256:changed".into());
        let vertexes = every_step_rebuilt(&previous);
        Ok(ContextChange {
            previous,
            current,
            vertexes,
            changed: changed.into(),
        })
    }

    /// How many context files the record holds.
    pub fn files(&self) -> usize {
        self.previous.context_files.len()
    }

    /// One explanation of the change, checked to name the changed file, and its record
    /// encoded and decoded as a build saves and loads it.
    pub fn explain_once(&self) -> Result<()> {
        let e = super::explain(Some(&self.previous), &self.current, &self.vertexes);
        let named = e.rows.iter().any(|r| {
            r.cause
                == Some(Cause::FilesChanged {
                    files: vec![self.changed.clone()],
                })
        });
        if !named {
            bail!("the change was not explained:\n{e}");
        }
        let record = super::ExplainRecord {
            written: crate::time::rfc3339(std::time::SystemTime::now()),
            summary: e.summary(),
            explanation: e,
            inputs: self.current.clone(),
        };
        let text = record.to_json()?;
        super::ExplainRecord::from_json(&text)?;
        Ok(())
    }
}

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
            out.push(Vertex {
                digest: format!("{}-{n}", stage.name),
                name: format!("[{} {}/{total}] {text}", stage.name, n + 2),
                started: Some("2026-01-01T00:00:00Z".into()),
                completed: Some("2026-01-01T00:00:01Z".into()),
                ..Vertex::default()
            });
        }
    }
    out
}
