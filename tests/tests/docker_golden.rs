//! Golden command lines for every command the docker module produces, compared as exact
//! text: a change in argument order or spelling is a visible, reviewed change.

use buildkit_lib::docker::Cache;
use buildkit_lib::docker::ImagetoolsCreate;
use buildkit_lib::docker::{oci_labels, Build, Output};
use buildkit_lib::docker::{BuilderCreate, NodeSpec};
use buildkit_lib::plan::Step;
use buildkit_lib::{Runner, Session};

fn every_option() -> Build {
    Build::new("fixtures/webapp")
        .dockerfile("fixtures/webapp/Dockerfile.production")
        .target("runtime")
        .tag("127.0.0.1:5000/webapp:0.9.2")
        .tag("127.0.0.1:5000/webapp:latest")
        .build_arg("PYTHON_IMAGE", "buildkit-local/python:3.11")
        .build_arg("APP_UID", "10001")
        .build_context("assets", "fixtures/webapp/src")
        .secret_file("pip_conf", "/run/secrets/pip.conf")
        .secret_env("npm_token", "NPM_TOKEN")
        .network("host")
        .pull(true)
        .no_cache(true)
        .platform("linux/amd64")
        .platform("linux/arm64")
        .output(Output::Push)
        .cache_from(Cache::registry("127.0.0.1:5000/webapp:cache"))
        .cache_from(Cache::local("target/buildx-cache"))
        .cache_from(Cache::gha().scope("webapp"))
        .cache_to(Cache::registry("127.0.0.1:5000/webapp:cache").mode_max(true))
        .cache_to(Cache::local("target/buildx-cache-new"))
        .cache_to(Cache::inline())
        .cache_to(Cache::gha().mode_max(true))
        .metadata_file("target/metadata.json")
        .builder("multi")
        .extra_arg("--provenance=false")
        .extra_arg("--sbom=false")
        .labels(oci_labels(
            "webapp",
            "0.9.2",
            "90dd6032fac8bda1b6c4436a2e65de27961ed071",
            "2026-01-10T00:30:00Z",
            "https://example.org/webapp",
        ))
        .labels([("maintainer", "Web Team")])
        .with_session_labels(&{
            let mut session = Session::new("webapp");
            session.run_id = "run-1".into();
            session
        })
}

#[test]
fn build_with_every_option() {
    assert_eq!(
        every_option().command().to_string(),
        "docker buildx build --builder multi --progress=rawjson \
         --file fixtures/webapp/Dockerfile.production --target runtime \
         --platform linux/amd64,linux/arm64 \
         --tag 127.0.0.1:5000/webapp:0.9.2 --tag 127.0.0.1:5000/webapp:latest \
         --build-arg APP_UID=10001 --build-arg PYTHON_IMAGE=buildkit-local/python:3.11 \
         --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=run-1 \
         --label 'maintainer=Web Team' \
         --label org.opencontainers.image.created=2026-01-10T00:30:00Z \
         --label org.opencontainers.image.revision=90dd6032fac8bda1b6c4436a2e65de27961ed071 \
         --label org.opencontainers.image.source=https://example.org/webapp \
         --label org.opencontainers.image.title=webapp \
         --label org.opencontainers.image.version=0.9.2 \
         --build-context assets=fixtures/webapp/src \
         --secret id=pip_conf,src=/run/secrets/pip.conf --secret id=npm_token,env=NPM_TOKEN \
         --network=host --pull --no-cache \
         --cache-from type=registry,ref=127.0.0.1:5000/webapp:cache \
         --cache-from type=local,src=target/buildx-cache \
         --cache-from type=gha,scope=webapp \
         --cache-to type=registry,ref=127.0.0.1:5000/webapp:cache,mode=max \
         --cache-to type=local,dest=target/buildx-cache-new \
         --cache-to type=inline \
         --cache-to type=gha,mode=max \
         --push --metadata-file target/metadata.json \
         --provenance=false --sbom=false fixtures/webapp"
    );
}

#[test]
fn build_defaults_and_outputs() {
    // The default plain progress is read as rawjson (and shown as plain text), so that
    // the build can say why each instruction was rebuilt; without the explanation, plain.
    let plain = Build::new(".");
    assert_eq!(
        plain.command().to_string(),
        "docker buildx build --progress=rawjson ."
    );
    let unexplained = Build::new(".").explain(false);
    assert_eq!(
        unexplained.command().to_string(),
        "docker buildx build --progress=plain ."
    );
    // Other progress modes: the unit test `docker::tests::progress_modes`.
    let outputs = [
        (Output::Load, "--load"),
        (Output::Push, "--push"),
        (
            Output::Local("dist".into()),
            "--output type=local,dest=dist",
        ),
        (
            Output::Tar("out/image.tar".into()),
            "--output type=tar,dest=out/image.tar",
        ),
    ];
    for (output, flag) in outputs {
        let b = Build::new("ctx").output(output);
        assert_eq!(
            b.command().to_string(),
            format!("docker buildx build --progress=rawjson {flag} ctx")
        );
    }
}

