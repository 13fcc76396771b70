//! Buildx builders, typed: `create` (drivers `docker`, `docker-container`, `remote`,
//! `kubernetes`; multi-node with `--append`), `use`, `inspect`, `rm`, `ls`.
//!
//! Each is a command line as data plus a function that runs it, so a CI setup can be
//! printed and golden-tested before anything runs.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};

/// A buildx driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// The engine's built-in BuildKit (no extra container; the only one usable offline).
    Docker,
    /// BuildKit in a container (`moby/buildkit` image).
    #[default]
    DockerContainer,
    /// A BuildKit daemon already running elsewhere (endpoint `tcp://...` or `unix://...`).
    Remote,
    /// BuildKit pods in a Kubernetes cluster.
    Kubernetes,
}

impl Driver {
    /// The name buildx uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Docker => "docker",
            Driver::DockerContainer => "docker-container",
            Driver::Remote => "remote",
            Driver::Kubernetes => "kubernetes",
        }
    }
}

/// `docker buildx create`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuilderCreate {
    /// Builder name (`--name`).
    pub name: Option<String>,
    /// Driver (`--driver`).
    pub driver: Driver,
    /// Driver options (`--driver-opt k=v`), e.g. `image=`, `network=host`, `namespace=`.
    pub driver_opts: BTreeMap<String, String>,
    /// Platforms this node builds natively (`--platform`).
    pub platforms: Vec<String>,
    /// Node name (`--node`).
    pub node: Option<String>,
    /// Add a node to the existing builder `name` (`--append`).
    pub append: bool,
    /// BuildKit daemon configuration file (`--buildkitd-config`).
    pub buildkitd_config: Option<String>,
    /// Start the builder now (`--bootstrap`).
    pub bootstrap: bool,
    /// Make it the current builder (`--use`).
    pub use_it: bool,
    /// Context or endpoint (positional): a docker context name, or `tcp://host:1234`.
    pub endpoint: Option<String>,
}

impl BuilderCreate {
    /// The command line.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "create"]);
        if let Some(name) = &self.name {
            cmd = cmd.args(["--name", name]);
        }
        cmd = cmd.args(["--driver", self.driver.as_str()]);
        for (k, v) in &self.driver_opts {
            cmd = cmd.arg("--driver-opt").arg(format!("{k}={v}"));
        }
        if !self.platforms.is_empty() {
            cmd = cmd.arg("--platform").arg(self.platforms.join(","));
        }
        if let Some(node) = &self.node {
            cmd = cmd.args(["--node", node]);
        }
        if self.append {
            cmd = cmd.arg("--append");
        }
        if let Some(config) = &self.buildkitd_config {
            cmd = cmd.args(["--buildkitd-config", config]);
        }
        if self.bootstrap {
            cmd = cmd.arg("--bootstrap");
        }
        if self.use_it {
            cmd = cmd.arg("--use");
        }
        if let Some(endpoint) = &self.endpoint {
            cmd = cmd.arg(endpoint);
        }
        cmd
    }

    /// Checks what buildx would refuse later, then creates the builder; returns its name.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<String> {
        if self.append && self.name.is_none() {
            anyhow::bail!(
                "`append` adds a node to an existing builder: set `name` to that builder"
            );
        }
        if self.driver == Driver::Remote && self.endpoint.is_none() {
            anyhow::bail!("the remote driver needs `endpoint` (for example tcp://buildkitd:1234)");
        }
        let out = runner
            .capture(&self.command())
            .context("cannot create the buildx builder")?;
        Ok(out.stdout.trim().to_string())
    }
}

/// `docker buildx use NAME`.
pub fn use_cmd(name: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "use", name])
}

/// `docker buildx rm NAME`.
pub fn rm_cmd(name: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "rm", name])
}

/// `docker buildx inspect [--bootstrap] NAME`.
pub fn inspect_cmd(name: &str, bootstrap: bool) -> Cmd {
    let cmd = Cmd::new("docker").args(["buildx", "inspect"]);
    let cmd = if bootstrap {
        cmd.arg("--bootstrap")
    } else {
        cmd.read_only()
    };
    cmd.arg(name)
}

/// `docker buildx ls --format json`.
pub fn ls_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "ls", "--format", "json"])
        .read_only()
}

/// Makes `name` the current builder.
pub fn use_builder(runner: &Runner, name: &str) -> anyhow::Result<()> {
    runner
        .run(&use_cmd(name))
        .map(|_| ())
        .with_context(|| format!("cannot switch to builder {name}"))
}

/// Removes the builder `name`.
pub fn remove(runner: &Runner, name: &str) -> anyhow::Result<()> {
    runner
        .run(&rm_cmd(name))
        .map(|_| ())
        .with_context(|| format!("cannot remove builder {name}"))
}

/// One node of a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Endpoint (context name or URL).
    pub endpoint: String,
    /// Status (`running`, `inactive`, ...).
    pub status: String,
    /// Platforms it builds.
    pub platforms: Vec<String>,
}

/// A builder as `docker buildx ls` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderInfo {
    /// Builder name.
    pub name: String,
    /// Driver name.
    pub driver: String,
    /// Its nodes.
    pub nodes: Vec<Node>,
}

/// Every builder (`docker buildx ls --format json`, one JSON object a line; buildx 0.13
/// repeats a builder's line once per node, so repeats are dropped).
pub fn list(runner: &Runner) -> anyhow::Result<Vec<BuilderInfo>> {
    let out = runner
        .capture(&ls_cmd())
        .context("cannot list buildx builders")?;
    let mut builders: Vec<BuilderInfo> = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .context("`docker buildx ls --format json` printed a line that is not JSON")?;
        let info = builder_info(&v);
        if !builders.iter().any(|b| b.name == info.name) {
            builders.push(info);
        }
    }
    Ok(builders)
}

/// The builder `name`, from [`list`] (`None` when there is no such builder).
pub fn inspect(runner: &Runner, name: &str) -> anyhow::Result<Option<BuilderInfo>> {
    Ok(list(runner)?.into_iter().find(|b| b.name == name))
}

fn builder_info(v: &Value) -> BuilderInfo {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    BuilderInfo {
        name: s(&v["Name"]),
        driver: s(&v["Driver"]),
        nodes: v["Nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .map(|n| Node {
                        name: s(&n["Name"]),
                        endpoint: s(&n["Endpoint"]),
                        status: s(&n["Status"]),
                        platforms: n["Platforms"]
                            .as_array()
                            .map(|p| p.iter().map(s).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
