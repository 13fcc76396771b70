//! [`Package`]: the package stage, run mounted or isolated, replacing `dist/` atomically.
//!
//! Mounted: PyInstaller runs in a container of the runtime image with the source mounted
//! read-only and an output directory mounted, as the invoking user. Isolated (CI): no
//! volume mounts at all; the artifacts leave through `--output type=local` or through
//! `docker create` + `docker cp`. Either way they land in a staging directory named for
//! the run, never inside the build context ([`Package::staging`] says where), are checked
//! there, and are swapped in ([`Runner::swap`]) only when everything succeeded.
//! [`Package`] is a [`Step`]: its plan is its run recorded.
//!
//! The image builds it makes (the isolated modes) go through
//! [`Build::run`](crate::docker::Build::run).

use crate::validate::reproducible::{Compared, ReproReport};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::artifacts::{check_in_place, ArtifactReport};
use super::disk;
use super::incremental::{self, STATE_MOUNT};
use super::pyinstaller::PyInstaller;
use super::stages::{Stage, Stages};
use crate::cmd::{Cmd, Runner};
use crate::docker::build::Output;
use crate::plan::Step;
use crate::python::remove_container;
use crate::session::Session;

/// Where the source is inside the package container.
pub(crate) const SOURCE_DIR: &str = "/src";
/// Where PyInstaller writes the artifacts inside the package container.
pub(crate) const OUT_DIR: &str = "/out";
/// PyInstaller's work directory inside the package container.
pub(crate) const WORK_DIR: &str = "/tmp/build";

/// How the package stage gets the source in and the artifacts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A container with the source and an output directory mounted (development).
    Mounted,
    /// No volume mounts at all (CI); the artifacts leave through `docker buildx build
    /// --target artifact --output type=local,dest=...`.
    Isolated,
    /// No volume mounts at all (CI); the package image is built, then its artifacts are
    /// copied out: `docker create` + `docker cp` + `docker rm`.
    IsolatedCopyOut,
}

/// The package step: PyInstaller in the runtime image, the result in `dist`.
///
/// [`Package::new`] with the images, the PyInstaller run and the mode, then the setters
/// ([`Package::dist`], [`Package::expect`], [`Package::source_date_epoch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Package {
    /// The release images (the runtime image must exist, see [`Stages::build`]).
    pub(crate) stages: Stages,
    /// The PyInstaller run (paths relative to the source directory).
    pub(crate) pyinstaller: PyInstaller,
    /// Mounted or isolated.
    pub(crate) mode: Mode,
    /// The directory replaced by the artifacts (`<project>/dist`).
    pub(crate) dist: PathBuf,
    /// Files that must be among the artifacts (relative to `dist`) before it is replaced.
    pub(crate) expect: Vec<PathBuf>,
    /// Package reproducibly: PyInstaller runs with `SOURCE_DATE_EPOCH` set to this and a
    /// fixed `PYTHONHASHSEED` (the isolated mode passes both as build args, which the
    /// package stage must declare with `ARG`).
    pub(crate) source_date_epoch: Option<u64>,
    /// The state folder of incremental packaging (mounted mode), see
    /// [`Package::incremental`].
    pub(crate) state: Option<PathBuf>,
    /// The folder PyInstaller's output is staged under (see [`Package::staging`]).
    pub(crate) staging: Option<PathBuf>,
}

/// The `PYTHONHASHSEED` of a reproducible packaging (any fixed value would do).
pub(crate) const REPRODUCIBLE_HASH_SEED: &str = "0";

/// Two clean packagings compared file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct DistComparison {
    /// Files in the first packaging.
    pub(crate) files: usize,
    /// Paths (relative to `dist`) whose content differs, or that only one packaging has
    /// (`only in first`/`only in second` in `why`), sorted.
    pub(crate) differing: Vec<DistDifference>,
}

/// One file that differs between two packagings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct DistDifference {
    /// The path relative to `dist`.
    pub path: String,
    /// `content` (different sha256), `only in first` or `only in second`.
    pub why: String,
}

impl DistComparison {
    /// True when both packagings hold the same files with the same bytes.
    pub(crate) fn is_identical(&self) -> bool {
        self.differing.is_empty() && self.files > 0
    }
}

impl std::fmt::Display for DistComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_identical() {
            return write!(
                f,
                "reproducible: two clean packagings gave the same {} file(s), byte for byte",
                self.files
            );
        }
        write!(
            f,
            "not reproducible: {} of {} file(s) differ between two clean packagings:",
            self.differing.len(),
            self.files
        )?;
        for d in &self.differing {
            write!(f, "\n  {} ({})", d.path, d.why)?;
        }
        Ok(())
    }
}

