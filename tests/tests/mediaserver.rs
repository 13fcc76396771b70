//! The production-shaped `fixtures/mediaserver`: its generated build context is
//! deterministic and large, and its image answers `/api/health` with 200 only while the
//! local MariaDB image answers (503 without a database).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::plan::Step;
use buildkit_lib::RUN_LABEL;
use buildkit_lib::{Cmd, Runner, Session};

use e2e::{free_port, leftovers};

/// Builds the fixture's runtime image as `image`, labelled with `session`.
fn build_image(engine: &Runner, session: &Session, context: &std::path::Path, image: &str) {
    Build::new(context.to_path_buf())
        .target("runtime")
        .tag(image.to_string())
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .network("host")
        .output(Output::Load)
        .with_session_labels(session)
        .run(engine)
        .expect("build the mediaserver fixture");
}

/// Files and bytes under `dir`, recursively.
fn count(dir: &std::path::Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (f, b) = count(&entry.path());
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    (files, bytes)
}

#[test]
fn generated_context_is_large_deterministic_and_idempotent() {
    let dir = e2e::mediaserver_fixture();
    let (files, bytes) = count(&dir);
    assert!(files >= 5000, "{files} files");
    assert!(bytes >= 10_000_000, "{bytes} bytes");

    // A second run writes nothing, and --check agrees.
    let out = std::process::Command::new("python3")
        .arg(dir.join("generate.py"))
        .args(["--check", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["stale"], 0);
    assert_eq!(stats["written"], 0);

    // Another root gets the same bytes.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(dir.join("generate.py"))
        .arg("--root")
        .arg(other.path())
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["files"], stats["files"]);
    assert_eq!(again["bytes"], stats["bytes"]);
    for rel in [
        "app/templates/generated/page_0042.html",
        "app/static/thumbs/07/thumb_0107.jpg",
        "data/library/index.json",
        "data/uploads/upload_03.mp4",
    ] {
        assert_eq!(
            std::fs::read(dir.join(rel)).unwrap(),
            std::fs::read(other.path().join(rel)).unwrap(),
            "{rel}"
        );
    }
}

/// Removes containers and an image when dropped.
struct Cleanup<'a> {
    engine: &'a Runner,
    containers: Vec<String>,
    image: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = self
                .engine
                .capture(&Cmd::new("docker").args(["rm", "--force", name]));
        }
        let _ = self
            .engine
            .capture(&Cmd::new("docker").args(["rmi", "--force", &self.image]));
    }
}

/// One `GET` on 127.0.0.1: the status code and the body, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Polls until `check` returns `Some`, or panics after `limit` with the container's logs.
fn wait_for<T>(
    engine: &Runner,
    container: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > limit {
            let logs = engine
                .capture(&Cmd::new("docker").args(["logs", container]))
                .map(|o| format!("{}{}", o.stdout, o.stderr))
                .unwrap_or_default();
            panic!("{container} not ready after {limit:?}; logs:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn mediaserver_health_is_200_with_mariadb_and_503_without() {
    let engine = e2e::engine();
    let context = e2e::mediaserver_fixture();
    let session = Session::new(e2e::unique("mediaserver"));
    let image = format!("{}:test", e2e::unique("mediaserver-e2e"));
    let db = e2e::unique("mediaserver-db");
    let app = e2e::unique("mediaserver-app");
    let lonely = e2e::unique("mediaserver-nodb");
    let _cleanup = Cleanup {
        engine: &engine,
        containers: vec![app.clone(), lonely.clone(), db.clone()],
        image: image.clone(),
    };
    build_image(&engine, &session, &context, &image);

    let label = format!("{RUN_LABEL}={}", session.run_id);
    let (db_port, app_port) = (free_port(), free_port());
    let db_env = [
        "DB_HOST=127.0.0.1".to_string(),
        format!("DB_PORT={db_port}"),
        "DB_USER=media".to_string(),
        "DB_PASSWORD=s3cret'pw".to_string(),
        "DB_NAME=media".to_string(),
        "HOST=127.0.0.1".to_string(),
        format!("PORT={app_port}"),
    ];
    let run_app = |name: &str, extra: &[&str]| {
        let mut cmd =
            Cmd::new("docker").args(["run", "-d", "--name", name, "--label", label.as_str()]);
        cmd = cmd.args(["--network", "host"]);
        for e in db_env
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            cmd = cmd.args(["--env", e]);
        }
        engine
            .capture(&cmd.arg(&image))
            .expect("docker run the app");
    };

    // No database: the app starts after its wait times out and reports 503.
    run_app(&lonely, &["DB_WAIT_TIMEOUT=1"]);
    let (status, body) = wait_for(&engine, &lonely, Duration::from_secs(60), || {
        http_get(app_port, "/api/health")
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"database\":\"unreachable\""), "{body}");
    engine
        .capture(&Cmd::new("docker").args(["rm", "--force", &lonely]))
        .unwrap();

    // MariaDB on a free loopback port, then the app: 200 with the seeded rows.
    engine
        .capture(
            &Cmd::new("docker")
                .args([
                    "run",
                    "-d",
                    "--name",
                    db.as_str(),
                    "--label",
                    label.as_str(),
                ])
                .args(["--network", "host"])
                .args(["--env", &format!("MARIADB_PORT={db_port}")])
                .args(["--env", "MARIADB_ROOT_PASSWORD=root"])
                .args(["--env", "MARIADB_DATABASE=media"])
                .args(["--env", "MARIADB_USER=media"])
                .args(["--env", "MARIADB_PASSWORD=s3cret'pw"])
                .arg(e2e::MARIADB_IMAGE),
        )
        .expect("docker run mariadb");
    let ready = format!("mariadb ready on 127.0.0.1:{db_port}");
    wait_for(&engine, &db, Duration::from_secs(90), || {
        let logs = engine
            .capture(&Cmd::new("docker").args(["logs", &db]))
            .ok()?;
        logs.stdout.lines().any(|l| l == ready).then_some(())
    });
    run_app(&app, &[]);
    let body = wait_for(&engine, &app, Duration::from_secs(90), || {
        match http_get(app_port, "/api/health") {
            Some((200, body)) => Some(body),
            _ => None,
        }
    });
    assert!(body.contains("\"status\":\"healthy\""), "{body}");
    assert!(body.contains("\"artists\":3"), "{body}");
    let (status, page) = http_get(app_port, "/pages/page_0042").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("id=\"page-0042\""), "{page}");

    // The database goes away: 503 again.
    engine
        .capture(&Cmd::new("docker").args(["stop", &db]))
        .unwrap();
    let (status, body) = http_get(app_port, "/api/health").unwrap();
    assert_eq!(status, 503, "{body}");
}

