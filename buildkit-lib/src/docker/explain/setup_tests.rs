//! The cache set-up checks: each one fires on the set-up it is for, and stays quiet on
//! the look-alikes that are fine (a dependency list copied alone, a commented-out line, a
//! build arg declared where it costs nothing).

use std::collections::BTreeMap;

use super::setup::{check, installs_dependencies, volatile_value};
use super::tests::context;
use super::{CacheCheck, CacheWarning};
use crate::docker::build::Build;
use crate::docker::cache::Cache;

/// The warnings of `build` (of a context holding `files`) with `Dockerfile` `text` and the
/// environment `env`.
fn warnings_with(
    text: &str,
    files: &[(&str, &str)],
    env: &[(&str, &str)],
    build: impl FnOnce(Build) -> Build,
) -> Vec<CacheWarning> {
    let dir = context(files);
    std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let build = build(Build::new(dir.path()));
    check(&build, text, &|k| env.get(k).cloned())
}

fn of(warnings: &[CacheWarning], check: CacheCheck) -> Vec<&CacheWarning> {
    warnings.iter().filter(|w| w.check == check).collect()
}

const PYTHON_FILES: &[(&str, &str)] = &[
    ("requirements.txt", "flask==3.0\n"),
    ("app/main.py", "print('hi')\n"),
    ("svc/pyproject.toml", "[project]\nname = 'svc'\n"),
    ("svc/svc.py", ""),
    ("src/lib.py", ""),
];

#[test]
fn copying_the_whole_context_before_the_install_is_found_at_the_copy() {
    let text = "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\n\
                RUN pip install --no-cache-dir -r requirements.txt\nCMD [\"python\"]\n";
    let w = warnings_with(text, PYTHON_FILES, &[], |b| b);
    let found = of(&w, CacheCheck::CopyBeforeInstall);
    assert_eq!(found.len(), 1, "{w:#?}");
    let found = found[0];
    assert_eq!(found.line, Some(3));
    assert!(found.file.as_deref().unwrap().ends_with("/Dockerfile"));
    assert!(
        found.message.starts_with(
            "`COPY . .` (Dockerfile:3) copies the whole build context before `RUN pip \
             install --no-cache-dir -r requirements.txt` (Dockerfile:4) installs"
        ),
        "{}",
        found.message
    );
    assert!(found.fix.contains("copy the dependency lists alone first"));
    assert!(found
        .to_string()
        .contains("\n  fix: copy the dependency lists"));
}

#[test]
fn copying_a_folder_that_holds_the_dependency_list_is_found_too() {
    let text = "FROM python:3.12-slim\nCOPY svc/ /srv/\nRUN cd /srv && poetry install\n";
    let w = warnings_with(text, PYTHON_FILES, &[], |b| b);
    let found = of(&w, CacheCheck::CopyBeforeInstall);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert!(found[0]
        .message
        .contains("copies a folder that holds the dependency list"));
    assert!(found[0].message.contains("(poetry install)"));
}

#[test]
fn the_dependency_list_copied_alone_first_is_the_right_order() {
    // The list alone, the install, then everything (and the project itself installed).
    let text = "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt pyproject.toml* ./\n\
                RUN pip install -r requirements.txt\nCOPY . .\nRUN pip install --no-deps .\n";
    assert_eq!(warnings_with(text, PYTHON_FILES, &[], |b| b), []);
    // A commented-out COPY does not count, nor does a commented install.
    let text = "FROM python:3.12-slim\n# COPY . .\nCOPY requirements.txt .\n\
                RUN pip install -r requirements.txt \\\n    # && pip install . \\\n    && true\n\
                COPY . .\n# RUN pip install -r requirements.txt\n";
    assert_eq!(warnings_with(text, PYTHON_FILES, &[], |b| b), []);
    // A folder without a dependency list, a tool upgrade, a copy from another stage, a
    // system package install: none of them is a dependency install after a broad copy.
    let text = "FROM python:3.12-slim AS base\nRUN echo base\n\
                FROM base\nCOPY src/ /app/src/\nRUN pip install flask\nCOPY . /app\n\
                RUN pip install --upgrade pip setuptools wheel\nRUN apt-get install -y curl\n\
                COPY --from=base /etc/os-release /x\nRUN python -m pip install --no-deps /app\n";
    let w = warnings_with(text, PYTHON_FILES, &[], |b| b);
    assert_eq!(
        of(&w, CacheCheck::CopyBeforeInstall),
        Vec::<&CacheWarning>::new()
    );
}

