//! `docker buildx bake`: golden exports of builds and bake command lines, the errors for
//! what bake cannot express, `--print` reading back every exported field, and a real bake
//! of the webapp that yields the same image as `docker buildx build`.

use std::path::{Path, PathBuf};

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{oci_labels, Build, Output};
use buildkit_lib::docker::{Bake, BakeFile};
use buildkit_lib::pipeline::Pipeline;
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};
use serde_json::{json, Value};

fn webapp_dir() -> PathBuf {
    e2e::repo_root().join("fixtures/webapp")
}

/// The bake file as its JSON (`group`, `target`; keys as bake names them).
/// The entitlements the bake's command grants (`--allow=...`, buildx 0.17 and newer).
fn grants(bake: &Bake) -> Vec<String> {
    bake.command()
        .argv()
        .iter()
        .filter_map(|a| a.strip_prefix("--allow=").map(str::to_string))
        .collect()
}

fn json_of(file: &BakeFile) -> Value {
    serde_json::from_str(&file.to_json()).unwrap()
}

/// The bake target of `build`, its paths as the build has them (a file with no
/// directory), as JSON.
fn target_of(build: &Build) -> Result<Value, String> {
    let mut file = BakeFile::new("");
    file.build("t", build)
        .map_err(|e| format!("{:#}", e.root_cause()))?;
    Ok(json_of(&file)["target"]["t"].clone())
}

/// Removes images when dropped, so a failing test still cleans up.
struct Cleanup {
    runner: Runner,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for image in &self.images {
            let _ = self
                .runner
                .capture(&Cmd::new("docker").args(["image", "rm", "--force", image]));
        }
    }
}

/// A build using every field a bake target can hold, its paths under `root`.
fn every_field(root: &Path) -> Build {
    every_field_reading(root, Path::new("/run/secrets/pip.conf"))
}

/// [`every_field`] with its `pip_conf` secret read from `pip_conf`.
fn every_field_reading(root: &Path, pip_conf: &Path) -> Build {
    Build::new(root.join("fixtures/webapp"))
        .dockerfile(root.join("fixtures/webapp/Dockerfile.production"))
        .target("runtime")
        .tag("127.0.0.1:5000/webapp:0.9.2")
        .tag("127.0.0.1:5000/webapp:latest")
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .build_arg("APP_UID", "10001")
        .build_context(
            "meta",
            root.join("target/buildkit/build/meta")
                .display()
                .to_string(),
        )
        .build_context("base", "docker-image://busybox:1.36")
        .secret_file("pip_conf", pip_conf)
        .secret_env("npm_token", "NPM_TOKEN")
        .network("none")
        .pull(true)
        .no_cache(true)
        .attest("type=provenance,mode=max")
        .platform("linux/amd64")
        .platform("linux/arm64")
        .output(Output::Push)
        .cache_from(Cache::registry("127.0.0.1:5000/webapp:cache"))
        .cache_from(Cache::local(root.join("target/buildx-cache")))
        .cache_to(Cache::registry("127.0.0.1:5000/webapp:cache").mode_max(true))
        .cache_to(Cache::inline())
        // Reporting options: not part of the target.
        .metadata_file(PathBuf::from("target/metadata.json"))
        .labels(oci_labels(
            "webapp",
            "0.9.2",
            "90dd6032fac8bda1b6c4436a2e65de27961ed071",
            "2026-01-10T00:30:00Z",
            "",
        ))
}

