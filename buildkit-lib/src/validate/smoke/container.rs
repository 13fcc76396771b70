//! The containers a smoke test starts: removal guaranteed (success, failure, panic,
//! Ctrl-C), their state, health and last log lines, and the image facts that pick a check.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cmd::{CleanupGuard, Cmd, ContainerState, Runner};

/// How many log lines a report keeps.
pub(crate) const LOG_LINES: usize = 20;

/// A container started by the test: removed by [`RunningContainer::remove`], or when
/// dropped (a panic), or by the run's clean-up when it is cancelled (Ctrl-C).
pub(crate) struct RunningContainer {
    runner: Runner,
    name: String,
    removed: bool,
    _on_cancel: CleanupGuard,
}

impl RunningContainer {
    /// Registers the removal before the container exists, so no moment is uncovered.
    pub(crate) fn register(runner: &Runner, name: &str) -> RunningContainer {
        RunningContainer {
            // Removal runs even when the run was cancelled.
            runner: runner.for_cleanup(),
            name: name.to_string(),
            removed: false,
            _on_cancel: runner.on_cancel(remove_cmd(name)),
        }
    }

    /// Removes the container now.
    pub(crate) fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.runner
            .capture(&remove_cmd(&self.name))
            .with_context(|| format!("cannot remove smoke test container {}", self.name))?;
        Ok(())
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.runner.capture(&remove_cmd(&self.name));
        }
    }
}

/// `docker rm --force --volumes NAME`: how every container the test started is removed.
pub(crate) fn remove_cmd(name: &str) -> Cmd {
    Cmd::new("docker")
        .args(["rm", "--force", "--volumes", name])
        .timeout(Duration::from_secs(60))
}

#[derive(Debug, Default, Deserialize)]
struct ImageInspect {
    #[serde(rename = "Config", default)]
    config: Option<ImageConfig>,
}

/// The parts of an image's configuration that choose a readiness check.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ImageConfig {
    #[serde(rename = "Healthcheck", default)]
    healthcheck: Option<Healthcheck>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Healthcheck {
    #[serde(rename = "Test", default)]
    test: Vec<String>,
}

impl ImageConfig {
    /// True when the image has a `HEALTHCHECK` that is not `NONE`.
    pub(crate) fn has_healthcheck(&self) -> bool {
        self.healthcheck
            .as_ref()
            .and_then(|h| h.test.first())
            .is_some_and(|t| t != "NONE")
    }

    /// The first `EXPOSE`d TCP port.
    pub(crate) fn first_tcp_port(&self) -> Option<u16> {
        self.exposed_ports
            .keys()
            .find_map(|p| p.strip_suffix("/tcp").unwrap_or(p).parse::<u16>().ok())
    }
}

/// What a dry run answers for the image's configuration.
const IMAGE_WITH_HEALTHCHECK: &str =
    r#"{"Config":{"Healthcheck":{"Test":["CMD-SHELL","<healthcheck>"]}}}"#;

/// Reads `image`'s configuration through the runner.
pub(crate) fn image_config(runner: &Runner, image: &str) -> Result<ImageConfig> {
    // A dry run answers an image with a HEALTHCHECK: the plan waits for its health.
    let cmd = crate::docker::image::inspect_cmd(image).dry_answer(IMAGE_WITH_HEALTHCHECK);
    let out = runner
        .capture(&cmd)
        .with_context(|| format!("cannot inspect image {image} (build it first)"))?;
    let parsed: ImageInspect = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("cannot read `{cmd}` output"))?;
    Ok(parsed.config.unwrap_or_default())
}

/// `docker logs --tail LOG_LINES NAME`.
pub(crate) fn last_logs_cmd(name: &str) -> Cmd {
    Cmd::new("docker")
        .args(["logs", "--tail", &LOG_LINES.to_string(), name])
        .read_only()
        .timeout(Duration::from_secs(30))
}

/// `docker container inspect --format '{{json .State}}' NAME`, recorded (a dry run answers
/// a running container).
pub(crate) fn inspect_state(runner: &Runner, name: &str) -> Result<ContainerState> {
    let cmd = ContainerState::command(name);
    let out = runner.capture(&cmd)?;
    ContainerState::parse(&out.stdout).map_err(|e| anyhow::anyhow!("`{cmd}`: {e}"))
}

/// The last [`LOG_LINES`] lines of the container's output (stdout, then stderr).
pub(crate) fn last_logs(runner: &Runner, name: &str) -> Vec<String> {
    let cmd = last_logs_cmd(name);
    match runner.capture(&cmd) {
        Ok(out) => {
            // stdout of `capture` is not masked (it is data); these lines are shown.
            let mut lines: Vec<String> = out.stdout.lines().map(|l| runner.redact(l)).collect();
            lines.extend(out.tail);
            let skip = lines.len().saturating_sub(LOG_LINES);
            lines.split_off(skip)
        }
        Err(e) => vec![format!("(cannot read the logs: {e})")],
    }
}
