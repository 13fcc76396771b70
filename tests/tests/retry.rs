//! Push retries: only transient registry failures of a push are retried, never a failed
//! build. Fake `docker` binaries count the attempts exactly; a real build against the
//! engine that fails on a missing arm64 base runs exactly once.

use std::fs;
use std::path::Path;
use std::time::Duration;

use buildkit_lib::docker::Push;
use buildkit_lib::docker::{Build, Output};
use buildkit_lib::plan::Step;
use buildkit_lib::Runner;

/// Quick retries: 10 ms before the first, doubled.
const QUICK: Duration = Duration::from_millis(10);

/// A fake `docker` that appends its arguments to `calls` and then runs `body`; `$n` is the
/// number of the call (1-based).
fn fake_docker(dir: &Path, body: &str) -> e2e::FakeBin {
    let calls = dir.join("calls");
    e2e::FakeBin::new().script(
        "docker",
        &format!(
            "echo \"$*\" >> '{calls}'\nn=$(wc -l < '{calls}')\n{body}",
            calls = calls.display()
        ),
    )
}

fn calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `docker buildx build` calls among them (a failed build is followed by the
/// library's look at BuildKit's record of it: `buildx version`, `buildx history`).
fn builds(dir: &Path) -> Vec<String> {
    calls(dir)
        .into_iter()
        .filter(|c| c.starts_with("buildx build"))
        .collect()
}

/// Every file under `dir` with its bytes, to show nothing changed on disk.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_default();
            (p.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_push_refused_as_unauthorized_is_not_retried() {
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(
        work.path(),
        "echo 'unauthorized: authentication required' >&2\nexit 1",
    );
    let log = work.path().join("push.log");
    let runner = e2e::runner().env("PATH", fake.path_env()).log_to(&log);
    let err = Push::new("127.0.0.1:5000/app:1")
        .retry(5, QUICK)
        .run(&runner)
        .unwrap_err();
    assert_eq!(calls(work.path()), ["push 127.0.0.1:5000/app:1"]);
    assert_eq!(
        format!("{err:#}"),
        format!(
            "push of 127.0.0.1:5000/app:1 failed after 1 attempt(s): cannot push \
             127.0.0.1:5000/app:1: process didn't exit successfully: `docker push \
             127.0.0.1:5000/app:1` (exit status: 1)\n--- last 1 lines of output\n\
             unauthorized: authentication required\n--- full output: {}",
            log.display()
        )
    );
    assert!(!fs::read_to_string(&log).unwrap().contains("retrying"));
}

#[test]
fn a_push_hitting_connection_refused_is_retried_with_the_reason_logged() {
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(
        work.path(),
        "if [ \"$n\" -lt 3 ]; then\n  echo 'Get \"https://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused' >&2\n  exit 1\nfi\necho pushed",
    );
    let log = work.path().join("push.log");
    let runner = e2e::runner().env("PATH", fake.path_env()).log_to(&log);
    Push::new("127.0.0.1:5000/app:1")
        .retry(5, QUICK)
        .run(&runner)
        .unwrap();
    assert_eq!(calls(work.path()).len(), 3);
    let notes: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("retrying"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        notes,
        [(1, "0.01s"), (2, "0.02s")]
            .iter()
            .map(|(n, wait)| format!(
                "push of 127.0.0.1:5000/app:1 failed (attempt {n} of 5): Get \
                 \"https://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection \
                 refused; retrying in {wait}"
            ))
            .collect::<Vec<_>>()
    );
}

fn pushed_build(ctx: &Path, tag: &str, platform: &str) -> Build {
    Build::new(ctx)
        .tag(tag)
        .platform(platform)
        .output(Output::Push)
        .metadata_file(ctx.join("meta").join("metadata.json"))
}

#[test]
fn a_build_that_fails_is_never_retried_even_on_a_network_error() {
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir_all(ctx.join("meta")).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM python:3.12-slim\nRUN true\n").unwrap();
    let fake = fake_docker(
        work.path(),
        "echo '   1 | >>> FROM python:3.12-slim'\necho 'ERROR: failed to solve: python:3.12-slim: failed to resolve source metadata for docker.io/library/python:3.12-slim: no match for platform in manifest: not found'\nexit 1",
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let before = snapshot(&ctx);
    let tag = "127.0.0.1:5000/app:1";
    let build = pushed_build(&ctx, tag, "linux/arm64");
    let err = build.clone().retry_push(5, QUICK).run(&runner).unwrap_err();
    assert_eq!(builds(work.path()).len(), 1, "{:?}", calls(work.path()));
    assert_eq!(
        format!("{err:#}"),
        format!(
            "push of {tag} failed after 1 attempt(s): cannot build image {tag}: process \
             didn't exit successfully: `{}` (exit status: 1)\n--- last 2 lines of output\n   \
             1 | >>> FROM python:3.12-slim\nERROR: failed to solve: python:3.12-slim: failed \
             to resolve source metadata for docker.io/library/python:3.12-slim: no match for \
             platform in manifest: not found",
            build.command()
        )
    );
    assert_eq!(snapshot(&ctx), before);

    // The same with a network error while pulling the base: still the build's failure.
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(
        work.path(),
        "echo 'ERROR: failed to solve: python:3.12-slim: failed to resolve source metadata for docker.io/library/python:3.12-slim: failed to do request: Head \"https://registry-1.docker.io/v2/library/python/manifests/3.12-slim\": dial tcp 1.2.3.4:443: i/o timeout'\nexit 1",
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    build.clone().retry_push(5, QUICK).run(&runner).unwrap_err();
    assert_eq!(builds(work.path()).len(), 1, "{:?}", calls(work.path()));
}

#[test]
fn a_build_whose_push_hits_a_503_is_retried() {
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir_all(ctx.join("meta")).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").unwrap();
    let meta = ctx.join("meta/metadata.json");
    let fake = fake_docker(
        work.path(),
        &format!(
            "if [ \"$n\" -lt 2 ]; then\n  echo '#5 pushing layers'\n  echo ' > exporting to image:'\n  echo 'ERROR: failed to solve: failed to push 127.0.0.1:5000/app:1: unexpected status from PUT request to http://127.0.0.1:5000/v2/app/manifests/1: 503 Service Unavailable'\n  exit 1\nfi\necho '{{\"containerimage.digest\": \"sha256:abc\"}}' > '{}'",
            meta.display()
        ),
    );
    let log = work.path().join("build.log");
    let runner = e2e::runner().env("PATH", fake.path_env()).log_to(&log);
    let result = pushed_build(&ctx, "127.0.0.1:5000/app:1", "linux/amd64")
        .retry_push(5, QUICK)
        .run(&runner)
        .unwrap();
    assert_eq!(result.digest.as_deref(), Some("sha256:abc"));
    assert_eq!(builds(work.path()).len(), 2, "{:?}", calls(work.path()));
    assert!(fs::read_to_string(&log).unwrap().contains(
        "push of 127.0.0.1:5000/app:1 failed (attempt 1 of 5): ERROR: failed to solve: failed \
         to push 127.0.0.1:5000/app:1: unexpected status from PUT request to \
         http://127.0.0.1:5000/v2/app/manifests/1: 503 Service Unavailable; retrying in 0.01s"
    ));
}

#[test]
fn a_real_build_failing_on_a_missing_arm64_base_runs_once() {
    let runner: Runner = e2e::engine();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir_all(ctx.join("meta")).unwrap();
    let base = format!("buildkit-local/{}:arm64", e2e::unique("missing-base"));
    fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN true\n")).unwrap();
    let tag = format!("{}/{}:1", e2e::REGISTRY, e2e::unique("bkl-noretry"));
    let before = snapshot(&ctx);
    let log = work.path().join("build.log");
    let runner = runner.log_to(&log);
    let err = pushed_build(&ctx, &tag, "linux/arm64")
        .retry_push(5, Duration::from_secs(2))
        .run(&runner)
        .unwrap_err();
    let builds = runner
        .recorded()
        .commands()
        .into_iter()
        .filter(|argv| argv.iter().any(|a| a == "build"))
        .count();
    assert_eq!(builds, 1, "{:?}", runner.recorded().commands());
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!(
            "push of {tag} failed after 1 attempt(s): cannot build image {tag}: process didn't \
             exit successfully: `docker buildx build"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("failed to solve: {base}")), "{text}");
    assert!(!fs::read_to_string(&log).unwrap().contains("retrying"));
    assert_eq!(snapshot(&ctx), before);
    // Nothing reached the registry.
    assert!(
        e2e::registry::inspect_raw(&e2e::runner().echo(buildkit_lib::cmd::Echo::Silent), &tag)
            .is_err()
    );
}
