//! The real engine: a two-stage `FROM scratch` build with `--target`, run and read back,
//! and the preflight check against the engine the project starts.

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::engine::Doctor;
use buildkit_lib::plan::Step;
use buildkit_lib::validate::Verdict;
use buildkit_lib::Cmd;
use e2e::{buildx_supports, BuildxFeature};

#[test]
fn a_two_stage_scratch_image_is_built_with_target_and_runs() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {} AS tools\nRUN echo \"made in the first stage\" > /msg\n\n\
             FROM scratch AS final\nCOPY --from=tools /bin/busybox /bin/busybox\n\
             COPY --from=tools /msg /msg\nENTRYPOINT [\"/bin/busybox\", \"cat\", \"/msg\"]\n\n\
             FROM scratch AS never-built\nCOPY missing-file /\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    let tag = format!("{}:1", e2e::unique("scratch-two-stage"));
    let result = Build::new(dir.path())
        .target("final")
        .tag(tag.clone())
        .network("none")
        .output(Output::Load)
        .run(&runner)
        .unwrap();
    assert!(result
        .digest
        .as_deref()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert!(result.size_bytes.is_some_and(|b| b > 0));
    let out = runner
        .capture(&Cmd::new("docker").args(["run", "--rm", "--network", "none", &tag]))
        .unwrap();
    assert_eq!(out.stdout, "made in the first stage\n");
    runner
        .capture(&Cmd::new("docker").args(["image", "rm", &tag]))
        .unwrap();
}

#[test]
fn doctor_finds_every_piece_of_the_project_engine() {
    let runner = e2e::engine();
    let checks = Doctor::new()
        .registry(e2e::REGISTRY)
        .platform("linux/amd64")
        .platform("linux/arm64")
        .run(&runner)
        .unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "docker client",
            "engine",
            "buildx",
            "features",
            "builder",
            "buildkit",
            "platforms",
            "image store",
            "registry"
        ]
    );
    // The versions named are the ones the engine and buildx report, judged against the
    // one supported range.
    let engine_version = e2e::engine()
        .capture(&Cmd::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
        .unwrap()
        .stdout
        .trim()
        .to_string();
    let buildx_version = e2e::engine()
        .capture(&Cmd::new("docker").args(["buildx", "version"]))
        .unwrap()
        .stdout;
    let buildx_word = buildx_version
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let find = |name: &str| checks.iter().find(|c| c.name == name).unwrap();
    // The engine the client talks to is the one DOCKER_HOST names.
    assert!(find("engine").detail.starts_with(&format!(
        "Docker {engine_version} at {}",
        e2e::docker_host()
    )));
    // `Docker Engine 26.1–28.5, buildx 0.13–0.29`: each range as the doctor names it.
    // The verified range (the README's), each as the doctor names it.
    let (engine_range, buildx_range) = ("26.1–28.5", "0.13–0.29");
    assert!(find("engine")
        .detail
        .ends_with(&format!("(verified: {engine_range})")));
    assert_eq!(
        find("buildx").detail,
        format!("buildx {buildx_word} (verified: {buildx_range})")
    );
    let buildkit = &find("buildkit").detail;
    // What the verified ends of the range vendor (a Debian build's engine reports
    // `v0.0.0+unknown` for its own builder).
    let release: Vec<&str> = engine_version.split(['.', '+', '-']).take(2).collect();
    let vendored = match release.as_slice() {
        ["28", "5"] => Some("v0.25.2"),
        ["26", "1"] => Some("v0.13.2"),
        _ => None,
    };
    match vendored {
        // Debian's builds say `v0.0.0+unknown`: the doctor names what the release vendors.
        Some(vendored) if buildkit.contains("v0.0.0+unknown") => assert!(
            buildkit.ends_with(&format!("vendors BuildKit {vendored}")),
            "{buildkit}"
        ),
        _ => assert!(buildkit.starts_with("BuildKit "), "{buildkit}"),
    }
    let all_features = buildx_supports(&runner, BuildxFeature::BuildChecks).is_ok()
        && buildx_supports(&runner, BuildxFeature::BuildHistory).is_ok();
    for check in &checks {
        if check.name == "features" && !all_features {
            // The oldest engine's buildx: builds work, the newer steps say they skip.
            assert_eq!(check.status, Verdict::Warn, "{check}");
            assert!(check.detail.contains("has no build checks"), "{check}");
        } else {
            assert_eq!(check.status, Verdict::Pass, "{check}");
        }
    }
}

#[test]
fn doctor_names_the_fix_when_no_engine_answers() {
    let runner = e2e::runner().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let checks = Doctor::new().run(&runner).unwrap();
    let engine = checks.iter().find(|c| c.name == "engine").unwrap();
    assert_eq!(engine.status, Verdict::Fail);
    assert_eq!(
        engine.detail,
        "no engine answers at unix:///nonexistent/docker.sock"
    );
    assert_eq!(
        engine.fix.as_deref(),
        Some("start a Docker engine and point DOCKER_HOST at it")
    );
    assert!(
        checks.iter().all(|c| c.name != "image store"),
        "stops after the engine"
    );
}
