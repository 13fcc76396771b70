//! The "up to date" verdict of an image step cannot be had for the wrong reason: every
//! change that changes what the engine would build turns it into a rebuild, through the
//! persistent file-hash cache, and a change to an excluded file does not.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::pipeline::{Pipeline, StepStatus};
use buildkit_lib::{Cmd, Runner, Session};

/// A context of `n` files in a deep tree, a `.dockerignore` and a Dockerfile.
fn context(root: &Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("app/a{}/b{}/c{}", i % 7, i % 5, i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i:04}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::create_dir_all(root.join("cache")).unwrap();
    std::fs::write(root.join("cache/skip.bin"), "excluded\n").unwrap();
    std::fs::write(root.join("cache/keep.txt"), "excluded until re-included\n").unwrap();
    std::fs::write(root.join(".dockerignore"), "cache\n").unwrap();
    std::fs::write(
        root.join("Dockerfile"),
        format!(
            "FROM {}\nARG FLAVOUR=plain\nCOPY . /ctx/\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
}

struct Case {
    target: tempfile::TempDir,
    ctx: tempfile::TempDir,
    engine: Runner,
    tag: String,
    flavour: String,
}

impl Case {
    fn new() -> Case {
        let ctx = tempfile::tempdir().unwrap();
        context(ctx.path(), 600);
        Case {
            target: tempfile::tempdir().unwrap(),
            ctx,
            engine: e2e::engine().echo(Echo::Silent),
            tag: format!("{}:one", e2e::unique("uptodate")),
            flavour: "plain".into(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ctx.path().join(rel)
    }

    /// Runs the one-step pipeline and returns the image step's status.
    fn run(&self) -> StepStatus {
        let mut p = Pipeline::new("uptodate", self.target.path());
        p.image_build(
            "image",
            Build::new(self.ctx.path().to_path_buf())
                .tag(self.tag.clone())
                .build_arg("FLAVOUR", self.flavour.clone())
                .network("none")
                .output(Output::Load),
            "image",
        );
        let report = p
            .run(&self.engine.clone().session(Session::new("uptodate")))
            .unwrap();
        assert!(report.ok, "{report}");
        report.steps[0].status
    }

    /// After `change`, the step rebuilds, then is up to date again.
    fn rebuilds_after(&mut self, what: &str, change: impl FnOnce(&mut Case)) {
        assert_eq!(self.run(), StepStatus::UpToDate, "before: {what}");
        change(self);
        assert_eq!(self.run(), StepStatus::Ok, "{what} must rebuild");
        assert_eq!(self.run(), StepStatus::UpToDate, "after: {what}");
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = self
            .engine
            .capture(&Cmd::new("docker").args(["rmi", "--force", &self.tag]));
    }
}

/// The hash cache file's first line (its format version).
const HEADER: &[u8] = b"buildkit-lib file-hashes v2\n";

/// Writes `content` (of the same size) to the context file `rel`, then puts its
/// modification time back: only its change time and content tell.
fn rewrite_keeping_mtime(case: &Case, rel: &str, content: &str) {
    let file = case.path(rel);
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        content.len() as u64
    );
    let saved = case.target.path().join("mtime-ref");
    std::fs::write(&saved, "").unwrap();
    touch_like(&saved, &file);
    std::fs::write(&file, content).unwrap();
    touch_like(&file, &saved);
    std::fs::remove_file(&saved).unwrap();
}

fn touch_like(path: &Path, reference: &Path) {
    let status = std::process::Command::new("touch")
        .arg("-r")
        .arg(reference)
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn every_change_that_matters_rebuilds_and_nothing_else_does() {
    let mut case = Case::new();
    assert_eq!(case.run(), StepStatus::Ok, "first build");

    case.rebuilds_after(
        "one byte changed deep in the tree, size and mtime restored",
        |c| {
            rewrite_keeping_mtime(c, "app/a3/b0/c1/f0010.txt", "file 1X\n");
        },
    );
    case.rebuilds_after("a rename", |c| {
        std::fs::rename(
            c.path("app/a0/b0/c0/f0000.txt"),
            c.path("app/a0/b0/c0/g0000.txt"),
        )
        .unwrap();
    });
    case.rebuilds_after("a mode change", |c| {
        let file = c.path("app/a1/b1/c1/f0001.txt");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    case.rebuilds_after("a new symlink", |c| {
        std::os::unix::fs::symlink("a0", c.path("app/link")).unwrap();
    });
    case.rebuilds_after("a symlink whose target changes", |c| {
        std::fs::remove_file(c.path("app/link")).unwrap();
        std::os::unix::fs::symlink("a1", c.path("app/link")).unwrap();
    });
    case.rebuilds_after("a .dockerignore change that re-includes a file", |c| {
        std::fs::write(c.path(".dockerignore"), "cache\n!cache/keep.txt\n").unwrap();
    });
    case.rebuilds_after("a Dockerfile change", |c| {
        let mut text = std::fs::read_to_string(c.path("Dockerfile")).unwrap();
        text.push_str("LABEL extra=1\n");
        std::fs::write(c.path("Dockerfile"), text).unwrap();
    });
    case.rebuilds_after("a build arg change", |c| c.flavour = "spicy".into());
    case.rebuilds_after("a changed tag", |c| {
        let old = std::mem::replace(&mut c.tag, format!("{}:two", e2e::unique("uptodate")));
        let _ = c
            .engine
            .capture(&Cmd::new("docker").args(["rmi", "--force", &old]));
    });
    case.rebuilds_after("the tag moved to another image", |c| {
        c.engine
            .capture(&Cmd::new("docker").args(["tag", e2e::BUSYBOX_IMAGE, &c.tag]))
            .unwrap();
    });
    case.rebuilds_after("the image deleted from the engine", |c| {
        c.engine
            .capture(&Cmd::new("docker").args(["rmi", "--force", &c.tag]))
            .unwrap();
    });
    let cache_file = case.target.path().join("buildkit/uptodate/file-hashes");
    assert!(cache_file.is_file(), "the hash cache is kept between runs");
    case.rebuilds_after(
        "a content change hidden behind a corrupted hash cache",
        |c| {
            // Same size, same mtime, and a cache file whose entries claim the old content:
            // it is from another version, so it must be ignored, never trusted.
            rewrite_keeping_mtime(c, "app/a2/b2/c2/f0002.txt", "file Z\n");
            let mut bytes = std::fs::read(&cache_file).unwrap();
            assert!(bytes.starts_with(HEADER));
            bytes[HEADER.len() - 2] = b'0';
            std::fs::write(&cache_file, bytes).unwrap();
        },
    );
    let rebuilt = std::fs::read(&cache_file).unwrap();
    assert!(rebuilt.starts_with(HEADER), "rebuilt anew");
    assert!(
        rebuilt.len() > 600 * 88,
        "every context file hashed again ({} bytes)",
        rebuilt.len()
    );
    case.rebuilds_after("a truncated hash cache and a changed file", |c| {
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(b"abc");
        std::fs::write(&cache_file, bytes).unwrap();
        std::fs::write(c.path("app/a4/b4/c1/f0004.txt"), "changed\n").unwrap();
    });

    // The reverse: changes the engine would never see.
    assert_eq!(case.run(), StepStatus::UpToDate);
    std::fs::write(case.path("cache/skip.bin"), "still excluded, new content\n").unwrap();
    std::fs::write(case.path("cache/new.bin"), "a new excluded file\n").unwrap();
    assert_eq!(
        case.run(),
        StepStatus::UpToDate,
        "excluded files do not rebuild"
    );
}

/// A named build context that an earlier step of the same run creates (the webapp's
/// `meta` folder, stamped by its `version` step) is an input from the first run on: the
/// second, unchanged run is up to date (engine-independent; it rebuilt once on a fresh
/// checkout before the pipeline declared the context only when it already existed).
#[test]
fn a_named_context_created_by_an_earlier_step_is_up_to_date_on_the_second_run() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY --from=meta stamp.txt /stamp.txt\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    let target = tempfile::tempdir().unwrap();
    let meta = target.path().join("meta");
    let tag = format!("{}:meta", e2e::unique("uptodate"));
    let engine = e2e::engine().echo(Echo::Silent);
    let run = |content: &'static str| {
        let mut p = Pipeline::new("uptodate-meta", target.path());
        let dir = meta.clone();
        p.step("stamp", move |_| {
            std::fs::create_dir_all(&dir)?;
            // Written only when it differs, as the webapp's version step does.
            let file = dir.join("stamp.txt");
            if std::fs::read_to_string(&file).ok().as_deref() != Some(content) {
                std::fs::write(&file, content)?;
            }
            Ok(())
        });
        p.image_build(
            "image",
            Build::new(ctx.path().to_path_buf())
                .tag(tag.clone())
                .build_context("meta", meta.display().to_string())
                .network("none")
                .output(Output::Load),
            "image",
        )
        .after(["stamp"]);
        let report = p
            .run(&engine.clone().session(Session::new("uptodate")))
            .unwrap();
        assert!(report.ok, "{report}");
        report.steps[1].status
    };
    assert!(
        !meta.exists(),
        "the context does not exist when the pipeline is declared"
    );
    assert_eq!(run("one\n"), StepStatus::Ok, "first run");
    assert_eq!(run("one\n"), StepStatus::UpToDate, "second, unchanged run");
    assert_eq!(
        run("two\n"),
        StepStatus::Ok,
        "a changed named context rebuilds"
    );
    assert_eq!(run("two\n"), StepStatus::UpToDate);
    let _ = engine.capture(&Cmd::new("docker").args(["rmi", "--force", &tag]));
}
