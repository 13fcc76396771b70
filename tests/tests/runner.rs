//! The command runner against fake programs first on PATH: exit codes with output, a
//! missing program, timeouts, death by signal, secrets, logs and dry runs.

use std::time::Duration;

use buildkit_lib::cmd::Echo;
use buildkit_lib::{Cmd, CommandError, Runner, Secret};
use e2e::FakeBin;

fn quiet_with(bin: &FakeBin) -> Runner {
    Runner::new().echo(Echo::Quiet).env("PATH", bin.path_env())
}

#[test]
fn non_zero_exit_reports_command_status_and_last_lines() {
    let bin = FakeBin::new().script(
        "docker",
        r#"i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; echo "ERROR: failed to solve" >&2; exit 3"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/build.log");
    let runner = quiet_with(&bin).log_to(&log);
    let err = runner
        .run(&Cmd::new("docker").args(["buildx", "build", "--tag", "my app", "."]))
        .unwrap_err();
    assert_eq!(err.exit_code(), Some(3));
    let text = err.to_string();
    let mut expected = String::from(
        "process didn't exit successfully: `docker buildx build --tag 'my app' .` (exit status: 3)\n--- last 20 lines of output\n",
    );
    for i in 12..=30 {
        expected.push_str(&format!("line {i}\n"));
    }
    expected.push_str("ERROR: failed to solve\n");
    expected.push_str(&format!("--- full output: {}", log.display()));
    assert_eq!(text, expected);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with("$ docker buildx build --tag 'my app' .\nline 1\n"));
    assert!(logged.contains("ERROR: failed to solve"));
}

#[test]
fn anyhow_context_reads_like_cargo() {
    let bin = FakeBin::new().script("docker", "echo boom; exit 1");
    let err = quiet_with(&bin)
        .run(&Cmd::new("docker").arg("version"))
        .map_err(anyhow::Error::from);
    let err = anyhow::Context::context(err, "cannot build image `web:dev`").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "cannot build image `web:dev`: process didn't exit successfully: `docker version` (exit status: 1)\n--- last 1 lines of output\nboom"
    );
    let typed = err.downcast_ref::<CommandError>().expect("typed error");
    assert_eq!(typed.exit_code(), Some(1));
}

#[test]
fn missing_program_is_reported_before_spawning() {
    let bin = FakeBin::new();
    let runner = Runner::new()
        .echo(Echo::Quiet)
        .env("PATH", bin.path_env_only());
    let err = runner.run(&Cmd::new("docker").arg("version")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "command not found: `docker` (never executed)\nhelp: install the Docker CLI and engine \
         (on Debian: `apt-get install docker.io docker-buildx`)"
    );
    assert!(runner.capture(&Cmd::new("git")).is_err());
}

#[test]
fn timeout_stops_the_command_and_its_children() {
    let bin = FakeBin::new().script("docker", "echo started; sleep 30; echo never");
    let err = quiet_with(&bin)
        .run(
            &Cmd::new("docker")
                .arg("run")
                .timeout(Duration::from_millis(500)),
        )
        .unwrap_err();
    // Had the sleeping grandchild survived (holding the output pipe), the run would have
    // waited for it and its last line would be in the output.
    assert!(
        !err.to_string().contains("never"),
        "the sleeping grandchild was not stopped: {err}"
    );
    assert_eq!(err.timed_out(), Some(Duration::from_millis(500)));
    assert_eq!(
        err.to_string(),
        "process timed out after 0.5s: `docker run` (stopped)\n--- last 1 lines of output\nstarted"
    );
}

