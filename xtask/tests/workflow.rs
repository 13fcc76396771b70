//! The GitHub Actions workflow users copy (`fixtures/webapp/.github/workflows/image.yml`):
//! read line by line, each `cargo xtask` command it runs is run here with `--dry-run`, in
//! the environment a hosted runner gives a step after `crazy-max/ghaction-github-runtime`
//! (the v2 cache service), so the workflow cannot name a flag or command the xtask lost.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A token-shaped value: the plans must not show it.
const TOKEN: &str = "ghs_workflowTestTokenNeverShown";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn workflow() -> String {
    std::fs::read_to_string(root().join("fixtures/webapp/.github/workflows/image.yml"))
        .expect("the workflow file exists")
}

/// The shell lines of every `run:` step, in order (`run: cmd` and `run: |` blocks).
fn run_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(min) = block {
            if line.trim().is_empty() {
                continue;
            }
            if indent >= min {
                out.push(line.trim().to_string());
                continue;
            }
            block = None;
        }
        let item = line.trim_start().trim_start_matches("- ");
        if let Some(value) = item.strip_prefix("run:") {
            let value = value.trim();
            if value == "|" || value == ">" {
                block = Some(indent + 1);
            } else if !value.is_empty() {
                out.push(value.to_string());
            }
        }
    }
    out
}

/// The actions the workflow uses, in order.
fn uses(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses:")
                .map(|v| v.trim().to_string())
        })
        .collect()
}

#[test]
fn the_reader_finds_single_lines_and_blocks() {
    let text = "steps:\n  - run: cargo xtask a\n  - name: b\n    run: |\n      cargo xtask b --x\n\n      echo done\n  - uses: x/y@v1\n    with:\n      run: no\n";
    assert_eq!(
        run_lines(text),
        ["cargo xtask a", "cargo xtask b --x", "echo done", "no"]
    );
    assert_eq!(uses(text), ["x/y@v1"]);
}

#[test]
fn the_workflow_sets_up_the_v2_cache_before_using_it() {
    let text = workflow();
    let actions = uses(&text);
    let position = |prefix: &str| actions.iter().position(|a| a.starts_with(prefix));
    position("docker/setup-buildx-action@").expect("a builder with a new BuildKit");
    position("crazy-max/ghaction-github-runtime@")
        .expect("the runtime variables exposed to run: steps");
    // Both come before the first step that runs the xtask with the gha cache.
    let first_gha = text
        .find("--cache gha")
        .expect("a cargo xtask command with the gha cache");
    for action in [
        "docker/setup-buildx-action@",
        "crazy-max/ghaction-github-runtime@",
    ] {
        assert!(text.find(action).unwrap() < first_gha, "{action}");
    }
}

#[test]
fn every_cargo_xtask_command_of_the_workflow_runs_dry() {
    let text = workflow();
    let commands: Vec<Vec<String>> = run_lines(&text)
        .iter()
        .filter_map(|l| l.strip_prefix("cargo xtask "))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .collect();
    assert!(commands.len() >= 3, "{commands:?}");
    let summary = tempfile_path("summary.md");
    let mut saw_gha_plan = false;
    for args in &commands {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .arg("--dry-run")
            .current_dir(root())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("ACTIONS_RUNTIME_TOKEN", TOKEN)
            .env("ACTIONS_RESULTS_URL", "http://127.0.0.1:9/results/")
            .env("ACTIONS_CACHE_URL", "http://127.0.0.1:9/cache/")
            .env("ACTIONS_CACHE_SERVICE_V2", "true")
            .output()
            .expect("the xtask runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "`cargo xtask {} --dry-run` failed:\n{text}",
            args.join(" ")
        );
        assert!(
            !text.contains(TOKEN),
            "the token shows in the plan:\n{text}"
        );
        // A dry run reports a step whose plan fails and goes on: that must not happen here.
        assert!(
            !text.contains("the plan of this step stops here"),
            "`cargo xtask {} --dry-run` cannot plan a step:\n{text}",
            args.join(" ")
        );
        let gha = args.iter().any(|a| a == "gha");
        match args.first().map(String::as_str) {
            // A build resolves the service: `version=2` in its plan.
            Some("build") if gha => {
                assert!(
                    text.contains(
                        "--cache-to type=gha,scope=webapp,mode=max,version=2,ignore-error=true"
                    ),
                    "`cargo xtask {}` does not plan the v2 gha cache:\n{text}",
                    args.join(" ")
                );
                saw_gha_plan = true;
            }
            // A printed bake file leaves the service to buildx (checked when it runs).
            Some("bake") if gha && args.iter().any(|a| a == "--print") => {
                assert!(
                    text.contains("\"type=gha,scope=webapp,mode=max,ignore-error=true\""),
                    "{text}"
                );
            }
            Some("bake") => assert!(text.contains("$ docker buildx bake "), "{text}"),
            _ => {}
        }
    }
    assert!(saw_gha_plan);
    let _ = std::fs::remove_file(&summary);
}

#[test]
fn without_the_runtime_the_gha_cache_is_refused_with_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--cache", "gha", "--dry-run", "--no-smoke"])
        .current_dir(root())
        .env("GITHUB_ACTIONS", "true")
        .env_remove("ACTIONS_RUNTIME_TOKEN")
        .env_remove("ACTIONS_RESULTS_URL")
        .env_remove("ACTIONS_CACHE_URL")
        .env_remove("ACTIONS_CACHE_SERVICE_V2")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    // The dry run shows where the plan stops and why (a real run fails there).
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "(the plan of this step stops here: cache `type=gha,scope=webapp,mode=max,\
             ignore-error=true` cannot be used: this GitHub Actions step does not see the \
             runtime variables the gha cache needs"
        ),
        "{text}"
    );
    assert!(text.contains("add `- uses: crazy-max/ghaction-github-runtime@v3` before this step"));
    let usage = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--cache", "s3:bucket", "--dry-run"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains(
        "unknown cache `s3:bucket`: use gha, gha:v1, gha:v2, registry:REF, local:DIR or none"
    ));
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("xtask-workflow-{}-{name}", std::process::id()))
}
