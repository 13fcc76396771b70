//! The library in a host program: signals are the host's business (the library installs
//! no handler and never ends the process), and a host cancels a run through its
//! [`Cancel`] token, from any thread, with no signal at all.

use buildkit_lib::plan::Step as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use buildkit_lib::cmd::{Cancel, Echo};
use buildkit_lib::{Cmd, Runner};

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The signals process `pid` catches (the `SigCgt` mask of `/proc/PID/status`).
fn caught_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .expect("a SigCgt line");
    u64::from_str_radix(mask.trim(), 16).unwrap()
}

/// Starts `host_without_signals`, waits for its command to run, sends `sig`, and checks
/// that the signal's default disposition ended the host while the command ran.
fn signal_a_host_without_handlers(sig: i32) {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut child = Command::new(env!("CARGO_BIN_EXE_host_without_signals"))
        .arg(&pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the host");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    wait_until("the command to start", Duration::from_secs(10), || {
        read_pid(&pidfile).is_some()
    });
    let command = read_pid(&pidfile).unwrap();
    let caught = caught_signals(child.id());
    for (name, num) in [("SIGINT", libc::SIGINT), ("SIGTERM", libc::SIGTERM)] {
        assert_eq!(caught & (1 << (num - 1)), 0, "the host catches {name}");
    }
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    // The command has its own process group: the host's signal did not reach it.
    let alive = !process_gone(command);
    // SAFETY: kill(2) of the command's process group, which the host left behind.
    unsafe { libc::kill(-command, libc::SIGKILL) };
    assert_eq!(
        status.signal(),
        Some(sig),
        "the host was not killed by the signal: {rest}"
    );
    assert_eq!(rest, "", "the host went on after the signal");
    assert!(
        alive,
        "the library stopped the command on a signal it was not asked to handle"
    );
}

#[test]
fn sigint_ends_a_host_that_never_asked_for_signal_handling() {
    signal_a_host_without_handlers(libc::SIGINT);
}

#[test]
fn sigterm_ends_a_host_that_never_asked_for_signal_handling() {
    signal_a_host_without_handlers(libc::SIGTERM);
}

/// A host cancels its run from another thread: the running command is stopped at once
/// (SIGTERM, no grace period to wait for a command that obeys it) and the clean-ups the
/// run registered run before the command's error returns, with no signal involved.
#[test]
fn cancel_from_another_thread_stops_the_command_and_runs_its_clean_ups() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let marker = dir.path().join("cleaned");
    let cancel = Cancel::new();
    let runner = Runner::new().echo(Echo::Silent).cancel_with(cancel.clone());
    let clean_up = Cmd::new("sh").args(["-c", &format!("echo done > {}", marker.display())]);
    let _clean_up = runner.on_cancel(clean_up);
    let never_file = dir.path().join("never");
    let never = Cmd::new("sh").args(["-c", &format!("echo x > {}", never_file.display())]);
    let never = runner.on_cancel(never);
    drop(never);
    let script = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    let running = {
        let runner = runner.clone();
        std::thread::spawn(move || {
            runner
                .run(&Cmd::new("sh").args(["-c", &script]))
                .map_err(Box::new)
        })
    };
    wait_until("the command to start", Duration::from_secs(10), || {
        read_pid(&pidfile).is_some()
    });
    let command = read_pid(&pidfile).unwrap();
    let sent = Instant::now();
    cancel.cancel();
    let err = running.join().unwrap().unwrap_err();
    assert!(err.interrupted(), "{err}");
    assert!(err.to_string().starts_with("process cancelled: "), "{err}");
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "the command took {:?} to stop: it waited for the grace period",
        sent.elapsed()
    );
    assert!(process_gone(command), "the command still runs");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "done");
    assert!(!never_file.exists(), "an unregistered clean-up ran");
    let ran: Vec<String> = runner
        .recorded()
        .commands()
        .iter()
        .map(|c| c.join(" "))
        .collect();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran[1].starts_with("sh -c echo done"), "{ran:?}");
    // Refused from now on; the clean-up does not run twice.
    let refused = runner.run(&Cmd::new("true")).unwrap_err();
    assert!(refused.interrupted(), "{refused}");
    assert_eq!(refused.to_string(), "process cancelled: `true`");
    runner.clean_up_cancelled();
    assert_eq!(runner.recorded().commands().len(), 3);
}

#[test]
fn sigint_to_a_host_is_the_hosts_business() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedding_host"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the host");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // Let the library start its command first (that used to install its handler).
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the host was ended: {rest}");
    assert_eq!(
        rest.trim(),
        "host alive after the library's command (ok), SIGINT seen by the host: true"
    );
}

/// A long-running host runs two pipelines at once, each smoke-testing a container that
/// never becomes ready, and cancels one through its runner's handle: that one stops at
/// once, its container is removed, and the other goes on untouched until cancelled too.
#[test]
fn two_pipelines_at_once_one_cancelled_through_its_handle() {
    use buildkit_lib::pipeline::{Pipeline, StepStatus};
    use buildkit_lib::validate::{Ready, Smoke};
    use std::time::Instant;

    let engine = e2e::engine();
    let start = |name: &str| {
        let target = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        let runner = e2e::engine()
            .echo(buildkit_lib::cmd::Echo::Silent)
            .cancel_with(cancel.clone());
        let session = buildkit_lib::Session::new(e2e::unique(name));
        let runner = runner.session(session.clone());
        let port = e2e::free_port();
        let mut pipeline = Pipeline::new(name, target.path());
        pipeline.step("smoke", move |cx| {
            Smoke::new(e2e::BUSYBOX_IMAGE)
                .args(["sleep", "300"])
                .ready(Ready::Tcp(port))
                .timeout(Duration::from_secs(120))
                .run(&cx.runner)?;
            Ok(())
        });
        let thread = std::thread::spawn(move || {
            let report = pipeline.run(&runner).unwrap();
            drop(target);
            report
        });
        (thread, cancel, session)
    };
    let (a, cancel_a, session_a) = start("embed-a");
    let (b, cancel_b, session_b) = start("embed-b");
    let waited = Instant::now();
    while e2e::leftovers(&engine, &session_a).is_empty()
        || e2e::leftovers(&engine, &session_b).is_empty()
    {
        // A bound for "never", not a speed: a shared 2-core machine can be slow.
        assert!(
            waited.elapsed() < Duration::from_secs(180),
            "the containers never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    cancel_a.cancel();
    let report_a = a.join().unwrap();
    assert!(!report_a.ok);
    assert_eq!(report_a.steps[0].status, StepStatus::Failed);
    let error = report_a.steps[0].error.clone().unwrap_or_default();
    assert!(error.contains("cancelled"), "{error}");
    assert_eq!(e2e::leftovers(&engine, &session_a), Vec::<String>::new());
    // The other pipeline is untouched: its container still runs.
    assert_eq!(e2e::leftovers(&engine, &session_b).len(), 1);
    assert!(!b.is_finished());

    cancel_b.cancel();
    let report_b = b.join().unwrap();
    assert!(!report_b.ok);
    assert_eq!(e2e::leftovers(&engine, &session_b), Vec::<String>::new());
}
