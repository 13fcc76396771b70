//! The explanation on progress recorded from real builds (`testdata/*.rawjson`, recorded
//! with `docker buildx build --progress=rawjson` on buildx 0.29.1 and 0.13.1), one test per
//! cause.

use std::path::Path;

use super::record::collect;
use super::*;
use crate::docker::build::Build;
use crate::pipeline::filehash::FileHashes;
use crate::Runner;

const WEBAPP_DOCKERFILE: &str = include_str!("testdata/Dockerfile.webapp");
const WEBAPP_CACHED: &str = include_str!("testdata/webapp-cached.rawjson");
const WEBAPP_SRC_CHANGED: &str = include_str!("testdata/webapp-src-changed.rawjson");
const WEBAPP_ARG_CHANGED: &str = include_str!("testdata/webapp-arg-changed.rawjson");
const BUSYBOX_DOCKERFILE: &str = include_str!("testdata/Dockerfile.busybox");
const BUSYBOX_FIRST: &str = include_str!("testdata/busybox-first.rawjson");
const BUSYBOX_FIRST_OLDEST: &str = include_str!("testdata/busybox-first-oldest.rawjson");
const BUSYBOX_FAIL_DOCKERFILE: &str = include_str!("testdata/Dockerfile.busybox-fail");
const BUSYBOX_FAILED: &str = include_str!("testdata/busybox-failed.rawjson");
const BUSYBOX_LOCAL_CACHE: &str = include_str!("testdata/busybox-local-cache.rawjson");
const STAGES_DOCKERFILE: &str = include_str!("testdata/Dockerfile.stages");
const STAGES_FAILED: &str = include_str!("testdata/stages-failed.rawjson");

/// A context directory with `files` (the Dockerfile among them).
pub(super) fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn webapp_context(server: &str) -> tempfile::TempDir {
    context(&[
        ("Dockerfile.production", WEBAPP_DOCKERFILE),
        ("requirements-prod.txt", "# none\n"),
        ("version.json", "{}\n"),
        ("src/webapp/__init__.py", ""),
        ("src/webapp/server.py", server),
        ("src/webapp/version.py", "VERSION = 1\n"),
        ("notes.md", "not copied by any instruction\n"),
    ])
}

fn webapp_build(dir: &Path) -> Build {
    Build::new(dir)
        .dockerfile(dir.join("Dockerfile.production"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11")
}

fn busybox_context(dockerfile: &str, b: &str) -> tempfile::TempDir {
    context(&[
        ("Dockerfile", dockerfile),
        ("a.txt", "a\n"),
        ("b.txt", b),
        ("tok", "sekrit-value-1\n"),
    ])
}

/// The inputs of `build` as a build would record them, completed from `progress`.
fn recorded(build: &Build, previous: Option<&CacheInputs>, progress: &str) -> CacheInputs {
    let hashes = FileHashes::in_memory();
    let mut inputs = collect(build, &Runner::new(), Some(&hashes), previous).unwrap();
    let (reader, _) = ProgressReader::read_all(progress.as_bytes());
    inputs.observe(reader.vertexes(), reader.text_lines());
    inputs
}

fn explained(previous: Option<&CacheInputs>, current: &CacheInputs, progress: &str) -> Explanation {
    let (reader, _) = ProgressReader::read_all(progress.as_bytes());
    explain(previous, current, reader.vertexes())
}

fn row<'a>(e: &'a Explanation, stage: &str, step: usize) -> &'a InstructionRow {
    e.rows
        .iter()
        .find(|r| r.stage == stage && r.step == step)
        .unwrap_or_else(|| panic!("no row {stage} {step} in {e:#?}"))
}

#[test]
fn nothing_changed_means_all_cached_and_nothing_to_explain() {
    let dir = webapp_context("print('v1')\n");
    let build = webapp_build(dir.path());
    let previous = recorded(&build, None, WEBAPP_CACHED);
    let current = recorded(&build, Some(&previous), WEBAPP_CACHED);
    let e = explained(Some(&previous), &current, WEBAPP_CACHED);
    assert_eq!(e.cached_count(), (10, 10));
    assert!(e.rows.iter().all(|r| r.cause.is_none()));
    assert_eq!(e.summary(), "10/10 instructions cached; nothing rebuilt");
    // The rows are the Dockerfile's, in its order, with their lines.
    let shown: Vec<(String, usize, Option<usize>)> = e
        .rows
        .iter()
        .map(|r| (r.stage.clone(), r.step, r.line))
        .collect();
    assert_eq!(
        shown[..3],
        [
            ("meta".to_string(), 1, Some(8)),
            ("builder".to_string(), 2, Some(14)),
            ("builder".to_string(), 3, Some(16)),
        ]
    );
    assert_eq!(row(&e, "builder", 5).instruction, "COPY src/ /opt/app/lib/");
    assert_eq!(
        e.bases[0].digest.as_deref(),
        Some("sha256:ef8d36d83756cc7ca37bb18bdff0e5e2b74b74b32cd73627a85b0b99aeb3b1ce")
    );
    // The runtime stage's FROM was the builder's vertex: its base is found by image.
    assert_eq!(e.bases.len(), 2);
    assert_eq!(e.bases[0].digest, e.bases[1].digest);
}

