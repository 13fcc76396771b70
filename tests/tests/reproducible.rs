//! The reproducibility check against the real engine: two uncached builds into OCI
//! layouts with `rewrite-timestamp`, compared by digest, and the differing layer and files
//! named when a build is not reproducible.

use buildkit_lib::plan::Step as _;
use std::fs;
use std::path::Path;

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::validate::Reproducible;
use buildkit_lib::Cmd;

/// The checks take turns on the engine: BuildKit 0.13 can hand a concurrent build of an
/// identical layer the blob from before its timestamps were rewritten.
static ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A git repository holding a small image's sources: a base, a file copied in and a
/// `RUN` whose output is `run` (a shell command).
fn project(run: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nARG SOURCE_DATE_EPOCH\nCOPY app.txt /app/app.txt\nRUN {run}\n\
             RUN echo done > /app/done\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    // Contents unique to each test: BuildKit 0.13 can hand a concurrent build of the same
    // layer the blob before its timestamps were rewritten.
    fs::write(dir.path().join("app.txt"), e2e::unique("hello")).unwrap();
    let runner = e2e::runner();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "sources",
            "--date=2024-05-01T12:00:00Z",
        ],
    ] {
        runner
            .run(
                &Cmd::new("git")
                    .args(args.iter().copied())
                    .cwd(dir.path())
                    .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z"),
            )
            .unwrap();
    }
    dir
}

fn build_of(dir: &Path) -> Build {
    Build::new(dir.to_path_buf())
        .network("host")
        .output(Output::Load)
        .tag("buildkit-test/repro:dev")
}

/// The check of `build_of(src)` at a fixed epoch, working in a folder of its own.
fn check_at(src: &Path, epoch: u64) -> buildkit_lib::validate::ReproReport {
    let work = tempfile::tempdir().unwrap();
    Reproducible::new(&build_of(src), work.path().join("repro"))
        .source_date_epoch(epoch)
        .run(&e2e::engine())
        .unwrap()
}

