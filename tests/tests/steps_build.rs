//! Plan equals execution for the build steps: each step's plan (its body recorded on a
//! runner where nothing runs) is exactly what the same step does against a fake engine
//! answering every query with the placeholder its plan shows. No engine is needed.

use std::path::PathBuf;

use buildkit_lib::docker::BuildCheck;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{Bake, BakeFile};
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{ImagetoolsCreate, Push};
use buildkit_lib::plan::{Action, Plan, Step};
use buildkit_lib::{Runner, Secret, Session};
use e2e::assert_plan_is_execution;

fn session() -> Session {
    let mut session = Session::new("steps-build");
    session.run_id = "steps-build-run".into();
    session
}

fn desktop() -> PathBuf {
    e2e::repo_root().join("fixtures/desktop")
}

fn desktop_build() -> Build {
    Build::new(desktop())
        .target("runtime")
        .tag("desk:steps")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11")
}

/// The `docker buildx build` command of a plan, as argv.
fn build_line(plan: &Plan) -> Vec<String> {
    plan.commands()
        .into_iter()
        .find(|argv| argv.len() > 2 && argv[..3] == ["docker", "buildx", "build"])
        .unwrap_or_else(|| panic!("no build in the plan:\n{plan}"))
}

/// The value after `flag` in `argv`.
fn after<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let at = argv.iter().position(|a| a == flag).unwrap();
    &argv[at + 1]
}

#[test]
fn a_loaded_build_runs_its_plan_and_removes_its_metadata_file() {
    let build = desktop_build().output(Output::Load);
    let plan = assert_plan_is_execution(&build, &session());
    let line = build_line(&plan);
    assert!(line.contains(&"--load".to_string()), "{plan}");
    let metadata = PathBuf::from(after(&line, "--metadata-file"));
    assert!(
        metadata.starts_with(std::env::temp_dir())
            && metadata.to_string_lossy().contains("steps-build-run"),
        "{plan}"
    );
    assert!(plan.actions().contains(&Action::Remove(metadata)), "{plan}");
    // The size is read from the image store after a load.
    assert!(
        plan.to_string()
            .contains("? docker image inspect --format '{{json .}}' desk:steps"),
        "{plan}"
    );
}

#[test]
fn a_pushed_build_runs_its_plan() {
    let build = desktop_build()
        .tag("127.0.0.1:5000/desk:steps")
        .output(Output::Push);
    let plan = assert_plan_is_execution(&build, &session());
    assert!(build_line(&plan).contains(&"--push".to_string()), "{plan}");
    assert!(!plan.to_string().contains("image inspect"), "{plan}");
}

#[test]
fn a_build_with_a_metadata_file_given_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metadata.json");
    let build = desktop_build().metadata_file(&file);
    let plan = assert_plan_is_execution(&build, &session());
    assert_eq!(
        after(&build_line(&plan), "--metadata-file"),
        file.display().to_string()
    );
    assert!(
        !plan
            .actions()
            .iter()
            .any(|a| matches!(a, Action::Remove(_))),
        "{plan}"
    );
}

#[test]
fn a_build_with_local_caches_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let build = desktop_build()
        .cache_from(Cache::local(&cache))
        .cache_to(Cache::local(&cache).mode_max(true))
        .output(Output::Load);
    let plan = assert_plan_is_execution(&build, &session());
    let line = build_line(&plan);
    assert!(
        after(&line, "--cache-from").contains(&cache.display().to_string()),
        "{plan}"
    );
    assert!(after(&line, "--cache-to").contains("mode=max"), "{plan}");
}

#[test]
fn a_build_with_a_secret_never_shows_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let value = "s3cr3t-build-token-value";
    let file = dir.path().join("token");
    std::fs::write(&file, value).unwrap();
    let build = desktop_build()
        .secret_file("token", &file)
        .output(Output::Load);
    let plan = assert_plan_is_execution(&build, &session());
    assert_eq!(
        after(&build_line(&plan), "--secret"),
        format!("id=token,src={}", file.display())
    );
    assert!(!plan.to_string().contains(value), "{plan}");
    assert!(!serde_json::to_string(&plan).unwrap().contains(value));
}

/// A value the program holds reaches buildx in its environment only: the plan names the
/// variable, never the value, whatever its shape.
#[test]
fn a_build_with_a_held_secret_value_names_only_its_variable() {
    let value = "multi line\nvalue with spaces $HOME 'q' \"d\"";
    let build = desktop_build()
        .secret_value("pip token", Secret::new(value))
        .output(Output::Load);
    let plan = assert_plan_is_execution(&build, &session());
    assert_eq!(
        after(&build_line(&plan), "--secret"),
        "id=pip token,env=BUILDKIT_SECRET_PIP_TOKEN"
    );
    for line in value.lines() {
        assert!(!plan.to_string().contains(line), "{plan}");
        assert!(!serde_json::to_string(&plan).unwrap().contains(line));
    }
}

