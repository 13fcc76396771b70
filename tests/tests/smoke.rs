//! Smoke tests against the real engine: the webapp fixture answers with its version, an
//! image that exits at once and one that never becomes ready fail with the container's
//! state, exit code and logs, and no container is left behind.

use std::sync::atomic::Ordering;
use std::time::Duration;

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::plan::Step;
use buildkit_lib::validate::{PortTaken, Ready, Smoke, SmokeError};
use buildkit_lib::{Cmd, Runner, Secret, Session};

use e2e::{free_port, leftovers};

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
    let engine = engine.session(session.clone());
    let image = format!("{}:test", e2e::unique("smoke-webapp"));
    let _remove = RemoveImage(&engine, image.clone());
    let context = e2e::repo_root().join("fixtures/webapp");
    let build = Build::new(context.clone())
        .dockerfile(context.join("Dockerfile.production"))
        .target("runtime")
        .tag(image.clone())
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .network("host")
        .output(Output::Load)
        .with_session_labels(&session);
    build.run(&engine).expect("build the webapp fixture");
    let version_file = std::fs::read_to_string(context.join("version.json")).unwrap();
    let version: serde_json::Value = serde_json::from_str(&version_file).unwrap();
    let expected = format!("\"version\": \"{}\"", version["version"].as_str().unwrap());

    // An explicit HTTP check of the health endpoint, with the version in the body.
    let port = free_port();
    let report = Smoke::new(&image)
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
        e2e::smoke_shown(&report.to_string()).detail,
        format!("HTTP 200, body contains {expected:?}")
    );
    assert!(report.time_to_ready < Duration::from_secs(60));
    eprintln!("{report}");
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());

    // Automatic: the image has a HEALTHCHECK, so its health status decides.
    let port = free_port();
    let report = Smoke::new(&image)
        .env("PORT", port.to_string())
        .timeout(Duration::from_secs(90))
        .run(&engine)
        .expect("the webapp becomes healthy");
    let shown = e2e::smoke_shown(&report.to_string());
    assert_eq!(shown.check, Ready::Health.to_string());
    assert_eq!(shown.detail, "health status healthy");
    eprintln!("{report}");
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn an_image_that_exits_at_once_fails_with_state_exit_code_and_logs() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeexit"));
    let engine = engine.session(session.clone());
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .args(["sh", "-c", "echo booting; echo cannot bind >&2; exit 3"])
        .ready(Ready::Tcp(free_port()))
        .timeout(Duration::from_secs(30));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert!(
        err.to_string()
            .lines()
            .next()
            .unwrap()
            .ends_with(" stopped before it was ready"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} stopped before \
             it was ready\nstate: exited, exit code: 3\n--- last 2 log lines\nbooting\ncannot bind",
            session.container_name("smoke")
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn busybox_false_fails_with_exit_code_1_and_no_logs() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokefalse"));
    let engine = engine.session(session.clone());
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .args(["false"])
        .port(free_port())
        .timeout(Duration::from_secs(30));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} stopped before \
             it was ready\nstate: exited, exit code: 1\n--- no log output",
            session.container_name("smoke")
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn an_image_that_never_becomes_healthy_times_out() {
    let engine = e2e::engine();
    let project = e2e::unique("smokesick");
    let session = Session::new(project.clone());
    let engine = engine.session(session.clone());
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
        .args([
            "--label".to_string(),
            format!("{}={project}", buildkit_lib::PROJECT_LABEL),
            "--label".to_string(),
            format!("{}={}", buildkit_lib::RUN_LABEL, session.run_id),
        ])
        .arg("-")
        .stdin_bytes(dockerfile);
    engine.run(&build).expect("build the never-healthy image");
    let smoke = Smoke::new(&image).timeout(Duration::from_secs(6));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of {image} failed: container {} not ready after 6s (health status \
             unhealthy, last check exited 1)\nstate: running, exit code: 0, health: \
             unhealthy\n--- no log output",
            session.container_name("smoke")
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn a_port_that_never_opens_times_out() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeport"));
    let engine = engine.session(session.clone());
    let port = free_port();
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .args(["sh", "-c", "echo waiting; sleep 300"])
        .ready(Ready::Tcp(port))
        .timeout(Duration::from_secs(3));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: container {} not ready after \
             3s (cannot connect to 127.0.0.1:{port}: Connection refused (os error 111))\n\
             state: running, exit code: 0\n--- last 1 log lines\nwaiting",
            session.container_name("smoke")
        )
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn health_check_needs_a_healthcheck() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokenohc"));
    let engine = engine.session(session.clone());
    let err = Smoke::new(e2e::BUSYBOX_IMAGE)
        .ready(Ready::Health)
        .run(&engine)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot wait for the health status of buildkit-local/busybox:latest: the image has no \
         HEALTHCHECK (add one to the Dockerfile, or check a port with Ready::Tcp or Ready::Http)"
    );
    let err = Smoke::new(e2e::BUSYBOX_IMAGE).run(&engine).unwrap_err();
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
    let engine = engine.session(session.clone());
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE).ready(Ready::Tcp(5999));
    let report = smoke.run(&engine).unwrap();
    // The dry run goes down the path of a run whose answers are the placeholders.
    assert_eq!(
        e2e::smoke_shown(&report.to_string()).attempts,
        0,
        "{report}"
    );
    assert_eq!(engine.recorded(), smoke.plan(&engine).unwrap());
    assert!(
        started_app(&engine, &session),
        "{:?}",
        engine.recorded().commands()
    );
    assert_eq!(leftovers(&e2e::engine(), &session), Vec::<String>::new());
}

