//! Unit tests of the build value, its command line, its checks and its result rows.

use super::check::looks_like_secret_value;
use super::*;

#[test]
fn oci_labels_fill_the_standard_keys() {
    let labels = oci_labels("webapp", "0.9.2", "abc123", "2026-01-01T00:00:00Z", "");
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        vec![
            (
                "org.opencontainers.image.created".into(),
                "2026-01-01T00:00:00Z".into()
            ),
            ("org.opencontainers.image.revision".into(), "abc123".into()),
            ("org.opencontainers.image.title".into(), "webapp".into()),
            ("org.opencontainers.image.version".into(), "0.9.2".into()),
        ]
    );
}

#[test]
fn session_labels_become_labels() {
    let session = Session {
        project: "webapp".into(),
        run_id: "r1".into(),
    };
    let build = Build::new(".").with_session_labels(&session);
    assert_eq!(build.labels["dev.buildkit-lib.project"], "webapp");
    assert_eq!(build.labels["dev.buildkit-lib.run"], "r1");
}

#[test]
fn secret_looking_build_args_and_gha_without_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS a\n").unwrap();
    let mut build = Build {
        context: dir.path().into(),
        ..Build::new(".")
    };
    build.build_args.insert("Api_Key".into(), "x".into());
    assert_eq!(
        build.check_with_env(&|_| None).unwrap_err().to_string(),
        "build arg `Api_Key` looks like a secret (its name contains `KEY`), and build \
         args are readable in the image history; pass it as a build secret instead \
         (`Build::secret_env(\"api_key\", \"Api_Key\")`, read with \
         `RUN --mount=type=secret,id=api_key`)"
    );
    build.build_args.clear();
    build
        .cache_to
        .push(Cache::gha().scope("web").mode_max(true));
    assert_eq!(
        format!("{:#}", build.check_with_env(&|_| None).unwrap_err()),
        "cache `type=gha,scope=web,mode=max` cannot be used: the gha cache needs the \
         GitHub Actions runtime (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL), and this \
         process is not in a GitHub Actions job (GITHUB_ACTIONS is not `true`); use a \
         registry or local cache here"
    );
    assert!(build.check_with_env(&|_| Some("set".into())).is_ok());
    build.secrets.push(BuildSecret::env("tok", "NOPE_VAR"));
    assert_eq!(
        build
            .check_with_env(&|k| (k != "NOPE_VAR").then(|| "x".into()))
            .unwrap_err()
            .to_string(),
        "build secret `tok` reads the environment variable `NOPE_VAR`, which is not set"
    );
}

#[test]
fn other_bad_input_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS a\n").unwrap();
    let base = Build {
        context: dir.path().into(),
        ..Build::new(".")
    };
    let err = |b: Build| b.check_with_env(&|_| None).unwrap_err().to_string();
    let digest = format!("app@sha256:{}", "0".repeat(64));
    assert_eq!(
        err(Build {
            tags: vec![digest.clone()],
            ..base.clone()
        }),
        format!(
            "invalid tag `{digest}`: a tag names an image to create and cannot carry a \
             digest; drop the `@...` part"
        )
    );
    assert_eq!(
        err(Build {
            cache_from: vec![Cache::inline()],
            ..base.clone()
        }),
        "an inline cache cannot be a cache source: import it with `Cache::registry` \
         naming the image that carries it"
    );
    assert_eq!(
        err(Build {
            output: Output::Push,
            ..base.clone()
        }),
        "a pushed build needs at least one tag naming the registry and repository"
    );
    let missing = dir.path().join("nope");
    assert_eq!(
        err(Build {
            context: missing.clone(),
            ..base.clone()
        }),
        format!(
            "build context `{}` is not a directory; set `context` to the directory the \
             Dockerfile's COPY paths are relative to",
            missing.display()
        )
    );
    assert_eq!(
        err(Build {
            secrets: vec![BuildSecret::file("pip", dir.path().join("pip.conf"))],
            ..base.clone()
        }),
        format!(
            "build secret `pip` reads file `{}`, which does not exist",
            dir.path().join("pip.conf").display()
        )
    );
    // A relative Dockerfile path is the current directory's, as docker's `-f` takes it:
    // the error names that directory, and the file of that name in the context.
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        err(base.clone().dockerfile("Dockerfile")),
        format!(
            "Dockerfile `Dockerfile` does not exist; set `dockerfile` to its path (the \
             default is `Dockerfile` in the context); a relative path is taken from the \
             current directory (`{}`), as with docker's `-f`, not from the context; did you \
             mean `{}`?",
            cwd.display(),
            dir.path().join("Dockerfile").display()
        )
    );
    // A target matches case-insensitively, as BuildKit matches stage names.
    assert!(Build {
        target: Some("A".into()),
        ..base.clone()
    }
    .check_with_env(&|_| None)
    .is_ok());
    // A remote context is not looked for on disk.
    assert!(Build {
        context: "https://example.org/repo.git#main".into(),
        ..Build::new(".")
    }
    .check_with_env(&|_| None)
    .is_ok());
}