#[test]
fn from_build_keeps_paths_relative_to_the_current_directory_and_the_dockerfile_to_the_context() {
    let target = target_of(&every_field(Path::new(""))).unwrap();
    assert_eq!(
        target,
        json!({
            "context": "fixtures/webapp",
            "dockerfile": "Dockerfile.production",
            "target": "runtime",
            "tags": ["127.0.0.1:5000/webapp:0.9.2", "127.0.0.1:5000/webapp:latest"],
            "args": {"APP_UID": "10001", "PYTHON_IMAGE": "buildkit-local/python:3.11"},
            "labels": {
                "org.opencontainers.image.created": "2026-01-10T00:30:00Z",
                "org.opencontainers.image.revision": "90dd6032fac8bda1b6c4436a2e65de27961ed071",
                "org.opencontainers.image.title": "webapp",
                "org.opencontainers.image.version": "0.9.2"
            },
            "platforms": ["linux/amd64", "linux/arm64"],
            "cache-from": [
                "type=registry,ref=127.0.0.1:5000/webapp:cache",
                "type=local,src=target/buildx-cache"
            ],
            "cache-to": [
                "type=registry,ref=127.0.0.1:5000/webapp:cache,mode=max",
                "type=inline"
            ],
            "output": ["type=registry"],
            "contexts": {
                "base": "docker-image://busybox:1.36",
                "meta": "target/buildkit/build/meta"
            },
            "secret": ["id=pip_conf,src=/run/secrets/pip.conf", "id=npm_token,env=NPM_TOKEN"],
            "network": "none",
            "attest": ["type=provenance,mode=max"],
            "pull": true,
            "no-cache": true
        })
    );
    let outputs = [
        (Output::Default, vec![]),
        (Output::Load, vec!["type=docker"]),
        (Output::Push, vec!["type=registry"]),
        (Output::Local("dist".into()), vec!["type=local,dest=dist"]),
        (
            Output::Tar("out/image.tar".into()),
            vec!["type=tar,dest=out/image.tar"],
        ),
    ];
    for (output, want) in outputs {
        let target = target_of(&Build::new(".").output(output)).unwrap();
        let output = target["output"].as_array().cloned().unwrap_or_default();
        assert_eq!(output, want);
        // No Dockerfile given: bake's default, `Dockerfile` in the context.
        assert_eq!(target["dockerfile"], Value::Null);
        assert_eq!(target["context"], ".");
    }
}

#[test]
fn bake_file_json_is_golden_with_paths_relative_to_its_directory() {
    let root = e2e::repo_root();
    let mut builder = BakeFile::new(root.join("target/buildkit/build"));
    builder.build("webapp", &every_field(&root)).unwrap();
    builder
        .build(
            "files",
            &Build::new(root.join("fixtures/webapp/src"))
                .output(Output::Local(root.join("target/buildkit/build/files"))),
        )
        .unwrap();
    builder.group("release", ["webapp"]).unwrap();
    let file = builder;
    assert_eq!(
        file.to_json(),
        r#"{
  "group": {
    "default": {
      "targets": [
        "webapp",
        "files"
      ]
    },
    "release": {
      "targets": [
        "webapp"
      ]
    }
  },
  "target": {
    "files": {
      "context": "../../../fixtures/webapp/src",
      "output": [
        "type=local,dest=files"
      ]
    },
    "webapp": {
      "context": "../../../fixtures/webapp",
      "dockerfile": "Dockerfile.production",
      "target": "runtime",
      "tags": [
        "127.0.0.1:5000/webapp:0.9.2",
        "127.0.0.1:5000/webapp:latest"
      ],
      "args": {
        "APP_UID": "10001",
        "PYTHON_IMAGE": "buildkit-local/python:3.11"
      },
      "labels": {
        "org.opencontainers.image.created": "2026-01-10T00:30:00Z",
        "org.opencontainers.image.revision": "90dd6032fac8bda1b6c4436a2e65de27961ed071",
        "org.opencontainers.image.title": "webapp",
        "org.opencontainers.image.version": "0.9.2"
      },
      "platforms": [
        "linux/amd64",
        "linux/arm64"
      ],
      "cache-from": [
        "type=registry,ref=127.0.0.1:5000/webapp:cache",
        "type=local,src=../../buildx-cache"
      ],
      "cache-to": [
        "type=registry,ref=127.0.0.1:5000/webapp:cache,mode=max",
        "type=inline"
      ],
      "output": [
        "type=registry"
      ],
      "contexts": {
        "base": "docker-image://busybox:1.36",
        "meta": "meta"
      },
      "secret": [
        "id=pip_conf,src=/run/secrets/pip.conf",
        "id=npm_token,env=NPM_TOKEN"
      ],
      "network": "none",
      "pull": true,
      "no-cache": true,
      "attest": [
        "type=provenance,mode=max"
      ]
    }
  }
}
"#
    );
    // Read back unchanged.
    assert_eq!(BakeFile::parse(&file.to_json()).unwrap(), file);
    // And its network modes in the compose file written beside it.
    let out = tempfile::tempdir().unwrap();
    let bake = file
        .write(&Runner::new(), &out.path().join("docker-bake.json"))
        .unwrap();
    let compose = out.path().join("docker-bake.network.compose.yaml");
    assert!(
        bake.command().to_string().contains(&format!(
            "-f {} -f {}",
            compose.display(),
            out.path().join("docker-bake.json").display()
        )),
        "{}",
        bake.command()
    );
    assert_eq!(
        std::fs::read_to_string(&compose).unwrap(),
        "# Written with the bake file beside it: each target's network mode, which\n\
         # buildx 0.13 reads only from compose files. Pass it first:\n\
         # docker buildx bake -f <this file> -f <the bake file>\n\
         services:\n  \"webapp\":\n    build:\n      network: \"none\"\n"
    );
}

