//! The image size budget against the real engine: sizes in bytes from the engine, outcomes
//! and exit codes, the largest layers, the layer diff against the previous build, the
//! JSON-lines history and its SVG chart.

use std::path::Path;

use buildkit_lib::validate::size::{read_history, SizeBudget, SizeCheck, SizeOutcome};
use buildkit_lib::{Cmd, Runner};

struct RemoveImages<'a>(&'a Runner, Vec<String>);

impl Drop for RemoveImages<'_> {
    fn drop(&mut self) {
        for image in &self.1 {
            let _ = self
                .0
                .capture(&Cmd::new("docker").args(["image", "rm", "-f", image]));
        }
    }
}

/// Builds `tag` from busybox with a file of `payload` bytes made by a RUN step.
fn build(runner: &Runner, dir: &Path, tag: &str, payload: u64) {
    std::fs::write(
        dir.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nARG PAYLOAD\n\
         RUN dd if=/dev/zero of=/payload bs=1000 count=${PAYLOAD} 2>/dev/null\n\
         ENV APP=1\nCMD [\"sh\"]\n",
    )
    .unwrap();
    runner
        .run(
            &Cmd::new("docker")
                .args([
                    "buildx",
                    "build",
                    "--progress=plain",
                    "--network",
                    "none",
                    "--load",
                    "-t",
                    tag,
                ])
                .arg("--build-arg")
                .arg(format!("BASE={}", e2e::BUSYBOX_IMAGE))
                .arg("--build-arg")
                .arg(format!("PAYLOAD={}", payload / 1000))
                .arg_path(dir),
        )
        .unwrap();
}

fn engine_size(runner: &Runner, image: &str) -> u64 {
    runner
        .capture(
            &Cmd::new("docker")
                .args(["image", "inspect", "--format", "{{.Size}}", image])
                .read_only(),
        )
        .unwrap()
        .stdout
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn size_budget_history_diff_and_chart() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let name = e2e::unique("size-budget");
    let (v1, v2) = (format!("{name}:1"), format!("{name}:2"));
    let _cleanup = RemoveImages(&runner, vec![v1.clone(), v2.clone()]);
    let history_file = dir.path().join("target/buildkit/demo/size-history.jsonl");

    build(&runner, dir.path(), &v1, 3_000_000);
    let mut check = SizeCheck::new(v1.clone(), &history_file);
    check.git_commit = Some("1111111aaaaaaa".into());
    let first = check.run(&runner).unwrap();
    assert_eq!(first.record.bytes, engine_size(&runner, &v1));
    assert_eq!(first.record.image, name);
    assert_eq!(first.record.tag, "1");
    assert_eq!(first.outcome, SizeOutcome::Pass);
    assert_eq!(first.outcome.exit_code(), 0);
    assert!(first.previous.is_none());
    // The RUN layer with the payload is the largest.
    assert!(first.largest_layers[0]
        .created_by
        .contains("dd if=/dev/zero"));
    assert!(first.largest_layers[0].bytes >= 3_000_000);

    build(&runner, dir.path(), &v2, 6_000_000);
    let bytes = engine_size(&runner, &v2);
    // Budgets around the real size: just above it passes, below it warns, far below fails.
    let mut check = SizeCheck::new(v2.clone(), &history_file);
    check.git_commit = Some("2222222bbbbbbb".into());
    check.budget = SizeBudget {
        target_bytes: bytes - 1,
        max_bytes: bytes + 1,
    };
    let second = check.run(&runner).unwrap();
    assert_eq!(second.outcome, SizeOutcome::Warn);
    assert_eq!(second.outcome.exit_code(), 3);
    second.ensure_within_max().unwrap();
    assert_eq!(second.previous.as_ref().unwrap().tag, "1");
    assert_eq!(
        second.growth(),
        Some(bytes as i64 - first.record.bytes as i64)
    );
    // The diff names the grown RUN layer (its text changed with the build arg).
    let grown = &second.changes[0];
    assert!(grown.created_by.contains("dd if=/dev/zero"), "{second}");
    assert!(grown.delta() >= 2_900_000, "{second}");
    assert!(grown.before.is_some() && grown.after.is_some(), "{second}");
    eprintln!("{second}");
    assert_eq!(
        SizeBudget {
            target_bytes: 1,
            max_bytes: bytes - 1
        }
        .check(bytes),
        SizeOutcome::Fail
    );
    assert_eq!(SizeOutcome::Fail.exit_code(), 1);

    // The history: two JSON lines with the fields, in build order.
    let records = read_history(&history_file).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].bytes, bytes);
    assert_eq!(records[1].git_commit, "2222222bbbbbbb");
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&history_file)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    for key in ["time", "image", "tag", "digest", "bytes", "git_commit"] {
        assert!(
            line.get(key).is_some(),
            "history line lacks `{key}`: {line}"
        );
    }
    let time = line["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");

    // The chart beside it: one point per build.
    let svg = std::fs::read_to_string(history_file.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("<circle").count(), 2);
    if let Ok(out) = std::env::var("SIZE_CHART_OUT") {
        std::fs::copy(history_file.with_extension("svg"), out).unwrap();
    }
}

#[test]
fn a_failing_size_stops_the_step_with_numbers() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let name = e2e::unique("size-fail");
    let tag = format!("{name}:1");
    let _cleanup = RemoveImages(&runner, vec![tag.clone()]);
    build(&runner, dir.path(), &tag, 2_000_000);
    let mut check = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl"));
    check.budget = SizeBudget {
        target_bytes: 500_000,
        max_bytes: 1_000_000,
    };
    let report = check.run(&runner).unwrap();
    assert_eq!(report.outcome, SizeOutcome::Fail);
    let err = report.ensure_within_max().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {name}:1 is {} ({} bytes), over the maximum of 1.0 MB; see the largest \
             layers in the size report",
            buildkit_lib::validate::size::human_bytes(report.record.bytes),
            report.record.bytes
        )
    );
    // A missing image is an error naming it, and nothing is recorded.
    let missing = SizeCheck::new(format!("{name}-absent:1"), dir.path().join("h2.jsonl"));
    let err = missing.run(&runner).unwrap_err();
    assert!(
        format!("{err:#}").starts_with(&format!("cannot inspect image {name}-absent:1")),
        "{err:#}"
    );
    assert!(!dir.path().join("h2.jsonl").exists());
}
