//! PyInstaller packaging of the desktop fixture through its three image stages, against
//! the real engine: mounted and isolated modes, atomic `dist/`, refused symlinks, clean-up.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use buildkit_lib::package::{Export, Mode, Package, PyInstaller, Stage, Stages};
use buildkit_lib::{Cmd, Runner, Session};

/// A copy of the desktop fixture (so builds never write into the repository).
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = e2e::repo_root().join("fixtures/desktop");
    for entry in walk(&from) {
        let rel = entry.strip_prefix(&from).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        if first == "dist" || first == "build" || rel.to_string_lossy().contains("__pycache__") {
            continue;
        }
        let dest = dir.path().join(rel);
        if entry.is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(&entry, &dest).unwrap();
        }
    }
    dir
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out.sort();
    out
}

/// Stage builds and image removals of this file's tests, one at a time: removing one
/// test's images while another exports the same layers has made the engine's
/// containerd store answer `failed to solve: not found`.
fn engine_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fixture's stages under unique image names; the images are removed when dropped.
struct Images {
    stages: Stages,
    runner: Runner,
}

impl Images {
    /// Builds the base and runtime images of `project` (the layer cache makes this quick
    /// after the first time).
    fn build(project: &Path, session: &Session) -> Images {
        let runner = e2e::engine();
        let stages = Stages::new(project, &e2e::unique("buildkit-e2e-deskapp"))
            .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE)
            .network("host");
        let images = Images { stages, runner };
        let built = {
            let _one_at_a_time = engine_lock();
            images
                .stages
                .build_base(&images.runner, session)
                .and_then(|_| images.stages.build_runtime(&images.runner, session))
        };
        // Panic only once the lock is released: dropping `images` takes it again.
        if let Err(e) = built {
            panic!("cannot build the stages: {e:?}");
        }
        images
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _one_at_a_time = engine_lock();
        for stage in [Stage::Base, Stage::Runtime, Stage::Package] {
            let image = self.stages.image(stage).unwrap();
            let _ = self
                .runner
                .capture(&Cmd::new("docker").args(["image", "rm", "--force", image]));
        }
    }
}

fn containers_of(runner: &Runner, session: &Session) -> String {
    runner
        .capture(&Cmd::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.buildkit-lib.run={}", session.run_id),
        ]))
        .unwrap()
        .stdout
        .trim()
        .to_string()
}

fn run_binary(path: &Path, args: &[&str]) -> String {
    let out = e2e::runner()
        .capture(&Cmd::new(path.display().to_string()).args(args.iter().copied()))
        .unwrap();
    out.stdout
}

fn assert_no_mounts(commands: &[Vec<String>]) {
    assert!(!commands.is_empty());
    for argv in commands {
        for arg in argv {
            assert!(
                !(arg == "-v" || arg.starts_with("--mount") || arg.starts_with("--volume")),
                "isolated mode passed a mount: {argv:?}"
            );
        }
    }
}

