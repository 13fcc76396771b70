//! Build caches: the export attributes (`compression`, `force-compression`,
//! `oci-mediatypes`, `image-manifest`, `ignore-error`) against the real engine and the
//! loopback registry, and the GitHub Actions cache v1/v2 against the real buildx and a
//! fake `docker` playing newer and older builders (GitHub's cache service cannot be
//! reached from here: the v2 command lines and refusals are checked, not a real upload).

use std::path::Path;

use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{Bake, BakeFile};
use buildkit_lib::docker::{Build, Output};

/// The first BuildKit release that exports a registry or local cache as one OCI image
/// manifest by default (the library's own threshold is crate-private).
const IMAGE_MANIFEST_DEFAULT_BUILDKIT: semver::Version = semver::Version::new(0, 21, 0);
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};
use e2e::cache_not_written as not_written;
use serde_json::Value;

/// The GitHub Actions variables, all cleared: a test states the ones it wants, so a run
/// inside a real GitHub Actions job sees the same thing.
const GHA_VARS: [&str; 5] = [
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_CACHE_SERVICE_V2",
    "GITHUB_ACTIONS",
];

/// A token-shaped value: it must never show up in an argument, an error or a log.
const TOKEN: &str = "ghs_NEVERSHOWNtokenValue123";

fn without_gha(runner: Runner) -> Runner {
    GHA_VARS.iter().fold(runner, |r, k| r.env_remove(*k))
}

/// The environment of a hosted runner's step that exposed the runtime (v2 service).
fn with_gha_v2(runner: Runner) -> Runner {
    without_gha(runner)
        .env("GITHUB_ACTIONS", "true")
        .env("ACTIONS_RUNTIME_TOKEN", TOKEN)
        .env("ACTIONS_RESULTS_URL", "http://127.0.0.1:9/results/")
        .env("ACTIONS_CACHE_URL", "http://127.0.0.1:9/cache/")
        .env("ACTIONS_CACHE_SERVICE_V2", "True")
}

/// A context whose one `RUN` step is new on every call (so each build exports fresh layers).
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN echo {} > /stamp\n",
            e2e::BUSYBOX_IMAGE,
            e2e::unique("cache-attrs")
        ),
    )
    .unwrap();
    dir
}

