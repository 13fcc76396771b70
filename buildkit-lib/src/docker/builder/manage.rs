//! The plain commands on existing builders: `use`, `rm`, `inspect`, `prune` (empties a
//! builder's cache) and `ls`, each as a command line and a function that runs it, and
//! [`list`]/[`inspect`] reading `ls`'s JSON into [`BuilderInfo`].
//!
//! Here because they take a builder's name and nothing else: no driver, no creation.

use anyhow::Context;
use serde::Deserialize;

use crate::cmd::{Cmd, Runner};
use crate::rows::nullable;

/// `docker buildx rm NAME`.
pub(crate) fn rm_cmd(name: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "rm", name])
}

/// `docker buildx inspect [--bootstrap] NAME`.
pub(crate) fn inspect_cmd(name: &str, bootstrap: bool) -> Cmd {
    let cmd = Cmd::new("docker").args(["buildx", "inspect"]);
    let cmd = if bootstrap {
        cmd.arg("--bootstrap")
    } else {
        cmd.read_only()
    };
    cmd.arg(name)
}

/// `docker buildx ls --format json`.
pub(crate) fn ls_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "ls", "--format", "json"])
        .read_only()
}

/// Removes the builder `name`.
pub(crate) fn remove(runner: &Runner, name: &str) -> anyhow::Result<()> {
    runner
        .run(&rm_cmd(name))
        .map(|_| ())
        .with_context(|| format!("cannot remove builder {name}"))
}

/// One node of a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Node name.
    pub(crate) name: String,
    /// Endpoint (context name or URL).
    pub(crate) endpoint: String,
    /// Status (`running`, `inactive`, ...).
    pub(crate) status: String,
    /// Platforms it builds.
    pub(crate) platforms: Vec<String>,
}

/// A builder as `docker buildx ls` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuilderInfo {
    /// Builder name.
    pub(crate) name: String,
    /// Driver name.
    pub(crate) driver: String,
    /// Its nodes.
    pub(crate) nodes: Vec<Node>,
}

/// Every builder (`docker buildx ls --format json`, one JSON object a line; buildx 0.13
/// repeats a builder's line once per node, so repeats are dropped).
pub(crate) fn list(runner: &Runner) -> anyhow::Result<Vec<BuilderInfo>> {
    let out = runner
        .capture(&ls_cmd())
        .context("cannot list buildx builders")?;
    let mut builders: Vec<BuilderInfo> = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let info = builder_info(crate::rows::parse(
            line,
            "`docker buildx ls --format json`",
        )?);
        if !builders.iter().any(|b| b.name == info.name) {
            builders.push(info);
        }
    }
    Ok(builders)
}

/// The builder `name`, from [`list`] (`None` when there is no such builder).
pub(crate) fn inspect(runner: &Runner, name: &str) -> anyhow::Result<Option<BuilderInfo>> {
    Ok(list(runner)?.into_iter().find(|b| b.name == name))
}

/// One line of `docker buildx ls --format json`: a builder, known by its `Name`.
#[derive(Debug, Deserialize)]
struct BuilderRow {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver", default, deserialize_with = "nullable")]
    driver: String,
    #[serde(rename = "Nodes", default, deserialize_with = "nullable")]
    nodes: Vec<NodeRow>,
}

#[derive(Debug, Deserialize)]
struct NodeRow {
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "Endpoint", default, deserialize_with = "nullable")]
    endpoint: String,
    #[serde(rename = "Status", default, deserialize_with = "nullable")]
    status: String,
    #[serde(rename = "Platforms", default, deserialize_with = "nullable")]
    platforms: Vec<String>,
}

fn builder_info(v: BuilderRow) -> BuilderInfo {
    BuilderInfo {
        name: v.name,
        driver: v.driver,
        nodes: v
            .nodes
            .into_iter()
            .map(|n| Node {
                name: n.name,
                endpoint: n.endpoint,
                status: n.status,
                platforms: n.platforms,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moved from the e2e golden test `builder_create_for_each_driver`.
    #[test]
    fn rm_command_line() {
        let dry_command = |run: &dyn Fn(&Runner) -> anyhow::Result<()>| {
            let runner = Runner::new().echo(crate::cmd::Echo::Silent).dry_run(true);
            run(&runner).unwrap();
            let commands = runner.commands();
            assert_eq!(commands.len(), 1, "{commands:?}");
            commands[0].join(" ")
        };
        assert_eq!(
            dry_command(&|r| remove(r, "multi")),
            "docker buildx rm multi"
        );
    }

    #[test]
    fn inspect_and_ls_command_lines() {
        assert_eq!(
            inspect_cmd("multi", true).to_string(),
            "docker buildx inspect --bootstrap multi"
        );
        assert_eq!(
            inspect_cmd("multi", false).to_string(),
            "docker buildx inspect multi"
        );
        assert_eq!(ls_cmd().to_string(), "docker buildx ls --format json");
    }

    #[test]
    fn buildx_ls_lines_are_builder_rows() {
        let line = r#"{"Name":"multi","Driver":"docker-container","Dynamic":false,"Nodes":[
          {"Name":"multi0","Endpoint":"unix:///var/run/docker.sock","Status":"running",
           "Platforms":["linux/amd64","linux/arm64"],"Labels":{"a":"b"}},
          {"Name":"multi1","Endpoint":"tcp://10.0.0.2:1234","Status":"inactive","Platforms":null}]}"#;
        let info =
            builder_info(crate::rows::parse(line, "`docker buildx ls --format json`").unwrap());
        assert_eq!(
            (info.name.as_str(), info.driver.as_str()),
            ("multi", "docker-container")
        );
        assert_eq!(info.nodes.len(), 2);
        assert_eq!(info.nodes[0].platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(info.nodes[1].status, "inactive");
        assert!(info.nodes[1].platforms.is_empty());
        let e = crate::rows::parse::<BuilderRow>(
            r#"{"Driver":"docker"}"#,
            "`docker buildx ls --format json`",
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("`docker buildx ls --format json` printed JSON of an unexpected shape"),
            "{text}"
        );
        assert!(text.contains("missing field `Name`"), "{text}");
    }
}
