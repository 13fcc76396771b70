//! Smoke tests against the real engine: the webapp fixture answers with its version, an
//! image that exits at once and one that never becomes ready fail with the container's
//! state, exit code and logs, and no container is left behind.

use std::time::Duration;

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::session::RUN_LABEL;
use buildkit_lib::validate::smoke::{Ready, Smoke, SmokeError, SmokeFailure};
use buildkit_lib::{Cmd, Runner, Session};

/// A port nobody listens on right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Containers of this run still present.
fn leftovers(engine: &Runner, session: &Session) -> Vec<String> {
    let cmd = Cmd::new("docker").args([
        "ps",
        "--all",
        "--filter",
        &format!("label={RUN_LABEL}={}", session.run_id),
        "--format",
        "{{.Names}}",
    ]);
    let out = engine.capture(&cmd).expect("docker ps");
    out.stdout.lines().map(str::to_string).collect()
}

/// Removes an image when dropped.
struct RemoveImage<'a>(&'a Runner, String);

impl Drop for RemoveImage<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["rmi", "--force", &self.1]));
    }
}

fn smoke_error(err: anyhow::Error) -> SmokeError {
    match err.downcast::<SmokeError>() {
        Ok(e) => e,
        Err(other) => panic!("expected a smoke test failure, got: {other:#}"),
    }
}

#[test]
fn webapp_answers_with_its_version() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeweb"));
    let image = format!("{}:test", e2e::unique("smoke-webapp"));
    let _remove = RemoveImage(&engine, image.clone());
    let context = e2e::repo_root().join("fixtures/webapp");
    let build = Build {
        dockerfile: Some(context.join("Dockerfile.production")),
        context: context.clone(),
        target: Some("runtime".into()),
        tags: vec![image.clone()],
        build_args: [("PYTHON_IMAGE".to_string(), e2e::PYTHON_IMAGE.to_string())].into(),
        network: Some("host".into()),
        output: Output::Load,
        ..Build::default()
    }
    .with_session_labels(&session);
    build.run(&engine).expect("build the webapp fixture");
    let version_file = std::fs::read_to_string(context.join("version.json")).unwrap();
    let version: serde_json::Value = serde_json::from_str(&version_file).unwrap();
    let expected = format!("\"version\": \"{}\"", version["version"].as_str().unwrap());

    // An explicit HTTP check of the health endpoint, with the version in the body.
    let port = free_port();
    let report = Smoke::new(&session, &image)
        .env("PORT", port.to_string())
        .ready(Ready::Http {
            port,
            path: "/api/health".into(),
            expect_body: Some(expected.clone()),
        })
        .timeout(Duration::from_secs(60))
        .run(&engine)
        .expect("the webapp becomes ready");
    assert_eq!(
        report.detail,
        format!("HTTP 200, body contains {expected:?}")
    );
    assert!(report.time_to_ready < Duration::from_secs(60));
    eprintln!("{report}");
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());

    // Automatic: the image has a HEALTHCHECK, so its health status decides.
    let port = free_port();
    let report = Smoke::new(&session, &image)
        .env("PORT", port.to_string())
        .timeout(Duration::from_secs(90))
        .run(&engine)
        .expect("the webapp becomes healthy");
    assert_eq!(report.check, Ready::Health);
    assert_eq!(report.detail, "health status healthy");
    eprintln!("{report}");
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn an_image_that_exits_at_once_fails_with_state_exit_code_and_logs() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeexit"));
    let smoke = Smoke::new(&session, e2e::BUSYBOX_IMAGE)
        .command(["sh", "-c", "echo booting; echo cannot bind >&2; exit 3"])
        .ready(Ready::Tcp(free_port()))
        .timeout(Duration::from_secs(30));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(err.failure, SmokeFailure::Exited);
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} stopped before \
             it was ready\nstate: exited, exit code: 3\n--- last 2 log lines\nbooting\ncannot bind",
            smoke.name
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn busybox_false_fails_with_exit_code_1_and_no_logs() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokefalse"));
    let smoke = Smoke::new(&session, e2e::BUSYBOX_IMAGE)
        .command(["false"])
        .port(free_port())
        .timeout(Duration::from_secs(30));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} stopped before \
             it was ready\nstate: exited, exit code: 1\n--- no log output",
            smoke.name
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn an_image_that_never_becomes_healthy_times_out() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokesick"));
    let image = format!("{}:test", e2e::unique("smoke-sick"));
    let _remove = RemoveImage(&engine, image.clone());
    let dockerfile = format!(
        "FROM {}\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false\nCMD [\"sleep\", \"300\"]\n",
        e2e::BUSYBOX_IMAGE
    );
    let build = Cmd::new("docker")
        .args([
            "buildx",
            "build",
            "--progress=plain",
            "--load",
            "--tag",
            &image,
        ])
        .args(session.label_args())
        .arg("-")
        .stdin_bytes(dockerfile);
    engine.run(&build).expect("build the never-healthy image");
    let smoke = Smoke::new(&session, &image).timeout(Duration::from_secs(6));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of {image} failed: container {} not ready after 6s (health status \
             unhealthy, last check exited 1)\nstate: running, exit code: 0, health: \
             unhealthy\n--- no log output",
            smoke.name
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn a_port_that_never_opens_times_out() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeport"));
    let port = free_port();
    let smoke = Smoke::new(&session, e2e::BUSYBOX_IMAGE)
        .command(["sh", "-c", "echo waiting; sleep 300"])
        .ready(Ready::Tcp(port))
        .timeout(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} not ready after \
             3s (cannot connect to 127.0.0.1:{port}: Connection refused (os error 111))\n\
             state: running, exit code: 0\n--- last 1 log lines\nwaiting",
            smoke.name
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn health_check_needs_a_healthcheck() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokenohc"));
    let err = Smoke::new(&session, e2e::BUSYBOX_IMAGE)
        .ready(Ready::Health)
        .run(&engine)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot wait for the health status of buildkit-local/busybox:latest: the image has no \
         HEALTHCHECK (add one to the Dockerfile, or check a port with Ready::Tcp or Ready::Http)"
    );
    let err = Smoke::new(&session, e2e::BUSYBOX_IMAGE)
        .run(&engine)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot tell when buildkit-local/busybox:latest is ready: it has no HEALTHCHECK and \
         exposes no port (add a HEALTHCHECK or EXPOSE to the Dockerfile, or set a port or a \
         Ready check)"
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn dry_run_prints_the_command_and_starts_nothing() {
    let engine = e2e::engine().dry_run(true).with_fresh_record();
    let session = Session::new(e2e::unique("smokedry"));
    let smoke = Smoke::new(&session, e2e::BUSYBOX_IMAGE).ready(Ready::Tcp(5999));
    let report = smoke.run(&engine).unwrap();
    assert!(report.dry_run);
    assert_eq!(engine.commands(), vec![smoke.command_line().argv()]);
    assert_eq!(leftovers(&e2e::engine(), &session), Vec::<String>::new());
}
