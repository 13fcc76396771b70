//! Real BuildKit builders, created through the library: a `remote` builder reaching the
//! rig's `buildkitd` over mutual TLS, `docker-container` builders running the rig's
//! BuildKit image, and a multi-node builder joining both kinds of daemon. Multi-platform
//! builds (arm64 through QEMU), push by digest and the fan-out merge, the registry cache
//! round trip, `--load` into the engine, and the faults with their messages.
//!
//! Every builder is uniquely named and removed by a guard, on failure too. The rig comes
//! from `xtask/engine-up.sh`; without it these tests fail (they never skip).

use std::path::Path;

use buildkit_lib::docker::Cache;
use buildkit_lib::docker::{self, BuilderCreate, NodeSpec};
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::docker::{FanOut, FanOutError};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};
use e2e::{BuildkitRig, RemoteTls, RemoveBuilder, WithTls, REGISTRY, REGISTRY_BUSYBOX_IMAGE};

/// A context whose image records the architecture it was built on in an intermediate
/// stage and prints it (`token` keeps its cache records apart from other tests').
fn arch_context(dir: &Path, token: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {REGISTRY_BUSYBOX_IMAGE} AS probe\n\
             RUN echo {token} > /token && uname -m > /arch\n\
             FROM {REGISTRY_BUSYBOX_IMAGE}\n\
             COPY --from=probe /arch /token /\n\
             CMD [\"cat\", \"/arch\"]\n"
        ),
    )
    .unwrap();
}

/// A `remote` builder on the rig's daemon over mutual TLS, with `tls` (the rig's own by
/// default), declaring `platforms`.
fn remote_create(
    rig: &BuildkitRig,
    name: &str,
    tls: &RemoteTls,
    platforms: &[&str],
) -> BuilderCreate {
    let mut create = BuilderCreate::new().name(name).driver("remote");
    for platform in platforms {
        create = create.platform(*platform);
    }
    create
        .bootstrap(true)
        .endpoint(rig.endpoint.clone())
        .with_tls(tls)
}

/// A `docker-container` builder running `image` on the engine's host network.
fn container_create(name: &str, image: &str, platforms: &[&str]) -> BuilderCreate {
    let mut create = BuilderCreate::new()
        .name(name)
        .driver("docker-container")
        .driver_opt("image", image)
        .driver_opt("network", "host");
    for platform in platforms {
        create = create.platform(*platform);
    }
    create.bootstrap(true)
}

/// Runs `image` for `platform` (pulled from the registry) and returns what it printed.
fn run_platform(runner: &Runner, image: &str, platform: &str) -> String {
    let out = runner
        .capture(&Cmd::new("docker").args([
            "run",
            "--rm",
            "--pull",
            "always",
            "--network",
            "none",
            "--platform",
            platform,
            image,
        ]))
        .unwrap_or_else(|e| panic!("{e:#}"));
    out.stdout.trim().to_string()
}

fn platforms_in_registry(runner: &Runner, reference: &str) -> Vec<String> {
    let raw = e2e::registry::inspect_raw(runner, reference).unwrap_or_else(|e| panic!("{e:#}"));
    e2e::registry::platforms_of_manifest(&raw)
}

fn in_registry(runner: &Runner, reference: &str) -> bool {
    runner
        .capture(&Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", reference]))
        .is_ok()
}

fn remove_images(runner: &Runner, images: &[&str]) {
    let _ = runner.capture(
        &Cmd::new("docker")
            .args(["image", "rm", "--force"])
            .args(images.iter().map(|s| s.to_string())),
    );
}

/// Removes a container by name when dropped.
struct RemoveContainer(Runner, String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["rm", "--force", &self.1]));
    }
}

