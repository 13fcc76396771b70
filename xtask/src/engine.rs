//! `cargo xtask engine up|down|env`, and bringing the engine up before a job needs it.

use std::path::Path;

use anyhow::{Context, Result};
use buildkit_lib::engine::Engine;
use buildkit_lib::{Cmd, Runner};

/// The socket `xtask/engine-up.sh` starts the project's private engine on.
pub const PROJECT_DOCKER_HOST: &str = "unix:///run/buildkit-lib/docker.sock";
/// The second engine `xtask/engine-up.sh` starts, for multi-engine builds.
pub const SECOND_DOCKER_HOST: &str = "unix:///run/buildkit-lib/docker2.sock";

/// The second engine's address: `BUILDKIT_LIB_SECOND_HOST` when set, else
/// [`SECOND_DOCKER_HOST`].
pub fn second_docker_host() -> String {
    std::env::var("BUILDKIT_LIB_SECOND_HOST").unwrap_or_else(|_| SECOND_DOCKER_HOST.into())
}

/// The loopback registry started with the engine.
pub const REGISTRY: &str = "127.0.0.1:5000";

/// The engine set-up script's command.
pub fn script(root: &Path, action: &str) -> Cmd {
    Cmd::new("bash")
        .arg_path(root.join("xtask/engine-up.sh"))
        .arg(action)
}

/// Points `runner` at the engine: `DOCKER_HOST` as set by the user, else the project's
/// private engine.
pub fn point_at_engine(runner: Runner) -> Runner {
    let runner = runner.engine_help("`cargo xtask engine up` starts the project's engine");
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => runner,
        _ => runner.env("DOCKER_HOST", PROJECT_DOCKER_HOST),
    }
}

/// Makes sure an engine answers; when none does and the user has not chosen one with
/// `DOCKER_HOST`, runs the set-up script (installs and starts everything).
pub fn ensure(runner: &Runner, root: &Path) -> Result<()> {
    if runner.is_dry_run() || Engine::answers(runner) {
        return Ok(());
    }
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty() && h != PROJECT_DOCKER_HOST) {
        anyhow::bail!(
            "no Docker engine answers at DOCKER_HOST={}; start it, or unset DOCKER_HOST to let \
             `cargo xtask engine up` start the project's own engine",
            std::env::var("DOCKER_HOST").unwrap_or_default()
        );
    }
    runner.note("no Docker engine answers: bringing the project's engine up (xtask/engine-up.sh)");
    runner
        .run(&script(root, "up"))
        .context("cannot bring the Docker engine up")?;
    Ok(())
}

/// Runs `pipeline`; when its engine check finds no engine (or no docker) and the user has
/// not chosen one with `DOCKER_HOST`, brings the project's engine up and runs it again.
/// A run with the engine up pays for one engine check, the pipeline's own.
pub fn run_pipeline(
    runner: &Runner,
    root: &Path,
    pipeline: &buildkit_lib::pipeline::Pipeline,
    options: &buildkit_lib::pipeline::RunOptions,
) -> Result<buildkit_lib::pipeline::Report> {
    use buildkit_lib::pipeline::{EngineProblem, EngineUnavailable};
    match pipeline.run(runner, options) {
        Err(e)
            if e.downcast_ref::<EngineUnavailable>().is_some_and(|u| {
                matches!(
                    u.problem,
                    EngineProblem::EngineDown { .. } | EngineProblem::DockerMissing
                )
            }) && !std::env::var("DOCKER_HOST")
                .is_ok_and(|h| !h.is_empty() && h != PROJECT_DOCKER_HOST) =>
        {
            runner.note(
                "no Docker engine answers: bringing the project's engine up (xtask/engine-up.sh)",
            );
            runner
                .run(&script(root, "up"))
                .context("cannot bring the Docker engine up")?;
            pipeline.run(runner, options)
        }
        other => other,
    }
}

/// `cargo xtask engine <up|down|env|status|registry-start|registry-stop>`.
pub fn run(runner: &Runner, root: &Path, action: &str) -> Result<()> {
    runner
        .run(&script(root, action))
        .with_context(|| format!("`engine {action}` failed"))?;
    Ok(())
}
