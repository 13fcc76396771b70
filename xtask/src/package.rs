//! `cargo xtask package` and `cargo xtask desktop`: a desktop fixture through its three
//! stages into `dist/` (the small one, and the production-shaped one with a smoke test).
//!
//! Base image (system libraries), runtime image (a venv with PyInstaller), then the
//! package stage, mounted or isolated; each stage is a pipeline step, so an unchanged
//! base or runtime image is not rebuilt. `fixtures/desktop/dist/` is replaced atomically.

use std::path::Path;

use anyhow::{bail, Context, Result};
use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stage, Stages};
use buildkit_lib::pipeline::{Inputs, Pipeline};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};

use crate::flags::{self, PackageMode};
use crate::{build::PYTHON_IMAGE, engine};

/// A desktop fixture the xtask packages.
struct App {
    /// The folder under `fixtures/`.
    dir: &'static str,
    /// The images' repository; stages are tags of it.
    image: &'static str,
    /// The spec, relative to the folder.
    spec: &'static str,
    /// The binary PyInstaller leaves in `dist/`.
    binary: &'static str,
    /// Whether the binary answers `--version` and `--smoke` (the production-shaped one).
    smoke: bool,
}

/// The small desktop fixture.
const DESKAPP: App = App {
    dir: "desktop",
    image: "buildkit-desktop",
    spec: "deskapp.spec",
    binary: "deskapp",
    smoke: false,
};

/// The production-shaped desktop fixture (PySide6, numpy, scipy).
const SIGNALSCOPE: App = App {
    dir: "signalscope",
    image: "signalscope",
    spec: "signalscope.spec",
    binary: "signalscope",
    smoke: true,
};

/// `cargo xtask package [--mode mounted|isolated|isolated-cp] [--dry-run] [--force]
/// [--no-cache]`: the small fixture, isolated by default.
pub fn run(base: &Runner, root: &Path, flags: &flags::Package) -> Result<u8> {
    let mode = flags.mode.unwrap_or(PackageMode::Isolated);
    let options = Options {
        dry_run: flags.dry_run,
        force: flags.force,
        keep_going: flags.keep_going,
        no_cache: flags.no_cache,
        smoke: false,
        reproducible: false,
    };
    package(base, root, &DESKAPP, mode, &options)
}

/// `cargo xtask desktop [--mode …] [--dry-run] [--force] [--no-cache] [--no-smoke]
/// [--reproducible]`: the production-shaped fixture, mounted (incremental) by default,
/// then its smoke test.
pub fn desktop(base: &Runner, root: &Path, flags: &flags::Desktop) -> Result<u8> {
    let mode = flags.mode.unwrap_or(PackageMode::Mounted);
    let options = Options {
        dry_run: flags.dry_run,
        force: flags.force,
        keep_going: flags.keep_going,
        no_cache: flags.no_cache,
        smoke: !flags.no_smoke,
        reproducible: flags.reproducible,
    };
    package(base, root, &SIGNALSCOPE, mode, &options)
}

/// The command's switches.
struct Options {
    dry_run: bool,
    force: bool,
    keep_going: bool,
    /// Every stage's build without the build cache, and every stage run (none skipped as
    /// up to date).
    no_cache: bool,
    /// Run the smoke test (apps that have one).
    smoke: bool,
    /// Compare two clean packagings instead of packaging into `dist/`.
    reproducible: bool,
}

/// The `SOURCE_DATE_EPOCH` of `--reproducible` (any fixed time would do).
const SOURCE_DATE_EPOCH: u64 = 1_700_000_000;