/// The seed's "database connection working" check through the library: `Smoke` starts a
/// real MariaDB as a companion service, then the app, which answers 200 only after a real
/// query. With the wrong password the same check cannot pass: the app answers 503 and the
/// smoke test fails with its logs. Every container is removed either way, and the
/// password (a secret) is in no log.
#[test]
fn smoke_test_with_a_real_mariadb_passes_only_when_the_query_works() {
    use buildkit_lib::validate::{Ready, Smoke, SmokeError};
    use buildkit_lib::Secret;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("smoke.log");
    let engine = e2e::engine().log_to(&log);
    let context = e2e::mediaserver_fixture();
    let session = Session::new(e2e::unique("msmoke"));
    let engine = engine.session(session.clone());
    let image = format!("{}:test", e2e::unique("mediaserver-smoke"));
    let _cleanup = Cleanup {
        engine: &engine,
        containers: vec![],
        image: image.clone(),
    };
    build_image(&engine, &session, &context, &image);

    let password = format!("pw with spaces 'and' $quotes {}", e2e::unique("x"));
    let smoke = |app_password: &str| {
        let db_port = free_port();
        let app_port = free_port();
        Smoke::new(&image)
            .service(
                "db",
                Smoke::new(e2e::MARIADB_IMAGE)
                    .port(db_port)
                    .env("MARIADB_PORT", db_port.to_string())
                    .env("MARIADB_DATABASE", "media")
                    .env("MARIADB_USER", "media")
                    .secret_env("MARIADB_PASSWORD", Secret::new(password.clone()))
                    .secret_env("MARIADB_ROOT_PASSWORD", Secret::new(e2e::unique("root-pw")))
                    .ready(Ready::LogLine("mariadb ready".into()))
                    .timeout(Duration::from_secs(120)),
            )
            .env("PORT", app_port.to_string())
            .env("DB_USER", "media")
            .env("DB_NAME", "media")
            .env("DB_WAIT_TIMEOUT", "5")
            .secret_env("DB_PASSWORD", Secret::new(app_password.to_string()))
            .ready(Ready::Http {
                port: app_port,
                path: "/api/health".into(),
                expect_body: Some("\"database\":\"ok\"".into()),
            })
            .timeout(Duration::from_secs(25))
    };

    let report = smoke(&password)
        .run(&engine)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let shown = e2e::smoke_shown(&report.to_string());
    assert_eq!(shown.services[0], "db");
    assert!(shown.detail.starts_with("HTTP 200"), "{}", shown.detail);
    assert!(
        shown
            .answered_by
            .as_deref()
            .is_some_and(|a| a.ends_with("inside the container")),
        "{report}"
    );
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.contains("database at 127.0.0.1:")),
        "{:?}",
        report.logs
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());

    let err = smoke("not the password")
        .run(&engine)
        .expect_err("a wrong password cannot pass");
    let err = err
        .downcast::<SmokeError>()
        .unwrap_or_else(|e| panic!("expected a SmokeError: {e:#}"));
    let first_line = err.to_string().lines().next().unwrap().to_string();
    assert!(
        first_line.contains(" not ready after ")
            && first_line.ends_with("/api/health answered 503)"),
        "expected a timeout on 503, got {err}"
    );
    assert_eq!(leftovers(&engine, &session), Vec::<String>::new());

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("--env DB_PASSWORD "), "{logged}");
    assert!(
        !logged.contains(&password),
        "the password leaked into the log"
    );
    assert!(!err.to_string().contains(&password));
}
