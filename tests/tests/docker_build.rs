//! Docker image builds against the real engine and the loopback registry: the webapp's
//! runtime stage, a multi-platform push, registry cache, build secrets, push retries, and
//! bad input refused with exact messages.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{oci_labels, Build, Output};
use buildkit_lib::docker::{BuilderCreate, NodeSpec};
use buildkit_lib::docker::{ImagetoolsCreate, Push};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner, Session};

/// Tests that use the registry run one at a time: one of them stops it for a while.
static REGISTRY_LOCK: Mutex<()> = Mutex::new(());

fn registry_lock() -> std::sync::MutexGuard<'static, ()> {
    REGISTRY_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn webapp_dir() -> PathBuf {
    e2e::repo_root().join("fixtures/webapp")
}

/// Runs its commands when dropped, so a failing test still removes what it created.
struct Cleanup {
    runner: Runner,
    cmds: Vec<Cmd>,
}

impl Cleanup {
    fn new(runner: &Runner) -> Cleanup {
        Cleanup {
            runner: runner.clone().echo(Echo::Silent),
            cmds: Vec::new(),
        }
    }
    fn image(&mut self, reference: &str) {
        self.cmds
            .push(Cmd::new("docker").args(["image", "rm", "--force", reference]));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for cmd in self.cmds.iter().rev() {
            let _ = self.runner.capture(cmd);
        }
    }
}