impl Package {
    /// Packages `stages.build.context` with `pyinstaller` into `<context>/dist`.
    pub fn new(stages: Stages, pyinstaller: PyInstaller, mode: Mode) -> Package {
        Package {
            dist: stages.build.context.join("dist"),
            stages,
            pyinstaller,
            mode,
            expect: Vec::new(),
            source_date_epoch: None,
            state: None,
            staging: None,
        }
    }

    /// Packages incrementally in the mounted mode, keeping PyInstaller's work folder, a
    /// cache of the one-file archive's compressed entries and a record of the last
    /// packaging in `state` (a folder of its own, such as `target/pyinstaller/<app>`,
    /// outside the project's source; one packaging at a time holds it).
    ///
    /// Each run compares the sources with that record, by content, and takes one path,
    /// named in the step log and in [`ArtifactReport::path_taken`]:
    /// - *up to date*: nothing changed and `dist` holds what the last packaging left, so
    ///   PyInstaller does not run;
    /// - *incremental*: only application modules already in PyInstaller's graph changed,
    ///   and their import statements (tokenized, in any nesting) did not: PyInstaller
    ///   reuses its analysis and rebuilds the archive and the executable;
    /// - *full*: anything else (the first run, a file added or removed, a spec, data file,
    ///   hook or requirement changed, an import added or removed, a module that imports
    ///   by name or loads libraries with `ctypes`, a new runtime image — Python,
    ///   PyInstaller or a dependency — or other arguments): PyInstaller's `--clean` run.
    ///
    /// Either running path reuses the archive's compressed entries whose bytes did not
    /// change (zlib's output is a function of its input). The isolated mode ignores the
    /// state folder and always packages in full.
    pub fn incremental(mut self, state: impl Into<PathBuf>) -> Package {
        self.state = Some(state.into());
        self
    }

    /// Packages reproducibly: PyInstaller runs with `SOURCE_DATE_EPOCH` set to `secs`
    /// and a fixed `PYTHONHASHSEED` (the isolated mode passes both as build args, which
    /// the package stage must declare with `ARG`).
    pub fn source_date_epoch(mut self, secs: u64) -> Package {
        self.source_date_epoch = Some(secs);
        self
    }

    /// The directory replaced by the artifacts (by default `<context>/dist`).
    pub fn dist(mut self, dir: impl Into<PathBuf>) -> Package {
        self.dist = dir.into();
        self
    }

    /// The folder PyInstaller's output is staged under while the step runs, before it is
    /// checked and swapped into `dist`; a `target/`-like folder of the caller's, such as
    /// `target/package`. It must not be inside the build context (`Stages`' context, also
    /// the source the mounted mode mounts): a folder there would be sent to BuildKit or
    /// seen by PyInstaller, and a second packaging would carry the first one's output.
    ///
    /// Without it, the step stages beside `dist` when `dist` is outside the context, else
    /// beside the context folder (in its parent): both are outside the context and, in the
    /// usual layout, on `dist`'s file system, so `dist` is replaced by an atomic rename.
    /// When the staging folder is on another file system, the checked output is first
    /// copied (`cp -a`) into a folder beside `dist`, then renamed into place. Either folder
    /// is removed on failure and on Ctrl-C.
    pub fn staging(mut self, dir: impl Into<PathBuf>) -> Package {
        self.staging = Some(dir.into());
        self
    }

