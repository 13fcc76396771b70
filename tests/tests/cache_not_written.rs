//! A build whose image was built and loaded while its cache export failed, on the real
//! engine (run on today's and on the oldest supported one): said as such, the step's
//! status following the user's choice (the cache optional unless required), never
//! "cannot build image".

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::CacheExportFailed;
use buildkit_lib::docker::{Build, BuildResult, Output};
use buildkit_lib::pipeline::{Pipeline, StepStatus};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner, Session};
use e2e::cache_not_written as not_written;

/// Nothing listens on port 1: the registry "does not answer".
const UNREACHABLE: &str = "127.0.0.1:1/buildkit-test/cache";

struct Image {
    dir: tempfile::TempDir,
    tag: String,
    runner: Runner,
}

impl Image {
    /// A context whose one RUN no build has run before (so that the image is new).
    fn new() -> Image {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {}\nRUN echo {}-{nanos} > /made\n",
                e2e::BUSYBOX_IMAGE,
                std::process::id()
            ),
        )
        .unwrap();
        Image {
            dir,
            tag: format!("{}:dev", e2e::unique("bkl-cache-not-written")),
            runner: e2e::engine(),
        }
    }

    fn build(&self) -> Build {
        Build::new(self.dir.path())
            .tag(&self.tag)
            .network("none")
            .output(Output::Load)
    }

    /// The engine's id of the image under the tag, if there is one.
    fn loaded_id(&self) -> Option<String> {
        self.runner
            .clone()
            .echo(Echo::Silent)
            .capture(
                &Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &self.tag]),
            )
            .ok()
            .map(|o| o.stdout.trim().to_string())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = self
            .runner
            .clone()
            .echo(Echo::Silent)
            .capture(&Cmd::new("docker").args(["image", "rm", "--force", &self.tag]));
    }
}

fn assert_loaded(image: &Image, result: &BuildResult) {
    let id = image
        .loaded_id()
        .expect("the image is in the engine's store");
    assert_eq!(result.image_id.as_deref(), Some(id.as_str()));
    assert!(result.digest.as_deref().unwrap().starts_with("sha256:"));
}

#[test]
fn an_unreachable_cache_registry_leaves_the_image_built_and_says_the_cache_was_not_written() {
    let image = Image::new();
    let log = image.dir.path().join("build.log");
    let runner = image.runner.clone().log_to(&log);

    // Optional (the default): the result, with the cache not written named.
    let result = image
        .build()
        .cache_to(Cache::registry(UNREACHABLE))
        .run(&runner)
        .expect("an optional cache does not fail the build");
    assert_loaded(&image, &result);
    let caches = not_written(&result);
    assert_eq!(caches.len(), 1, "{result:#?}");
    let cache = caches[0];
    assert_eq!(cache.file, UNREACHABLE);
    assert_eq!(cache.level, buildkit_lib::Level::Warning);
    assert!(
        cache
            .message
            .starts_with(&format!("cache not written to {UNREACHABLE}: ")),
        "{}",
        cache.message
    );
    assert!(cache.message.contains("127.0.0.1:1"), "{}", cache.message);
    assert!(
        cache.message.contains("connection refused"),
        "{}",
        cache.message
    );
    // Explained as usual: the image's one RUN ran.
    let explanation = result.explanation.as_ref().unwrap();
    assert!(
        explanation
            .rows()
            .iter()
            .any(|r| r.instruction.starts_with("RUN echo") && !r.cached()),
        "{explanation}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!(
            "warning: image {} built and loaded; cache not written to {UNREACHABLE}: ",
            image.tag
        )),
        "{text}"
    );

    // Required: an error that says the same, typed, with the result inside.
    let err = image
        .build()
        .cache_to(Cache::registry(UNREACHABLE))
        .cache_required(true)
        .run(&runner)
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!(
            "image {} built and loaded; cache not written to {UNREACHABLE}: ",
            image.tag
        )),
        "{text}"
    );
    assert!(!text.contains("cannot build image"), "{text}");
    let failed = err.downcast_ref::<CacheExportFailed>().unwrap();
    assert!(
        failed
            .to_string()
            .starts_with(&format!("image {} built and loaded; ", image.tag)),
        "{failed}"
    );
    assert_loaded(&image, &failed.result);

    // Without the explanation (plain progress), the error's last lines tell the same.
    let result = image
        .build()
        .explain(false)
        .cache_to(Cache::registry(UNREACHABLE))
        .run(&runner)
        .unwrap();
    let caches = not_written(&result);
    assert_eq!(caches.len(), 1, "{result:#?}");
    assert_eq!(caches[0].file, UNREACHABLE);
    assert!(result.explanation.is_none());
}

#[test]
fn a_local_cache_folder_that_cannot_be_written_leaves_the_image_built() {
    let image = Image::new();
    let cache_dir = image.dir.path().join("cache");
    // buildx writes the folder's index.json last: a folder in its place stops it.
    std::fs::create_dir_all(cache_dir.join("index.json")).unwrap();
    let result = image
        .build()
        .cache_to(Cache::local(&cache_dir))
        .run(&image.runner.clone().echo(Echo::Silent))
        .unwrap();
    assert_loaded(&image, &result);
    let caches = not_written(&result);
    assert_eq!(caches.len(), 1, "{result:#?}");
    assert_eq!(caches[0].file, cache_dir.display().to_string());
    assert!(caches[0].message.contains("index.json"));

    // A cache folder that cannot even be created stops buildx before it builds: a
    // failed build, said as before.
    let blocked = image.dir.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let err = image
        .build()
        .cache_to(Cache::local(blocked.join("cache")))
        .run(&image.runner.clone().echo(Echo::Silent))
        .unwrap_err();
    assert!(err.downcast_ref::<CacheExportFailed>().is_none());
    assert!(
        format!("{err:#}").starts_with("cannot build image"),
        "{err:#}"
    );
}

#[test]
fn a_pipeline_step_follows_the_users_choice() {
    let image = Image::new();
    let target = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("cache-not-written", target.path());
    pipeline.image_build(
        "optional",
        image.build().cache_to(Cache::registry(UNREACHABLE)),
        "optional",
    );
    pipeline
        .image_build(
            "required",
            image
                .build()
                .cache_to(Cache::registry(UNREACHABLE))
                .cache_required(true),
            "required",
        )
        .after(["optional"]);
    pipeline.jobs(1).keep_going(true);
    let report = pipeline
        .run(
            &image
                .runner
                .clone()
                .session(Session::new("cache-not-written-test")),
        )
        .unwrap();
    let optional = report.step("optional").unwrap();
    assert_eq!(optional.status, StepStatus::Ok, "{optional:#?}");
    let optional_json = e2e::report_step(target.path(), "cache-not-written", "optional");
    let warning = optional_json["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["kind"] == "cache-not-written")
        .expect("a warning in the report");
    assert!(warning["message"].as_str().unwrap().starts_with(&format!(
        "image {} built; cache not written to {UNREACHABLE}: ",
        image.tag
    )));
    let required = report.step("required").unwrap();
    assert_eq!(required.status, StepStatus::Failed);
    let error = required.error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!(
            "image {} built and loaded; cache not written to {UNREACHABLE}: ",
            image.tag
        )),
        "{error}"
    );
    assert!(
        required.why.is_some(),
        "the explanation is kept: {required:#?}"
    );
    assert!(
        e2e::report_step(target.path(), "cache-not-written", "required")["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w["kind"] == "cache-not-written")
    );
}
