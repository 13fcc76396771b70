//! One image built on two engines (amd64 on the first, arm64 emulated on the second),
//! pushed to the loopback registry and merged; an engine that is down; a platform whose
//! build fails; and the push-by-digest path of non-`docker` builders, through a fake
//! `docker` that records its command lines.

use std::path::Path;

use buildkit_lib::docker::Build;
use buildkit_lib::docker::{FanOut, FanOutError};
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};
use e2e::{FakeBin, BUSYBOX_IMAGE, REGISTRY};

/// A context whose image prints the architecture it was built for (`uname -m` at build
/// time) and fails to build on any platform listed in `fail_on`.
fn arch_context(dir: &Path, fail_on: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "ARG BASE={BUSYBOX_IMAGE}\nFROM ${{BASE}}\nRUN uname -m > /arch\n\
             RUN case \"$(uname -m)\" in {fail_on}) echo \"refusing to build on $(uname -m)\"; \
             exit 7;; esac\nCMD [\"cat\", \"/arch\"]\n"
        ),
    )
    .unwrap();
}

fn fanout(dir: &Path, tag: &str, platforms: Vec<String>) -> FanOut {
    fanout_of(build(dir, tag), platforms)
}

/// The build a fan-out spreads: `dir` tagged `tag`, without network.
fn build(dir: &Path, tag: &str) -> Build {
    Build::new(dir.to_path_buf())
        .tag(tag.to_string())
        .network("none")
}

fn fanout_of(build: Build, platforms: Vec<String>) -> FanOut {
    FanOut::new(build, platforms)
        .unwrap()
        .retry(2, std::time::Duration::from_millis(200))
}

/// `platform` built on `endpoint` (a DOCKER_HOST address, `context:NAME` or
/// `builder:NAME`).
fn on(platform: &str, endpoint: &str) -> String {
    format!("{platform}={endpoint}")
}

fn in_registry(runner: &Runner, reference: &str) -> bool {
    runner
        .capture(&Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", reference]))
        .is_ok()
}

fn image_exists(runner: &Runner, host: &str, image: &str) -> bool {
    runner
        .capture(
            &Cmd::new("docker")
                .args(["image", "inspect", image])
                .env("DOCKER_HOST", host),
        )
        .is_ok()
}

fn remove_images(runner: &Runner, host: &str, images: &[String]) {
    let _ = runner.capture(
        &Cmd::new("docker")
            .args(["image", "rm", "--force"])
            .args(images.iter().cloned())
            .env("DOCKER_HOST", host),
    );
}

#[test]
fn two_engines_build_one_multi_platform_image() {
    let runner = e2e::engine();
    let first = e2e::docker_host();
    let second = e2e::second_engine();
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), "none");

    // The arm64 half goes through a docker context (in a private docker config), the
    // amd64 half through DOCKER_HOST.
    let config = tempfile::tempdir().unwrap();
    let runner = runner.env("DOCKER_CONFIG", config.path().display().to_string());
    let context = e2e::unique("arm-engine");
    runner
        .capture(&Cmd::new("docker").args([
            "context",
            "create",
            &context,
            "--docker",
            &format!("host={second}"),
        ]))
        .unwrap();

    let tag = format!("{REGISTRY}/{}:1.0.0", e2e::unique("fanout"));
    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &first),
            on("linux/arm64", &format!("context:{context}")),
        ],
    );
    let result = f.run(&runner).unwrap();

    assert_eq!(result.platforms, ["linux/amd64", "linux/arm64"]);
    let digest = result.digest.clone().expect("merged digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    // Each platform is its own image in the merged index.
    let digests = e2e::registry::platform_digests(&runner, &tag).unwrap();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert_ne!(digests[0], digests[1]);
    // Each platform's build explains itself, in the one explanation of the merged image.
    let e = result
        .explanation
        .as_ref()
        .expect("the platforms' builds are explained");
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            e.rows()
                .iter()
                .any(|r| r.platform.as_deref() == Some(platform)
                    && r.line == Some(3)
                    && r.instruction == "RUN uname -m > /arch"),
            "{platform}: {e}"
        );
    }
    // The `docker` driver cannot push by digest: each platform was pushed under its
    // per-platform tag.
    let (arm_tag, amd_tag) = (format!("{tag}-linux-arm64"), format!("{tag}-linux-amd64"));
    assert!(in_registry(&runner, &arm_tag), "{arm_tag}");
    assert!(in_registry(&runner, &amd_tag), "{amd_tag}");

    // Each half was built where it was sent: the arm64 image is in the second engine's
    // store and not in the first one's, and the other way round.
    assert!(image_exists(&runner, &second, &arm_tag));
    assert!(!image_exists(&runner, &first, &arm_tag));
    assert!(image_exists(&runner, &first, &amd_tag));
    assert!(!image_exists(&runner, &second, &amd_tag));

    // The registry serves one index with both platforms.
    let raw = e2e::registry::inspect_raw(&runner, &tag).unwrap();
    assert_eq!(
        e2e::registry::platforms_of_manifest(&raw),
        ["linux/amd64", "linux/arm64"]
    );

    // Pulled from the registry, each platform prints the architecture it was built on.
    for (platform, arch) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
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
                &tag,
            ]))
            .unwrap();
        assert_eq!(out.stdout.trim(), arch, "{platform}");
    }
    remove_images(&runner, &first, &[tag.clone(), amd_tag]);
    remove_images(&runner, &second, &[arm_tag]);
}