    /// The folder this run stages under (the absolute step's), refused when it is inside
    /// the build context.
    fn staging_root(&self) -> Result<PathBuf> {
        let context = &self.stages.build.context;
        let root = match &self.staging {
            Some(dir) => absolute(dir)?,
            None if !self.parent().starts_with(context) => self.parent(),
            None => context
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| context.clone()),
        };
        if root.starts_with(context) {
            bail!(
                "the package step's staging folder {} is inside the build context {}, which \
                 would carry PyInstaller's output into the build; set `Package::staging` to a \
                 folder outside it (such as `target/package`)",
                root.display(),
                context.display()
            );
        }
        Ok(root)
    }

    /// A folder of this run under the staging root: `.<context>-<dist>.<what>-<run>`.
    fn staged(&self, root: &Path, what: &str, run_id: &str) -> PathBuf {
        let context = self
            .stages
            .build
            .context
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
            .unwrap_or_default();
        root.join(format!(".{context}-{}.{what}-{run_id}", self.dist_name()))
    }

    /// The environment that makes PyInstaller's output reproducible, when asked for.
    fn reproducible_env(&self) -> Vec<(String, String)> {
        match self.source_date_epoch {
            Some(secs) => vec![
                ("SOURCE_DATE_EPOCH".into(), secs.to_string()),
                ("PYTHONHASHSEED".into(), REPRODUCIBLE_HASH_SEED.into()),
            ],
            None => Vec::new(),
        }
    }

    /// Packages twice from scratch (the package stage without build cache, PyInstaller's
    /// `--clean`; the base and runtime images are the tagged ones, so both packagings use
    /// the same tools) into two temporary folders under the staging folder
    /// ([`Package::staging`]) and compares them file by file (sha256). `dist` is not
    /// touched and both folders are removed. Set
    /// [`Package::source_date_epoch`] first: without it, timestamps differ. Like
    /// [`Package::run`], it labels what it creates with the runner's session.
    pub fn compare_runs(&self, runner: &Runner) -> Result<ReproReport> {
        let session = runner.require_session("the package step")?;
        let mut this = self.absolute()?;
        this.stages.build.no_cache = true;
        let root = this.staging_root()?;
        let mut sums = Vec::new();
        for i in 1..=2 {
            let dir = this.staged(&root, &format!("repro-{i}"), &session.run_id);
            let _guard = runner.remove_on_cancel(&dir);
            let scanned = this.fresh_dir(runner, &dir).and_then(|()| {
                this.produce(runner, session, &dir, None)?;
                runner.read_output_with(&dir, Default::default(), |dir| {
                    Ok(ArtifactReport::scan(dir)?
                        .files
                        .into_iter()
                        .map(|f| (f.path.to_string_lossy().into_owned(), f.sha256))
                        .collect::<std::collections::BTreeMap<_, _>>())
                })
            });
            let removed = runner.remove(&dir);
            sums.push(scanned?);
            removed?;
        }
        let (a, b) = (&sums[0], &sums[1]);
        let mut differing = Vec::new();
        for path in a
            .keys()
            .chain(b.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let why = match (a.get(path), b.get(path)) {
                (Some(x), Some(y)) if x == y => continue,
                (Some(_), Some(_)) => "content",
                (Some(_), None) => "only in first",
                _ => "only in second",
            };
            differing.push(DistDifference {
                path: path.clone(),
                why: why.to_string(),
            });
        }
        Ok(ReproReport {
            compared: Compared::Dist(DistComparison {
                files: a.len(),
                differing,
            }),
        })
    }

    /// The folder holding `dist` (`.` for a bare name).
    fn parent(&self) -> PathBuf {
        self.dist
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    }

    /// The name of `dist` (`dist`).
    fn dist_name(&self) -> String {
        self.dist
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dist".into())
    }

    /// The same step with the context and `dist` absolute (docker wants absolute paths
    /// for bind mounts and local outputs), symlinks resolved where the folders exist.
    fn absolute(&self) -> Result<Package> {
        let mut this = self.clone();
        this.stages.build.context = absolute(&self.stages.build.context)?;
        let parent = absolute(&self.parent())?;
        this.dist = parent.join(self.dist_name());
        Ok(this)
    }

    /// Makes `dir` an empty folder: removed if a run of the same session left it, then
    /// created (`mkdir -p`, with the folders above it).
    fn fresh_dir(&self, runner: &Runner, dir: &Path) -> Result<()> {
        runner.remove(dir)?;
        runner
            .run(&Cmd::new("mkdir").arg("-p").arg_path(dir))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(())
    }

    /// Requires `file` (relative to `dist`) among the artifacts before `dist` is
    /// replaced.
    pub fn expect(mut self, file: impl Into<PathBuf>) -> Package {
        self.expect.push(file.into());
        self
    }

    /// The mounted mode's `docker run`, in container `name`, writing into `out` on the
    /// host, as `uid:gid`.
    pub(crate) fn run_command(
        &self,
        session: &Session,
        name: &str,
        out: &Path,
        user: (u32, u32),
        incremental: Option<&Incremental>,
    ) -> Cmd {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        let cmd = Cmd::new("docker")
            .args(["run", "--rm", "--name", name])
            .args(session.label_args())
            .args(["--network", "none"])
            .arg("--user")
            .arg(format!("{}:{}", user.0, user.1))
            .arg("--mount")
            .arg(format!(
                "type=bind,src={},dst={SOURCE_DIR},readonly",
                self.stages.build.context.display()
            ))
            .arg("--mount")
            .arg(format!("type=bind,src={},dst={OUT_DIR}", out.display()));
        let cmd = match incremental {
            Some(inc) => cmd.arg("--mount").arg(format!(
                "type=bind,src={},dst={STATE_MOUNT}",
                inc.state.display()
            )),
            None => cmd,
        };
        cmd.args(["--workdir", SOURCE_DIR])
            .args(container_env())
            .args(
                self.reproducible_env()
                    .into_iter()
                    .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]),
            )
            .arg(runtime)
            .args(match incremental {
                Some(inc) => inc.command(&self.pyinstaller),
                None => self.pyinstaller.command(OUT_DIR, WORK_DIR).argv(),
            })
    }

    /// The isolated build exporting the artifact stage into `out`.
    pub(crate) fn export_build(
        &self,
        session: &Session,
        out: &Path,
    ) -> Result<crate::docker::build::Build> {
        let mut build = self.isolated_build(Stage::Artifact, session);
        build.tags.clear();
        build.output = Output::Local(out.to_path_buf());
        build.build_args.insert(
            "PYINSTALLER_ARGS".into(),
            self.pyinstaller.build_arg_value()?,
        );
        Ok(build)
    }

    /// A build of `stage` on top of the tagged runtime image (the very image the mounted
    /// mode runs, so both modes package with the same tools), with no network.
    fn isolated_build(&self, stage: Stage, session: &Session) -> crate::docker::build::Build {
        let mut build = self.stages.build(stage, session);
        build.build_args.extend(self.reproducible_env());
        if let Some(runtime) = self.stages.image(Stage::Runtime) {
            build.build_contexts.insert(
                self.stages.name(Stage::Runtime),
                format!("docker-image://{runtime}"),
            );
        }
        build.network = Some("none".into());
        build
    }

    /// The isolated build of the package image (for [`Mode::IsolatedCopyOut`]).
    pub(crate) fn package_image_build(
        &self,
        session: &Session,
    ) -> Result<crate::docker::build::Build> {
        let mut build = self.isolated_build(Stage::Package, session);
        build.build_args.insert(
            "PYINSTALLER_ARGS".into(),
            self.pyinstaller.build_arg_value()?,
        );
        Ok(build)
    }

    /// `docker create`, `docker cp` and `docker rm` of the copy-out export.
    pub(crate) fn copy_out_commands(&self, session: &Session, name: &str, out: &Path) -> [Cmd; 3] {
        let image = self.stages.image(Stage::Package).unwrap_or_default();
        [
            Cmd::new("docker")
                .args(["create", "--name", name])
                .args(session.label_args())
                .args(["--network", "none", image]),
            Cmd::new("docker")
                .arg("cp")
                .arg(format!("{name}:{OUT_DIR}/."))
                .arg_path(out),
            Cmd::new("docker").args(["rm", name]),
        ]
    }

    /// Runs PyInstaller into `raw`, checks what it left there, and swaps it in as `dist`.
    fn fill_and_swap(
        &self,
        runner: &Runner,
        session: &Session,
        raw: &Path,
        incremental: Option<&Incremental>,
    ) -> Result<()> {
        let root = raw.parent().unwrap_or(raw).to_path_buf();
        self.fresh_dir(runner, raw)?;
        self.produce(runner, session, raw, incremental)
            .map_err(|e| disk_full_or(runner, &root, e))?;
        // What PyInstaller left is read only when it ran: a dry run's plan goes on to the
        // swap it would make.
        let files = runner
            .read_output_with(raw, 1, check_in_place)
            .with_context(|| {
                format!("cannot collect the artifacts into {}", self.dist.display())
            })?;
        if files == 0 {
            bail!(
                "the package step produced no files (PyInstaller wrote nothing into {OUT_DIR}); \
                 {} is left as it was",
                self.dist.display()
            );
        }
        for file in &self.expect {
            let there = runner.read_output_with(raw, true, |raw| Ok(raw.join(file).is_file()))?;
            if !there {
                bail!(
                    "the package step did not produce `{}`; {} is left as it was",
                    file.display(),
                    self.dist.display()
                );
            }
        }
        if same_file_system(&root, &self.parent()) {
            return runner.swap(raw, &self.dist);
        }
        // A rename cannot cross file systems: copy beside `dist` first, then rename.
        let beside = self.staged(&self.parent(), "copy", &session.run_id);
        let _guard = runner.remove_on_cancel(&beside);
        let copied = self.fresh_dir(runner, &beside).and_then(|()| {
            runner
                .run(
                    &Cmd::new("cp")
                        .arg("-a")
                        .arg_path(raw.join("."))
                        .arg_path(&beside),
                )
                .map(|_| ())
                .with_context(|| {
                    format!("cannot copy the artifacts beside {}", self.dist.display())
                })
        });
        let swapped = copied.and_then(|()| runner.swap(&beside, &self.dist));
        if swapped.is_err() {
            let _ = runner.remove(&beside);
        }
        swapped?;
        runner.remove(raw)
    }

    /// Fails with a clear error when the runtime image is missing (a `docker run` of it
    /// would try a registry and fail with a DNS error).
    /// Returns the digest of what PyInstaller sees of it: its layers and its environment
    /// (not its ID, which the run's labels change on every rebuild of the same content).
    fn check_runtime_image(&self, runner: &Runner) -> Result<String> {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        match runner.capture(&self.runtime_probe()) {
            Ok(out) => Ok(format!(
                "sha256:{}",
                crate::hash::sha256_hex(out.stdout.trim().as_bytes())
            )),
            Err(e) if e.tail.iter().any(|l| l.contains("No such image")) => bail!(
                "the runtime image `{runtime}` does not exist; build it first \
                 (`Stages::build(Stage::Runtime, ..)`), then package"
            ),
            Err(e) => Err(e).context("cannot look up the runtime image"),
        }
    }

    /// The query that checks that the runtime image exists.
    fn runtime_probe(&self) -> Cmd {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        Cmd::new("docker")
            .args(["image", "inspect", "--format", RUNTIME_CONTENT, runtime])
            .read_only()
            .dry_answer("<layers> <environment>")
    }

    /// With [`Package::source_date_epoch`] in the isolated mode: the package stage must
    /// declare the build args, or its `RUN` never sees them.
    fn check_reproducible_args(&self) -> Result<()> {
        if self.source_date_epoch.is_none() || self.mode == Mode::Mounted {
            return Ok(());
        }
        let dockerfile = self
            .stages
            .build
            .dockerfile
            .clone()
            .unwrap_or_else(|| self.stages.build.context.join("Dockerfile"));
        let name = self.stages.name(Stage::Package);
        let stages = crate::docker::dockerfile::read_stages(&dockerfile)?;
        let Some(stage) = stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
        else {
            return Ok(());
        };
        for arg in ["SOURCE_DATE_EPOCH", "PYTHONHASHSEED"] {
            if stage.runs_without_arg(arg) {
                bail!(
                    "stage `{name}` of {} runs PyInstaller before declaring `ARG {arg}`, so the \
                     reproducible packaging's {arg} never reaches it; add `ARG {arg}` at the \
                     top of that stage",
                    dockerfile.display()
                );
            }
        }
        Ok(())
    }

    /// Runs PyInstaller and leaves its output in `out`.
    fn produce(
        &self,
        runner: &Runner,
        session: &Session,
        out: &Path,
        incremental: Option<&Incremental>,
    ) -> Result<()> {
        self.check_reproducible_args()?;
        // An incremental packaging looked the runtime image up when it took its path.
        if incremental.is_none() {
            self.check_runtime_image(runner)?;
        }
        match self.mode {
            Mode::Mounted => {
                let name = session.container_name("package");
                let _guard = runner.on_cancel(remove_container(runner, &name));
                let user = unsafe { (libc::getuid(), libc::getgid()) };
                let cmd = self.run_command(session, &name, out, user, incremental);
                runner
                    .run(&cmd)
                    .map_err(|e| pyinstaller_failed(e.into(), &format!("in container {name}")))?;
            }
            Mode::Isolated => {
                self.export_build(session, out)?
                    .run(runner)
                    .map_err(|e| pyinstaller_failed(e, "in the isolated package build"))?;
            }
            Mode::IsolatedCopyOut => {
                self.package_image_build(session)?
                    .run(runner)
                    .map_err(|e| pyinstaller_failed(e, "in the isolated package build"))?;
                let name = session.container_name("copyout");
                let [create, copy, remove] = self.copy_out_commands(session, &name, out);
                let _guard = runner.on_cancel(remove_container(runner, &name));
                runner.run(&create)?;
                let copied = runner.run(&copy);
                let removed = runner.run(&remove);
                copied.with_context(|| format!("cannot copy the artifacts out of {name}"))?;
                removed.with_context(|| format!("cannot remove container {name}"))?;
            }
        }
        Ok(())
    }
}

