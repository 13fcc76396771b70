//! PyInstaller packaging of the desktop fixture through its three image stages, against
//! the real engine: mounted and isolated modes, atomic `dist/`, refused symlinks, clean-up.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stage, Stages};
use buildkit_lib::plan::Step;
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

/// This file's tests use the engine one at a time: removing one test's images while
/// another exports layers they share has made the engine's containerd store answer
/// `failed to solve: not found`.
fn engine_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fixture's stages under unique image names, built while holding the engine for the
/// whole test; the images are removed when dropped.
struct Images {
    stages: Stages,
    /// The image name the stages are tagged under (`<image>:base`, `<image>:runtime`).
    image: String,
    runner: Runner,
    _engine: std::sync::MutexGuard<'static, ()>,
}

impl Images {
    /// The tag of stage `name` (`Stages::new` tags each stage `<image>:<name>`).
    fn tag(&self, name: &str) -> String {
        format!("{}:{name}", self.image)
    }

    /// Builds the base and runtime images of `project` (the layer cache makes this quick
    /// after the first time).
    fn build(project: &Path, session: &Session) -> Images {
        Images::build_with(project, session, "host", |stages| stages)
    }

    /// [`Images::build`] with more settings: the builds' `network`, then the stages'.
    fn build_with(
        project: &Path,
        session: &Session,
        network: &str,
        configure: impl FnOnce(Stages) -> Stages,
    ) -> Images {
        let engine = engine_lock();
        // The package step labels what it creates with the runner's session.
        let runner = e2e::engine().session(session.clone());
        let image = e2e::unique("buildkit-e2e-deskapp");
        let build = Build::new(project)
            .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE)
            .network(network);
        let stages = configure(Stages::new(build, &image));
        let images = Images {
            stages,
            image,
            runner,
            _engine: engine,
        };
        for stage in [Stage::Base, Stage::Runtime] {
            images
                .stages
                .build(stage, session)
                .run(&images.runner)
                .unwrap();
        }
        images
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for stage in ["base", "runtime", "package"] {
            let image = self.tag(stage);
            let _ = self
                .runner
                .capture(&Cmd::new("docker").args(["image", "rm", "--force", &image]));
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

/// The package step's staging folders left beside the project (`.<name>-dist.raw-*`,
/// `.<name>-dist.repro-*`): it stages there, outside the build context.
fn staged_beside(project: &Path) -> Vec<String> {
    let name = project.file_name().unwrap().to_string_lossy();
    let prefix = format!(".{}-", name.trim_start_matches('.'));
    fs::read_dir(project.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
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
    for mode in [Mode::Mounted, Mode::Isolated, Mode::IsolatedCopyOut] {
        let step_runner = runner.with_fresh_record();
        let report = Package::new(images.stages.clone(), spec.clone(), mode)
            .expect("deskapp")
            .run(&step_runner)
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        assert!(report
            .to_string()
            .starts_with(&format!("artifacts in {}:", dist.display())));
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
        // The report's line for the binary: its sha256, its size and its path.
        assert_eq!(
            report
                .to_string()
                .lines()
                .nth(1)
                .map(|line| line.split_whitespace().map(str::to_string).collect()),
            Some(vec![
                e2e::sha256_file(&binary).unwrap(),
                fs::metadata(&binary).unwrap().len().to_string(),
                "deskapp".to_string(),
            ]),
            "{report}"
        );
        if let Mode::Isolated | Mode::IsolatedCopyOut = mode {
            assert_no_mounts(&step_runner.recorded().commands());
        } else {
            let run = step_runner
                .recorded()
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
    assert_eq!(staged_beside(project.path()), Vec::<String>::new());
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

    for mode in [Mode::Mounted, Mode::Isolated, Mode::IsolatedCopyOut] {
        let err = Package::new(
            images.stages.clone(),
            PyInstaller::spec("deskapp.spec"),
            mode,
        )
        .run(&runner)
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
    assert_eq!(staged_beside(project.path()), Vec::<String>::new());
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
        Mode::Isolated,
    )
    .run(&images.runner)
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

#[test]
fn an_entry_script_builds_one_folder_alike_in_both_modes() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build(project.path(), &session);
    let script = PyInstaller::script("src/deskapp/__main__.py")
        .one_dir()
        .name("deskapp")
        .path("src");
    let mut lists = Vec::new();
    for mode in [Mode::Mounted, Mode::Isolated] {
        let report = Package::new(images.stages.clone(), script.clone(), mode)
            .expect("deskapp/deskapp")
            .run(&images.runner)
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        let binary = project.path().join("dist/deskapp/deskapp");
        assert_eq!(
            run_binary(&binary, &["--version"]),
            "deskapp 0.3.1\n",
            "{mode:?}"
        );
        assert!(project.path().join("dist/deskapp/_internal").is_dir());
        assert!(report.paths().len() > 5, "{report}");
        lists.push(report.paths());
    }
    assert_eq!(lists[0], lists[1]);
    assert!(
        !project.path().join("deskapp.spec.bak").exists()
            && fs::read_dir(project.path())
                .unwrap()
                .all(|e| e.unwrap().file_name() != "build"),
        "nothing written into the source tree"
    );
}

#[test]
fn a_dry_run_prints_the_plan_and_runs_nothing() {
    let project = e2e::repo_root().join("fixtures/desktop");
    // Nothing may reach an engine: there is none at this socket.
    let mut session = Session::new("deskapp");
    session.run_id = "plan".into();
    let runner = Runner::new()
        .dry_run(true)
        .echo(buildkit_lib::cmd::Echo::Silent)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .session(session.clone());
    let stages = Stages::new(
        Build::new(&project).build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE),
        "deskapp",
    );
    stages.build(Stage::Base, &session).run(&runner).unwrap();
    stages.build(Stage::Runtime, &session).run(&runner).unwrap();
    let dist_before = project.join("dist").exists();
    Package::new(
        stages,
        PyInstaller::spec("deskapp.spec"),
        Mode::IsolatedCopyOut,
    )
    .run(&runner)
    .unwrap();
    let plan: Vec<String> = runner
        .recorded()
        .commands()
        .iter()
        .map(|argv| argv[..3.min(argv.len())].join(" "))
        .collect();
    assert_eq!(
        plan,
        [
            // base, then runtime: each build and its image; buildx's version (for the
            // build records) asked once, after the first build
            "docker buildx build".to_string(),
            "docker buildx version".to_string(),
            "docker image inspect".to_string(),
            "docker buildx build".to_string(),
            "docker image inspect".to_string(),
            // Staged beside the fixture's folder, never inside its build context.
            format!(
                "mkdir -p {}",
                project.with_file_name(".desktop-dist.raw-plan").display()
            ),
            // the runtime image is there, then the package stage and its copy-out
            "docker image inspect".to_string(),
            "docker buildx build".to_string(),
            "docker image inspect".to_string(),
            "docker create --name".to_string(),
            "docker cp deskapp_copyout_plan:/out/.".to_string(),
            "docker rm deskapp_copyout_plan".to_string(),
        ]
    );
    assert_eq!(project.join("dist").exists(), dist_before);
}

#[test]
fn ctrl_c_removes_the_package_container_and_keeps_dist() {
    let project = fixture_copy();
    let spec = project.path().join("deskapp.spec");
    let slow = format!(
        "import time\n\ntime.sleep(120)\n{}",
        fs::read_to_string(&spec).unwrap()
    );
    fs::write(&spec, slow).unwrap();
    let dist = project.path().join("dist");
    fs::create_dir_all(&dist).unwrap();
    fs::write(dist.join("deskapp"), "the previous build").unwrap();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build(project.path(), &session);
    let runner = images.runner.clone();

    let child = Cmd::new(env!("CARGO_BIN_EXE_package_interrupted"))
        .arg(project.path().display().to_string())
        .arg(session.run_id.clone())
        .arg(images.tag("runtime"))
        .timeout(std::time::Duration::from_secs(180));
    let child_runner = runner.clone();
    let running = std::thread::spawn(move || child_runner.run(&child).map_err(Box::new));

    let started = std::time::Instant::now();
    while containers_of(&runner, &session).is_empty() {
        assert!(
            started.elapsed().as_secs() < 90,
            "the package container never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let pid = fs::read_to_string(project.path().join("child.pid")).unwrap();
    runner
        .run(&Cmd::new("kill").args(["-INT", pid.trim()]))
        .unwrap();
    let ended = running.join().unwrap().unwrap_err();
    assert_eq!(ended.exit_code(), Some(130), "{ended}");
    assert_eq!(containers_of(&runner, &session), "");
    assert_eq!(
        fs::read_to_string(dist.join("deskapp")).unwrap(),
        "the previous build"
    );
    let temporary: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dist"))
        .collect();
    assert!(
        temporary.is_empty(),
        "temporary directories left: {temporary:?}"
    );
    assert_eq!(staged_beside(project.path()), Vec::<String>::new());
}

#[test]
fn the_runtime_stage_installs_offline_from_a_wheelhouse() {
    let project = fixture_copy();
    let wheels = tempfile::tempdir().unwrap();
    let runner = e2e::runner();
    // `pip download` of binary wheels only, with an interpreter of the image's Python
    // version and platform (a virtual environment's, which has pip).
    let venv = tempfile::tempdir().unwrap();
    runner
        .run(&Cmd::new("python3").args(["-m", "venv"]).arg(venv.path()))
        .unwrap();
    runner
        .run(
            &Cmd::new(venv.path().join("bin/python").display().to_string())
                .args(["-m", "pip", "download", "--only-binary=:all:", "--dest"])
                .arg(wheels.path())
                .arg("pyinstaller==6.11.1"),
        )
        .unwrap();
    let session = Session::new(e2e::unique("deskapp"));
    // No network at all: pip can only read the wheelhouse.
    let images = Images::build_with(project.path(), &session, "none", |stages| {
        stages.wheelhouse(wheels.path())
    });
    let runtime = images.tag("runtime");
    let version = images
        .runner
        .capture(&Cmd::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            &runtime,
            "pyinstaller",
            "--version",
        ]))
        .unwrap();
    assert_eq!(version.stdout.trim(), "6.11.1");
    let report = Package::new(
        images.stages.clone(),
        PyInstaller::spec("deskapp.spec"),
        Mode::Isolated,
    )
    .run(&images.runner)
    .unwrap();
    assert_eq!(report.paths(), [PathBuf::from("deskapp")]);
}

#[test]
fn each_stage_is_a_labelled_image_with_its_cache_and_rebuilds_alone() {
    let project = fixture_copy();
    let cache = tempfile::tempdir().unwrap();
    let session = Session::new(e2e::unique("deskapp"));
    let images = Images::build_with(project.path(), &session, "host", |stages| {
        stages.cache(
            Stage::Runtime,
            buildkit_lib::docker::Cache::local(cache.path().join("runtime")),
        )
    });
    assert!(cache.path().join("runtime/index.json").is_file());
    for stage in ["base", "runtime"] {
        let image = images.tag(stage);
        let label = images
            .runner
            .capture(&Cmd::new("docker").args([
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"dev.buildkit-lib.run\"}}",
                &image,
            ]))
            .unwrap();
        assert_eq!(label.stdout.trim(), session.run_id, "{image}");
    }
    // Rebuilding the runtime alone reuses every layer: pip does not run again.
    let log = cache.path().join("rebuild.log");
    let rebuilt = images
        .stages
        .build(Stage::Runtime, &session)
        .run(&images.runner.clone().log_to(&log))
        .unwrap();
    let logged = fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("Collecting pyinstaller"), "{logged}");
    assert!(logged.contains("CACHED"), "{logged}");
    assert_eq!(rebuilt.tags, [images.tag("runtime")]);
}

#[test]
fn packaging_without_the_runtime_image_says_to_build_it() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("deskapp"));
    let runner = e2e::engine().session(session);
    let image = e2e::unique("buildkit-e2e-missing");
    let err = Package::new(
        Stages::new(Build::new(project.path()), &image),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .run(&runner)
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the runtime image `{image}:runtime` does not exist; build it first \
             (`Stages::build(Stage::Runtime, ..)`), then package"
        )
    );
    assert!(!project.path().join("dist").exists());
}