#[test]
fn a_stage_the_build_does_not_reach_is_not_checked() {
    let text = "FROM python:3.12-slim AS dev\nCOPY . .\nRUN pip install -r requirements.txt\n\
                FROM python:3.12-slim AS runtime\nCOPY requirements.txt .\n\
                RUN pip install -r requirements.txt\n";
    assert_eq!(
        warnings_with(text, PYTHON_FILES, &[], |b| b.target("runtime")),
        []
    );
    let w = warnings_with(text, PYTHON_FILES, &[], |b| b.target("dev"));
    assert_eq!(of(&w, CacheCheck::CopyBeforeInstall).len(), 1);
}

#[test]
fn installers_are_told_from_look_alikes() {
    for run in [
        "RUN pip install -r requirements.txt",
        "RUN --mount=type=cache,target=/root/.cache/pip python3 -m pip install .",
        "RUN pip install --upgrade pip && pip install -r requirements.txt",
        "RUN uv sync --frozen",
        "RUN poetry install --no-root",
        "RUN pip wheel --wheel-dir /w -r /tmp/requirements.txt",
        "RUN npm ci",
    ] {
        assert!(installs_dependencies(run).is_some(), "{run}");
    }
    for run in [
        "RUN pip install --upgrade pip",
        "RUN pip install -U pip==24.0 setuptools \"wheel>=0.42\"",
        "RUN pipx install poetry",
        "RUN apt-get install -y python3-pip",
        "RUN echo 'pip-installer' > /x",
        "RUN mypip install x",
    ] {
        assert_eq!(installs_dependencies(run), None, "{run}");
    }
}

const TWO_STAGES: &str = "ARG PYTHON_IMAGE=python:3.12-slim\n\
                          FROM ${PYTHON_IMAGE} AS builder\n\
                          RUN python3 -m venv /opt/venv\n\
                          FROM ${PYTHON_IMAGE} AS runtime\n\
                          COPY --from=builder /opt/venv /opt/venv\n\
                          CMD [\"python3\"]\n";

#[test]
fn a_mode_min_cache_of_a_build_that_copies_from_a_stage_that_runs_is_found() {
    let w = warnings_with(TWO_STAGES, &[], &[], |b| {
        b.target("runtime")
            .cache_to(Cache::registry("127.0.0.1:5000/app:cache"))
    });
    let found = of(&w, CacheCheck::ModeMinIntermediate);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert_eq!(found[0].line, Some(5), "at the COPY --from");
    assert!(
        found[0].message.contains(
            "it keeps the layers of `runtime` only, not those of `builder` (Dockerfile:2)"
        ),
        "{}",
        found[0].message
    );
    assert!(found[0].fix.contains("mode_max(true)"));
    // An inline cache is always mode=min: the fix names a registry cache.
    let w = warnings_with(TWO_STAGES, &[], &[], |b| b.cache_to(Cache::inline()));
    assert!(of(&w, CacheCheck::ModeMinIntermediate)[0]
        .fix
        .contains("an inline cache is always mode=min"));
}

#[test]
fn mode_max_or_nothing_to_lose_is_fine() {
    let registry = || Cache::registry("127.0.0.1:5000/app:cache");
    // mode=max keeps the builder's layers.
    let w = warnings_with(TWO_STAGES, &[], &[], |b| {
        b.cache_to(registry().mode_max(true))
    });
    assert_eq!(of(&w, CacheCheck::ModeMinIntermediate).len(), 0);
    // No cache export at all: nothing to say about its mode.
    assert_eq!(warnings_with(TWO_STAGES, &[], &[], |b| b), []);
    // A stage that only copies files costs nothing to rebuild; a stage the target builds
    // on is in the target's own layers.
    let text = "FROM busybox AS files\nCOPY a /a\nFROM busybox AS base\nRUN echo base\n\
                FROM base\nCOPY --from=files /a /a\n";
    let w = warnings_with(text, &[("a", "")], &[], |b| b.cache_to(registry()));
    assert_eq!(w, []);
}

