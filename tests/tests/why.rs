//! Why was this rebuilt, on the real engine: a copy of the webapp fixture built by a
//! pipeline four times over (nothing changed, one source file changed, a build arg
//! changed, a secret changed), each build's explanation checked against the cause. The
//! other causes on the fixtures are in `why_fixtures.rs`; on small builds of their own,
//! every cause in `why_causes.rs`.

use std::path::{Path, PathBuf};

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{Cause, Explanation};
use buildkit_lib::pipeline::{Pipeline, Report};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner, Session};
use e2e::why::{copy_tree, fresh, RemoveImages};

/// A copy of `fixtures/webapp` that the test may change.
fn webapp_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&e2e::repo_root().join("fixtures/webapp"), dir.path());
    dir
}

struct Webapp {
    app: tempfile::TempDir,
    target: tempfile::TempDir,
    tag: String,
    secret: PathBuf,
    runner: Runner,
}

impl Webapp {
    fn new() -> Webapp {
        let app = webapp_copy();
        let secret = app.path().join("pip-token");
        std::fs::write(&secret, "first-secret-value-4711\n").unwrap();
        Webapp {
            app,
            target: tempfile::tempdir().unwrap(),
            tag: format!("{}:dev", e2e::unique("bkl-why")),
            secret,
            runner: e2e::engine(),
        }
    }

    /// Builds through a pipeline (forced: the step runs even with unchanged inputs) and
    /// returns the explanation, as kept for `cargo xtask why`, and the report.
    fn build(&self, app_uid: &str) -> (Explanation, Report) {
        let dir = self.app.path();
        let build = Build::new(dir)
            .dockerfile(dir.join("Dockerfile.production"))
            .target("runtime")
            .tag(&self.tag)
            .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE)
            .build_arg("APP_UID", app_uid)
            .secret_file("pip_token", &self.secret)
            .network("none")
            .output(Output::Load);
        let mut pipeline = Pipeline::new("why", self.target.path());
        pipeline.image_build("image", build, "webapp");
        pipeline.force(true).jobs(1);
        let report = pipeline
            .run(&self.runner.clone().session(Session::new("why-test")))
            .unwrap();
        assert!(report.ok, "{:#?}", report.steps);
        let explanation = Explanation::load(&self.record_path()).unwrap().unwrap();
        (explanation, report)
    }

    fn record_path(&self) -> PathBuf {
        self.target.path().join("buildkit/why/why/image.json")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.target.path().join("buildkit/why/logs/image.log")).unwrap()
    }
}

impl Drop for Webapp {
    fn drop(&mut self) {
        let _ = self
            .runner
            .clone()
            .echo(buildkit_lib::cmd::Echo::Silent)
            .capture(&Cmd::new("docker").args(["image", "rm", "--force", &self.tag]));
    }
}

fn row<'a>(
    e: &'a Explanation,
    stage: &str,
    line: usize,
) -> &'a buildkit_lib::docker::InstructionRow {
    e.rows()
        .iter()
        .find(|r| r.stage == stage && r.line == Some(line))
        .unwrap_or_else(|| panic!("no row {stage}:{line} in\n{e}"))
}