impl Step for Package {
    type Output = ArtifactReport;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &ArtifactReport) -> Option<String> {
        Some(output.to_string())
    }

    /// Runs the package stage and replaces `dist` with its artifacts; on any failure (or
    /// Ctrl-C) `dist` stays as it was and no container is left. The containers and images
    /// it creates are named and labelled for the runner's session ([`Runner::session`]),
    /// which must be set. The artifacts land in `.<context>-dist.raw-<run>` under the
    /// staging folder ([`Package::staging`], never inside the build context), are checked
    /// there (no symlink out of them, every [`Package::expect`]ed file), then swapped in
    /// whole ([`Runner::swap`]).
    fn run(&self, runner: &Runner) -> Result<ArtifactReport> {
        let session = runner.require_session("the package step")?;
        if crate::files::is_mount_point(&self.dist) {
            let dist = self.dist.display();
            bail!(
                "{dist} is a mount point (a bind mount or a volume): the package step replaces \
                 it by renaming a new directory into place, which a mount point does not \
                 allow; mount its parent directory (the project) instead of {dist} itself, or \
                 set `Package::dist` to a directory that is not a mount point; nothing was \
                 built and {dist} is left as it was"
            );
        }
        let this = self.absolute()?;
        let raw = this.staged(&this.staging_root()?, "raw", &session.run_id);
        let incremental = this.start_incremental(runner, &raw)?;
        let mut report = match incremental.as_ref().map(|inc| &inc.path) {
            Some(incremental::Path::UpToDate) => this.up_to_date(incremental.as_ref())?,
            _ => {
                let _raw_guard = runner.remove_on_cancel(&raw);
                if let Err(e) = this.fill_and_swap(runner, session, &raw, incremental.as_ref()) {
                    let _ = runner.remove(&raw);
                    return Err(e);
                }
                self.dist_report(runner)?
            }
        };
        if let Some(inc) = incremental {
            report.path_taken = Some(inc.finish(runner, &report)?);
        }
        runner.note(&report.to_string());
        Ok(report)
    }
}