#[test]
fn in_ci_a_cache_imported_and_never_exported_is_found() {
    let from = || Cache::registry("ghcr.io/o/app:cache");
    let text = "FROM busybox\nRUN true\n";
    let w = warnings_with(text, &[], &[("CI", "true")], |b| b.cache_from(from()));
    let found = of(&w, CacheCheck::CacheFromWithoutCacheTo);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert_eq!((found[0].file.as_deref(), found[0].line), (None, None));
    assert!(found[0]
        .message
        .contains("imports a cache (type=registry,ref=ghcr.io/o/app:cache) and exports none"));
    // Not in CI, CI=false, exported too, or turned off: nothing.
    assert_eq!(warnings_with(text, &[], &[], |b| b.cache_from(from())), []);
    assert_eq!(
        warnings_with(text, &[], &[("CI", "false")], |b| b.cache_from(from())),
        []
    );
    assert_eq!(
        warnings_with(text, &[], &[("CI", "true")], |b| b
            .cache_from(from())
            .cache_to(from().mode_max(true))),
        []
    );
    assert_eq!(
        warnings_with(text, &[], &[("CI", "1")], |b| b
            .cache_from(from())
            .skip_cache_check("cache/cache-from-without-cache-to")),
        []
    );
    // A name that is no check's is refused before the build runs, naming the checks.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
    assert_eq!(
        warnings_with(text, &[], &[("CI", "1")], |b| b
            .cache_from(from())
            .skip_cache_check("cache-from-without-cache-to")),
        [],
        "the name alone will do"
    );
    let err = Build::new(dir.path())
        .skip_cache_check("cache/cache-from-without-cache")
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names no cache set-up check")
            && err.contains("cache/copy-before-install, cache/mode-min-intermediate"),
        "{err}"
    );
    for check in CacheCheck::ALL {
        assert_eq!(CacheCheck::of_rule(&check.rule()), Some(check));
    }
}

#[test]
fn a_cache_warning_is_a_finding_with_its_rule_line_and_fix() {
    let w = CacheWarning {
        check: CacheCheck::CopyBeforeInstall,
        message: "COPY . . at Dockerfile:3".into(),
        fix: "copy requirements.txt first".into(),
        file: Some("app/Dockerfile".into()),
        line: Some(3),
    };
    let f = w.to_finding("ignored/Dockerfile");
    assert_eq!(f.rule, "cache/copy-before-install");
    assert_eq!(f.level, crate::Level::Warning);
    assert_eq!((f.file.as_str(), f.line), ("app/Dockerfile", Some(3)));
    assert_eq!(
        f.message,
        "COPY . . at Dockerfile:3\n  fix: copy requirements.txt first"
    );
    let nowhere = CacheWarning {
        file: None,
        line: None,
        ..w
    };
    assert_eq!(nowhere.to_finding("app/Dockerfile").file, "app/Dockerfile");
}

#[test]
fn a_build_arg_that_changes_every_run_declared_before_a_run_is_found_without_its_value() {
    let sha = "3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b";
    let text = "FROM busybox\nARG GIT_SHA\nRUN echo expensive\nLABEL revision=$GIT_SHA\n";
    let w = warnings_with(text, &[], &[], |b| b.build_arg("GIT_SHA", sha));
    let found = of(&w, CacheCheck::VolatileBuildArg);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert_eq!(found[0].line, Some(2));
    assert!(
        found[0].message.starts_with(
            "build arg GIT_SHA looks like a commit SHA, which changes on every run, and stage \
             `stage-0` declares it (Dockerfile:2) before `RUN echo expensive` (Dockerfile:3)"
        ),
        "{}",
        found[0].message
    );
    assert!(!found[0].to_string().contains(sha));
    // A date, a build number, a version carrying a commit.
    for (name, value, kind) in [
        ("BUILD_DATE", "2025-06-01T12:00:00Z", "a date or time"),
        ("BUILD_NUMBER", "4711", "a build number"),
        (
            "VERSION",
            "1.4.dev3+g1a2b3c4",
            "a version that carries a commit SHA",
        ),
    ] {
        let text = format!("FROM busybox\nARG {name}\nRUN true\n");
        let w = warnings_with(&text, &[], &[], |b| b.build_arg(name, value));
        let found = of(&w, CacheCheck::VolatileBuildArg);
        assert_eq!(found.len(), 1, "{name}: {w:#?}");
        assert!(found[0].message.contains(&format!("looks like {kind},")));
    }
}