#[test]
fn a_changed_source_file_is_named_with_its_instruction_and_line() {
    let dir = webapp_context("print('v1')\n");
    let build = webapp_build(dir.path());
    let previous = recorded(&build, None, WEBAPP_CACHED);
    std::fs::write(dir.path().join("src/webapp/server.py"), "print('v2')\n").unwrap();
    std::fs::write(dir.path().join("notes.md"), "changed, but never copied\n").unwrap();
    let current = recorded(&build, Some(&previous), WEBAPP_SRC_CHANGED);
    let e = explained(Some(&previous), &current, WEBAPP_SRC_CHANGED);
    let copy = row(&e, "builder", 5);
    assert_eq!(copy.line, Some(23));
    assert_eq!(
        copy.cause,
        Some(Cause::FilesChanged {
            files: vec!["src/webapp/server.py".into()]
        })
    );
    assert_eq!(
        row(&e, "builder", 6).cause,
        Some(Cause::EarlierRebuilt {
            instruction: "COPY src/ /opt/app/lib/".into(),
            line: Some(23)
        })
    );
    assert_eq!(
        row(&e, "runtime", 3).cause,
        Some(Cause::StageRebuilt {
            stage: "builder".into(),
            instruction: "COPY src/ /opt/app/lib/".into(),
            line: Some(23)
        })
    );
    assert_eq!(
        e.summary(),
        "5/10 instructions cached; first rebuilt: COPY src/ /opt/app/lib/ \
         (Dockerfile.production:23) because src/webapp/server.py changed"
    );
    // A file that no instruction copies is not recorded at all.
    assert!(!current.context_files.contains_key("notes.md"));
    assert!(current.context_files.contains_key("src/webapp/server.py"));
}

/// Another build of the same steps at the same time on the same builder: BuildKit merges
/// the two and reports the other's vertex of a step in this build's progress too, under its
/// own digest. The step is still one row, with what happened to it here.
#[test]
fn a_step_reported_twice_by_a_concurrent_build_is_one_row() {
    let dir = webapp_context("print('v1')\n");
    let build = webapp_build(dir.path());
    let previous = recorded(&build, None, WEBAPP_CACHED);
    std::fs::write(dir.path().join("src/webapp/server.py"), "print('v2')\n").unwrap();
    let other = |step: &str, text: &str| {
        format!(
            "{{\"vertexes\":[{{\"digest\":\"sha256:{}\",\"name\":\"[builder {step}] \
             {text}\",\"started\":\"2026-12-06T19:55:31.9Z\",\"completed\":\
             \"2026-12-06T19:55:31.9Z\",\"cached\":true}}]}}\n",
            step.len().to_string().repeat(64)
        )
    };
    let progress = format!(
        "{WEBAPP_SRC_CHANGED}{}{}",
        other("2/6", "WORKDIR /build"),
        other("6/6", "RUN python3 -m compileall -q /opt/app/lib")
    );
    let current = recorded(&build, Some(&previous), &progress);
    let e = explained(Some(&previous), &current, &progress);
    assert_eq!(e.cached_count(), (5, 10), "{e}");
    assert!(row(&e, "builder", 2).cached());
    // Run here (after the changed COPY), cached in the other build: run.
    assert_eq!(
        row(&e, "builder", 6).cause,
        Some(Cause::EarlierRebuilt {
            instruction: "COPY src/ /opt/app/lib/".into(),
            line: Some(23)
        })
    );
}

#[test]
fn many_changed_files_are_counted_after_the_first_few() {
    let cause = Cause::FilesChanged {
        files: ["a.py", "b.py", "c.py", "d.py", "e.py"]
            .map(String::from)
            .to_vec(),
    };
    assert_eq!(
        cause.text("Dockerfile"),
        "a.py, b.py, c.py changed (+2 more files)"
    );
    assert_eq!(
        cause.short_text("Dockerfile"),
        "a.py changed (+4 more files)"
    );
}

