//! `cargo xtask engine up|down|env`, and bringing the engine up before a job needs it.

use std::path::Path;

use anyhow::{Context, Result};
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
        .arg(root.join("xtask/engine-up.sh"))
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
pub fn ensure(runner: &Runner, root: &Path, dry_run: bool) -> Result<()> {
    // `docker version` asking only for the server's version, with a short timeout.
    let answers = || {
        let probe = Cmd::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .timeout(std::time::Duration::from_secs(15))
            .read_only();
        runner.capture(&probe).is_ok()
    };
    if dry_run || answers() {
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
) -> Result<buildkit_lib::pipeline::Report> {
    use buildkit_lib::pipeline::EngineUnavailable;
    match pipeline.run(runner) {
        Err(e)
            if e.downcast_ref::<EngineUnavailable>()
                .is_some_and(EngineUnavailable::is_engine_down)
                && !std::env::var("DOCKER_HOST")
                    .is_ok_and(|h| !h.is_empty() && h != PROJECT_DOCKER_HOST) =>
        {
            runner.note(
                "no Docker engine answers: bringing the project's engine up (xtask/engine-up.sh)",
            );
            runner
                .run(&script(root, "up"))
                .context("cannot bring the Docker engine up")?;
            pipeline.run(runner)
        }
        other => other,
    }
}

/// `cargo xtask engine <up|down|env|status|versions|registry-start|registry-stop> [WHAT...]`.
/// `env` prints the script's export lines on stdout, so that
/// `eval "$(cargo xtask engine env)"` points the shell at the engine.
pub fn run(
    runner: &Runner,
    root: &Path,
    action: &str,
    what: &[String],
    dry_run: bool,
) -> Result<()> {
    let cmd = script(root, action).args(what.iter().cloned());
    if action == "env" && !dry_run {
        let out = runner
            .capture(&cmd)
            .with_context(|| format!("`engine {action}` failed"))?;
        print!("{}", out.stdout);
        return Ok(());
    }
    runner
        .run(&cmd)
        .with_context(|| format!("`engine {action}` failed"))?;
    Ok(())
}

/// Brings up the engine set-up's optional `components` (`second`, `oldest`, `arm64`,
/// `mariadb`, `buildkit`, `all`) beside the default engine, for the commands that use
/// them; idempotent, a few seconds when they are already up. Does nothing when the user
/// chose another engine with `DOCKER_HOST`.
pub fn ensure_components(runner: &Runner, root: &Path, components: &[&str]) -> Result<()> {
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty() && h != PROJECT_DOCKER_HOST) {
        return ensure(runner, root, false);
    }
    runner
        .run(&script(root, "up").args(components.iter().copied()))
        .with_context(|| format!("cannot bring up {}", components.join(", ")))?;
    Ok(())
}

/// The `export NAME=VALUE` lines of `engine-up.sh env ENGINE`, as pairs; `"$PATH"` in a
/// value stands for the current `PATH`.
pub fn env_of(runner: &Runner, root: &Path, engine: &str) -> Result<Vec<(String, String)>> {
    let out = runner
        .capture(&script(root, "env").arg(engine))
        .with_context(|| format!("cannot read the environment of the {engine} engine"))?;
    let path = std::env::var("PATH").unwrap_or_default();
    Ok(parse_env(&out.stdout, &path))
}

fn parse_env(text: &str, path: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\"$PATH\"", path)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_lines_become_pairs_with_path_expanded() {
        let text = "export DOCKER_HOST=unix:///run/x.sock\nexport PATH=/e/bin:\"$PATH\"\nnoise\n";
        assert_eq!(
            super::parse_env(text, "/usr/bin"),
            vec![
                ("DOCKER_HOST".to_string(), "unix:///run/x.sock".to_string()),
                ("PATH".to_string(), "/e/bin:/usr/bin".to_string()),
            ]
        );
    }
}