impl Package {
    /// The incremental packaging of this run, when [`Package::incremental`] is set in the
    /// mounted mode: the state folder locked, the path decided and named in the step log,
    /// the runner script written, and, for a running path, the record removed (so that a
    /// packaging that fails or is cancelled leaves none) and, for the full path, the work
    /// folder emptied.
    fn start_incremental(&self, runner: &Runner, raw: &Path) -> Result<Option<Incremental>> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        if self.mode != Mode::Mounted {
            runner.note(
                "packaging: full (the isolated mode packages from scratch; the state folder \
                 of incremental packaging is for the mounted mode)",
            );
            return Ok(None);
        }
        let state = absolute(state)?;
        if state.starts_with(&self.stages.build.context) {
            bail!(
                "the incremental packaging's state folder {} is inside the build context {}; \
                 choose a folder outside it (such as `target/pyinstaller/<app>`)",
                state.display(),
                self.stages.build.context.display()
            );
        }
        runner
            .run(&Cmd::new("mkdir").arg("-p").arg_path(&state))
            .with_context(|| format!("cannot create {}", state.display()))?;
        let lock = runner.hold_lock(|| crate::python::DirLock::acquire(&state.join(".lock")))?;
        let runtime = self.check_runtime_image(runner)?;
        let key = incremental::Key {
            runtime,
            args: self.pyinstaller.args(),
            env: self.reproducible_env(),
            script: crate::hash::sha256_hex(incremental::SCRIPT.as_bytes()),
        };
        let snapshot = incremental::Snapshot::take(
            &self.stages.build.context,
            &[self.dist.clone(), raw.into()],
        )?;
        let record_path = state.join(RECORD);
        let previous = std::fs::read(&record_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<incremental::Record>(&bytes).ok());
        let work = state.join("work");
        let work_folder = std::fs::read_dir(&work).is_ok_and(|mut d| d.next().is_some());
        let dist = ArtifactReport::scan(&self.dist).ok();
        let path = if self.stages.build.no_cache {
            incremental::Path::Full(
                "without cache (the stages' `no_cache`): PyInstaller's work folder and the \
                 archive cache are emptied"
                    .into(),
            )
        } else {
            incremental::decide(
                previous.as_ref(),
                &key,
                &snapshot,
                work_folder,
                dist.as_ref().map(ArtifactReport::sums).as_ref(),
            )
        };
        runner.note(&path.describe());
        if path != incremental::Path::UpToDate {
            runner.remove(&record_path)?;
            runner.remove(&state.join(RESULT))?;
            if matches!(path, incremental::Path::Full(_)) {
                runner.remove(&work)?;
            }
            if self.stages.build.no_cache {
                runner.remove(&state.join(ARCHIVE_CACHE))?;
            }
            runner.write(&state.join(SCRIPT_NAME), incremental::SCRIPT.as_bytes())?;
        }
        Ok(Some(Incremental {
            state,
            path,
            key,
            snapshot,
            dist,
            _lock: lock,
        }))
    }

    /// The report of what `dist` holds (empty in a plan).
    fn dist_report(&self, runner: &Runner) -> Result<ArtifactReport> {
        runner.read_output_with(
            &self.dist,
            ArtifactReport {
                dir: self.dist.clone(),
                files: Vec::new(),
                path_taken: None,
            },
            ArtifactReport::scan,
        )
    }

    /// The report of a `dist` that is up to date (as the incremental packaging read it
    /// when it took its path), after checking that it holds every [`Package::expect`]ed
    /// file.
    fn up_to_date(&self, incremental: Option<&Incremental>) -> Result<ArtifactReport> {
        let Some(report) = incremental.and_then(|inc| inc.dist.clone()) else {
            bail!("{} is no longer there; package again", self.dist.display());
        };
        for file in &self.expect {
            if !self.dist.join(file).is_file() {
                bail!(
                    "{} is up to date with the sources but holds no `{}`; remove {} to package \
                     again",
                    self.dist.display(),
                    file.display(),
                    self.dist.display()
                );
            }
        }
        Ok(report)
    }
}

