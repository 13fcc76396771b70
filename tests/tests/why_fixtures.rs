//! Why was this rebuilt, on the real engine, on the two fixtures (each test works on a
//! copy of its own): the causes `why.rs` does not build there. On the production-shaped
//! `fixtures/mediaserver` at its real size: an instruction's own text changed, the base
//! image moved, a cache source was not imported. On `fixtures/webapp`: the builder
//! changed, an instruction's own text changed; a platform change BuildKit does not key
//! on blames nothing. Each asserts the exact cause named.

use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{Cause, Explanation, InstructionRow};
use buildkit_lib::plan::Step;
use e2e::why::{fresh, image_id, own_builder, row, Scratch};

/// A copy of the production-shaped fixture, with its generated files.
fn mediaserver(prefix: &str) -> Scratch {
    Scratch::copy_of(prefix, &e2e::mediaserver_fixture())
}

/// The mediaserver's build as `cargo xtask mediaserver` runs it (the same args and
/// network: the same cache keys), from the base image `python`.
fn mediaserver_build(s: &Scratch, python: &str) -> Build {
    s.build()
        .target("runtime")
        .build_arg("PYTHON_IMAGE", python)
        .network("host")
}

/// A copy of the webapp fixture.
fn webapp(prefix: &str) -> Scratch {
    Scratch::copy_of(prefix, &e2e::repo_root().join("fixtures/webapp"))
}

