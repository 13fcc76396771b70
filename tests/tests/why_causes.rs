//! Why was this rebuilt, on the real engine: one small build per cause (a Dockerfile of the
//! test's own, built from the local busybox image), each asserting the exact cause named.
//! The webapp and the production-shaped fixture (files changed, an earlier instruction,
//! a stage, a build arg, a secret file, nothing changed) are in `why.rs`; the other causes
//! on those fixtures in `why_fixtures.rs`.

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::BakeFile;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{Cause, Explanation};
use buildkit_lib::pipeline::Pipeline;
use buildkit_lib::plan::Step;
use buildkit_lib::Session;
use e2e::why::{docker, fresh, image_id, own_builder, row, RemoveImages, Scratch};

/// The base image moved: a local tag the Dockerfile builds `FROM`, retagged to another
/// image, names the tag with the digest it had and the one it has now.
#[test]
fn a_moved_base_image_is_named_with_its_old_and_new_digest() {
    let s = Scratch::new("bkl-why-base");
    let repo = e2e::unique("bkl-why-base-image");
    // Two images to point the base tag at, each its own content.
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {}\nRUN echo {name}-{} > /base\n",
                e2e::BUSYBOX_IMAGE,
                fresh()
            ),
        )
        .unwrap();
        let tag = format!("{repo}:{name}");
        s.images.borrow_mut().push(tag.clone());
        Build::new(dir.path())
            .tag(&tag)
            .network("none")
            .output(Output::Load)
            .explain(false)
            .run(&s.runner)
            .unwrap_or_else(|e| panic!("{e:#}"));
        ids.push(image_id(&s.runner, &tag));
    }
    assert_ne!(ids[0], ids[1]);
    let base = format!("{repo}:base");
    s.docker_tag(&format!("{repo}:one"), &base);
    let dockerfile = format!("FROM {base}\nRUN echo {} > /made\n", fresh());
    let build = s.build_of(&dockerfile);
    s.explain(&build);

    s.docker_tag(&format!("{repo}:two"), &base);
    let e = s.explain(&build);
    let image = format!("docker.io/library/{base}");
    assert_eq!(
        row(&e, 2).cause,
        Some(Cause::BaseImageMoved {
            image: image.clone(),
            old: ids[0].clone(),
            new: ids[1].clone(),
        }),
        "{e}"
    );
    let short = |id: &str| id[..19].to_string();
    assert!(
        e.summary().ends_with(&format!(
            "first rebuilt: RUN echo {} (Dockerfile:2) because base image {image} moved ({} → \
             {})",
            dockerfile
                .lines()
                .nth(1)
                .unwrap()
                .trim_start_matches("RUN echo "),
            short(&ids[0]),
            short(&ids[1])
        )),
        "{}",
        e.summary()
    );
}

