//! [`Package`]: the package stage, run mounted or isolated, replacing `dist/` atomically.
//!
//! Mounted: PyInstaller runs in a container of the runtime image with the source mounted
//! read-only and an output directory mounted, as the invoking user. Isolated (CI): no
//! volume mounts at all; the artifacts leave through `--output type=local` or through
//! `docker create` + `docker cp`. Either way they are checked into a staging directory
//! beside `dist/` and swapped in only when everything succeeded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::artifacts::{collect, ArtifactReport};
use super::disk;
use super::pyinstaller::PyInstaller;
use super::stages::{Stage, Stages};
use crate::cmd::{Cmd, Runner};
use crate::docker::build::Output;
use crate::files::StagedDir;
use crate::plan::{Plan, Planned};
use crate::python::remove_container;
use crate::session::Session;

/// Where the source is inside the package container.
pub const SOURCE_DIR: &str = "/src";
/// Where PyInstaller writes the artifacts inside the package container.
pub const OUT_DIR: &str = "/out";
/// PyInstaller's work directory inside the package container.
pub const WORK_DIR: &str = "/tmp/build";

/// How the package stage gets the source in and the artifacts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A container with the source and an output directory mounted (development).
    Mounted,
    /// No volume mounts at all (CI).
    Isolated(Export),
}

/// How the isolated mode gets the artifacts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Export {
    /// `docker buildx build --target artifact --output type=local,dest=...`.
    BuildOutput,
    /// Build the package image, then `docker create` + `docker cp` + `docker rm`.
    CopyOut,
}

/// The package step: PyInstaller in the runtime image, the result in `dist`.
///
/// [`Package::new`] with the images, the PyInstaller run and the mode, then the setters
/// ([`Package::dist`], [`Package::expect`], [`Package::source_date_epoch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Package {
    /// The release images (the runtime image must exist, see [`Stages::build_runtime`]).
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
}

/// The `PYTHONHASHSEED` of a reproducible packaging (any fixed value would do).
pub const REPRODUCIBLE_HASH_SEED: &str = "0";

/// Two clean packagings compared file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DistComparison {
    /// Files in the first packaging.
    pub files: usize,
    /// Paths (relative to `dist`) whose content differs, or that only one packaging has
    /// (`only in first`/`only in second` in `why`), sorted.
    pub differing: Vec<DistDifference>,
}

/// One file that differs between two packagings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DistDifference {
    /// The path relative to `dist`.
    pub path: String,
    /// `content` (different sha256), `only in first` or `only in second`.
    pub why: String,
}

