//! Ctrl-C, SIGTERM and timeouts: a program that cancels its run on signals
//! (`Cancel::on_signals`) stops its children, removes what it registered (containers
//! included) and exits 130; a second Ctrl-C exits at once (the program's own doing).
//!
//! The program under test is the `hold_container` binary of this package; the test sends
//! it signals with `libc::kill`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use buildkit_lib::{Cmd, Runner};
use buildkit_lib::{PROJECT_LABEL, RUN_LABEL};

/// Starts `hold_container` with `args` and waits for its `ready` line.
fn start(args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hold_container"))
        .args(args)
        .env("DOCKER_HOST", e2e::docker_host())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hold_container");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "hold_container did not start");
    child
}

fn signal(child: &Child, sig: i32) {
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "cannot send signal {sig}");
}

/// Waits for the child to exit, killing it and failing after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hold_container did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    text
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// States of the containers carrying label `key=value`.
fn container_states(engine: &Runner, key: &str, value: &str) -> Vec<String> {
    let cmd = Cmd::new("docker").args([
        "ps",
        "--all",
        "--filter",
        &format!("label={key}={value}"),
        "--format",
        "{{.State}}",
    ]);
    let out = engine.capture(&cmd).expect("docker ps");
    out.stdout.lines().map(str::to_string).collect()
}

/// A process is gone when it no longer exists or is a zombie waiting for its reaper.
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Removes a container by name when dropped (a failed test leaves nothing behind).
struct RemoveContainer<'a>(&'a Runner, String);

impl Drop for RemoveContainer<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["rm", "--force", &self.1]));
    }
}

#[test]
fn sigint_removes_the_running_container_and_exits_130() {
    let engine = e2e::engine();
    let name = e2e::unique("hold");
    let run_id = e2e::unique("run");
    let _cleanup = RemoveContainer(&engine, name.clone());
    let mut child = start(&["container", &name, &run_id]);
    wait_until("the container to run", Duration::from_secs(60), || {
        container_states(&engine, RUN_LABEL, &run_id) == ["running"]
    });
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = stderr_of(&mut child);
    assert!(
        stderr.contains(&format!("$ docker rm --force {name}")),
        "stderr:\n{stderr}"
    );
    wait_until("the container to be gone", Duration::from_secs(10), || {
        container_states(&engine, RUN_LABEL, &run_id).is_empty()
    });
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
}

#[test]
fn sigint_during_a_smoke_test_removes_its_containers() {
    let engine = e2e::engine();
    let project = e2e::unique("smokeint");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = start(&["smoke", &project, &port.to_string()]);
    wait_until(
        "the service and app containers to run",
        Duration::from_secs(60),
        || container_states(&engine, PROJECT_LABEL, &project) == ["running", "running"],
    );
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
    assert_eq!(
        container_states(&engine, PROJECT_LABEL, &project),
        Vec::<String>::new()
    );
}

#[test]
fn sigterm_stops_the_child_process_group_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut child = start(&["child", pidfile.to_str().unwrap()]);
    wait_until("the pid file", Duration::from_secs(10), || {
        read_pid(&pidfile).is_some()
    });
    let grandchild = read_pid(&pidfile).unwrap();
    assert!(!process_gone(grandchild));
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut child));
    wait_until(
        "the background sleep to end",
        Duration::from_secs(5),
        || process_gone(grandchild),
    );
}

/// Starts `hold_container stubborn` and returns it with the stubborn shell's pid.
fn start_stubborn(dir: &Path) -> (Child, i32) {
    let pidfile = dir.join("pid");
    let child = start(&["stubborn", pidfile.to_str().unwrap()]);
    wait_until("the pid file", Duration::from_secs(10), || {
        read_pid(&pidfile).is_some()
    });
    (child, read_pid(&pidfile).unwrap())
}

#[test]
fn a_child_ignoring_sigint_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, shell) = start_stubborn(dir.path());
    let sent = Instant::now();
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut child));
    assert!(
        took >= Duration::from_secs(4),
        "exited after {took:?}, before the grace period"
    );
    wait_until("the stubborn shell to end", Duration::from_secs(5), || {
        process_gone(shell)
    });
}

#[test]
fn a_second_sigint_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, shell) = start_stubborn(dir.path());
    signal(&child, libc::SIGINT);
    // The first Ctrl-C waits up to 5 s for the child, which ignores it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited on the first SIGINT"
    );
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    // Had it waited for the grace period, its SIGKILL would have ended the stubborn shell:
    // the shell still running proves the second signal ended the process at once.
    assert!(
        !process_gone(shell),
        "the stubborn shell was killed: the second SIGINT waited for the grace period"
    );
    // Exiting at once leaves the stubborn shell behind by design: end its group here.
    unsafe { libc::kill(-shell, libc::SIGKILL) };
    wait_until("the stubborn shell to end", Duration::from_secs(5), || {
        process_gone(shell)
    });
}

#[test]
fn timeout_stops_the_command_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let cmd = Cmd::new("sh")
        .args(["-c", &script])
        .timeout(Duration::from_secs(1));
    let err = e2e::runner().run(&cmd).unwrap_err();
    assert_eq!(err.timed_out(), Some(Duration::from_secs(1)));
    assert_eq!(
        err.to_string(),
        format!("process timed out after 1s: `sh -c '{script}'` (stopped)")
    );
    let grandchild = read_pid(&pidfile).expect("the script wrote its pid");
    wait_until(
        "the background sleep to end",
        Duration::from_secs(5),
        || process_gone(grandchild),
    );
}
