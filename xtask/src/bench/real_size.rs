//! The figures at real size: an unchanged pipeline on the production-shaped fixture
//! (`noop_real`) and on a generated 50,000-file context (`noop_50k`), and the time spent
//! deciding what to rebuild after one file changed (`one_file_changed`), and a cold CI
//! build from a registry cache (`ci_cold_with_registry_cache`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{Build, Output as BuildOutput};
use buildkit_lib::pipeline::{Inputs, Pipeline, Report, StepStatus};
use buildkit_lib::plan::Step;
use buildkit_lib::Session;

use super::{docker_host, generate_tree, in_registry, prune_own, raw, tempfile_dir, time, Bench};

impl Bench {
    /// `cargo xtask mediaserver --no-smoke` with nothing changed, against a fully cached
    /// direct `docker buildx build` of the same image.
    ///
    /// The baseline tags its image under a name of its own: under the pipeline's tag it
    /// would move that tag to an image without the run's labels, and every timed run
    /// after it would rightly rebuild. Every timed run must report the image up to date,
    /// not only the last one.
    pub(super) fn noop_real(&mut self) -> Result<()> {
        let report_path = self.root.join("target/buildkit/mediaserver/report.json");
        let cargo_xtask = || -> Result<()> {
            raw(Command::new("cargo")
                .args(["xtask", "mediaserver", "--no-smoke"])
                .current_dir(&self.root))?;
            let report = Report::load(&report_path)?;
            for step in ["generate", "image", "size"] {
                let status = report.step(step).map(|s| s.status);
                if status != Some(StepStatus::UpToDate) {
                    bail!("a no-op mediaserver run was not up to date ({step}: {status:?})");
                }
            }
            Ok(())
        };
        // A successful run first (the first one builds the image).
        raw(Command::new("cargo")
            .args(["xtask", "mediaserver", "--no-smoke"])
            .current_dir(&self.root))?;
        let build = crate::mediaserver::image_build_as(&self.root, NOOP_REAL_BASELINE_TAG);
        let argv = build.command().argv();
        let paired = self.paired(cargo_xtask, || {
            raw(Command::new(&argv[0])
                .args(&argv[1..])
                .env("DOCKER_HOST", docker_host()))
        });
        let _ = self
            .runner
            .capture(&buildkit_lib::Cmd::new("docker").args(["rmi", NOOP_REAL_BASELINE_TAG]));
        let (xs, ys) = paired?;
        self.push(
            "noop_real",
            "s",
            xs,
            "a fully cached direct `docker buildx build` of the mediaserver image",
            ys,
            "<= 0.25 s and >= 5x faster than the baseline",
            |v, b| v <= 0.25 && v * 5.0 <= b,
        )
    }

    /// An unchanged image step whose context has 50,000 files (in-process pipeline run),
    /// against a fully cached direct build of it.
    pub(super) fn noop_50k(&mut self) -> Result<()> {
        let dir = self.tree_50k()?;
        let tag = "buildkit-bench/noop50k:latest";
        let target = tempfile_dir(&self.root, "noop50k-target")?;
        // The baseline under a tag of its own, as in `noop_real`: under the pipeline's it
        // would move that tag to an image without the run's labels.
        let baseline_tag = "buildkit-bench/noop50k-direct:latest";
        let argv = tree_build(&dir, baseline_tag).command().argv();
        let run = || -> Result<StepStatus> {
            let mut pipeline = Pipeline::new("noop50k", &target);
            pipeline.image_build("image", tree_build(&dir, tag), "tree");
            let report = pipeline.run(&self.runner.clone().session(Session::new("bench")))?;
            if !report.ok {
                bail!("the 50k pipeline failed:\n{report}");
            }
            Ok(report.steps[0].status)
        };
        run()?;
        let (xs, ys) = self.paired(
            || match run()? {
                StepStatus::UpToDate => Ok(()),
                other => bail!("the 50k pipeline was not up to date: {other:?}"),
            },
            || {
                raw(Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("DOCKER_HOST", docker_host()))
            },
        )?;
        let _ =
            self.runner
                .capture(&buildkit_lib::Cmd::new("docker").args(["rmi", tag, baseline_tag]));
        self.push(
            "noop_50k",
            "s",
            xs,
            "a fully cached direct `docker buildx build` of the 50,000-file context",
            ys,
            "<= 1 s",
            |v, _| v <= 1.0,
        )
    }