#[test]
fn a_changed_build_arg_is_named_without_its_value() {
    let dir = webapp_context("print('v1')\n");
    let previous = recorded(&webapp_build(dir.path()), None, WEBAPP_CACHED);
    let build = webapp_build(dir.path()).build_arg("APP_UID", "10002");
    let current = recorded(&build, Some(&previous), WEBAPP_ARG_CHANGED);
    let e = explained(Some(&previous), &current, WEBAPP_ARG_CHANGED);
    let run = row(&e, "runtime", 2);
    assert_eq!(run.line, Some(30));
    assert_eq!(
        run.cause,
        Some(Cause::BuildArgChanged {
            names: vec!["APP_UID".into()]
        })
    );
    let summary = e.summary();
    assert!(
        summary.ends_with("because build arg APP_UID changed"),
        "{summary}"
    );
    assert!(!summary.contains("10002"));
    // The builder stage does not declare APP_UID: nothing of it was rebuilt.
    assert!(e
        .rows
        .iter()
        .filter(|r| r.stage == "builder")
        .all(|r| r.cached()));
}

#[test]
fn a_first_build_has_no_previous_record() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let build = Build::new(dir.path());
    let current = recorded(&build, None, BUSYBOX_FIRST);
    let e = explained(None, &current, BUSYBOX_FIRST);
    assert_eq!(row(&e, "stage-0", 2).cause, Some(Cause::NoPreviousRecord));
    assert_eq!(
        row(&e, "stage-0", 3).cause,
        Some(Cause::EarlierRebuilt {
            instruction: "WORKDIR /w".into(),
            line: Some(3)
        })
    );
    assert!(e.to_string().contains("no previous build recorded here"));
}

#[test]
fn a_cache_source_that_was_not_imported_is_named_with_the_engines_error() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let build = Build::new(dir.path())
        .cache_from(crate::docker::cache::Cache::local("/tmp/why-rec/nonexist"))
        .cache_from(crate::docker::cache::Cache::registry(
            "127.0.0.1:5000/none/x:cache",
        ));
    let previous = recorded(&build, None, BUSYBOX_FIRST);
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    assert_eq!(
        current.cache_imports,
        [
            CacheImport {
                source: "type=local,src=/tmp/why-rec/nonexist".into(),
                status: ImportStatus::Failed {
                    error: "could not lock /tmp/why-rec/nonexist/index.json.lock: open \
                            /tmp/why-rec/nonexist/index.json.lock: no such file or directory"
                        .into()
                }
            },
            CacheImport {
                source: "type=registry,ref=127.0.0.1:5000/none/x:cache".into(),
                status: ImportStatus::Failed {
                    error: "failed to configure registry cache importer: \
                            127.0.0.1:5000/none/x:cache: not found"
                        .into()
                }
            }
        ]
    );
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    match &row(&e, "stage-0", 2).cause {
        Some(Cause::CacheNotImported { source, error }) => {
            assert_eq!(source, "type=local,src=/tmp/why-rec/nonexist");
            assert!(error.contains("no such file or directory"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_moved_base_image_names_both_digests() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let build = Build::new(dir.path());
    let mut previous = recorded(&build, None, BUSYBOX_FIRST);
    previous.bases[0].digest = Some("sha256:0123456789abcdef".into());
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    assert_eq!(
        row(&e, "stage-0", 2).cause,
        Some(Cause::BaseImageMoved {
            image: "docker.io/buildkit-local/busybox:latest".into(),
            old: "sha256:0123456789abcdef".into(),
            new: "sha256:357ff2191248e2aa587bdbc5a0741cd82fe5403cdf30f930b775580e0ae522d9".into(),
        })
    );
    assert!(e.summary().ends_with(
        "because base image docker.io/buildkit-local/busybox:latest moved \
         (sha256:0123456789ab → sha256:357ff2191248)"
    ));
    // For another platform, another digest is the platform's, not a moved base.
    previous.platforms = vec!["linux/arm64".into()];
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    assert_eq!(
        row(&e, "stage-0", 2).cause,
        Some(Cause::PlatformChanged {
            old: "linux/arm64".into(),
            new: "the builder's own".into()
        })
    );
}

#[test]
fn an_instruction_whose_text_changed_is_quoted_before_and_after() {
    let before = BUSYBOX_DOCKERFILE.replace("WORKDIR /w", "WORKDIR /old");
    let dir = busybox_context(&before, "b\n");
    let build = Build::new(dir.path());
    let previous = recorded(&build, None, BUSYBOX_FIRST);
    std::fs::write(dir.path().join("Dockerfile"), BUSYBOX_DOCKERFILE).unwrap();
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    assert_eq!(
        row(&e, "stage-0", 2).cause,
        Some(Cause::InstructionChanged {
            line: Some(3),
            old: Some("WORKDIR /old".into()),
            new: Some("WORKDIR /w".into()),
        })
    );
    // An ENV (no step of its own) that changed is named by the step after it.
    let env_before = BUSYBOX_DOCKERFILE.replace("COPY a.txt ./", "ENV A=1\nCOPY a.txt ./");
    let env_after = BUSYBOX_DOCKERFILE.replace("COPY a.txt ./", "ENV A=2\nCOPY a.txt ./");
    std::fs::write(dir.path().join("Dockerfile"), &env_before).unwrap();
    let previous = recorded(&build, None, BUSYBOX_FIRST);
    std::fs::write(dir.path().join("Dockerfile"), &env_after).unwrap();
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    assert_eq!(
        row(&e, "stage-0", 3).cause,
        Some(Cause::InstructionChanged {
            line: Some(4),
            old: Some("ENV A=1".into()),
            new: Some("ENV A=2".into()),
        })
    );
}

#[test]
fn a_rebuild_with_unchanged_inputs_is_unknown_and_says_so() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let build = Build::new(dir.path());
    let previous = recorded(&build, None, BUSYBOX_FIRST_OLDEST);
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST_OLDEST);
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST_OLDEST);
    assert_eq!(row(&e, "stage-0", 2).cause, Some(Cause::Unknown));
    assert!(e
        .summary()
        .ends_with("because unknown — BuildKit rebuilt it although its inputs are unchanged"));
    // Another builder, or other platforms, are named instead.
    let mut elsewhere = previous.clone();
    elsewhere.builder = "ci on unix:///other.sock".into();
    let e = explained(Some(&elsewhere), &current, BUSYBOX_FIRST_OLDEST);
    assert!(matches!(
        row(&e, "stage-0", 2).cause,
        Some(Cause::BuilderChanged { .. })
    ));
    let mut other_platform = previous.clone();
    other_platform.platforms = vec!["linux/arm64".into()];
    let e = explained(Some(&other_platform), &current, BUSYBOX_FIRST_OLDEST);
    assert_eq!(
        row(&e, "stage-0", 2).cause,
        Some(Cause::PlatformChanged {
            old: "linux/arm64".into(),
            new: "the builder's own".into()
        })
    );
    let no_cache = recorded(
        &build.clone().no_cache(true),
        Some(&previous),
        BUSYBOX_FIRST,
    );
    let e = explained(Some(&previous), &no_cache, BUSYBOX_FIRST);
    assert_eq!(row(&e, "stage-0", 2).cause, Some(Cause::NoCache));
}

