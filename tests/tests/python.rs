//! Python tool steps against the real tools: the cached tool environment, black and isort
//! checks and fixes, hadolint findings, and a project's test command.

use std::fs;
use std::path::{Path, PathBuf};

use buildkit_lib::plan::Step;
use buildkit_lib::python::{CheckAll, Format, FormatError, Hadolint, PythonTest, ToolEnv};
use buildkit_lib::{Level, Runner, Session};

/// The tool environment shared by the tests (and by later runs): under the workspace
/// `target/`, created on first use.
fn tool_env() -> ToolEnv {
    ToolEnv::under(e2e::repo_root().join("target"))
}

fn fixture() -> PathBuf {
    e2e::repo_root().join("fixtures/desktop")
}

/// A copy of the desktop fixture's Python files in a temporary directory.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture().join("src"), &dir.path().join("src"));
    copy_tree(&fixture().join("tests"), &dir.path().join("tests"));
    fs::copy(
        fixture().join("pyproject.toml"),
        dir.path().join("pyproject.toml"),
    )
    .unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(name));
        } else {
            fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

fn format_error(err: &anyhow::Error) -> &FormatError {
    err.downcast_ref::<FormatError>()
        .unwrap_or_else(|| panic!("expected a format error, got: {err:#}"))
}

/// The program of each command `runner` ran that runs from a directory (a tool
/// environment's `bin/`), in order.
fn programs(runner: &Runner) -> Vec<PathBuf> {
    runner
        .recorded()
        .commands()
        .iter()
        .map(|argv| PathBuf::from(&argv[0]))
        .filter(|p| p.is_absolute())
        .collect()
}

/// How many `pip` commands `runner` ran.
fn pip_calls(runner: &Runner) -> usize {
    runner
        .recorded()
        .commands()
        .iter()
        .filter(|argv| argv.iter().any(|a| a == "pip"))
        .count()
}

#[test]
fn tool_env_is_created_once_then_reused_without_pip() {
    let runner = e2e::runner();
    let black = Format::black(["src", "tests"])
        .cwd(fixture())
        .tools(tool_env());
    let isort = Format::isort(["src", "tests"])
        .cwd(fixture())
        .tools(tool_env());
    CheckAll::new(black.clone(), isort.clone())
        .run(&runner)
        .unwrap();
    Hadolint::new(["Dockerfile"])
        .cwd(fixture())
        .tools(tool_env())
        .lint(&runner)
        .unwrap();
    // One environment holds every tool: black, isort and hadolint run from its `bin/`,
    // beside its python.
    let ran = programs(&runner);
    let bin = ran[0].parent().unwrap().to_path_buf();
    for program in ["black", "isort", "hadolint", "python"] {
        assert!(
            bin.join(program).exists(),
            "{program} missing in {}",
            bin.display()
        );
    }
    assert!(
        ran.iter().all(|p| p.parent() == Some(bin.as_path())),
        "{ran:?}"
    );
    let again = e2e::runner();
    black.run(&again).unwrap();
    assert_eq!(
        programs(&again),
        [bin.join("black")],
        "the same environment"
    );
    let commands = again.recorded().commands();
    assert_eq!(
        commands.len(),
        2,
        "only the version query runs before black: {commands:?}"
    );
    assert_eq!(commands[0][0], "python3");
    assert!(!commands.iter().flatten().any(|a| a == "pip" || a == "venv"));
}

#[test]
fn half_created_tool_env_is_removed_and_created_again() {
    let target = tempfile::tempdir().unwrap();
    let black = Format::black(["src", "tests"])
        .cwd(fixture())
        .tools(ToolEnv::under(target.path()));
    let runner = e2e::runner();
    black.run(&runner).unwrap();
    let dir = programs(&runner)[0]
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    // The marker (written last) names the environment's pins and interpreter.
    let marker = dir.join(".buildkit-tools");
    let marker_text = fs::read_to_string(&marker).unwrap();
    // A creation that was interrupted: no marker, something left over.
    fs::remove_file(&marker).unwrap();
    fs::write(dir.join("leftover"), "from an interrupted run").unwrap();
    let again = e2e::runner();
    black.run(&again).unwrap();
    assert_eq!(
        programs(&again).last(),
        Some(&dir.join("bin/black")),
        "the same place"
    );
    assert!(!dir.join("leftover").exists());
    assert_eq!(fs::read_to_string(&marker).unwrap(), marker_text);
    assert_eq!(pip_calls(&again), 1, "one pip install of every pin");
}

#[test]
fn black_and_isort_fail_on_unformatted_code_and_pass_after_the_fix() {
    let project = fixture_copy();
    let ugly = project.path().join("src/deskapp/ugly.py");
    fs::write(
        &ugly,
        "import sys\nimport os\ndef f( a,b ):\n    return {'a':a,'b':b, 'os': os.sep, 'argv': sys.argv}\n",
    )
    .unwrap();
    let env = tool_env();
    let log = project.path().join("fmt.log");
    let runner = e2e::runner().log_to(&log);

    let black = Format::black(["src", "tests"])
        .cwd(project.path())
        .tools(env.clone());
    let err = black.run(&runner).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "black would change 1 file:\n  src/deskapp/ugly.py\nhelp: run `cargo xtask fmt` to fix \
             them\nthe diff is in {}",
            log.display()
        )
    );
    assert_eq!(format_error(&err).files, ["src/deskapp/ugly.py"]);
    // The diff is in the step log.
    let logged = fs::read_to_string(&log).unwrap();
    assert!(logged.contains("+def f(a, b):"), "{logged}");

    let isort = Format::isort(["src", "tests"])
        .cwd(project.path())
        .tools(env);
    let err = isort.run(&runner).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "isort would change 1 file:\n  src/deskapp/ugly.py\nhelp: run `cargo xtask fmt` to fix \
             them\nthe diff is in {}",
            log.display()
        )
    );

    isort.clone().fix().run(&runner).unwrap();
    black.clone().fix().run(&runner).unwrap();
    black.run(&runner).unwrap();
    isort.run(&runner).unwrap();
    assert_eq!(
        fs::read_to_string(&ugly).unwrap(),
        "import os\nimport sys\n\n\ndef f(a, b):\n    return {\"a\": a, \"b\": b, \"os\": os.sep, \"argv\": sys.argv}\n"
    );
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn check_all_runs_isort_after_a_failing_black_and_keeps_the_diff_in_the_log() {
    let project = fixture_copy();
    // 40 badly formatted files: a long diff, none of it in the error.
    for i in 0..40 {
        fs::write(
            project.path().join(format!("src/deskapp/ugly_{i:02}.py")),
            "import sys\nimport os\ndef f( a,b ):\n    return {'a':a,'b':b, 'os': os.sep, 'argv': sys.argv}\n",
        )
        .unwrap();
    }
    let before = snapshot(project.path());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("format.log");
    let runner = e2e::runner()
        .echo(buildkit_lib::cmd::Echo::Live)
        .log_to(&log);
    let env = tool_env();
    let black = Format::black(["src", "tests"])
        .cwd(project.path())
        .tools(env.clone());
    let isort = Format::isort(["src", "tests"])
        .cwd(project.path())
        .tools(env.clone());
    let err = CheckAll::new(black.clone(), isort.clone())
        .run(&runner)
        .unwrap_err();
    let files: String = (0..40)
        .map(|i| format!("\n  src/deskapp/ugly_{i:02}.py"))
        .collect();
    assert_eq!(
        err.to_string(),
        format!(
            "black would change 40 files:{files}\nisort would change 40 files:{files}\n\
             help: run `cargo xtask fmt` to fix them\nthe diffs are in {}",
            log.display()
        )
    );
    // Both answers are format errors, each tool's files listed, in one error.
    let checks = format_error(&err);
    assert_eq!(
        checks
            .to_string()
            .matches(" would change 40 files:")
            .count(),
        2
    );
    assert_eq!(checks.files.len(), 80, "black's files, then isort's");
    let logged = fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("+def f(a, b):"),
        "black's diff is in the log"
    );
    assert!(logged.contains("+import os"), "isort's diff is in the log");
    assert_eq!(snapshot(project.path()), before, "a check changes nothing");

    // Without a step log the file list is still complete, and nothing is left behind.
    let err = CheckAll::new(black.clone(), isort.clone())
        .run(&e2e::runner())
        .unwrap_err();
    assert!(err.to_string().contains("src/deskapp/ugly_00.py"));
    assert!(err
        .to_string()
        .ends_with("help: run `cargo xtask fmt` to fix them"));

    // Only isort unhappy: black's answer is shown as well.
    let only_isort = fixture_copy();
    fs::write(
        only_isort.path().join("src/deskapp/unsorted.py"),
        "import sys\nimport os\n\nprint(os.sep, sys.argv)\n",
    )
    .unwrap();
    let err = CheckAll::new(
        Format::black(["src"])
            .cwd(only_isort.path())
            .tools(env.clone()),
        Format::isort(["src"]).cwd(only_isort.path()).tools(env),
    )
    .run(&e2e::runner())
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "black: nothing to change\nisort would change 1 file:\n  src/deskapp/unsorted.py\n\
         help: run `cargo xtask fmt` to fix them"
    );
}