    /// After one file of the 50,000-file context changed: a pipeline step over that
    /// context deciding it must run (its body does nothing), against statting every file
    /// and hashing the changed one.
    pub(super) fn one_file_changed(&mut self) -> Result<()> {
        let dir = self.tree_50k()?;
        let target = tempfile_dir(&self.root, "onefile-target")?;
        let changed = dir.join("src/s3/deep/er/0-app.py");
        let mut flip = 0u32;
        let mut change = || -> Result<()> {
            flip += 1;
            std::fs::write(&changed, format!("print({flip})\n"))
                .with_context(|| format!("cannot write {}", changed.display()))
        };
        let decide = || -> Result<StepStatus> {
            let mut pipeline = Pipeline::new("onefile", &target);
            pipeline
                .step("check", |_| Ok(()))
                .inputs(Inputs::new().context(&dir));
            let report = pipeline.run(&self.runner.clone().session(Session::new("bench")))?;
            Ok(report.steps[0].status)
        };
        change()?;
        decide()?;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..self.runs.max(5) {
            change()?;
            let started = Instant::now();
            let status = decide()?;
            xs.push(started.elapsed().as_secs_f64());
            if status != StepStatus::Ok {
                bail!("a changed file did not make the step run: {status:?}");
            }
            ys.push(time(|| {
                let n = stat_walk(&dir);
                if n < 50_000 {
                    bail!("the stat walk found only {n} files");
                }
                {
                    use sha2::Digest;
                    sha2::Sha256::digest(std::fs::read(&changed)?);
                }
                Ok(())
            })?);
        }
        self.push(
            "one_file_changed",
            "s",
            xs,
            "statting every file of the context and hashing the changed one",
            ys,
            "ratio <= 2",
            |v, b| v <= 2.0 * b,
        )
    }

    /// The generated 50,000-file tree (kept between figures of one run).
    fn tree_50k(&self) -> Result<std::path::PathBuf> {
        let dir = self.root.join("target/buildkit/bench/tree-50k");
        if !dir.join(".complete").exists() {
            let dir = tempfile_dir(&self.root, "tree-50k")?;
            generate_tree(&dir, 50_000)?;
            std::fs::write(dir.join(".dockerignore"), "build/\n**/__pycache__\n")?;
            std::fs::write(
                dir.join("Dockerfile"),
                "FROM buildkit-local/busybox:latest\nCOPY . /ctx/\n",
            )?;
            std::fs::write(dir.join(".complete"), "")?;
        }
        Ok(dir)
    }
}

/// The tag `noop_real`'s baseline builds under, so that it never moves the pipeline's.
const NOOP_REAL_BASELINE_TAG: &str = "buildkit-bench/mediaserver-direct:latest";

fn tree_build(dir: &Path, tag: &str) -> Build {
    Build::new(dir.to_path_buf())
        .tag(tag)
        .network("none")
        .output(BuildOutput::Load)
}

/// `lstat` of every entry under `dir`; the number of regular files.
fn stat_walk(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) if m.is_file() => n += 1,
                _ => {}
            }
        }
    }
    n
}

impl Bench {
    /// A CI machine with an empty build cache building the mediaserver image from a
    /// registry cache exported by an earlier run, against the same build with no cache.
    /// Every build runs on a builder of the bench's own ([`Bench::own_builder`]), whose
    /// cache each run empties first (`docker buildx prune --builder NAME --all --force`,
    /// cache mounts included, so the build without cache downloads its packages again, as
    /// a cold CI job does); the engine's own build cache and images are never touched, and
    /// that builder does not see the engine's images, so no local layer stands in for an
    /// imported one.
    pub(super) fn ci_cold_with_registry_cache(&mut self) -> Result<()> {
        raw(Command::new("python3").arg(self.root.join("fixtures/mediaserver/generate.py")))?;
        let cache = Cache::registry(format!(
            "{}/buildkit-bench/mediaserver:cache",
            crate::engine::REGISTRY
        ))
        .mode_max(true);
        let builder = self.own_builder("ci-cold")?;
        let on_builder = || {
            crate::mediaserver::image_build(&self.root)
                .builder(builder.name())
                .build_arg("PYTHON_IMAGE", in_registry(crate::build::PYTHON_IMAGE))
        };
        let export = on_builder().cache_to(cache.clone());
        export.run(&self.runner)?;
        let from_cache = on_builder().cache_from(cache);
        let no_cache = on_builder();
        let prune = || prune_own(builder.name());
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..self.runs.min(3) {
            let one = |build: &Build, into: &mut Vec<f64>| -> Result<()> {
                prune()?;
                into.push(time(|| build.run(&self.runner).map(|_| ()))?);
                Ok(())
            };
            if i % 2 == 0 {
                one(&from_cache, &mut xs)?;
                one(&no_cache, &mut ys)?;
            } else {
                one(&no_cache, &mut ys)?;
                one(&from_cache, &mut xs)?;
            }
        }
        builder.remove()?;
        self.push(
            "ci_cold_with_registry_cache",
            "s",
            xs,
            "the same build on an empty build cache with no cache to import",
            ys,
            "ratio <= 0.25",
            |v, b| v <= 0.25 * b,
        )
    }
}