fn build_in(dir: &Path, tag: &str) -> Build {
    Build::new(dir)
        .tag(tag)
        .network("host")
        .output(Output::Load)
        .read_facts(false)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The layer media types of the cache manifest a local cache directory holds.
fn local_cache_layers(dir: &Path) -> (String, Vec<String>) {
    let index = read_json(&dir.join("index.json"));
    let entry = &index["manifests"][0];
    let digest = entry["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest = read_json(&dir.join("blobs/sha256").join(digest));
    // An image manifest lists `layers`; BuildKit's index form lists them in `manifests`,
    // beside the cache configuration.
    let listed = manifest["layers"]
        .as_array()
        .or(manifest["manifests"].as_array())
        .unwrap();
    let layers = listed
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .filter(|t| t != "application/vnd.buildkit.cacheconfig.v0")
        .collect();
    (entry["mediaType"].as_str().unwrap().to_string(), layers)
}

fn remove_image(runner: &Runner, tag: &str) {
    let _ = runner.capture(&Cmd::new("docker").args(["image", "rm", "-f", tag]));
}

#[test]
fn local_cache_with_zstd_oci_media_types_and_one_image_manifest() {
    let runner = without_gha(e2e::engine());
    let ctx = context();
    let cache_dir = ctx.path().join("cache");
    let tag = format!("{}:1", e2e::unique("bkl-cache-zstd"));
    let cache = Cache::local(&cache_dir)
        .mode_max(true)
        .ignore_error(true)
        .compression("zstd", Some(3), true)
        .oci_mediatypes(true)
        .image_manifest(true);
    let build = build_in(ctx.path(), &tag).cache_to(cache);
    build
        .run(&runner)
        .expect("the engine's buildx accepts every attribute");
    remove_image(&runner, &tag);
    assert!(build.command().to_string().contains(&format!(
        "--cache-to type=local,dest={},mode=max,ignore-error=true,compression=zstd,\
         compression-level=3,force-compression=true,oci-mediatypes=true,image-manifest=true",
        cache_dir.display()
    )));
    let (top, layers) = local_cache_layers(&cache_dir);
    // image-manifest=true: one OCI image manifest, not an index.
    assert_eq!(top, "application/vnd.oci.image.manifest.v1+json");
    assert!(!layers.is_empty());
    for layer in &layers {
        assert_eq!(layer, "application/vnd.oci.image.layer.v1.tar+zstd");
    }

    // Without force-compression BuildKit keeps the gzip blobs the layers already have:
    // `compression=zstd` alone does not recompress them (BuildKit 0.13 and 0.25 alike).
    // Without image-manifest, the form is BuildKit's default: an index up to 0.20 (Docker
    // 26.1, the oldest engine), one image manifest from 0.21 on (Docker 28.1 and newer,
    // today's 28.5 with BuildKit 0.25). Either is read back; `image_manifest(false)` asks
    // for the index on both.
    let under_test = e2e::engine_under_test();
    let manifest_by_default = under_test.engine_at_least(28, 1);
    // The builder's BuildKit as `docker buildx inspect` reports it; the engine's own
    // builder in a distribution build reports `v0.0.0+unknown`, and runs what its engine
    // release vendors (0.21 from Docker 28.1 on).
    let inspect = runner
        .capture(&Cmd::new("docker").args(["buildx", "inspect"]))
        .unwrap()
        .stdout;
    let reported = inspect
        .lines()
        .find_map(|l| l.trim().strip_prefix("BuildKit version:"))
        .map(|v| v.trim().trim_start_matches('v'))
        .and_then(|v| semver::Version::parse(v).ok());
    let manifest_buildkit = match &reported {
        Some(v) if v.major > 0 || v.minor > 0 => {
            semver::Version::new(v.major, v.minor, v.patch) >= IMAGE_MANIFEST_DEFAULT_BUILDKIT
        }
        _ => under_test.engine_at_least(28, 1),
    };
    assert_eq!(
        manifest_buildkit,
        manifest_by_default,
        "{}: {inspect}",
        under_test.describe()
    );
    let index = "application/vnd.oci.image.index.v1+json";
    let default_form = if manifest_by_default {
        "application/vnd.oci.image.manifest.v1+json"
    } else {
        index
    };
    for (image_manifest, want) in [(None, default_form), (Some(false), index)] {
        let ctx2 = context();
        let dir2 = ctx2.path().join("cache");
        let mut cache = Cache::local(&dir2).compression("zstd", None, false);
        if let Some(on) = image_manifest {
            cache = cache.image_manifest(on);
        }
        let log = ctx2.path().join("build.log");
        let build = build_in(ctx2.path(), &tag).cache_to(cache.clone());
        build.run(&runner.clone().log_to(&log)).unwrap();
        remove_image(&runner, &tag);
        let (top, layers) = local_cache_layers(&dir2);
        assert_eq!(top, want, "{cache}, {}: {layers:?}", under_test.describe());
        assert!(!layers.is_empty());
        for layer in &layers {
            assert_eq!(layer, "application/vnd.oci.image.layer.v1.tar+gzip");
        }
        // The progress says which form it wrote, in BuildKit's words for each.
        let text = std::fs::read_to_string(&log).unwrap();
        let said = if top.contains("manifest.v1") {
            "writing cache image manifest"
        } else {
            "writing cache manifest"
        };
        assert!(text.contains(said), "{said}: {text}");
    }
}

#[test]
fn registry_cache_for_registries_without_indexes() {
    let runner = without_gha(e2e::engine());
    let ctx = context();
    let tag = format!("{}:1", e2e::unique("bkl-cache-ecr"));
    let cache_ref = format!("{}/{}:cache", e2e::REGISTRY, e2e::unique("bkl-cache-ecr"));
    let cache = Cache::registry(&cache_ref)
        .mode_max(true)
        .compression("zstd", None, true)
        .oci_mediatypes(true)
        .image_manifest(true)
        .ignore_error(true);
    let build = build_in(ctx.path(), &tag).cache_to(cache.clone());
    build
        .run(&runner)
        .expect("the engine's buildx accepts every attribute");
    remove_image(&runner, &tag);
    let raw = runner
        .capture(&Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", &cache_ref]))
        .unwrap();
    let manifest: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{manifest}"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    // The same value imports it (buildx accepts a cache written as one manifest).
    let again = build_in(ctx.path(), &tag).cache_from(cache);
    again.run(&runner).unwrap();
    remove_image(&runner, &tag);
    assert!(again
        .command()
        .to_string()
        .contains(&format!("--cache-from type=registry,ref={cache_ref} ")));
}

#[test]
fn ignore_error_lets_a_failed_cache_export_pass() {
    let runner = without_gha(e2e::engine());
    let ctx = context();
    let tag = format!("{}:1", e2e::unique("bkl-cache-ignore"));
    // Nothing listens on this loopback port: the export fails.
    let dead = format!("127.0.0.1:{}/nothing:cache", e2e::free_port());
    let failing = build_in(ctx.path(), &tag).cache_to(Cache::registry(&dead));
    // The image is built and loaded before the cache export fails: with the cache
    // optional (the default) the build passes and says which cache it did not write...
    let optional = failing
        .run(&runner)
        .expect("an optional cache does not fail the build");
    let caches = not_written(&optional);
    assert_eq!(caches.len(), 1);
    assert!(caches[0].message.contains("connection refused"));
    // ...required, it fails, saying the same.
    let err = format!(
        "{:#}",
        failing
            .clone()
            .cache_required(true)
            .run(&runner)
            .unwrap_err()
    );
    assert!(
        err.contains(&format!("built and loaded; cache not written to {dead}: ")),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    let ignored = build_in(ctx.path(), &tag).cache_to(Cache::registry(&dead).ignore_error(true));
    let result = ignored
        .run(&runner)
        .expect("ignore-error=true: the build passes");
    assert_eq!(not_written(&result).len(), 1, "still said");
    remove_image(&runner, &tag);
}

#[test]
fn an_image_manifest_without_oci_media_types_is_refused_before_buildkit_is_asked() {
    // BuildKit 0.13 answers only "invalid configuration for remote cache" to this.
    let runner = without_gha(e2e::runner());
    let ctx = context();
    let build = build_in(ctx.path(), "x:1").cache_to(
        Cache::local(ctx.path().join("c"))
            .image_manifest(true)
            .oci_mediatypes(false),
    );
    let err = format!("{:#}", build.run(&runner).unwrap_err());
    assert_eq!(
        err,
        format!(
            "cache `type=local,dest={},oci-mediatypes=false,image-manifest=true`: \
             image-manifest=true writes an OCI image manifest and needs OCI media types; \
             drop `oci_mediatypes(false)`",
            ctx.path().join("c").display()
        )
    );
    assert!(runner.recorded().commands().is_empty());
}

/// A fake `docker`: `buildx version` prints `$BUILDX`, `buildx inspect` prints driver
/// `$DRIVER` and BuildKit `$BUILDKIT`, `version` prints `$ENGINE`; `buildx build` records
/// its arguments and environment names in `$RECORD`, prints the token it was given and
/// fails (a tool that leaks its environment into an error).
const FAKE_DOCKER: &str = r#"case "$1 $2" in
"buildx version") echo "github.com/docker/buildx $BUILDX 1234567"; exit 0;;
"buildx inspect") printf 'Name:   b\nDriver: %s\n\nNodes:\nName: b0\nBuildKit version: %s\n' "$DRIVER" "$BUILDKIT"; exit 0;;
"version --format") echo "$ENGINE"; exit 0;;
"buildx build") printf '%s\n' "$@" > "$RECORD"; echo "token=$ACTIONS_RUNTIME_TOKEN" >&2; exit 1;;
esac
echo "unexpected: $*" >&2; exit 3"#;