/// A build context directory holding one Dockerfile.
fn context_with(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn capture(runner: &Runner, args: &[&str]) -> String {
    runner
        .capture(&Cmd::new("docker").args(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"))
        .stdout
}

#[test]
fn webapp_runtime_stage_is_built_loaded_and_checked() {
    let runner = e2e::engine();
    let tag = format!("{}:0.9.2", e2e::unique("bkl-webapp"));
    let extra_tag = format!("{}:latest", tag.split(':').next().unwrap());
    let mut cleanup = Cleanup::new(&runner);
    cleanup.image(&tag);
    cleanup.image(&extra_tag);
    let session = Session::new("webapp");
    let build = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .target("runtime")
        .tag(tag.clone())
        .tag(extra_tag.clone())
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .network("none")
        .output(Output::Load)
        .labels(oci_labels(
            "webapp",
            "0.9.2",
            "90dd6032fac8bda1b6c4436a2e65de27961ed071",
            "2026-01-10T00:30:00Z",
            "https://example.org/webapp",
        ))
        .with_session_labels(&session);

    let recorded = runner.with_fresh_record();
    let result = build.run(&recorded).unwrap_or_else(|e| panic!("{e:#}"));
    // Besides the build, only BuildKit's record of it is asked for (buildx's version, and
    // where buildx keeps build records the record the metadata names); the image facts
    // come from one query on the engine's socket, recorded like a command.
    let commands = recorded.recorded().commands();
    let history = e2e::buildx_supports(&runner, e2e::BuildxFeature::BuildHistory).is_ok();
    assert_eq!(commands.len(), if history { 4 } else { 3 }, "{commands:?}");
    assert_eq!(&commands[0][..3], ["docker", "buildx", "build"]);
    assert_eq!(commands[1], ["docker", "buildx", "version"]);
    if history {
        // The record the metadata names (its steps reach a pipeline's report: the e2e
        // test `a_successful_build_records_its_reference_and_where_possible_its_cached_steps`).
        let id = result.metadata["buildx.build.ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        assert_eq!(
            &commands[2][..4],
            ["docker", "buildx", "history", "inspect"]
        );
        assert!(commands[2].iter().any(|w| w == id), "{commands:?}");
    }
    let get = commands.last().unwrap();
    assert_eq!(get[0], "GET");
    assert_eq!(get[2], format!("/images/{tag}/json"));
    assert_eq!(result.tags, vec![tag.clone(), extra_tag.clone()]);
    // The first image name buildx reports.
    assert_eq!(
        result.metadata["image.name"]
            .as_str()
            .and_then(|names| names.split(',').next()),
        Some(format!("docker.io/library/{tag}").as_str())
    );
    let digest = result
        .digest
        .clone()
        .expect("a digest in the metadata file");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(result.platforms, vec!["linux/amd64"]);

    // The image's config, as the engine reports it.
    let inspected = e2e::image_inspect(&runner, &tag);
    let size = inspected["Size"].as_u64().unwrap();
    assert_eq!(result.image_id.as_deref(), inspected["Id"].as_str());
    assert_eq!(result.size_bytes, Some(size));
    assert!(size > 1_000_000, "{size}");
    let repo_tags: Vec<&str> = inspected["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(repo_tags.contains(&tag.as_str()) && repo_tags.contains(&extra_tag.as_str()));
    let config = &inspected["Config"];
    assert_eq!(config["User"], "app");
    let ports: Vec<&String> = config["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["5000/tcp"]);
    let health = &config["Healthcheck"];
    assert_eq!(
        health["Test"],
        serde_json::json!(["CMD", "python3", "-m", "webapp.healthcheck"])
    );
    assert_eq!(health["Interval"], 30_000_000_000u64);
    let env_names: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str()?.split('=').next())
        .collect();
    assert!(env_names.contains(&"PORT"), "{env_names:?}");
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], "0.9.2");
    assert_eq!(labels["org.opencontainers.image.title"], "webapp");
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        "90dd6032fac8bda1b6c4436a2e65de27961ed071"
    );
    assert_eq!(labels["dev.buildkit-lib.run"], session.run_id.as_str());

    let history = runner
        .capture(
            &Cmd::new("docker")
                .args(["history", "--no-trunc", "--format", "{{json .}}", &tag])
                .read_only(),
        )
        .unwrap();
    let layers: Vec<serde_json::Value> = history
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(layers.iter().any(|l| {
        let created_by = l["CreatedBy"].as_str().unwrap_or("");
        created_by.contains("COPY /opt/app /opt/app") || created_by.contains("COPY --from=builder")
    }));
    assert!(layers
        .iter()
        .any(|l| l["Size"].as_str().is_some_and(|s| s != "0B")));

    // The image serves /api/health with its version, as a non-root user.
    let port = free_port();
    let name = e2e::unique("bkl-webapp-run");
    let run = Cmd::new("docker").args([
        "run",
        "-d",
        "--rm",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &format!("PORT={port}"),
        &tag,
    ]);
    runner.run(&run).unwrap();
    cleanup
        .cmds
        .push(Cmd::new("docker").args(["rm", "--force", &name]));
    let body = http_get_retrying(port, "/api/health", Duration::from_secs(20));
    assert!(body.contains("\"version\": \"0.9.2\""), "{body}");
    assert!(body.contains("\"status\": \"healthy\""), "{body}");
    assert_eq!(
        capture(&runner, &["exec", &name, "id", "-un"]).trim(),
        "app"
    );
}

#[test]
fn multi_platform_build_with_run_step_is_pushed_and_merged() {
    let runner = e2e::engine();
    let _registry = registry_lock();
    let repo = format!("{}/{}", e2e::REGISTRY, e2e::unique("bkl-multi"));
    // With the containerd image store a pushed build is also kept locally.
    let mut cleanup = Cleanup::new(&runner);
    for tag in ["1", "1-amd64", "1-arm64"] {
        cleanup.image(&format!("{repo}:{tag}"));
    }
    let ctx = context_with(&format!(
        "FROM {}\nARG NONCE\nRUN echo built-$(uname -m)-$NONCE > /out.txt\n",
        e2e::BUSYBOX_IMAGE
    ));
    let nonce = e2e::unique("nonce");
    let base = Build::new(ctx.path())
        .build_arg("NONCE", nonce)
        .network("none")
        .output(Output::Push);
    let build = base
        .clone()
        .tag(format!("{repo}:1"))
        .platform("linux/amd64")
        .platform("linux/arm64");
    let result = build.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let digest = result.digest.clone().unwrap();
    assert_eq!(result.platforms, vec!["linux/amd64", "linux/arm64"]);
    assert_eq!(
        e2e::registry::platforms(&runner, &format!("{repo}:1")).unwrap(),
        vec!["linux/amd64", "linux/arm64"]
    );
    // The registry serves the index under the digest the metadata file reported.
    let by_digest = e2e::registry::inspect_raw(&runner, &format!("{repo}@{digest}")).unwrap();
    assert_eq!(
        e2e::registry::platforms_of_manifest(&by_digest),
        vec!["linux/amd64", "linux/arm64"]
    );

    // One image per platform, merged into one index with imagetools create.
    for platform in ["amd64", "arm64"] {
        let single = base
            .clone()
            .tag(format!("{repo}:1-{platform}"))
            .platform(format!("linux/{platform}"));
        single.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    }
    let merge = ImagetoolsCreate::new()
        .tag(format!("{repo}:merged"))
        .source(format!("{repo}:1-amd64"))
        .source(format!("{repo}:1-arm64"));
    merge.run(&runner).unwrap();
    assert_eq!(
        e2e::registry::platforms(&runner, &format!("{repo}:merged")).unwrap(),
        vec!["linux/amd64", "linux/arm64"]
    );
}

/// Build-cache record ids whose description mentions `token` (`docker buildx du`).
fn cache_records(runner: &Runner, token: &str) -> Vec<String> {
    let out = capture(runner, &["buildx", "du", "--verbose"]);
    let mut ids = Vec::new();
    let mut id = String::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("ID:") {
            id = rest.trim().to_string();
        } else if line.starts_with("Description:") && line.contains(token) {
            ids.push(id.clone());
        }
    }
    ids
}