#[test]
fn the_desktop_fixture_is_black_and_isort_clean() {
    let runner = e2e::runner();
    let env = tool_env();
    Format::black(["src", "tests"])
        .cwd(fixture())
        .tools(env.clone())
        .run(&runner)
        .unwrap();
    Format::isort(["src", "tests"])
        .cwd(fixture())
        .tools(env)
        .run(&runner)
        .unwrap();
}

#[test]
fn hadolint_findings_are_typed_and_the_threshold_decides() {
    let runner = e2e::runner();
    let env = tool_env();
    let findings = Hadolint::new(["Dockerfile"])
        .cwd(fixture())
        .tools(env.clone())
        .run(&runner)
        .unwrap();
    assert!(
        findings.iter().all(|f| f.level < Level::Warning),
        "the fixture's Dockerfile has no warnings: {findings:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM debian\nRUN apt-get update && apt-get install -y curl\n",
    )
    .unwrap();
    let step = Hadolint::new(["Dockerfile"]).cwd(dir.path()).tools(env);
    let err = step.run(&runner).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "hadolint found 2 findings at level warning or above:\n  Dockerfile:1 DL3006 warning: "
        ),
        "{text}"
    );
    assert!(text.contains("\n  Dockerfile:2 DL3008 warning: "), "{text}");
    let findings = step.clone().threshold(Level::Error).run(&runner).unwrap();
    let mut codes: Vec<(u32, &str, Level)> = findings
        .iter()
        .map(|f| (f.line.unwrap(), f.rule.as_str(), f.level))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            (1, "DL3006", Level::Warning),
            (2, "DL3008", Level::Warning),
            (2, "DL3009", Level::Info),
            (2, "DL3015", Level::Info),
        ]
    );
}