/// The command lines a builder step runs, as its plan records them (the `docker buildx
/// create` of each node, the `docker buildx ls` that checks the name first left out).
fn create_lines<S: Step>(step: &S) -> Vec<String> {
    let runner = Runner::new().session(Session::new("golden"));
    Step::plan(step, &runner)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .commands()
        .iter()
        .filter(|argv| argv[..3] == ["docker", "buildx", "create"])
        .map(|argv| argv.join(" "))
        .collect()
}

#[test]
fn builder_create_for_each_driver() {
    let docker = BuilderCreate::new()
        .name("local")
        .driver("docker")
        .endpoint("default")
        .use_it(true);
    assert_eq!(
        create_lines(&docker),
        ["docker buildx create --name local --driver docker --use default"]
    );
    let container = BuilderCreate::new()
        .name("multi")
        .driver("docker-container")
        .driver_opt("network", "host")
        .driver_opt("image", "moby/buildkit:v0.13.2")
        .platform("linux/amd64")
        .platform("linux/arm64")
        .buildkitd_config("buildkitd.toml")
        .bootstrap(true)
        .use_it(true);
    assert_eq!(
        create_lines(&container),
        [
            "docker buildx create --name multi --driver docker-container \
         --driver-opt image=moby/buildkit:v0.13.2 --driver-opt network=host \
         --platform linux/amd64,linux/arm64 --buildkitd-config buildkitd.toml \
         --bootstrap --use"
        ]
    );
    let remote = BuilderCreate::new()
        .name("farm")
        .driver("remote")
        .node(
            NodeSpec::new("arm-node")
                .platform("linux/arm64")
                .endpoint("tcp://10.0.0.2:1234"),
        )
        .append(true);
    assert_eq!(
        create_lines(&remote),
        [
            "docker buildx create --name farm --driver remote --platform linux/arm64 \
         --node arm-node --append tcp://10.0.0.2:1234"
        ]
    );
    let k8s = BuilderCreate::new()
        .name("k8s")
        .driver("kubernetes")
        .driver_opt("namespace", "ci")
        .driver_opt("replicas", "2");
    assert_eq!(
        create_lines(&k8s),
        ["docker buildx create --name k8s --driver kubernetes \
         --driver-opt namespace=ci --driver-opt replicas=2"]
    );
    // `docker buildx use` and `rm`: the unit test `builder::manage::tests::rm_command_line`.
    // The name check every new builder starts with.
    let runner = Runner::new().session(Session::new("golden"));
    assert_eq!(
        Step::plan(&k8s, &runner).unwrap().commands()[0].join(" "),
        "docker buildx ls --format json"
    );
}

#[test]
fn registry_commands() {
    // `docker push` and `imagetools inspect --raw` are crate-private command builders: their
    // golden lines are the library's unit test `registry::tests::push_and_inspect_command_lines`.
    let merge = ImagetoolsCreate::new()
        .tag("127.0.0.1:5000/webapp:0.9.2")
        .tag("127.0.0.1:5000/webapp:latest")
        .source("127.0.0.1:5000/webapp:0.9.2-amd64")
        .source("127.0.0.1:5000/webapp:0.9.2-arm64");
    let plan = merge.plan(&Runner::new()).unwrap().to_string();
    assert!(
        plan.contains(
            "$ docker buildx imagetools create --tag 127.0.0.1:5000/webapp:0.9.2 \
             --tag 127.0.0.1:5000/webapp:latest \
             127.0.0.1:5000/webapp:0.9.2-amd64 127.0.0.1:5000/webapp:0.9.2-arm64\n"
        ),
        "{plan}"
    );
    let append = merge.append(true);
    let plan = append.plan(&Runner::new()).unwrap().to_string();
    assert!(
        plan.contains("$ docker buildx imagetools create --append --tag "),
        "{plan}"
    );
}

