//! Creating builders: [`BuilderCreate`] (one `docker buildx create`, or one per
//! [`NodeSpec`], `--append`ed in order) and [`CreatedBuilder`], the builder a run made and
//! removes again (on drop and on Ctrl-C).
//!
//! Here because creating is the one job that checks, creates and cleans up after itself;
//! the failures it meets are read by [`diagnose`](super::diagnose), and the removal and
//! lookups it needs are the plain commands of [`manage`](super::manage).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use super::diagnose::{connection_error, explained};
use super::driver::{Driver, RemoteTls};
use super::manage::{inspect, remove, rm_cmd};
use crate::cmd::{Cmd, Runner};
use crate::plan::Step;

/// `docker buildx create`: a builder with one node, or with one node per machine (or
/// cluster) given with [`BuilderCreate::node`], each building its own platforms. Creating
/// a builder fails, and leaves nothing behind, when a builder of that name exists already
/// (unless [`append`](BuilderCreate::append)) or any node is refused.
///
/// # Builders and nodes
///
/// Each builder command (`create`, `use`, `inspect`, `rm`, `ls`) is a command line as
/// data plus a function that runs it, so a CI setup can be printed and golden-tested
/// before anything runs. A builder with nodes for several platforms is BuildKit's own way
/// of spreading a build over machines: a `docker buildx build --builder NAME --platform
/// linux/amd64,linux/arm64` sends each platform to the node that declares it, and buildx
/// merges the result.
///
/// Every node of one builder has the same driver (buildx refuses
/// `existing instance ... but has mismatched driver`); a BuildKit daemon running in a
/// container can still join a `remote` builder as `docker-container://CONTAINER`.
///
/// # Cleanup and errors
///
/// [`BuilderCreate::create`] returns a [`CreatedBuilder`]: the builder this run made,
/// removed when it is dropped and when the run is cancelled (a Ctrl-C too, once the
/// program's `main` cancels its run on signals with [`crate::cmd::Cancel::on_signals`]); a
/// builder the user made is never removed.
/// Failures buildx reports in its own words (a TLS handshake refused, a builder image
/// that is neither local nor pullable, a name that is taken) are explained in ours.
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::BuilderCreate;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let create = BuilderCreate::new().name("ci").driver("docker-container").bootstrap(true);
/// let plan = create.plan(&Runner::new())?.to_string();
/// assert!(plan.starts_with("? docker buildx ls"), "{plan}");
/// assert!(plan.contains("$ docker buildx create --name ci --driver docker-container"), "{plan}");
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct BuilderCreate {
    /// Builder name (`--name`).
    pub(crate) name: Option<String>,
    /// Driver (`--driver`), as buildx names it; `None`: `docker-container`.
    pub(crate) driver: Option<String>,
    /// Driver options (`--driver-opt k=v`), e.g. `image=`, `network=host`, `namespace=`.
    pub(crate) driver_opts: BTreeMap<String, String>,
    /// Platforms this node builds natively (`--platform`).
    pub(crate) platforms: Vec<String>,
    /// Node name (`--node`), in the one `docker buildx create` of each node.
    pub(crate) node: Option<String>,
    /// The nodes, in order (none: one node, described by the builder's own platforms,
    /// endpoint and TLS files).
    pub(crate) nodes: Vec<NodeSpec>,
    /// Add a node to the existing builder `name` (`--append`).
    pub(crate) append: bool,
    /// BuildKit daemon configuration file (`--buildkitd-config`).
    pub(crate) buildkitd_config: Option<String>,
    /// Start the builder now (`--bootstrap`).
    pub(crate) bootstrap: bool,
    /// Make it the current builder (`--use`).
    pub(crate) use_it: bool,
    /// Context or endpoint (positional): a docker context name, or `tcp://host:1234`.
    pub(crate) endpoint: Option<String>,
}

impl BuilderCreate {
    /// A `docker buildx create` with buildx's defaults (a generated name, the
    /// `docker-container` driver, the current docker context); the setters set the rest.
    pub fn new() -> BuilderCreate {
        BuilderCreate::default()
    }

    /// Builder name (`--name`).
    pub fn name(mut self, name: impl Into<String>) -> BuilderCreate {
        self.name = Some(name.into());
        self
    }