#[test]
fn attestations_render_as_buildx_flags() {
    let mut build = Build {
        context: PathBuf::from("/src"),
        output: Output::Push,
        tags: vec!["127.0.0.1:5000/app:1".into()],
        ..Build::new(".")
    };
    let line = |b: &Build| b.command().to_string();
    assert!(!line(&build).contains("--provenance"));
    build.provenance = Provenance::Off;
    assert!(line(&build).contains(" --provenance=false "));
    build.provenance = Provenance::Min;
    assert!(line(&build).contains(" --provenance=mode=min "));
    build.provenance = Provenance::Max;
    build.sbom = true;
    build.attest = vec!["type=sbom,generator=127.0.0.1:5000/scanner".into()];
    assert!(
        line(&build).contains(
            " --provenance=mode=max --sbom=true --attest type=sbom,generator=127.0.0.1:5000/scanner "
        ),
        "{}",
        line(&build)
    );
}

#[test]
fn secret_looking_values_are_told_from_commits_versions_and_images() {
    for secret in [
        "ghp_0123456789abcdefABCDEF0123456789abcd",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "q8Xz2LmP0vR7tY4wK9sN3bH6jD1fG5cA",
    ] {
        assert!(looks_like_secret_value(secret).is_some(), "{secret}");
    }
    for plain in [
        "3f9c2a7e1b8d4c6f0a5e9b2d7c1f8a4e6b3d9c0f",
        "sha256:4cc5addefaae8fe4cd4b9a3ed94cf7ead5a1b6ea9f00190073341c9ff6d9c71c",
        "buildkit-local/python:3.11",
        "1.2.3rc1",
        "production",
        "2026-11-30T21:33:28Z",
    ] {
        assert_eq!(looks_like_secret_value(plain), None, "{plain}");
    }
}

#[test]
fn max_provenance_refuses_a_secret_looking_build_arg_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let mut build = Build {
        context: dir.path().to_path_buf(),
        provenance: Provenance::Max,
        ..Build::new(".")
    };
    build
        .build_args
        .insert("UPSTREAM".into(), "glpat-abcdefghij0123456789".into());
    let err = build.check().unwrap_err().to_string();
    assert!(
        err.contains("build arg `UPSTREAM`")
            && err.contains("a GitLab token")
            && err.contains("mode=max")
            && !err.contains("glpat-abcdefghij"),
        "{err}"
    );
    build.provenance = Provenance::Min;
    build.check().unwrap();
}

#[test]
fn metadata_rows_read_the_digests_and_names() {
    let metadata = serde_json::json!({"buildx.build.ref": "default/default/x",
        "containerimage.digest": "sha256:d", "containerimage.config.digest": "sha256:c",
        "image.name": "web:1,web:latest"});
    let row: BuildMetadataRow = crate::rows::from_value(&metadata, "build metadata m").unwrap();
    assert_eq!(row.digest.as_deref(), Some("sha256:d"));
    assert_eq!(row.config_digest.as_deref(), Some("sha256:c"));
    assert_eq!(row.image_name.as_deref(), Some("web:1,web:latest"));
    let e = crate::rows::from_value::<BuildMetadataRow>(
        &serde_json::json!({"image.name": ["web:1"]}),
        "build metadata m",
    )
    .unwrap_err();
    assert!(format!("{e:#}").starts_with("build metadata m is JSON of an unexpected shape"));
}

#[test]
fn a_secret_looking_build_arg_is_passed_by_name_its_value_in_the_environment() {
    let value = "ghp_0123456789abcdefABCDEF0123456789abcd";
    let build = Build::new("/ctx")
        .build_arg("PIP_EXTRA", value)
        .build_arg("APP_UID", "10001");
    let cmd = build.command();
    let shown = cmd.to_string();
    assert!(
        shown.contains("--build-arg APP_UID=10001 --build-arg PIP_EXTRA "),
        "{shown}"
    );
    assert!(!shown.contains(value), "{shown}");
    assert_eq!(cmd.get_env("PIP_EXTRA"), Some(Some("***")));
    assert_eq!(cmd.get_env("APP_UID"), None);
}

#[test]
fn each_attestation_added_is_one_attest_flag_in_order() {
    let build = Build::new("/src")
        .tag("127.0.0.1:5000/app:1")
        .output(Output::Push)
        .attest("type=sbom,generator=127.0.0.1:5000/scanner")
        .attest("type=provenance,mode=max,builder-id=ci")
        .attest("type=provenance,mode=max")
        .attest("type=sbom");
    let line = build.command().to_string();
    assert!(
        line.contains(
            " --provenance=mode=max --sbom=true \
             --attest type=sbom,generator=127.0.0.1:5000/scanner \
             --attest type=provenance,mode=max,builder-id=ci "
        ),
        "{line}"
    );
    // The provenance modes and SBOM read as buildx's own flags.
    for (spec, flag) in [
        ("type=provenance", " --provenance=mode=min "),
        ("type=provenance,mode=min", " --provenance=mode=min "),
        ("type=provenance,disabled=true", " --provenance=false "),
    ] {
        let line = Build::new("/src").attest(spec).command().to_string();
        assert!(line.contains(flag), "{spec}: {line}");
    }
    assert!(!Build::new("/src")
        .command()
        .to_string()
        .contains("--attest"));
}

/// Moved from the e2e golden test `build_defaults_and_outputs`: the progress
/// modes the library does not choose itself.
#[test]
fn progress_modes() {
    let tty = Build {
        progress: Some("tty".into()),
        ..Build::new(".")
    };
    assert_eq!(
        tty.command().to_string(),
        "docker buildx build --progress=tty ."
    );
    let quiet = Build {
        progress: None,
        ..Build::new(".")
    };
    assert_eq!(quiet.command().to_string(), "docker buildx build .");
}