#[test]
fn buildx_0_13_indented_objects_read_the_same() {
    let (new, _) = ProgressReader::read_all(BUSYBOX_FIRST.as_bytes());
    let (old, text) = ProgressReader::read_all(BUSYBOX_FIRST_OLDEST.as_bytes());
    let names = |r: &ProgressReader| {
        let mut n: Vec<String> = r
            .vertexes()
            .iter()
            .filter(|v| v.name.starts_with("[stage-0") && !v.name.contains("FROM"))
            .map(|v| v.name.clone())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&new), names(&old));
    assert_eq!(names(&old).len(), 12);
    // The human progress reads like `--progress=plain`.
    assert!(text.contains("] WORKDIR /w\n"), "{text}");
    assert!(text.contains(" DONE "), "{text}");
    assert!(
        text.contains("\n#1 [internal] load build definition from Dockerfile\n")
            || text.starts_with("#1 [internal] load build definition from Dockerfile\n"),
        "{text}"
    );
    assert!(!text.contains("\"vertexes\""), "{text}");
    // Each outcome line follows its vertex's name, as with `--progress=plain`.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.ends_with(" CACHED") || line.contains(" DONE ") {
            let number = line.split(' ').next().unwrap();
            assert!(
                lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| !l.is_empty())
                    .any(|l| l.starts_with(&format!("{number} ["))
                        || l.starts_with(&format!("{number} ")) && !l.contains(" DONE ")),
                "{line} does not follow its name:\n{text}"
            );
        }
    }
}