#[test]
fn a_multi_node_builder_builds_both_platforms_and_each_runs() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    // A BuildKit daemon in a container of its own: the second node. buildx refuses nodes
    // of different drivers in one builder, so it joins the remote builder through
    // `docker-container://`.
    let boxed = e2e::unique("bkl-bk-node");
    let _box_guard = RemoveContainer(runner.clone(), boxed.clone());
    runner
        .capture(&Cmd::new("docker").args([
            "run",
            "-d",
            "--privileged",
            "--network",
            "host",
            "--name",
            &boxed,
            &rig.image,
        ]))
        .unwrap_or_else(|e| panic!("{e:#}"));

    let name = e2e::unique("bkl-multi");
    let multi = BuilderCreate::new()
        .name(name.clone())
        .driver("remote")
        .node(
            NodeSpec::new(format!("{name}-tls"))
                .endpoint(rig.endpoint.clone())
                .platform("linux/amd64")
                .with_tls(&rig.tls()),
        )
        .node(
            NodeSpec::new(format!("{name}-box"))
                .endpoint(format!("docker-container://{boxed}"))
                .platform("linux/arm64"),
        )
        .bootstrap(true);
    let created = multi.create(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    let info = e2e::builder_info(&runner, &name).expect("the builder exists");
    assert_eq!(info.driver, "remote");
    let nodes: Vec<(&str, &str)> = info
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.status.as_str()))
        .collect();
    assert_eq!(
        nodes,
        [
            (format!("{name}-tls").as_str(), "running"),
            (format!("{name}-box").as_str(), "running")
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), &e2e::unique("multi"));
    let tag = format!("{REGISTRY}/{}:1.0.0", e2e::unique("bkl-multinode"));
    let result = Build::new(dir.path().to_path_buf())
        .tag(tag.clone())
        .platform("linux/amd64")
        .platform("linux/arm64")
        .output(Output::Push)
        .builder(created.name().to_string())
        .network("none")
        .read_facts(false)
        .run(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(result
        .digest
        .as_deref()
        .unwrap_or_default()
        .starts_with("sha256:"));

    assert_eq!(
        platforms_in_registry(&runner, &tag),
        ["linux/amd64", "linux/arm64"]
    );
    assert_eq!(run_platform(&runner, &tag, "linux/amd64"), "x86_64");
    assert_eq!(run_platform(&runner, &tag, "linux/arm64"), "aarch64");
    remove_images(&runner, &[&tag]);

    created.remove().unwrap();
    assert!(!e2e::builder_exists(&runner, &name));
}

/// A remote builder (TLS, amd64) and a docker-container builder (arm64), both created by
/// the library for this test.
fn two_builders(
    runner: &Runner,
    rig: &BuildkitRig,
) -> (docker::CreatedBuilder, docker::CreatedBuilder) {
    let remote = remote_create(
        rig,
        &e2e::unique("bkl-remote"),
        &rig.tls(),
        &["linux/amd64"],
    )
    .create(runner)
    .unwrap_or_else(|e| panic!("{e:#}"));
    let container = container_create(&e2e::unique("bkl-container"), &rig.image, &["linux/arm64"])
        .create(runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    (remote, container)
}

fn fanout(dir: &Path, tag: &str, platforms: Vec<String>) -> FanOut {
    FanOut::new(
        Build::new(dir.to_path_buf())
            .tag(tag.to_string())
            .network("none"),
        platforms,
    )
    .unwrap()
    .retry(2, std::time::Duration::from_millis(200))
}

fn on(platform: &str, endpoint: &str) -> String {
    format!("{platform}={endpoint}")
}

#[test]
fn fan_out_over_a_remote_and_a_docker_container_builder_merges_by_digest() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let (remote, container) = two_builders(&runner, &rig);
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), &e2e::unique("fan"));
    let tag = format!("{REGISTRY}/{}:1.0.0", e2e::unique("bkl-fan-builders"));
    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &format!("builder:{}", remote.name())),
            on("linux/arm64", &format!("builder:{}", container.name())),
        ],
    );
    let result = f.run(&runner).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(result.platforms, ["linux/amd64", "linux/arm64"]);
    // A `remote` and a `docker-container` builder push by digest: no per-platform tag
    // (the registry's tag list below), each digest reachable in the repository.
    assert!(!in_registry(&runner, &format!("{tag}-linux-amd64")));
    assert!(!in_registry(&runner, &format!("{tag}-linux-arm64")));
    let digests = e2e::registry::platform_digests(&runner, &tag).unwrap();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert_ne!(digests[0], digests[1]);
    let repo = tag.rsplit_once(':').unwrap().0;
    for digest in &digests {
        assert!(digest.starts_with("sha256:"), "{digest}");
        assert!(
            in_registry(&runner, &format!("{repo}@{digest}")),
            "{digest}"
        );
    }
    let tags = runner
        .capture(&Cmd::new("curl").args([
            "-fsS",
            "--noproxy",
            "*",
            &format!(
                "http://{REGISTRY}/v2/{}/tags/list",
                repo.trim_start_matches(&format!("{REGISTRY}/"))
            ),
        ]))
        .unwrap();
    assert!(tags.stdout.contains("\"1.0.0\""), "{}", tags.stdout);
    assert!(!tags.stdout.contains("linux-"), "{}", tags.stdout);

    // The merged index's digest is the one reported, and each platform runs.
    let raw = runner
        .capture(&e2e::registry::inspect_raw_cmd(&tag))
        .unwrap();
    assert_eq!(
        result.digest.as_deref(),
        Some(format!("sha256:{}", e2e::sha256_hex(raw.stdout.as_bytes())).as_str())
    );
    assert_eq!(run_platform(&runner, &tag, "linux/amd64"), "x86_64");
    assert_eq!(run_platform(&runner, &tag, "linux/arm64"), "aarch64");
    remove_images(&runner, &[&tag]);
}

