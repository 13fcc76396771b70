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
//!
//! Every node of one builder has the same driver (buildx refuses
//! `existing instance ... but has mismatched driver`); a BuildKit daemon running in a
//! container can still join a `remote` builder as `docker-container://CONTAINER`.
//!
//! [`MultiNode::create`] and [`BuilderCreate::create`] return a [`CreatedBuilder`]: the
//! builder this run made, removed when it is dropped and on Ctrl-C (once the program
//! installed [`crate::cmd::interrupt`]); a builder the user made is never removed.
//! Failures buildx reports in its own words (a TLS handshake refused, a builder image
//! that is neither local nor pullable, a name that is taken) are explained in ours
//! ([`explain`]).

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

    /// Checks what buildx would refuse later (and that a named builder does not exist
    /// yet, unless `append`), then creates the builder; returns its name.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<String> {
        self.check()?;
        if let (Some(name), false) = (&self.name, self.append) {
            refuse_taken(runner, name)?;
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
                    .filter(|_| self.driver == Driver::Remote),
                e,
                &what,
                self.endpoint.as_deref(),
                &self.driver_opts,
            )
        })?;
        Ok(out.stdout.trim().to_string())
    }

    /// Like [`BuilderCreate::run`] for a named, new builder, but the builder belongs to
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
        self.run_unchecked(runner)?;
        Ok(created)
    }

    fn run_unchecked(&self, runner: &Runner) -> anyhow::Result<()> {
        runner.capture(&self.command()).map_err(|e| {
            let name = self.name.as_deref().unwrap_or("(unnamed)");
            explained(
                runner,
                self.name
                    .as_deref()
                    .filter(|_| self.driver == Driver::Remote),
                e,
                &format!("cannot create the buildx builder {name}"),
                self.endpoint.as_deref(),
                &self.driver_opts,
            )
        })?;
        Ok(())
    }
}

/// Fails when a builder named `name` exists already (nothing to check in a dry run).
fn refuse_taken(runner: &Runner, name: &str) -> anyhow::Result<()> {
    if !runner.is_dry_run() && inspect(runner, name)?.is_some() {
        anyhow::bail!(
            "a builder named {name} exists already; remove it (`docker buildx rm {name}`) or \
            choose another name"
        );
    }
    Ok(())
}

/// A builder this run created. Dropping it removes the builder (`docker buildx rm`,
/// which also removes a `docker-container` node's container and its state volume); a
/// Ctrl-C does the same once the program installed [`crate::cmd::interrupt`]. Call
/// [`CreatedBuilder::keep`] to leave the builder in place.
#[derive(Debug)]
#[must_use = "the builder is removed when this is dropped"]
pub struct CreatedBuilder {
    name: String,
    runner: Runner,
    armed: bool,
    _interrupt: Option<crate::cmd::interrupt::Guard>,
}

impl CreatedBuilder {
    /// Registers the removal before anything is created, so a Ctrl-C during
    /// `buildx create --bootstrap` (which starts containers) removes what it made.
    fn arm(runner: &Runner, name: String) -> CreatedBuilder {
        let mut rm = rm_cmd(&name);
        for key in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
            "BUILDX_CONFIG",
        ] {
            if let Some(value) = runner.effective_env(&rm, key) {
                rm = rm.env(key, value);
            }
        }
        let guard = (!runner.is_dry_run()).then(|| crate::cmd::interrupt::on_interrupt(rm));
        CreatedBuilder {
            name,
            runner: runner.clone(),
            armed: !runner.is_dry_run(),
            _interrupt: guard,
        }
    }

    /// The builder's name (for [`Build::builder`](super::build::Build) or `builder:NAME`).
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

/// The error a client of builder `name` gets when it connects (`docker buildx du`, read
/// only, 30 s at most, asked up to four times until the words name a known cause);
/// `None` when it connects.
pub fn connection_error(runner: &Runner, name: &str) -> Option<String> {
    let du = Cmd::new("docker")
        .args(["buildx", "du", "--builder", name])
        .read_only()
        .timeout(std::time::Duration::from_secs(30));
    // With TLS 1.3 the daemon's refusal of a client certificate arrives after the client
    // sent its first request, which then sometimes fails only with `write: broken pipe`:
    // ask again (a tenth of a second each) until the words say why.
    let mut last = None;
    for _ in 0..4 {
        let words = match runner.capture(&du) {
            Ok(_) => return None,
            Err(e) => e
                .tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| connection_words(l.trim())),
        };
        let known = words
            .as_deref()
            .is_some_and(|w| explain(w, None, &BTreeMap::new()).is_some());
        last = words;
        if known {
            break;
        }
    }
    last
}

