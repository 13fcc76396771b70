//! The engine dying mid-build is named as such: the second private engine is killed
//! while a build runs on it, the build fails with `Failure::EngineLost` naming the
//! engine, and the engine is started again for the tests that follow.

use std::time::{Duration, Instant};

use buildkit_lib::docker::Build;
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, CommandError};

/// Starts the second engine again (`xtask/engine-up.sh up second`).
struct RestoreEngines;

impl Drop for RestoreEngines {
    fn drop(&mut self) {
        let status = std::process::Command::new("bash")
            .arg(e2e::repo_root().join("xtask/engine-up.sh"))
            .args(["up", "second"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not bring the engines back up"
        );
    }
}

#[test]
fn an_engine_that_dies_mid_build_is_named() {
    let host = e2e::second_engine();
    let pidfile = "/run/buildkit-lib/dockerd2.pid";
    let pid: i32 = std::fs::read_to_string(pidfile)
        .unwrap_or_else(|e| panic!("the second engine's pid file {pidfile}: {e}"))
        .trim()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A sleep whose argument is unique to this run, to find it in /proc.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let seconds = format!("60.{nanos:09}");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nRUN sleep {seconds}\n", e2e::BUSYBOX_IMAGE),
    )
    .unwrap();
    let log = dir.path().join("build.log");
    let runner = e2e::runner().env("DOCKER_HOST", &host).log_to(&log);
    let build = Build::new(dir.path().to_path_buf()).network("none");
    let _restore = RestoreEngines;
    let killer = std::thread::spawn(move || {
        let start = Instant::now();
        let wanted = format!("sleep\0{seconds}\0");
        loop {
            let running = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.ends_with(wanted.as_bytes()))
            });
            if running {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the build never started"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: plain kill(2) of the second engine's dockerd.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let err = build.run(&runner).unwrap_err();
    killer.join().unwrap();
    let cmd_err = err
        .downcast_ref::<CommandError>()
        .unwrap_or_else(|| panic!("expected a CommandError, got: {err:#}"));
    // Neither an exit of its own, a cancel nor a timeout: the engine went away (the
    // message below names the engine and the client's words).
    assert!(
        cmd_err.exit_code().is_none() && !cmd_err.interrupted() && cmd_err.timed_out().is_none(),
        "{err:#}"
    );
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "the Docker engine at {host} went away during `docker buildx build"
        )) && text.contains("(error reading from server: EOF)\nhelp: the engine stopped"),
        "{text}"
    );
    // Nothing else talks to this engine: it is down until the restore.
    assert!(e2e::runner()
        .env("DOCKER_HOST", &host)
        .capture(&Cmd::new("docker").args(["version"]))
        .is_err());
}