    /// The driver (`--driver`), as buildx names it: `docker-container` (the default:
    /// BuildKit in a container of the `moby/buildkit` image), `docker` (the engine's
    /// built-in BuildKit: no extra container, the only one usable offline), `remote` (a
    /// BuildKit daemon already running elsewhere, at the [`endpoint`](BuilderCreate::endpoint)
    /// `tcp://...` or `unix://...`) or `kubernetes` (BuildKit pods in a cluster). Another
    /// name is refused before anything runs.
    pub fn driver(mut self, driver: impl Into<String>) -> BuilderCreate {
        self.driver = Some(driver.into());
        self
    }

    /// The driver's name, as buildx takes it.
    pub(crate) fn driver_name(&self) -> &str {
        self.driver
            .as_deref()
            .unwrap_or(Driver::DockerContainer.as_str())
    }

    /// Whether the driver is `driver`.
    pub(crate) fn driver_is(&self, driver: Driver) -> bool {
        Driver::parse(self.driver_name()) == Some(driver)
    }

    /// Driver options (`--driver-opt k=v`), e.g. `image=`, `network=host`, `namespace=`.
    ///
    /// Adds one entry, replacing an earlier one of the same key.
    pub fn driver_opt(mut self, key: impl Into<String>, value: impl Into<String>) -> BuilderCreate {
        self.driver_opts.insert(key.into(), value.into());
        self
    }

    /// Platforms this node builds natively (`--platform`).
    ///
    /// Adds one; call again for more.
    pub fn platform(mut self, platform: impl Into<String>) -> BuilderCreate {
        self.platforms.push(platform.into());
        self
    }

    /// Adds a node: a builder with several nodes (one per machine or cluster, each with
    /// its platforms) is created with one `docker buildx create` per node, `--append`
    /// after the first and `--bootstrap` / `--use` on the last. The builder's
    /// [`driver`](BuilderCreate::driver), driver options and daemon configuration apply to
    /// every node; the platforms, endpoint and TLS files are each node's own. Without a
    /// node the builder's own [`platform`](BuilderCreate::platform),
    /// [`endpoint`](BuilderCreate::endpoint) and [`tls`](BuilderCreate::tls)
    /// describe its one node.
    ///
    /// Adds one; call again for more.
    pub fn node(mut self, node: NodeSpec) -> BuilderCreate {
        self.nodes.push(node);
        self
    }

    /// Add a node to the existing builder `name` (`--append`).
    pub fn append(mut self, on: bool) -> BuilderCreate {
        self.append = on;
        self
    }

    /// BuildKit daemon configuration file (`--buildkitd-config`).
    pub fn buildkitd_config(mut self, buildkitd_config: impl Into<String>) -> BuilderCreate {
        self.buildkitd_config = Some(buildkitd_config.into());
        self
    }

    /// Start the builder now (`--bootstrap`).
    pub fn bootstrap(mut self, on: bool) -> BuilderCreate {
        self.bootstrap = on;
        self
    }

    /// Make it the current builder (`--use`).
    pub fn use_it(mut self, on: bool) -> BuilderCreate {
        self.use_it = on;
        self
    }