#[test]
fn test_command_runs_in_the_tool_env_with_output_in_the_step_log() {
    let project = fixture_copy();
    let log = project.path().join("test.log");
    let runner = e2e::runner().log_to(&log);
    let step =
        PythonTest::in_tool_env(["python", "-m", "unittest", "discover", "-s", "tests", "-v"])
            .workdir(project.path())
            .env("PYTHONPATH", "src")
            .tools(tool_env());
    step.run(&runner).unwrap();
    let logged = fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Ran 2 tests"), "{logged}");
    assert!(logged.contains("test_describe_names_the_app"), "{logged}");

    fs::write(
        project.path().join("tests/test_broken.py"),
        "import unittest\n\n\nclass Broken(unittest.TestCase):\n    def test_fails(self):\n        self.assertEqual(1, 2)\n",
    )
    .unwrap();
    let err = step.run(&runner).unwrap_err();
    assert_eq!(err.to_string(), "tests failed");
    assert!(
        format!("{err:#}").contains("FAILED (failures=1)"),
        "{err:#}"
    );
}

#[test]
fn test_command_runs_in_an_image_without_network_and_leaves_no_container() {
    let runner: Runner = e2e::engine();
    let session = Session::new(e2e::unique("pytest"));
    let step = PythonTest::in_image(
        e2e::PYTHON_IMAGE,
        [
            "python3",
            "-c",
            "import socket, sys; print('py', sys.version_info[:2]); print('ifaces', [n for _, n in socket.if_nameindex()])",
        ],
    );
    let log = tempfile::tempdir().unwrap();
    let runner = runner
        .log_to(log.path().join("step.log"))
        .session(session.clone());
    step.run(&runner).unwrap();
    let logged = fs::read_to_string(log.path().join("step.log")).unwrap();
    assert!(logged.contains("py (3, 11)"), "{logged}");
    assert!(
        logged.contains("ifaces ['lo']"),
        "no network but loopback: {logged}"
    );
    let left = runner
        .capture(&buildkit_lib::Cmd::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.buildkit-lib.run={}", session.run_id),
        ]))
        .unwrap();
    assert_eq!(left.stdout.trim(), "");
}
