//! What the engine talked to makes possible, used where it is there and said where it is
//! not: BuildKit's build checks (`--call=check`, buildx 0.15+) and build records
//! (`docker buildx history`, buildx 0.21+). Every expectation follows the buildx version
//! the engine's own `docker buildx version` reports, so the same tests run on the current
//! engine (buildx 0.29) and on the oldest supported one (buildx 0.13):
//! `eval "$(bash xtask/engine-up.sh env oldest)"` before `cargo test`.

use std::path::Path;

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::BuildCheck;
use buildkit_lib::docker::{Build, BuildFailed, Output};
use buildkit_lib::pipeline::{Pipeline, StepStatus};
use buildkit_lib::plan::Step;
use buildkit_lib::Level;
use buildkit_lib::{Cmd, Runner, Session};

fn dockerfile(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

use e2e::{buildx_supports, BuildxFeature};

/// Whether BuildKit's checks run here; when not, the start of the reason the library must
/// give: an old buildx's (0.13), or with a newer buildx the engine's own BuildKit refusing
/// the check request (engine 26.1 vendors BuildKit 0.13).
fn checks_expected(runner: &Runner) -> Result<(), String> {
    buildx_supports(runner, BuildxFeature::BuildChecks)?;
    let engine = runner
        .capture(&Cmd::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
        .expect("the engine's version")
        .stdout;
    match engine
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
    {
        Some(major) if major < 27 => Err("the builder's BuildKit has no Dockerfile checks".into()),
        _ => Ok(()),
    }
}

/// A Dockerfile with two real findings: `as` in another case than `FROM` (line 1) and a
/// shell-form `CMD` (line 3).
fn with_findings() -> String {
    format!(
        "FROM {} as base\nRUN echo built > /built\nCMD echo hi\n",
        e2e::BUSYBOX_IMAGE
    )
}

#[test]
fn build_checks_find_real_findings_on_their_lines_or_say_why_they_cannot() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let file = dockerfile(dir.path(), "Dockerfile.lint", &with_findings());
    let report = BuildCheck::of(&Build::new(dir.path()).dockerfile(&file))
        .run(&runner)
        .unwrap();
    match checks_expected(&runner) {
        Ok(()) => {
            let found: Vec<(String, Option<u32>)> = report
                .findings()
                .iter()
                .map(|f| (f.rule.clone(), f.line))
                .collect();
            assert_eq!(
                found,
                [
                    ("FromAsCasing".to_string(), Some(1)),
                    ("JSONArgsRecommended".to_string(), Some(3))
                ],
                "{report}"
            );
            assert!(report
                .findings()
                .iter()
                .all(|f| std::path::Path::new(&f.file) == file));
            // The rule's documentation is named with the finding.
            assert!(report.findings()[0].to_string().contains(" (https://"));
            let err = report.ensure_clean().unwrap_err().to_string();
            assert!(err.contains(":1 FromAsCasing"), "{err}");
        }
        Err(reason) => {
            // buildx 0.13, or BuildKit 0.13: skipped, saying so, never an empty pass.
            assert!(
                report.skipped().is_some_and(|r| r.starts_with(&reason)),
                "{report}"
            );
            assert!(report.findings().is_empty(), "{report}");
            assert!(report.to_string().contains("skipped"), "{report}");
        }
    }
}

#[test]
fn a_clean_dockerfile_has_no_findings() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    dockerfile(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {} AS base\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n",
            e2e::BUSYBOX_IMAGE
        ),
    );
    let report = BuildCheck::of(&Build::new(dir.path()))
        .run(&runner)
        .unwrap();
    match checks_expected(&runner) {
        Ok(()) => {
            assert!(
                report.skipped().is_none() && report.findings().is_empty(),
                "{report}"
            );
            report.ensure_clean().unwrap();
        }
        Err(reason) => assert!(report.skipped().is_some_and(|r| r.starts_with(&reason))),
    }
}

#[test]
fn a_dockerfile_that_does_not_parse_fails_the_check_instead_of_passing() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    dockerfile(
        dir.path(),
        "Dockerfile",
        &format!("FROM {}\nRUNN echo typo\n", e2e::BUSYBOX_IMAGE),
    );
    let outcome = BuildCheck::of(&Build::new(dir.path())).run(&runner);
    match checks_expected(&runner) {
        Ok(()) => {
            let err = format!("{:#}", outcome.unwrap_err());
            assert!(
                err.contains("Dockerfile:2") && err.contains("unknown instruction: RUNN"),
                "{err}"
            );
        }
        Err(reason) => assert!(outcome
            .unwrap()
            .skipped()
            .is_some_and(|r| r.starts_with(&reason))),
    }
}

