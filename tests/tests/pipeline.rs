//! Pipelines: order, parallelism, failures, keep-going, up-to-date skips, reports, locks,
//! dry runs and bad graphs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::BuildResult;
use buildkit_lib::pipeline::{Inputs, Pipeline, PipelineError, StepStatus};
use buildkit_lib::{Cmd, Runner};

/// A pipeline that runs up to four steps at once.
fn pipeline(name: &str, target: impl Into<std::path::PathBuf>) -> Pipeline {
    let mut p = Pipeline::new(name, target);
    p.jobs(4);
    p
}

fn silent() -> Runner {
    Runner::new().echo(Echo::Silent)
}

#[test]
fn independent_steps_run_in_parallel_and_dependents_after() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("par", target.path());
    // A rendezvous instead of a stopwatch: each step waits until all three are running,
    // which only parallel steps can reach (run one after another, the first one gives up).
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for name in ["a", "b", "c"] {
        let arrived = arrived.clone();
        p.step(name, move |cx| {
            cx.runner.run(&Cmd::new("sleep").arg("0.1"))?;
            arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let waiting = Instant::now();
            while arrived.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                anyhow::ensure!(
                    waiting.elapsed() < Duration::from_secs(60),
                    "step {name} ran alone: the steps did not run in parallel"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        });
    }
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = order.clone();
    p.step("last", move |_cx| {
        seen.lock().unwrap().push("last".to_string());
        Ok(())
    })
    .after(["a", "b", "c"]);
    let report = p.run(&silent()).unwrap();
    assert!(report.ok, "{:?}", report.steps);
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c", "last"]
    );
    assert_eq!(
        report.step("a").unwrap().commands,
        vec![vec!["sleep".to_string(), "0.1".to_string()]]
    );
    // report.json on disk has the documented fields
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.path().join("buildkit/par/report.json")).unwrap(),
    )
    .unwrap();
    for key in ["pipeline", "ok", "seconds", "steps", "images", "artifacts"] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    let step = &json["steps"][0];
    for key in ["name", "status", "seconds", "log", "commands"] {
        assert!(step.get(key).is_some(), "step lacks {key}");
    }
    assert!(std::path::Path::new(step["log"].as_str().unwrap()).exists());
}

#[test]
fn failure_stops_dependents_and_lets_running_steps_finish() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("fail", target.path());
    p.step("slow", |cx| {
        cx.runner.run(&Cmd::new("sleep").arg("0.5"))?;
        Ok(())
    });
    p.step("broken", |cx| {
        cx.runner
            .run(&Cmd::new("sh").args(["-c", "echo bad thing; exit 4"]))?;
        Ok(())
    });
    p.step("after-broken", |_| Ok(())).after(["broken"]);
    p.step("independent-later", |_| Ok(())).after(["slow"]);
    let report = p.run(&silent()).unwrap();
    assert!(!report.ok);
    assert_eq!(report.step("slow").unwrap().status, StepStatus::Ok);
    assert_eq!(report.step("broken").unwrap().status, StepStatus::Failed);
    assert_eq!(
        report.step("after-broken").unwrap().status,
        StepStatus::Skipped
    );
    assert_eq!(
        report.step("independent-later").unwrap().status,
        StepStatus::Skipped
    );
    let error = report.step("broken").unwrap().error.clone().unwrap();
    assert!(
        error.contains("(exit status: 4)") && error.contains("bad thing"),
        "{error}"
    );
    // The summary says why each skipped step did not run.
    let table = report.to_string();
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("after-broken").contains("`broken`, which it follows, failed"),
        "{table}"
    );
    assert!(
        row("independent-later").contains("an earlier step failed")
            && row("independent-later").contains("keep_going(true)"),
        "{table}"
    );

    p.keep_going(true);
    let report = p.run(&silent()).unwrap();
    assert_eq!(
        report.step("independent-later").unwrap().status,
        StepStatus::Ok
    );
    assert_eq!(
        report.step("after-broken").unwrap().status,
        StepStatus::Skipped
    );
}