#[test]
fn registry_cache_is_used_after_the_local_cache_is_pruned() {
    let runner = e2e::engine();
    let _registry = registry_lock();
    let token = e2e::unique("cachetoken").replace('-', "_");
    let ctx = context_with(&format!(
        "FROM {}\nRUN echo {token} > /a && sleep 1\nRUN echo second-{token} > /b\n",
        e2e::BUSYBOX_IMAGE
    ));
    let cache_ref = format!("{}/{}:cache", e2e::REGISTRY, e2e::unique("bkl-cache"));
    let cache = Cache::registry(cache_ref.clone()).mode_max(true);
    let log = tempfile::tempdir().unwrap();
    let first_log = log.path().join("first.log");
    let tag = format!("{}:1", e2e::unique("bkl-cache-image"));
    let mut cleanup = Cleanup::new(&runner);
    cleanup.image(&tag);
    let base = Build::new(ctx.path())
        .tag(tag.clone())
        .network("none")
        .output(Output::Load);
    let first = base.clone().cache_to(cache.clone());
    first
        .run(&runner.clone().log_to(&first_log))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let first_text = std::fs::read_to_string(&first_log).unwrap();
    assert_eq!(cached_runs(&first_text, &token), 0, "{first_text}");
    // BuildKit's words for the form it wrote: an index by default up to BuildKit 0.20
    // (Docker 26.1, the oldest engine), one image manifest from 0.21 on (Docker 28.1 and
    // newer, today's 28.5); the second build below reads it back in either form.
    let under_test = e2e::engine_under_test();
    let said = if under_test.engine_at_least(28, 1) {
        "writing cache image manifest"
    } else {
        "writing cache manifest"
    };
    assert!(
        first_text.contains(said),
        "{}: {said}: {first_text}",
        under_test.describe()
    );

    // Remove exactly this build's local cache records (other tests share the engine), in
    // one prune: one record is the other's parent, and BuildKit 0.13 (the oldest engine's)
    // keeps a parent pruned before its child, in the order `du` lists them.
    let ids = cache_records(&runner, &token);
    assert_eq!(ids.len(), 2, "{ids:?}");
    capture(
        &runner,
        &[
            "buildx",
            "prune",
            "--all",
            "--force",
            "--filter",
            &format!("id=^({})$", ids.join("|")),
        ],
    );
    assert_eq!(cache_records(&runner, &token), Vec::<String>::new());

    let second_log = log.path().join("second.log");
    let second = base.cache_from(cache);
    second
        .run(&runner.clone().log_to(&second_log))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let text = std::fs::read_to_string(&second_log).unwrap();
    assert!(
        text.contains(&format!("importing cache manifest from {cache_ref}")),
        "{text}"
    );
    assert_eq!(cached_runs(&text, &token), 2, "{text}");
}

/// How many `RUN` steps mentioning `token` the progress log reports as `CACHED`.
fn cached_runs(log: &str, token: &str) -> usize {
    log.lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].contains("RUN echo") && w[0].contains(token) && w[1].ends_with("CACHED"))
        .count()
}

