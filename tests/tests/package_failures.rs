//! Package failures that must leave the project as it was: `dist/` as a mount point (a
//! real bind mount; the tests run as root) and a full disk (fake `docker`). Neither leaves
//! a `.dist.*` folder nor a dirty `git status`, and neither is blamed on PyInstaller.

use std::fs;
use std::path::{Path, PathBuf};

use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stages};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner, Session};

/// A git project with `dist/` ignored and committed sources, and a `dist/` holding a
/// previous build.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::write(p.join(".gitignore"), "dist/\n").unwrap();
        fs::write(
            p.join("Dockerfile"),
            "FROM scratch AS runtime\nFROM runtime AS package\n",
        )
        .unwrap();
        fs::write(p.join("deskapp.spec"), "# spec\n").unwrap();
        fs::create_dir(p.join("dist")).unwrap();
        fs::write(p.join("dist/deskapp"), "the previous build").unwrap();
        let project = Project { dir };
        project.git(&["init", "-q", "-b", "main"]);
        project.git(&["-c", "user.name=T", "-c", "user.email=t@e", "add", "."]);
        project.git(&[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "init",
        ]);
        project
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let cmd = Cmd::new("git").args(args.iter().copied()).cwd(self.path());
        Runner::new()
            .echo(buildkit_lib::cmd::Echo::Silent)
            .capture(&cmd)
            .unwrap()
            .stdout
    }

    /// What is left beside `dist/` (`.dist.staging-*`, `.dist.raw-*`, `.dist.old-*`).
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dist"))
            .collect()
    }

    fn package(&self) -> Package {
        Package::new(
            Stages::new(Build::new(self.path()), "bkl-failures"),
            PyInstaller::spec("deskapp.spec"),
            Mode::Mounted,
        )
    }
}

/// A bind mount of a fresh directory over `target`, unmounted when dropped.
struct BindMount {
    target: PathBuf,
    _source: tempfile::TempDir,
}

impl BindMount {
    fn over(target: &Path) -> BindMount {
        let source = tempfile::tempdir().unwrap();
        fs::write(source.path().join("deskapp"), "the mounted build").unwrap();
        let status = std::process::Command::new("mount")
            .arg("--bind")
            .arg(source.path())
            .arg(target)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount --bind needs root");
        BindMount {
            target: target.to_path_buf(),
            _source: source,
        }
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.target)
            .status();
    }
}

fn fake_docker(calls: &Path, body: &str) -> e2e::FakeBin {
    e2e::FakeBin::new().script(
        "docker",
        &format!("echo \"$*\" >> '{}'\n{body}", calls.display()),
    )
}

#[test]
fn dist_as_a_mount_point_is_named_and_nothing_runs() {
    let project = Project::new();
    let dist = project.path().join("dist");
    let mount = BindMount::over(&dist);
    let work = tempfile::tempdir().unwrap();
    let calls = work.path().join("calls");
    let fake = fake_docker(&calls, "exit 0");
    let runner = e2e::runner()
        .env("PATH", fake.path_env())
        .session(Session::new("bkl-failures"));
    let err = project.package().run(&runner).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{d} is a mount point (a bind mount or a volume): the package step replaces it by \
             renaming a new directory into place, which a mount point does not allow; mount \
             its parent directory (the project) instead of {d} itself, or set `Package::dist` \
             to a directory that is not a mount point; nothing was built and {d} is left as \
             it was",
            d = dist.display()
        )
    );
    assert!(!calls.exists(), "docker never ran");
    assert_eq!(
        fs::read_to_string(dist.join("deskapp")).unwrap(),
        "the mounted build"
    );
    assert_eq!(project.leftovers(), Vec::<String>::new());
    assert_eq!(project.git(&["status", "--porcelain"]), "");
    drop(mount);
    assert_eq!(
        fs::read_to_string(dist.join("deskapp")).unwrap(),
        "the previous build"
    );
}

#[test]
fn a_swap_onto_a_mount_point_fails_by_name_and_leaves_the_mount_as_it_was() {
    let project = Project::new();
    let dist = project.path().join("dist");
    let _mount = BindMount::over(&dist);
    // A staging folder beside `dist/`, as the package step fills one.
    let staging = project.path().join(".dist.staging-test");
    fs::create_dir(&staging).unwrap();
    fs::write(staging.join("deskapp"), "the new build").unwrap();
    let err = e2e::runner().swap(&staging, &dist).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "cannot replace {d}: it is a mount point, and a mount point cannot be renamed \
             (Device or resource busy (os error 16)); mount its parent directory instead, or \
             write into a directory that is not a mount point; {d} is left as it was",
            d = dist.display()
        )
    );
    assert_eq!(
        fs::read_to_string(dist.join("deskapp")).unwrap(),
        "the mounted build"
    );
    // The failed swap removed its staging folder too: nothing is left beside `dist/`.
    assert!(!staging.exists(), "the staging folder is left");
    assert_eq!(project.leftovers(), Vec::<String>::new());
    assert_eq!(project.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_full_disk_is_not_blamed_on_pyinstaller() {
    let project = Project::new();
    let work = tempfile::tempdir().unwrap();
    let calls = work.path().join("calls");
    let fake = fake_docker(
        &calls,
        "case \"$1\" in\n\
         image) echo sha256:0123; exit 0;;\n\
         info) echo /srv/docker-data; exit 0;;\n\
         run) echo '  File \"PyInstaller/building/utils.py\", line 200, in copy'; \
              echo \"OSError: [Errno 28] No space left on device: '/out/deskapp/libpython3.11.so.1.0'\"; exit 1;;\n\
         esac\nexit 0",
    );
    let runner = e2e::runner()
        .env("PATH", fake.path_env())
        .session(Session::new("bkl-failures"));
    let err = project.package().run(&runner).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the disk is full (no space left on device) while packaging; this is not a \
             PyInstaller problem: free space on the disk holding {} (where the artifacts are \
             written) and on the one holding the engine's data root /srv/docker-data (images, \
             containers and build cache), e.g. with `docker builder prune` and `cargo xtask \
             clean`, then run again",
            // The artifacts are staged beside the project, outside its build context.
            project.path().parent().unwrap().display()
        )
    );
    let full = format!("{err:#}");
    assert!(
        full.contains("[Errno 28] No space left on device"),
        "{full}"
    );
    let calls: Vec<String> = fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(calls, ["image", "run", "info"]);
    assert_eq!(
        fs::read_to_string(project.path().join("dist/deskapp")).unwrap(),
        "the previous build"
    );
    assert_eq!(project.leftovers(), Vec::<String>::new());
    assert_eq!(project.git(&["status", "--porcelain"]), "");
}