/// The instruction's own text changed: named at its line with the old and the new text,
/// and the instruction after it names it as the earlier one rebuilt.
#[test]
fn a_changed_instruction_is_named_with_its_old_and_new_text() {
    let s = Scratch::new("bkl-why-text");
    let f = fresh();
    let dockerfile = |word: &str| {
        format!(
            "FROM {}\nRUN echo {f}-{word} > /made\nRUN cat /made\n",
            e2e::BUSYBOX_IMAGE
        )
    };
    s.explain(&s.build_of(&dockerfile("one")));
    let e = s.explain(&s.build_of(&dockerfile("two")));
    let old = format!("RUN echo {f}-one > /made");
    let new = format!("RUN echo {f}-two > /made");
    assert_eq!(
        row(&e, 2).cause,
        Some(Cause::InstructionChanged {
            line: Some(2),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
        "{e}"
    );
    assert_eq!(
        row(&e, 3).cause,
        Some(Cause::EarlierRebuilt {
            instruction: new.clone(),
            line: Some(2)
        }),
        "{e}"
    );
    assert!(
        e.summary().ends_with(&format!(
            "because the instruction at Dockerfile:2 changed: `{old}` → `{new}`"
        )),
        "{}",
        e.summary()
    );
}

/// A `--cache-from` registry reference that is not on the loopback registry: the cache
/// source is named with the engine's error, and is listed as not imported; once the
/// instruction is in the builder's cache, the failed import explains nothing.
#[test]
fn a_registry_cache_source_that_is_not_there_is_named_with_the_engines_error() {
    let s = Scratch::new("bkl-why-nocache-reg");
    let reference = format!("{}/{}:cache", e2e::REGISTRY, e2e::unique("bkl-why-absent"));
    let dockerfile = format!(
        "FROM {}\nRUN echo {} > /made\n",
        e2e::BUSYBOX_IMAGE,
        fresh()
    );
    let build = s
        .build_of(&dockerfile)
        .cache_from(Cache::registry(&reference));
    let e = s.explain(&build);
    let source = format!("type=registry,ref={reference}");
    let error = match &row(&e, 2).cause {
        Some(Cause::CacheNotImported { source: s, error }) if *s == source => error.clone(),
        other => panic!("{other:?}\n{e}"),
    };
    // The registry answered, and said the reference is not there.
    assert!(
        error.ends_with(&format!("{reference}: not found")),
        "{error}"
    );
    assert_eq!(e.cache_imports().len(), 1);
    assert_eq!(e.cache_imports()[0].source(), source);
    assert!(!e.cache_imports()[0].imported());
    assert_eq!(e.cache_imports()[0].error(), Some(error.as_str()));
    assert!(
        e.to_string()
            .contains(&format!("cache source {source}: NOT imported: {error}")),
        "{e}"
    );
    assert!(
        e.summary()
            .ends_with(&format!("because cache source {source} was not imported")),
        "{}",
        e.summary()
    );

    let again = s.explain(&build);
    assert_eq!(again.cached_count(), (1, 1), "{again}");
    assert!(again.rows().iter().all(|r| r.cause.is_none()), "{again}");
}

/// A local cache directory that is missing: the source is named with the engine's error.
#[test]
fn a_missing_local_cache_directory_is_named_with_the_engines_error() {
    let s = Scratch::new("bkl-why-nocache-local");
    let missing = s.keep.path().join("never-written");
    let dockerfile = format!(
        "FROM {}\nRUN echo {} > /made\n",
        e2e::BUSYBOX_IMAGE,
        fresh()
    );
    let e = s.explain(&s.build_of(&dockerfile).cache_from(Cache::local(&missing)));
    let source = format!("type=local,src={}", missing.display());
    match &row(&e, 2).cause {
        Some(Cause::CacheNotImported { source: s, error }) if *s == source => {
            assert!(
                error.contains(&missing.display().to_string())
                    && error.ends_with("no such file or directory"),
                "{error}"
            );
        }
        other => panic!("{other:?}\n{e}"),
    }
}

/// The builder changed: the same build on the default builder, then on a docker-container
/// builder of the test's own, names both (each with the engine it runs on).
#[test]
fn a_build_on_another_builder_names_both_builders() {
    let s = Scratch::new("bkl-why-builder");
    let (name, _builder) = own_builder(&s.runner, "bkl-why-builder");
    // Both builders resolve the base from the loopback registry: the same digest.
    let dockerfile = format!(
        "FROM {}\nRUN echo {} > /made\n",
        e2e::REGISTRY_BUSYBOX_IMAGE,
        fresh()
    );
    let build = s.build_of(&dockerfile).network("host");
    let first = s.explain(&build);
    let e = s.explain(&build.clone().builder(&name));
    assert_eq!(first.rows().len(), 1, "{first}");
    let host = e2e::docker_host();
    assert_eq!(
        row(&e, 2).cause,
        Some(Cause::BuilderChanged {
            old: format!("default on {host}"),
            new: format!("{name} on {host}"),
        }),
        "{e}"
    );
}

/// The platform changed: a build for linux/amd64, then for linux/arm64 (the busybox
/// image has both; the instruction is a `COPY`, which needs no emulation).
#[test]
fn a_build_for_another_platform_names_both_platforms() {
    let s = Scratch::new("bkl-why-platform");
    std::fs::write(s.dir.path().join("stamp"), fresh()).unwrap();
    let dockerfile = format!("FROM {}\nCOPY stamp /stamp\n", e2e::BUSYBOX_IMAGE);
    s.explain(&s.build_of(&dockerfile).platform("linux/amd64"));
    let e = s.explain(&s.build_of(&dockerfile).platform("linux/arm64"));
    assert_eq!(
        row(&e, 2).cause,
        Some(Cause::PlatformChanged {
            old: "linux/amd64".into(),
            new: "linux/arm64".into(),
        }),
        "{e}"
    );
}

/// A build arg whose value looks like a secret changed: named, and neither value is in
/// the explanation, the record, the report or the step log.
#[test]
fn a_secret_looking_build_arg_that_changed_is_named_without_its_value() {
    let s = Scratch::new("bkl-why-secret-arg");
    let target = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nARG PIP_EXTRA\nRUN test -n \"$PIP_EXTRA\" && echo {} > /made\n",
        e2e::BUSYBOX_IMAGE,
        fresh()
    );
    std::fs::write(s.dir.path().join("Dockerfile"), &dockerfile).unwrap();
    let digits = format!("{:0>12}", std::process::id());
    let values = [
        format!("ghp_Why24FirstValue{digits}AbCdEfGh"),
        format!("ghp_Why24OtherValue{digits}IjKlMnOp"),
    ];
    let run = |value: &str| {
        let build = Build::new(s.dir.path())
            .tag(&s.tag)
            .network("none")
            .output(Output::Load)
            .build_arg("PIP_EXTRA", value);
        let mut pipeline = Pipeline::new("why-arg", target.path());
        pipeline.image_build("image", build, "why-arg");
        pipeline.force(true).jobs(1);
        let report = pipeline
            .run(&s.runner.clone().session(Session::new("why-test")))
            .unwrap();
        assert!(report.ok, "{:#?}", report.steps);
        let record = target.path().join("buildkit/why-arg/why/image.json");
        Explanation::load(&record).unwrap().unwrap()
    };
    run(&values[0]);
    let e = run(&values[1]);
    assert_eq!(
        row(&e, 3).cause,
        Some(Cause::BuildArgChanged {
            names: vec!["PIP_EXTRA".into()]
        }),
        "{e}"
    );
    assert!(e.summary().ends_with("because build arg PIP_EXTRA changed"));
    let files = [
        target.path().join("buildkit/why-arg/why/image.json"),
        target.path().join("buildkit/why-arg/report.json"),
        target.path().join("buildkit/why-arg/logs/image.log"),
    ];
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for value in &values {
            assert!(
                !text.contains(value.as_str()),
                "{} holds a value:\n{text}",
                file.display()
            );
        }
    }
    // The step log did show the build: the arg by name only (its value went through the
    // environment, and reached the RUN, which fails without it).
    let log = std::fs::read_to_string(&files[2]).unwrap();
    assert!(log.contains(" --build-arg PIP_EXTRA --"), "{log}");
    for value in &values {
        assert!(!e.to_string().contains(value.as_str()));
        assert!(!format!("{e:?}").contains(value.as_str()));
    }
}

