//! The library in a host program that keeps its own signal handling: a SIGINT to the
//! host reaches the host's handler, the library's command finishes, and the host goes on
//! (no handler installed by the library, no `process::exit`).

use buildkit_lib::plan::Step as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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
    use buildkit_lib::pipeline::{Pipeline, RunOptions, StepStatus};
    use buildkit_lib::validate::smoke::{Ready, Smoke};
    use std::time::Instant;

    let engine = e2e::engine();
    let start = |name: &str| {
        let target = tempfile::tempdir().unwrap();
        let runner = e2e::engine().echo(buildkit_lib::cmd::Echo::Silent);
        let options = RunOptions::new(&e2e::unique(name));
        let session = options.get_session().clone();
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
        let cancel = runner.canceller();
        let thread = std::thread::spawn(move || {
            let report = pipeline.run(&runner, &options).unwrap();
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
