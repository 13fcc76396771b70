//! The steps of the builder, fan-out and explain area as `Step`s: each one's plan is what
//! its run does (`e2e::assert_plan_is_execution`), and its network checks are probes of
//! the runner, recorded in the plan and answered by a fake executor.

use std::path::Path;
use std::sync::Arc;

use buildkit_lib::cmd::{Answer, Echo, FakeExecutor};
use buildkit_lib::docker::Build;
use buildkit_lib::docker::{BuilderCreate, NodeSpec};
use buildkit_lib::docker::{FanOut, FanOutError};
use buildkit_lib::engine::Doctor;
use buildkit_lib::plan::{Action, Step};
use buildkit_lib::validate::Verdict;
use buildkit_lib::{Runner, Session};

fn session() -> Session {
    let mut session = Session::new("steps-explain");
    session.run_id = "steps-explain-run".into();
    session
}

fn context(dir: &Path) {
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
}

#[test]
fn a_builder_create_of_each_driver_runs_its_plan() {
    for (driver, name, endpoint) in [
        ("docker", "docker", None),
        (
            "docker-container",
            "docker-container",
            Some("unix:///run/engine.sock"),
        ),
        ("kubernetes", "kubernetes", None),
        ("remote", "remote", Some("tcp://buildkitd:1234")),
    ] {
        let mut create = BuilderCreate::new()
            .name(format!("ci-{name}"))
            .driver(driver)
            .platform("linux/amd64")
            .bootstrap(true);
        if let Some(endpoint) = endpoint {
            create = create.endpoint(endpoint);
        }
        let plan = e2e::assert_plan_is_execution(&create, &session());
        let text = plan.to_string();
        assert!(
            text.starts_with("? docker buildx ls --format json\n"),
            "the taken-name check comes first: {text}"
        );
        assert!(
            text.contains(&format!(
                "$ docker buildx create --name ci-{0} --driver {0} --platform linux/amd64 \
                 --bootstrap",
                name
            )),
            "{text}"
        );
    }
    // An appended node does not ask whether the name is taken: it must be.
    let append = BuilderCreate::new()
        .name("ci")
        .node(NodeSpec::new("second"))
        .append(true);
    let plan = e2e::assert_plan_is_execution(&append, &session());
    assert_eq!(
        plan.commands(),
        [[
            "docker",
            "buildx",
            "create",
            "--name",
            "ci",
            "--driver",
            "docker-container",
            "--node",
            "second",
            "--append"
        ]]
    );
}

#[test]
fn a_builder_create_refuses_a_taken_name_before_creating() {
    let taken = r#"{"Name":"ci","Driver":"docker-container","Nodes":[]}"#;
    let fake = Arc::new(FakeExecutor::new().on(["docker", "buildx", "ls"], Answer::ok(taken)));
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .with_executor(fake.clone());
    let err = BuilderCreate::new().name("ci").run(&runner).unwrap_err();
    assert!(
        err.to_string()
            .contains("a builder named ci exists already"),
        "{err}"
    );
    assert_eq!(fake.seen().len(), 1, "nothing created: {:?}", fake.seen());
}

#[test]
fn a_multi_node_builder_runs_its_plan() {
    let fleet = BuilderCreate::new()
        .name("fleet")
        .driver("docker-container")
        .node(
            NodeSpec::new("amd")
                .endpoint("unix:///run/a.sock")
                .platform("linux/amd64"),
        )
        .node(
            NodeSpec::new("arm")
                .endpoint("unix:///run/b.sock")
                .platform("linux/arm64"),
        )
        .bootstrap(true);
    let plan = e2e::assert_plan_is_execution(&fleet, &session());
    let commands = plan.commands();
    assert_eq!(commands.len(), 3, "{plan}");
    assert_eq!(commands[0][..3], ["docker", "buildx", "ls"]);
    assert!(!commands[1].contains(&"--append".to_string()), "{plan}");
    assert!(commands[2].contains(&"--append".to_string()), "{plan}");
    assert!(commands[2].contains(&"--bootstrap".to_string()), "{plan}");
}

fn two_engine_fan_out(dir: &Path) -> FanOut {
    fan_out_to(dir, &[])
}

/// The two engines' fan-out, and the platforms `more` after them.
fn fan_out_to(dir: &Path, more: &[&str]) -> FanOut {
    context(dir);
    let build = Build::new(dir)
        .tag("127.0.0.1:5000/steps-explain:1.0")
        .metadata_file(dir.join("out/metadata.json"));
    let platforms = [
        "linux/amd64=unix:///run/engine-amd64.sock",
        "linux/arm64=unix:///run/engine-arm64.sock",
    ]
    .iter()
    .chain(more)
    .copied()
    .collect::<Vec<&str>>();
    FanOut::new(build, platforms).unwrap()
}

