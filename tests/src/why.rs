//! What the "why was this rebuilt" tests share (`why.rs`, `why_causes.rs`,
//! `why_fixtures.rs`): a build context of the test's own with its explanation record kept
//! outside it, a copy of a fixture, unique content, the test's own builder, and clean-up of
//! what a test tagged or created.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::BuilderCreate;
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{Explanation, InstructionRow};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};

/// Something no build has seen before, so that BuildKit's cache cannot have it.
pub fn fresh() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// A copy of `dir` (hidden files too) at `to`.
pub fn copy_tree(dir: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `docker ARGS...` on `runner`, its standard output trimmed; panics with the error.
pub fn docker(runner: &Runner, args: &[&str]) -> String {
    runner
        .capture(&Cmd::new("docker").args(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e:#}"))
        .stdout
        .trim()
        .to_string()
}

/// The ID of the local image `image` (`docker image inspect --format {{.Id}}`).
pub fn image_id(runner: &Runner, image: &str) -> String {
    docker(runner, &["image", "inspect", "--format", "{{.Id}}", image])
}

/// The row of the instruction at Dockerfile line `line`; panics (showing the explanation)
/// when there is none.
pub fn row(e: &Explanation, line: usize) -> &InstructionRow {
    e.rows()
        .iter()
        .find(|r| r.line == Some(line))
        .unwrap_or_else(|| panic!("no row at line {line} in\n{e}"))
}

/// Removes images by name when dropped.
pub struct RemoveImages(pub Runner, pub Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let _ = self.0.clone().echo(Echo::Silent).capture(
            &Cmd::new("docker")
                .args(["image", "rm", "--force"])
                .args(self.1.clone()),
        );
    }
}

/// A docker-container builder of the test's own on the engine's host network (it pulls
/// base images from the loopback registry), removed when the guard is dropped.
pub fn own_builder(runner: &Runner, prefix: &str) -> (String, crate::RemoveBuilder) {
    let rig = crate::buildkit_rig();
    let name = crate::unique(prefix);
    let guard = crate::RemoveBuilder(runner.clone(), name.clone());
    BuilderCreate::new()
        .name(&name)
        .driver("docker-container")
        .driver_opt("image", &rig.image)
        .driver_opt("network", "host")
        .bootstrap(true)
        .run(runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    (name, guard)
}

/// A build context of the test's own (empty, or a copy of a fixture), its explanation
/// record kept outside it, and the images the test tags (removed when dropped).
pub struct Scratch {
    /// The build context.
    pub dir: tempfile::TempDir,
    /// Where the explanation record is kept.
    pub keep: tempfile::TempDir,
    /// The tag the builds load their image as.
    pub tag: String,
    /// What is removed when dropped: the tag, and whatever else the test tagged.
    pub images: RefCell<Vec<String>>,
    /// A silent runner on the test engine.
    pub runner: Runner,
}

impl Scratch {
    /// An empty build context; the image tag starts with `prefix`.
    pub fn new(prefix: &str) -> Scratch {
        let tag = format!("{}:dev", crate::unique(prefix));
        Scratch {
            dir: tempfile::tempdir().unwrap(),
            keep: tempfile::tempdir().unwrap(),
            images: RefCell::new(vec![tag.clone()]),
            tag,
            runner: crate::engine().echo(Echo::Silent),
        }
    }

    /// A copy of `fixture` (the repository's files stay as they are) as the build context.
    pub fn copy_of(prefix: &str, fixture: &Path) -> Scratch {
        let s = Scratch::new(prefix);
        copy_tree(fixture, s.dir.path());
        s
    }

    /// The explanation record the builds keep.
    pub fn record(&self) -> PathBuf {
        self.keep.path().join("why.json")
    }

    /// The build of this context, its record kept, loaded as the test's tag.
    pub fn build(&self) -> Build {
        Build::new(self.dir.path())
            .tag(&self.tag)
            .output(Output::Load)
            .explain_record(self.record())
    }

    /// The build of `dockerfile` in this context (without a network), its record kept,
    /// loaded as the test's tag.
    pub fn build_of(&self, dockerfile: &str) -> Build {
        std::fs::write(self.dir.path().join("Dockerfile"), dockerfile).unwrap();
        self.build().network("none")
    }

    /// Runs `build` and returns its explanation.
    pub fn explain(&self, build: &Build) -> Explanation {
        let result = build.run(&self.runner).unwrap_or_else(|e| panic!("{e:#}"));
        result.explanation.expect("the build was explained")
    }

    /// Tags `image` as `tag` (removed with the test's images).
    pub fn docker_tag(&self, image: &str, tag: &str) {
        self.images.borrow_mut().push(tag.to_string());
        docker(&self.runner, &["tag", image, tag]);
    }

    /// Replaces the one occurrence of `old` in the context's file `path` with `new`;
    /// panics when `old` is not there exactly once.
    pub fn edit(&self, path: &str, old: &str, new: &str) {
        let file = self.dir.path().join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.matches(old).count(), 1, "{old:?} in {path}");
        std::fs::write(&file, text.replacen(old, new, 1)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let images = self.images.borrow().clone();
        drop(RemoveImages(self.runner.clone(), images));
    }
}