fn fake_runner(
    fake: &e2e::FakeBin,
    record: &Path,
    buildx: &str,
    driver: &str,
    buildkit: &str,
    engine: &str,
) -> Runner {
    with_gha_v2(e2e::runner())
        .env("PATH", fake.path_env())
        .env("DOCKER_HOST", "unix:///fake/gha/docker.sock")
        .env("RECORD", record.display().to_string())
        .env("BUILDX", buildx)
        .env("DRIVER", driver)
        .env("BUILDKIT", buildkit)
        .env("ENGINE", engine)
}

fn gha_build(dir: &Path) -> Build {
    Build::new(dir)
        .tag("app:1")
        .cache_from(Cache::gha().scope("web"))
        .cache_to(Cache::gha().scope("web").mode_max(true).ignore_error(true))
}

#[test]
fn gha_v2_on_builders_too_old_for_it_is_refused_with_the_fix() {
    let fake = e2e::FakeBin::new().script("docker", FAKE_DOCKER);
    let ctx = context();
    let record = ctx.path().join("argv");
    let fix = "create a docker-container builder with a newer BuildKit (`docker buildx create \
               --driver docker-container --use`; docker/setup-buildx-action does this in a \
               workflow)";
    let case = |buildx: &str, driver: &str, buildkit: &str, engine: &str| {
        let runner = fake_runner(&fake, &record, buildx, driver, buildkit, engine);
        let err = format!("{:#}", gha_build(ctx.path()).run(&runner).unwrap_err());
        assert!(!err.contains(TOKEN), "{err}");
        assert!(!record.exists(), "no build may start: {err}");
        err
    };
    assert_eq!(
        case("v0.13.1", "docker", "v0.0.0+unknown", "26.1.5"),
        "buildx 0.13.1 cannot use the GitHub Actions cache v2: it does not pass \
         ACTIONS_RESULTS_URL to BuildKit (buildx reads it from 0.21.0 on); install a newer \
         buildx (docker/setup-buildx-action installs the latest)"
    );
    assert_eq!(
        case("v0.21.2", "docker", "v0.0.0+unknown", "26.1.5+dfsg1"),
        format!(
            "builder `the current builder` uses the BuildKit built into Docker engine \
             26.1.5+dfsg1, older than BuildKit 0.20.0 (engine 26 has BuildKit 0.13; 28.0 is \
             the first engine with 0.20), and the GitHub Actions cache v2 needs 0.20.0 or \
             newer: {fix}, or upgrade the engine"
        )
    );
    assert_eq!(
        case("v0.21.2", "docker-container", "v0.13.2", "28.1.0"),
        format!(
            "builder `the current builder` (driver docker-container) runs BuildKit 0.13.2, and \
             the GitHub Actions cache v2 needs BuildKit 0.20.0 or newer: {fix}"
        )
    );
}

