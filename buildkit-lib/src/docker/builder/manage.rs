//! The plain commands on existing builders: `use`, `rm`, `inspect`, `prune` (empties a
//! builder's cache) and `ls`, each as a command line and a function that runs it, and
//! [`list`]/[`inspect`] reading `ls`'s JSON into [`BuilderInfo`].
//!
//! Here because they take a builder's name and nothing else: no driver, no creation.

use anyhow::Context;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};

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

/// `docker buildx prune --builder NAME --all --force`: empties that builder's cache.
pub(crate) fn prune_cmd(name: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "prune", "--builder", name, "--all", "--force"])
}

/// Empties the build cache of builder `name` (every record, shared or not).
pub fn prune(runner: &Runner, name: &str) -> anyhow::Result<()> {
    runner
        .capture(&prune_cmd(name))
        .map(|_| ())
        .with_context(|| format!("cannot prune the build cache of builder {name}"))
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