    /// Context or endpoint (positional): a docker context name, or `tcp://host:1234`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> BuilderCreate {
        self.endpoint = Some(endpoint.into());
        self
    }
}
impl BuilderCreate {
    /// The TLS files a `remote` builder uses to reach a BuildKit daemon on `tcp://`,
    /// added as driver options (`--driver-opt cacert=...,cert=...,key=...`): the CA
    /// certificate `cacert` that signed the daemon's certificate, and the client
    /// certificate `cert` with its key `key`. When the name in the daemon's certificate
    /// differs from the endpoint's host, add `.driver_opt("servername", NAME)`. buildx
    /// does not check that the files exist when the builder is created; the builder
    /// step's checks (run first by its [`Step::run`](crate::plan::Step::run), and by its
    /// plan) do.
    pub fn tls(
        self,
        cacert: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> BuilderCreate {
        self.with_tls(&RemoteTls::new(cacert, cert, key))
    }

    /// Adds the TLS files of a `remote` builder as driver options.
    pub(crate) fn with_tls(mut self, tls: &RemoteTls) -> BuilderCreate {
        for (key, value) in tls.driver_opts() {
            if let Some(value) = value {
                self.driver_opts.insert(key, value);
            }
        }
        self
    }

    /// The checks buildx does not make, or makes only once a build starts, of every node:
    /// `append` has a name, a remote node has an endpoint buildx understands, and its TLS
    /// files exist; the nodes have names, each its own.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if Driver::parse(self.driver_name()).is_none() {
            anyhow::bail!(
                "`{}` is not a buildx driver: use {}",
                self.driver_name(),
                Driver::ALL.map(Driver::as_str).join(", ")
            );
        }
        if self.nodes.is_empty() || self.name.is_none() && self.append {
            return self.check_one();
        }
        let Some(name) = &self.name else {
            anyhow::bail!("a builder with nodes needs a name: set `name`");
        };
        if !self.platforms.is_empty() || self.endpoint.is_some() {
            anyhow::bail!(
                "builder {name} has nodes: set the platforms and the endpoint on each NodeSpec"
            );
        }
        if self.driver_is(Driver::Docker) && self.nodes.len() > 1 {
            anyhow::bail!(
                "the docker driver cannot have several nodes; use docker-container, remote \
                 or kubernetes for builder {name}"
            );
        }
        for (i, (node, create)) in self.nodes.iter().zip(self.creates()).enumerate() {
            anyhow::ensure!(
                !node.name.is_empty(),
                "node {} of builder {name} has no name",
                i + 1,
            );
            // buildx would silently replace the earlier node of the same name.
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                anyhow::bail!(
                    "builder {name} names node {} twice; give each node its own name",
                    node.name
                );
            }
            create
                .check_one()
                .with_context(|| format!("node {} of builder {name}", node.name))?;
        }
        Ok(())
    }

    /// One `docker buildx create` per node (the builder itself when it has no nodes).
    fn creates(&self) -> Vec<BuilderCreate> {
        if self.nodes.is_empty() {
            return vec![self.clone()];
        }
        let last = self.nodes.len() - 1;
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let mut driver_opts = self.driver_opts.clone();
                driver_opts.extend(node.driver_opts.clone());
                let create = BuilderCreate {
                    name: self.name.clone(),
                    driver: self.driver.clone(),
                    driver_opts,
                    platforms: node.platforms.clone(),
                    node: Some(node.name.clone()),
                    nodes: Vec::new(),
                    append: self.append || i > 0,
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

    /// [`BuilderCreate::check`] of one `docker buildx create`.
    fn check_one(&self) -> anyhow::Result<()> {
        if self.append && self.name.is_none() {
            anyhow::bail!(
                "`append` adds a node to an existing builder: set `name` to that builder"
            );
        }
        if self.driver_is(Driver::Remote) {
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
    pub(crate) fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "create"]);
        if let Some(name) = &self.name {
            cmd = cmd.args(["--name", name]);
        }
        cmd = cmd.args(["--driver", self.driver_name()]);
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

    /// Like [`Step::run`] of a [`BuilderCreate`] for a named, new builder, but the builder belongs to
    /// this run: it is removed when the returned [`CreatedBuilder`] is dropped, and on
    /// Ctrl-C (registered before anything is created). Refuses `append` (the builder
    /// being added to is not this run's).
    pub fn create(&self, runner: &Runner) -> anyhow::Result<CreatedBuilder> {
        let Some(name) = self.name.clone() else {
            anyhow::bail!("a builder this run creates and removes needs a name: set `name`");
        };
        anyhow::ensure!(
            !self.append,
            "`append` adds a node to builder {name}, which this run did not create; use \
            `run` for that"
        );
        self.check()?;
        refuse_taken(runner, &name)?;
        let created = CreatedBuilder::arm(runner, name);
        if self.nodes.is_empty() {
            self.run_unchecked(runner)?;
        } else {
            self.create_nodes(runner)?;
        }
        Ok(created)
    }

    /// Creates the nodes in order; when one is refused, removes the builder again (unless
    /// the nodes were appended to a builder that is not this run's) and names the node.
    fn create_nodes(&self, runner: &Runner) -> anyhow::Result<()> {
        let name = self.name.as_deref().unwrap_or_default();
        for (node, create) in self.nodes.iter().zip(self.creates()) {
            if let Err(e) = runner.capture(&create.command()) {
                // The name was free before: whatever exists under it now is ours. Read why
                // a remote node cannot connect before removing it.
                let existed = !self.append && matches!(inspect(runner, name), Ok(Some(_)));
                let timed_out = e
                    .tail
                    .iter()
                    .any(|l| l.contains("context deadline exceeded"));
                let diagnosed = (existed && timed_out && self.driver_is(Driver::Remote))
                    .then(|| connection_error(runner, name))
                    .flatten();
                if existed {
                    let _ = runner.capture(&rm_cmd(name));
                }
                let what = format!(
                    "cannot add node {} to builder {name}{}",
                    node.name,
                    if existed {
                        "; the builder was removed again"
                    } else {
                        ""
                    }
                );
                let mut e = e;
                e.tail.extend(diagnosed);
                return Err(explained(
                    runner,
                    None,
                    e,
                    &what,
                    create.endpoint.as_deref(),
                    &create.driver_opts,
                ));
            }
        }
        Ok(())
    }

    fn run_unchecked(&self, runner: &Runner) -> anyhow::Result<()> {
        runner.capture(&self.command()).map_err(|e| {
            let name = self.name.as_deref().unwrap_or("(unnamed)");
            explained(
                runner,
                self.name
                    .as_deref()
                    .filter(|_| self.driver_is(Driver::Remote)),
                e,
                &format!("cannot create the buildx builder {name}"),
                self.endpoint.as_deref(),
                &self.driver_opts,
            )
        })?;
        Ok(())
    }
}

impl Step for BuilderCreate {
    /// What buildx printed: the builder's name.
    type Output = String;

    /// Checks what buildx would refuse later (and that a named builder does not exist
    /// yet, unless `append`: one `docker buildx ls`), then creates the builder (its nodes
    /// in order; when one is refused, the builder is removed again and the error names the
    /// node); returns its name.
    fn run(&self, runner: &Runner) -> anyhow::Result<String> {
        self.check()?;
        if let (Some(name), false) = (&self.name, self.append) {
            refuse_taken(runner, name)?;
        }
        if !self.nodes.is_empty() {
            self.create_nodes(runner)?;
            return Ok(self.name.clone().unwrap_or_default());
        }
        let out = runner.capture(&self.command()).map_err(|e| {
            let what = match &self.name {
                Some(name) => format!("cannot create the buildx builder {name}"),
                None => "cannot create the buildx builder".to_string(),
            };
            explained(
                runner,
                self.name
                    .as_deref()
                    .filter(|_| self.driver_is(Driver::Remote)),
                e,
                &what,
                self.endpoint.as_deref(),
                &self.driver_opts,
            )
        })?;
        Ok(out.stdout.trim().to_string())
    }
}

/// Fails when a builder named `name` exists already (a plan's listing answers none).
fn refuse_taken(runner: &Runner, name: &str) -> anyhow::Result<()> {
    if inspect(runner, name)?.is_some() {
        anyhow::bail!(
            "a builder named {name} exists already; remove it (`docker buildx rm {name}`) or \
            choose another name"
        );
    }
    Ok(())
}

/// A builder this run created. Dropping it removes the builder (`docker buildx rm`,
/// which also removes a `docker-container` node's container and its state volume); a
/// cancelled run does the same ([`Runner::on_cancel`], so a Ctrl-C too once the program
/// cancels its run on signals with [`crate::cmd::Cancel::on_signals`]). Call
/// [`CreatedBuilder::keep`] to leave the builder in place.
#[derive(Debug)]
#[must_use = "the builder is removed when this is dropped"]
pub struct CreatedBuilder {
    name: String,
    runner: Runner,
    armed: bool,
    _on_cancel: Option<crate::cmd::CleanupGuard>,
}

impl CreatedBuilder {
    /// Registers the removal before anything is created, so a cancel (a Ctrl-C) during
    /// `buildx create --bootstrap` (which starts containers) removes what it made.
    fn arm(runner: &Runner, name: String) -> CreatedBuilder {
        let guard = Some(runner.on_cancel(rm_cmd(&name)));
        CreatedBuilder {
            name,
            runner: runner.clone(),
            armed: true,
            _on_cancel: guard,
        }
    }

    /// The builder's name (for [`Build::builder`](crate::docker::Build) or `builder:NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leaves the builder in place (it is no longer this run's to remove); returns its name.
    pub fn keep(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.name)
    }

    /// Removes the builder now, reporting a failure (dropping it ignores failures).
    pub fn remove(mut self) -> anyhow::Result<()> {
        self.armed = false;
        remove(&self.runner, &self.name)
    }
}

