//! Buildx builders, typed: `create` (drivers `docker`, `docker-container`, `remote` with
//! TLS files, `kubernetes`), multi-node builders ([`MultiNode`]: one node per machine or
//! cluster, each with its platforms, created with `--append`), `use`, `inspect`, `rm`,
//! `ls`.
//!
//! Each is a command line as data plus a function that runs it, so a CI setup can be
//! printed and golden-tested before anything runs. A builder with nodes for several
//! platforms is BuildKit's own way of spreading a build over machines: a
//! `docker buildx build --builder NAME --platform linux/amd64,linux/arm64` sends each
//! platform to the node that declares it, and buildx merges the result.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};

/// A buildx driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

/// The TLS files a `remote` builder uses to reach a BuildKit daemon on `tcp://`
/// (`--driver-opt cacert=...,cert=...,key=...,servername=...`). buildx does not check
/// that the files exist when the builder is created; [`BuilderCreate::run`] does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteTls {
    /// The CA certificate that signed the daemon's certificate.
    pub cacert: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client certificate's key.
    pub key: PathBuf,
    /// The name in the daemon's certificate, when it differs from the endpoint's host.
    pub servername: Option<String>,
}

impl RemoteTls {
    fn driver_opts(&self) -> [(String, Option<String>); 4] {
        let path = |p: &PathBuf| Some(p.display().to_string());
        [
            ("cacert".into(), path(&self.cacert)),
            ("cert".into(), path(&self.cert)),
            ("key".into(), path(&self.key)),
            ("servername".into(), self.servername.clone()),
        ]
    }
}

impl BuilderCreate {
    /// Adds the TLS files of a `remote` builder as driver options.
    pub fn with_tls(mut self, tls: &RemoteTls) -> BuilderCreate {
        for (key, value) in tls.driver_opts() {
            if let Some(value) = value {
                self.driver_opts.insert(key, value);
            }
        }
        self
    }

    /// The checks buildx does not make, or makes only once a build starts: `append` has a
    /// name, a remote builder has an endpoint buildx understands, and its TLS files exist.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.append && self.name.is_none() {
            anyhow::bail!(
                "`append` adds a node to an existing builder: set `name` to that builder"
            );
        }
        if self.driver == Driver::Remote {
            let Some(endpoint) = &self.endpoint else {
                anyhow::bail!(
                    "the remote driver needs `endpoint` (for example tcp://buildkitd:1234)"
                );
            };
            if !["tcp://", "unix://", "docker-container://", "kube-pod://"]
                .iter()
                .any(|s| endpoint.starts_with(s))
            {
                anyhow::bail!(
                    "remote builder endpoint `{endpoint}` is not a BuildKit address: write \
                     tcp://host:port (with TLS files) or unix:///path/buildkitd.sock"
                );
            }
            for key in ["cacert", "cert", "key"] {
                if let Some(path) = self.driver_opts.get(key) {
                    if !std::path::Path::new(path).is_file() {
                        anyhow::bail!(
                            "the remote builder's TLS {key} file `{path}` does not exist; \
                             point `{key}` at the file the BuildKit daemon's certificates \
                             were issued with"
                        );
                    }
                }
            }
            if self.driver_opts.contains_key("cert") != self.driver_opts.contains_key("key") {
                anyhow::bail!(
                    "a client certificate needs its key and the other way round: set both \
                     `cert` and `key`"
                );
            }
        }
        Ok(())
    }

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
        self.check()?;
        let out = runner
            .capture(&self.command())
            .context("cannot create the buildx builder")?;
        Ok(out.stdout.trim().to_string())
    }
}

/// One node of a [`MultiNode`] builder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSpec {
    /// The node's name (`--node`), unique within the builder.
    pub name: String,
    /// Where it runs: a docker context, `tcp://host:1234` (remote), or nothing for the
    /// kubernetes driver (it uses the current kubeconfig).
    pub endpoint: Option<String>,
    /// The platforms it builds natively (`--platform`).
    pub platforms: Vec<String>,
    /// Driver options of this node only, on top of the builder's (`--driver-opt`).
    pub driver_opts: BTreeMap<String, String>,
    /// TLS files, for a remote node on `tcp://`.
    pub tls: Option<RemoteTls>,
}