#[test]
fn a_panicking_step_is_that_steps_failure() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("panic", target.path());
    p.step("boom", |_| panic!("kaboom in step"));
    p.step("next", |_| Ok(())).after(["boom"]);
    let report = p.run(&silent()).unwrap();
    assert_eq!(report.step("boom").unwrap().status, StepStatus::Failed);
    assert_eq!(
        report.step("boom").unwrap().error.as_deref(),
        Some("step panicked: kaboom in step")
    );
    assert_eq!(report.step("next").unwrap().status, StepStatus::Skipped);
}

#[test]
fn cycles_unknown_and_duplicate_steps_are_usage_errors() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("cyc", target.path());
    p.step("a", |_| Ok(())).after(["c"]);
    p.step("b", |_| Ok(())).after(["a"]);
    p.step("c", |_| Ok(())).after(["b"]);
    let err = p.run(&silent()).unwrap_err();
    assert!(err.downcast_ref::<PipelineError>().is_some());
    assert_eq!(
        err.to_string(),
        "pipeline `cyc` has a dependency cycle: a -> c -> b -> a"
    );

    let mut p = pipeline("unknown", target.path());
    p.step("a", |_| Ok(())).after(["nope"]);
    assert_eq!(
        p.run(&silent()).unwrap_err().to_string(),
        "step `a` of pipeline `unknown` depends on `nope`, which is not a step of it (steps: a)"
    );
    let mut p = pipeline("dup", target.path());
    p.step("a", |_| Ok(()));
    p.step("a", |_| Ok(()));
    assert_eq!(
        p.run(&silent()).unwrap_err().to_string(),
        "pipeline `dup` has two steps named `a`"
    );
}

#[test]
fn unchanged_inputs_with_existing_output_are_up_to_date() {
    let target = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("app.py"), "print('v1')\n").unwrap();
    let out = target.path().join("out");
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let out_dir = out.clone();
    let mut p = pipeline("utd", target.path());
    p.step("make", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::fs::create_dir_all(&out_dir)?;
        std::fs::write(out_dir.join("artifact"), "x")?;
        Ok(())
    })
    .inputs(Inputs::new().file(src.path()).value("mode", "release"))
    .output_dir(&out);

    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    assert_eq!(
        p.run(&silent()).unwrap().steps[0].status,
        StepStatus::UpToDate
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // --force runs it anyway
    p.force(true);
    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    p.force(false);
    // a changed input runs it
    std::fs::write(src.path().join("app.py"), "print('v2')\n").unwrap();
    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    // a missing output runs it
    std::fs::remove_dir_all(&out).unwrap();
    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    // an output that is there but is not the one the step left runs it: another tool's
    // file in it, or its file changed, even with the same size and time
    std::fs::write(out.join("other"), "y").unwrap();
    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    assert_eq!(
        p.run(&silent()).unwrap().steps[0].status,
        StepStatus::UpToDate
    );
    let artifact = out.join("artifact");
    let modified = std::fs::metadata(&artifact).unwrap().modified().unwrap();
    std::fs::write(&artifact, "z").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&artifact)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(p.run(&silent()).unwrap().steps[0].status, StepStatus::Ok);
    assert_eq!(runs.load(Ordering::SeqCst), 6);
}

#[test]
fn a_second_run_of_the_same_pipeline_fails_fast() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("locked", target.path());
    p.step("hold", |cx| {
        cx.runner.run(&Cmd::new("sleep").arg("1.5"))?;
        Ok(())
    });
    let first = p.clone();
    let dir = target.path().to_path_buf();
    let handle = std::thread::spawn(move || first.run(&silent()).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    let err = p.run(&silent()).unwrap_err().to_string();
    let lock = dir.join("buildkit/locked/lock");
    assert_eq!(
        err,
        format!(
            "pipeline `locked` is already running (process {}, lock {}); wait for it to finish, then run again",
            std::process::id(),
            lock.display()
        )
    );
    assert!(handle.join().unwrap().ok);
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("ran");
    let m = marker.clone();
    let mut p = pipeline("dry", target.path());
    p.step("touch", move |cx| {
        cx.runner.run(&Cmd::new("touch").arg(&m))?;
        Ok(())
    });
    p.step("after", |cx| {
        cx.runner.run(&Cmd::new("echo").arg("hi there"))?;
        Ok(())
    })
    .after(["touch"]);
    let report = p.run(&silent().dry_run(true)).unwrap();
    assert!(report.ok);
    assert!(!marker.exists());
    assert!(
        !target.path().join("buildkit").exists(),
        "a dry run creates no file"
    );
    assert_eq!(
        report.steps[1].commands,
        vec![vec!["echo".to_string(), "hi there".to_string()]]
    );
}