#[test]
fn a_builder_that_is_down_fails_its_platform_and_nothing_is_merged() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let container = container_create(&e2e::unique("bkl-container"), &rig.image, &["linux/arm64"])
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // A remote builder whose daemon is not running (nothing listens on that port).
    let dead_endpoint = format!("tcp://127.0.0.1:{}", e2e::free_port());
    let dead = remote_create(&rig, &e2e::unique("bkl-dead"), &rig.tls(), &["linux/amd64"])
        .bootstrap(false)
        .endpoint(dead_endpoint.clone())
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));

    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), &e2e::unique("down"));
    let tag = format!("{REGISTRY}/{}:2.0.0", e2e::unique("bkl-fan-down"));
    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &format!("builder:{}", dead.name())),
            on("linux/arm64", &format!("builder:{}", container.name())),
        ],
    );
    let err = f.run(&runner).unwrap_err();
    assert!(
        err.downcast_ref::<FanOutError>().is_some(),
        "not a FanOutError: {err:#}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "multi-engine build of {tag} failed for linux/amd64; nothing was merged and {tag} \
             was not changed"
        )),
        "{text}"
    );
    // Found before anything was built: the other platform never started.
    let amd64 = e2e::fan_out_outcome(&err, "linux/amd64");
    assert!(
        amd64.starts_with(&format!(
            "its engine does not answer: nothing answers at {dead_endpoint}; start the \
             BuildKit daemon there or point the builder at one that runs (dial tcp {}: \
             connect: connection refused)",
            dead_endpoint.trim_start_matches("tcp://")
        )),
        "amd64 should be unreachable, is {amd64}"
    );
    assert_eq!(e2e::fan_out_outcome(&err, "linux/arm64"), "not started");
    assert!(!in_registry(&runner, &tag), "the tag was written");
}