#[test]
fn build_secret_is_usable_and_leaves_no_trace() {
    let sentinel = format!("s3ntinel-{}-do-not-leak", std::process::id());
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("pip.conf");
    let file_sentinel = format!("{sentinel}-file");
    std::fs::write(&secret_file, &file_sentinel).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("build.log");
    let runner = e2e::engine()
        .env("BKL_TEST_SECRET_TOKEN", &sentinel)
        .log_to(&log);
    let tag = format!("{}:1", e2e::unique("bkl-secret"));
    let mut cleanup = Cleanup::new(&runner);
    cleanup.image(&tag);
    let ctx = context_with(&format!(
        "FROM {}\n\
         RUN --mount=type=secret,id=token,required=true \
             --mount=type=secret,id=pipconf,required=true \
             echo {nonce} > /nonce \
             && sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha \
             && wc -c < /run/secrets/pipconf > /pipconf.len\n",
        e2e::BUSYBOX_IMAGE,
        // Secrets are not part of the cache key: a unique step makes the RUN really run.
        nonce = e2e::unique("nonce"),
    ));
    let build = Build::new(ctx.path())
        .tag(tag.clone())
        .secret_env("token", "BKL_TEST_SECRET_TOKEN")
        .secret_file("pipconf", &secret_file)
        .network("none")
        .output(Output::Load);
    let result = build.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));

    // The RUN step saw both secrets.
    let raw = e2e::runner();
    let seen = capture(
        &raw,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &tag,
            "cat",
            "/token.sha",
            "/pipconf.len",
        ],
    );
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        vec![
            e2e::sha256_hex(sentinel.as_bytes()),
            file_sentinel.len().to_string()
        ]
    );
    // And neither value is anywhere it could be read back.
    let history = capture(&raw, &["history", "--no-trunc", "--format", "json", &tag]);
    let inspect = capture(&raw, &["image", "inspect", &tag]);
    let build_log = std::fs::read_to_string(&log).unwrap();
    let report = format!("{result:?}");
    for (what, text) in [
        ("docker history", &history),
        ("docker image inspect", &inspect),
        ("the build log", &build_log),
        ("the build result", &report),
    ] {
        assert!(
            !text.contains(&sentinel),
            "the secret leaked into {what}: {text}"
        );
    }
    assert!(
        history.contains("--mount=type=secret") || history.contains("RUN"),
        "{history}"
    );
    assert!(
        build_log.contains("sha256sum /run/secrets/token"),
        "{build_log}"
    );
}

#[test]
fn push_is_retried_until_the_registry_is_back() {
    let runner = e2e::engine();
    let _registry = registry_lock();
    let tag = format!("{}/{}:1", e2e::REGISTRY, e2e::unique("bkl-retry"));
    let mut cleanup = Cleanup::new(&runner);
    cleanup.image(&tag);
    let ctx = context_with(&format!(
        "FROM {}\nLABEL retry.test=\"{}\"\n",
        e2e::BUSYBOX_IMAGE,
        e2e::unique("retry")
    ));
    Build::new(ctx.path())
        .tag(tag.clone())
        .output(Output::Load)
        .run(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));

    let script = |what: &str| {
        Cmd::new("bash")
            .args(["xtask/engine-up.sh", what])
            .cwd(e2e::repo_root())
            .timeout(Duration::from_secs(60))
    };
    runner.run(&script("registry-stop")).unwrap();
    let restarter = Restarter(Some({
        let runner = runner.clone();
        let start = script("registry-start");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            runner.run(&start).map(|_| ()).map_err(|e| e.to_string())
        })
    }));

    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("push.log");
    let started = Instant::now();
    let pushed = Push::new(&tag)
        .retry(8, Duration::from_secs(1))
        .run(&runner.clone().log_to(&log));
    let restarted = restarter.join();
    pushed.unwrap_or_else(|e| panic!("{e:#}"));
    restarted.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("push of {tag} failed (attempt 1 of 8): ")),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        e2e::registry::platforms(&runner, &tag).unwrap(),
        vec!["linux/amd64"]
    );
}

/// Joins the registry-restarting thread, also when the test fails half-way: the registry
/// must come back for the other tests.
struct Restarter(Option<std::thread::JoinHandle<Result<(), String>>>);