/// A dry run whose step stops on an error is a failed dry run (a real run would fail
/// there): the step is failed with its error, the others are still planned, and the
/// report is not ok.
#[test]
fn a_dry_run_whose_plan_stops_on_an_error_fails() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("dryfail", target.path());
    p.step("bad", |cx| {
        cx.runner.run(&Cmd::new("echo").arg("first"))?;
        anyhow::bail!("the setting `x` is wrong: use `y`")
    });
    p.step("good", |cx| {
        cx.runner.run(&Cmd::new("echo").arg("planned"))?;
        Ok(())
    });
    let report = p.run(&silent().dry_run(true)).unwrap();
    assert!(!report.ok, "{report}");
    let bad = report.step("bad").unwrap();
    assert_eq!(bad.status, StepStatus::Failed);
    assert_eq!(
        bad.error.as_deref(),
        Some("the setting `x` is wrong: use `y`")
    );
    assert_eq!(
        bad.commands,
        vec![vec!["echo".to_string(), "first".to_string()]]
    );
    let good = report.step("good").unwrap();
    assert_eq!(good.status, StepStatus::Skipped);
    assert_eq!(
        good.commands,
        vec![vec!["echo".to_string(), "planned".to_string()]]
    );
}

/// A pipeline whose first step would change files and whose second builds an image.
fn engine_pipeline(target: &std::path::Path) -> (Pipeline, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let mut p = pipeline("engine", target);
    let counter = ran.clone();
    let stamp = target.join("version.json");
    p.step("version", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::fs::write(&stamp, "{}")?;
        Ok(())
    });
    p.image_build(
        "image",
        buildkit_lib::docker::Build::new(target).tag("preflight-test:never"),
        "app",
    )
    .after(["version"]);
    (p, ran)
}

fn engine_error(err: anyhow::Error) -> buildkit_lib::pipeline::EngineUnavailable {
    match err.downcast::<buildkit_lib::pipeline::EngineUnavailable>() {
        Ok(e) => e,
        Err(other) => panic!("expected EngineUnavailable, got: {other:#}"),
    }
}

/// Nothing at all under `dir`: no stamp, no log, no state, no report.
fn assert_untouched(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the run changed {left:?}");
}

#[test]
fn docker_missing_from_path_stops_the_pipeline_before_any_step() {
    let target = tempfile::tempdir().unwrap();
    let (p, ran) = engine_pipeline(target.path());
    let empty = e2e::FakeBin::new();
    let runner = silent()
        .env("PATH", empty.path_env_only())
        .engine_help("run `make engine`");
    let err = engine_error(p.run(&runner).unwrap_err());
    assert_eq!(
        err.to_string(),
        "steps image need the Docker engine, but `docker` is not installed (not found on \
         PATH); no step was run\nhelp: install the Docker CLI and engine (on Debian: \
         `apt-get install docker.io docker-buildx`); then run `make engine`"
    );
    assert!(err.is_engine_down(), "starting an engine would help");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_untouched(target.path());
}