#[test]
fn both_modes_produce_the_same_working_binary_owned_by_the_user() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build(project.path(), &session);
    let runner = images.runner.clone();
    let dist = project.path().join("dist");
    fs::create_dir_all(&dist).unwrap();
    fs::write(dist.join("stale.txt"), "from an older build").unwrap();

    let spec = PyInstaller::spec("deskapp.spec");
    let mut lists = Vec::new();
    for mode in [
        Mode::Mounted,
        Mode::Isolated(Export::BuildOutput),
        Mode::Isolated(Export::CopyOut),
    ] {
        let step_runner = runner.with_fresh_record();
        let report = Package::new(images.stages.clone(), spec.clone(), mode)
            .expect("deskapp")
            .run(&step_runner, &session)
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        assert_eq!(report.dir, dist);
        assert!(!dist.join("stale.txt").exists(), "dist/ was replaced");
        let binary = dist.join("deskapp");
        assert_eq!(
            run_binary(&binary, &["--version"]),
            "deskapp 0.3.1\n",
            "{mode:?}"
        );
        let facts: serde_json::Value =
            serde_json::from_str(&run_binary(&binary, &["--json"])).unwrap();
        assert_eq!(facts["frozen"], true);
        assert_eq!(facts["python"].as_str().unwrap()[..5].to_string(), "3.11.");
        let me = unsafe { (libc::getuid(), libc::getgid()) };
        for file in walk(&dist) {
            let meta = fs::symlink_metadata(&file).unwrap();
            assert_eq!((meta.uid(), meta.gid()), me, "{} owner", file.display());
        }
        let artifact = &report.files[0];
        assert_eq!(artifact.size, fs::metadata(&binary).unwrap().len());
        assert_eq!(
            artifact.sha256,
            buildkit_lib::hash::sha256_file(&binary).unwrap()
        );
        if let Mode::Isolated(_) = mode {
            assert_no_mounts(&step_runner.commands());
        } else {
            let run = step_runner
                .commands()
                .into_iter()
                .find(|argv| argv[1] == "run")
                .unwrap();
            assert!(run.contains(&format!("{}:{}", me.0, me.1)));
        }
        lists.push((mode, report.paths()));
        fs::write(dist.join("stale.txt"), "from an older build").unwrap();
    }
    assert_eq!(lists[0].1, vec![PathBuf::from("deskapp")]);
    assert_eq!(lists[0].1, lists[1].1);
    assert_eq!(lists[0].1, lists[2].1);
    assert_eq!(containers_of(&runner, &session), "");
    let siblings: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dist"))
        .collect();
    assert!(
        siblings.is_empty(),
        "temporary directories left: {siblings:?}"
    );
}

#[test]
fn a_failing_package_step_leaves_dist_and_no_container_behind() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build(project.path(), &session);
    let runner = images.runner.clone();
    let dist = project.path().join("dist");
    fs::create_dir_all(&dist).unwrap();
    fs::write(dist.join("deskapp"), "the previous build").unwrap();
    let app = project.path().join("src/deskapp/app.py");
    let broken = fs::read_to_string(&app)
        .unwrap()
        .replace("def main(argv=None):", "def main(argv=None)");
    fs::write(&app, broken).unwrap();

    for mode in [Mode::Mounted, Mode::Isolated(Export::BuildOutput)] {
        let err = Package::new(
            images.stages.clone(),
            PyInstaller::spec("deskapp.spec"),
            mode,
        )
        .run(&runner, &session)
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("SyntaxError") || text.contains("Syntax error"),
            "{mode:?}: {text}"
        );
        assert!(text.contains("app.py"), "{mode:?}: {text}");
        assert_eq!(
            fs::read_to_string(dist.join("deskapp")).unwrap(),
            "the previous build"
        );
        assert_eq!(fs::read_dir(&dist).unwrap().count(), 1);
    }
    assert_eq!(containers_of(&runner, &session), "");
    let names: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dist"))
        .collect();
    assert!(names.is_empty(), "temporary directories left: {names:?}");
}

#[test]
fn an_artifact_symlink_to_etc_passwd_is_refused() {
    let project = fixture_copy();
    let dockerfile = project.path().join("Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap().replace(
        "FROM scratch AS artifact",
        "RUN ln -s /etc/passwd /out/passwd\n\nFROM scratch AS artifact",
    );
    fs::write(&dockerfile, text).unwrap();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build(project.path(), &session);
    let err = Package::new(
        images.stages.clone(),
        PyInstaller::spec("deskapp.spec"),
        Mode::Isolated(Export::BuildOutput),
    )
    .run(&images.runner, &session)
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "cannot collect the artifacts into {}: refusing to copy artifact `passwd`: it is \
             a symlink to `/etc/passwd`, outside the artifact directory; make the build write \
             the file itself, not a link",
            project.path().join("dist").display()
        )
    );
    assert!(!project.path().join("dist").exists());
}
