//! Finding the Docker engine the way the docker CLI does, and the preflight check
//! ([`Doctor`]).
//!
//! The engine is found in the client's own order: `DOCKER_HOST`, then the docker
//! context (`DOCKER_CONTEXT` or the current one), then the default socket. [`Doctor`]
//! checks each piece a build needs and gives one line with the fix for each missing one.
//! What the buildx talked to can do is read from its version (asked once per runner), and
//! judged against the range of engine and buildx releases the library is verified with
//! (Docker Engine 26.1–28.5, buildx 0.13–0.29), which the doctor reports.

mod doctor;
mod versions;

pub use doctor::{Check, Doctor};
pub(crate) use versions::{buildx_reported, engine_version};
pub(crate) use versions::{Capabilities, Feature};

use anyhow::{Context as _, Result};

use crate::cmd::{Cmd, Runner};

/// Where the engine was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum HostSource {
    /// From the `DOCKER_HOST` variable.
    Env,
    /// From a docker context (its name).
    Context(String),
    /// The client's default socket.
    Default,
}

/// The engine the docker client will talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Engine {
    /// The endpoint, such as `unix:///var/run/docker.sock`.
    pub(crate) host: String,
    /// How it was found.
    pub(crate) source: HostSource,
}

/// The default endpoint of the docker client on Linux.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

impl Engine {
    /// Finds the engine as the docker client would for commands started by `runner`.
    pub(crate) fn detect(runner: &Runner) -> Result<Engine> {
        let probe = Cmd::new("docker");
        if let Some(host) = runner
            .effective_env(&probe, "DOCKER_HOST")
            .filter(|h| !h.is_empty())
        {
            return Ok(Engine {
                host,
                source: HostSource::Env,
            });
        }
        let out = runner
            .capture(
                &Cmd::new("docker")
                    .args([
                        "context",
                        "inspect",
                        "--format",
                        "{{.Name}} {{.Endpoints.docker.Host}}",
                    ])
                    .read_only(),
            )
            .context("cannot read the current docker context")?;
        let line = out.stdout.trim();
        match line.split_once(' ') {
            Some((name, host)) if name != "default" && !host.is_empty() => Ok(Engine {
                host: host.to_string(),
                source: HostSource::Context(name.to_string()),
            }),
            Some((_, host)) if !host.is_empty() && host != DEFAULT_HOST => Ok(Engine {
                host: host.to_string(),
                source: HostSource::Context("default".into()),
            }),
            _ => Ok(Engine {
                host: DEFAULT_HOST.to_string(),
                source: HostSource::Default,
            }),
        }
    }
}

/// `docker version` asking only for the server version, with a short timeout.
pub(crate) fn version_probe() -> Cmd {
    Cmd::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .timeout(std::time::Duration::from_secs(15))
        .read_only()
}