#[test]
fn an_engine_that_is_down_fails_its_platform_and_nothing_is_merged() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), "none");
    let dead = format!("unix://{}/nothing.sock", dir.path().display());

    // The tag already points at a good image: it must still point at it afterwards.
    let tag = format!("{REGISTRY}/{}:2.0.0", e2e::unique("fanout-down"));
    let before = Build::new(dir.path().to_path_buf())
        .tag(tag.clone())
        .network("none")
        .output(buildkit_lib::docker::Output::Push)
        .run(&runner)
        .unwrap()
        .digest
        .unwrap();

    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &e2e::docker_host()),
            on("linux/arm64", &dead),
        ],
    );
    let err = f.run(&runner).unwrap_err();
    assert!(err.downcast_ref::<FanOutError>().is_some(), "a FanOutError");
    assert_eq!(e2e::fan_out_outcome(&err, "linux/amd64"), "not started");
    let arm64 = e2e::fan_out_outcome(&err, "linux/arm64");
    assert!(
        arm64.starts_with("its engine does not answer: ")
            && arm64.contains("Cannot connect to the Docker daemon"),
        "arm64 should be unreachable, is {arm64}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "multi-engine build of {tag} failed for linux/arm64; nothing was merged and {tag} \
             was not changed"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "linux/arm64 on DOCKER_HOST={dead}: its engine does not answer"
        )),
        "{text}"
    );

    let now = runner
        .capture(&e2e::registry::inspect_raw_cmd(&tag))
        .unwrap();
    let now = format!("sha256:{}", e2e::sha256_hex(now.stdout.as_bytes()));
    assert_eq!(now, before, "the tag moved");
    assert!(!in_registry(&runner, &format!("{tag}-linux-amd64")));
    remove_images(&runner, &e2e::docker_host(), std::slice::from_ref(&tag));
}

#[test]
fn a_failing_platform_build_pushes_nothing() {
    let runner = e2e::engine();
    let second = e2e::second_engine();
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), "aarch64");
    let tag = format!("{REGISTRY}/{}:3.0.0", e2e::unique("fanout-fail"));
    let f = fanout(
        dir.path(),
        &tag,
        vec![
            on("linux/amd64", &e2e::docker_host()),
            on("linux/arm64", &second),
        ],
    );
    let err = f.run(&runner).unwrap_err();
    assert!(err.downcast_ref::<FanOutError>().is_some(), "a FanOutError");
    assert_eq!(
        e2e::fan_out_outcome(&err, "linux/amd64"),
        "built, not merged"
    );
    let arm64 = e2e::fan_out_outcome(&err, "linux/arm64");
    assert!(
        arm64.starts_with("failed: ") && arm64.contains("exit"),
        "arm64 should have failed, is {arm64}"
    );
    // Built on the first engine, but neither it nor any tag reached the registry.
    assert!(!in_registry(&runner, &tag));
    assert!(!in_registry(&runner, &format!("{tag}-linux-amd64")));
    remove_images(
        &runner,
        &e2e::docker_host(),
        &[format!("{tag}-linux-amd64")],
    );
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let runner = Runner::new().echo(buildkit_lib::cmd::Echo::Silent);
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), "none");
    let host = || "unix:///nowhere.sock";
    let cases: Vec<(FanOut, &str)> = vec![
        (
            fanout(dir.path(), "app:1.0", vec![on("linux/amd64", host())]),
            "tag `app:1.0` names no registry",
        ),
        (
            fanout(
                dir.path(),
                "127.0.0.1:5000/app:1.0",
                vec![on("linux/amd64", host()), on("linux/amd64", host())],
            ),
            "platform linux/amd64 is listed twice",
        ),
        (
            fanout(dir.path(), "127.0.0.1:5000/app:1.0", vec![]),
            "needs at least one PLATFORM=ENDPOINT",
        ),
    ];
    // A platform that is not os/arch is refused as it is read.
    let err = FanOut::new(
        build(dir.path(), "127.0.0.1:5000/app:1.0"),
        [format!("amd64={}", host())],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`amd64` is not a platform"), "{err}");
    for (f, expected) in cases {
        let err = f.run(&runner).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}\nshould contain: {expected}");
    }
    let with_platforms = fanout_of(
        build(dir.path(), "127.0.0.1:5000/app:1.0").platform("linux/amd64"),
        vec![on("linux/amd64", host())],
    );
    let err = with_platforms.run(&runner).unwrap_err().to_string();
    assert!(err.contains("not on its Build"), "{err}");
    assert!(
        runner.recorded().commands().is_empty(),
        "{:?}",
        runner.recorded().commands()
    );
}

