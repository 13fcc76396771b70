//! A build whose image was made while its cache export failed, on progress recorded from
//! real builds (`testdata/cache-export-*`, buildx 0.29.1 on Docker 28.5.2 and buildx
//! 0.13.1 on Docker 26.1.5, both with the containerd image store): a registry that does
//! not answer (`--cache-to type=registry,ref=127.0.0.1:1/x`), a local cache folder whose
//! `index.json` cannot be written, one that cannot be created (nothing built), and
//! `ignore-error=true`.

use super::export::{delivered, made_anyway, not_written_after_success, Exports};
use super::{CacheExportFailed, ImageDelivered, ProgressReader};
use crate::cmd::Echo;
use crate::docker::build::{Build, BuildResult, Output};
use crate::docker::cache::Cache;
use crate::Runner;

const REGISTRY: &str = include_str!("testdata/cache-export-registry.rawjson");
const REGISTRY_OLDEST: &str = include_str!("testdata/cache-export-registry-oldest.rawjson");
const REGISTRY_PLAIN: &str = include_str!("testdata/cache-export-registry.plain");
const LOCAL: &str = include_str!("testdata/cache-export-local.rawjson");
const LOCAL_OLDEST: &str = include_str!("testdata/cache-export-local-oldest.rawjson");
const LOCAL_MKDIR: &str = include_str!("testdata/cache-export-local-mkdir.rawjson");
const IGNORE_ERROR: &str = include_str!("testdata/cache-export-ignore-error.rawjson");
const RUN_FAILED: &str = include_str!("testdata/busybox-failed.rawjson");

const UNREACHABLE: &str = "127.0.0.1:1/x";
const LOCAL_DIR: &str = "/tmp/why2-exp/lc";

fn exports(progress: &str) -> Exports {
    let (reader, _) = ProgressReader::read_all(progress.as_bytes());
    Exports::from_progress(&reader)
}

fn registry_build() -> Build {
    Build::new(".")
        .tag("why2exp:2")
        .output(Output::Load)
        .cache_to(Cache::registry(UNREACHABLE))
}

#[test]
fn an_unreachable_cache_registry_after_the_image_was_loaded_is_read_on_both_buildx() {
    for (progress, list) in [
        (
            REGISTRY,
            "sha256:32d000b7dd413c933b67d3294722e420e69c8a7eb9bbeaea6db98206966813d6",
        ),
        (
            REGISTRY_OLDEST,
            "sha256:4cb85869a07bd3d5ebf635f9d16cce799d87e38045d9c0072174c399e9579d66",
        ),
    ] {
        let e = exports(progress);
        assert!(e.image_made(), "{e:#?}");
        assert_eq!(e.image_digest().as_deref(), Some(list));
        let build = registry_build().cache_to(Cache::local("/tmp/other-cache"));
        let caches = e.not_written(&build);
        assert_eq!(
            caches.len(),
            1,
            "the local cache was not the one: {caches:?}"
        );
        assert_eq!(caches[0].destination, UNREACHABLE);
        assert!(
            caches[0]
                .error
                .starts_with("error writing layer blob: failed to do request: Head"),
            "{}",
            caches[0].error
        );
        assert!(caches[0]
            .error
            .ends_with("dial tcp 127.0.0.1:1: connect: connection refused"));
        // Loaded: the engine's image under the tag is the one this build exported.
        assert_eq!(
            delivered(&build, &e, Some(list)),
            Some(ImageDelivered::Loaded)
        );
        // Another image under the tag (or none): not this build's, so not "loaded".
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(delivered(&build, &e, Some(other)), None);
        assert_eq!(delivered(&build, &e, None), None);
        let pushed = build.clone().output(Output::Push);
        assert_eq!(delivered(&pushed, &e, None), Some(ImageDelivered::Pushed));
    }
}

#[test]
fn a_local_cache_buildx_could_not_write_is_read_from_its_last_line() {
    for progress in [LOCAL, LOCAL_OLDEST] {
        let e = exports(progress);
        assert!(e.image_made(), "{e:#?}");
        assert!(e.cache_errors.is_empty(), "the vertex itself completed");
        let build = Build::new(".")
            .tag("why2exp:4")
            .output(Output::Load)
            .cache_to(Cache::local(LOCAL_DIR));
        let caches = e.not_written(&build);
        assert_eq!(caches.len(), 1, "{e:#?}");
        assert_eq!(caches[0].destination, LOCAL_DIR);
        assert_eq!(
            caches[0].error,
            "could not open /tmp/why2-exp/lc/index.json: open \
             /tmp/why2-exp/lc/index.json: is a directory"
        );
        // A registry cache alone is not blamed for a local folder's error.
        assert_eq!(e.not_written(&registry_build()), []);
    }
}

#[test]
fn a_cache_folder_that_cannot_be_created_fails_before_anything_is_built() {
    let e = exports(LOCAL_MKDIR);
    assert!(!e.image_made(), "{e:#?}");
    assert_eq!(
        e.final_error.as_deref(),
        Some("mkdir /tmp/why2-exp/afile: not a directory")
    );
    let build = Build::new(".")
        .output(Output::Push)
        .tag("127.0.0.1:5000/x:1")
        .cache_to(Cache::local("/tmp/why2-exp/afile/sub"));
    let (reader, _) = ProgressReader::read_all(LOCAL_MKDIR.as_bytes());
    let runner = Runner::new().echo(Echo::Silent);
    assert!(made_anyway(&build, &runner, Some(&reader), &[]).is_none());
}