/// The client's words from a gRPC connection error: `failed to call diskusage:
/// Unavailable: connection error: desc = "transport: Error while dialing: dial tcp ...:
/// connect: connection refused"` reads `dial tcp ...: connect: connection refused`.
fn connection_words(line: &str) -> String {
    let line = line.trim_start_matches("ERROR: ");
    let inner = line
        .split_once("desc = \"")
        .map(|(_, rest)| rest.trim_end_matches('"'))
        .unwrap_or(line);
    inner
        .trim_start_matches("transport: ")
        .trim_start_matches("Error while dialing: ")
        .to_string()
}

/// What buildx's own words about a builder that cannot start mean, and what to do; `None`
/// when the text is not one of the failures recognised here. `endpoint` and `opts` are
/// the builder's (for the file names in the advice).
pub fn explain(
    text: &str,
    endpoint: Option<&str>,
    opts: &BTreeMap<String, String>,
) -> Option<String> {
    let at = endpoint.map(|e| format!(" at {e}")).unwrap_or_default();
    let dialled = endpoint.unwrap_or("its address");
    let named = |k: &str| {
        opts.get(k)
            .map(|v| format!(" ({k}={v})"))
            .unwrap_or_default()
    };
    if text.contains("certificate signed by unknown authority")
        || text.contains("certificate is not trusted")
    {
        return Some(format!(
            "the BuildKit daemon{at} presented a certificate that the client's CA{} did \
            not sign; point `cacert` at the CA that issued the daemon's certificate",
            named("cacert")
        ));
    }
    if text.contains("certificate has expired") || text.contains("certificate is not yet valid") {
        return Some(format!(
            "the BuildKit daemon{at} presented a certificate outside its validity period; \
            renew the daemon's certificate"
        ));
    }
    if text.contains("certificate is valid for") || text.contains("doesn't contain any IP SANs") {
        return Some(format!(
            "the BuildKit daemon's certificate does not name the host buildx dialled \
             ({dialled}); set `servername` to a name in the certificate or reissue it with \
             that host"
        ));
    }
    // Under TLS 1.3 the daemon checks the client's certificate after the handshake, and a
    // client that already wrote its first request often sees only the closed connection.
    let closed_after_tls = opts.contains_key("cert")
        && (text.contains("write: broken pipe") || text.contains("connection reset by peer"));
    if closed_after_tls
        || text.contains("tls: bad certificate")
        || text.contains("tls: unknown certificate authority")
        || text.contains("tls: certificate required")
        || text.contains("tls: unknown certificate")
    {
        return Some(format!(
            "the BuildKit daemon{at} refused this client's certificate{}: it was not \
            issued by the CA the daemon trusts; use a client certificate from that CA",
            named("cert")
        ));
    }
    if let Some(image) = opts.get("image") {
        if text.contains("pull access denied")
            || text.contains("manifest unknown")
            || text.contains("repository does not exist")
            || (text.contains("pulling failed") && text.contains("No such image"))
            || text.contains("failed to resolve reference")
        {
            return Some(format!(
                "the docker-container builder's image {image} is not in the engine and cannot \
                be pulled; build or load it into the engine first (docker image ls {image})"
            ));
        }
    }
    if text.contains("connection refused") || text.contains("no such host") {
        return Some(format!(
            "nothing answers at {dialled}; start the BuildKit daemon there or point the \
             builder at one that runs"
        ));
    }
    None
}