/// A fake `docker` for a remote builder: `buildx inspect` says `Driver: remote`, `buildx
/// build` writes a metadata file with a digest per platform, `imagetools inspect --raw`
/// prints the file `index`. Every call is appended to `calls`.
fn fake_remote_docker(calls: &Path, index: &Path) -> FakeBin {
    FakeBin::new().script(
        "docker",
        &format!(
            r#"echo "$*" >> '{calls}'
case "$*" in
  "buildx inspect "*) printf 'Name: farm\nDriver: remote\n\nNodes:\nName: farm0\nStatus: running\nPlatforms: linux/amd64, linux/arm64\n' ;;
  "buildx build "*)
    meta=; platform=
    while [ $# -gt 0 ]; do
      case "$1" in --metadata-file) meta=$2;; --platform) platform=$2;; esac
      shift
    done
    case "$platform" in linux/amd64) d=aaaa;; *) d=bbbb;; esac
    printf '{{"containerimage.digest": "sha256:%s"}}' "$d" > "$meta" ;;
  "buildx imagetools inspect --raw "*) cat '{index}' ;;
esac"#,
            calls = calls.display(),
            index = index.display(),
        ),
    )
}

#[test]
fn remote_builders_push_by_digest_and_merge_the_digests() {
    let dir = tempfile::tempdir().unwrap();
    arch_context(dir.path(), "none");
    let calls = dir.path().join("calls.txt");
    let index = dir.path().join("index.json");
    std::fs::write(
        &index,
        r#"{"manifests": [{"platform": {"os": "linux", "architecture": "amd64"}},
           {"platform": {"os": "linux", "architecture": "arm64"}}]}"#,
    )
    .unwrap();
    let fake = fake_remote_docker(&calls, &index);
    let runner = Runner::new()
        .echo(buildkit_lib::cmd::Echo::Silent)
        .env("PATH", fake.path_env());
    let tag = "registry.example:5000/team/app:1.2.0";
    let f = fanout_of(
        build(dir.path(), tag).tag("registry.example:5000/team/app:latest"),
        vec![
            on("linux/amd64", "builder:farm-amd64"),
            on("linux/arm64", "builder:farm-arm64"),
        ],
    );
    let result = f.run(&runner).unwrap();
    let expected = e2e::sha256_hex(&std::fs::read(&index).unwrap());
    assert_eq!(result.digest, Some(format!("sha256:{expected}")));
    assert_eq!(result.platforms, ["linux/amd64", "linux/arm64"]);
    // Remote builders push by digest, with no per-platform tag: the calls below.

    let calls = std::fs::read_to_string(&calls).unwrap();
    let context = dir.path().display();
    let lines: Vec<&str> = calls.lines().collect();
    let mut builds: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("buildx build"))
        .map(|l| l.split(" --metadata-file").next().unwrap())
        .collect();
    builds.sort();
    assert_eq!(
        builds,
        [
            "buildx build --builder farm-amd64 --progress=rawjson --platform linux/amd64 \
             --network=none --output type=image,name=registry.example:5000/team/app,\
             push-by-digest=true,name-canonical=true,push=true",
            "buildx build --builder farm-arm64 --progress=rawjson --platform linux/arm64 \
             --network=none --output type=image,name=registry.example:5000/team/app,\
             push-by-digest=true,name-canonical=true,push=true",
        ]
    );
    assert!(calls.contains("push=true --metadata-file "), "{calls}");
    assert!(calls.contains(&format!(" {context}\n")), "{calls}");
    // No docker push: the builds pushed by digest; one merge naming both digests.
    assert!(!lines.iter().any(|l| l.starts_with("push ")), "{calls}");
    assert!(
        lines.contains(
            &"buildx imagetools create --tag registry.example:5000/team/app:1.2.0 \
              --tag registry.example:5000/team/app:latest \
              registry.example:5000/team/app@sha256:aaaa \
              registry.example:5000/team/app@sha256:bbbb"
        ),
        "{calls}"
    );
}