/// Puts a file's content back when dropped (the benchmark edits the desktop fixture).
struct Restore(std::path::PathBuf, Vec<u8>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

impl Bench {
    /// The production-shaped desktop fixture (`fixtures/signalscope`: PySide6, numpy,
    /// scipy; a 109 MB one-file binary) after a one-line change in an application module:
    /// `xtask desktop --no-smoke` (mounted, incremental) against the seed's way,
    /// `by-hand.sh` (three `docker buildx build --target` and a `docker cp`), each after
    /// its own edit of the same line. The seed's images are tagged apart
    /// (`buildkit-bench-signalscope`), so neither side touches the other's images.
    pub(super) fn package_incremental(&mut self) -> Result<()> {
        let desktop = Desktop::new(&self.root)?;
        let (xs, ys) = self.paired(
            || {
                desktop.change()?;
                desktop.ours(&[])
            },
            || {
                desktop.change()?;
                desktop.seed()
            },
        )?;
        self.push(
            "package_incremental",
            "s",
            xs,
            "the seed's three builds by hand after the same change (by-hand.sh)",
            ys,
            "ratio <= 0.5",
            |v, b| v <= 0.5 * b,
        )
    }

    /// The desktop fixture with nothing changed: `xtask desktop --no-smoke` against
    /// `by-hand.sh`.
    pub(super) fn package_noop(&mut self) -> Result<()> {
        let desktop = Desktop::new(&self.root)?;
        let (xs, ys) = self.paired(|| desktop.ours(&[]), || desktop.seed())?;
        self.push(
            "package_noop",
            "s",
            xs,
            "the seed's three builds by hand, nothing changed (by-hand.sh)",
            ys,
            "ratio <= 0.5",
            |v, b| v <= 0.5 * b,
        )
    }

    /// The desktop fixture's packaging from nothing of PyInstaller's (no state folder, the
    /// full path, every archive entry compressed again) against the seed's way after a
    /// one-line change (its package stage from scratch, base and runtime from the layer
    /// cache): what the first packaging on a machine costs beside the seed's usual one.
    pub(super) fn package_cold(&mut self) -> Result<()> {
        let desktop = Desktop::new(&self.root)?;
        let state = self.root.join("target/pyinstaller/signalscope");
        let (xs, ys) = self.paired(
            || {
                desktop.change()?;
                std::fs::remove_dir_all(&state)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .with_context(|| format!("cannot remove {}", state.display()))?;
                desktop.ours(&[])
            },
            || {
                desktop.change()?;
                desktop.seed()
            },
        )?;
        self.push(
            "package_cold",
            "s",
            xs,
            "the seed's three builds by hand after a one-line change (its package stage \
             from scratch)",
            ys,
            "ratio <= 1.1",
            |v, b| v <= 1.1 * b,
        )
    }
}

/// The desktop fixture as the package benchmarks use it: a line to change, the xtask and
/// the seed's script.
struct Desktop {
    xtask: std::path::PathBuf,
    app: std::path::PathBuf,
    file: std::path::PathBuf,
    original: String,
    edits: std::cell::Cell<u32>,
    seed_dist: std::path::PathBuf,
    _restore: Restore,
}

impl Desktop {
    fn new(root: &std::path::Path) -> Result<Desktop> {
        let app = root.join("fixtures/signalscope");
        let file = app.join("src/signalscope/ui/plot_widget.py");
        let original = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if !original.lines().any(|l| l.starts_with("MARGIN = ")) {
            anyhow::bail!("{} has no `MARGIN = ` line to change", file.display());
        }
        Ok(Desktop {
            xtask: std::env::current_exe().context("cannot find the xtask binary")?,
            seed_dist: tempfile_dir(root, "package-seed")?,
            _restore: Restore(file.clone(), original.clone().into_bytes()),
            app,
            file,
            original,
            edits: std::cell::Cell::new(0),
        })
    }

    /// A one-line change: `MARGIN = <a value no earlier run used>` (a value used before
    /// would find the seed's package stage in BuildKit's cache, keyed by content).
    fn change(&self) -> Result<()> {
        if self.edits.get() == 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.edits.set((now.as_secs() % 1_000_000) as u32 * 100);
        }
        self.edits.set(self.edits.get() + 1);
        let text = self
            .original
            .lines()
            .map(|l| {
                if l.starts_with("MARGIN = ") {
                    format!("MARGIN = {}", self.edits.get())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        std::fs::write(&self.file, text)
            .with_context(|| format!("cannot write {}", self.file.display()))
    }

    /// `xtask desktop --no-smoke <more>`.
    fn ours(&self, more: &[&str]) -> Result<()> {
        raw(Command::new(&self.xtask)
            .args(["desktop", "--no-smoke"])
            .args(more))
    }

    /// `sh by-hand.sh`, its images and binary apart from ours.
    fn seed(&self) -> Result<()> {
        raw(Command::new("sh")
            .arg(self.app.join("by-hand.sh"))
            .env("TAG", "buildkit-bench-signalscope")
            .env("DIST", &self.seed_dist)
            .env("DOCKER_HOST", docker_host()))
    }
}