impl Restarter {
    fn join(mut self) -> Result<(), String> {
        self.0.take().unwrap().join().unwrap()
    }
}

impl Drop for Restarter {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

// ---- bad input: refused before anything runs, with exact messages ----

fn error_of(build: &Build, runner: &Runner) -> String {
    let err = build.run(runner).expect_err("the build must be refused");
    format!("{err:#}")
}

#[test]
fn missing_dockerfile_is_refused() {
    let runner = e2e::runner();
    let ctx = tempfile::tempdir().unwrap();
    let build = Build::new(ctx.path()).dockerfile(ctx.path().join("Dockerfile.production"));
    assert_eq!(
        error_of(&build, &runner),
        format!(
            "Dockerfile `{}` does not exist; set `dockerfile` to its path (the default is \
             `Dockerfile` in the context)",
            ctx.path().join("Dockerfile.production").display()
        )
    );
    assert!(runner.recorded().commands().is_empty());
}

#[test]
fn unknown_target_stage_is_refused_with_the_stages_listed() {
    let runner = e2e::runner();
    let dockerfile = webapp_dir().join("Dockerfile.production");
    let build = Build::new(webapp_dir())
        .dockerfile(dockerfile.clone())
        .target("tests");
    assert_eq!(
        error_of(&build, &runner),
        format!(
            "target stage `tests` is not in Dockerfile `{}`; its stages are: meta, builder, runtime",
            dockerfile.display()
        )
    );
    assert!(runner.recorded().commands().is_empty());
}

#[test]
fn invalid_tags_are_refused() {
    let runner = e2e::runner();
    let cases = [
        (
            "WebApp:0.9.2",
            "invalid tag `WebApp:0.9.2`: the repository `WebApp` must be lower-case (try `webapp`)",
        ),
        (
            "webapp:0.9.2+build.1",
            "invalid tag `webapp:0.9.2+build.1`: the tag `0.9.2+build.1` contains `+`; a tag may \
             contain only letters, digits, `_`, `.` and `-`",
        ),
    ];
    for (tag, expected) in cases {
        let build = Build::new(webapp_dir())
            .dockerfile(webapp_dir().join("Dockerfile.production"))
            .tag(tag);
        assert_eq!(error_of(&build, &runner), expected);
    }
    assert!(runner.recorded().commands().is_empty());
}

#[test]
fn secret_looking_build_arg_is_refused() {
    let runner = e2e::runner();
    let build = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .build_arg("GITHUB_TOKEN", "ghp_x");
    assert_eq!(
        error_of(&build, &runner),
        "build arg `GITHUB_TOKEN` looks like a secret (its name contains `TOKEN`), and build \
         args are readable in the image history; pass it as a build secret instead \
         (`Build::secret_env(\"github_token\", \"GITHUB_TOKEN\")`, read with \
         `RUN --mount=type=secret,id=github_token`)"
    );
    assert!(runner.recorded().commands().is_empty());
}

#[test]
fn gha_cache_without_the_runtime_token_is_refused() {
    let runner = e2e::runner()
        .env("ACTIONS_RUNTIME_TOKEN", "")
        .env("ACTIONS_CACHE_URL", "");
    let build = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .cache_from(Cache::gha());
    assert_eq!(
        error_of(&build, &runner),
        "cache `type=gha` cannot be used: the gha cache needs the GitHub Actions runtime \
         (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL), and this process is not in a GitHub \
         Actions job (GITHUB_ACTIONS is not `true`); use a registry or local cache here"
    );
}

#[test]
fn unreachable_engine_is_named() {
    let host = "unix:///nonexistent/buildkit-lib-test/docker.sock";
    let runner = e2e::runner()
        .env("DOCKER_HOST", host)
        .engine_help("`make engine` in this project");
    let out = tempfile::tempdir().unwrap();
    let metadata = out.path().join("metadata.json");
    let build = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .tag("webapp:0.9.2")
        .metadata_file(metadata.clone());
    let command = build.command().to_string();
    assert_eq!(
        error_of(&build, &runner),
        format!(
            "cannot build image webapp:0.9.2: the Docker engine at {host} does not answer: \
             `{command}`\nhelp: start it (`make engine` in this project), or point \
             DOCKER_HOST or `docker context use` at a running engine\n\
             --- last 1 lines of output\n\
             ERROR: Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
        )
    );
    assert!(!metadata.exists());
}

#[test]
fn multi_platform_load_needs_the_containerd_image_store() {
    // An engine without the containerd image store, played by a fake `docker`.
    let fake = e2e::FakeBin::new().script(
        "docker",
        r#"if [ "$1" = info ]; then echo '[["Backing Filesystem","extfs"],["Supports d_type","true"]]'; exit 0; fi
echo "unexpected: $*" >&2; exit 3"#,
    );
    let host = "unix:///fake/classic-store/docker.sock";
    let runner = e2e::runner()
        .env("PATH", fake.path_env())
        .env("DOCKER_HOST", host);
    let ctx = context_with("FROM scratch\n");
    let build = Build::new(ctx.path())
        .platform("linux/amd64")
        .platform("linux/arm64")
        .output(Output::Load);
    assert_eq!(
        error_of(&build, &runner),
        format!(
            "a multi-platform build (linux/amd64, linux/arm64) cannot be loaded: the engine at \
             {host} stores images without the containerd image store; enable it \
             (`\"features\": {{\"containerd-snapshotter\": true}}` in daemon.json), or push \
             instead (`Output::Push`), or build one platform at a time"
        )
    );
    // The answer is cached: a second refusal asks the engine no more.
    let _ = build.run(&runner);
    let asked: Vec<_> = runner
        .recorded()
        .commands()
        .into_iter()
        .filter(|argv| argv.get(1).map(String::as_str) == Some("info"))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(runner
        .recorded()
        .commands()
        .iter()
        .all(|argv| argv.get(1).map(String::as_str) != Some("buildx")));
}

#[test]
fn dry_run_prints_the_build_and_runs_nothing() {
    let runner = e2e::runner().dry_run(true);
    let build = Build::new(webapp_dir())
        .dockerfile(webapp_dir().join("Dockerfile.production"))
        .target("runtime")
        .tag("webapp:0.9.2")
        .output(Output::Load);
    let result = build.run(&runner).unwrap();
    // The digest a dry run shows is its placeholder; the image is not inspected for real.
    assert_eq!(result.digest.as_deref(), Some("sha256:<digest>"));
    let commands = runner.recorded().commands();
    assert_eq!(commands, Step::plan(&build, &runner).unwrap().commands());
    let built = commands
        .iter()
        .find(|argv| argv[..3] == ["docker", "buildx", "build"])
        .expect("the build command");
    let metadata = built.iter().position(|a| a == "--metadata-file").unwrap();
    assert_eq!(built[..metadata], build.command().argv()[..metadata]);
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// GET `path` from 127.0.0.1:`port` until it answers 200 or `limit` passes; the body.
fn http_get_retrying(port: u16, path: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut response = String::new();
                if stream.read_to_string(&mut response).is_ok()
                    && response.starts_with("HTTP/1.0 200")
                {
                    return response
                        .split("\r\n\r\n")
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                }
            }
        }
        if start.elapsed() > limit {
            panic!("nothing answered 200 on 127.0.0.1:{port}{path} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn builders_are_created_listed_and_removed() {
    let runner = e2e::engine();
    let name = e2e::unique("bkl-builder");
    // Remote nodes on closed loopback ports: creating and listing needs no BuildKit there.
    let first = BuilderCreate::new()
        .name(name.clone())
        .driver("remote")
        .node(
            NodeSpec::new("n1")
                .platform("linux/amd64")
                .endpoint("tcp://127.0.0.1:1"),
        );
    assert_eq!(first.run(&runner).unwrap(), name);
    let _cleanup = BuilderCleanup(runner.clone(), name.clone());
    let second_node = |create: BuilderCreate| {
        create
            .driver("remote")
            .node(
                NodeSpec::new("n2")
                    .platform("linux/arm64")
                    .endpoint("tcp://127.0.0.1:2"),
            )
            .append(true)
    };
    second_node(BuilderCreate::new().name(name.clone()))
        .run(&runner)
        .unwrap();

    let info = e2e::builder_info(&runner, &name).expect("the builder is listed");
    assert_eq!(info.driver, "remote");
    let nodes: Vec<_> = info
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.endpoint.as_str(), n.platforms.clone()))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("n1", "tcp://127.0.0.1:1", vec!["linux/amd64".to_string()]),
            ("n2", "tcp://127.0.0.1:2", vec!["linux/arm64".to_string()]),
        ]
    );
    let default = e2e::builder_info(&runner, "default").expect("the default builder");
    assert_eq!(default.driver, "docker");
    // Listed under its name (buildx 0.13 repeats a builder's line once per node; the
    // builder reads the same from any of them).
    assert_eq!(info.name, name);

    runner
        .run(&Cmd::new("docker").args(["buildx", "rm", &name]))
        .unwrap();
    assert_eq!(e2e::builder_info(&runner, &name), None);
    let append_without_name = second_node(BuilderCreate::new());
    assert_eq!(
        append_without_name.run(&runner).unwrap_err().to_string(),
        "`append` adds a node to an existing builder: set `name` to that builder"
    );
}

