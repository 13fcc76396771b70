//! The reproducibility check against the real engine: two uncached builds into OCI
//! layouts with `rewrite-timestamp`, compared by digest, and the differing layer and files
//! named when a build is not reproducible.

use buildkit_lib::plan::Step as _;
use std::fs;
use std::path::Path;

use buildkit_lib::docker::build::{Build, Output};
use buildkit_lib::validate::reproducible::{Difference, Reproducible};
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
fn check_at(src: &Path, epoch: u64) -> buildkit_lib::validate::reproducible::ReproReport {
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
    // 2024-05-01T12:00:00Z, the commit's time.
    assert_eq!(report.source_date_epoch, 1_714_564_800);
    assert!(report.is_reproducible(), "{report}");
    assert!(report.first.starts_with("sha256:"), "{report}");
    assert_eq!(report.first, report.second);
    assert!(report.to_string().starts_with("reproducible: "), "{report}");
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
    assert_ne!(report.first, report.second);
    match report.difference.as_ref().unwrap() {
        Difference::Layer {
            platform,
            created_by,
            files,
            file_count,
            ..
        } => {
            assert_eq!(platform, "linux/amd64");
            assert!(
                created_by
                    .as_deref()
                    .unwrap_or_default()
                    .contains("random/uuid > /app/built-at"),
                "{report}"
            );
            assert_eq!(*file_count, 1, "{report}");
            assert_eq!(files[0].path, "app/built-at");
            assert_eq!(files[0].what, ["content"], "{report}");
        }
        other => panic!("expected a layer difference, got {other:?}"),
    }
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
    assert!(report.same_digest(), "{report}");
    assert!(!report.is_reproducible(), "{report}");
    assert_eq!(report.epoch_hidden_from, ["#0"]);
    assert!(
        report
            .to_string()
            .contains("declare `ARG SOURCE_DATE_EPOCH`"),
        "{report}"
    );
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
    assert!(report.same_digest(), "{report}");
    assert!(!report.is_reproducible(), "{report}");
    assert_eq!(report.older_than_epoch, ["app.txt"]);
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
