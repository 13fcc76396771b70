//! The image size budget against the real engine: sizes in bytes from the engine, outcomes
//! and exit codes, the largest layers, the layer diff against the previous build, the
//! JSON-lines history and its SVG chart.

use buildkit_lib::plan::Step as _;
use std::path::Path;

use buildkit_lib::units::human_bytes;
use buildkit_lib::validate::size::{read_history, SizeBudget, SizeCheck, SizeMeasure, SizeOutcome};
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

/// `docker image inspect --format {{.Size}}`: on the containerd image store, the
/// compressed content.
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

/// The layer sizes `docker history --human=false` shows, summed.
fn history_bytes(runner: &Runner, image: &str) -> u64 {
    runner
        .capture(
            &Cmd::new("docker")
                .args(["history", "--human=false", "--format", "{{.Size}}", image])
                .read_only(),
        )
        .unwrap()
        .stdout
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum()
}

/// The SIZE column `docker images` prints for `image` (`66.1MB`).
fn docker_images_size(runner: &Runner, image: &str) -> String {
    runner
        .capture(
            &Cmd::new("docker")
                .args(["images", "--format", "{{.Size}}", image])
                .read_only(),
        )
        .unwrap()
        .stdout
        .trim()
        .to_string()
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
    let check = SizeCheck::new(v1.clone(), &history_file).git_commit("1111111aaaaaaa");
    let first = check.run(&runner).unwrap();
    // Judged by default: the unpacked size, as `docker images` shows it.
    assert_eq!(first.budget.get_measure(), SizeMeasure::Unpacked);
    assert_eq!(
        human_bytes(first.record.bytes).replace(' ', ""),
        docker_images_size(&runner, &v1),
        "{first}"
    );
    assert_eq!(
        first.record.compressed_bytes,
        Some(engine_size(&runner, &v1))
    );
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
    // The disk size as the engine computes it: content plus unpacked layers (exact but
    // for the index manifest, a few hundred bytes).
    let near = engine_size(&runner, &v2) + history_bytes(&runner, &v2);
    // Budgets around the real size: below it warns.
    let check = SizeCheck::new(v2.clone(), &history_file)
        .git_commit("2222222bbbbbbb")
        .budget(SizeBudget::new(near - 100_000, near + 100_000));
    let second = check.run(&runner).unwrap();
    let bytes = second.record.bytes;
    assert!(bytes.abs_diff(near) < 10_000, "{bytes} vs {near}");
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
        SizeBudget::new(1, bytes - 1).check(bytes),
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
    let check = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl"))
        .budget(SizeBudget::new(500_000, 1_000_000));
    let report = check.run(&runner).unwrap();
    assert_eq!(report.outcome, SizeOutcome::Fail);
    let err = report.ensure_within_max().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {name}:1 is {} unpacked ({} bytes), over the maximum of 1 MB; see the \
             largest layers in the size report",
            human_bytes(report.record.bytes),
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

/// An image whose compressed size is far below its unpacked size (zeros compress to
/// almost nothing) and a budget between the two: the default verdict judges what `docker
/// images` shows, read here independently with the CLI, and fails.
#[test]
fn a_well_compressed_image_does_not_fool_the_default_verdict() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let name = e2e::unique("size-zeros");
    let tag = format!("{name}:1");
    let _cleanup = RemoveImages(&runner, vec![tag.clone()]);
    build(&runner, dir.path(), &tag, 40_000_000);

    let compressed = engine_size(&runner, &tag);
    let shown = docker_images_size(&runner, &tag);
    let shown_bytes = buildkit_lib::validate::cache::parse_size(&shown).unwrap();
    let (target, max) = (5_000_000, 10_000_000);
    assert!(compressed < target, "compressed {compressed}");
    assert!(shown_bytes > max, "docker images shows {shown}");

    let check = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl"))
        .budget(SizeBudget::new(target, max));
    let report = check.run(&runner).unwrap();
    eprintln!("{report}");
    assert_eq!(report.outcome, SizeOutcome::Fail, "{report}");
    assert!(report.ensure_within_max().is_err());
    // The judged figure is the one `docker images` shows, to the digit it prints.
    assert_eq!(human_bytes(report.record.bytes).replace(' ', ""), shown);
    assert_eq!(report.record.unpacked_bytes, Some(report.record.bytes));
    assert_eq!(report.record.compressed_bytes, Some(compressed));
    // Both sizes are in the report, each labelled.
    let text = report.to_string();
    let first_line = text.lines().next().unwrap();
    assert!(
        first_line.contains(&format!(
            "{} unpacked ({} bytes, as `docker images` shows)",
            human_bytes(report.record.bytes),
            report.record.bytes
        )),
        "{text}"
    );
    assert!(
        first_line.contains(&format!(
            "{} compressed ({compressed} bytes, pushed and pulled)",
            human_bytes(compressed)
        )),
        "{text}"
    );
    assert!(
        first_line.contains(": fail, judging the unpacked size"),
        "{text}"
    );
    // Layers in the judged measure (unpacked): the zeros layer is 40 MB, not 40 kB, and
    // with the content line they add up to the judged total.
    let largest = &report.largest_layers[0];
    assert!(largest.created_by.contains("dd if=/dev/zero"), "{text}");
    assert!(largest.bytes >= 40_000_000, "{text}");
    let layers: u64 = report.record.layers.iter().map(|l| l.bytes).sum();
    assert_eq!(
        layers + report.record.content_on_disk(),
        report.record.bytes
    );
    assert!(report
        .record
        .layers
        .iter()
        .all(|l| !l.created_by.is_empty()));

    // Asked to judge the compressed size, the same budget passes.
    let check = SizeCheck::new(tag.clone(), dir.path().join("h2.jsonl"))
        .budget(SizeBudget::new(target, max).measure(SizeMeasure::Compressed));
    let report = check.run(&runner).unwrap();
    assert_eq!(report.outcome, SizeOutcome::Pass, "{report}");
    assert_eq!(report.record.bytes, compressed);
}

/// A base image imported as one layer has no instruction: the layer list names it.
#[test]
fn an_imported_base_layer_is_named_after_its_image() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{}:1", e2e::unique("size-base"));
    let _cleanup = RemoveImages(&runner, vec![tag.clone()]);
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nCOPY app.txt /app.txt\n", e2e::PYTHON_IMAGE),
    )
    .unwrap();
    std::fs::write(dir.path().join("app.txt"), "app\n").unwrap();
    runner
        .run(
            &Cmd::new("docker")
                .args(["buildx", "build", "--progress=plain", "--load", "-t", &tag])
                .arg_path(dir.path()),
        )
        .unwrap();
    let report = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl"))
        .run(&runner)
        .unwrap();
    let base = &report.largest_layers[0];
    assert_eq!(
        base.created_by,
        format!("base image {}", e2e::PYTHON_IMAGE),
        "{report}"
    );
    assert!(report
        .to_string()
        .contains(&format!("  base image {}\n", e2e::PYTHON_IMAGE)));
}
