//! The package step's real code against a fake engine: PyInstaller's own error line is
//! the step's error, the staging folder is never inside the build context, and
//! `Stages::no_cache` reaches every stage's build.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildkit_lib::cmd::{Answer, Echo, Executor, FakeExecutor, Probe};
use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stage, Stages};
use buildkit_lib::plan::{Action, Step};
use buildkit_lib::{Cmd, Runner, Session};

const MODES: [Mode; 3] = [Mode::Mounted, Mode::Isolated, Mode::IsolatedCopyOut];

fn session() -> Session {
    let mut session = Session::new("desk");
    session.run_id = "pkg".into();
    session
}

/// A project folder (canonical, as the step resolves it) with a three-stage Dockerfile.
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = fs::canonicalize(dir.path()).unwrap();
    fs::write(
        project.join("Dockerfile"),
        "FROM scratch AS base\nFROM base AS runtime\nFROM runtime AS package\n\
         FROM scratch AS artifact\n",
    )
    .unwrap();
    (dir, project)
}

/// A fake engine answering as a dry run would, that also leaves an artifact where each
/// package mode's command puts PyInstaller's output (the bind mount, the local export,
/// the copy out), writes the incremental runner's report, and copies for real when the
/// step runs `cp -a`.
#[derive(Debug)]
struct Packaging(FakeExecutor);

impl Executor for Packaging {
    fn answer(&self, cmd: &Cmd) -> Answer {
        let argv = cmd.argv();
        if argv[0] == "cp" {
            let from = argv[2].strip_suffix("/.").unwrap();
            for entry in fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                fs::copy(entry.path(), Path::new(&argv[3]).join(entry.file_name())).unwrap();
            }
            return Answer::ok("");
        }
        if argv[0] == "mkdir" {
            fs::create_dir_all(&argv[2]).unwrap();
        }
        // The incremental runner's report, in the state folder mounted at /tmp/buildkit-lib.
        for word in &argv {
            if let Some(rest) = word.strip_prefix("type=bind,src=") {
                if let Some(state) = rest.strip_suffix(",dst=/tmp/buildkit-lib") {
                    fs::write(Path::new(state).join("result.json"), "{}").unwrap();
                }
            }
        }
        e2e::fake_packaging_output(&argv);
        self.0.answer(cmd)
    }

    fn probe(&self, probe: &Probe) -> Result<String, String> {
        self.0.probe(probe)
    }

    fn read_output(&self, path: &Path, dry_answer: &str) -> std::io::Result<String> {
        self.0.read_output(path, dry_answer)
    }
}

fn runner(fake: FakeExecutor) -> Runner {
    Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .with_executor(Arc::new(Packaging(fake)))
        .with_fresh_record()
}

/// PyInstaller's output when the spec is missing, as `docker run` shows it.
const MOUNTED_MISSING_SPEC: &str = "81 INFO: PyInstaller: 6.11.1, contrib hooks: 2026.10\n\
    84 INFO: Removing temporary files and cleaning cache in /tmp/pyinstaller/pyinstaller\n\
    Spec file \"nope.spec\" not found!\n";

/// The same in a build's `RUN`, as buildx ends its output.
const BUILD_MISSING_SPEC: &str = "#8 1.077 Spec file \"nope.spec\" not found!\n\
    #8 ERROR: process \"/bin/sh -c pyinstaller --distpath /out --workpath /tmp/build \
    ${PYINSTALLER_ARGS}\" did not complete successfully: exit code: 1\n------\n \
    > [package 3/3] RUN pyinstaller --distpath /out --workpath /tmp/build --clean \
    --noconfirm nope.spec:\n1.077 Spec file \"nope.spec\" not found!\n------\n\
    Dockerfile:47\n--------------------\n  47 | >>> RUN pyinstaller ${PYINSTALLER_ARGS}\n\
    --------------------\nERROR: failed to build: failed to solve: process \"/bin/sh -c \
    pyinstaller --distpath /out --workpath /tmp/build ${PYINSTALLER_ARGS}\" did not \
    complete successfully: exit code: 1\n";

