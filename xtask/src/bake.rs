//! `cargo xtask bake`: the webapp pipeline's image builds as one `docker-bake.json`, built
//! with `docker buildx bake`.
//!
//! The file is exported from the same pipeline `cargo xtask build` runs
//! ([`build::webapp_pipeline`]), so the two cannot drift apart. Its paths are relative to
//! the file's directory, and bake runs there.

use std::path::Path;

use anyhow::{Context, Result};
use buildkit_lib::plan::Step;
use buildkit_lib::version::GitFacts;
use buildkit_lib::{Runner, Session};

use crate::build;
use crate::engine;
use crate::flags;

/// `cargo xtask bake [--print] [--dry-run] [--out FILE]`.
pub fn run(base: &Runner, root: &Path, flags: &flags::Bake) -> Result<u8> {
    let dry_run = flags.dry_run;
    let runner = base.clone().dry_run(dry_run);
    engine::ensure(&runner, root, dry_run)?;

    let cache = build::cache_flag(flags.cache.as_deref())?;
    let pipeline = build::webapp_pipeline_with(&runner, root, false, cache.as_ref(), false)?;
    let out = match &flags.out {
        Some(path) => std::path::absolute(path)
            .with_context(|| format!("cannot resolve `--out {}`", path.display()))?,
        None => pipeline.dir().join("docker-bake.json"),
    };
    let dir = out.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = pipeline
        .bake_file(&dir)?
        .with_session_labels(&Session::new("webapp"));

    if flags.print {
        if dry_run {
            // Nothing is written in a dry run, so buildx has no file to read: show ours.
            print!("{}", file.to_json());
            runner.note(&format!(
                "dry run: {} not written; without --dry-run, buildx prints it as it reads it",
                out.display()
            ));
            return Ok(0);
        }
        let bake = file.write(&runner, &out)?;
        print!("{}", bake.print(&runner)?.to_json());
        return Ok(0);
    }

    // The image's `meta` build context is written by the pipeline's "version" step: stamp
    // it first, so a bake from a fresh checkout finds it.
    let bake_json: serde_json::Value =
        serde_json::from_str(&file.to_json()).context("cannot read the bake file back")?;
    let needs_meta = bake_json["target"].as_object().is_some_and(|targets| {
        targets
            .values()
            .any(|t| t["contexts"].get("meta").is_some())
    });
    if needs_meta {
        let git = GitFacts::read(&runner.clone().dry_run_queries(true), root)
            .context("cannot read the repository's git state")?;
        build::stamp_version(&runner, root, &git)?;
    }

    // Each target explains its build; `cargo xtask why --pipeline bake` prints it in full.
    let bake = file
        .write(&runner, &out)?
        .explain_records(root.join("target/buildkit/bake/why"));
    let result = bake.run(&runner)?;
    for (name, target) in &result {
        eprintln!(
            "{name}: {} {}",
            target.tags.join(", "),
            target.digest.as_deref().unwrap_or("(no image digest)")
        );
    }
    eprintln!("bake file: {}", out.display());
    Ok(0)
}