#[test]
fn an_engine_that_does_not_answer_stops_the_pipeline_with_the_projects_fix() {
    let target = tempfile::tempdir().unwrap();
    let (p, ran) = engine_pipeline(target.path());
    let runner = silent()
        .env("DOCKER_HOST", "unix:///nowhere/docker.sock")
        .engine_help("run `make engine`");
    let err = engine_error(p.run(&runner).unwrap_err());
    assert!(err.is_engine_down());
    let text = err.to_string();
    assert!(
        text.starts_with(
            "steps image need the Docker engine at unix:///nowhere/docker.sock, and it does \
             not answer ("
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "); no step was run\nhelp: start it (run `make engine`), or point DOCKER_HOST or \
             `docker context use` at a running engine"
        ),
        "{text}"
    );
    assert!(
        !text.contains("xtask"),
        "another project's fix leaked: {text}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_untouched(target.path());
}

#[test]
fn a_broken_buildx_plugin_stops_the_pipeline_before_any_step() {
    let target = tempfile::tempdir().unwrap();
    let (p, ran) = engine_pipeline(target.path());
    // A broken buildx plugin where the CLI looks first ($DOCKER_CONFIG/cli-plugins).
    let config = tempfile::tempdir().unwrap();
    let plugins = config.path().join("cli-plugins");
    std::fs::create_dir(&plugins).unwrap();
    let plugin = plugins.join("docker-buildx");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho 'exec format error: docker-buildx is damaged' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let runner = e2e::engine()
        .echo(Echo::Silent)
        .env("DOCKER_CONFIG", config.path().display().to_string());
    let err = engine_error(p.run(&runner).unwrap_err());
    assert_eq!(
        err.to_string(),
        "steps image build images with `docker buildx`, and it does not work (exec format \
         error: docker-buildx is damaged); no step was run\nhelp: install the buildx plugin \
         (on Debian: `apt-get install docker-buildx`; it goes to \
         /usr/libexec/docker/cli-plugins/)"
    );
    assert!(
        !err.is_engine_down(),
        "the engine answers; buildx is what fails"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_untouched(target.path());
}

#[test]
fn dry_run_says_which_steps_would_be_skipped_as_up_to_date() {
    let target = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.py"), "print(1)\n").unwrap();
    let mut p = pipeline("dryskip", target.path());
    p.step("format", |cx| {
        cx.runner.run(&Cmd::new("true"))?;
        Ok(())
    })
    .inputs(Inputs::new().file(src.path()));
    p.step("always", |cx| {
        cx.runner.run(&Cmd::new("echo").arg("runs"))?;
        Ok(())
    });
    let report = p.run(&silent()).unwrap();
    assert!(report.ok);
    let plan = p.run(&silent().dry_run(true)).unwrap();
    assert_eq!(plan.steps[0].status, StepStatus::UpToDate);
    assert!(plan.steps[0].commands.is_empty());
    assert_eq!(plan.steps[1].status, StepStatus::Skipped);
    assert_eq!(
        plan.steps[1].commands,
        vec![vec!["echo".to_string(), "runs".to_string()]]
    );
    // A change makes it part of the plan again.
    std::fs::write(src.path().join("a.py"), "print(2)\n").unwrap();
    let plan = p.run(&silent().dry_run(true)).unwrap();
    assert_eq!(plan.steps[0].status, StepStatus::Skipped);
    assert_eq!(plan.steps[0].commands, vec![vec!["true".to_string()]]);
}

#[test]
fn a_pipeline_and_its_steps_answer_the_names_they_were_given() {
    let target = tempfile::tempdir().unwrap();
    let mut p = Pipeline::new("names", target.path());
    p.step("lint", |_| Ok(()));
    p.step("test", |_| Ok(())).after(["lint"]);
    let report = p.run(&silent()).unwrap();
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lint", "test"]);
    assert!(target.path().join("buildkit/names/report.json").is_file());
}

#[test]
fn an_image_a_step_adds_is_in_the_report_as_its_build_made_it() {
    let target = tempfile::tempdir().unwrap();
    let mut p = pipeline("images", target.path());
    p.step("image", |cx| {
        let mut built = BuildResult::default();
        built.tags = vec!["127.0.0.1:5000/web:1".into()];
        built.digest = Some("sha256:d1".into());
        built.size_bytes = Some(4_096);
        built.platforms = vec!["linux/amd64".into()];
        cx.add_image("web", &built);
        Ok(())
    });
    let report = p.run(&silent()).unwrap();
    assert_eq!(report.images.len(), 1);
    let image = &report.images[0];
    assert_eq!(image.name, "web");
    assert_eq!(image.tags, ["127.0.0.1:5000/web:1"]);
    assert_eq!(image.digest.as_deref(), Some("sha256:d1"));
    assert_eq!(image.size_bytes, Some(4_096));
    assert_eq!(image.platforms, ["linux/amd64"]);
}

#[test]
fn a_new_runner_runs_every_step_and_writes_the_report() {
    let target = tempfile::tempdir().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut p = Pipeline::new("defaults", target.path());
    for name in ["first", "second"] {
        let ran = ran.clone();
        p.step(name, move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    let report = p.run(&Runner::new()).unwrap();
    assert!(report.ok);
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert!(report.steps.iter().all(|s| s.status == StepStatus::Ok));
    assert!(target
        .path()
        .join("buildkit/defaults/report.json")
        .is_file());
}