#[test]
fn a_volatile_build_arg_that_no_run_sees_is_fine() {
    let sha = "3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b";
    for text in [
        // Declared after the last RUN: only the label sees it.
        "FROM busybox\nRUN echo expensive\nARG GIT_SHA\nLABEL revision=$GIT_SHA\n",
        // Declared before FROM only, and not used there: no stage sees it.
        "ARG GIT_SHA\nFROM busybox\nRUN echo expensive\n",
        // Never declared (buildx warns that it is unused; it keys nothing).
        "FROM busybox\nRUN echo expensive\n",
        // Declared in a comment only.
        "FROM busybox\n# ARG GIT_SHA\nRUN echo expensive\n",
    ] {
        assert_eq!(
            warnings_with(text, &[], &[], |b| b.build_arg("GIT_SHA", sha)),
            [],
            "{text}"
        );
    }
    // Values that stay the same from run to run.
    let text = "FROM busybox\nARG APP_UID\nARG VERSION\nARG PYTHON_IMAGE\nRUN true\n";
    let w = warnings_with(text, &[], &[], |b| {
        b.build_arg("APP_UID", "10001")
            .build_arg("VERSION", "1.4.2")
            .build_arg("PYTHON_IMAGE", "python:3.12-slim")
    });
    assert_eq!(w, []);
}

#[test]
fn volatile_values_are_told_from_stable_ones() {
    assert_eq!(volatile_value("REV", "1a2b3c4"), Some("a commit SHA"));
    assert_eq!(volatile_value("X", "20250601"), Some("a date or time"));
    assert_eq!(volatile_value("X", "1748779200"), Some("a date or time"));
    assert_eq!(volatile_value("X", "12:30:00"), Some("a date or time"));
    assert_eq!(volatile_value("SOURCE_DATE_EPOCH", "1748779200"), None);
    assert_eq!(volatile_value("X", "10001"), None);
    assert_eq!(
        volatile_value("X", "12345678"),
        None,
        "not a plausible date"
    );
    assert_eq!(volatile_value("X", "deadbeef00"), Some("a commit SHA"));
    assert_eq!(volatile_value("X", "cafebabe"), None, "no digit: a word");
    assert_eq!(
        volatile_value(
            "X",
            "sha256:3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b3f2a9c1d0b8e7f6a5c4d"
        ),
        None,
        "a content digest stays until the content changes"
    );
}

const MOUNTS: &str = "FROM python:3.12-slim\n\
                      RUN --mount=type=secret,id=tok true\n\
                      COPY requirements.txt .\n\
                      RUN --mount=type=cache,target=/root/.cache/pip \\\n    pip install -r requirements.txt\n\
                      RUN --mount=type=cache,target=/var/cache/apt apt-get update\n";

#[test]
fn in_ci_a_cache_mount_with_nothing_to_keep_it_is_found() {
    let w = warnings_with(MOUNTS, PYTHON_FILES, &[("CI", "true")], |b| b);
    let found = of(&w, CacheCheck::CacheMountNotPersisted);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert_eq!(found[0].line, Some(4));
    assert!(
        found[0].message.starts_with(
            "in CI (CI is set), the RUN steps at Dockerfile:4, 6 keep files in cache mounts of \
             the builder (/root/.cache/pip, /var/cache/apt), and the build exports no cache"
        ),
        "{}",
        found[0].message
    );
    assert!(found[0].fix.contains("buildkit-cache-dance"));
}