#[test]
fn a_fan_out_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let fan = two_engine_fan_out(dir.path());
    let plan = e2e::assert_plan_is_execution(&fan, &session());
    let text = plan.to_string();
    for line in [
        "probe engine ping GET /_ping on unix:///run/engine-amd64.sock",
        "$ docker push 127.0.0.1:5000/steps-explain:1.0-linux-amd64",
        "$ docker push 127.0.0.1:5000/steps-explain:1.0-linux-arm64",
        "? docker buildx imagetools inspect --raw 127.0.0.1:5000/steps-explain:1.0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // Each platform's build writes its own metadata file (they run side by side).
    assert!(text.contains("metadata-linux-amd64.json"), "{text}");
    assert!(text.contains("metadata-linux-arm64.json"), "{text}");
    // The platforms' parts in platform order, whatever order their threads ran in.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(at("engine-amd64.sock") < at("engine-arm64.sock"));
    assert!(at("--platform linux/amd64") < at("--platform linux/arm64"));
    assert!(
        at("engine-arm64.sock") < at("--platform linux/amd64"),
        "probes first"
    );
}

#[test]
fn a_fan_out_checks_its_endpoints_with_probes_and_reports_a_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    // What buildx stored for a remote builder: its daemon is dialled, not inspected.
    let config = dir.path().join("buildx");
    std::fs::create_dir_all(config.join("instances")).unwrap();
    std::fs::write(
        config.join("instances/farm"),
        r#"{"Name":"farm","Driver":"remote","Nodes":[{"Name":"farm0",
           "Endpoint":"tcp://10.0.0.2:1234","Platforms":null}]}"#,
    )
    .unwrap();
    let fan = fan_out_to(dir.path(), &["linux/arm/v7=builder:farm"]);
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .env("BUILDX_CONFIG", config.display().to_string());

    let plan = Step::plan(&fan, &runner).unwrap();
    let probes: Vec<String> = plan
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::Probe(p) => Some(p.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        probes,
        [
            "engine ping GET /_ping on unix:///run/engine-amd64.sock",
            "engine ping GET /_ping on unix:///run/engine-arm64.sock",
            "TCP connect to 10.0.0.2:1234",
        ],
        "{plan}"
    );
    assert!(
        !plan.to_string().contains("buildx inspect"),
        "a stored builder is not inspected: {plan}"
    );

    // The arm64 engine does not answer: nothing is built, and the report names it.
    let fake = Arc::new(
        FakeExecutor::like_dry_run().failing_probe("engine-arm64.sock", "connection refused"),
    );
    let err = fan
        .run(&runner.clone().with_executor(fake.clone()))
        .unwrap_err();
    assert!(err.downcast_ref::<FanOutError>().is_some(), "a FanOutError");
    assert_eq!(e2e::fan_out_outcome(&err, "linux/amd64"), "not started");
    assert!(
        e2e::fan_out_outcome(&err, "linux/arm64").starts_with(
            "its engine does not answer: Cannot connect to the Docker daemon at \
             unix:///run/engine-arm64.sock (connection refused); "
        ),
        "{err}"
    );
    assert_eq!(e2e::fan_out_outcome(&err, "linux/arm/v7"), "not started");
    assert!(
        err.to_string().contains(
            "linux/arm64 on DOCKER_HOST=unix:///run/engine-arm64.sock: its engine does not answer"
        ),
        "{err}"
    );
    assert!(
        fake.seen()
            .iter()
            .all(|c| !c.contains(&"build".to_string())),
        "nothing built: {:?}",
        fake.seen()
    );
}

#[test]
fn the_doctor_asks_the_registry_through_a_probe() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let registry = format!("127.0.0.1:{port}");
    let runner = e2e::engine().echo(Echo::Silent).with_fresh_record();
    let checks = Doctor::new()
        .registry(registry.clone())
        .run(&runner)
        .unwrap();
    let check = checks
        .iter()
        .find(|c| c.name == "registry")
        .unwrap_or_else(|| panic!("no registry check: {checks:?}"));
    assert_eq!(check.status, Verdict::Fail, "{check}");
    assert!(
        check
            .detail
            .starts_with(&format!("{registry} does not answer: ")),
        "{check}"
    );
    let probe = format!("HTTP GET http://{registry}/v2/");
    assert!(
        runner
            .recorded()
            .actions()
            .iter()
            .any(|a| matches!(a, Action::Probe(p) if p.to_string() == probe)),
        "{}",
        runner.recorded()
    );
    // The project's registry answers.
    let checks = Doctor::new().registry(e2e::REGISTRY).run(&runner).unwrap();
    let check = checks.iter().find(|c| c.name == "registry").unwrap();
    assert_eq!(check.status, Verdict::Pass, "{check}");
    assert!(
        check
            .detail
            .starts_with(&format!("{} answers /v2/ (HTTP ", e2e::REGISTRY)),
        "{check}"
    );
}

/// The doctor's plan is its queries of docker and the probe of the registry; the same
/// body run against a fake engine answering as the plan does those very actions.
#[test]
fn the_doctor_runs_its_plan() {
    let doctor = Doctor::new()
        .registry("127.0.0.1:5000")
        .platform("linux/arm64");
    let plan = e2e::assert_plan_is_execution(&doctor, &session());
    let text = plan.to_string();
    assert!(
        text.starts_with("? docker version --format '{{.Client.Version}}'"),
        "{text}"
    );
}