/// The runtime image's layers and environment, as `docker image inspect` prints them.
const RUNTIME_CONTENT: &str = "{{json .RootFS.Layers}} {{json .Config.Env}}";

/// The record of the last packaging, in the state folder.
const RECORD: &str = "record.json";
/// What the runner script reports, in the state folder.
const RESULT: &str = "result.json";
/// The runner script's cache of the one-file archive's compressed entries, in the state
/// folder.
const ARCHIVE_CACHE: &str = "archive-cache";
/// The runner script's name in the state folder.
const SCRIPT_NAME: &str = "incremental.py";

/// An incremental packaging under way (see [`Package::incremental`]).
pub(crate) struct Incremental {
    /// The state folder (absolute), mounted at [`STATE_MOUNT`].
    state: PathBuf,
    /// The path taken.
    path: incremental::Path,
    /// What the record will hold besides the files.
    key: incremental::Key,
    /// The context's files before PyInstaller ran.
    snapshot: incremental::Snapshot,
    /// What `dist` held before PyInstaller ran (`None` when it could not be read).
    dist: Option<ArtifactReport>,
    /// The state folder's lock, held until the record is written.
    _lock: Option<crate::python::DirLock>,
}

impl Incremental {
    /// The container's command: the runner script with PyInstaller's arguments, without
    /// `--clean` on the incremental path.
    fn command(&self, pyinstaller: &PyInstaller) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            "python3".into(),
            format!("{STATE_MOUNT}/{SCRIPT_NAME}"),
            "--state".into(),
            STATE_MOUNT.into(),
        ];
        let mut args = pyinstaller.args();
        if let incremental::Path::Incremental(changed) = &self.path {
            args.retain(|a| a != "--clean");
            argv.push("--incremental".into());
            for rel in changed {
                argv.push("--reuse-analysis".into());
                argv.push(format!("{SOURCE_DIR}/{rel}"));
            }
        }
        argv.push("--".into());
        argv.extend([
            "--distpath".into(),
            OUT_DIR.into(),
            "--workpath".into(),
            format!("{STATE_MOUNT}/work"),
        ]);
        argv.extend(args);
        argv
    }

    /// After a packaging that succeeded: the record written for the next run; returns the
    /// step log's line for the path taken (with what PyInstaller did with its analysis).
    fn finish(self, runner: &Runner, report: &ArtifactReport) -> Result<String> {
        if self.path == incremental::Path::UpToDate {
            return Ok(self.path.describe());
        }
        let result = runner.read_output_with(
            &self.state.join(RESULT),
            incremental::RunResult::default(),
            |path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("cannot parse {}", path.display()))
            },
        )?;
        let modules = result.application_modules(SOURCE_DIR);
        let record = incremental::record(self.key, &self.snapshot, &modules, report.sums());
        let mut text = serde_json::to_vec_pretty(&record).context("cannot encode the record")?;
        text.push(b'\n');
        runner.write(&self.state.join(RECORD), &text)?;
        let mut line = self.path.describe();
        if matches!(self.path, incremental::Path::Incremental(_)) && result.analysis == "rebuilt" {
            runner.note("packaging: PyInstaller's own check analysed again");
            line.push_str(" (PyInstaller's own check analysed again)");
        }
        Ok(line)
    }
}