#[test]
fn pyinstallers_own_error_line_is_the_step_error() {
    let (_dir, project) = project();
    for mode in MODES {
        let fake = FakeExecutor::like_dry_run()
            .on(["docker", "run"], Answer::fail(1, MOUNTED_MISSING_SPEC))
            .on(
                ["docker", "buildx", "build"],
                Answer::fail(1, BUILD_MISSING_SPEC),
            );
        let err = Package::new(
            Stages::new(Build::new(&project), "desk"),
            PyInstaller::spec("nope.spec"),
            mode,
        )
        .run(&runner(fake))
        .unwrap_err();
        let where_ = match mode {
            Mode::Mounted => "in container desk_package_pkg",
            _ => "in the isolated package build",
        };
        assert_eq!(
            err.to_string(),
            format!("PyInstaller failed {where_}: Spec file \"nope.spec\" not found!"),
            "{mode:?}"
        );
        let text = format!("{err:#}");
        // The output tail is still below it, and a context path is never an image.
        assert!(text.contains("--- last "), "{mode:?}: {text}");
        assert!(
            !text.contains(&format!("cannot build image {}", project.display())),
            "{mode:?}: {text}"
        );
        match mode {
            Mode::Isolated => assert!(
                text.contains(&format!(
                    "cannot build target `artifact` of {}",
                    project.display()
                )),
                "{text}"
            ),
            Mode::IsolatedCopyOut => {
                assert!(text.contains("cannot build image desk:package"), "{text}")
            }
            _ => {}
        }
    }
    // When PyInstaller never ran (docker's own failure), the generic message stays.
    let fake = FakeExecutor::like_dry_run().on(
        ["docker", "run"],
        Answer::fail(125, "docker: Error response from daemon: bad mount\n"),
    );
    let err = Package::new(
        Stages::new(Build::new(&project), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .run(&runner(fake))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PyInstaller failed in container desk_package_pkg"
    );
}

/// Every folder the step creates or writes into, from what it recorded.
fn written_paths(runner: &Runner) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for argv in runner.recorded().commands() {
        for (i, word) in argv.iter().enumerate() {
            if let Some(rest) = word.strip_prefix("type=bind,src=") {
                if let Some(out) = rest.strip_suffix(",dst=/out") {
                    paths.push(PathBuf::from(out));
                }
            }
            if let Some(dest) = word.strip_prefix("type=local,dest=") {
                paths.push(PathBuf::from(dest));
            }
            let target = (argv[0] == "mkdir" && i == 2)
                || (argv[0] == "cp" && i == 3)
                || (argv[0] == "docker" && argv[1] == "cp" && i == 3);
            if target {
                paths.push(PathBuf::from(word));
            }
        }
    }
    for action in runner.recorded().actions() {
        if let Action::Swap { staging, .. } = action {
            paths.push(staging.clone());
        }
    }
    paths
}

#[test]
fn staging_is_never_inside_the_build_context() {
    for mode in MODES {
        let (_dir, project) = project();
        let runner = runner(FakeExecutor::like_dry_run());
        let report = Package::new(
            Stages::new(Build::new(&project), "desk"),
            PyInstaller::spec("deskapp.spec"),
            mode,
        )
        .run(&runner)
        .unwrap_or_else(|e| panic!("{mode:?}: {e:#}"));
        assert_eq!(report.paths(), [PathBuf::from("deskapp")], "{mode:?}");
        let written = written_paths(&runner);
        assert!(!written.is_empty(), "{mode:?}");
        for path in &written {
            assert!(
                !path.starts_with(&project),
                "{mode:?}: {} is inside the build context {}",
                path.display(),
                project.display()
            );
        }
        assert_eq!(
            fs::read_to_string(project.join("dist/deskapp")).unwrap(),
            "the build"
        );
        // Nothing is left beside the project either.
        let parent = project.parent().unwrap();
        let name = project.file_name().unwrap().to_string_lossy();
        let name = name.trim_start_matches('.');
        let left: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!(".{name}-")))
            .collect();
        assert!(left.is_empty(), "{mode:?}: {left:?}");
    }

    // A staging folder given inside the context is refused before anything runs.
    let (_dir, project) = project();
    let runner = runner(FakeExecutor::like_dry_run());
    let err = Package::new(
        Stages::new(Build::new(&project), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .staging(project.join("build"))
    .run(&runner)
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the package step's staging folder {p}/build is inside the build context {p}, \
             which would carry PyInstaller's output into the build; set `Package::staging` \
             to a folder outside it (such as `target/package`)",
            p = project.display()
        )
    );
    assert!(
        runner.recorded().commands().is_empty(),
        "{:?}",
        runner.recorded().commands()
    );
}