#[test]
fn a_failed_build_shows_the_error_the_log_and_what_was_never_reached() {
    let dir = busybox_context(BUSYBOX_FAIL_DOCKERFILE, "b\n");
    let build = Build::new(dir.path());
    let previous = recorded(&build, None, BUSYBOX_FAILED);
    let build = build.build_arg("FAIL", "3").build_arg("TOKEN_ID", "abc");
    let current = recorded(&build, Some(&previous), BUSYBOX_FAILED);
    let (reader, text) = ProgressReader::read_all(BUSYBOX_FAILED.as_bytes());
    let e = explain(Some(&previous), &current, reader.vertexes());
    let last = row(&e, "stage-0", 13);
    assert!(matches!(&last.outcome, Outcome::Failed { error } if error.contains("exit code: 3")));
    assert_eq!(
        row(&e, "stage-0", 4).cause,
        Some(Cause::BuildArgChanged {
            names: vec!["TOKEN_ID".into()]
        })
    );
    // The RUN's output and buildx's own error text are in the human progress.
    assert!(text.contains(" line2\n"), "{text}");
    assert!(text.contains("ERROR: process \"/bin/sh -c echo"), "{text}");
    assert!(text.contains(">>> RUN echo \"$TOKEN_ID\""), "{text}");

    let dir = context(&[("Dockerfile", STAGES_DOCKERFILE), ("x.txt", "x\n")]);
    let build = Build::new(dir.path());
    let current = recorded(&build, None, STAGES_FAILED);
    let e = explained(None, &current, STAGES_FAILED);
    // `FROM a AS b` counts no step of its own; the unnamed last stage is `stage-2`.
    assert_eq!(row(&e, "b", 1).instruction, "ADD x.txt /x");
    assert_eq!(row(&e, "b", 1).line, Some(5));
    assert_eq!(row(&e, "stage-2", 1).outcome, Outcome::NotReached);
    assert_eq!(row(&e, "stage-2", 1).cause, None);
    assert!(matches!(row(&e, "b", 2).outcome, Outcome::Failed { .. }));
}

#[test]
fn a_local_cache_that_was_imported_and_a_changed_file() {
    let dir = busybox_context(BUSYBOX_FAIL_DOCKERFILE, "b\n");
    let build = Build::new(dir.path())
        .cache_from(crate::docker::cache::Cache::local("/tmp/why-rec/lc"))
        .cache_from(crate::docker::cache::Cache::registry(
            "127.0.0.1:5000/none/x:cache",
        ));
    let previous = recorded(&build, None, BUSYBOX_LOCAL_CACHE);
    std::fs::write(dir.path().join("b.txt"), "b2\n").unwrap();
    let current = recorded(&build, Some(&previous), BUSYBOX_LOCAL_CACHE);
    assert_eq!(current.cache_imports[0].status, ImportStatus::Imported);
    let e = explained(Some(&previous), &current, BUSYBOX_LOCAL_CACHE);
    assert_eq!(
        row(&e, "stage-0", 12).cause,
        Some(Cause::FilesChanged {
            files: vec!["b.txt".into()]
        })
    );
}

#[test]
fn secrets_are_kept_as_identities_and_their_change_is_reported_without_them() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let secret = dir.path().join("tok");
    let build = Build::new(dir.path())
        .secret_file("tok", &secret)
        .build_arg("TOKEN_ID", "ghp_0123456789abcdefABCDEF0123456789abcd");
    let previous = recorded(&build, None, BUSYBOX_FIRST);
    let again = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    assert_eq!(again.secrets, previous.secrets, "same value, same identity");
    assert_eq!(again.salt, previous.salt, "the salt is carried over");
    std::fs::write(&secret, "sekrit-value-2\n").unwrap();
    let current = recorded(&build, Some(&previous), BUSYBOX_FIRST);
    assert_ne!(current.secrets["tok"], previous.secrets["tok"]);
    let e = explained(Some(&previous), &current, BUSYBOX_FIRST);
    assert_eq!(e.secrets_changed, ["tok"]);
    let record = ExplainRecord {
        written: "now".into(),
        summary: e.summary(),
        explanation: e.clone(),
        inputs: current.clone(),
    };
    let json = serde_json::to_string(&record).unwrap();
    for value in ["sekrit-value", "ghp_0123456789"] {
        assert!(!json.contains(value), "{value} in the record");
        assert!(!e.to_string().contains(value), "{value} in the text");
    }
    assert!(current.hidden_args.contains_key("TOKEN_ID"));
    assert!(e
        .to_string()
        .contains("secrets changed since the previous build: tok"));
}