/// The webapp's build as `why.rs` runs it, from the base image `python`.
fn webapp_build(s: &Scratch, python: &str) -> Build {
    s.build()
        .dockerfile(s.dir.path().join("Dockerfile.production"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", python)
        .network("none")
}

/// The rows after line `line` (in Dockerfile order), each asserted to name the one before
/// it as the earlier instruction rebuilt, the first naming `instruction` at `line`.
fn assert_chain_after(e: &Explanation, instruction: &str, line: usize) -> Vec<usize> {
    let mut before = (instruction.to_string(), Some(line));
    let mut lines = Vec::new();
    for r in e.rows().iter().filter(|r| r.line > Some(line)) {
        assert!(!r.cached(), "{e}");
        assert_eq!(
            r.cause,
            Some(Cause::EarlierRebuilt {
                instruction: before.0.clone(),
                line: before.1,
            }),
            "line {:?} in\n{e}",
            r.line
        );
        before = (r.instruction.clone(), r.line);
        lines.extend(r.line);
    }
    lines
}

/// The rows before line `line`, asserted all cached.
fn assert_cached_before(e: &Explanation, line: usize) {
    let before: Vec<&InstructionRow> = e.rows().iter().filter(|r| r.line < Some(line)).collect();
    assert!(!before.is_empty(), "{e}");
    assert!(before.iter().all(|r| r.cached()), "{e}");
}

/// The last `RUN` of the mediaserver's runtime stage changed (the rest of the 5,800-file
/// build as it was): named at its line with its old and new text; every instruction after
/// it names the one before it as rebuilt, and everything before it came from the cache.
#[test]
fn the_mediaserver_names_its_changed_instruction_with_the_old_and_new_text() {
    let s = mediaserver("bkl-why-ms-text");
    let first = s.explain(&mediaserver_build(&s, e2e::PYTHON_IMAGE));
    assert_eq!(first.rows().len(), 14, "{first}");

    let old = "RUN chmod 0755 /usr/local/bin/entrypoint.sh";
    let new = format!("{old} && echo {} > /etc/mediaserver-build", fresh());
    s.edit("Dockerfile", &format!("\n{old}\n"), &format!("\n{new}\n"));
    let e = s.explain(&mediaserver_build(&s, e2e::PYTHON_IMAGE));
    let changed = row(&e, 88);
    assert_eq!(changed.stage, "runtime");
    assert_eq!(changed.instruction, new);
    assert_eq!(
        changed.cause,
        Some(Cause::InstructionChanged {
            line: Some(88),
            old: Some(old.to_string()),
            new: Some(new.clone()),
        }),
        "{e}"
    );
    // COPY --from=builder, WORKDIR and the three COPYs of the data, the app and its
    // version, each rebuilt because the one before it was.
    assert_eq!(
        assert_chain_after(&e, &new, 88),
        [100, 101, 103, 104, 105],
        "{e}"
    );
    assert_cached_before(&e, 88);
    assert_eq!(e.cached_count(), (8, 14), "{e}");
    assert_eq!(
        e.summary(),
        format!(
            "8/14 instructions cached; first rebuilt: {new} (Dockerfile:88) because the \
             instruction at Dockerfile:88 changed: `{old}` → `{new}`"
        )
    );
}

/// The mediaserver's base image moved: `PYTHON_IMAGE` names a tag of the test's own, first
/// on the local python image, then on a copy of it with one small file more. Each stage's
/// first instruction names the tag with both digests, everything else in the build names
/// what was rebuilt before it.
#[test]
fn the_mediaserver_names_its_moved_base_image_with_both_digests() {
    let s = mediaserver("bkl-why-ms-base");
    let repo = e2e::unique("bkl-why-ms-python");
    let base = format!("{repo}:base");
    s.docker_tag(e2e::PYTHON_IMAGE, &base);
    let old = image_id(&s.runner, &base);
    s.explain(&mediaserver_build(&s, &base));

    // The same python image with one small file more. (Not a label alone: BuildKit may
    // take a base whose layers are all the same from its cache, under the layers' chain
    // ID, and then nothing is rebuilt and nothing needs explaining.)
    let moved_to = format!("{repo}:moved");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN echo {} > /etc/base-revision\n",
            e2e::PYTHON_IMAGE,
            fresh()
        ),
    )
    .unwrap();
    s.images.borrow_mut().push(moved_to.clone());
    Build::new(dir.path())
        .tag(&moved_to)
        .network("none")
        .output(Output::Load)
        .explain(false)
        .run(&s.runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let new = image_id(&s.runner, &moved_to);
    assert_ne!(old, new);
    s.docker_tag(&moved_to, &base);

    let e = s.explain(&mediaserver_build(&s, &base));
    let image = format!("docker.io/library/{base}");
    let moved = Some(Cause::BaseImageMoved {
        image: image.clone(),
        old: old.clone(),
        new: new.clone(),
    });
    assert_eq!(e.cached_count(), (0, 14), "{e}");
    // Both stages start with the same `RUN` on the same base (Dockerfile:15 in the
    // builder, :48 in the runtime): BuildKit runs it once for both and reports it in one
    // of them, whichever it solved first (the builder, mostly; the runtime on some runs of
    // BuildKit 0.13). That row, and the first row of the other stage, name the moved base.
    let shared: Vec<usize> = e
        .rows()
        .iter()
        .filter_map(|r| r.line)
        .filter(|l| [15, 48].contains(l))
        .collect();
    let first_moved = match shared.as_slice() {
        [15] => [(15, "builder"), (52, "runtime")],
        [48] => [(20, "builder"), (48, "runtime")],
        _ => panic!("the shared RUN is not reported once: {shared:?} in\n{e}"),
    };
    for (line, stage) in first_moved {
        assert_eq!(row(&e, line).stage, stage, "{e}");
        assert_eq!(row(&e, line).cause, moved, "line {line} in\n{e}");
    }
    let moved_lines = first_moved.map(|(line, _)| line);
    for r in e
        .rows()
        .iter()
        .filter(|r| !moved_lines.contains(&r.line.unwrap_or(0)))
    {
        assert!(
            matches!(
                r.cause,
                Some(Cause::EarlierRebuilt { .. } | Cause::StageRebuilt { .. })
            ),
            "line {:?} in\n{e}",
            r.line
        );
    }
    let short = |id: &str| id[..19].to_string();
    assert!(
        e.summary().ends_with(&format!(
            "(Dockerfile:{}) because base image {image} moved ({} → {})",
            moved_lines[0],
            short(&old),
            short(&new)
        )),
        "{}",
        e.summary()
    );
}

/// The mediaserver's first build here (no record of a previous one) with a `--cache-from`
/// registry reference that is not on the loopback registry, after one file of the app
/// changed: the `COPY` of the app that ran names the cache source with the engine's error,
/// the one after it names that `COPY`, and the cache source is listed as not imported.
#[test]
fn the_mediaserver_names_a_registry_cache_source_that_is_not_there() {
    let s = mediaserver("bkl-why-ms-nocache");
    // The engine's cache holds the build as the fixture is (no record is kept of it).
    mediaserver_build(&s, e2e::PYTHON_IMAGE)
        .explain(false)
        .run(&s.runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!s.record().exists());

    let views = s.dir.path().join("app/views.py");
    let mut text = std::fs::read_to_string(&views).unwrap();
    text.push_str(&format!("# {}\n", fresh()));
    std::fs::write(&views, text).unwrap();
    let reference = format!(
        "{}/{}:cache",
        e2e::REGISTRY,
        e2e::unique("bkl-why-ms-absent")
    );
    let e = s
        .explain(&mediaserver_build(&s, e2e::PYTHON_IMAGE).cache_from(Cache::registry(&reference)));
    let source = format!("type=registry,ref={reference}");
    let copy = row(&e, 104);
    assert_eq!(
        copy.instruction,
        "COPY --chown=mediaserver:mediaserver app/ /srv/mediaserver/app/"
    );
    let error = match &copy.cause {
        Some(Cause::CacheNotImported { source: s, error }) if *s == source => error.clone(),
        other => panic!("{other:?}\n{e}"),
    };
    // The registry answered, and said the reference is not there.
    assert!(
        error.ends_with(&format!("{reference}: not found")),
        "{error}"
    );
    assert_eq!(assert_chain_after(&e, &copy.instruction, 104), [105], "{e}");
    assert_cached_before(&e, 104);
    assert_eq!(e.cached_count(), (12, 14), "{e}");
    assert_eq!(e.cache_imports().len(), 1, "{e}");
    assert_eq!(e.cache_imports()[0].source(), source);
    assert!(!e.cache_imports()[0].imported());
    assert_eq!(e.cache_imports()[0].error(), Some(error.as_str()));
    assert_eq!(
        e.summary(),
        format!(
            "12/14 instructions cached; first rebuilt: {} (Dockerfile:104) because cache \
             source {source} was not imported",
            copy.instruction
        )
    );
}

/// The webapp built on the default builder, then on a docker-container builder of the
/// test's own (the base from the loopback registry for both, so that it resolves to the
/// same digest): every instruction ran again, the first of each stage naming both
/// builders, each with the engine it runs on.
#[test]
fn the_webapp_on_another_builder_names_both_builders() {
    let s = webapp("bkl-why-webapp-builder");
    let (name, _builder) = own_builder(&s.runner, "bkl-why-webapp-builder");
    let build = webapp_build(&s, e2e::REGISTRY_PYTHON_IMAGE);
    let first = s.explain(&build);
    assert_eq!(first.rows().len(), 10, "{first}");

    let e = s.explain(&build.clone().builder(&name));
    assert_eq!(e.cached_count(), (0, 10), "{e}");
    let host = e2e::docker_host();
    let changed = Some(Cause::BuilderChanged {
        old: format!("default on {host}"),
        new: format!("{name} on {host}"),
    });
    // meta: COPY version.json; builder: WORKDIR /build; runtime: RUN groupadd ...
    for (line, stage) in [(8, "meta"), (14, "builder"), (30, "runtime")] {
        assert_eq!(row(&e, line).stage, stage, "{e}");
        assert_eq!(row(&e, line).cause, changed, "line {line} in\n{e}");
    }
    for r in e
        .rows()
        .iter()
        .filter(|r| ![8, 14, 30].contains(&r.line.unwrap_or(0)))
    {
        assert!(
            matches!(
                r.cause,
                Some(Cause::EarlierRebuilt { .. } | Cause::StageRebuilt { .. })
            ),
            "line {:?} in\n{e}",
            r.line
        );
    }
    assert!(
        e.summary().ends_with(&format!(
            "because the builder changed: default on {host} → {name} on {host}"
        )),
        "{}",
        e.summary()
    );
}

/// The platform changed where BuildKit's cache does not depend on it: the webapp's own
/// Dockerfile, its `meta` stage (`FROM scratch`, `COPY version.json`), built for
/// linux/amd64 and then for linux/arm64. BuildKit takes the `COPY` from the cache (a
/// file copy onto an empty base is the same on every platform), and the explanation says
/// nothing was rebuilt: the record's platform change is never blamed for a rebuild that
/// did not happen. (A platform change that does rebuild is named in `why_causes.rs`; the
/// fixtures' Python base exists for linux/amd64 only.)
#[test]
fn the_webapp_for_another_platform_blames_nothing_that_was_cached() {
    let s = webapp("bkl-why-webapp-platform");
    // A version of its own, so the first build is not a cache hit of another test's.
    s.edit(
        "version.json",
        "\"version\": \"",
        &format!("\"version\": \"{}-", fresh()),
    );
    let build = s
        .build()
        .dockerfile(s.dir.path().join("Dockerfile.production"))
        .target("meta")
        .network("none");
    let first = s.explain(&build.clone().platform("linux/amd64"));
    assert_eq!(first.cached_count(), (0, 1), "{first}");
    let e = s.explain(&build.platform("linux/arm64"));
    let copy = row(&e, 8);
    assert_eq!(copy.instruction, "COPY version.json /version.json", "{e}");
    assert!(copy.cached() && copy.cause.is_none(), "{e}");
    assert!(e.summary().ends_with("nothing rebuilt"), "{}", e.summary());
}

/// The webapp's runtime `RUN` (five lines) changed: named at its line with its old and new
/// text, and each instruction after it names the one before it as rebuilt.
#[test]
fn the_webapp_names_its_changed_instruction_with_the_old_and_new_text() {
    let s = webapp("bkl-why-webapp-text");
    let build = webapp_build(&s, e2e::PYTHON_IMAGE);
    s.explain(&build);
    // As the record and the explanation show it: one line, the continuations joined.
    let old = "RUN groupadd --system --gid \"${APP_UID}\" app && useradd --system --uid \
               \"${APP_UID}\" --gid app --home-dir /app --no-create-home --shell \
               /usr/sbin/nologin app && mkdir -p /app && chown app:app /app";
    let stamp = format!(" && echo {} > /app/build-id", fresh());
    s.edit(
        "Dockerfile.production",
        "    && mkdir -p /app \\\n",
        &format!("    && mkdir -p /app{stamp} \\\n"),
    );
    let new = old.replace(" && chown", &format!("{stamp} && chown"));
    let e = s.explain(&build);
    let changed = row(&e, 30);
    assert_eq!(changed.instruction, new);
    assert_eq!(
        changed.cause,
        Some(Cause::InstructionChanged {
            line: Some(30),
            old: Some(old.to_string()),
            new: Some(new.clone()),
        }),
        "{e}"
    );
    // COPY --from=builder, COPY --from=meta, WORKDIR.
    assert_eq!(
        assert_chain_after(&e, &changed.instruction, 30),
        [40, 41, 42],
        "{e}"
    );
    // The builder and meta stages came from the cache.
    assert!(
        e.rows()
            .iter()
            .filter(|r| r.stage != "runtime")
            .all(|r| r.cached()),
        "{e}"
    );
    assert_eq!(e.cached_count(), (6, 10), "{e}");
}