#[test]
fn two_clean_packagings_are_byte_identical_and_a_bundled_timestamp_is_named() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("pkgrepro"));
    let images = Images::build(project.path(), &session);
    let spec = PyInstaller::spec("deskapp.spec");
    for mode in [Mode::Mounted, Mode::Isolated] {
        let package = Package::new(images.stages.clone(), spec.clone(), mode)
            .source_date_epoch(1_700_000_000);
        let same = package.compare_runs(&images.runner).unwrap();
        assert!(same.is_reproducible(), "{mode:?}: {same}");
        // "... gave the same N file(s), byte for byte", N at least 1.
        assert!(
            !same.to_string().contains("the same 0 file(s)"),
            "{mode:?}: {same}"
        );
    }
    // A spec that bundles the packaging time: the check must see the binary differ.
    let spec_path = project.path().join("deskapp.spec");
    let spec_text = fs::read_to_string(&spec_path).unwrap();
    fs::write(
        &spec_path,
        spec_text
            .replace(
                "import os\n",
                "import os\nimport time\n\nwith open('/tmp/stamp.txt', 'w') as f:\n    \
                 f.write(str(time.time_ns()))\n",
            )
            .replace("    datas=[],", "    datas=[('/tmp/stamp.txt', '.')],"),
    )
    .unwrap();
    let package =
        Package::new(images.stages.clone(), spec, Mode::Mounted).source_date_epoch(1_700_000_000);
    let differs = package.compare_runs(&images.runner).unwrap();
    assert!(!differs.is_reproducible(), "{differs}");
    // One file differs, the binary, by its content.
    assert!(
        differs.to_string().starts_with("not reproducible: 1 of "),
        "{differs}"
    );
    assert_eq!(
        differs.to_string().lines().skip(1).collect::<Vec<_>>(),
        ["  deskapp (content)"],
        "{differs}"
    );
    assert!(
        differs.to_string().contains("deskapp (content)"),
        "{differs}"
    );
    // Nothing of the check is left beside dist, and no container.
    let leftovers: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".dist"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(staged_beside(project.path()), Vec::<String>::new());
    assert_eq!(containers_of(&images.runner, &session), "");
}