/// The pipeline of `app`: base, runtime, package (and smoke), then the report with each
/// stage's time and size.
fn package(
    base: &Runner,
    root: &Path,
    app: &App,
    mode: PackageMode,
    options: &Options,
) -> Result<u8> {
    let dry_run = options.dry_run;
    let mode_name = format!("{mode:?}").to_lowercase();
    let mode = match mode {
        PackageMode::Mounted => Mode::Mounted,
        PackageMode::Isolated => Mode::Isolated,
        PackageMode::IsolatedCp => Mode::IsolatedCopyOut,
    };
    let runner = base.clone().dry_run(dry_run);
    engine::ensure(&runner, root, dry_run)?;
    let dir = root.join("fixtures").join(app.dir);
    let build = Build::new(&dir)
        .build_arg("PYTHON_IMAGE", PYTHON_IMAGE)
        .network("host")
        // Every stage's build, base and runtime too, not only the package stage's.
        .no_cache(options.no_cache);
    let stages = Stages::new(build, app.image);
    let stage_image = |name: &str| format!("{}:{name}", app.image);

    let mut pipeline = Pipeline::new(app.dir, root.join("target"));
    let dockerfile = dir.join("Dockerfile");
    let base_stages = stages.clone();
    pipeline
        .step("base", move |cx| {
            base_stages
                .build(Stage::Base, &cx.session)
                .run(&cx.runner)?;
            Ok(())
        })
        .describe("base image: system libraries PyInstaller needs")
        .inputs(
            Inputs::new()
                .file(&dockerfile)
                .value("python", PYTHON_IMAGE),
        )
        .output_image(stage_image("base"));
    let runtime_stages = stages.clone();
    let mut runtime_inputs = Inputs::new().file(&dockerfile);
    for file in ["pyproject.toml", "requirements.txt"] {
        if dir.join(file).is_file() {
            runtime_inputs = runtime_inputs.file(dir.join(file));
        }
    }
    pipeline
        .step("runtime", move |cx| {
            runtime_stages
                .build(Stage::Runtime, &cx.session)
                .run(&cx.runner)?;
            Ok(())
        })
        .after(["base"])
        .describe("runtime image: a virtual environment with PyInstaller")
        .inputs(runtime_inputs)
        .output_image(stage_image("runtime"));
    // The mounted mode keeps PyInstaller's work in target/, one folder per app; the
    // output is staged under target/ too, never inside the fixture's build context.
    let package = Package::new(stages, PyInstaller::spec(app.spec), mode)
        .expect(app.binary)
        .incremental(root.join("target/pyinstaller").join(app.dir))
        .staging(root.join("target/buildkit/package"));
    let dist = dir.join("dist");
    let artifacts = dist.clone();
    if options.reproducible {
        let package = package.source_date_epoch(SOURCE_DATE_EPOCH);
        pipeline
            .step("reproducible", move |cx| {
                let comparison = package.compare_runs(&cx.runner)?;
                cx.runner.note(&comparison.to_string());
                if !comparison.is_reproducible() {
                    bail!("two clean packagings differ (see above)");
                }
                Ok(())
            })
            .after(["runtime"])
            .describe("two clean packagings (SOURCE_DATE_EPOCH set), compared file by file");
        return finish(&runner, pipeline, app, options);
    }
    pipeline
        .step("package", move |cx| {
            let report = package.run(&cx.runner)?;
            for path in report.paths() {
                cx.add_artifact(&artifacts.join(path))?;
            }
            Ok(())
        })
        .after(["runtime"])
        .describe("PyInstaller in the runtime image; dist/ replaced atomically")
        .inputs(Inputs::new().context(&dir).value("mode", mode_name))
        .output_dir(&dist);
    if app.smoke && options.smoke {
        let version = read_version(&dir)?;
        let base_image = stage_image("base");
        let binary = app.binary;
        let smoke_dist = dist.clone();
        pipeline
            .step("smoke", move |cx| {
                smoke(&cx.runner, &base_image, &smoke_dist, binary, &version)
            })
            .after(["package"])
            .describe("the binary in the base image: --version, then the window offscreen")
            .inputs(Inputs::new().file(&dist));
    }

    finish(&runner, pipeline, app, options)
}

/// Runs `pipeline` and prints its table, each stage image's size and the artifacts.
fn finish(runner: &Runner, mut pipeline: Pipeline, app: &App, options: &Options) -> Result<u8> {
    let dry_run = options.dry_run;
    let stage_image = |name: &str| format!("{}:{name}", app.image);
    // Without the cache means every stage runs: none is skipped as up to date.
    pipeline
        .force(options.force || options.no_cache)
        .keep_going(options.keep_going);
    let report = pipeline.run(runner)?;
    if !dry_run {
        eprintln!("\n{report}");
        for stage in ["base", "runtime"] {
            let size = runner
                .capture(
                    &Cmd::new("docker")
                        .args(["image", "inspect", "--format", "{{.Size}}"])
                        .arg(stage_image(stage))
                        .read_only(),
                )
                .ok()
                .and_then(|out| out.stdout.trim().parse::<u64>().ok());
            if let Some(size) = size {
                eprintln!("{stage:>8}  image {}  {}", stage_image(stage), mb(size));
            }
        }
        for artifact in &report.artifacts {
            eprintln!(
                "{:>8}  {}  {}  sha256 {}",
                "package",
                artifact.path,
                mb(artifact.size_bytes),
                artifact.sha256
            );
        }
    }
    Ok(u8::from(!report.ok))
}

/// `12.3 MB`.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The version in the app's `version.json`.
fn read_version(dir: &Path) -> Result<String> {
    let path = dir.join("version.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    json["version"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{} has no \"version\"", path.display()))
}

/// Runs the packaged binary in the base image (system libraries, none of the venv's
/// packages): `--version` must print `<binary> <version>`, and `--smoke 1` must open the
/// main window offscreen, draw, and print `smoke ok`.
fn smoke(runner: &Runner, image: &str, dist: &Path, binary: &str, version: &str) -> Result<()> {
    let run = |args: &[&str]| {
        Cmd::new("docker")
            .args(["run", "--rm", "--network", "none", "--mount"])
            .arg(format!(
                "type=bind,src={},dst=/app,readonly",
                dist.display()
            ))
            .args(["--env", "QT_QPA_PLATFORM=offscreen", "--env", "HOME=/tmp"])
            .arg(image)
            .arg(format!("/app/{binary}"))
            .args(args.iter().copied())
            .read_only()
    };
    let expected = format!("{binary} {version}");
    let out = runner
        .capture(&run(&["--version"]).dry_answer(&expected))
        .with_context(|| format!("{binary} --version failed in {image}"))?;
    let printed = out.stdout.trim();
    if printed != expected {
        bail!("{binary} --version printed `{printed}`, expected `{expected}` (version.json)");
    }
    let out = runner
        .capture(&run(&["--smoke", "1"]).dry_answer("smoke ok"))
        .with_context(|| format!("{binary} --smoke failed in {image}"))?;
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("smoke ok"))
        .with_context(|| {
            format!(
                "{binary} --smoke printed no `smoke ok` line: {}",
                out.stdout.trim()
            )
        })?;
    runner.note(&format!("{binary}: {printed}; {line}"));
    Ok(())
}
