//! The image size budget against the real engine: sizes in bytes from the engine, outcomes
//! and exit codes, the largest layers, the layer diff against the previous build, the
//! JSON-lines history and its SVG chart.

use buildkit_lib::plan::Step as _;
use std::path::Path;

use buildkit_lib::cmd::Echo;
use buildkit_lib::pipeline::{Pipeline, StepStatus};
use buildkit_lib::units::human_bytes;
use buildkit_lib::validate::SizeCheck;
use buildkit_lib::validate::Verdict;
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
                .arg(dir),
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
    let first_text = first.to_string();
    let first_record = e2e::size_history(&history_file).pop().unwrap();
    // Judged by default: the unpacked size, as `docker images` shows it.
    assert!(
        first_text.contains(": pass, judging the unpacked size"),
        "{first}"
    );
    assert_eq!(first_record["measure"], "unpacked", "{first_record}");
    assert_eq!(
        human_bytes(first.bytes()).replace(' ', ""),
        docker_images_size(&runner, &v1),
        "{first}"
    );
    assert_eq!(
        first_record["compressed_bytes"].as_u64(),
        Some(engine_size(&runner, &v1))
    );
    assert_eq!(first_record["image"], name.as_str());
    assert_eq!(first_record["tag"], "1");
    assert_eq!(first.outcome, Verdict::Pass);
    // (Pass exits 0, warn 3, fail 1: `budget_outcomes_and_exit_codes` in the library.)
    // No previous build: no growth and no layer changes.
    assert!(!first_text.contains("since the previous build"), "{first}");
    // The RUN layer with the payload is the largest.
    let largest = e2e::largest_layers(&first_record);
    assert!(largest[0].0.contains("dd if=/dev/zero"), "{first_record}");
    assert!(largest[0].1 >= 3_000_000);
    let shown = e2e::section(&first_text, "largest layers (unpacked):");
    assert!(shown[0].contains("dd if=/dev/zero"), "{first}");
    assert!(shown[0].contains(&human_bytes(largest[0].1)), "{first}");

    build(&runner, dir.path(), &v2, 6_000_000);
    // The disk size as the engine computes it: content plus unpacked layers (exact but
    // for the index manifest, a few hundred bytes).
    let near = engine_size(&runner, &v2) + history_bytes(&runner, &v2);
    // Budgets around the real size: below it warns.
    let check = SizeCheck::new(v2.clone(), &history_file)
        .git_commit("2222222bbbbbbb")
        .budget(near - 100_000, near + 100_000);
    let second = check.run(&runner).unwrap();
    let second_text = second.to_string();
    let bytes = second.bytes();
    assert!(bytes.abs_diff(near) < 10_000, "{bytes} vs {near}");
    assert_eq!(second.outcome, Verdict::Warn);
    second.ensure_within_max().unwrap();
    // The previous build is the first one (tag 1): the growth is measured from it.
    let both = e2e::size_history(&history_file);
    assert_eq!(both[0]["tag"], "1");
    let growth = bytes as i64 - first.bytes() as i64;
    let sign = if growth < 0 { "-" } else { "+" };
    assert!(
        second_text.lines().next().unwrap().ends_with(&format!(
            "; {sign}{} since the previous build",
            human_bytes(growth.unsigned_abs())
        )),
        "{second}"
    );
    // The diff names the grown RUN layer (its text changed with the build arg), in both
    // builds.
    let changes = e2e::section(
        &second_text,
        "layer changes since the previous build (unpacked):",
    );
    let grown = changes[0];
    assert!(grown.contains("dd if=/dev/zero"), "{second}");
    assert!(grown.contains(" grew "), "{second}");
    let payload = |record: &serde_json::Value| {
        e2e::largest_layers(record)
            .into_iter()
            .find(|(created_by, _)| created_by.contains("dd if=/dev/zero"))
            .map(|(_, bytes)| bytes)
            .unwrap()
    };
    let delta = payload(&both[1]) as i64 - payload(&both[0]) as i64;
    assert!(delta >= 2_900_000, "{second}");
    assert!(
        grown.contains(&format!("+{}", human_bytes(delta as u64))),
        "{second}"
    );
    eprintln!("{second}");
    // A maximum one byte under the size fails.
    let over = SizeCheck::new(v2.clone(), dir.path().join("over.jsonl"))
        .budget(1, bytes - 1)
        .run(&runner)
        .unwrap();
    assert_eq!(over.bytes(), bytes);
    assert_eq!(over.outcome, Verdict::Fail);

    // The history: two JSON lines with the fields, in build order.
    let records = e2e::size_history(&history_file);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["bytes"].as_u64(), Some(bytes));
    assert_eq!(records[1]["git_commit"], "2222222bbbbbbb");
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
    let check = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl")).budget(500_000, 1_000_000);
    let report = check.run(&runner).unwrap();
    assert_eq!(report.outcome, Verdict::Fail);
    let err = report.ensure_within_max().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {name}:1 is {} unpacked ({} bytes), over the maximum of 1 MB; see the \
             largest layers in the size report",
            human_bytes(report.bytes()),
            report.bytes()
        )
    );
    // Added to a pipeline, the same check fails its step with the same words: a size
    // over its maximum is never a pipeline's success. Within budget, the step passes, and
    // both say the size in the step's log.
    let target = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("sizefail", target.path());
    pipeline.add("size", check.clone());
    let within =
        SizeCheck::new(tag.clone(), dir.path().join("h3.jsonl")).budget(5_000_000, 9_000_000);
    pipeline.add("roomy", within);
    let report = pipeline
        .keep_going(true)
        .run(&runner.clone().echo(Echo::Silent))
        .unwrap();
    assert!(!report.ok, "{report}");
    let size = report.step("size").unwrap();
    assert_eq!(size.status, StepStatus::Failed, "{report}");
    let error = size.error.as_deref().unwrap_or_default();
    assert!(error.contains("over the maximum of 1 MB"), "{error}");
    let roomy = report.step("roomy").unwrap();
    assert_eq!(roomy.status, StepStatus::Ok, "{report}");
    let log = std::fs::read_to_string(roomy.log.as_ref().unwrap()).unwrap();
    assert!(
        log.contains(&human_bytes(report_bytes(&runner, &tag))),
        "{log}"
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
    let shown_bytes = buildkit_lib::units::parse_docker_size(&shown).unwrap();
    let (target, max) = (5_000_000, 10_000_000);
    assert!(compressed < target, "compressed {compressed}");
    assert!(shown_bytes > max, "docker images shows {shown}");

    let check = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl")).budget(target, max);
    let report = check.run(&runner).unwrap();
    eprintln!("{report}");
    assert_eq!(report.outcome, Verdict::Fail, "{report}");
    assert!(report.ensure_within_max().is_err());
    // The judged figure is the one `docker images` shows, to the digit it prints.
    let record = e2e::size_history(&dir.path().join("h.jsonl"))
        .pop()
        .unwrap();
    assert_eq!(human_bytes(report.bytes()).replace(' ', ""), shown);
    assert_eq!(record["bytes"].as_u64(), Some(report.bytes()));
    assert_eq!(record["unpacked_bytes"].as_u64(), Some(report.bytes()));
    assert_eq!(record["compressed_bytes"].as_u64(), Some(compressed));
    // Both sizes are in the report, each labelled.
    let text = report.to_string();
    let first_line = text.lines().next().unwrap();
    assert!(
        first_line.contains(&format!(
            "{} unpacked ({} bytes, as `docker images` shows)",
            human_bytes(report.bytes()),
            report.bytes()
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
    let largest = e2e::largest_layers(&record);
    assert!(largest[0].0.contains("dd if=/dev/zero"), "{text}");
    assert!(largest[0].1 >= 40_000_000, "{text}");
    let shown_layers = e2e::section(&text, "largest layers (unpacked):");
    assert!(shown_layers[0].contains("dd if=/dev/zero"), "{text}");
    assert!(
        shown_layers[0].contains(&human_bytes(largest[0].1)),
        "{text}"
    );
    let layers: u64 = largest.iter().map(|(_, bytes)| bytes).sum();
    assert!(layers <= report.bytes(), "{text}");
    let content_on_disk = report.bytes() - layers;
    assert!(
        shown_layers.last().unwrap().ends_with(&format!(
            "+ {}  compressed content the engine keeps beside the unpacked layers",
            human_bytes(content_on_disk)
        )),
        "{text}"
    );
    assert!(largest.iter().all(|(created_by, _)| !created_by.is_empty()));

    // Asked to judge the compressed size, the same budget passes.
    let check = SizeCheck::new(tag.clone(), dir.path().join("h2.jsonl"))
        .budget(target, max)
        .compressed();
    let report = check.run(&runner).unwrap();
    assert_eq!(report.outcome, Verdict::Pass, "{report}");
    assert_eq!(report.bytes(), compressed);
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
                .arg(dir.path()),
        )
        .unwrap();
    let report = SizeCheck::new(tag.clone(), dir.path().join("h.jsonl"))
        .run(&runner)
        .unwrap();
    let record = e2e::size_history(&dir.path().join("h.jsonl"))
        .pop()
        .unwrap();
    assert_eq!(
        e2e::largest_layers(&record)[0].0,
        format!("base image {}", e2e::PYTHON_IMAGE),
        "{report}"
    );
    let text = report.to_string();
    assert!(
        e2e::section(&text, "largest layers (unpacked):")[0]
            .ends_with(&format!("  base image {}", e2e::PYTHON_IMAGE)),
        "{text}"
    );
    assert!(report
        .to_string()
        .contains(&format!("  base image {}\n", e2e::PYTHON_IMAGE)));
}

/// The size a fresh check reads of `image` (the figure a step's log names).
fn report_bytes(runner: &Runner, image: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    SizeCheck::new(image, dir.path().join("h.jsonl"))
        .run(runner)
        .unwrap()
        .bytes()
}