#[test]
fn a_package_stage_that_hides_the_epoch_is_refused_by_name() {
    let project = fixture_copy();
    let dockerfile = project.path().join("Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    fs::write(&dockerfile, text.replace("ARG PYTHONHASHSEED\n", "")).unwrap();
    let session = Session::new(e2e::unique("pkgrepro"));
    let stages = Stages::new(Build::new(project.path()), "buildkit-e2e-never-built");
    let package = Package::new(stages, PyInstaller::spec("deskapp.spec"), Mode::Isolated)
        .source_date_epoch(1_700_000_000);
    let err = format!(
        "{:#}",
        package
            .compare_runs(&e2e::runner().session(session))
            .unwrap_err()
    );
    assert!(
        err.contains("stage `package`") && err.contains("add `ARG PYTHONHASHSEED`"),
        "{err}"
    );
}

/// Edits `rel` in `project` with `edit`, keeping its modification time when `keep_time`
/// (an edit PyInstaller's own time-based check would miss).
fn edit(project: &Path, rel: &str, keep_time: bool, edit: impl FnOnce(String) -> String) {
    let path = project.join(rel);
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, edit(fs::read_to_string(&path).unwrap())).unwrap();
    if keep_time {
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

/// sha256 of every file in `dir`, by relative path.
fn sums(dir: &Path) -> Vec<(String, String)> {
    walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                e2e::sha256_file(&p).unwrap(),
            )
        })
        .collect()
}