#[test]
fn multi_node_builder_command_lines() {
    // The TLS files exist (a plan checks them, as a run does); the lines name them as
    // `certs/...`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(dir.path().join("certs").join(file), "").unwrap();
    }
    let root = format!("{}/", dir.path().display());
    let lines_of = |farm: &BuilderCreate| -> Vec<String> {
        create_lines(farm)
            .iter()
            .map(|l| l.replace(&root, ""))
            .collect()
    };
    let tls = |node: NodeSpec| {
        node.tls(
            dir.path().join("certs/ca.pem"),
            dir.path().join("certs/cert.pem"),
            dir.path().join("certs/key.pem"),
        )
    };
    let farm = |amd_endpoint: &str| {
        BuilderCreate::new()
            .name("farm")
            .driver("remote")
            .node(
                tls(NodeSpec::new("amd")
                    .endpoint(amd_endpoint)
                    .platform("linux/amd64")
                    .platform("linux/386"))
                .driver_opt("servername", "buildkitd"),
            )
            .node(tls(NodeSpec::new("arm")
                .endpoint("tcp://buildkit-arm.internal:1234")
                .platform("linux/arm64")))
            .bootstrap(true)
            .use_it(true)
    };
    let remote = farm("tcp://buildkit-amd.internal:1234");
    let lines = lines_of(&remote);
    assert_eq!(
        lines,
        [
            "docker buildx create --name farm --driver remote --driver-opt cacert=certs/ca.pem \
             --driver-opt cert=certs/cert.pem --driver-opt key=certs/key.pem \
             --driver-opt servername=buildkitd --platform linux/amd64,linux/386 --node amd \
             tcp://buildkit-amd.internal:1234",
            "docker buildx create --name farm --driver remote --driver-opt cacert=certs/ca.pem \
             --driver-opt cert=certs/cert.pem --driver-opt key=certs/key.pem \
             --platform linux/arm64 --node arm --append --bootstrap --use \
             tcp://buildkit-arm.internal:1234",
        ]
    );

    let k8s = BuilderCreate::new()
        .name("k8s")
        .driver("kubernetes")
        .driver_opt("namespace", "buildkit")
        .node(
            NodeSpec::new("amd")
                .platform("linux/amd64")
                .driver_opt("nodeselector", "kubernetes.io/arch=amd64")
                .driver_opt("replicas", "2"),
        )
        .node(
            NodeSpec::new("arm")
                .platform("linux/arm64")
                .driver_opt("nodeselector", "kubernetes.io/arch=arm64"),
        )
        .bootstrap(true);
    let lines = lines_of(&k8s);
    assert_eq!(
        lines,
        [
            "docker buildx create --name k8s --driver kubernetes --driver-opt namespace=buildkit \
             --driver-opt nodeselector=kubernetes.io/arch=amd64 --driver-opt replicas=2 \
             --platform linux/amd64 --node amd",
            "docker buildx create --name k8s --driver kubernetes --driver-opt namespace=buildkit \
             --driver-opt nodeselector=kubernetes.io/arch=arm64 --platform linux/arm64 \
             --node arm --append --bootstrap",
        ]
    );

    let containers = BuilderCreate::new()
        .name("engines")
        .driver("docker-container")
        .driver_opt("network", "host")
        .buildkitd_config("buildkitd.toml")
        .node(
            NodeSpec::new("amd")
                .endpoint("amd-box")
                .platform("linux/amd64"),
        )
        .node(
            NodeSpec::new("arm")
                .endpoint("arm-box")
                .platform("linux/arm64"),
        )
        .bootstrap(true);
    let lines = lines_of(&containers);
    assert_eq!(
        lines,
        [
            "docker buildx create --name engines --driver docker-container \
             --driver-opt network=host --platform linux/amd64 --node amd \
             --buildkitd-config buildkitd.toml amd-box",
            "docker buildx create --name engines --driver docker-container \
             --driver-opt network=host --platform linux/arm64 --node arm --append \
             --buildkitd-config buildkitd.toml --bootstrap arm-box",
        ]
    );

    // Refused before anything runs.
    let runner = Runner::new().echo(buildkit_lib::cmd::Echo::Silent);
    let bad = farm("buildkit-amd.internal:1234");
    assert_eq!(
        format!("{:#}", bad.run(&runner).unwrap_err()),
        "node amd of builder farm: remote builder endpoint `buildkit-amd.internal:1234` is not \
         a BuildKit address: write tcp://host:port (with TLS files) or \
         unix:///path/buildkitd.sock"
    );
    let docker = containers.clone().driver("docker");
    assert_eq!(
        docker.run(&runner).unwrap_err().to_string(),
        "the docker driver cannot have several nodes; use docker-container, remote or \
         kubernetes for builder engines"
    );
    assert!(
        runner.recorded().commands().is_empty(),
        "{:?}",
        runner.recorded().commands()
    );
}
