//! Where each platform builds: an engine address, a docker context or a buildx builder,
//! read from `PLATFORM=ENDPOINT` text, and the runner that reaches it.

use std::fmt;

use anyhow::Context;

use crate::cmd::Runner;

/// Where one platform builds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Endpoint {
    /// A Docker engine address (`unix:///...`, `tcp://host:2376`, `ssh://user@host`), set
    /// as `DOCKER_HOST` for that platform's commands; the build uses that engine's
    /// built-in builder (`--builder default`).
    Host(String),
    /// A docker context (`docker context create NAME --docker host=...`), set as
    /// `DOCKER_CONTEXT` (and `DOCKER_HOST` unset) for that platform's commands; the build
    /// uses the context's built-in builder, which buildx names after the context.
    Context(String),
    /// A buildx builder by name (`docker buildx create --name NAME ...`), of any driver.
    Builder(String),
}

impl Endpoint {
    /// Reads `unix://...`, `tcp://...`, `ssh://...`, `npipe://...` as a host,
    /// `context:NAME` as a docker context and `builder:NAME` as a buildx builder.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Endpoint> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("context:") {
            anyhow::ensure!(!name.is_empty(), "`context:` needs a docker context name");
            return Ok(Endpoint::Context(name.to_string()));
        }
        if let Some(name) = text.strip_prefix("builder:") {
            anyhow::ensure!(!name.is_empty(), "`builder:` needs a buildx builder name");
            return Ok(Endpoint::Builder(name.to_string()));
        }
        if ["unix://", "tcp://", "ssh://", "npipe://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
        {
            return Ok(Endpoint::Host(text.to_string()));
        }
        anyhow::bail!(
            "`{text}` is not an engine or builder: write a DOCKER_HOST address \
             (unix:///path/docker.sock, tcp://host:2376, ssh://user@host), \
             `context:NAME` for a docker context, or `builder:NAME` for a buildx builder"
        )
    }

    /// The buildx builder that builds for this endpoint.
    pub(crate) fn builder(&self) -> &str {
        match self {
            Endpoint::Host(_) => "default",
            Endpoint::Context(name) | Endpoint::Builder(name) => name,
        }
    }

    /// The runner for this endpoint's commands: `DOCKER_HOST` set for a host endpoint;
    /// `DOCKER_CONTEXT` set and `DOCKER_HOST` removed for a context (buildx loads an image
    /// only into the current context's engine, and `DOCKER_HOST` overrides
    /// `DOCKER_CONTEXT`).
    pub(crate) fn runner(&self, base: &Runner) -> Runner {
        match self {
            Endpoint::Host(host) => base.clone().env("DOCKER_HOST", host),
            Endpoint::Context(name) => base
                .clone()
                .env("DOCKER_CONTEXT", name)
                .env_remove("DOCKER_HOST"),
            Endpoint::Builder(_) => base.clone(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Host(host) => write!(f, "DOCKER_HOST={host}"),
            Endpoint::Context(name) => write!(f, "docker context {name}"),
            Endpoint::Builder(name) => write!(f, "buildx builder {name}"),
        }
    }
}

/// One platform and where it builds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub(crate) struct PlatformEndpoint {
    /// `os/arch[/variant]`, for example `linux/arm64`.
    pub(crate) platform: String,
    /// The engine or builder that builds it.
    pub(crate) endpoint: Endpoint,
}

impl PlatformEndpoint {
    /// Reads `PLATFORM=ENDPOINT`, for example `linux/arm64=context:arm-box`: the endpoint a
    /// `DOCKER_HOST` address (`unix://`, `tcp://`, `ssh://`, `npipe://`), `context:NAME` for
    /// a docker context or `builder:NAME` for a buildx builder.
    pub(crate) fn parse(text: &str) -> anyhow::Result<PlatformEndpoint> {
        let (platform, endpoint) = text.split_once('=').with_context(|| {
            format!(
                "`{text}` is not PLATFORM=ENDPOINT (for example \
                 linux/arm64=unix:///run/arm/docker.sock)"
            )
        })?;
        check_platform(platform)?;
        Ok(PlatformEndpoint {
            platform: platform.to_string(),
            endpoint: Endpoint::parse(endpoint)?,
        })
    }
}

/// Checks that `platform` reads `os/arch[/variant]`.
pub(super) fn check_platform(platform: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = platform.split('/').collect();
    let valid = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    anyhow::ensure!(
        valid,
        "`{platform}` is not a platform: write os/arch[/variant], for example linux/amd64 or \
         linux/arm/v7"
    );
    Ok(())
}