/// The proof of incremental packaging: for each kind of change, the path taken is the
/// one named, and the result is, file by file, what a clean packaging of the same sources
/// gives (same `SOURCE_DATE_EPOCH`), and the binary runs and shows the change.
#[test]
fn incremental_packaging_equals_a_clean_one_for_every_kind_of_change() {
    let project = fixture_copy();
    let root = project.path();
    // A data file the spec ships, a module that can go away, and a mark the binary prints.
    fs::write(root.join("src/deskapp/banner.txt"), "hello\n").unwrap();
    fs::write(root.join("src/deskapp/extra.py"), "EXTRA = 1\n").unwrap();
    edit(root, "deskapp.spec", false, |t| {
        t.replace(
            "    datas=[],",
            "    datas=[(os.path.join(src, 'deskapp', 'banner.txt'), 'deskapp')],",
        )
    });
    edit(root, "src/deskapp/app.py", false, |t| {
        t.replace(
            "from deskapp.settings import Settings\n",
            "from deskapp.settings import Settings\n\ntry:\n    from deskapp import extra\n\
             except ImportError:\n    extra = None\n\nMARK = \"v0\"\n",
        )
        .replace(
            "        \"theme\": settings.theme,\n",
            "        \"theme\": settings.theme,\n        \"mark\": MARK,\n        \"extra\": \
             extra is not None,\n",
        )
    });
    let session = Session::new(e2e::unique("pkginc"));
    let images = Images::build(root, &session);
    let state = tempfile::tempdir().unwrap();
    let package = |state: &Path| {
        Package::new(
            images.stages.clone(),
            PyInstaller::spec("deskapp.spec"),
            Mode::Mounted,
        )
        .expect("deskapp")
        .source_date_epoch(1_700_000_000)
        .incremental(state)
    };
    let dist = root.join("dist");
    let facts = || -> serde_json::Value {
        serde_json::from_str(&run_binary(&dist.join("deskapp"), &["--json"])).unwrap()
    };
    let path_of = |state: &Path| {
        let report = package(state).run(&images.runner).unwrap();
        report.path_taken().unwrap().to_string()
    };

    let first = path_of(state.path());
    assert_eq!(
        first,
        "packaging: full, no earlier packaging is recorded in the state folder"
    );
    let before = sums(&dist);
    assert_eq!(
        path_of(state.path()),
        "packaging: up to date (no source file, argument or runtime image changed, and dist \
         holds the last packaging's files)"
    );
    assert_eq!(sums(&dist), before, "an up-to-date dist is left as it was");
    // dist edited by hand: not up to date any more.
    fs::write(dist.join("deskapp"), "not a binary").unwrap();
    assert!(path_of(state.path()).starts_with("packaging: incremental"));
    assert_eq!(sums(&dist), before);

    type Change = (&'static str, Box<dyn Fn(&Path)>, &'static str);
    let changes: Vec<Change> = vec![
        (
            "a body edit, modification time kept",
            Box::new(|root| {
                edit(root, "src/deskapp/app.py", true, |t| {
                    t.replace("MARK = \"v0\"", "MARK = \"v1\"")
                })
            }),
            "packaging: incremental, analysis reused: src/deskapp/app.py changed, imports \
             unchanged",
        ),
        (
            "a new import of a standard module",
            Box::new(|root| {
                edit(root, "src/deskapp/settings.py", false, |t| {
                    format!("import textwrap\n{t}")
                })
            }),
            "packaging: full, src/deskapp/settings.py: its imports changed (+import textwrap)",
        ),
        (
            "a new import of an installed package",
            Box::new(|root| {
                edit(root, "src/deskapp/app.py", false, |t| {
                    t.replace("import sys\n", "import sys\n\nimport packaging.version\n")
                })
            }),
            "packaging: full, src/deskapp/app.py: its imports changed (+import \
             packaging.version)",
        ),
        (
            "a removed module",
            Box::new(|root| fs::remove_file(root.join("src/deskapp/extra.py")).unwrap()),
            "packaging: full, src/deskapp/extra.py was removed",
        ),
        (
            "a data file",
            Box::new(|root| fs::write(root.join("src/deskapp/banner.txt"), "changed\n").unwrap()),
            "packaging: full, src/deskapp/banner.txt changed (not an application module)",
        ),
        (
            "the spec",
            Box::new(|root| {
                edit(root, "deskapp.spec", false, |t| {
                    t.replace(
                        "excludes=[\"tkinter\"]",
                        "excludes=[\"tkinter\", \"unittest\"]",
                    )
                })
            }),
            "packaging: full, deskapp.spec changed (not an application module)",
        ),
    ];
    for (what, change, expected) in changes {
        change(root);
        assert_eq!(path_of(state.path()), expected, "{what}");
        let incremental = sums(&dist);
        let shown = facts();
        // A clean packaging of the same sources, with a state folder of its own.
        let clean_state = tempfile::tempdir().unwrap();
        assert!(path_of(clean_state.path()).starts_with("packaging: full, no earlier"));
        assert_eq!(incremental, sums(&dist), "{what}: incremental ≠ clean");
        assert_eq!(shown, facts(), "{what}");
    }
    let shown = facts();
    assert_eq!(shown["mark"], "v1", "the body edit reached the binary");
    assert_eq!(shown["extra"], false, "the removed module left the binary");
    assert_eq!(containers_of(&images.runner, &session), "");
}