#[test]
fn a_multi_platform_load_asks_the_image_store_first() {
    let build = desktop_build()
        .platform("linux/amd64")
        .platform("linux/arm64")
        .output(Output::Load);
    let plan = assert_plan_is_execution(&build, &session());
    let commands = plan.commands();
    assert_eq!(
        commands[0],
        ["docker", "info", "--format", "{{json .DriverStatus}}"],
        "{plan}"
    );
    assert_eq!(
        after(&build_line(&plan), "--platform"),
        "linux/amd64,linux/arm64"
    );
    // The dry answer is the containerd image store, so the plan goes on to the build;
    // it is not kept as the engine's answer: a real run asks again.
    let runner = Runner::new().session(session());
    let again = buildkit_lib::plan::Step::plan(&build, &runner).unwrap();
    assert_eq!(again.commands()[0], commands[0]);
}

#[test]
fn a_bake_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = BakeFile::new(dir.path());
    builder
        .build("desk", &desktop_build().output(Output::Load))
        .unwrap();
    let runner = Runner::new().echo(buildkit_lib::cmd::Echo::Silent);
    let bake: Bake = builder
        .write(&runner, &dir.path().join("docker-bake.json"))
        .unwrap()
        .target("desk");
    let plan = assert_plan_is_execution(&bake, &session());
    let line = plan
        .commands()
        .into_iter()
        .find(|argv| argv[..3] == ["docker", "buildx", "bake"])
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(line.last().unwrap(), "desk");
    assert!(
        line.iter().any(|a| a
            == &format!(
                "--allow=fs.read={}",
                desktop().canonicalize().unwrap().display()
            )),
        "{plan}"
    );
    let metadata = PathBuf::from(after(&line, "--metadata-file"));
    assert!(plan.actions().contains(&Action::Remove(metadata)), "{plan}");
}

#[test]
fn a_bake_of_a_file_not_written_yet_runs_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = BakeFile::new(dir.path());
    builder.build("desk", &desktop_build()).unwrap();
    // Written by a dry run: the file is not there, its targets are not checked.
    let dry = Runner::new()
        .dry_run(true)
        .echo(buildkit_lib::cmd::Echo::Silent);
    let path = dir.path().join("docker-bake.json");
    let bake = builder.write(&dry, &path).unwrap();
    assert!(!path.exists());
    let plan = assert_plan_is_execution(&bake, &session());
    // Nothing checked: buildx asked whether it takes the grants the file needs, then the
    // bake.
    let commands = plan.commands();
    assert_eq!(commands.len(), 2, "{plan}");
    assert_eq!(commands[0], ["docker", "buildx", "version"], "{plan}");
    assert_eq!(commands[1][..3], ["docker", "buildx", "bake"], "{plan}");
}

#[test]
fn a_build_check_runs_its_plan() {
    let check = BuildCheck::of(&desktop_build());
    let plan = assert_plan_is_execution(&check, &session());
    assert_eq!(plan.commands()[0], ["docker", "buildx", "version"]);
    let line = build_line(&plan);
    assert!(
        line.contains(&"--call=check,format=json".to_string()),
        "{plan}"
    );
    // Its run reads the dry answer: no findings.
    let report = buildkit_lib::plan::Step::run(
        &check,
        &Runner::new()
            .echo(buildkit_lib::cmd::Echo::Silent)
            .with_executor(std::sync::Arc::new(
                buildkit_lib::cmd::FakeExecutor::like_dry_run(),
            )),
    )
    .unwrap();
    assert!(report.findings().is_empty());
}

#[test]
fn an_imagetools_create_runs_its_plan() {
    let merge = ImagetoolsCreate::new()
        .tag("127.0.0.1:5000/desk:1.0")
        .source("127.0.0.1:5000/desk@sha256:aaaa")
        .source("127.0.0.1:5000/desk@sha256:bbbb");
    let plan = assert_plan_is_execution(&merge, &session());
    assert_eq!(
        plan.commands(),
        [[
            "docker",
            "buildx",
            "imagetools",
            "create",
            "--tag",
            "127.0.0.1:5000/desk:1.0",
            "127.0.0.1:5000/desk@sha256:aaaa",
            "127.0.0.1:5000/desk@sha256:bbbb"
        ]]
    );
    // A bad setting fails the plan as it fails the run, before anything.
    let empty = ImagetoolsCreate::new().tag("127.0.0.1:5000/desk:1.0");
    assert!(buildkit_lib::plan::Step::plan(&empty, &Runner::new()).is_err());
}

#[test]
fn a_push_runs_its_plan() {
    let push = Push::new("127.0.0.1:5000/webapp:1").retry(3, std::time::Duration::from_secs(2));
    let plan = assert_plan_is_execution(&push, &session());
    assert_eq!(plan.to_string(), "$ docker push 127.0.0.1:5000/webapp:1\n");
}

#[test]
fn a_pushed_build_with_retries_runs_its_plan() {
    let build = desktop_build()
        .tag("127.0.0.1:5000/webapp:1")
        .output(Output::Push)
        .retry_push(3, std::time::Duration::from_secs(2));
    let plan = assert_plan_is_execution(&build, &session());
    assert_eq!(
        plan.to_string().matches("$ docker buildx build").count(),
        1,
        "{plan}"
    );
    // Only a push is retried: a build that loads refuses the setting before it runs.
    let loaded = build.clone().output(Output::Load);
    let err = loaded.plan(&Runner::new().session(session())).unwrap_err();
    assert!(format!("{err:#}").contains("retry_push"), "{err:#}");
}
