//! `cargo xtask check` and `cargo xtask fmt`: black and isort over the fixtures' Python.

use std::path::Path;

use anyhow::Result;
use buildkit_lib::plan::Step;
use buildkit_lib::python::ToolEnv;
use buildkit_lib::python::{CheckAll, Format};
use buildkit_lib::Runner;

use crate::fixtures;

/// Runs the checks (`fix == false`) or the fixes.
pub fn run(base: &Runner, root: &Path, dry_run: bool, fix: bool) -> Result<u8> {
    let runner = base.clone().dry_run(dry_run);
    let env = ToolEnv::under(root.join("target"));
    let paths = fixtures::python_paths(root);
    let (mut black, mut isort) = (
        Format::black(paths.clone()).cwd(root).tools(env.clone()),
        Format::isort(paths).cwd(root).tools(env),
    );
    if fix {
        // isort first: black has the last word on layout.
        isort = isort.fix();
        black = black.fix();
        isort.run(&runner)?;
        black.run(&runner)?;
    } else {
        CheckAll::new(black, isort).run(&runner)?;
    }
    Ok(0)
}