#[test]
fn death_by_signal_is_named() {
    let bin = FakeBin::new().script("docker", "echo about to die; kill -9 $$");
    let err = quiet_with(&bin)
        .run(&Cmd::new("docker").arg("ps"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "process didn't exit successfully: `docker ps` (signal: 9, SIGKILL: kill)\n--- last 1 lines of output\nabout to die"
    );
}

#[test]
fn unreachable_engine_is_reported_as_such() {
    let bin = FakeBin::new().script(
        "docker",
        "echo 'Cannot connect to the Docker daemon at unix:///nowhere.sock. Is the docker daemon running?' >&2; exit 1",
    );
    let runner = quiet_with(&bin).env("DOCKER_HOST", "unix:///nowhere.sock");
    let err = runner
        .capture(&Cmd::new("docker").args(["image", "inspect", "x"]))
        .unwrap_err();
    assert_eq!(err.exit_code(), None, "{err}");
    // No help of the embedding project's (`Runner::engine_help`) to add.
    assert!(err.to_string().starts_with(
        "the Docker engine at unix:///nowhere.sock does not answer: `docker image inspect x`\nhelp: start it, or point DOCKER_HOST"
    ));
}

#[test]
fn secrets_are_masked_in_echo_logs_errors_and_records() {
    let sentinel = "s3ntinel-value-4242";
    let bin = FakeBin::new().script("docker", r#"echo "got $1 and $MY_TOKEN"; exit 2"#);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("step.log");
    let runner = quiet_with(&bin).log_to(&log);
    let cmd = Cmd::new("docker")
        .secret_arg(Secret::new(sentinel))
        .secret_env("MY_TOKEN", Secret::new(sentinel));
    let err = runner.run(&cmd).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(sentinel), "{text}");
    assert!(text.contains("got *** and ***"), "{text}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(sentinel) && logged.contains("got *** and ***"),
        "{logged}"
    );
    assert_eq!(
        runner.recorded().commands(),
        vec![vec!["docker".to_string(), "***".to_string()]]
    );
}

#[test]
fn capture_returns_stdout_and_keeps_stderr_for_errors() {
    let bin = FakeBin::new().script("docker", r#"echo '{"Size": 42}'; echo note >&2"#);
    let out = quiet_with(&bin)
        .capture(&Cmd::new("docker").args(["image", "inspect", "x"]))
        .unwrap();
    assert_eq!(out.stdout, "{\"Size\": 42}\n");
    assert_eq!(out.stderr, "note\n");
}

#[test]
fn dry_run_runs_nothing_and_queries_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let bin = FakeBin::new().script("docker", &format!("echo \"$@\" >> '{}'", marker.display()));
    let runner = quiet_with(&bin)
        .dry_run(true)
        .log_to(dir.path().join("x.log"));
    let out = runner
        .run(&Cmd::new("docker").args(["rm", "-f", "c1"]))
        .unwrap();
    assert!(out.stdout.is_empty());
    assert!(!marker.exists(), "a dry run must not run the command");
    assert!(
        !dir.path().join("x.log").exists(),
        "a dry run writes no log file"
    );
    // A query is recorded, not run: a dry run asks the engine nothing (it answers its
    // placeholder, empty unless the query gives one)...
    let asked = runner
        .capture(&Cmd::new("docker").arg("version").read_only())
        .unwrap();
    assert!(asked.stdout.is_empty());
    assert!(
        !marker.exists(),
        "a dry run must not make a query unless asked"
    );
    // ...unless asked.
    let asking = runner.clone().dry_run_queries(true);
    asking
        .capture(&Cmd::new("docker").arg("info").read_only())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "info\n");
    // Even when asked, a command that changes something does not run.
    asking
        .run(&Cmd::new("docker").args(["rm", "-f", "c2"]))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "info\n");
    assert_eq!(runner.recorded().commands().len(), 4);
}

#[test]
fn large_output_keeps_memory_bounded_tail() {
    // 20 MB of output: the tail holds only the end.
    let bin = FakeBin::new().script(
        "docker",
        "head -c 20000000 /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo last-line; exit 1",
    );
    let err = quiet_with(&bin).run(&Cmd::new("docker")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\n--- last 20 lines of output\n"),
        "{}",
        &text[..200]
    );
    assert!(
        text.ends_with("\nlast-line"),
        "{}",
        &text[text.len() - 200..]
    );
}

/// A secret that reaches a program some other way than as a command's secret argument
/// (a file the tool reads, say) is masked once the runner is told of it.
#[test]
fn a_masked_value_never_shows_in_an_error_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let value = "s3cr3t value\nwith a second line";
    let file = dir.path().join("token");
    std::fs::write(&file, value).unwrap();
    let bin = FakeBin::new().script("docker", &format!("cat '{}'; exit 3", file.display()));
    let log = dir.path().join("step.log");
    let runner = quiet_with(&bin).log_to(&log);
    runner.mask(&Secret::new(value));
    let err = runner.run(&Cmd::new("docker")).unwrap_err();
    let shown = format!("{err:#}");
    let logged = std::fs::read_to_string(&log).unwrap();
    for text in [&shown, &logged] {
        assert!(
            !text.contains("s3cr3t") && !text.contains("second line"),
            "{text}"
        );
        assert!(text.contains("***"), "{text}");
    }
}