/// A [`CommandError`](crate::cmd::CommandError) from creating or starting a builder, with
/// [`explain`]'s reading first when buildx's words are recognised.
/// buildx's remote driver hides why it cannot connect (it waits, then says `context
/// deadline exceeded`): for a builder `name` that exists, ask the daemon once more through
/// `docker buildx du`, which reports the connection error itself, and add its words.
fn explained(
    runner: &Runner,
    name: Option<&str>,
    e: crate::cmd::CommandError,
    what: &str,
    endpoint: Option<&str>,
    opts: &BTreeMap<String, String>,
) -> anyhow::Error {
    let mut text = e.tail.join("\n");
    if let Some(name) = name {
        if explain(&text, endpoint, opts).is_none() && text.contains("context deadline exceeded") {
            if let Some(why) = connection_error(runner, name) {
                text = format!("{text}\n{why}");
            }
        }
    }
    match explain(&text, endpoint, opts) {
        Some(why) => anyhow::Error::new(e).context(format!("{what}: {why}")),
        None => anyhow::Error::new(e).context(what.to_string()),
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

    /// Like [`MultiNode::run`], but the builder belongs to this run: it is removed when
    /// the returned [`CreatedBuilder`] is dropped, and on Ctrl-C (registered before the
    /// first node is created).
    pub fn create(&self, runner: &Runner) -> anyhow::Result<CreatedBuilder> {
        self.check_nodes()?;
        refuse_taken(runner, &self.name)?;
        let created = CreatedBuilder::arm(runner, self.name.clone());
        self.create_nodes(runner)?;
        Ok(created)
    }

    /// Checks every node, refuses a name that is taken, then creates the nodes in order.
    /// When one is refused, the builder is removed again and the error names the node.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<()> {
        self.check_nodes()?;
        refuse_taken(runner, &self.name)?;
        self.create_nodes(runner)
    }

    fn check_nodes(&self) -> anyhow::Result<()> {
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
        Ok(())
    }

    fn create_nodes(&self, runner: &Runner) -> anyhow::Result<()> {
        let creates = self.creates();
        for (node, create) in self.nodes.iter().zip(&creates) {
            if let Err(e) = runner.capture(&create.command()) {
                // The name was free before: whatever exists under it now is ours. Read why
                // a remote node cannot connect before removing it.
                let existed = matches!(inspect(runner, &self.name), Ok(Some(_)));
                let timed_out = e
                    .tail
                    .iter()
                    .any(|l| l.contains("context deadline exceeded"));
                let diagnosed = (existed && timed_out && self.driver == Driver::Remote)
                    .then(|| connection_error(runner, &self.name))
                    .flatten();
                if existed {
                    let _ = runner.capture(&rm_cmd(&self.name));
                }
                let what = format!(
                    "cannot add node {} to builder {}{}",
                    node.name,
                    self.name,
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

/// `docker buildx prune --builder NAME --all --force`: empties that builder's cache.
pub fn prune_cmd(name: &str) -> Cmd {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn explain_reads_tls_pull_and_connection_failures() {
        let tls = opts(&[("cacert", "/c/ca.pem"), ("cert", "/c/cert.pem")]);
        let at = Some("tcp://127.0.0.1:1234");
        let expired = "ERROR: failed to call info: x509: certificate has expired or is not \
                       yet valid: current time 2026-11-30T22:00:00Z is after 2020-01-02";
        assert_eq!(
            explain(expired, at, &tls).unwrap(),
            "the BuildKit daemon at tcp://127.0.0.1:1234 presented a certificate outside its \
             validity period; renew the daemon's certificate"
        );
        let unknown = "transport: authentication handshake failed: tls: failed to verify \
                       certificate: x509: certificate signed by unknown authority";
        assert!(explain(unknown, at, &tls)
            .unwrap()
            .contains("the client's CA (cacert=/c/ca.pem) did not sign"));
        let refused = "remote error: tls: unknown certificate authority";
        assert!(explain(refused, at, &tls)
            .unwrap()
            .contains("refused this client's certificate (cert=/c/cert.pem)"));
        let pull = "ERROR: Error response from daemon: pull access denied for x, repository \
                    does not exist";
        let image = opts(&[("image", "x:1")]);
        assert!(explain(pull, None, &image)
            .unwrap()
            .starts_with("the docker-container builder's image x:1 is not in the engine"));
        // Without an image option the same words are not about the builder's image.
        assert_eq!(explain(pull, None, &tls), None);
        let down = "dial tcp 127.0.0.1:9: connect: connection refused";
        assert!(explain(down, at, &tls)
            .unwrap()
            .starts_with("nothing answers at tcp://127.0.0.1:1234"));
        // The daemon closed the connection once TLS was set up: how a refused client
        // certificate often shows under TLS 1.3. Without a client certificate it is not that.
        let closed = "Unavailable: write tcp 127.0.0.1:5->127.0.0.1:1234: write: broken pipe";
        assert!(explain(closed, at, &tls)
            .unwrap()
            .contains("refused this client's certificate (cert=/c/cert.pem)"));
        assert_eq!(explain(closed, at, &image), None);
        assert_eq!(explain("something else entirely", at, &tls), None);
        assert_eq!(
            connection_words(
                "ERROR: failed to call diskusage: Unavailable: connection error: desc = \
                 \"transport: Error while dialing: dial tcp 127.0.0.1:9: connect: connection \
                 refused\""
            ),
            "dial tcp 127.0.0.1:9: connect: connection refused"
        );
    }

    #[test]
    fn a_created_builder_in_a_dry_run_removes_nothing() {
        let runner = Runner::new().dry_run(true).echo(crate::cmd::Echo::Silent);
        let create = BuilderCreate {
            name: Some("farm".into()),
            driver: Driver::DockerContainer,
            ..BuilderCreate::default()
        };
        let created = create.create(&runner).unwrap();
        assert_eq!(created.name(), "farm");
        drop(created);
        let cmds = runner.commands();
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        assert_eq!(cmds[0][..3], ["docker", "buildx", "create"]);
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