#[test]
fn bake_command_lines_are_golden() {
    let plain = Bake::new("/srv/app/target/docker-bake.json");
    let cmd = plain.command();
    assert_eq!(
        cmd.to_string(),
        "docker buildx bake -f /srv/app/target/docker-bake.json --progress=plain"
    );
    // Bake resolves the file's relative paths from the directory it runs in.
    // (A plan's JSON names the directory a command runs in.)
    let action = serde_json::to_value(buildkit_lib::plan::Action::Run(cmd.clone())).unwrap();
    assert_eq!(action["cwd"], "/srv/app/target", "{action}");

    let every = plain
        .clone()
        .target("webapp")
        .target("files")
        .metadata_file("/srv/app/target/bake-metadata.json")
        .builder("multi")
        .set("webapp.args.APP_UID=1000")
        .set("*.platform=linux/arm64");
    assert_eq!(
        every.command().to_string(),
        "docker buildx bake --builder multi \
         -f /srv/app/target/docker-bake.json \
         --metadata-file /srv/app/target/bake-metadata.json --progress=plain \
         --set webapp.args.APP_UID=1000 --set '*.platform=linux/arm64' webapp files"
    );
    // `Bake::print`'s command line (a dry run answers nothing: no definition to read).
    let dry = Runner::new().echo(Echo::Silent).dry_run(true);
    let _ = plain.target("webapp").print(&dry);
    assert_eq!(
        dry.recorded().commands(),
        [[
            "docker",
            "buildx",
            "bake",
            "-f",
            "/srv/app/target/docker-bake.json",
            "--print",
            "webapp"
        ]]
    );
}

#[test]
fn what_bake_cannot_express_is_refused_with_the_fix() {
    let err = |build: Build| target_of(&build).unwrap_err();
    assert_eq!(
        err(Build::new(".")
            .extra_arg("--provenance=false")
            .extra_arg("--sbom=false")),
        "Build.extra_args (--provenance=false --sbom=false) cannot be expressed in a bake \
         file: a bake target has no raw flags; express each one as a Build field, or clear \
         `extra_args` and pass it to the bake command as an override (`Bake::set`, \
         `<target>.<key>=<value>`)"
    );
    assert_eq!(
        err(Build::new(".").builder("multi")),
        "Build.builder `multi` cannot be expressed in a bake file: the builder is chosen \
         once for the whole bake command; clear `builder` on the Build and set \
         `Bake::builder` instead"
    );
    assert_eq!(
        err(Build::new("-")),
        "Build.context `-` (a context read from stdin) cannot be expressed in a bake file: \
         bake reads no context from stdin; write the context to a directory and set \
         `context` to it"
    );

    let mut builder = BakeFile::new("/srv");
    let chained = builder
        .build("bad", &Build::new(".").builder("multi"))
        .unwrap_err();
    assert_eq!(
        format!("{chained:#}"),
        "cannot export bake target `bad`: Build.builder `multi` cannot be expressed in a \
         bake file: the builder is chosen once for the whole bake command; clear `builder` \
         on the Build and set `Bake::builder` instead"
    );
    let web = Build::new("/srv/web");
    assert_eq!(
        builder.build("web app", &web).unwrap_err().to_string(),
        "`web app` is not a valid bake target or group name: bake accepts only letters, \
         digits, `_` and `-` (`web-app` would do)"
    );
    builder.build("web", &web).unwrap();
    assert_eq!(
        builder.build("web", &web).unwrap_err().to_string(),
        "`web` is already in the bake file; give each target its own name"
    );
    assert_eq!(
        builder.build("default", &web).unwrap_err().to_string(),
        "`default` cannot name a target here: it is the group of all targets; pick another \
         name"
    );
    assert_eq!(
        builder.group("ci", ["web", "api"]).unwrap_err().to_string(),
        "group `ci` lists `api`, which is not in the bake file; add the target first"
    );
    assert_eq!(
        json_of(&builder)["group"]["default"],
        json!({"targets": ["web"]})
    );
}