#[test]
fn copy_sources_match_the_files_they_take() {
    use super::record::{copy_sources, matches_path, RecordedInstruction};
    let vars = [("SRC".to_string(), "app".to_string())]
        .into_iter()
        .collect();
    let copy = |text: &str| {
        copy_sources(
            &RecordedInstruction {
                keyword: text.split(' ').next().unwrap().to_string(),
                text: text.to_string(),
                line: 1,
            },
            &vars,
        )
        .unwrap()
    };
    let s = copy("COPY --chown=app --exclude=*.md ${SRC}/ requirements*.txt /dst/");
    assert_eq!(s.patterns, ["app/", "requirements*.txt"]);
    assert!(s.takes("app/x/y.py") && s.takes("requirements-prod.txt"));
    assert!(!s.takes("app/README.md") && !s.takes("apps/x.py"));
    let s = copy("COPY [\"a b.txt\", \"./c\", \"/dst\"]");
    assert_eq!(s.patterns, ["a b.txt", "./c"]);
    assert!(copy("COPY $UNSET /x").takes("anything"));
    assert!(copy("ADD https://example.org/x.tgz /x").patterns.is_empty());
    assert_eq!(
        copy("COPY --from=builder /opt /opt").from.as_deref(),
        Some("builder")
    );
    assert!(matches_path(".", "x/y"));
    assert!(matches_path("src/**/*.py", "src/a/b/c.py"));
    assert!(matches_path("[ab].txt", "b.txt") && !matches_path("[^ab].txt", "b.txt"));
}

#[test]
fn a_step_two_stages_share_is_named_as_the_stages_own() {
    // BuildKit ran `RUN echo a` once for both stages (same base, same text): the second
    // stage's next step names its own line, not the other stage.
    let dockerfile = "FROM busybox AS one\nRUN echo a\nRUN echo one\n\
                      FROM busybox AS two\nRUN echo a\nRUN echo two\n";
    let dir = context(&[("Dockerfile", dockerfile)]);
    let build = Build::new(dir.path());
    let current = recorded(&build, None, "");
    let vertex = |digest: &str, name: &str, inputs: &[&str]| Vertex {
        digest: digest.into(),
        name: name.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        started: Some("2026-01-01T00:00:00Z".into()),
        completed: Some("2026-01-01T00:00:01Z".into()),
        ..Vertex::default()
    };
    let vertexes = [
        vertex(
            "f",
            "[one 1/3] FROM docker.io/library/busybox:latest@sha256:1",
            &[],
        ),
        vertex("a", "[one 2/3] RUN echo a", &["f"]),
        vertex("o", "[one 3/3] RUN echo one", &["a"]),
        vertex("t", "[two 3/3] RUN echo two", &["a"]),
    ];
    let e = explain(None, &current, &vertexes);
    assert_eq!(
        row(&e, "two", 3).cause,
        Some(Cause::EarlierRebuilt {
            instruction: "RUN echo a".into(),
            line: Some(5)
        })
    );
    assert_eq!(
        row(&e, "one", 3).cause,
        Some(Cause::EarlierRebuilt {
            instruction: "RUN echo a".into(),
            line: Some(2)
        })
    );
}

#[test]
fn the_pipelines_listing_of_the_context_is_reused_not_walked_again() {
    let dir = busybox_context(BUSYBOX_DOCKERFILE, "b\n");
    let build = Build::new(dir.path());
    let hashes = FileHashes::in_memory();
    // What the pipeline's fingerprint left for this context in this run: a listing that
    // differs from the disk, so that reading it shows it was not walked again.
    let key = dir.path().join("\0").join(dir.path().join("Dockerfile"));
    hashes.remember_context(
        &key,
        std::sync::Arc::new(crate::pipeline::filehash::ContextListing {
            fingerprint: "fp".into(),
            files: vec![("a.txt".into(), "644:from-the-fingerprint".into())],
        }),
    );
    let inputs = collect(&build, &Runner::new(), Some(&hashes), None).unwrap();
    assert_eq!(
        inputs.context_files.get("a.txt").map(String::as_str),
        Some("644:from-the-fingerprint")
    );
    assert!(!inputs.context_files.contains_key("b.txt"));
}