#[test]
fn a_failed_instruction_is_a_failed_build_whatever_the_cache() {
    let e = exports(RUN_FAILED);
    assert!(!e.image_made(), "{e:#?}");
    let (reader, _) = ProgressReader::read_all(RUN_FAILED.as_bytes());
    let build = registry_build().output(Output::Push);
    let runner = Runner::new().echo(Echo::Silent);
    assert!(made_anyway(&build, &runner, Some(&reader), &[]).is_none());
}

#[test]
fn ignore_error_lets_the_build_succeed_and_the_result_still_says_so() {
    let (reader, _) = ProgressReader::read_all(IGNORE_ERROR.as_bytes());
    let build = Build::new(".")
        .tag("why2exp:5")
        .output(Output::Load)
        .cache_to(Cache::registry(UNREACHABLE).ignore_error(true));
    let runner = Runner::new().echo(Echo::Silent);
    let caches = not_written_after_success(&build, &runner, Some(&reader), &[]);
    assert_eq!(caches.len(), 1);
    assert_eq!(caches[0].destination, UNREACHABLE);
    assert!(caches[0].to_string().starts_with(
        "cache not written to 127.0.0.1:1/x: error writing layer blob: failed to do request"
    ));
    // Without a cache export there is nothing to say.
    let plain = Build::new(".").tag("why2exp:5").output(Output::Load);
    assert_eq!(
        not_written_after_success(&plain, &runner, Some(&reader), &[]),
        []
    );
    // The progress is read before the runner masks it: the result is masked.
    let masking = Runner::new().echo(Echo::Silent);
    masking.mask(&crate::Secret::new("connection refused"));
    let caches = not_written_after_success(&build, &masking, Some(&reader), &[]);
    assert!(
        !caches[0].error.contains("connection refused"),
        "{}",
        caches[0].error
    );
}

#[test]
fn the_plain_progress_an_error_keeps_says_the_same() {
    // The runner keeps the last 20 lines of a failed command: enough here.
    let lines: Vec<String> = REGISTRY_PLAIN.lines().map(str::to_string).collect();
    let tail = &lines[lines.len() - 20..];
    let e = Exports::from_plain(tail);
    assert!(e.image_made(), "{e:#?}");
    assert_eq!(
        e.image_digest().as_deref(),
        Some("sha256:15c58966dd480707c70212216f5defda4cc88ce2b59fc112ea3c3f6b0ee9b339")
    );
    let caches = e.not_written(&registry_build());
    assert_eq!(caches.len(), 1);
    assert_eq!(caches[0].destination, UNREACHABLE);
    // Cut before the image export's lines: nothing can be proven, so nothing is claimed.
    let e = Exports::from_plain(&lines[lines.len() - 8..]);
    assert!(!e.image_made());
}

#[test]
fn an_optional_cache_gives_the_result_a_required_one_the_error() {
    let (reader, _) = ProgressReader::read_all(REGISTRY.as_bytes());
    let runner = Runner::new().echo(Echo::Silent);
    let build = registry_build()
        .output(Output::Push)
        .tag("127.0.0.1:5000/app:1");
    let result = || BuildResult {
        tags: build.get_tags().to_vec(),
        ..BuildResult::default()
    };
    let made = made_anyway(&build, &runner, Some(&reader), &[]).unwrap();
    let ok = made.finish(&build, &runner, result()).unwrap();
    assert_eq!(ok.cache_not_written.len(), 1);
    // Users read it as a finding: the destination, the engine's error.
    assert_eq!(ok.cache_warnings.len(), 1, "{:#?}", ok.cache_warnings);
    assert_eq!(ok.cache_warnings[0].rule, "cache/not-written");
    assert_eq!(ok.cache_warnings[0].file, "127.0.0.1:1/x");
    assert!(ok.cache_warnings[0]
        .message
        .starts_with("cache not written to 127.0.0.1:1/x: error writing layer blob"));
    assert_eq!(
        ok.digest.as_deref(),
        Some("sha256:32d000b7dd413c933b67d3294722e420e69c8a7eb9bbeaea6db98206966813d6")
    );

    let required = build.clone().cache_required(true);
    let made = made_anyway(&required, &runner, Some(&reader), &[]).unwrap();
    let err = made.finish(&required, &runner, result()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "image why2exp:2 built and pushed; cache not written to 127.0.0.1:1/x: error \
             writing layer blob: failed to do request: Head"
        ),
        "{text}"
    );
    assert!(text.ends_with("(the cache is required: `cache_required(true)`)"));
    assert!(!text.contains("cannot build image"));
    let typed = err.downcast_ref::<CacheExportFailed>().unwrap();
    assert_eq!(typed.delivered, ImageDelivered::Pushed);
    assert_eq!(typed.result.cache_not_written, typed.caches);
}

#[test]
fn bakes_target_prefix_is_read_through() {
    // `docker buildx bake` names a target's export vertexes `[web] exporting to image`.
    let stream = concat!(
        r#"{"vertexes":[{"digest":"sha256:a","name":"[web] exporting to image","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z"}]}"#,
        "\n",
        r#"{"vertexes":[{"digest":"sha256:b","name":"[web] exporting cache to registry","started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:02Z","error":"no route"}]}"#,
        "\n"
    );
    let e = exports(stream);
    assert!(e.image_made());
    assert_eq!(
        e.cache_errors,
        [(
            "exporting cache to registry".to_string(),
            "no route".to_string()
        )]
    );
}