fn contains_anywhere(paths: &[&Path], needle: &str) -> Vec<String> {
    paths
        .iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn each_rebuild_of_the_webapp_names_its_cause() {
    let w = Webapp::new();
    let uid = "10001";
    // Whatever the engine's cache holds, this build leaves a record and a cache.
    let (first, _) = w.build(uid);
    assert_eq!(first.rows().len(), 10, "{first}");
    assert!(
        first
            .to_string()
            .contains("no previous build recorded here"),
        "{first}"
    );
    // The build succeeded: every row not cached was rebuilt.
    for row in first.rows().iter().filter(|r| !r.cached()) {
        assert!(
            matches!(
                row.cause,
                Some(
                    Cause::NoPreviousRecord
                        | Cause::EarlierRebuilt { .. }
                        | Cause::StageRebuilt { .. }
                )
            ),
            "{first}"
        );
    }

    // Nothing changed: every instruction cached, nothing to explain.
    let (same, report) = w.build(uid);
    assert_eq!(same.cached_count(), (10, 10), "{same}");
    assert!(same.rows().iter().all(|r| r.cause.is_none()), "{same}");
    let step = report.step("image").unwrap();
    assert_eq!(
        step.why.as_deref(),
        Some("10/10 instructions cached; nothing rebuilt")
    );
    let instructions = &e2e::report_step(w.target.path(), "why", "image")["instructions"];
    assert_eq!(instructions.as_array().map(Vec::len), Some(10));
    assert!(w
        .log()
        .contains("image: 10/10 instructions cached; nothing rebuilt"));

    // One source file changed: its COPY names it, later steps name that COPY.
    let server = w.app.path().join("src/webapp/server.py");
    let mut text = std::fs::read_to_string(&server).unwrap();
    text.push_str(&format!("# {}\n", fresh()));
    std::fs::write(&server, text).unwrap();
    let (changed, report) = w.build(uid);
    let copy = row(&changed, "builder", 23);
    assert_eq!(copy.instruction, "COPY src/ /opt/app/lib/");
    assert_eq!(
        copy.cause,
        Some(Cause::FilesChanged {
            files: vec!["src/webapp/server.py".into()]
        }),
        "{changed}"
    );
    let summary = changed.summary();
    assert!(
        summary.ends_with(
            "first rebuilt: COPY src/ /opt/app/lib/ (Dockerfile.production:23) because \
             src/webapp/server.py changed"
        ),
        "{summary}"
    );
    assert!(w.log().contains(&format!("image: {summary}")));
    assert!(report.step("image").is_some());
    let step = e2e::report_step(w.target.path(), "why", "image");
    let reported = step["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["line"] == 23)
        .unwrap();
    assert_eq!(reported["cached"], false);
    assert_eq!(reported["cause"], "src/webapp/server.py changed");
    // The runtime stage copies from the builder: it says so.
    assert!(matches!(
        &row(&changed, "runtime", 40).cause,
        Some(Cause::StageRebuilt { stage, .. }) if stage == "builder"
    ));

    // A build arg changed: named, its value nowhere.
    let new_uid = format!("{}", 20000 + std::process::id() % 10000);
    let (arg, _) = w.build(&new_uid);
    assert_eq!(
        row(&arg, "runtime", 30).cause,
        Some(Cause::BuildArgChanged {
            names: vec!["APP_UID".into()]
        }),
        "{arg}"
    );
    assert!(arg.summary().ends_with("because build arg APP_UID changed"));

    // A secret changed: reported by id, its value in no file the run wrote.
    std::fs::write(&w.secret, "second-secret-value-0815\n").unwrap();
    let (secret, _) = w.build(&new_uid);
    assert!(
        secret
            .to_string()
            .contains("secrets changed since the previous build: pip_token ("),
        "{secret}"
    );
    assert_eq!(secret.cached_count(), (10, 10), "a secret is no cache key");
    let report_path = w.target.path().join("buildkit/why/report.json");
    let log_path = w.target.path().join("buildkit/why/logs/image.log");
    let files = [w.record_path(), report_path, log_path];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    for value in ["first-secret-value-4711", "second-secret-value-0815"] {
        assert_eq!(
            contains_anywhere(&files, value),
            Vec::<String>::new(),
            "{value}"
        );
        assert!(!secret.to_string().contains(value));
    }
    assert!(std::fs::read_to_string(w.record_path())
        .unwrap()
        .contains("\"pip_token\":\"sha256:"));
}

/// The production-shaped fixture at its real size (5,214 files sent, a builder that
/// compiles a C extension): rebuilt with nothing changed, everything is cached and there
/// is nothing to explain; after one source file changed, its COPY is named with that file
/// and its line, and what follows names that COPY.
#[test]
fn the_mediaserver_at_real_size_names_the_one_file_that_changed() {
    let app = tempfile::tempdir().unwrap();
    copy_tree(&e2e::mediaserver_fixture(), app.path());
    let target = tempfile::tempdir().unwrap();
    let tag = format!("{}:dev", e2e::unique("bkl-why-mediaserver"));
    let runner = e2e::engine();
    let _cleanup = RemoveImages(runner.clone(), vec![tag.clone()]);
    let run = || {
        // As `cargo xtask mediaserver` builds it (same args and network: same cache keys).
        let build = Build::new(app.path())
            .target("runtime")
            .tag(&tag)
            .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE)
            .network("host")
            .output(Output::Load);
        let mut pipeline = Pipeline::new("mediaserver-why", target.path());
        pipeline.image_build("image", build, "mediaserver");
        pipeline.force(true).jobs(1);
        let report = pipeline
            .run(&runner.clone().session(Session::new("why-test")))
            .unwrap();
        assert!(report.ok, "{:#?}", report.steps);
        let record = target
            .path()
            .join("buildkit/mediaserver-why/why/image.json");
        let explanation = Explanation::load(&record).unwrap().unwrap();
        (explanation, report)
    };
    let (first, _) = run();
    assert!(
        first
            .to_string()
            .contains("no previous build recorded here"),
        "{first}"
    );

    // Nothing changed: all cached, nothing to explain.
    let (same, report) = run();
    let (cached, total) = same.cached_count();
    assert_eq!((cached, total), (14, 14), "{same}");
    assert!(same.rows().iter().all(|r| r.cause.is_none()), "{same}");
    assert_eq!(
        report.step("image").unwrap().why.as_deref(),
        Some(format!("{total}/{total} instructions cached; nothing rebuilt").as_str())
    );

    // One source file of the 5,214 changed.
    let views = app.path().join("app/views.py");
    let mut text = std::fs::read_to_string(&views).unwrap();
    text.push_str(&format!("# {}\n", fresh()));
    std::fs::write(&views, text).unwrap();
    let (changed, report) = run();
    let copy = changed
        .rows()
        .iter()
        .find(|r| r.line == Some(104))
        .unwrap_or_else(|| panic!("no row at line 104 in\n{changed}"));
    assert_eq!(
        copy.instruction,
        "COPY --chown=mediaserver:mediaserver app/ /srv/mediaserver/app/"
    );
    assert_eq!(copy.stage, "runtime");
    assert_eq!(
        copy.cause,
        Some(Cause::FilesChanged {
            files: vec!["app/views.py".into()]
        }),
        "{changed}"
    );
    let after = changed.rows().iter().find(|r| r.line == Some(105)).unwrap();
    assert_eq!(
        after.cause,
        Some(Cause::EarlierRebuilt {
            instruction: copy.instruction.clone(),
            line: Some(104)
        }),
        "{changed}"
    );
    // Everything before it, the whole builder stage included, came from the cache.
    assert!(
        changed
            .rows()
            .iter()
            .filter(|r| r.line.is_some_and(|l| l < 104))
            .all(|r| r.cached()),
        "{changed}"
    );
    let summary = report.step("image").unwrap().why.clone().unwrap();
    assert_eq!(
        summary,
        format!(
            "{}/{total} instructions cached; first rebuilt: COPY \
             --chown=mediaserver:mediaserver app/ /srv/mediaserver/app/ (Dockerfile:104) \
             because app/views.py changed",
            total - 2
        )
    );
}

/// In CI, a cache mount with nothing to keep it is said before the build: in the step
/// log, the build's result and the report, at its Dockerfile line, with the fix.
#[test]
fn a_cache_set_up_warning_reaches_the_log_the_result_and_the_report() {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN --mount=type=cache,target=/var/cache/app echo {} > /made\n",
            e2e::BUSYBOX_IMAGE,
            fresh()
        ),
    )
    .unwrap();
    let target = tempfile::tempdir().unwrap();
    let tag = format!("{}:dev", e2e::unique("bkl-why-warn"));
    let runner = e2e::engine()
        .env("CI", "true")
        .env_remove("RUNNER_ENVIRONMENT");
    let _cleanup = RemoveImages(runner.clone(), vec![tag.clone()]);
    let build = Build::new(app.path())
        .tag(&tag)
        .network("none")
        .output(Output::Load);
    // The result carries it.
    let result = build
        .run(&runner.clone().echo(buildkit_lib::cmd::Echo::Silent))
        .unwrap();
    assert_eq!(
        result.cache_warnings.len(),
        1,
        "{:#?}",
        result.cache_warnings
    );
    let w = &result.cache_warnings[0];
    assert_eq!(w.rule, "cache/cache-mount-not-persisted");
    assert_eq!(w.level, buildkit_lib::Level::Warning);
    assert_eq!(w.line, Some(2));
    assert!(w.message.contains("\n  fix: "), "{}", w.message);
    // So do the step log and the report.
    let mut pipeline = Pipeline::new("warn", target.path());
    pipeline.image_build("image", build, "warn");
    pipeline.force(true).jobs(1);
    let report = pipeline
        .run(&runner.clone().session(Session::new("why-test")))
        .unwrap();
    assert!(report.ok);
    assert!(report.step("image").is_some());
    let step = e2e::report_step(target.path(), "warn", "image");
    let warnings = step["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{step:#}");
    assert_eq!(warnings[0]["kind"], "cache-mount-not-persisted");
    assert_eq!(warnings[0]["line"], 2);
    assert!(warnings[0]["fix"]
        .as_str()
        .unwrap()
        .contains("buildkit-cache-dance"));
    let log = std::fs::read_to_string(target.path().join("buildkit/warn/logs/image.log")).unwrap();
    assert!(
        log.contains("warning: in CI (CI is set), the RUN step at Dockerfile:2 keeps files"),
        "{log}"
    );
    let json = std::fs::read_to_string(target.path().join("buildkit/warn/report.json")).unwrap();
    assert!(
        json.contains("\"kind\": \"cache-mount-not-persisted\""),
        "{json}"
    );
}