#[test]
fn build_args_reach_the_check_like_the_build() {
    // With the base image given as a build arg the check resolves it; without it, the
    // default names an image that cannot be pulled here, and that is an error, not a pass.
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    dockerfile(
        dir.path(),
        "Dockerfile",
        "ARG BASE=nonexistent.invalid/base:1\nFROM ${BASE} AS base\nCMD [\"true\"]\n",
    );
    let build = Build::new(dir.path()).build_arg("BASE", e2e::BUSYBOX_IMAGE);
    let given = BuildCheck::of(&build).run(&runner);
    let missing = BuildCheck::of(&Build::new(dir.path())).run(&runner);
    match checks_expected(&runner) {
        Ok(()) => {
            assert_eq!(given.unwrap().findings(), &[]);
            let err = format!("{:#}", missing.unwrap_err());
            assert!(err.contains("nonexistent.invalid/base"), "{err}");
        }
        Err(reason) => {
            assert!(given
                .unwrap()
                .skipped()
                .is_some_and(|r| r.starts_with(&reason)));
            assert!(missing
                .unwrap()
                .skipped()
                .is_some_and(|r| r.starts_with(&reason)));
        }
    }
}

#[test]
fn an_exit_1_with_output_that_is_not_the_json_fails() {
    // A buildx that says it is new, exits 1 as for findings, and prints no JSON.
    let fake = e2e::FakeBin::new().script(
        "docker",
        r#"case "$2" in
  version) echo "github.com/docker/buildx 0.29.1 0.29.1" ;;
  build) echo "ERROR: something else went wrong" ; exit 1 ;;
esac"#,
    );
    let runner = Runner::new()
        .echo(Echo::Silent)
        .env("PATH", fake.path_env());
    let dir = tempfile::tempdir().unwrap();
    let err = BuildCheck::of(&Build::new(dir.path()))
        .run(&runner)
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("nothing was checked") && text.contains("exit code 1"),
        "{text}"
    );
    // And an exit 0 without the JSON is no pass either.
    let fake = e2e::FakeBin::new().script(
        "docker",
        r#"case "$2" in
  version) echo "github.com/docker/buildx 0.29.1 0.29.1" ;;
  build) echo "Check complete, no warnings found." ;;
esac"#,
    );
    let runner = Runner::new()
        .echo(Echo::Silent)
        .env("PATH", fake.path_env());
    assert!(BuildCheck::of(&Build::new(dir.path()))
        .run(&runner)
        .is_err());
}

/// `build` run as the one image step of a pipeline under a directory of its own: its
/// error text (when it failed) and BuildKit's record of it, as the pipeline's
/// `report.json` holds them (where a user reads a build's record).
fn build_in_pipeline(runner: &Runner, build: Build) -> (Option<String>, serde_json::Value) {
    let target = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("record", target.path());
    pipeline.image_build("image", build, "image");
    let report = pipeline
        .run(
            &runner
                .clone()
                .echo(Echo::Silent)
                .session(Session::new(e2e::unique("e2e-record"))),
        )
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.path().join("buildkit/record/report.json")).unwrap(),
    )
    .unwrap();
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "image")
        .unwrap_or_else(|| panic!("no image step in {json}"));
    let builds = step["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{step}");
    (
        report.step("image").unwrap().error.clone(),
        builds[0].clone(),
    )
}

#[test]
fn a_successful_build_records_its_reference_and_where_possible_its_cached_steps() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let marker = e2e::unique("record");
    dockerfile(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo {marker} > /marker\nRUN cat /marker > /copy\n",
            e2e::BUSYBOX_IMAGE
        ),
    );
    let tag = format!("{marker}:1");
    let build = Build::new(dir.path())
        .tag(&tag)
        .network("none")
        .output(Output::Load);
    let (error, first) = build_in_pipeline(&runner, build.clone().no_cache(true));
    assert_eq!(error, None);
    let (error, second) = build_in_pipeline(&runner, build);
    assert_eq!(error, None);
    let _ = runner.capture(&Cmd::new("docker").args(["image", "rm", &tag]));
    for record in [&first, &second] {
        // The reference is the metadata file's (`builder/node/id`), on every buildx.
        let reference = record["reference"].as_str().unwrap();
        assert_eq!(reference.split('/').count(), 3, "{record}");
        assert_eq!(record["succeeded"], true, "{record}");
    }
    match buildx_supports(&runner, BuildxFeature::BuildHistory) {
        Ok(()) => {
            let (first, second) = (&first, &second);
            assert_eq!(first["unavailable"], serde_json::Value::Null, "{first}");
            let steps = |r: &serde_json::Value, key: &str| r[key].as_u64().unwrap();
            let (total, cached) = (steps(second, "total_steps"), steps(second, "cached_steps"));
            assert!(cached <= total, "{second}");
            // Without the cache the RUN steps ran; with it the last one was cached (BuildKit
            // then skips what comes before it).
            assert!(
                cached > steps(first, "cached_steps"),
                "first {first}, second {second}"
            );
            // The numbers are those of this build's record, as `history ls` lists it.
            let listed = runner
                .capture(&Cmd::new("docker").args([
                    "buildx",
                    "history",
                    "ls",
                    "--format",
                    "json",
                    "--no-trunc",
                ]))
                .unwrap()
                .stdout;
            for record in [first, second] {
                let row: serde_json::Value = listed
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .find(|r| r["ref"] == record["reference"])
                    .unwrap_or_else(|| panic!("{record} not in {listed}"));
                assert_eq!(row["cached_steps"], record["cached_steps"], "{row}");
                assert_eq!(row["total_steps"], record["total_steps"], "{row}");
            }
            // How a record reads (` steps cached`): the unit test
            // `docker::record::tests::a_record_reads_as_one_line`.
        }
        Err(unsupported) => {
            assert_eq!(first["unavailable"], unsupported.as_str());
            assert_eq!(first["cached_steps"], serde_json::Value::Null);
        }
    }
}