/// Whether the runner started (or, in a dry run, would start) the test's app container.
fn started_app(engine: &Runner, session: &Session) -> bool {
    let name = session.container_name("smoke");
    engine
        .recorded()
        .commands()
        .iter()
        .any(|argv| argv.starts_with(&["docker".to_string(), "run".into()]) && argv.contains(&name))
}

/// Whether a container of that name exists.
fn exists(engine: &Runner, name: &str) -> bool {
    engine
        .capture(&Cmd::new("docker").args(["container", "inspect", name]))
        .is_ok()
}

#[test]
fn a_port_already_served_is_refused_naming_the_process() {
    let engine = e2e::engine().with_fresh_record();
    let session = Session::new(e2e::unique("smoketaken"));
    let engine = engine.session(session.clone());
    // Another server already answers 200 on the port, as a registry did for a user.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .args(["sleep", "300"])
        .ready(Ready::Http {
            port,
            path: "/".into(),
            expect_body: None,
        });
    let err = smoke.run(&engine).unwrap_err();
    let taken = err
        .downcast_ref::<PortTaken>()
        .unwrap_or_else(|| panic!("expected PortTaken, got: {err:#}"));
    assert_eq!(taken.port, port);
    let me = std::process::id();
    // The process listening there is this one.
    assert!(
        taken
            .to_string()
            .contains(&format!(" (pid {me}); a check there could be answered")),
        "{taken}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot smoke-test buildkit-local/busybox:latest: port {port} on 127.0.0.1 is \
             already in use by "
        )) && text.contains(&format!("(pid {me})"))
            && text.contains("Pick a free port"),
        "{text}"
    );
    // Nothing was started.
    assert!(!engine
        .recorded()
        .commands()
        .iter()
        .any(|argv| argv.get(1).map(String::as_str) == Some("run")));
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
    drop(server);
}