#[test]
fn a_deterministic_build_is_reproducible_at_the_last_commits_time() {
    let _turn = turn();
    let src = project("echo fixed > /app/generated");
    let work = tempfile::tempdir().unwrap();
    let check = Reproducible::new(&build_of(src.path()), work.path().join("repro"));
    let report = check.run(&e2e::engine()).unwrap();
    assert!(report.is_reproducible(), "{report}");
    // Both builds gave one digest, at 2024-05-01T12:00:00Z, the commit's time.
    let text = report.to_string();
    let digest = text
        .strip_prefix("reproducible: two builds without cache gave ")
        .and_then(|rest| rest.strip_suffix(" (SOURCE_DATE_EPOCH=1714564800)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(digest.starts_with("sha256:"), "{report}");
    assert!(!digest.contains(' '), "{report}");
    // Nothing is kept when the images are equal.
    assert!(!work.path().join("repro/first").exists());
}

#[test]
fn a_build_that_writes_random_bytes_is_caught_with_its_layer_and_file() {
    let _turn = turn();
    // Different bytes on every run (busybox `date` has no `%N`: two builds within one
    // second would write the same time, and be reproducible for real).
    let src = project("cat /proc/sys/kernel/random/uuid > /app/built-at");
    let work = tempfile::tempdir().unwrap();
    let check = Reproducible::new(&build_of(src.path()), work.path().join("repro"))
        .source_date_epoch(1_700_000_000);
    let report = check.run(&e2e::engine()).unwrap();
    assert!(!report.is_reproducible(), "{report}");
    let text = report.to_string();
    let mut lines = text.lines();
    // Two different digests.
    let (first, second) = lines
        .next()
        .unwrap()
        .strip_prefix("not reproducible: two builds without cache gave ")
        .and_then(|rest| rest.strip_suffix(" (SOURCE_DATE_EPOCH=1700000000)"))
        .and_then(|rest| rest.split_once(" and "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        first.starts_with("sha256:") && second.starts_with("sha256:"),
        "{text}"
    );
    assert_ne!(first, second);
    // The first differing layer: its platform, its step and its one file, by content.
    let layer = lines.next().unwrap();
    assert!(
        layer.starts_with("linux/amd64: first differing layer is #"),
        "{text}"
    );
    assert!(layer.contains("random/uuid > /app/built-at"), "{text}");
    assert!(layer.ends_with(", 1 file(s) differ:"), "{text}");
    assert_eq!(lines.next(), Some("  app/built-at (content)"), "{text}");
    let text = report.to_string();
    assert!(text.contains("app/built-at (content)"), "{text}");
    // Both layouts stay for inspection; the unpacked layers do not.
    assert!(work.path().join("repro/first/index.json").is_file());
    assert!(!work.path().join("repro/layers").exists());
}

#[test]
fn equal_digests_are_not_enough_when_run_steps_cannot_see_the_epoch() {
    let _turn = turn();
    let src = project("true");
    let text = fs::read_to_string(src.path().join("Dockerfile")).unwrap();
    fs::write(
        src.path().join("Dockerfile"),
        text.replace("ARG SOURCE_DATE_EPOCH\n", ""),
    )
    .unwrap();
    let report = check_at(src.path(), 1_700_000_000);
    assert!(!report.is_reproducible(), "{report}");
    let text = report.to_string();
    // The same digest twice, but stage #0 (only it) does not see the epoch.
    assert!(
        text.starts_with("not shown reproducible: two builds without cache gave sha256:"),
        "{text}"
    );
    assert!(
        text.contains(
            "but RUN steps in stage(s) #0 do not see SOURCE_DATE_EPOCH, so tools that \
             honour it"
        ),
        "{text}"
    );
    assert!(text.contains("declare `ARG SOURCE_DATE_EPOCH`"), "{text}");
}

#[test]
fn context_files_older_than_the_epoch_are_named() {
    let _turn = turn();
    let src = project("true");
    let old = src.path().join("app.txt");
    let back = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(back)
        .unwrap();
    let report = check_at(src.path(), 1_700_000_000);
    assert!(!report.is_reproducible(), "{report}");
    let text = report.to_string();
    // The same digest twice, but one context file (only it) is older than the epoch.
    assert!(
        text.starts_with("not shown reproducible: two builds without cache gave sha256:"),
        "{text}"
    );
    assert!(
        text.contains("so a fresh clone builds another image: app.txt (check out again"),
        "{text}"
    );
}

#[test]
fn without_git_or_an_epoch_the_check_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\n", e2e::BUSYBOX_IMAGE),
    )
    .unwrap();
    let err = Reproducible::new(&build_of(dir.path()), dir.path().join("repro"))
        .run(&e2e::runner())
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("is not a git repository") && text.contains("set SOURCE_DATE_EPOCH"),
        "{text}"
    );
}

#[test]
fn rewrite_timestamp_is_refused_where_the_image_is_unpacked() {
    let src = project("true");
    let build = build_of(src.path()).rewrite_timestamp(true);
    // Refused before anything runs: a dry run says the same.
    let err = format!("{:#}", build.run(&e2e::runner().dry_run(true)).unwrap_err());
    assert!(
        err.contains("rewrite_timestamp") && err.contains("Output::OciLayout"),
        "{err}"
    );
    assert!(build
        .output(Output::Push)
        .command()
        .to_string()
        .contains("--output type=image,push=true,rewrite-timestamp=true"));
}

#[test]
fn the_webapp_fixture_is_reproducible() {
    let _turn = turn();
    let app = e2e::repo_root().join("fixtures/webapp");
    let build = Build::new(app.clone())
        .dockerfile(app.join("Dockerfile.production"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .network("none");
    let work = tempfile::tempdir().unwrap();
    // A fixed epoch after every file's time: the fixture's files were checked out or
    // written after it, as in a fresh clone.
    let report = Reproducible::new(&build, work.path().join("repro"))
        .source_date_epoch(1_000_000_000)
        .run(&e2e::engine())
        .unwrap();
    assert!(report.is_reproducible(), "{report}");
}