/// The production-shaped fixture at real size: a one-file change in its 5,000-file context
/// is named as the cause of its COPY, and the record round-trips at that size.
#[test]
fn a_change_in_the_mediaserver_context_names_the_file() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/mediaserver");
    // Its generated context: the generator writes only missing or different files,
    // atomically, so test processes running it side by side are safe.
    let generate = crate::cmd::Cmd::new("python3")
        .arg(app.join("generate.py").display().to_string())
        .arg("--quiet");
    if let Err(e) = Runner::new()
        .echo(crate::cmd::Echo::Silent)
        .capture(&generate)
    {
        panic!("python3 fixtures/mediaserver/generate.py failed: {e}");
    }
    let build = Build::new(&app)
        .dockerfile(app.join("Dockerfile"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11");
    let hashes = FileHashes::in_memory();
    let previous = collect(&build, &Runner::new(), Some(&hashes), None).unwrap();
    let mut current = previous.clone();
    let files = current.context_files.len();
    assert!(files > 5_000, "{files} files: generate the fixture first");
    current
        .context_files
        .insert("app/views.py".into(), "644:changed".into());
    // Every step rebuilt: the most work the comparison can have.
    let mut vertexes = Vec::new();
    for stage in &current.stages {
        let steps: Vec<&RecordedInstruction> = stage
            .instructions
            .iter()
            .filter(|i| super::rows::is_step(&i.keyword))
            .collect();
        let total = steps.len() + 1;
        for (n, i) in steps.iter().enumerate() {
            vertexes.push(Vertex {
                digest: format!("{}-{n}", stage.name),
                name: format!(
                    "[{} {}/{total}] {}",
                    stage.name,
                    n + 2,
                    i.text.lines().next().unwrap()
                ),
                started: Some("2026-01-01T00:00:00Z".into()),
                completed: Some("2026-01-01T00:00:01Z".into()),
                ..Vertex::default()
            });
        }
    }
    let e = explain(Some(&previous), &current, &vertexes);
    // The record round-trips at this size.
    let record = ExplainRecord {
        written: String::new(),
        summary: e.summary(),
        explanation: e.clone(),
        inputs: current,
    };
    let json = serde_json::to_string(&record).unwrap();
    let back: ExplainRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back.summary, e.summary());
    let copy = e
        .rows
        .iter()
        .find(|r| {
            r.instruction
                .starts_with("COPY --chown=mediaserver:mediaserver app/")
        })
        .unwrap();
    assert_eq!(
        copy.cause,
        Some(Cause::FilesChanged {
            files: vec!["app/views.py".into()]
        })
    );
}

#[test]
fn text_lines_keep_their_indentation() {
    let stream = "{\"vertexes\":[]}\n   1 | >>> FROM python:3.12-slim\n\
                  ERROR: failed to solve\n  \n\t2 | RUN true";
    let (reader, text) = ProgressReader::read_all(stream.as_bytes());
    assert_eq!(
        reader.text_lines(),
        [
            "   1 | >>> FROM python:3.12-slim",
            "ERROR: failed to solve",
            "\t2 | RUN true"
        ]
    );
    assert!(
        text.lines()
            .any(|l| l == "   1 | >>> FROM python:3.12-slim"),
        "{text:?}"
    );
}

/// The reader takes the stream as read, an object cut anywhere, and renders plain text.
#[test]
fn the_progress_reader_renders_plain_text_from_objects_cut_anywhere() {
    let mut reader = ProgressReader::new();
    let mut text = reader.push(br#"{"vertexes":[{"digest":"sha256:a","name":"[1/2] FROM x","#);
    text.extend(reader.push(
        br#""started":"2026-01-01T00:00:00Z","cached":true,"completed":"2026-01-01T00:00:00Z"}]}"#,
    ));
    text.extend(reader.finish());
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "#1 [1/2] FROM x\n#1 CACHED\n"
    );
    assert!(reader.vertexes()[0].cached);
}

/// A build's progress, streamed through a step's runner, shows and logs no blank line (a
/// bare `[image] ` on the terminal): the plain rendering's separators are left out.
#[test]
fn build_progress_shows_and_logs_no_blank_lines() {
    let (_, plain) = ProgressReader::read_all(BUSYBOX_FAILED.as_bytes());
    assert!(plain.lines().any(|l| l.trim_end().is_empty()), "{plain}");

    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("progress.rawjson");
    std::fs::write(&stream, BUSYBOX_FAILED).unwrap();
    let log = dir.path().join("image.log");
    let runner = Runner::new()
        .echo(crate::cmd::Echo::Quiet)
        .log_to(&log)
        .prefix("image");
    let mut reader = ProgressReader::new();
    let cat = crate::Cmd::new("cat").arg(&stream);
    runner.run_filtered(&cat, Some(&mut reader)).unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("\n#1 [internal] load build definition from Dockerfile\n"),
        "{logged}"
    );
    assert!(logged.contains(" line2\n"), "{logged}");
    assert!(
        logged.contains("ERROR: process \"/bin/sh -c echo"),
        "{logged}"
    );
    assert!(!logged.lines().any(|l| l.trim_end().is_empty()), "{logged}");
    assert_eq!(
        reader.vertexes().len(),
        ProgressReader::read_all(BUSYBOX_FAILED.as_bytes())
            .0
            .vertexes()
            .len()
    );
}

/// The set-up checks read the Dockerfile and the context, and cite the line to fix.
#[test]
fn a_copy_before_the_install_is_found_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "flask\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n",
    )
    .unwrap();
    let warnings = Build::new(dir.path())
        .cache_setup_warnings(&Runner::new())
        .unwrap();
    assert_eq!(warnings[0].check, CacheCheck::CopyBeforeInstall);
    assert_eq!(warnings[0].line, Some(2));
}