impl Drop for CreatedBuilder {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.runner.capture(&rm_cmd(&self.name));
        }
    }
}
/// One node of a builder ([`BuilderCreate::node`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct NodeSpec {
    /// The node's name (`--node`), unique within the builder.
    pub(crate) name: String,
    /// Where it runs: a docker context, `tcp://host:1234` (remote), or nothing for the
    /// kubernetes driver (it uses the current kubeconfig).
    pub(crate) endpoint: Option<String>,
    /// The platforms it builds natively (`--platform`).
    pub(crate) platforms: Vec<String>,
    /// Driver options of this node only, on top of the builder's (`--driver-opt`).
    pub(crate) driver_opts: BTreeMap<String, String>,
    /// TLS files, for a remote node on `tcp://`.
    pub(crate) tls: Option<RemoteTls>,
}

impl NodeSpec {
    /// A node named `name` (unique within the builder), with no endpoint, platforms, driver
    /// options or TLS files until set.
    pub fn new(name: impl Into<String>) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            ..NodeSpec::default()
        }
    }

    /// Where it runs: a docker context, `tcp://host:1234` (remote), or nothing for the
    /// kubernetes driver (it uses the current kubeconfig).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> NodeSpec {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The platforms it builds natively (`--platform`).
    ///
    /// Adds one; call again for more.
    pub fn platform(mut self, platform: impl Into<String>) -> NodeSpec {
        self.platforms.push(platform.into());
        self
    }

    /// Driver options of this node only, on top of the builder's (`--driver-opt`).
    ///
    /// Adds one entry, replacing an earlier one of the same key.
    pub fn driver_opt(mut self, key: impl Into<String>, value: impl Into<String>) -> NodeSpec {
        self.driver_opts.insert(key.into(), value.into());
        self
    }

    /// TLS files, for a remote node on `tcp://` (as [`BuilderCreate::tls`] takes them; a
    /// `servername` is a node [`driver_opt`](NodeSpec::driver_opt)).
    pub fn tls(
        mut self,
        cacert: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NodeSpec {
        self.tls = Some(RemoteTls::new(cacert, cert, key));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_with_nodes_takes_platforms_and_endpoints_from_each_node() {
        let runner = Runner::new().recording();
        let shared = BuilderCreate::new()
            .name("farm")
            .platform("linux/amd64")
            .node(NodeSpec::new("amd"));
        assert_eq!(
            shared.run(&runner).unwrap_err().to_string(),
            "builder farm has nodes: set the platforms and the endpoint on each NodeSpec"
        );
        let unnamed = BuilderCreate::new().node(NodeSpec::new("amd"));
        assert!(unnamed.run(&runner).is_err());
        let farm = BuilderCreate::new()
            .name("farm")
            .driver("remote")
            .node(
                NodeSpec::new("amd")
                    .endpoint("tcp://a:1234")
                    .platform("linux/amd64"),
            )
            .node(
                NodeSpec::new("arm")
                    .endpoint("tcp://b:1234")
                    .platform("linux/arm64"),
            )
            .bootstrap(true);
        let lines: Vec<String> = farm
            .creates()
            .iter()
            .map(|c| c.command().to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "docker buildx create --name farm --driver remote --platform linux/amd64 \
                 --node amd tcp://a:1234",
                "docker buildx create --name farm --driver remote --platform linux/arm64 \
                 --node arm --append --bootstrap tcp://b:1234",
            ]
        );
        assert_eq!(farm.run(&runner).unwrap(), "farm");
    }

    #[test]
    fn the_driver_is_named_as_buildx_names_it_and_another_name_is_refused() {
        let runner = Runner::new().recording();
        let default = BuilderCreate::new().name("ci");
        assert_eq!(
            default.command().to_string(),
            "docker buildx create --name ci --driver docker-container"
        );
        for driver in Driver::ALL {
            let create = BuilderCreate::new().name("ci").driver(driver.as_str());
            let line = create.command().to_string();
            assert!(
                line.ends_with(&format!("--driver {}", driver.as_str())),
                "{line}"
            );
        }
        let err = BuilderCreate::new()
            .name("ci")
            .driver("docker_container")
            .run(&runner)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "`docker_container` is not a buildx driver: use docker, docker-container, remote, \
             kubernetes"
        );
        assert!(runner.commands().is_empty(), "refused before anything runs");
    }

    #[test]
    fn a_created_builder_plans_its_removal_on_drop() {
        let runner = Runner::new().recording();
        let create = BuilderCreate {
            name: Some("farm".into()),
            driver: Some("docker-container".into()),
            ..BuilderCreate::default()
        };
        let created = create.create(&runner).unwrap();
        assert_eq!(created.name(), "farm");
        drop(created);
        let cmds = runner.commands();
        assert_eq!(cmds.len(), 3, "{cmds:?}");
        assert_eq!(cmds[0][..3], ["docker", "buildx", "ls"]);
        assert_eq!(cmds[1][..3], ["docker", "buildx", "create"]);
        assert_eq!(cmds[2], ["docker", "buildx", "rm", "farm"]);
        let append = BuilderCreate {
            append: true,
            ..create
        };
        assert!(append
            .create(&runner)
            .unwrap_err()
            .to_string()
            .contains("which this run did not create"));
    }
}