#[test]
fn an_answer_from_a_server_outside_the_container_is_not_a_pass() {
    let engine = e2e::engine();
    let session = Session::new(e2e::unique("smokeimpostor"));
    let engine = engine.session(session.clone());
    let port = free_port();
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .args(["sh", "-c", "echo waiting for the database; sleep 300"])
        .ready(Ready::Http {
            port,
            path: "/api/health".into(),
            expect_body: None,
        })
        .timeout(Duration::from_secs(30));
    // Once the container runs (after the port check), another server takes the port and
    // answers 200 to everything.
    let name = session.container_name("smoke");
    let watcher = e2e::engine();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let impostor = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !exists(&watcher, &name) {
            assert!(start.elapsed() < Duration::from_secs(30), "no container");
            std::thread::sleep(Duration::from_millis(50));
        }
        let server = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        server.set_nonblocking(true).unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(40) && !stop.load(Ordering::SeqCst) {
            match server.accept() {
                Ok((mut conn, _)) => {
                    use std::io::{Read, Write};
                    let mut buf = [0u8; 1024];
                    conn.set_nonblocking(false).unwrap();
                    let _ = conn.read(&mut buf);
                    let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let err = smoke.run(&engine);
    done.store(true, Ordering::SeqCst);
    impostor.join().unwrap();
    let err = smoke_error(err.unwrap_err());
    let text = err.to_string();
    match text
        .lines()
        .next()
        .unwrap()
        .split_once(" did not give the answer: ")
    {
        Some((_, why)) => assert!(
            why.starts_with(&format!("port {port} is served by "))
                && why.ends_with(&format!(
                    "(pid {}), which is not in the container",
                    std::process::id()
                )),
            "{why}"
        ),
        None => panic!("expected an answer not from the container, got: {text}"),
    }
    assert_eq!(err.logs, vec!["waiting for the database".to_string()]);
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}

#[test]
fn a_companion_service_starts_first_and_the_app_gets_its_address_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("smoke.log");
    let engine = e2e::engine().log_to(&log);
    let session = Session::new(e2e::unique("smokesvc"));
    let engine = engine.session(session.clone());
    let db_port = free_port();
    let app_port = free_port();
    let password = "first line of a pass phrase\nsecond 'line' $(not run) *.?[x]";
    let expected_md5 = {
        let out = std::process::Command::new("md5sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(password.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
    let db = Smoke::new(e2e::BUSYBOX_IMAGE)
        .port(db_port)
        .secret_env("DB_ROOT_PASSWORD", Secret::new(password))
        .args([
            "sh",
            "-c",
            &format!("echo starting; sleep 1; echo db-ready-now; exec nc -ll -p {db_port} -e true"),
        ])
        .ready(Ready::LogLine("db-ready-now".into()))
        .timeout(Duration::from_secs(30));
    // The app checks the address and the password it was given, then serves.
    let script = format!(
        "test \"$DB_HOST:$DB_PORT\" = 127.0.0.1:{db_port} || {{ echo wrong address; exit 5; }}; \
         test \"$(printf %s \"$DB_PASSWORD\" | md5sum | cut -c1-32)\" = {expected_md5} \
         || {{ echo wrong password; exit 6; }}; echo app-up; exec nc -ll -p {app_port} -e true"
    );
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .service("db", db)
        .secret_env("DB_PASSWORD", Secret::new(password))
        .args(["sh", "-c", &script])
        .ready(Ready::Tcp(app_port))
        .timeout(Duration::from_secs(30));
    let report = smoke.run(&engine).unwrap_or_else(|e| panic!("{e:#}"));
    let shown = e2e::smoke_shown(&report.to_string());
    assert_eq!(shown.services, ["db"], "{report}");
    assert_eq!(report.logs, vec!["app-up".to_string()]);
    assert_eq!(
        shown
            .answered_by
            .as_deref()
            .map(|a| a.ends_with("inside the container")),
        Some(true),
        "{report}"
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
    let logged = std::fs::read_to_string(&log).unwrap();
    // The service ran in its own container, named after the app's.
    assert!(
        logged.contains(&format!("--name {}_db ", session.container_name("smoke"))),
        "{logged}"
    );
    assert!(logged.contains("--env DB_PASSWORD "), "{logged}");
    for line in password.lines() {
        assert!(
            !logged.contains(line),
            "the log shows the secret:\n{logged}"
        );
        assert!(!report.to_string().contains(line));
    }
}

#[test]
fn a_service_that_stops_fails_the_test_before_the_app_starts() {
    let engine = e2e::engine().with_fresh_record();
    let session = Session::new(e2e::unique("smokesvcfail"));
    let engine = engine.session(session.clone());
    let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
        .service(
            "db",
            Smoke::new(e2e::BUSYBOX_IMAGE).port(free_port()).args([
                "sh",
                "-c",
                "echo cannot open the data directory; exit 4",
            ]),
        )
        .args(["sleep", "300"])
        .ready(Ready::Tcp(free_port()));
    let err = smoke_error(smoke.run(&engine).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "smoke test of buildkit-local/busybox:latest failed: service db \
             (buildkit-local/busybox:latest): container {}_db stopped before it was ready; the \
             app was not started\nstate: exited, exit code: 4\n--- last 1 log lines\ncannot \
             open the data directory",
            session.container_name("smoke")
        )
    );
    assert!(
        !started_app(&engine, &session),
        "{:?}",
        engine.recorded().commands()
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());
}