#[test]
fn pyinstallers_own_error_names_a_missing_spec_and_a_failed_import_in_both_modes() {
    let project = fixture_copy();
    let session = Session::new(e2e::unique("pkgerr"));
    let images = Images::build(project.path(), &session);
    let context = project.path().display().to_string();
    let first_line = |spec: &str, mode: Mode| {
        let err = Package::new(images.stages.clone(), PyInstaller::spec(spec), mode)
            .run(&images.runner)
            .unwrap_err();
        let text = format!("{err:#}");
        // A context path is never called an image.
        assert!(
            !text.contains(&format!("cannot build image {context}")),
            "{mode:?}: {text}"
        );
        text.lines().next().unwrap_or_default().to_string()
    };
    for mode in [Mode::Mounted, Mode::Isolated] {
        let first = first_line("nope.spec", mode);
        assert!(
            first.contains("Spec file \"nope.spec\" not found!"),
            "{mode:?}: {first}"
        );
    }
    // A spec that imports a module the runtime image does not have.
    let spec = project.path().join("deskapp.spec");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, format!("import nosuchmod\n{text}")).unwrap();
    for mode in [Mode::Mounted, Mode::Isolated] {
        let first = first_line("deskapp.spec", mode);
        assert!(
            first.contains("ModuleNotFoundError: No module named 'nosuchmod'"),
            "{mode:?}: {first}"
        );
    }
    assert_eq!(containers_of(&images.runner, &session), "");
}

/// The minimal Dockerfile of the README's section on the isolated mode's contract.
fn readme_dockerfile() -> String {
    let readme = fs::read_to_string(e2e::repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## Packaging a desktop app")
        .nth(1)
        .expect("the README's packaging section");
    let block = section
        .split("```dockerfile\n")
        .nth(1)
        .expect("a dockerfile block in it");
    block.split("```").next().unwrap().to_string()
}

#[test]
fn the_readmes_minimal_dockerfile_packages_the_fixture_in_isolation_with_a_fixed_epoch() {
    let project = fixture_copy();
    fs::write(project.path().join("Dockerfile"), readme_dockerfile()).unwrap();
    let session = Session::new(e2e::unique("pkgreadme"));
    let images = Images::build(project.path(), &session);
    let package = Package::new(
        images.stages.clone(),
        PyInstaller::spec("deskapp.spec"),
        Mode::Isolated,
    )
    .expect("deskapp")
    .source_date_epoch(1_700_000_000);
    package.run(&images.runner).unwrap();
    let binary = project.path().join("dist/deskapp");
    assert_eq!(run_binary(&binary, &["--version"]), "deskapp 0.3.1\n");
    assert_eq!(containers_of(&images.runner, &session), "");
}
