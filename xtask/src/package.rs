//! `cargo xtask package`: the desktop fixture through its three stages into `dist/`.
//!
//! Base image (system libraries), runtime image (a venv with PyInstaller), then the
//! package stage, mounted or isolated; each stage is a pipeline step, so an unchanged
//! base or runtime image is not rebuilt. `fixtures/desktop/dist/` is replaced atomically.

use std::path::Path;

use anyhow::Result;
use buildkit_lib::package::{Export, Mode, Package, PyInstaller, Stages};
use buildkit_lib::pipeline::{Inputs, Pipeline, RunOptions, StepOutput};
use buildkit_lib::plan::Step;
use buildkit_lib::Runner;

use crate::flags::{self, PackageMode};
use crate::{build::PYTHON_IMAGE, engine};

/// The desktop images' repository; stages are tags of it.
const DESKTOP_IMAGE: &str = "buildkit-desktop";

/// `cargo xtask package [--mode mounted|isolated] [--dry-run] [--force]`.
pub fn run(base: &Runner, root: &Path, flags: &flags::Package) -> Result<u8> {
    let mode = match flags.mode.unwrap_or(PackageMode::Isolated) {
        PackageMode::Mounted => Mode::Mounted,
        PackageMode::Isolated => Mode::Isolated(Export::BuildOutput),
        PackageMode::IsolatedCp => Mode::Isolated(Export::CopyOut),
    };
    let runner = base.clone().dry_run(flags.dry_run);
    engine::ensure(&runner, root, flags.dry_run)?;
    let app = root.join("fixtures/desktop");
    let stages = Stages::new(&app, DESKTOP_IMAGE)
        .build_arg("PYTHON_IMAGE", PYTHON_IMAGE)
        .network("host");

    let mut pipeline = Pipeline::new("package", root.join("target"));
    let dockerfile = app.join("Dockerfile");
    let base_stages = stages.clone();
    pipeline
        .step("base", move |cx| {
            base_stages.build_base(&cx.runner)?;
            Ok(())
        })
        .describe("base image: system libraries PyInstaller needs")
        .inputs(
            Inputs::new()
                .file(&dockerfile)
                .value("python", PYTHON_IMAGE),
        )
        .output(StepOutput::image(stage_image("base")));
    let runtime_stages = stages.clone();
    pipeline
        .step("runtime", move |cx| {
            runtime_stages.build_runtime(&cx.runner)?;
            Ok(())
        })
        .after(["base"])
        .describe("runtime image: a virtual environment with PyInstaller")
        .inputs(
            Inputs::new()
                .file(&dockerfile)
                .file(app.join("pyproject.toml")),
        )
        .output(StepOutput::image(stage_image("runtime")));
    let package = Package::new(stages, PyInstaller::spec("deskapp.spec"), mode).expect("deskapp");
    let dist = app.join("dist");
    let mode_name = format!("{mode:?}");
    pipeline
        .step("package", move |cx| {
            let report = package.run(&cx.runner)?;
            for path in report.paths() {
                cx.add_artifact(&dist.join(path))?;
            }
            Ok(())
        })
        .after(["runtime"])
        .describe("PyInstaller in the runtime image; dist/ replaced atomically")
        .inputs(
            Inputs::new()
                .context(root.join("fixtures/desktop"))
                .value("mode", mode_name),
        )
        .output(StepOutput::dir(root.join("fixtures/desktop/dist")));

    let options = RunOptions::new("desktop")
        .dry_run(flags.dry_run)
        .force(flags.force)
        .keep_going(flags.keep_going);
    let report = pipeline.run(&runner, &options)?;
    if !flags.dry_run {
        eprintln!("\n{}", report.table());
        for artifact in &report.artifacts {
            eprintln!(
                "{}  {:>10}  {}",
                artifact.sha256, artifact.size_bytes, artifact.path
            );
        }
    }
    Ok(report.exit_code() as u8)
}

/// The tag a stage's image gets: `Stages::new` tags stage `name` as `<image>:<name>`.
fn stage_image(name: &str) -> String {
    format!("{DESKTOP_IMAGE}:{name}")
}