#[test]
fn registry_cache_round_trip_through_a_docker_container_builder() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let (remote, container) = two_builders(&runner, &rig);
    let token = e2e::unique("cache-token");
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), &token);
    let cache_ref = format!("{REGISTRY}/{}:buildcache", e2e::unique("bkl-bcache"));
    let cache = Cache::registry(cache_ref.clone()).mode_max(true);
    let logs = tempfile::tempdir().unwrap();
    let build = |builder: &str, from: bool, to: bool, log: &str| -> String {
        let path = logs.path().join(log);
        let mut build = Build::new(dir.path())
            .platform("linux/amd64")
            .builder(builder)
            .network("none")
            .read_facts(false);
        if from {
            build = build.cache_from(cache.clone());
        }
        if to {
            build = build.cache_to(cache.clone());
        }
        build
            .run(&runner.clone().log_to(&path))
            .unwrap_or_else(|e| panic!("{e:#}"));
        std::fs::read_to_string(&path).unwrap()
    };
    let first = build(container.name(), false, true, "first.log");
    assert_eq!(cached_probe(&first, &token), 0, "{first}");
    assert!(first.contains("exporting cache to registry"), "{first}");

    // Without the cache the builder would run the probe stage again.
    prune(&runner, container.name());
    let again = build(container.name(), true, false, "again.log");
    assert!(
        again.contains(&format!("importing cache manifest from {cache_ref}")),
        "{again}"
    );
    assert_eq!(cached_probe(&again, &token), 1, "{again}");

    // The prune really emptied the builder: without the registry cache the probe runs.
    prune(&runner, container.name());
    let cold = build(container.name(), false, false, "cold.log");
    assert_eq!(cached_probe(&cold, &token), 0, "{cold}");

    // The cache one builder exported serves the other.
    let other = build(remote.name(), true, false, "other.log");
    assert_eq!(cached_probe(&other, &token), 1, "{other}");
}

/// How many times the probe stage's `RUN echo <token>` is reported `CACHED`.
fn cached_probe(log: &str, token: &str) -> usize {
    log.lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].contains("RUN echo") && w[0].contains(token) && w[1].ends_with("CACHED"))
        .count()
}

#[test]
fn load_from_a_docker_container_builder_into_the_engine() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let container = container_create(&e2e::unique("bkl-container"), &rig.image, &[])
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), &e2e::unique("load"));
    let tag = format!("{}:1", e2e::unique("bkl-loaded"));
    remove_images(&runner, &[&tag]);
    let result = Build::new(dir.path().to_path_buf())
        .tag(tag.clone())
        .output(Output::Load)
        .builder(container.name().to_string())
        .network("none")
        .run(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(result.image_id.is_some(), "{result:?}");
    let out = runner
        .capture(&Cmd::new("docker").args(["run", "--rm", "--network", "none", &tag]))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out.stdout.trim(), "x86_64");
    remove_images(&runner, &[&tag]);
}

/// Empties the build cache of builder `name` (every record, shared or not).
fn prune(runner: &Runner, name: &str) {
    runner
        .run(&Cmd::new("docker").args(["buildx", "prune", "--builder", name, "--all", "--force"]))
        .unwrap();
}

/// Creating `create` (named `name`) fails; returns the error's full text, after checking
/// that nothing of that name was left behind.
fn create_fails(runner: &Runner, name: &str, create: &BuilderCreate) -> String {
    let name = name.to_string();
    let _guard = RemoveBuilder(runner.clone(), name.clone());
    let err = match create.create(runner) {
        Ok(created) => panic!("builder {} was created", created.name()),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        !e2e::builder_exists(runner, &name),
        "{name} was left behind: {err}"
    );
    err
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_with_a_clear_message() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = e2e::openssl_pair(dir.path(), "stranger", "client");
    let tls = rig.tls_with(None, Some(cert.clone()), Some(key));
    let name = e2e::unique("bkl-badclient");
    let err = create_fails(&runner, &name, &remote_create(&rig, &name, &tls, &[]));
    assert!(
        err.starts_with(&format!(
            "cannot create the buildx builder {name}: the BuildKit daemon at {} refused this \
             client's certificate (cert={}): it was not issued by the CA the daemon trusts; \
             use a client certificate from that CA",
            rig.endpoint,
            cert.display()
        )),
        "{err}"
    );
}

#[test]
fn a_server_certificate_from_another_ca_is_refused_with_a_clear_message() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    // The client trusts a CA that did not sign the daemon's certificate.
    let (other_ca, _, _) = e2e::openssl_pair(dir.path(), "other", "server");
    let tls = rig.tls_with(Some(other_ca.clone()), None, None);
    let name = e2e::unique("bkl-badca");
    let err = create_fails(&runner, &name, &remote_create(&rig, &name, &tls, &[]));
    assert!(
        err.starts_with(&format!(
            "cannot create the buildx builder {name}: the BuildKit daemon at {} presented a \
             certificate that the client's CA (cacert={}) did not sign; point `cacert` at the \
             CA that issued the daemon's certificate",
            rig.endpoint,
            other_ca.display()
        )),
        "{err}"
    );
}