/// A cache mount's content is no part of BuildKit's cache key: on a builder of the test's
/// own, changing the mount's id or emptying it (`prune --filter type=exec.cachemount`)
/// leaves the `RUN` cached; emptying the whole cache rebuilds it with its inputs
/// unchanged, and the cause says unknown, naming the cache mount as not the reason.
#[test]
fn a_run_with_a_cache_mount_rebuilt_with_unchanged_inputs_says_the_mount_is_not_why() {
    let s = Scratch::new("bkl-why-mount");
    let (name, _builder) = own_builder(&s.runner, "bkl-why-mount");
    let f = fresh();
    let dockerfile = |id: &str| {
        format!(
            "FROM {}\nRUN --mount=type=cache,id={id},target=/cache echo {f} >> /cache/log && \
             cp /cache/log /made\n",
            e2e::REGISTRY_BUSYBOX_IMAGE,
        )
    };
    let first = s.explain(
        &s.build_of(&dockerfile("first"))
            .network("host")
            .builder(&name),
    );
    assert_eq!(first.rows().len(), 1, "{first}");
    assert_eq!(first.cached_count(), (0, 1), "{first}");
    // Another mount id: the text changed, and BuildKit (0.13 and newer) keeps the id out of
    // the key, so nothing ran.
    let id = e2e::unique("bkl-why-mount-id");
    let build = s.build_of(&dockerfile(&id)).network("host").builder(&name);
    let renamed = s.explain(&build);
    assert_eq!(
        renamed.summary(),
        "1/1 instructions cached; nothing rebuilt"
    );

    let prune = |filter: Option<&str>| {
        let mut args = vec!["buildx", "prune", "--builder", name.as_str(), "--force"];
        match filter {
            Some(f) => args.extend(["--filter", f]),
            None => args.push("--all"),
        }
        docker(&s.runner, &args);
    };
    prune(Some("type=exec.cachemount"));
    let emptied = s.explain(&build);
    assert_eq!(emptied.cached_count(), (1, 1), "{emptied}");
    assert_eq!(
        emptied.summary(),
        "1/1 instructions cached; nothing rebuilt"
    );

    prune(None);
    let e = s.explain(&build);
    assert_eq!(
        row(&e, 2).cause,
        Some(Cause::UnknownWithCacheMounts {
            mounts: vec![id.clone()]
        }),
        "{e}"
    );
    assert!(
        e.summary().ends_with(&format!(
            "because unknown — BuildKit rebuilt it although its inputs are unchanged; not \
             its cache mount {id}: BuildKit does not key a RUN's cache on what a cache mount \
             holds"
        )),
        "{}",
        e.summary()
    );
}