impl DistComparison {
    /// True when both packagings hold the same files with the same bytes.
    pub fn is_identical(&self) -> bool {
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
    /// Packages `stages.context` with `pyinstaller` into `<context>/dist`.
    pub fn new(stages: Stages, pyinstaller: PyInstaller, mode: Mode) -> Package {
        Package {
            dist: stages.context.join("dist"),
            stages,
            pyinstaller,
            mode,
            expect: Vec::new(),
            source_date_epoch: None,
        }
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

    /// The directory replaced by the artifacts.
    pub fn get_dist(&self) -> &Path {
        &self.dist
    }

    /// The `SOURCE_DATE_EPOCH` of a reproducible packaging, when set.
    pub fn get_source_date_epoch(&self) -> Option<u64> {
        self.source_date_epoch
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

    /// Packages twice from scratch (no build cache, PyInstaller's `--clean`) into two
    /// temporary folders beside `dist` and compares them file by file (sha256). `dist`
    /// is not touched and both folders are removed. Set
    /// [`Package::source_date_epoch`] first: without it, timestamps differ. Like
    /// [`Package::run`], it labels what it creates with the runner's session.
    pub fn compare_runs(&self, runner: &Runner) -> Result<DistComparison> {
        let session = runner.require_session("the package step")?;
        let parent = self
            .dist
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut this = self.clone();
        this.stages.no_cache = true;
        this.stages.context = std::fs::canonicalize(&self.stages.context).with_context(|| {
            format!(
                "the build context {} does not exist",
                self.stages.context.display()
            )
        })?;
        let mut sums = Vec::new();
        for _ in 0..2 {
            let dir = temp_dir_in(parent, ".dist.repro-")?;
            let _guard = runner.remove_on_cancel(dir.path());
            let out = std::fs::canonicalize(dir.path())
                .with_context(|| format!("cannot resolve {}", dir.path().display()))?;
            this.produce(runner, session, &out)?;
            if runner.is_dry_run() {
                return Ok(DistComparison {
                    files: 0,
                    differing: Vec::new(),
                });
            }
            let report = ArtifactReport::scan(&out)?;
            sums.push(
                report
                    .files
                    .into_iter()
                    .map(|f| (f.path.to_string_lossy().into_owned(), f.sha256))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            );
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
        Ok(DistComparison {
            files: a.len(),
            differing,
        })
    }

    /// Requires `file` (relative to `dist`) among the artifacts before `dist` is
    /// replaced.
    pub fn expect(mut self, file: impl Into<PathBuf>) -> Package {
        self.expect.push(file.into());
        self
    }

    /// The mounted mode's `docker run`, in container `name`, writing into `out` on the
    /// host, as `uid:gid`.
    pub fn run_command(&self, session: &Session, name: &str, out: &Path, user: (u32, u32)) -> Cmd {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        Cmd::new("docker")
            .args(["run", "--rm", "--name", name])
            .args(session.label_args())
            .args(["--network", "none"])
            .arg("--user")
            .arg(format!("{}:{}", user.0, user.1))
            .arg("--mount")
            .arg(format!(
                "type=bind,src={},dst={SOURCE_DIR},readonly",
                self.stages.context.display()
            ))
            .arg("--mount")
            .arg(format!("type=bind,src={},dst={OUT_DIR}", out.display()))
            .args(["--workdir", SOURCE_DIR])
            .args(container_env())
            .args(
                self.reproducible_env()
                    .into_iter()
                    .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]),
            )
            .arg(runtime)
            .args(self.pyinstaller.command(OUT_DIR, WORK_DIR).argv())
    }

    /// The isolated build exporting the artifact stage into `out`.
    pub fn export_build(
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

    /// The isolated build of the package image (for [`Export::CopyOut`]).
    pub fn package_image_build(&self, session: &Session) -> Result<crate::docker::build::Build> {
        let mut build = self.isolated_build(Stage::Package, session);
        build.build_args.insert(
            "PYINSTALLER_ARGS".into(),
            self.pyinstaller.build_arg_value()?,
        );
        Ok(build)
    }

    /// `docker create`, `docker cp` and `docker rm` of the copy-out export.
    pub fn copy_out_commands(&self, session: &Session, name: &str, out: &Path) -> [Cmd; 3] {
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

    /// Runs the package stage and replaces `dist` with its artifacts; on any failure (or
    /// Ctrl-C) `dist` stays as it was and no container is left. The containers and images
    /// it creates are named and labelled for the runner's session ([`Runner::session`]),
    /// which must be set.
    pub fn run(&self, runner: &Runner) -> Result<ArtifactReport> {
        let session = runner.require_session("the package step")?;
        if runner.is_dry_run() {
            let out = self.dist.with_file_name(".dist.raw");
            self.produce(runner, session, &out)?;
            runner.note(&format!(
                "replace {} with the artifacts",
                self.dist.display()
            ));
            return Ok(ArtifactReport {
                dir: self.dist.clone(),
                files: Vec::new(),
            });
        }
        let parent = self
            .dist
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
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
        let raw = temp_dir_in(parent, ".dist.raw-")?;
        let _raw_guard = runner.remove_on_cancel(raw.path());
        // Docker wants absolute paths for bind mounts and local outputs.
        let mut this = self.clone();
        this.stages.context = std::fs::canonicalize(&self.stages.context).with_context(|| {
            format!(
                "the build context {} does not exist",
                self.stages.context.display()
            )
        })?;
        let out = std::fs::canonicalize(raw.path())
            .with_context(|| format!("cannot resolve {}", raw.path().display()))?;
        this.produce(runner, session, &out)
            .map_err(|e| disk_full_or(runner, parent, e))?;

        let staged = StagedDir::new(runner, &self.dist)?;
        let copied = collect(raw.path(), staged.path())
            .with_context(|| format!("cannot collect the artifacts into {}", self.dist.display()))
            .map_err(|e| disk_full_or(runner, parent, e))?;
        if copied == 0 {
            bail!(
                "the package step produced no files (PyInstaller wrote nothing into {OUT_DIR}); \
                 {} is left as it was",
                self.dist.display()
            );
        }
        for file in &self.expect {
            if !staged.path().join(file).is_file() {
                bail!(
                    "the package step did not produce `{}`; {} is left as it was",
                    file.display(),
                    self.dist.display()
                );
            }
        }
        staged.commit()?;
        let report = ArtifactReport::scan(&self.dist)?;
        runner.note(&report.to_string());
        Ok(report)
    }

    /// Fails with a clear error when the runtime image is missing (a `docker run` of it
    /// would try a registry and fail with a DNS error).
    fn check_runtime_image(&self, runner: &Runner) -> Result<()> {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        match runner.capture(&self.runtime_probe()) {
            Ok(_) => Ok(()),
            Err(e) if e.tail.iter().any(|l| l.contains("No such image")) => bail!(
                "the runtime image `{runtime}` does not exist; build it first \
                 (`Stages::build_runtime`), then package"
            ),
            Err(e) => Err(e).context("cannot look up the runtime image"),
        }
    }

    /// The query that checks that the runtime image exists.
    fn runtime_probe(&self) -> Cmd {
        let runtime = self.stages.image(Stage::Runtime).unwrap_or_default();
        Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", runtime])
    }

    /// What [`Package::run`] does, as a plan: the runtime image check, PyInstaller in the
    /// mode's container or build writing into a staging folder beside `dist`
    /// (`<staging>`), and the replacement of `dist`. Fails only on a PyInstaller
    /// configuration that cannot be passed as a build arg.
    pub fn plan(&self, session: &Session) -> Result<Plan> {
        let parent = self
            .dist
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let out = parent.join("<staging>");
        let mut plan = Plan::new().query(self.runtime_probe());
        match self.mode {
            Mode::Mounted => {
                let name = session.container_name("package");
                let user = unsafe { (libc::getuid(), libc::getgid()) };
                plan = plan.run(self.run_command(session, &name, &out, user));
            }
            Mode::Isolated(Export::BuildOutput) => {
                plan = plan.then(self.export_build(session, &out)?.plan());
            }
            Mode::Isolated(Export::CopyOut) => {
                plan = plan.then(self.package_image_build(session)?.plan());
                let name = session.container_name("copyout");
                for cmd in self.copy_out_commands(session, &name, &out) {
                    plan = plan.run(cmd);
                }
            }
        }
        let mut replace = format!(
            "the artifacts replace {} whole (staged beside it, then renamed into place)",
            self.dist.display()
        );
        if !self.expect.is_empty() {
            let expected: Vec<String> = self
                .expect
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            replace.push_str(&format!(", only if they hold {}", expected.join(", ")));
        }
        Ok(plan.note(replace))
    }

    /// With [`Package::source_date_epoch`] in the isolated mode: the package stage must
    /// declare the build args, or its `RUN` never sees them.
    fn check_reproducible_args(&self) -> Result<()> {
        if self.source_date_epoch.is_none() || self.mode == Mode::Mounted {
            return Ok(());
        }
        let dockerfile = self
            .stages
            .dockerfile
            .clone()
            .unwrap_or_else(|| self.stages.context.join("Dockerfile"));
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
    fn produce(&self, runner: &Runner, session: &Session, out: &Path) -> Result<()> {
        self.check_reproducible_args()?;
        self.check_runtime_image(runner)?;
        match self.mode {
            Mode::Mounted => {
                let name = session.container_name("package");
                let _guard = runner.on_cancel(remove_container(runner, &name));
                let user = unsafe { (libc::getuid(), libc::getgid()) };
                let cmd = self.run_command(session, &name, out, user);
                runner
                    .run(&cmd)
                    .with_context(|| format!("PyInstaller failed in container {name}"))?;
            }
            Mode::Isolated(Export::BuildOutput) => {
                self.export_build(session, out)?
                    .run(runner)
                    .context("PyInstaller failed in the isolated package build")?;
            }
            Mode::Isolated(Export::CopyOut) => {
                self.package_image_build(session)?
                    .run(runner)
                    .context("PyInstaller failed in the isolated package build")?;
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

/// A new temporary directory in `parent` (beside `dist`, so a rename stays on one file
/// system), removed when dropped.
fn temp_dir_in(parent: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })
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
        let stages = Stages::new("/p/app", "deskapp");
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