#[test]
fn without_reading_the_record_the_build_is_the_only_process_started() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    dockerfile(
        dir.path(),
        "Dockerfile",
        &format!("FROM {}\nRUN echo quiet > /q\n", e2e::BUSYBOX_IMAGE),
    );
    let recorded = runner.with_fresh_record();
    let result = Build::new(dir.path())
        .network("none")
        .read_facts(false)
        .run(&recorded)
        .unwrap();
    let commands = recorded.recorded().commands();
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(&commands[0][..3], ["docker", "buildx", "build"]);
    // The reference is still the metadata file's (kept in the build's record: the unit
    // test `docker::record::tests::an_old_buildx_keeps_the_reference_and_says_why_
    // there_is_no_more`).
    assert!(result.metadata["buildx.build.ref"].as_str().is_some());
}

#[test]
fn a_failed_build_carries_buildkits_own_error_even_when_another_fails_beside_it() {
    // Two builds of the same Dockerfile fail at the same time, each with its own exit
    // code: each must get its own record, never the other's.
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let marker = e2e::unique("failing");
    dockerfile(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nARG CODE\nRUN echo {marker} > /ok\nRUN echo failing with $CODE; exit $CODE\n",
            e2e::BUSYBOX_IMAGE
        ),
    );
    // Each build runs twice, side by side with the other code's: as a pipeline's step
    // (whose report holds its record, where a user reads it) and on its own (its error).
    type Outcome = (u32, serde_json::Value, anyhow::Error);
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = [3u32, 4]
            .into_iter()
            .map(|code| {
                let (runner, dir) = (runner.clone(), dir.path().to_path_buf());
                s.spawn(move || {
                    let build = Build::new(dir)
                        .build_arg("CODE", code.to_string())
                        .network("none");
                    let (error, record) = build_in_pipeline(&runner, build.clone());
                    assert!(error.is_some(), "exit {code}: the step failed");
                    let err = build.run(&runner).unwrap_err();
                    (code, record, err)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let history = buildx_supports(&runner, BuildxFeature::BuildHistory);
    for (code, record, err) in results {
        assert!(
            err.downcast_ref::<BuildFailed>().is_some(),
            "a failed build is a BuildFailed"
        );
        assert!(err.downcast_ref::<buildkit_lib::CommandError>().is_some());
        assert_eq!(record["succeeded"], false, "{record}");
        let text = format!("{err:#}");
        match &history {
            Ok(()) => {
                let error = &record["error"];
                let message = error["message"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no record for exit {code}: {record}"));
                assert!(
                    message.ends_with(&format!("exit code: {code}")),
                    "exit {code}: {error}"
                );
                // BuildKit 0.13 (engine 26.1) keeps no step name or logs in the record;
                // where they are, they are the failing step's.
                if let Some(step) = error["step"].as_str() {
                    assert!(step.contains("RUN echo failing"), "{error}");
                }
                if let Some(logs) = error["logs"].as_array() {
                    assert!(
                        logs.iter().any(|l| l
                            .as_str()
                            .unwrap()
                            .contains(&format!("failing with {code}"))),
                        "{error}"
                    );
                }
                assert!(record["reference"].is_string(), "{record}");
                // buildx said it once in its output (the error's tail); the message does
                // not say it again. An untagged build is named by its context, never
                // called an image.
                assert!(text.starts_with("cannot build context "), "{text}");
                assert!(!text.contains("BuildKit:"), "{text}");
                assert_eq!(
                    text.matches(&format!("exit code: {code}")).count(),
                    text.matches("did not complete successfully").count(),
                    "{text}"
                );
            }
            Err(unsupported) => {
                // buildx 0.13: today's message, and the record says why there is no more.
                assert_eq!(record["unavailable"], unsupported.as_str());
                assert!(!text.contains("BuildKit:"), "{text}");
                assert!(text.starts_with("cannot build context "), "{text}");
            }
        }
    }
}

#[test]
fn the_pipeline_report_holds_each_builds_record_and_the_failures_error() {
    let runner = e2e::engine();
    let target = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = e2e::unique("report");
    dockerfile(
        dir.path(),
        "Dockerfile.good",
        &format!("FROM {}\nRUN echo {marker} > /m\n", e2e::BUSYBOX_IMAGE),
    );
    dockerfile(
        dir.path(),
        "Dockerfile.bad",
        &format!("FROM {}\nRUN echo {marker}; exit 7\n", e2e::BUSYBOX_IMAGE),
    );
    let tag = format!("{marker}:good");
    let mut pipeline = Pipeline::new("records", target.path());
    pipeline.image_build(
        "good",
        Build::new(dir.path())
            .dockerfile(dir.path().join("Dockerfile.good"))
            .tag(&tag)
            .network("none")
            .output(Output::Load),
        "good",
    );
    pipeline.image_build(
        "bad",
        Build::new(dir.path())
            .dockerfile(dir.path().join("Dockerfile.bad"))
            .tag(format!("{marker}:bad"))
            .network("none")
            .output(Output::Load),
        "bad",
    );
    pipeline.keep_going(true);
    let report = pipeline
        .run(
            &runner
                .clone()
                .echo(Echo::Silent)
                .session(Session::new("e2e-records")),
        )
        .unwrap();
    let _ = runner.capture(&Cmd::new("docker").args(["image", "rm", &tag]));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.path().join("buildkit/records/report.json")).unwrap(),
    )
    .unwrap();
    let step = |name: &str| {
        json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let good = step("good");
    assert_eq!(good["status"], "ok");
    let reference = good["builds"][0]["reference"].as_str().unwrap();
    assert_eq!(reference.split('/').count(), 3, "{reference}");
    let bad = step("bad");
    assert_eq!(bad["status"], "failed");
    assert_eq!(report.step("bad").unwrap().status, StepStatus::Failed);
    match buildx_supports(&runner, BuildxFeature::BuildHistory) {
        Ok(()) => {
            assert!(
                good["builds"][0]["total_steps"].as_u64().unwrap() >= 2,
                "{good}"
            );
            let message = bad["builds"][0]["error"]["message"].as_str().unwrap();
            assert!(message.ends_with("exit code: 7"), "{bad}");
            assert_eq!(
                bad["builds"][0]["error"]["step"].as_str(),
                Some(format!("[2/2] RUN echo {marker}; exit 7").as_str()),
                "{bad}"
            );
        }
        Err(unsupported) => {
            assert_eq!(good["builds"][0]["unavailable"], unsupported.as_str());
            assert_eq!(bad["builds"][0]["unavailable"], unsupported.as_str());
        }
    }
}

#[test]
fn check_findings_reach_the_report_with_their_lines() {
    let runner = e2e::engine();
    let target = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dockerfile(dir.path(), "Dockerfile", &with_findings());
    let mut pipeline = Pipeline::new("checks", target.path());
    let check = BuildCheck::of(&Build::new(dir.path()));
    pipeline
        .step("checks", move |cx| {
            let report = check.run(&cx.runner)?;
            cx.add_findings(report.findings());
            if let Some(reason) = report.skipped() {
                cx.unsupported(reason);
                return Ok(());
            }
            report.ensure_clean()
        })
        .needs_engine();
    let report = pipeline
        .run(&runner.clone().session(Session::new("e2e-checks")))
        .unwrap();
    let step = report.step("checks").unwrap();
    match checks_expected(&runner) {
        Ok(()) => {
            assert_eq!(step.status, StepStatus::Failed);
            let lines: Vec<(String, Option<u32>)> = step
                .findings
                .iter()
                .map(|f| (f.rule.clone(), f.line))
                .collect();
            assert_eq!(
                lines,
                [
                    ("FromAsCasing".to_string(), Some(1)),
                    ("JSONArgsRecommended".to_string(), Some(3))
                ]
            );
            assert!(step.findings.iter().all(|f| f.level == Level::Warning));
            let annotation = step.findings[0].annotation(Some(dir.path()));
            assert_eq!(
                annotation,
                "::warning file=Dockerfile,line=1,title=buildkit FromAsCasing::'as' and \
                 'FROM' keywords' casing do not match \
                 (https://docs.docker.com/go/dockerfile/rule/from-as-casing/)"
            );
            assert_eq!(step.findings[0].file, file.display().to_string());
        }
        Err(reason) => {
            assert_eq!(step.status, StepStatus::Unsupported);
            let json = e2e::report_step(target.path(), "checks", "checks");
            assert!(
                json["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&reason)),
                "{json:#}"
            );
            assert!(report.ok, "an unsupported check does not fail the run");
        }
    }
}