#[test]
fn missing_tls_files_are_reported_before_buildx_runs() {
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("client-cert.pem");
    let tls = rig.tls_with(None, Some(missing.clone()), None);
    // A recording dry run: any command the library ran would be listed.
    for dry in [true, false] {
        let runner = e2e::runner().dry_run(dry);
        let create = remote_create(&rig, &e2e::unique("bkl-nofile"), &tls, &[]);
        let err = create
            .create(&runner)
            .map(|c| c.keep())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "the remote builder's TLS cert file `{}` does not exist; point `cert` at the \
                 file the BuildKit daemon's certificates were issued with",
                missing.display()
            )
        );
        assert!(
            runner.recorded().commands().is_empty(),
            "{:?}",
            runner.recorded().commands()
        );
    }
}

#[test]
fn a_builder_name_that_is_taken_is_refused_and_the_builder_left_alone() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    // A builder the user owns (made outside the library's CreatedBuilder).
    let name = e2e::unique("bkl-taken");
    let _guard = RemoveBuilder(runner.clone(), name.clone());
    remote_create(&rig, &name, &rig.tls(), &["linux/amd64"])
        .run(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let expected = format!(
        "a builder named {name} exists already; remove it (`docker buildx rm {name}`) or \
         choose another name"
    );
    let again = container_create(&name, &rig.image, &[]);
    assert_eq!(
        again
            .create(&runner)
            .map(|c| c.keep())
            .unwrap_err()
            .to_string(),
        expected
    );
    assert_eq!(again.run(&runner).unwrap_err().to_string(), expected);
    let multi = BuilderCreate::new()
        .name(name.clone())
        .driver("docker-container")
        .node(NodeSpec::new("n0"));
    assert_eq!(
        multi
            .create(&runner)
            .map(|c| c.keep())
            .unwrap_err()
            .to_string(),
        expected
    );
    // Still there, still the remote one, still answering.
    let info = e2e::builder_info(&runner, &name).expect("still there");
    assert_eq!(info.driver, "remote");
    assert_eq!(info.nodes[0].endpoint, rig.endpoint);
}

#[test]
fn a_docker_container_builder_whose_image_is_missing_says_so() {
    let runner = e2e::engine();
    let image = format!("buildkit-local/{}:missing", e2e::unique("no-such-buildkit"));
    let name = e2e::unique("bkl-noimage");
    let err = create_fails(&runner, &name, &container_create(&name, &image, &[]));
    assert!(
        err.starts_with(&format!(
            "cannot create the buildx builder {name}: the docker-container builder's image \
             {image} is not in the engine and cannot be pulled; build or load it into the \
             engine first (docker image ls {image})"
        )),
        "{err}"
    );
    // Nothing left running: no container for its node.
    let ps = runner
        .capture(&Cmd::new("docker").args([
            "ps",
            "--all",
            "--filter",
            &format!("name=buildx_buildkit_{name}"),
            "--format",
            "{{.Names}}",
        ]))
        .unwrap();
    assert_eq!(ps.stdout.trim(), "", "left behind");
}

// ---------------------------------------------------------------------------------------
// Ctrl-C during a build on each kind of builder (the `hold_container` binary, with the
// run cancelled on signals, as a downstream xtask does).
// ---------------------------------------------------------------------------------------

/// A context whose only step sleeps for a number no other process uses, so the test can
/// find the step running (the builders' processes are visible from the host).
fn sleeping_context(dir: &Path) -> String {
    let seconds = format!(
        "{}{:04}",
        3_000 + std::process::id() % 900,
        e2e::free_port() % 10_000
    );
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {REGISTRY_BUSYBOX_IMAGE}\nRUN sleep {seconds}\n"),
    )
    .unwrap();
    seconds
}