/// Removes a test builder when dropped (ignored when the test already removed it).
struct BuilderCleanup(Runner, String);

impl Drop for BuilderCleanup {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["buildx", "rm", &self.1]));
    }
}

#[test]
fn multi_node_builders_are_created_whole_or_not_at_all() {
    let runner = e2e::engine();
    let name = e2e::unique("bkl-farm");
    // Remote nodes on closed loopback ports: creating and listing needs no BuildKit there.
    let node = |n: &str, port: u16, platform: &str| {
        NodeSpec::new(n)
            .endpoint(format!("tcp://127.0.0.1:{port}"))
            .platform(platform)
    };
    let farm_of = |amd: NodeSpec, arm: NodeSpec| {
        BuilderCreate::new()
            .name(name.clone())
            .driver("remote")
            .node(amd)
            .node(arm)
    };
    let farm = farm_of(node("amd", 1, "linux/amd64"), node("arm", 2, "linux/arm64"));
    farm.run(&runner).unwrap();
    let _cleanup = BuilderCleanup(runner.clone(), name.clone());
    let info = e2e::builder_info(&runner, &name).expect("listed");
    let nodes: Vec<_> = info
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.platforms.clone()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("amd", vec!["linux/amd64".to_string()]),
            ("arm", vec!["linux/arm64".to_string()]),
        ]
    );
    // The name is taken now: refused, and the existing builder is left alone.
    let err = farm.run(&runner).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "a builder named {name} exists already; remove it (`docker buildx rm {name}`) or \
             choose another name"
        )
    );
    assert!(e2e::builder_exists(&runner, &name));
    runner
        .run(&Cmd::new("docker").args(["buildx", "rm", &name]))
        .unwrap();

    // buildx refuses the second node: the first one is not left behind.
    let refused = farm_of(
        node("amd", 1, "linux/amd64"),
        node("arm", 2, "linux/arm64").driver_opt("no-such-option", "1"),
    );
    let err = format!("{:#}", refused.run(&runner).unwrap_err());
    assert!(
        err.starts_with(&format!(
            "cannot add node arm to builder {name}; the builder was removed again"
        )),
        "{err}"
    );
    assert!(
        err.contains("invalid driver option no-such-option"),
        "{err}"
    );
    assert_eq!(e2e::builder_info(&runner, &name), None);

    // Checked before buildx runs: duplicate nodes, missing TLS files.
    let twice = farm_of(node("amd", 1, "linux/amd64"), node("amd", 2, "linux/arm64"));
    assert_eq!(
        twice.run(&runner).unwrap_err().to_string(),
        format!("builder {name} names node amd twice; give each node its own name")
    );
    let tls = farm_of(
        node("amd", 1, "linux/amd64").tls(
            "/nonexistent/ca.pem",
            "/nonexistent/cert.pem",
            "/nonexistent/key.pem",
        ),
        node("arm", 2, "linux/arm64"),
    );
    assert_eq!(
        format!("{:#}", tls.run(&runner).unwrap_err()),
        format!(
            "node amd of builder {name}: the remote builder's TLS cacert file \
             `/nonexistent/ca.pem` does not exist; point `cacert` at the file the BuildKit \
             daemon's certificates were issued with"
        )
    );
    assert_eq!(e2e::builder_info(&runner, &name), None);
}