#[test]
fn gha_v2_on_a_new_enough_builder_passes_version_2_and_never_the_token() {
    let fake = e2e::FakeBin::new().script("docker", FAKE_DOCKER);
    let ctx = context();
    let record = ctx.path().join("argv");
    for (driver, buildkit, engine) in [
        ("docker-container", "v0.20.2", "26.1.5"),
        ("docker", "v0.0.0+unknown", "28.0.4"),
    ] {
        let runner = fake_runner(&fake, &record, "v0.21.2", driver, buildkit, engine);
        let err = format!("{:#}", gha_build(ctx.path()).run(&runner).unwrap_err());
        let argv = std::fs::read_to_string(&record).unwrap();
        std::fs::remove_file(&record).unwrap();
        let argv: Vec<&str> = argv.lines().collect();
        let at = |flag: &str| argv.iter().position(|a| *a == flag).map(|i| argv[i + 1]);
        assert_eq!(at("--cache-from"), Some("type=gha,scope=web,version=2"));
        assert_eq!(
            at("--cache-to"),
            Some("type=gha,scope=web,mode=max,version=2,ignore-error=true")
        );
        assert!(!argv
            .iter()
            .any(|a| a.contains(TOKEN) || a.contains("127.0.0.1:9")));
        // The fake printed the token on stderr: the error shows it masked.
        assert!(err.contains("token=***"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
    // A v1-only environment: version=1, no builder question asked.
    let runner = fake_runner(
        &fake,
        &record,
        "v0.13.1",
        "docker",
        "v0.0.0+unknown",
        "26.1.5",
    )
    .env_remove("ACTIONS_CACHE_SERVICE_V2")
    .env_remove("ACTIONS_RESULTS_URL");
    let _ = gha_build(ctx.path()).run(&runner);
    let argv = std::fs::read_to_string(&record).unwrap();
    assert!(argv.contains("type=gha,scope=web,version=1\n"), "{argv}");
    assert!(runner
        .recorded()
        .commands()
        .iter()
        .all(|a| a.get(2).map(String::as_str) != Some("inspect")));
}

#[test]
fn gha_in_a_run_step_without_the_runtime_names_the_action_that_exposes_it() {
    let runner = without_gha(e2e::runner()).env("GITHUB_ACTIONS", "true");
    let ctx = context();
    let err = format!("{:#}", gha_build(ctx.path()).run(&runner).unwrap_err());
    assert_eq!(
        err,
        "cache `type=gha,scope=web` cannot be used: this GitHub Actions step does not see the \
         runtime variables the gha cache needs (ACTIONS_RUNTIME_TOKEN, and ACTIONS_RESULTS_URL \
         with ACTIONS_CACHE_SERVICE_V2=true, or the older ACTIONS_CACHE_URL): the runner gives \
         these variables to actions, not to `run:` steps: add `- uses: \
         crazy-max/ghaction-github-runtime@v3` before this step (it exports every ACTIONS_* \
         variable to the later steps of the job)"
    );
    assert!(runner.recorded().commands().is_empty());
}

/// What the engine under test's own builder does with a v2 gha cache, as its versions say
/// (read raw, not through the library): buildx 0.13.1 (Docker 26.1, the oldest engine) is
/// refused before buildx runs; buildx 0.29 with the BuildKit built into Docker 28.5 (0.25,
/// reported as `v0.0.0+unknown` by Debian's build, so the engine's version decides) passes
/// the gate, and BuildKit itself refuses the fake token: the build started, and said why.
#[test]
fn gha_v2_on_the_engines_own_builder_is_refused_or_reaches_buildkit_as_its_versions_say() {
    let under_test = e2e::engine_under_test();
    let runner = with_gha_v2(e2e::engine());
    let ctx = context();
    let build = build_in(ctx.path(), "never-built:1").cache_to(Cache::gha().gha_version(2));
    let err = format!("{:#}", build.run(&runner).unwrap_err());
    assert!(!err.contains(TOKEN), "{err}");
    let started = runner
        .recorded()
        .commands()
        .iter()
        .any(|argv| argv.get(2).map(String::as_str) == Some("build"));
    let describe = under_test.describe();
    if !under_test.buildx_at_least(0, 21) {
        assert!(
            err.starts_with(&format!(
                "buildx {} cannot use the GitHub Actions cache v2",
                under_test.buildx.split('+').next().unwrap()
            )),
            "{describe}: {err}"
        );
        assert!(!started, "{describe}");
    } else if !under_test.engine_at_least(28, 0) {
        assert!(
            err.contains("uses the BuildKit built into Docker engine"),
            "{describe}: {err}"
        );
        assert!(!started, "{describe}");
    } else {
        assert!(started, "{describe}: {err}");
        assert!(
            err.contains("failed to configure gha cache exporter"),
            "{describe}: {err}"
        );
    }
    // In a dry run the plan shows the service it will use, and asks the builder nothing.
    let dry = with_gha_v2(e2e::runner()).dry_run(true);
    build.run(&dry).unwrap();
    let command = dry
        .recorded()
        .commands()
        .into_iter()
        .find(|argv| argv[..3] == ["docker", "buildx", "build"])
        .unwrap()
        .join(" ");
    assert!(
        command.contains("--cache-to type=gha,version=2 "),
        "{command}"
    );
}

#[test]
fn bake_checks_the_gha_caches_of_the_targets_it_builds() {
    let ctx = context();
    let mut builder = BakeFile::new(ctx.path());
    builder
        .build(
            "app",
            &build_in(ctx.path(), "bake-gha:1").cache_to(Cache::gha().scope("app").mode_max(true)),
        )
        .unwrap();
    let file: serde_json::Value = serde_json::from_str(&builder.to_json()).unwrap();
    assert_eq!(
        file["target"]["app"]["cache-to"],
        serde_json::json!(["type=gha,scope=app,mode=max"])
    );
    let path = ctx.path().join("docker-bake.json");
    std::fs::write(&path, builder.to_json()).unwrap();
    let bake = Bake::new(&path);
    let runner = without_gha(e2e::runner());
    let err = format!("{:#}", bake.run(&runner).unwrap_err());
    assert!(
        err.starts_with(&format!(
            "target `app` of {}: cache `type=gha,scope=app,mode=max` cannot be used: the gha \
             cache needs the GitHub Actions runtime",
            path.display()
        )),
        "{err}"
    );
    // With the runtime exposed, the real buildx of this machine is named too old (0.13,
    // the oldest engine's), or (0.29, today's) bake runs and BuildKit refuses the fake
    // token.
    let under_test = e2e::engine_under_test();
    let runner = with_gha_v2(e2e::engine());
    let err = format!("{:#}", bake.run(&runner).unwrap_err());
    assert!(!err.contains(TOKEN), "{err}");
    if under_test.buildx_at_least(0, 21) && under_test.engine_at_least(28, 0) {
        assert!(
            err.contains("failed to configure gha cache exporter"),
            "{}: {err}",
            under_test.describe()
        );
    } else {
        assert!(
            err.contains("cannot use the GitHub Actions cache v2")
                || err.contains("the GitHub Actions cache v2 needs"),
            "{}: {err}",
            under_test.describe()
        );
    }
    // Attributes a backend would ignore are refused when the target is exported.
    let mut builder = BakeFile::new(ctx.path());
    let err = builder
        .build(
            "bad",
            &build_in(ctx.path(), "bake-gha:1")
                .cache_to(Cache::gha().compression("zstd", None, false)),
        )
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("the gha backend stores layers"),
        "{err:#}"
    );
}

/// buildx (0.13 and 0.29 alike) drops a `type=gha` cache without a word and exits 0 when
/// the GitHub Actions runtime variables are missing, so a user would believe a cache was
/// written. Proves, on the engine under test, that however the cache reaches the command
/// (typed, raw in `extra_args`, in any spelling buildx reads, in a bake file as a string
/// or an object, in an HCL file, as an override) the library refuses it first, naming the
/// variables, before any build starts.
#[test]
fn a_gha_cache_without_the_runtime_is_refused_however_it_is_spelled() {
    let under_test = e2e::engine_under_test();
    let runner = without_gha(e2e::engine());
    let ctx = context();

    // The danger, as buildx has it: the build passes, and no cache went anywhere.
    let raw = runner.with_fresh_record();
    raw.capture(
        &Cmd::new("docker")
            .args([
                "buildx",
                "build",
                "--network=host",
                "--cache-to",
                "type=gha",
            ])
            .arg(ctx.path()),
    )
    .unwrap_or_else(|e| panic!("{}: buildx no longer drops it: {e}", under_test.describe()));

    let refused = |what: &str, result: anyhow::Result<()>, recorded: &Runner| {
        let err = format!("{:#}", result.expect_err(what));
        assert!(
            err.contains("cannot be used") && err.contains("ACTIONS_RUNTIME_TOKEN"),
            "{what}: {err}"
        );
        let built = recorded.recorded().commands().into_iter().find(|argv| {
            matches!(argv.get(2).map(String::as_str), Some("build" | "bake"))
                && !argv.iter().any(|a| a == "--print")
        });
        assert_eq!(built, None, "{what}: nothing may build ({err})");
    };
    let build = |extra: &[&str]| {
        extra
            .iter()
            .fold(build_in(ctx.path(), "never-built:gha"), |b, a| {
                b.extra_arg(*a)
            })
    };
    for (what, b) in [
        (
            "raw --cache-to",
            build(&["--cache-to", "type=gha,mode=max"]),
        ),
        (
            "raw --cache-from=",
            build(&["--cache-from=type=gha,scope=web"]),
        ),
        (
            "a quoted key in capitals",
            build(&["--cache-to", "\"TYPE=gha\",mode=max"]),
        ),
    ] {
        let recorded = runner.with_fresh_record();
        refused(what, b.run(&recorded).map(|_| ()), &recorded);
    }
    // Variables that are set but empty are missing to buildx too.
    let empty = runner
        .clone()
        .env("GITHUB_ACTIONS", "true")
        .env("ACTIONS_RUNTIME_TOKEN", "")
        .env("ACTIONS_RESULTS_URL", "")
        .env("ACTIONS_CACHE_URL", "")
        .with_fresh_record();
    let typed = build_in(ctx.path(), "never-built:gha").cache_to(Cache::gha());
    let err = format!("{:#}", typed.run(&empty).unwrap_err());
    assert!(err.contains("does not see the runtime variables"), "{err}");
    assert!(empty.recorded().commands().is_empty());
    let no_url = runner
        .clone()
        .env("ACTIONS_RUNTIME_TOKEN", TOKEN)
        .env("ACTIONS_RESULTS_URL", "")
        .with_fresh_record();
    let err = format!("{:#}", typed.run(&no_url).unwrap_err());
    assert!(!err.contains(TOKEN), "{err}");
    assert!(no_url.recorded().commands().is_empty(), "{err}");

    // Bake files: a string in another spelling, an object (as newer buildx prints them),
    // an override, and an HCL file the library reads through `bake --print`.
    let json = ctx.path().join("docker-bake.json");
    for (what, entry) in [
        (
            "a bake string entry",
            serde_json::json!("Type=gha,mode=max"),
        ),
        (
            "a bake object entry",
            serde_json::json!({"mode": "max", "type": "gha"}),
        ),
    ] {
        let file = serde_json::json!({"target": {"app": {"context": ".", "cache-to": [entry]}}});
        std::fs::write(&json, file.to_string()).unwrap();
        let recorded = runner.with_fresh_record();
        refused(
            what,
            Bake::new(&json).target("app").run(&recorded).map(|_| ()),
            &recorded,
        );
    }
    std::fs::write(&json, r#"{"target": {"app": {"context": "."}}}"#).unwrap();
    let recorded = runner.with_fresh_record();
    let set = Bake::new(&json)
        .target("app")
        .set("*.cache-to=type=gha,mode=max");
    refused("a bake override", set.run(&recorded).map(|_| ()), &recorded);
    let hcl = ctx.path().join("docker-bake.hcl");
    std::fs::write(
        &hcl,
        "target \"app\" {\n  context = \".\"\n  cache-to = [\"type=gha,mode=max\"]\n}\n",
    )
    .unwrap();
    let recorded = runner.with_fresh_record();
    refused(
        "an HCL bake file",
        Bake::new(&hcl).target("app").run(&recorded).map(|_| ()),
        &recorded,
    );
}