#[test]
fn a_runs_cache_mounts_are_read_by_the_id_buildkit_keeps_them_under() {
    let run = |text: &str| RecordedInstruction {
        keyword: "RUN".into(),
        text: text.into(),
        line: 1,
    };
    assert_eq!(
        super::cause::cache_mounts(&run("RUN --mount=type=cache,target=/root/.cache/pip \
             --mount=type=cache,id=apt,target=/var/cache/apt,sharing=locked \
             --mount=type=secret,id=tok --mount=type=bind,target=/src \
             --mount=type=cache,from=seed,target=/seeded pip install .")),
        ["/root/.cache/pip", "apt"]
    );
    // A mount flag's words after the command are the command's, not a mount.
    assert_eq!(
        super::cause::cache_mounts(&run("RUN echo --mount=type=cache,target=/x")),
        Vec::<String>::new()
    );
    let copy = RecordedInstruction {
        keyword: "COPY".into(),
        text: "COPY --mount=type=cache,target=/x a b".into(),
        line: 1,
    };
    assert_eq!(super::cause::cache_mounts(&copy), Vec::<String>::new());
    let one = Cause::UnknownWithCacheMounts {
        mounts: vec!["/root/.cache/pip".into()],
    };
    assert_eq!(
        one.to_string(),
        "unknown — BuildKit rebuilt it although its inputs are unchanged; not its cache \
         mount /root/.cache/pip: BuildKit does not key a RUN's cache on what a cache mount \
         holds"
    );
    let two = Cause::UnknownWithCacheMounts {
        mounts: vec!["apt".into(), "pip".into()],
    };
    assert!(two
        .to_string()
        .contains("; not its cache mounts apt, pip: "));
    assert!(!one.is_consequence());
}

#[test]
fn a_local_cache_bake_names_relative_to_its_file_is_matched_to_its_directory() {
    let mut inputs = CacheInputs {
        cache_imports: vec![
            CacheImport {
                source: "type=local,src=/work/app/api-cache".into(),
                status: ImportStatus::NotReported,
            },
            CacheImport {
                source: "type=local,src=/work/app/other-cache".into(),
                status: ImportStatus::NotReported,
            },
        ],
        ..CacheInputs::default()
    };
    let lines = [
        "WARNING: local cache import at api-cache not found due to err: could not lock \
                  api-cache/index.json.lock: open api-cache/index.json.lock: no such file or \
                  directory"
            .to_string(),
    ];
    inputs.observe(&[], &lines);
    assert_eq!(
        inputs.cache_imports[0].status,
        ImportStatus::Failed {
            error: "could not lock api-cache/index.json.lock: open api-cache/index.json.lock: \
                    no such file or directory"
                .into()
        }
    );
    // Another directory's warning is not this one's.
    assert_eq!(inputs.cache_imports[1].status, ImportStatus::NotReported);
}

#[test]
fn a_fan_outs_platforms_are_one_explanation_each_row_naming_its_platform() {
    let row = |instruction: &str, outcome: Outcome| InstructionRow {
        stage: "stage-0".into(),
        platform: None,
        step: 1,
        steps: 1,
        line: Some(2),
        instruction: instruction.into(),
        outcome,
        seconds: None,
        cause: None,
    };
    let import = CacheImport {
        source: "type=registry,ref=r/app:cache".into(),
        status: ImportStatus::Imported,
    };
    let amd = Explanation {
        dockerfile: "Dockerfile".into(),
        rows: vec![row("RUN make", Outcome::Cached)],
        cache_imports: vec![import.clone()],
        previous_record: true,
        progress_read: true,
        ..Explanation::default()
    };
    let arm = Explanation {
        rows: vec![row("RUN make", Outcome::Built)],
        secrets_changed: vec!["token".into()],
        previous_record: false,
        ..amd.clone()
    };
    assert_eq!(merge_platforms(Vec::new()), None);
    let merged = merge_platforms(vec![
        ("linux/amd64".into(), amd),
        ("linux/arm64".into(), arm),
    ])
    .unwrap();
    let platforms: Vec<Option<&str>> = merged
        .rows()
        .iter()
        .map(|r| r.platform.as_deref())
        .collect();
    assert_eq!(platforms, [Some("linux/amd64"), Some("linux/arm64")]);
    assert_eq!(merged.cached_count(), (1, 2));
    assert_eq!(merged.cache_imports(), [import]);
    assert_eq!(merged.secrets_changed, ["token"]);
    assert!(
        !merged.previous_record,
        "one platform had no previous record"
    );
    assert!(merged.progress_read);
    assert!(merged
        .summary()
        .starts_with("1/2 instructions cached; first rebuilt: RUN make"));
}