#[test]
fn a_pipeline_exports_its_image_builds_named_after_their_steps() {
    let target_dir = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new("build", target_dir.path());
    assert_eq!(
        pipeline.bake_file(&pipeline.dir()).unwrap_err().to_string(),
        "pipeline `build` has no image builds to export to a bake file; add them with \
         `Pipeline::image_build`"
    );
    pipeline.step("lint", |_| Ok(()));
    let web = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .tag("web:1")
        .tag("web:latest")
        .output(Output::Load);
    let step = pipeline
        .image_build("image[3.11]", web.clone(), "web")
        .after(["lint"]);
    let debug = format!("{step:?}");
    assert!(debug.contains(r#"StepOutput(Image("web:1"))"#), "{debug}");
    pipeline.image_build("files", Build::new(webapp_dir().join("src")), "files");

    let file = json_of(&pipeline.bake_file(&pipeline.dir()).unwrap());
    assert_eq!(
        file["group"]["default"]["targets"],
        json!(["image-3-11", "files"])
    );
    // `..` resolves only through directories that exist (a fresh checkout has no target/).
    std::fs::create_dir_all(pipeline.dir()).unwrap();
    // The file belongs in the pipeline's directory: paths are relative to it.
    let web_target = &file["target"]["image-3-11"];
    // The pipeline keeps the build it was given: its tags are the target's.
    assert_eq!(web_target["tags"], json!(["web:1", "web:latest"]));
    let context = web_target["context"].as_str().unwrap();
    assert_eq!(
        pipeline.dir().join(context).canonicalize().unwrap(),
        webapp_dir().canonicalize().unwrap()
    );
    assert_eq!(web_target["dockerfile"], "Dockerfile.production");
    assert_eq!(web_target["output"], json!(["type=docker"]));

    pipeline.image_build("image.3.11", web, "web");
    assert_eq!(
        pipeline.bake_file(&pipeline.dir()).unwrap_err().to_string(),
        "steps `image[3.11]` and `image.3.11` of pipeline `build` would both be bake target \
         `image-3-11`; rename one of them"
    );
}

/// Each `k=v,...` entry as its set of fields (none of these hold a quoted comma).
fn by_field(entries: &Value) -> Vec<std::collections::BTreeSet<String>> {
    entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.as_str().unwrap().split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn print_reads_back_every_exported_field() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("fixtures/webapp")).unwrap();
    std::fs::create_dir_all(root.join("target/buildkit/build/meta")).unwrap();
    // buildx reads secret files even to print: this one must exist.
    std::fs::write(root.join("pip.conf"), "[global]\n").unwrap();
    let webapp_build = every_field_reading(root, &root.join("pip.conf"));
    let mut builder = BakeFile::new(root.join("target/buildkit/build"));
    builder.build("webapp", &webapp_build).unwrap();
    builder
        .build(
            "files",
            &Build::new(root.join("fixtures/webapp"))
                .output(Output::Tar(root.join("target/files.tar"))),
        )
        .unwrap();
    builder.group("release", ["webapp"]).unwrap();
    let exported = builder;
    let bake = exported
        .write(
            &runner,
            &root.join("target/buildkit/build/docker-bake.json"),
        )
        .unwrap();
    let compose = root.join("target/buildkit/build/docker-bake.network.compose.yaml");
    assert!(compose.is_file());
    assert!(
        bake.command()
            .to_string()
            .contains(&format!("-f {} -f ", compose.display())),
        "{}",
        bake.command()
    );

    // `--print` is read-only: it runs in a dry run too, and leaves nothing behind.
    let dry = runner.clone().dry_run(true).with_fresh_record();
    let printed = bake.print(&dry).unwrap();
    assert_eq!(dry.recorded().commands().len(), 1);
    assert_eq!(printed, bake.print(&runner).unwrap());

    // Printing the default group shows that group only (named groups are left out). Its
    // members are read by name: buildx 0.13 prints them in the file's order, 0.29 sorted.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let (printed, exported) = (json_of(&printed), json_of(&exported));
    assert_eq!(keys(&printed["group"]), ["default"]);
    let members = |g: &Value| {
        let mut names: Vec<String> = serde_json::from_value(g["targets"].clone()).unwrap();
        names.sort();
        names
    };
    assert_eq!(
        members(&printed["group"]["default"]),
        members(&exported["group"]["default"])
    );
    assert_eq!(keys(&printed["target"]), keys(&exported["target"]));
    for (name, want) in exported["target"].as_object().unwrap() {
        let got = &printed["target"][name];
        assert_eq!(got["context"], want["context"], "{name}: context");
        // buildx fills in the default Dockerfile name when none is given.
        assert_eq!(
            got["dockerfile"].as_str(),
            Some(want["dockerfile"].as_str().unwrap_or("Dockerfile")),
            "{name}: dockerfile"
        );
        assert_eq!(got["target"], want["target"], "{name}: target");
        // buildx drops duplicate tags; ours have none.
        for key in ["tags", "args", "labels", "platforms", "contexts"] {
            assert_eq!(got[key], want[key], "{name}: {key}");
        }
        // Entries are compared field by field: buildx 0.29 prints them as objects with
        // sorted keys (read back `type` first), 0.13 as the strings written.
        for key in ["cache-from", "cache-to", "output", "secret"] {
            assert_eq!(by_field(&got[key]), by_field(&want[key]), "{name}: {key}");
        }
        assert_eq!(got["pull"], want["pull"], "{name}: pull");
        assert_eq!(got["no-cache"], want["no-cache"], "{name}: no-cache");
        // buildx 0.13 does not read `network` from bake files and does not print it (the
        // compose companion carries it); later releases read and print it.
        assert!(
            got["network"].is_null() || got["network"] == want["network"],
            "{name}: network {:?}",
            got["network"]
        );
    }
    let webapp = &printed["target"]["webapp"];
    assert_eq!(webapp["context"], "../../../fixtures/webapp");
    assert_eq!(webapp["contexts"]["meta"], "meta");
    assert_eq!(webapp["secret"][0], "id=pip_conf,src=../../../pip.conf");

    // A named group prints as itself, under a `default` group naming it.
    let release = json_of(&bake.target("release").print(&runner).unwrap());
    assert_eq!(release["group"]["release"]["targets"], json!(["webapp"]));
    assert_eq!(release["group"]["default"]["targets"], json!(["release"]));
    assert_eq!(keys(&release["target"]), ["webapp"]);
}

#[test]
fn baking_the_webapp_gives_the_same_image_as_build_run() {
    // Without default attestations the result is one image manifest (not an index with a
    // provenance manifest that records how buildx was called), so buildx reports its
    // config digest, and the two builds can be compared.
    let runner = e2e::engine()
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
        .echo(Echo::Silent);
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta");
    std::fs::create_dir(&meta).unwrap();
    std::fs::copy(webapp_dir().join("version.json"), meta.join("version.json")).unwrap();

    let repo = e2e::unique("bkl-bake-webapp");
    let (built_tag, baked_tag) = (format!("{repo}:built"), format!("{repo}:baked"));
    let _cleanup = Cleanup {
        runner: runner.clone(),
        images: vec![built_tag.clone(), baked_tag.clone()],
    };
    let base = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .target("runtime")
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE)
        // Reproducible timestamps in the image config and history.
        .build_arg("SOURCE_DATE_EPOCH", "1767225600")
        .build_context("meta", meta.display().to_string())
        .network("none")
        .output(Output::Load)
        .labels(oci_labels(
            "webapp",
            "0.9.2",
            "90dd6032fac8bda1b6c4436a2e65de27961ed071",
            "2026-01-01T00:00:00Z",
            "",
        ));
    let build = base.clone().tag(built_tag.clone());
    let built = build.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let built_config = built.metadata["containerimage.config.digest"]
        .as_str()
        .expect("a config digest in the build metadata")
        .to_string();

    let mut builder = BakeFile::new(dir.path());
    builder
        .build("webapp", &base.clone().tag(baked_tag.clone()))
        .unwrap();
    let file = builder;
    let target = &json_of(&file)["target"]["webapp"];
    // The context is absolute when it shares only `/` with the temporary directory, else
    // relative to it (a checkout under the temporary directory); either way it leads to
    // the webapp. The `meta` context is beside the file: relative.
    let context = target["context"].as_str().unwrap();
    assert_eq!(
        dir.path().join(context).canonicalize().unwrap(),
        webapp_dir().canonicalize().unwrap()
    );
    let shares_more_than_root = dir
        .path()
        .components()
        .zip(webapp_dir().components())
        .take_while(|(a, b)| a == b)
        .count()
        > 1;
    assert_eq!(
        Path::new(context).is_absolute(),
        !shares_more_than_root,
        "{context}"
    );
    assert_eq!(target["contexts"]["meta"], "meta");
    let bake = file
        .write(&runner, &dir.path().join("docker-bake.json"))
        .unwrap();
    // The webapp's context (and its Dockerfile) is outside the file's directory: bake must
    // be granted reading it, exactly that (buildx 0.17 and newer), or be run without
    // `--allow` (buildx 0.13, which has none); buildx is asked which.
    let webapp = webapp_dir().canonicalize().unwrap();
    assert_eq!(grants(&bake), [format!("fs.read={}", webapp.display())]);
    let under_test = e2e::engine_under_test();
    let recorded = runner.with_fresh_record();
    let baked = bake.run(&recorded).unwrap_or_else(|e| panic!("{e:#}"));
    let commands = recorded.recorded().commands();
    // buildx's version is asked once per runner: here, unless an earlier step of this
    // runner already asked it; then the bake.
    let bake_line = commands.last().unwrap();
    assert_eq!(
        &bake_line[..3],
        ["docker", "buildx", "bake"],
        "{commands:?}"
    );
    assert!(
        commands[..commands.len() - 1] == [vec!["docker", "buildx", "version"]]
            || commands.len() == 1,
        "{commands:?}"
    );
    let allowed: Vec<&String> = bake_line
        .iter()
        .filter(|a| a.starts_with("--allow"))
        .collect();
    if under_test.buildx_at_least(0, 17) {
        assert_eq!(
            allowed,
            [&format!("--allow=fs.read={}", webapp.display())],
            "{}",
            under_test.describe()
        );
    } else {
        assert!(allowed.is_empty(), "{}: {allowed:?}", under_test.describe());
    }
    assert_eq!(baked.keys().collect::<Vec<_>>(), ["webapp"]);
    let result = &baked["webapp"];
    // The same manifest, hence the same config (the manifest names its config digest,
    // `built_config`).
    assert!(built_config.starts_with("sha256:"), "{built_config}");
    assert!(built.digest.is_some());
    assert_eq!(result.digest, built.digest);
    assert_eq!(result.tags, [format!("docker.io/library/{baked_tag}")]);
    assert_eq!(
        e2e::image_inspect(&runner, &baked_tag)["Id"],
        e2e::image_inspect(&runner, &built_tag)["Id"]
    );
}

