//! This repository's own `cargo xtask`: the reference wiring of `buildkit-lib`.
//!
//! One module per subcommand; `main` parses the subcommand and its flags and dispatches.
//! Exit status: 0 success, 1 a step failed, 2 usage error, 130 interrupted.

mod bake;
mod bench;
mod build;
mod check;
mod clean;
mod engine;
mod fixtures;
mod flags;
mod mediaserver;
mod package;
mod release;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use buildkit_lib::cmd::{interrupt, Echo};
use buildkit_lib::engine::{doctor, DoctorOptions, Status};
use buildkit_lib::pipeline::PipelineError;
use buildkit_lib::Runner;
use flags::{Flags, UsageError};

const USAGE: &str = "\
Usage: cargo xtask <command> [flags]

Commands:
  build     the webapp pipeline on fixtures/webapp: format checks, Dockerfile lint,
            version stamp, image build, size budget, smoke test, report
  mediaserver  the production-shaped pipeline on fixtures/mediaserver: 5,000-file
            context, PyPI dependencies, image, size, smoke test against a real MariaDB
  bake      the webapp pipeline's image builds as docker-bake.json, built with
            docker buildx bake (or printed as buildx reads it, --print)
  package   the desktop fixture through its three stages into fixtures/desktop/dist/
  check     format checks (black, isort) over the fixtures' Python
  fmt       format fixes (black, isort) over the fixtures' Python
  release   bump the version, move the CHANGELOG's Unreleased section, commit and tag
  clean     remove the containers, images and build folders this project owns
  doctor    preflight check: engine, buildx, builder, image store, platforms, registry
  bench     measure speed and memory figures against the raw tools
  engine    bring the project's Docker engine up or down (up|down|env|status)
  test      bring the engine up, then run the workspace's tests

Every command takes --dry-run (print what it would do, change nothing) and --help.";