/// A builder with one node per machine (or cluster), each building its own platforms:
/// `docker buildx create` for the first node, `--append` for the others, `--bootstrap`
/// on the last one. Creating it fails, and leaves nothing behind, when a builder of that
/// name exists already or any node is refused.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiNode {
    /// The builder's name.
    pub name: String,
    /// The driver of every node.
    pub driver: Driver,
    /// Driver options of every node (`image=`, `network=host`, `namespace=`, ...).
    pub driver_opts: BTreeMap<String, String>,
    /// BuildKit daemon configuration file (`--buildkitd-config`), for every node.
    pub buildkitd_config: Option<String>,
    /// The nodes, in order.
    pub nodes: Vec<NodeSpec>,
    /// Start every node once created (`--bootstrap`).
    pub bootstrap: bool,
    /// Make it the current builder (`--use`).
    pub use_it: bool,
}

impl MultiNode {
    /// One `docker buildx create` per node.
    pub fn creates(&self) -> Vec<BuilderCreate> {
        let last = self.nodes.len().saturating_sub(1);
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let mut driver_opts = self.driver_opts.clone();
                driver_opts.extend(node.driver_opts.clone());
                let create = BuilderCreate {
                    name: Some(self.name.clone()),
                    driver: self.driver,
                    driver_opts,
                    platforms: node.platforms.clone(),
                    node: Some(node.name.clone()),
                    append: i > 0,
                    buildkitd_config: self.buildkitd_config.clone(),
                    bootstrap: self.bootstrap && i == last,
                    use_it: self.use_it && i == last,
                    endpoint: node.endpoint.clone(),
                };
                match &node.tls {
                    Some(tls) => create.with_tls(tls),
                    None => create,
                }
            })
            .collect()
    }

    /// The command lines, in order.
    pub fn commands(&self) -> Vec<Cmd> {
        self.creates().iter().map(BuilderCreate::command).collect()
    }

    /// Checks every node, refuses a name that is taken, then creates the nodes in order.
    /// When one is refused, the builder is removed again and the error names the node.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<()> {
        anyhow::ensure!(!self.name.is_empty(), "a multi-node builder needs a name");
        anyhow::ensure!(
            !self.nodes.is_empty(),
            "builder {} has no nodes: add one NodeSpec per machine",
            self.name
        );
        if self.driver == Driver::Docker && self.nodes.len() > 1 {
            anyhow::bail!(
                "the docker driver cannot have several nodes; use docker-container, remote \
                 or kubernetes for builder {}",
                self.name
            );
        }
        let creates = self.creates();
        for (i, (node, create)) in self.nodes.iter().zip(&creates).enumerate() {
            anyhow::ensure!(
                !node.name.is_empty(),
                "node {} of builder {} has no name",
                i + 1,
                self.name
            );
            // buildx would silently replace the earlier node of the same name.
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                anyhow::bail!(
                    "builder {} names node {} twice; give each node its own name",
                    self.name,
                    node.name
                );
            }
            create
                .check()
                .with_context(|| format!("node {} of builder {}", node.name, self.name))?;
        }
        if !runner.is_dry_run() && inspect(runner, &self.name)?.is_some() {
            anyhow::bail!(
                "a builder named {} exists already; remove it (`docker buildx rm {}`) or \
                 choose another name",
                self.name,
                self.name
            );
        }
        for (node, create) in self.nodes.iter().zip(&creates) {
            if let Err(e) = runner.capture(&create.command()) {
                // The name was free before: whatever exists under it now is ours.
                let existed = matches!(inspect(runner, &self.name), Ok(Some(_)));
                if existed {
                    let _ = runner.capture(&rm_cmd(&self.name));
                }
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot add node {} to builder {}{}",
                    node.name,
                    self.name,
                    if existed {
                        "; the builder was removed again"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(())
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