/// Whether `a` and `b` (or their nearest existing folders) are on one file system, so a
/// rename between them is atomic; true when either cannot be read.
fn same_file_system(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let device = |path: &Path| {
        path.ancestors()
            .find_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.dev())
    };
    match (device(a), device(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// `path` absolute: resolved (symlinks too) when it exists, else joined to the current
/// directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        return std::fs::canonicalize(path)
            .with_context(|| format!("cannot resolve {}", path.display()));
    }
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// The error of a PyInstaller run that failed `where_` (`in container NAME`): PyInstaller's
/// own last error line from the failed command's output when there is one
/// (`PyInstaller failed in container NAME: Spec file "x.spec" not found!`), so the cause
/// is the first thing read; the command and its output tail stay below it in the chain.
fn pyinstaller_failed(e: anyhow::Error, where_: &str) -> anyhow::Error {
    let cause = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::cmd::CommandError>())
        .and_then(|c| super::pyinstaller::error_line(&c.tail));
    match cause {
        Some(line) => e.context(format!("PyInstaller failed {where_}: {line}")),
        None => e.context(format!("PyInstaller failed {where_}")),
    }
}

/// `e`, or the disk-full error naming `host_path` when `e` says the disk is full (so that
/// a full disk is not reported as a PyInstaller failure).
fn disk_full_or(runner: &Runner, host_path: &Path, e: anyhow::Error) -> anyhow::Error {
    if disk::is_disk_full(&e) {
        disk::disk_full_error(runner, host_path, e)
    } else {
        e
    }
}

