//! `cargo xtask clean`: remove what this repository's pipelines created, and nothing else.
//!
//! Containers and images are selected by the ownership labels every run stamps on them;
//! the fixtures' `dist/` and `build/` folders only inside their fixture.

use std::path::Path;

use anyhow::{Context, Result};
use buildkit_lib::cleanup::Cleanup;
use buildkit_lib::plan::Step;
use buildkit_lib::Runner;

use crate::flags;

/// The projects this repository's pipelines run as, with their fixture folder.
const PROJECTS: [(&str, &str); 2] = [
    ("webapp", "fixtures/webapp"),
    ("desktop", "fixtures/desktop"),
];

/// `cargo xtask clean [--dry-run] [--force]`.
pub fn run(base: &Runner, root: &Path, flags: &flags::Clean) -> Result<u8> {
    // A dry run lists for real (the engine's read-only queries run) and removes nothing.
    let runner = base
        .clone()
        .dry_run(flags.dry_run)
        .dry_run_queries(flags.dry_run);
    for (project, dir) in PROJECTS {
        let summary = Cleanup::for_project(project)
            .directories(root.join(dir), ["dist", "build"])
            .force(flags.force)
            .run(&runner)
            .with_context(|| format!("cannot clean up project `{project}`"))?;
        if !flags.dry_run {
            println!("{project}: {summary}");
        }
    }
    Ok(0)
}
