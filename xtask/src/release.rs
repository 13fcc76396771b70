//! `cargo xtask release --bump <major|minor|patch|pre|release> [--dry-run]`.
//!
//! Bumps `fixtures/webapp/version.json`, moves `CHANGELOG.md`'s Unreleased section under
//! the new version, commits and creates the annotated tag `v<version>`; the work is
//! `buildkit_lib::version::Release`, this file only names this repository's files.

use std::path::Path;

use anyhow::Context;
use buildkit_lib::plan::Step;
use buildkit_lib::version::{Bump, Release};
use buildkit_lib::Runner;

/// This repository's version file, relative to the root.
const VERSION_FILE: &str = "fixtures/webapp/version.json";
/// This repository's changelog, relative to the root.
const CHANGELOG: &str = "CHANGELOG.md";

/// Releases the repository at `root` with the `bump` given on the command line; with
/// `dry_run` it checks the work tree (git's read-only queries run),
/// prints the release and changes nothing.
pub fn run(runner: &Runner, root: &Path, bump: Bump, dry_run: bool) -> anyhow::Result<()> {
    let runner = runner.clone().dry_run(dry_run).dry_run_queries(dry_run);
    let release = Release::new(root, root.join(VERSION_FILE), root.join(CHANGELOG), bump);
    let done = release.run(&runner).context("cannot release")?;
    if dry_run {
        print!("{done}");
    }
    Ok(())
}