/// Pids of the processes whose command line is exactly `sleep SECONDS`.
fn sleepers(seconds: &str) -> Vec<u32> {
    let wanted = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c == wanted.as_bytes())
                .unwrap_or(false)
        })
        .collect()
}

fn wait_until(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Starts `hold_container builder ARGS...`, waits for the build's step to run, sends
/// SIGINT, and returns the exit code and stderr.
fn interrupt_build(args: &[&str], seconds: &str) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hold_container"))
        .arg("builder")
        .args(args)
        .env("DOCKER_HOST", e2e::docker_host())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hold_container");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.trim() != "ready" {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        let _ = child.kill();
        panic!("hold_container did not start: {err}");
    }
    wait_until(
        "the build step to run",
        std::time::Duration::from_secs(180),
        || !sleepers(seconds).is_empty(),
    );
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hold_container did not exit after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status.code(), err)
}

#[test]
fn ctrl_c_during_a_build_removes_the_docker_container_builder_the_run_created() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let seconds = sleeping_context(dir.path());
    let name = e2e::unique("bkl-int-container");
    let _guard = RemoveBuilder(runner.clone(), name.clone());
    let ctx = dir.path().display().to_string();
    let (code, stderr) = interrupt_build(&["container", &name, &rig.image, &ctx], &seconds);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("docker buildx rm {name}")),
        "{stderr}"
    );
    assert!(!e2e::builder_exists(&runner, &name), "{stderr}");
    let ps = runner
        .capture(&Cmd::new("docker").args([
            "ps",
            "--all",
            "--filter",
            &format!("name=buildx_buildkit_{name}"),
            "--format",
            "{{.Names}}",
        ]))
        .unwrap();
    assert_eq!(ps.stdout.trim(), "", "the builder's container is left");
    wait_until(
        "the build step to stop",
        std::time::Duration::from_secs(30),
        || sleepers(&seconds).is_empty(),
    );
}

#[test]
fn ctrl_c_during_a_build_on_a_remote_builder_removes_it_and_leaves_the_daemon_running() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let seconds = sleeping_context(dir.path());
    let name = e2e::unique("bkl-int-remote");
    let _guard = RemoveBuilder(runner.clone(), name.clone());
    let ctx = dir.path().display().to_string();
    let certs = rig.certs.display().to_string();
    let (code, stderr) = interrupt_build(&["remote", &name, &rig.endpoint, &certs, &ctx], &seconds);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!e2e::builder_exists(&runner, &name), "{stderr}");
    // The daemon cancels the step once its client is gone, and keeps serving.
    wait_until(
        "the build step to stop",
        std::time::Duration::from_secs(60),
        || sleepers(&seconds).is_empty(),
    );
    let probe = remote_create(&rig, &e2e::unique("bkl-after"), &rig.tls(), &[])
        .create(&runner)
        .unwrap_or_else(|e| panic!("the daemon no longer answers: {e:#}"));
    probe.remove().unwrap();
}

#[test]
fn ctrl_c_during_a_build_leaves_the_users_own_builder_alone() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let name = e2e::unique("bkl-int-own");
    let _guard = RemoveBuilder(runner.clone(), name.clone());
    container_create(&name, &rig.image, &[])
        .run(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let seconds = sleeping_context(dir.path());
    let ctx = dir.path().display().to_string();
    let (code, stderr) = interrupt_build(&["existing", &name, &ctx], &seconds);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("buildx rm"), "{stderr}");
    let info = e2e::builder_info(&runner, &name).expect("the user's builder is gone");
    assert_eq!(info.driver, "docker-container");
    wait_until(
        "the build step to stop",
        std::time::Duration::from_secs(60),
        || sleepers(&seconds).is_empty(),
    );
}

// ---------------------------------------------------------------------------------------
// Faults of a daemon of the test's own (the shared one is never stopped or re-keyed).
// ---------------------------------------------------------------------------------------