#[test]
fn a_missing_dockerfile_is_a_clear_error_before_buildx_runs() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let mut builder = BakeFile::new(dir.path());
    builder
        .build(
            "app",
            &Build::new(dir.path().join("app"))
                .dockerfile(dir.path().join("app/Dockerfile.missing"))
                .output(Output::Load),
        )
        .unwrap();
    let path = dir.path().join("docker-bake.json");
    let bake = builder.write(&runner, &path).unwrap();
    let recorded = runner.with_fresh_record();
    let err = bake.run(&recorded).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "target `app` of {} reads Dockerfile `Dockerfile.missing`, and `{}` does not \
             exist; bake reads `dockerfile` relative to the target's context (`app`): fix \
             `dockerfile` in the bake file, or export it again",
            path.display(),
            dir.path().join("app/Dockerfile.missing").display()
        )
    );
    assert!(
        recorded.recorded().commands().is_empty(),
        "buildx never started"
    );

    let unknown = bake.clone().target("nope").run(&recorded).unwrap_err();
    assert_eq!(
        format!("{unknown:#}"),
        format!(
            "nothing to bake in {}: `nope` is neither a target nor a group of the bake file; \
             its targets are: app",
            path.display()
        )
    );

    // What only buildx can tell (a stage not in the Dockerfile) fails the command, named.
    std::fs::write(
        dir.path().join("app/Dockerfile.missing"),
        "FROM scratch AS a\n",
    )
    .unwrap();
    let mut text: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    text["target"]["app"]["target"] = json!("nope");
    let file = BakeFile::parse(&text.to_string()).unwrap();
    let bake = file.write(&runner, &path).unwrap();
    let failed = bake.run(&runner.clone().echo(Echo::Silent)).unwrap_err();
    let text = format!("{failed:#}");
    assert!(
        text.starts_with(&format!(
            "cannot bake the default group of {}: process didn't exit successfully: \
             `docker buildx bake -f {}",
            path.display(),
            path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("target stage \"nope\" could not be found"),
        "{text}"
    );
}

#[test]
fn the_network_mode_reaches_run_steps() {
    let runner = e2e::engine().echo(Echo::Silent);
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {} AS probe\nRUN ls /sys/class/net > /interfaces\n\
             FROM scratch AS out\nCOPY --from=probe /interfaces /interfaces\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut builder = BakeFile::new(dir.path());
    builder
        .build(
            "probe",
            &Build::new(app)
                .target("out")
                .network("none")
                .no_cache(true)
                .output(Output::Local(out.clone())),
        )
        .unwrap();
    let bake = builder
        .write(&runner, &dir.path().join("docker-bake.json"))
        .unwrap();
    let result = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    // A local export has no image: only the build reference.
    assert_eq!(result["probe"].digest, None);
    // `--network none`: the RUN step saw the loopback interface only.
    assert_eq!(
        std::fs::read_to_string(out.join("interfaces")).unwrap(),
        "lo\n"
    );
}

/// Two targets sharing a stage, baked with their explanations: each target's explanation
/// has its own rows and the shared stage's, and after one file changed, the target that
/// copies it names it while the other is all cached.
#[test]
fn each_baked_target_explains_itself() {
    let runner = e2e::engine().echo(Echo::Silent);
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {} AS base\nRUN echo {nanos} > /base\n\n\
             FROM base AS web\nCOPY web.txt /web.txt\nRUN cat /web.txt\n\n\
             FROM base AS api\nRUN echo api > /api\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    std::fs::write(app.join("web.txt"), "one\n").unwrap();
    let web_tag = format!("{}:web", e2e::unique("bkl-bake-why"));
    let api_tag = format!("{}:api", e2e::unique("bkl-bake-why"));
    let _cleanup = Cleanup {
        runner: runner.clone(),
        images: vec![web_tag.clone(), api_tag.clone()],
    };
    let mut builder = BakeFile::new(dir.path());
    for (name, stage, tag) in [("web", "web", &web_tag), ("api", "api", &api_tag)] {
        let build = Build::new(&app)
            .target(stage)
            .tag(tag.as_str())
            .network("none")
            .output(Output::Load);
        builder.build(name, &build).unwrap();
    }
    let bake = builder
        .write(&runner, &dir.path().join("docker-bake.json"))
        .unwrap()
        .explain_records(dir.path().join("why"));
    assert!(bake.command().to_string().contains("--progress=rawjson"));

    let first = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let web = first["web"].explanation.as_ref().unwrap();
    let lines: Vec<Option<usize>> = web.rows().iter().map(|r| r.line).collect();
    assert_eq!(lines, [Some(2), Some(5), Some(6)], "{web}");
    let api = first["api"].explanation.as_ref().unwrap();
    let lines: Vec<Option<usize>> = api.rows().iter().map(|r| r.line).collect();
    assert_eq!(lines, [Some(2), Some(9)], "{api}");
    assert!(dir.path().join("why/web.json").is_file());
    assert_eq!(first["web"].cache_warnings, []);

    std::fs::write(app.join("web.txt"), "two\n").unwrap();
    let second = bake.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let web = second["web"].explanation.as_ref().unwrap();
    assert!(
        web.summary().ends_with(
            "first rebuilt: COPY web.txt /web.txt (Dockerfile:5) because web.txt changed"
        ),
        "{web}"
    );
    let api = second["api"].explanation.as_ref().unwrap();
    assert_eq!(api.cached_count(), (2, 2), "{api}");
    assert_eq!(api.summary(), "2/2 instructions cached; nothing rebuilt");
}

/// Proves, on the engine under test, that a bake whose targets reach outside the file's
/// directory (context, named context, local cache, local output) and use the host network
/// runs: on buildx 0.17 and newer (Debian sid's 0.29: "additional privileges requested"
/// otherwise) granted exactly what they need, on buildx 0.13 (Debian trixie's, which has no
/// `bake --allow`) without `--allow`. A blanket grant is refused before buildx runs, and
/// what an override adds is granted by hand.
#[test]
fn bake_is_granted_exactly_what_its_targets_need() {
    let under_test = e2e::engine_under_test();
    let runner = e2e::engine().echo(Echo::Silent);
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let root = root_path.as_path();
    let app = root.join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {} AS probe\nCOPY --from=shared hello.txt /hello.txt\n\
             RUN ls /sys/class/net > /interfaces && echo {} > /stamp\n\
             FROM scratch AS out\nCOPY --from=probe /interfaces /hello.txt /\n",
            e2e::BUSYBOX_IMAGE,
            e2e::unique("bake-allow")
        ),
    )
    .unwrap();
    std::fs::create_dir(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/hello.txt"), "hello\n").unwrap();
    let (cache, dist) = (root.join("cache"), root.join("out/dist"));
    let bake_dir = root.join("bake");
    std::fs::create_dir(&bake_dir).unwrap();
    let mut builder = BakeFile::new(&bake_dir);
    builder
        .build(
            "probe",
            &Build::new(&app)
                .target("out")
                .network("host")
                .build_context("shared", root.join("shared").display().to_string())
                .cache_from(Cache::local(&cache))
                .cache_to(Cache::local(&cache).mode_max(true))
                .output(Output::Local(dist.clone())),
        )
        .unwrap();
    let bake = builder
        .write(&runner, &bake_dir.join("docker-bake.json"))
        .unwrap();
    let want = [
        format!("fs.read={}", app.display()),
        format!("fs.read={}", cache.display()),
        format!("fs.read={}", root.join("shared").display()),
        format!("fs.write={}", cache.display()),
        format!("fs.write={}", dist.display()),
        "network.host".to_string(),
    ];
    assert_eq!(grants(&bake), want);

    // A blanket grant never reaches buildx.
    let recorded = runner.with_fresh_record();
    let err = bake.clone().allow("fs.read=*").run(&recorded).unwrap_err();
    assert!(
        format!("{err:#}").contains("grant the exact paths instead"),
        "{err:#}"
    );
    assert!(recorded.recorded().commands().is_empty());

    let recorded = runner.with_fresh_record();
    bake.run(&recorded)
        .unwrap_or_else(|e| panic!("{}: {e:#}", under_test.describe()));
    let argv = recorded.recorded().commands().pop().unwrap();
    let allowed: Vec<String> = argv
        .iter()
        .filter_map(|a| a.strip_prefix("--allow=").map(str::to_string))
        .collect();
    if under_test.buildx_at_least(0, 17) {
        assert_eq!(allowed, want, "{}", under_test.describe());
    } else {
        assert!(allowed.is_empty(), "{}: {allowed:?}", under_test.describe());
    }
    // It ran on the host network (more than the loopback interface), read the named
    // context, wrote the output and the cache where the grants said.
    let interfaces = std::fs::read_to_string(dist.join("interfaces")).unwrap();
    assert_ne!(interfaces, "lo\n");
    assert_eq!(
        std::fs::read_to_string(dist.join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert!(cache.join("index.json").is_file());

    // Overrides count as buildx counts them: an output named on the command line needs no
    // grant (buildx grants it), so the file's output is no longer granted nor created; an
    // overridden named context is read from the override, and granted.
    let (elsewhere, other_shared) = (root.join("elsewhere"), root.join("other-shared"));
    std::fs::create_dir(&other_shared).unwrap();
    std::fs::write(other_shared.join("hello.txt"), "other\n").unwrap();
    std::fs::remove_dir_all(root.join("out")).unwrap();
    let moved = bake
        .clone()
        .set(format!(
            "probe.output=type=local,dest={}",
            elsewhere.display()
        ))
        .set(format!("*.contexts.shared={}", other_shared.display()));
    let want_moved = [
        format!("fs.read={}", app.display()),
        format!("fs.read={}", cache.display()),
        format!("fs.read={}", other_shared.display()),
        format!("fs.write={}", cache.display()),
        "network.host".to_string(),
    ];
    assert_eq!(grants(&moved), want_moved);
    moved
        .run(&runner)
        .unwrap_or_else(|e| panic!("{}: {e:#}", under_test.describe()));
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("hello.txt")).unwrap(),
        "other\n"
    );
    assert!(
        !root.join("out").exists(),
        "the overridden output is not created"
    );
    // What a target asks for that the library does not model is granted by hand.
    let insecure = bake.clone().allow("security.insecure");
    assert!(insecure
        .command()
        .to_string()
        .contains(" --allow=network.host --allow=security.insecure -f "));
}