/// The environment of the package container: PyInstaller's state in /tmp, since the
/// invoking user has no home directory in the image.
fn container_env() -> Vec<String> {
    [
        "HOME=/tmp",
        "PYINSTALLER_CONFIG_DIR=/tmp/pyinstaller",
        "PYTHONDONTWRITEBYTECODE=1",
    ]
    .iter()
    .flat_map(|kv| ["--env".to_string(), kv.to_string()])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (Package, Session) {
        let stages = Stages::new(crate::docker::build::Build::new("/p/app"), "deskapp");
        let package = Package::new(stages, PyInstaller::spec("deskapp.spec"), Mode::Mounted);
        let session = Session {
            project: "deskapp".into(),
            run_id: "r1".into(),
        };
        (package, session)
    }

    #[test]
    fn golden_mounted_run() {
        let (package, session) = fixture();
        let cmd = package.run_command(
            &session,
            "deskapp_package_r1",
            Path::new("/p/.dist.raw-x"),
            (1000, 1000),
            None,
        );
        assert_eq!(
            cmd.to_string(),
            "docker run --rm --name deskapp_package_r1 --label dev.buildkit-lib.project=deskapp \
             --label dev.buildkit-lib.run=r1 --network none --user 1000:1000 \
             --mount type=bind,src=/p/app,dst=/src,readonly \
             --mount type=bind,src=/p/.dist.raw-x,dst=/out --workdir /src \
             --env HOME=/tmp --env PYINSTALLER_CONFIG_DIR=/tmp/pyinstaller \
             --env PYTHONDONTWRITEBYTECODE=1 deskapp:runtime pyinstaller --distpath /out \
             --workpath /tmp/build --clean --noconfirm deskapp.spec"
        );
    }

    #[test]
    fn golden_incremental_runs() {
        let (package, session) = fixture();
        let inc = |path| Incremental {
            state: "/p/target/pyinstaller/deskapp".into(),
            path,
            key: incremental::Key {
                runtime: String::new(),
                args: Vec::new(),
                env: Vec::new(),
                script: String::new(),
            },
            snapshot: incremental::Snapshot {
                files: Default::default(),
                root: "/p/app".into(),
            },
            dist: None,
            _lock: None,
        };
        let line = |path| {
            package
                .run_command(
                    &session,
                    "deskapp_package_r1",
                    Path::new("/p/.dist.raw-x"),
                    (1000, 1000),
                    Some(&inc(path)),
                )
                .to_string()
        };
        let mounts = "docker run --rm --name deskapp_package_r1 --label \
                      dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 --network \
                      none --user 1000:1000 --mount type=bind,src=/p/app,dst=/src,readonly \
                      --mount type=bind,src=/p/.dist.raw-x,dst=/out --mount \
                      type=bind,src=/p/target/pyinstaller/deskapp,dst=/tmp/buildkit-lib \
                      --workdir /src --env HOME=/tmp --env PYINSTALLER_CONFIG_DIR=/tmp/pyinstaller \
                      --env PYTHONDONTWRITEBYTECODE=1 deskapp:runtime python3 \
                      /tmp/buildkit-lib/incremental.py --state /tmp/buildkit-lib";
        assert_eq!(
            line(incremental::Path::Full("first".into())),
            format!(
                "{mounts} -- --distpath /out --workpath /tmp/buildkit-lib/work --clean \
                 --noconfirm deskapp.spec"
            )
        );
        assert_eq!(
            line(incremental::Path::Incremental(vec![
                "src/deskapp/cli.py".into()
            ])),
            format!(
                "{mounts} --incremental --reuse-analysis /src/src/deskapp/cli.py -- --distpath \
                 /out --workpath /tmp/buildkit-lib/work --noconfirm deskapp.spec"
            )
        );
    }

    #[test]
    fn golden_isolated_commands() {
        let (package, session) = fixture();
        let out = Path::new("/p/.dist.raw-x");
        assert_eq!(
            package
                .export_build(&session, out)
                .unwrap()
                .command()
                .to_string(),
            "docker buildx build --progress=rawjson --target artifact \
             --build-arg 'PYINSTALLER_ARGS=--clean --noconfirm deskapp.spec' \
             --label dev.buildkit-lib.project=deskapp --label dev.buildkit-lib.run=r1 \
             --build-context runtime=docker-image://deskapp:runtime --network=none \
             --output type=local,dest=/p/.dist.raw-x /p/app"
        );
        let cmds: Vec<String> = package
            .copy_out_commands(&session, "deskapp_copyout_r1", out)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            cmds,
            [
                "docker create --name deskapp_copyout_r1 --label dev.buildkit-lib.project=deskapp \
                 --label dev.buildkit-lib.run=r1 --network none deskapp:package",
                "docker cp deskapp_copyout_r1:/out/. /p/.dist.raw-x",
                "docker rm deskapp_copyout_r1",
            ]
        );
    }
}