#[test]
fn staging_on_another_file_system_is_copied_beside_dist_then_renamed() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, project) = project();
    let shm = Path::new("/dev/shm");
    assert_ne!(
        fs::metadata(shm).unwrap().dev(),
        fs::metadata(&project).unwrap().dev(),
        "this test needs /dev/shm on a file system of its own"
    );
    let staging = tempfile::tempdir_in(shm).unwrap();
    let runner = runner(FakeExecutor::like_dry_run());
    Package::new(
        Stages::new(Build::new(&project), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .staging(staging.path())
    .run(&runner)
    .unwrap();
    let commands: Vec<String> = runner
        .recorded()
        .commands()
        .iter()
        .map(|a| a.join(" "))
        .collect();
    let name = project.file_name().unwrap().to_string_lossy();
    let name = name.trim_start_matches('.');
    let raw = staging.path().join(format!(".{name}-dist.raw-pkg"));
    let beside = project.join(format!(".{name}-dist.copy-pkg"));
    assert!(
        commands.contains(&format!("cp -a {}/. {}", raw.display(), beside.display())),
        "{commands:#?}"
    );
    let swap = Action::Swap {
        staging: beside,
        target: project.join("dist"),
    };
    assert!(runner.recorded().actions().contains(&swap));
    assert_eq!(
        fs::read_to_string(project.join("dist/deskapp")).unwrap(),
        "the build"
    );
    assert!(!raw.exists());
    assert_eq!(fs::read_dir(staging.path()).unwrap().count(), 0);
}

/// `docker buildx build` lines without their per-run metadata file.
fn builds(runner: &Runner) -> Vec<String> {
    runner
        .recorded()
        .commands()
        .into_iter()
        .filter(|argv| argv.len() > 2 && argv[1] == "buildx" && argv[2] == "build")
        .map(|argv| {
            let mut kept = Vec::new();
            let mut skip = false;
            for word in argv {
                if std::mem::take(&mut skip) {
                    continue;
                }
                if word == "--metadata-file" {
                    skip = true;
                    continue;
                }
                kept.push(word);
            }
            kept.join(" ")
        })
        .collect()
}

#[test]
fn no_cache_reaches_every_stage() {
    let (_dir, project) = project();
    let stages = Stages::new(Build::new(&project).no_cache(true), "desk");
    let p = project.display();
    for mode in [Mode::Isolated, Mode::IsolatedCopyOut] {
        let runner = runner(FakeExecutor::like_dry_run());
        stages.build(Stage::Base, &session()).run(&runner).unwrap();
        stages
            .build(Stage::Runtime, &session())
            .run(&runner)
            .unwrap();
        let package = Package::new(stages.clone(), PyInstaller::spec("deskapp.spec"), mode);
        package.run(&runner).unwrap();
        let labels = "--label dev.buildkit-lib.project=desk --label dev.buildkit-lib.run=pkg";
        let last = match mode {
            Mode::Isolated => {
                let name = project.file_name().unwrap().to_string_lossy();
                let raw = project
                    .parent()
                    .unwrap()
                    .join(format!(".{}-dist.raw-pkg", name.trim_start_matches('.')));
                format!(
                    "docker buildx build --progress=rawjson --target artifact \
                     --build-arg PYINSTALLER_ARGS=--clean --noconfirm deskapp.spec \
                     {labels} --build-context runtime=docker-image://desk:runtime \
                     --network=none --no-cache --output type=local,dest={} {p}",
                    raw.display()
                )
            }
            _ => format!(
                "docker buildx build --progress=rawjson --target package --tag desk:package \
                 --build-arg PYINSTALLER_ARGS=--clean --noconfirm deskapp.spec {labels} \
                 --build-context runtime=docker-image://desk:runtime --network=none \
                 --no-cache --load {p}"
            ),
        };
        assert_eq!(
            builds(&runner),
            [
                format!(
                    "docker buildx build --progress=rawjson --target base --tag desk:base \
                     {labels} --no-cache --load {p}"
                ),
                format!(
                    "docker buildx build --progress=rawjson --target runtime --tag \
                     desk:runtime {labels} --no-cache --load {p}"
                ),
                last,
            ],
            "{mode:?}"
        );
    }
}

#[test]
fn no_cache_packages_in_full_and_empties_the_incremental_state() {
    let (_dir, project) = project();
    let state = tempfile::tempdir().unwrap();
    let state_path = fs::canonicalize(state.path()).unwrap();
    fs::create_dir_all(state_path.join("work/deskapp")).unwrap();
    fs::create_dir_all(state_path.join("archive-cache")).unwrap();
    let runner = runner(FakeExecutor::like_dry_run());
    Package::new(
        Stages::new(Build::new(&project).no_cache(true), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .incremental(&state_path)
    .run(&runner)
    .unwrap();
    let actions = runner.recorded().actions().to_vec();
    for folder in ["work", "archive-cache"] {
        assert!(
            actions.contains(&Action::Remove(state_path.join(folder))),
            "{folder}: {actions:#?}"
        );
    }
    // PyInstaller's full run: `--clean`, no analysis reused.
    let run = runner
        .recorded()
        .commands()
        .into_iter()
        .find(|argv| argv[..2] == ["docker", "run"])
        .unwrap();
    assert!(run.contains(&"--clean".to_string()), "{run:?}");
    assert!(!run.contains(&"--incremental".to_string()), "{run:?}");
}