/// Cache imports of a bake: each target says which cache sources it was given and
/// whether each was imported, and names a failed one as the cause; once a target's local
/// cache was written, the next bake imports it.
#[test]
fn each_baked_target_says_which_cache_sources_were_imported() {
    let runner = e2e::engine().echo(Echo::Silent);
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {0} AS web\nRUN echo web-{1} > /web\n\nFROM {0} AS api\nRUN echo api-{1} > /api\n",
            e2e::BUSYBOX_IMAGE,
            fresh()
        ),
    )
    .unwrap();
    let reference = format!(
        "{}/{}:cache",
        e2e::REGISTRY,
        e2e::unique("bkl-why-bake-absent")
    );
    let local = dir.path().join("api-cache");
    let tags = [
        format!("{}:web", e2e::unique("bkl-why-bake")),
        format!("{}:api", e2e::unique("bkl-why-bake")),
    ];
    let _cleanup = RemoveImages(runner.clone(), tags.to_vec());
    let mut builder = BakeFile::new(dir.path());
    builder
        .build(
            "web",
            &Build::new(&app)
                .target("web")
                .tag(&tags[0])
                .network("none")
                .output(Output::Load)
                .cache_from(Cache::registry(&reference)),
        )
        .unwrap();
    builder
        .build(
            "api",
            &Build::new(&app)
                .target("api")
                .tag(&tags[1])
                .network("none")
                .output(Output::Load)
                .cache_from(Cache::local(&local))
                .cache_to(Cache::local(&local).mode_max(true)),
        )
        .unwrap();
    let bake = builder
        .write(&runner, &dir.path().join("docker-bake.json"))
        .unwrap()
        .explain_records(dir.path().join("why"));

    let first = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let web = first["web"].explanation.as_ref().unwrap();
    let source = format!("type=registry,ref={reference}");
    match &row(web, 2).cause {
        Some(Cause::CacheNotImported { source: s, error })
            if *s == source && error.ends_with(&format!("{reference}: not found")) => {}
        other => panic!("{other:?}\n{web}"),
    }
    assert_eq!(web.cache_imports().len(), 1, "{web}");
    assert!(web.cache_imports()[0].error().is_some());
    let api = first["api"].explanation.as_ref().unwrap();
    let source = format!("type=local,src={}", local.display());
    match &row(api, 5).cause {
        Some(Cause::CacheNotImported { source: s, error })
            if *s == source && error.ends_with("no such file or directory") => {}
        other => panic!("{other:?}\n{api}"),
    }
    // Each target lists only its own source.
    assert_eq!(api.cache_imports().len(), 1, "{api}");
    assert_eq!(api.cache_imports()[0].source(), source);

    // The api target's cache is written now: imported.
    let second = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let api = second["api"].explanation.as_ref().unwrap();
    assert!(api.cache_imports()[0].imported(), "{api}");
    assert_eq!(api.summary(), "1/1 instructions cached; nothing rebuilt");
    let web = second["web"].explanation.as_ref().unwrap();
    assert!(web.cache_imports()[0].error().is_some());
    assert_eq!(web.summary(), "1/1 instructions cached; nothing rebuilt");
}

/// A bake target's build arg whose value looks like a secret changed: named, and neither
/// value is in the step log (BuildKit names the `RUN` with the arg expanded), the record
/// or the explanation.
#[test]
fn a_baked_secret_looking_build_arg_that_changed_is_named_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bake.log");
    let runner = e2e::engine().echo(Echo::Silent).log_to(&log);
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {}\nARG PIP_EXTRA\nRUN test -n \"$PIP_EXTRA\" && echo \"$PIP_EXTRA\" | wc -c \
             > /len && echo {} > /made\n",
            e2e::BUSYBOX_IMAGE,
            fresh()
        ),
    )
    .unwrap();
    let tag = format!("{}:web", e2e::unique("bkl-why-bake-arg"));
    let _cleanup = RemoveImages(runner.clone(), vec![tag.clone()]);
    let digits = format!("{:0>12}", std::process::id());
    let values = [
        format!("ghp_Why24BakeFirst{digits}AbCdEfGhI"),
        format!("ghp_Why24BakeOther{digits}JkLmNoPqR"),
    ];
    let bake = |value: &str| {
        let mut builder = BakeFile::new(dir.path());
        builder
            .build(
                "web",
                &Build::new(&app)
                    .tag(&tag)
                    .network("none")
                    .output(Output::Load)
                    .build_arg("PIP_EXTRA", value),
            )
            .unwrap();
        let bake = builder
            .write(&runner, &dir.path().join("docker-bake.json"))
            .unwrap()
            .explain_records(dir.path().join("why"));
        let mut result = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
        result.remove("web").unwrap().explanation.unwrap()
    };
    bake(&values[0]);
    let e = bake(&values[1]);
    assert_eq!(
        row(&e, 3).cause,
        Some(Cause::BuildArgChanged {
            names: vec!["PIP_EXTRA".into()]
        }),
        "{e}"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("RUN test -n "), "{log_text}");
    let record = std::fs::read_to_string(dir.path().join("why/web.json")).unwrap();
    for value in &values {
        assert!(!log_text.contains(value.as_str()), "{log_text}");
        assert!(!record.contains(value.as_str()), "{record}");
        assert!(!format!("{e} {e:?}").contains(value.as_str()));
    }
}