#[test]
fn a_cache_mount_outside_ci_or_with_a_cache_export_is_fine() {
    assert_eq!(warnings_with(MOUNTS, PYTHON_FILES, &[], |b| b), []);
    let exported = warnings_with(MOUNTS, PYTHON_FILES, &[("CI", "true")], |b| {
        b.cache_to(Cache::registry("ghcr.io/o/app:cache").mode_max(true))
    });
    assert_eq!(exported, []);
    let self_hosted = warnings_with(
        MOUNTS,
        PYTHON_FILES,
        &[("CI", "true"), ("RUNNER_ENVIRONMENT", "self-hosted")],
        |b| b,
    );
    assert_eq!(self_hosted, []);
    // A secret mount, and a cache mount in a comment, are no cache mounts.
    let text = "FROM busybox\nRUN --mount=type=secret,id=t true\n\
                # RUN --mount=type=cache,target=/c true\n";
    assert_eq!(warnings_with(text, &[], &[("CI", "true")], |b| b), []);
}

#[test]
fn a_reproducible_build_from_a_base_by_tag_is_found() {
    let text = "FROM python:3.12-slim AS base\nRUN true\nFROM base\nRUN true\n";
    let w = warnings_with(text, &[], &[], |b| {
        b.rewrite_timestamp(true)
            .output(crate::docker::build::Output::Push)
    });
    let found = of(&w, CacheCheck::BaseWithoutDigest);
    assert_eq!(found.len(), 1, "one image, once: {w:#?}");
    assert_eq!(found[0].line, Some(1));
    assert!(found[0].message.starts_with(
        "a reproducible build is asked for (rewrite_timestamp), and stage `base` starts from \
         `python:3.12-slim` (Dockerfile:1) by tag"
    ));
    assert!(found[0]
        .fix
        .contains("`FROM python:3.12-slim@sha256:<digest>`"));
    // Through a build arg: the fix names the arg.
    let w = warnings_with(TWO_STAGES, &[], &[], |b| {
        b.build_arg("SOURCE_DATE_EPOCH", "1700000000")
    });
    let found = of(&w, CacheCheck::BaseWithoutDigest);
    assert_eq!(found.len(), 1, "{w:#?}");
    assert!(found[0].message.contains("(SOURCE_DATE_EPOCH)"));
    assert!(found[0].fix.contains("in the build arg PYTHON_IMAGE"));
}

#[test]
fn a_pinned_base_or_no_reproducibility_asked_is_fine() {
    let pinned = "FROM python:3.12-slim@sha256:3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b3f2a9c1d0b8e7f6a5c4d AS b\n\
                  FROM scratch\nCOPY --from=b /etc/os-release /\n";
    assert_eq!(
        warnings_with(pinned, &[], &[], |b| b
            .build_arg("SOURCE_DATE_EPOCH", "1700000000")),
        []
    );
    let tagged = "FROM python:3.12-slim\nRUN true\n";
    assert_eq!(warnings_with(tagged, &[], &[], |b| b), []);
    let by_arg = warnings_with(TWO_STAGES, &[], &[], |b| {
        b.build_arg("SOURCE_DATE_EPOCH", "1700000000").build_arg(
            "PYTHON_IMAGE",
            "python:3.12-slim@sha256:3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b3f2a9c1d0b8e7f6a5c4d",
        )
    });
    assert_eq!(by_arg, []);
}

#[test]
fn the_fixtures_are_set_up_well_except_for_ci_cache_mounts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let webapp = Build::new(root.join("webapp"))
        .dockerfile(root.join("webapp/Dockerfile.production"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11");
    let mediaserver = Build::new(root.join("mediaserver"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11");
    let local = crate::Runner::new().env_remove("CI");
    let ci = crate::Runner::new()
        .env("CI", "true")
        .env_remove("RUNNER_ENVIRONMENT");
    // Both copy their dependency lists alone before installing.
    assert_eq!(webapp.cache_setup_warnings(&local).unwrap(), []);
    assert_eq!(webapp.cache_setup_warnings(&ci).unwrap(), []);
    assert_eq!(mediaserver.cache_setup_warnings(&local).unwrap(), []);
    // In CI, the mediaserver's apt and pip cache mounts have nothing to keep them.
    let w = mediaserver.cache_setup_warnings(&ci).unwrap();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].check, CacheCheck::CacheMountNotPersisted);
    assert_eq!(w[0].line, Some(20));
    assert!(
        w[0].message.contains(
            "the RUN steps at Dockerfile:20, 39, 52 keep files in cache mounts of the builder \
             (/var/cache/apt, /var/lib/apt, /root/.cache/pip)"
        ),
        "{}",
        w[0].message
    );
}
