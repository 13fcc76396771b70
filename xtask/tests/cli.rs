//! The xtask's command line as a user meets it: the real binary, its exit statuses, its
//! help and its usage errors (nothing here needs an engine).

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run the xtask")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_command_and_exits_0() {
    let out = xtask(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for command in [
        "build",
        "mediaserver",
        "package",
        "release",
        "bench",
        "test",
    ] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command}: {help}"
        );
    }
    let out = xtask(&["package", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--mode <mode>"));
}

#[test]
fn usage_errors_exit_2_and_point_at_the_commands_help() {
    for (args, expected) in [
        (&["build", "--jbos"][..], "`--jbos` for `cargo xtask build`"),
        (&["build", "--jobs", "many"][..], "cargo xtask build --help"),
        (&["release", "--bump", "sideways"][..], "sideways"),
        (&["release"][..], "--bump"),
        (&["deploy"][..], "unknown command `deploy`"),
        (&[][..], "no command given"),
    ] {
        let out = xtask(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
}

#[test]
fn a_dry_run_of_the_bench_lists_the_figure_and_measures_nothing() {
    let out = xtask(&["bench", "--dry-run", "--only", "noop_real"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "would measure noop_real\n");
    let out = xtask(&["bench", "--dry-run", "--only", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown figure `nope`"));
}

#[test]
fn engine_env_prints_its_export_lines_on_stdout_for_eval() {
    for (engine, socket) in [
        (None, "docker.sock"),
        (Some("oldest"), "docker-oldest.sock"),
    ] {
        let mut args = vec!["engine", "env"];
        args.extend(engine);
        let out = xtask(&args);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let host = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export DOCKER_HOST="))
            .unwrap_or_else(|| panic!("{args:?}: no DOCKER_HOST line on stdout:\n{stdout}"));
        assert!(host.ends_with(socket), "{args:?}: {host}");
        // Only export lines: `eval` runs every line.
        assert!(
            stdout.lines().all(|l| l.starts_with("export ")),
            "{args:?}: {stdout}"
        );
    }
    let bad = xtask(&["engine", "env", "newest"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("unknown engine 'newest'"),
        "{}",
        text(&bad.stderr)
    );
}