fn main() -> ExitCode {
    interrupt::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if err.downcast_ref::<UsageError>().is_some()
                || err.downcast_ref::<PipelineError>().is_some()
            {
                eprintln!("error: {err:#}\nhelp: run `cargo xtask --help` for the commands and their flags");
                ExitCode::from(2)
            } else if interrupt::interrupted() {
                ExitCode::from(interrupt::EXIT_INTERRUPTED as u8)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// The repository root (the xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// The help text of one command.
fn help(command: &str) -> Option<&'static str> {
    Some(match command {
        "build" => "Usage: cargo xtask build [--dry-run] [--force] [--keep-going] [--jobs N] [--no-smoke] [--cache SPEC]\n\nRuns the webapp pipeline on fixtures/webapp. Brings the engine up first when none answers.\nA second run with nothing changed reports the image build up-to-date.\n--cache: gha (GitHub Actions cache, the service the job offers), gha:v1, gha:v2,\nregistry:REF, local:DIR or none (the default).\nReport: target/buildkit/build/report.json",
        "bake" => "Usage: cargo xtask bake [--print] [--dry-run] [--out FILE] [--cache SPEC]\n\nExports the webapp pipeline's image builds to target/buildkit/build/docker-bake.json (or\nFILE; paths in it are relative to its directory), stamps the version metadata the image\nreads, then runs docker buildx bake in that directory. --print shows the definition as\nbuildx reads it instead of building (with --dry-run: the file that would be written).\n--cache: as for `cargo xtask build`.",
        "package" => "Usage: cargo xtask package [--mode mounted|isolated] [--dry-run] [--force]\n\nBuilds the desktop fixture through its three stages (base, runtime, package) into\nfixtures/desktop/dist/, replaced atomically.",
        "check" => "Usage: cargo xtask check [--dry-run]\n\nRuns black --check and isort --check-only (pinned versions) over the fixtures' Python.",
        "fmt" => "Usage: cargo xtask fmt [--dry-run]\n\nRuns black and isort (pinned versions) over the fixtures' Python, fixing it.",
        "release" => "Usage: cargo xtask release --bump <major|minor|patch|pre|release> [--dry-run]\n\nBumps fixtures/webapp/version.json, moves CHANGELOG.md's Unreleased section under the\nnew version, commits and creates the annotated tag v<version>.",
        "clean" => "Usage: cargo xtask clean [--dry-run] [--force]\n\nRemoves the containers and images labelled as this project's, and fixtures' dist/ and\nbuild/ folders. --dry-run lists what would go, with sizes.",
        "mediaserver" => "Usage: cargo xtask mediaserver [--dry-run] [--force] [--keep-going] [--no-smoke]\n\nRuns the production-shaped pipeline on fixtures/mediaserver: generates its 5,000-file\ncontext, checks formatting, builds the runtime image (real PyPI dependencies; the first\nbuild takes a few minutes), checks its size, and smoke-tests it against a real MariaDB.\nReport: target/buildkit/mediaserver/report.json",
        "doctor" => "Usage: cargo xtask doctor\n\nChecks the engine, buildx, the builder, the image store, platforms and the registry;\nprints one line with the fix for each missing piece. Exit 1 when something fails.",
        "bench" => "Usage: cargo xtask bench [--quick] [--only NAME]\n\nMeasures speed and memory figures on the real engine against the raw tools and writes\ntarget/buildkit/bench/bench.json.",
        "engine" => "Usage: cargo xtask engine <up|down|env|status|registry-start|registry-stop> [--dry-run]\n\nInstalls (when missing) and starts the project's Docker engine, registry, arm64\nemulation and local base images; or stops them.",
        "test" => "Usage: cargo xtask test [-- <cargo test args>]\n\nBrings the engine up when none answers, then runs `cargo test --workspace`.",
        _ => return None,
    })
}

fn dispatch(args: &[String]) -> anyhow::Result<u8> {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Err(UsageError("no command given".into()).into());
    };
    if command == "bench-stream" {
        // Internal: the measured side of the benchmark's log_stream figure.
        return bench::stream(rest);
    }
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return Ok(0);
    }
    let Some(help_text) = help(command) else {
        return Err(UsageError(format!("unknown command `{command}`")).into());
    };
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        println!("{help_text}");
        return Ok(0);
    }
    let root = root();
    let base = engine::point_at_engine(Runner::new());
    match command.as_str() {
        "doctor" => {
            let flags = Flags::parse("doctor", rest, &["dry-run"], &[])?;
            flags.no_positional("doctor")?;
            let runner = base.echo(Echo::Silent);
            let checks = doctor(
                &runner,
                &DoctorOptions {
                    registry: Some(engine::REGISTRY.to_string()),
                    platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
                    engine_up_hint:
                        "run `cargo xtask engine up` (installs and starts the project's engine)"
                            .into(),
                },
            );
            for check in &checks {
                println!("{check}");
            }
            Ok(u8::from(checks.iter().any(|c| c.status == Status::Fail)))
        }
        "engine" => {
            let flags = Flags::parse("engine", rest, &["dry-run"], &[])?;
            let action = match flags.positional.as_slice() {
                [] => "up",
                [one] if matches!(one.as_str(), "up" | "down" | "env" | "status" | "registry-start" | "registry-stop") => one,
                [other, ..] => return Err(UsageError(format!("unknown engine action `{other}` (up, down, env, status, registry-start, registry-stop)")).into()),
            };
            engine::run(&base.dry_run(flags.on("dry-run")), &root, action)?;
            Ok(0)
        }
        "test" => test::run(&base, &root, rest),
        "bench" => bench::run(&base, &root, rest),
        "clean" => clean::run(&base, &root, rest),
        "package" => package::run(&base, &root, rest),
        "release" => {
            let flags = Flags::parse("release", rest, &["dry-run"], &["bump"])?;
            flags.no_positional("release")?;
            let bump = flags.value("bump").ok_or_else(|| {
                UsageError(
                    "`cargo xtask release` needs `--bump <major|minor|patch|pre|release>`".into(),
                )
            })?;
            release::run(&base, &root, bump, flags.on("dry-run"))?;
            Ok(0)
        }
        "build" => build::run(&base, &root, rest),
        "mediaserver" => mediaserver::run(&base, &root, rest),
        "bake" => bake::run(&base, &root, rest),
        "check" => check::run(&base, &root, rest, false),
        "fmt" => check::run(&base, &root, rest, true),
        _ => unreachable!("every command with help text is dispatched above"),
    }
}