#[test]
fn an_expired_daemon_certificate_is_refused_with_a_clear_message() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let certs = e2e::openssl_cert_set(dir.path(), true);
    let daemon = e2e::PrivateBuildkitd::start(&rig, &certs);
    let tls = RemoteTls::new(
        certs.ca.clone(),
        certs.client.0.clone(),
        certs.client.1.clone(),
    )
    .servername("127.0.0.1");
    let name = e2e::unique("bkl-expired");
    let create = remote_create(&rig, &name, &tls, &[]).endpoint(daemon.endpoint.clone());
    let err = create_fails(&runner, &name, &create);
    assert!(
        err.starts_with(&format!(
            "cannot create the buildx builder {name}: the BuildKit daemon at {} presented a \
             certificate outside its validity period; renew the daemon's certificate",
            daemon.endpoint
        )),
        "{err}"
    );
}

#[test]
fn a_daemon_stopped_mid_build_fails_the_build_with_a_clear_message() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let dir = tempfile::tempdir().unwrap();
    let certs = e2e::openssl_cert_set(dir.path(), false);
    let mut daemon = e2e::PrivateBuildkitd::start(&rig, &certs);
    let tls = RemoteTls::new(
        certs.ca.clone(),
        certs.client.0.clone(),
        certs.client.1.clone(),
    )
    .servername("127.0.0.1");
    let created = remote_create(&rig, &e2e::unique("bkl-stopped"), &tls, &[])
        .endpoint(daemon.endpoint.clone())
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", daemon.log()));
    let ctx = tempfile::tempdir().unwrap();
    let seconds = sleeping_context(ctx.path());
    let build = Build::new(ctx.path().to_path_buf())
        .builder(created.name().to_string())
        .network("none")
        .read_facts(false);
    let err = std::thread::scope(|s| {
        let running = s.spawn(|| build.run(&runner));
        wait_until(
            "the build step to run",
            std::time::Duration::from_secs(180),
            || !sleepers(&seconds).is_empty(),
        );
        daemon.stop(libc::SIGTERM);
        running.join().unwrap()
    })
    .map(|_| ())
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "the BuildKit daemon of builder {} went away during the build",
            created.name()
        )),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
    wait_until(
        "the build step to stop",
        std::time::Duration::from_secs(60),
        || sleepers(&seconds).is_empty(),
    );
}

#[test]
fn a_builder_whose_tls_is_wrong_fails_its_platform_with_the_reason_and_nothing_is_merged() {
    let runner = e2e::engine();
    let rig = e2e::buildkit_rig();
    let container = container_create(&e2e::unique("bkl-container"), &rig.image, &["linux/arm64"])
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // The daemon answers on its port, so the fan-out's quick check passes; the TLS
    // handshake fails only when the build dials it.
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = e2e::openssl_pair(dir.path(), "other", "server");
    let tls = rig.tls_with(Some(other_ca), None, None);
    let wrong = remote_create(&rig, &e2e::unique("bkl-wrongca"), &tls, &["linux/amd64"])
        .bootstrap(false)
        .create(&runner)
        .unwrap_or_else(|e| panic!("{e:#}"));
    arch_context(dir.path(), &e2e::unique("wrongca"));
    let tag = format!("{REGISTRY}/{}:3.0.0", e2e::unique("bkl-fan-tls"));
    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &format!("builder:{}", wrong.name())),
            on("linux/arm64", &format!("builder:{}", container.name())),
        ],
    );
    let err = f.run(&runner).unwrap_err();
    assert!(
        err.downcast_ref::<FanOutError>().is_some(),
        "not a FanOutError: {err:#}"
    );
    let amd64 = e2e::fan_out_outcome(&err, "linux/amd64");
    assert!(
        amd64.starts_with("failed: ")
            && amd64.contains(&format!(
                "builder {}: the BuildKit daemon presented a certificate that the client's CA \
                 did not sign",
                wrong.name()
            ))
            && amd64.contains("x509: certificate signed by unknown authority"),
        "amd64 should have failed, is {amd64}"
    );
    assert_eq!(
        e2e::fan_out_outcome(&err, "linux/arm64"),
        "built, not merged"
    );
    assert!(!in_registry(&runner, &tag), "the tag was written");
}
