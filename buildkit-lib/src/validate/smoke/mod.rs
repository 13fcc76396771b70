//! Smoke test: run the built image and wait until it is ready, with a timeout.
//!
//! What a smoke test starts, waits for and cleans up, and why a pass cannot come from the
//! wrong server, is documented for users on [`Smoke`].

mod container;
mod probe;
mod service;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd::{Cmd, ContainerReady, Probe, Runner, Secret, WaitFailed};
use crate::plan::Step;
use crate::session::Session;

use container::{image_config, inspect_state, last_logs, RunningContainer};
use probe::{listener_of, same_pid_namespace, Listener};
use service::{Service, ServiceReport};

/// How the smoke test decides that the container is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ready {
    /// The image's `HEALTHCHECK` when it has one, else a TCP connect to the port (the one
    /// given with [`Smoke::port`], else the first `EXPOSE`d TCP port).
    Auto,
    /// The container's health status must become `healthy` (needs a `HEALTHCHECK`).
    Health,
    /// A TCP connection to `127.0.0.1:<port>` must succeed.
    Tcp(u16),
    /// `GET http://127.0.0.1:<port><path>` must answer 2xx, and its body must contain
    /// `expect_body` when given.
    Http {
        /// Port on the host's loopback.
        port: u16,
        /// Request path, such as `/api/health`.
        path: String,
        /// Text the response body must contain.
        expect_body: Option<String>,
    },
    /// A line of the container's output contains this text (such as `ready for
    /// connections`): for a companion [`Smoke::service`] mostly.
    LogLine(String),
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ready::Auto => write!(f, "auto"),
            Ready::Health => write!(f, "container health status"),
            Ready::Tcp(port) => write!(f, "TCP connect to 127.0.0.1:{port}"),
            Ready::Http {
                port,
                path,
                expect_body,
            } => {
                write!(f, "HTTP GET http://127.0.0.1:{port}{path} answering 2xx")?;
                if let Some(body) = expect_body {
                    write!(f, " with a body containing {body:?}")?;
                }
                Ok(())
            }
            Ready::LogLine(text) => write!(f, "a log line containing {text:?}"),
        }
    }
}

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Network {
    /// `--network host`: a server in the container listens on the host's loopback.
    Host,
    /// `--publish 127.0.0.1:<host>:<container>` on the engine's default network.
    Publish {
        /// Port on the host's loopback (the one probed).
        host: u16,
        /// Port inside the container.
        container: u16,
    },
}

/// An environment value for a container: plain (`--env K=V`) or secret (`--env K`, the
/// value only in the docker client's environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvValue {
    Plain(String),
    Secret(Secret),
}

/// Adds `--env` arguments for `env` to `cmd`: secrets by name only, their values in the
/// child's environment, so no command line, echo, log or plan shows them.
fn with_env(mut cmd: Cmd, env: &BTreeMap<String, EnvValue>) -> Cmd {
    for (key, value) in env {
        cmd = match value {
            EnvValue::Plain(v) => cmd.arg("--env").arg(format!("{key}={v}")),
            EnvValue::Secret(s) => cmd.arg("--env").arg(key).secret_env(key, s.clone()),
        };
    }
    cmd
}

/// A smoke test of one image: what to run, what it needs, and how to tell it is ready.
///
/// [`Smoke`] starts the image detached (unique name, the session's labels, `--init`),
/// after the companion services it needs ([`Smoke::service`], a database, say), then waits until it is
/// ready: its `HEALTHCHECK` status, a TCP port, or an HTTP `GET` on loopback that must
/// answer 2xx. Each wait is one [`Action::Wait`](crate::plan::Action::Wait) on a
/// container [`Probe`]: the probe counts only while the container runs, and a container
/// that stops ends the wait at once. [`Smoke`] is a [`Step`]: its plan is its one body,
/// recorded. Every container it started is removed in every case (success, failure,
/// panic, Ctrl-C); a failure reports its state, exit code and last log lines.
///
/// # A pass is earned
///
/// A pass cannot come from the wrong server: a probe port already taken before the test
/// is refused, a probe counts only while the container still runs, and on the host
/// network the listening process must be inside the container.
///
/// # Example
///
/// ```
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::{Ready, Smoke};
/// use buildkit_lib::{Runner, Session};
///
/// let smoke = Smoke::new("myapp:dev").ready(Ready::Http {
///     port: 8000,
///     path: "/health".into(),
///     expect_body: None,
/// });
/// let plan = smoke.plan(&Runner::new().session(Session::new("myapp"))).unwrap().to_string();
/// assert!(plan.starts_with("probe loopback port 8000 free\n$ docker run --detach --init"), "{plan}");
/// assert!(plan.contains("wait until myapp:dev is ready (container myapp_smoke_"), "{plan}");
/// assert!(plan.contains("$ docker rm --force --volumes myapp_smoke_"), "{plan}");
/// // With an engine: `let report = smoke.run(&buildkit_lib::Runner::new())?;`
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Smoke {
    image: String,
    name: String,
    labels: Vec<String>,
    network: Network,
    env: BTreeMap<String, EnvValue>,
    args: Vec<String>,
    ready: Ready,
    port: Option<u16>,
    timeout: Duration,
    services: Vec<Service>,
}

/// What a successful smoke test measured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmokeReport {
    /// The image tested.
    pub(crate) image: String,
    /// The container name (removed by now).
    pub(crate) container: String,
    /// The check that decided readiness (never [`Ready::Auto`]).
    pub(crate) check: Ready,
    /// From `docker run` to the first successful check.
    pub time_to_ready: Duration,
    /// How many checks ran.
    pub(crate) attempts: u32,
    /// What the last check saw, such as `HTTP 200, 27 bytes`.
    pub(crate) detail: String,
    /// Who answered the probe, when it could be told (`python3 (pid 4242), inside the
    /// container`).
    pub(crate) answered_by: Option<String>,
    /// The container's last log lines, read just before it was removed.
    pub logs: Vec<String>,
    /// The companion services started first, in order.
    pub(crate) services: Vec<ServiceReport>,
}

impl fmt::Display for SmokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "smoke test of {} passed: ready after {:.1}s ({}; {} checks): {}",
            self.image,
            self.time_to_ready.as_secs_f64(),
            self.check,
            self.attempts,
            self.detail
        )?;
        if let Some(who) = &self.answered_by {
            write!(f, ", answered by {who}")?;
        }
        for service in &self.services {
            write!(
                f,
                "\nservice {} ready after {:.1}s ({})",
                service.name,
                service.time_to_ready.as_secs_f64(),
                service.check
            )?;
        }
        Ok(())
    }
}

/// Why a smoke test failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmokeFailure {
    /// The container stopped before it was ready.
    Exited,
    /// It did not become ready in time; the text says what the last check saw.
    Timeout(Duration, String),
    /// The probe was answered, but not by the container: it had stopped by then, or the
    /// port is served by another process. The text says which.
    NotFromContainer(String),
    /// The runner was cancelled while the test waited.
    Cancelled,
    /// A companion service did not become ready; the app was not started.
    Service {
        /// The service's name.
        name: String,
        /// Its image.
        image: String,
        /// How it failed ([`SmokeFailure::Exited`] or [`SmokeFailure::Timeout`]).
        failure: Box<SmokeFailure>,
    },
}

/// A failed smoke test: what happened, and the failing container's state, exit code and
/// last log lines as they were before it was removed. Its `Display` says all of that;
/// [`logs`](SmokeError::logs) keeps the log lines apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmokeError {
    /// The image tested.
    pub(crate) image: String,
    /// The failing container's name (the app's, or a service's).
    pub(crate) container: String,
    /// How it failed.
    pub(crate) failure: SmokeFailure,
    /// The container state (`running`, `exited`, ...).
    pub(crate) state: String,
    /// The container's exit code (0 while it runs).
    pub(crate) exit_code: i64,
    /// True when the kernel killed it for lack of memory (`OOMKilled`).
    pub(crate) oom_killed: bool,
    /// The health status, when the image has a `HEALTHCHECK`.
    pub(crate) health: Option<String>,
    /// The last lines of `docker logs --tail 20` (stdout, then stderr).
    pub logs: Vec<String>,
}

fn describe(f: &mut fmt::Formatter<'_>, container: &str, failure: &SmokeFailure) -> fmt::Result {
    match failure {
        SmokeFailure::Exited => write!(f, "container {container} stopped before it was ready"),
        SmokeFailure::Timeout(limit, last) => write!(
            f,
            "container {container} not ready after {}s ({last})",
            limit.as_secs_f64()
        ),
        SmokeFailure::Cancelled => write!(f, "cancelled while container {container} started"),
        SmokeFailure::NotFromContainer(why) => {
            write!(f, "container {container} did not give the answer: {why}")
        }
        SmokeFailure::Service {
            name,
            image,
            failure,
        } => {
            write!(f, "service {name} ({image}): ")?;
            describe(f, container, failure)?;
            write!(f, "; the app was not started")
        }
    }
}

impl fmt::Display for SmokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "smoke test of {} failed: ", self.image)?;
        describe(f, &self.container, &self.failure)?;
        write!(f, "\nstate: {}, exit code: {}", self.state, self.exit_code)?;
        if self.oom_killed {
            write!(f, ", killed for lack of memory (OOM)")?;
        }
        if let Some(health) = &self.health {
            write!(f, ", health: {health}")?;
        }
        if self.logs.is_empty() {
            write!(f, "\n--- no log output")?;
        } else {
            write!(f, "\n--- last {} log lines", self.logs.len())?;
            for line in &self.logs {
                write!(f, "\n{line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SmokeError {}

/// A probe port already in use before the smoke test started: a pass could come from
/// whatever serves it, so the test refuses to start. Its `Display` names the process
/// listening there, when it can be found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortTaken {
    /// The image (or service) that was to be probed there.
    pub(crate) what: String,
    /// The port on `127.0.0.1`.
    pub port: u16,
    /// The process listening there, when it can be found.
    pub(crate) process: Option<Listener>,
}

impl fmt::Display for PortTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot smoke-test {}: port {} on 127.0.0.1 is already in use",
            self.what, self.port
        )?;
        if let Some(p) = &self.process {
            write!(f, " by {p}")?;
        }
        write!(
            f,
            "; a check there could be answered by that server instead. Pick a free port \
             (the port of the Ready check, or Smoke::port of the app or a service) and tell the app \
             to listen on it (e.g. its PORT environment variable)"
        )
    }
}

impl std::error::Error for PortTaken {}

impl Smoke {
    /// A smoke test of `image`: host network, readiness [`Ready::Auto`], 60 s timeout. Its
    /// containers are named and labelled for the run's session, which the runner carries
    /// (`<project>_smoke_<run id>`; a pipeline gives every step's runner its session).
    pub fn new(image: impl Into<String>) -> Smoke {
        Smoke {
            image: image.into(),
            name: String::new(),
            labels: Vec::new(),
            network: Network::Host,
            env: BTreeMap::new(),
            args: Vec::new(),
            ready: Ready::Auto,
            port: None,
            timeout: Duration::from_secs(60),
            services: Vec::new(),
        }
    }

    /// Sets an environment variable in the container.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Smoke {
        self.env.insert(key.into(), EnvValue::Plain(value.into()));
        self
    }

    /// Sets a secret environment variable: `docker run` gets `--env NAME`, and the value
    /// reaches only the docker client's environment, never a command line, echo, log,
    /// report or plan.
    pub fn secret_env(mut self, key: impl Into<String>, value: Secret) -> Smoke {
        self.env.insert(key.into(), EnvValue::Secret(value));
        self
    }

    /// Replaces the image's `CMD`.
    pub fn args<I, S>(mut self, args: I) -> Smoke
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how readiness is checked.
    pub fn ready(mut self, ready: Ready) -> Smoke {
        self.ready = ready;
        self
    }

    /// Ready when `GET http://127.0.0.1:<port><path>` answers 2xx from inside the
    /// container ([`Ready::Http`] without a body check).
    pub fn http(self, port: u16, path: impl Into<String>) -> Smoke {
        self.ready(Ready::Http {
            port,
            path: path.into(),
            expect_body: None,
        })
    }

    /// The port [`Ready::Auto`] probes when the image has no `HEALTHCHECK`.
    pub fn port(mut self, port: u16) -> Smoke {
        self.port = Some(port);
        self
    }

    /// Publishes `container` on `127.0.0.1:<host>` instead of using the host network.
    pub fn publish(mut self, host: u16, container: u16) -> Smoke {
        self.network = Network::Publish { host, container };
        self
    }

    /// How long the container has to become ready.
    pub fn timeout(mut self, limit: Duration) -> Smoke {
        self.timeout = limit;
        self
    }

    /// Starts `companion` (a container the app needs, such as its database) as the
    /// service called `name` (letters, digits, `-` and `_`) before the app, waits until it
    /// is ready, and gives the app its address; services start in the order added.
    ///
    /// The companion is a [`Smoke`] of its image: its [`env`](Smoke::env),
    /// [`secret_env`](Smoke::secret_env), [`args`](Smoke::args), [`port`](Smoke::port),
    /// [`ready`](Smoke::ready) and [`timeout`](Smoke::timeout) apply. It runs on the host
    /// network, listening on its port at `127.0.0.1` (checked free before it starts);
    /// [`Ready::Auto`] is a TCP connect to that port, and [`Ready::LogLine`] waits for a
    /// line of its output such as `ready for connections`. When it has a port, the app's
    /// environment gets `<NAME>_HOST=127.0.0.1` and `<NAME>_PORT=<port>` (the name
    /// upper-cased, `-` as `_`) unless the test sets those itself.
    ///
    /// ```
    /// use buildkit_lib::validate::{Ready, Smoke};
    ///
    /// let db = Smoke::new("mariadb:11")
    ///     .port(3306)
    ///     .env("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
    ///     .ready(Ready::LogLine("ready for connections".into()));
    /// let smoke = Smoke::new("myapp:dev").service("db", db).http(5000, "/health");
    /// ```
    pub fn service(mut self, name: impl Into<String>, companion: Smoke) -> Smoke {
        self.services.push(Service::of(name.into(), companion));
        self
    }

    /// The same test with its containers named and labelled for `session`.
    pub(crate) fn for_session(&self, session: &Session) -> Smoke {
        Smoke {
            name: session.container_name("smoke"),
            labels: session.label_args(),
            ..self.clone()
        }
    }

    /// The container name of the service called `service`.
    fn service_container(&self, service: &str) -> String {
        format!("{}_{service}", self.name)
    }

    /// The `docker run -d ...` command that starts the app container.
    pub(crate) fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker")
            .args(["run", "--detach", "--init", "--name", &self.name])
            .args(self.labels.iter().cloned());
        cmd = match &self.network {
            Network::Host => cmd.args(["--network", "host"]),
            Network::Publish { host, container } => cmd
                .arg("--publish")
                .arg(format!("127.0.0.1:{host}:{container}")),
        };
        cmd = with_env(cmd, &self.app_env());
        cmd.arg(&self.image).args(self.args.iter().cloned())
    }

    /// The `docker run -d ...` command that starts the service called `name`.
    pub(crate) fn service_command(&self, name: &str) -> Option<Cmd> {
        let service = self.services.iter().find(|s| s.name == name)?;
        let cmd = Cmd::new("docker")
            .args([
                "run",
                "--detach",
                "--init",
                "--name",
                &self.service_container(name),
            ])
            .args(self.labels.iter().cloned())
            .args(["--network", "host"]);
        let cmd = with_env(cmd, &service.env);
        Some(cmd.arg(&service.image).args(service.args.iter().cloned()))
    }

    /// The app's environment: what was set, plus each service's `<NAME>_HOST` and
    /// `<NAME>_PORT` unless set.
    fn app_env(&self) -> BTreeMap<String, EnvValue> {
        let mut env = self.env.clone();
        for service in &self.services {
            if let Some(port) = service.port {
                let prefix = service.env_prefix();
                env.entry(format!("{prefix}_HOST"))
                    .or_insert_with(|| EnvValue::Plain("127.0.0.1".into()));
                env.entry(format!("{prefix}_PORT"))
                    .or_insert_with(|| EnvValue::Plain(port.to_string()));
            }
        }
        env
    }

    /// The wait for the app: the container runs and `check` passes while it does.
    fn app_probe(&self, check: &Ready) -> Probe {
        Probe::container(&self.name, container_ready(check, None))
    }

    /// The wait for the service called `service`.
    fn service_probe(&self, service: &Service) -> Probe {
        Probe::container(
            self.service_container(&service.name),
            container_ready(&service.ready, Some(service.port.unwrap_or_default())),
        )
    }

    /// The ports the test will probe (the app's and the services'), each asked to be free
    /// (a port-free [`Probe`]) and refused when something already serves it.
    fn refuse_taken_ports(&self, runner: &Runner, check: &Ready) -> Result<()> {
        let app_port = match (check, &self.network) {
            (_, Network::Publish { host, .. }) => Some(*host),
            (Ready::Tcp(port), _) | (Ready::Http { port, .. }, _) => Some(*port),
            _ => None,
        };
        let ports = self
            .services
            .iter()
            .filter_map(|s| {
                s.port
                    .map(|p| (format!("service {} ({})", s.name, s.image), p))
            })
            .chain(app_port.map(|p| (self.image.clone(), p)));
        let mut seen = Vec::new();
        for (what, port) in ports {
            if seen.contains(&port) {
                bail!(
                    "cannot smoke-test {}: port {port} is given to two containers of the \
                     test; give each its own port",
                    self.image
                );
            }
            seen.push(port);
            if runner.probe(&Probe::port_free(port)).is_err() {
                return Err(anyhow::Error::new(PortTaken {
                    what,
                    port,
                    process: listener_of(port),
                }));
            }
        }
        Ok(())
    }

    fn start_service(
        &self,
        runner: &Runner,
        service: &Service,
        started: &mut Vec<RunningContainer>,
    ) -> Result<ServiceReport> {
        let name = self.service_container(&service.name);
        started.push(RunningContainer::register(runner, &name));
        let cmd = self.service_command(&service.name).expect("known service");
        let start = Instant::now();
        runner.capture(&cmd).with_context(|| {
            format!("cannot start service {} ({})", service.name, service.image)
        })?;
        let waited = runner.wait(
            &format!("service {} is ready", service.name),
            &self.service_probe(service),
            service.timeout,
        );
        match waited {
            Ok(_) => Ok(ServiceReport {
                name: service.name.clone(),
                container: name,
                check: match (&service.ready, service.port) {
                    (Ready::Auto, Some(port)) => Ready::Tcp(port),
                    (check, _) => check.clone(),
                },
                time_to_ready: start.elapsed(),
            }),
            Err(failed) => {
                let failure = SmokeFailure::Service {
                    name: service.name.clone(),
                    image: service.image.clone(),
                    failure: Box::new(failure_of(failed, service.timeout)),
                };
                Err(anyhow::Error::new(self.diagnose(runner, &name, failure)))
            }
        }
    }

    /// Waits for the app, then makes sure the answer was the container's: it still runs,
    /// and on the host network the listening process is inside it.
    fn wait_app(
        &self,
        runner: &Runner,
        check: &Ready,
        start: Instant,
        report: &mut SmokeReport,
    ) -> std::result::Result<(), SmokeFailure> {
        let waited = runner
            .wait(
                &format!("{} is ready", self.image),
                &self.app_probe(check),
                self.timeout,
            )
            .map_err(|failed| failure_of(failed, self.timeout))?;
        report.time_to_ready = start.elapsed();
        report.attempts = waited.attempts;
        report.detail = waited.answer;
        let state = inspect_state(runner, &self.name).map_err(|e| {
            SmokeFailure::NotFromContainer(format!(
                "the check passed but the container cannot be inspected after it: {e:#}"
            ))
        })?;
        if !state.running {
            return Err(SmokeFailure::NotFromContainer(format!(
                "the check passed ({}) but the container had stopped by then",
                report.detail
            )));
        }
        let port = match (check, &self.network) {
            (Ready::Tcp(port) | Ready::Http { port, .. }, Network::Host) => *port,
            _ => return Ok(()),
        };
        // Who listens is read from /proc: a read, not an action.
        let Some(listener) = listener_of(port) else {
            return Ok(());
        };
        match same_pid_namespace(listener.pid, state.pid) {
            Some(true) => {
                report.answered_by = Some(format!("{listener}, inside the container"));
                Ok(())
            }
            Some(false) => Err(SmokeFailure::NotFromContainer(format!(
                "port {port} is served by {listener}, which is not in the container"
            ))),
            None => Ok(()),
        }
    }

    /// Turns [`Ready::Auto`] and [`Ready::Health`] into a concrete check from the image's
    /// configuration.
    fn resolve_check(&self, runner: &Runner) -> Result<Ready> {
        if !matches!(self.ready, Ready::Auto | Ready::Health) {
            return Ok(self.ready.clone());
        }
        let config = image_config(runner, &self.image)?;
        if config.has_healthcheck() {
            return Ok(Ready::Health);
        }
        if self.ready == Ready::Health {
            bail!(
                "cannot wait for the health status of {}: the image has no HEALTHCHECK (add one \
                 to the Dockerfile, or check a port with Ready::Tcp or Ready::Http)",
                self.image
            );
        }
        let port = match (&self.network, self.port, config.first_tcp_port()) {
            (Network::Publish { host, .. }, _, _) => Some(*host),
            (Network::Host, Some(port), _) => Some(port),
            (Network::Host, None, exposed) => exposed,
        };
        match port {
            Some(port) => Ok(Ready::Tcp(port)),
            None => bail!(
                "cannot tell when {} is ready: it has no HEALTHCHECK and exposes no port (add \
                 a HEALTHCHECK or EXPOSE to the Dockerfile, or set a port or a Ready check)",
                self.image
            ),
        }
    }

    /// Collects state, exit code, health and last logs of the failed container.
    fn diagnose(&self, runner: &Runner, name: &str, failure: SmokeFailure) -> SmokeError {
        let runner = &runner.for_cleanup();
        let state = inspect_state(runner, name).ok();
        SmokeError {
            image: self.image.clone(),
            container: name.to_string(),
            failure,
            state: state
                .as_ref()
                .map(|s| s.status.clone())
                .unwrap_or_else(|| "unknown".into()),
            exit_code: state.as_ref().map(|s| s.exit_code).unwrap_or(-1),
            oom_killed: state.as_ref().is_some_and(|s| s.oom_killed),
            health: state.and_then(|s| s.health.map(|h| h.status)),
            logs: last_logs(runner, name),
        }
    }
}

/// What a container's wait checks for `check`: for the app, [`Ready::Auto`] is its health
/// status (resolved before); for a service (`service_port`), a TCP connect to its port.
fn container_ready(check: &Ready, service_port: Option<u16>) -> ContainerReady {
    match (check, service_port.as_ref()) {
        (Ready::Auto, Some(port)) | (Ready::Tcp(port), _) => {
            ContainerReady::Probe(Box::new(Probe::tcp(format!("127.0.0.1:{port}"))))
        }
        (Ready::Health | Ready::Auto, _) => ContainerReady::Healthy,
        (
            Ready::Http {
                port,
                path,
                expect_body,
            },
            _,
        ) => ContainerReady::Probe(Box::new(Probe::http(
            *port,
            path.clone(),
            expect_body.clone(),
        ))),
        (Ready::LogLine(text), _) => ContainerReady::LogLine(text.clone()),
    }
}

impl Step for Smoke {
    type Output = SmokeReport;

    /// What was ready and when.
    fn summary(&self, report: &SmokeReport) -> Option<String> {
        Some(report.to_string())
    }

    /// Runs the smoke test: asks that the probe ports be free, starts the services and
    /// waits for each, starts the container, waits until it is ready or the timeout (or
    /// until it stops), and removes every container it started in every case. Fails with
    /// a [`PortTaken`] or a [`SmokeError`] (inside the `anyhow::Error`). Its plan is this
    /// body recorded: the image inspection (for [`Ready::Auto`] and [`Ready::Health`]),
    /// the port probes, each `docker run` and wait, the checks after the wait, the last
    /// logs and the removals.
    fn run(&self, runner: &Runner) -> Result<SmokeReport> {
        let this = self.for_session(runner.require_session("a smoke test")?);
        this.run_named(runner)
    }
}

impl Smoke {
    /// [`Step::run`] with the containers named for the run.
    fn run_named(&self, runner: &Runner) -> Result<SmokeReport> {
        for service in &self.services {
            service.check()?;
        }
        let check = self.resolve_check(runner)?;
        let mut report = SmokeReport {
            image: self.image.clone(),
            container: self.name.clone(),
            check: check.clone(),
            time_to_ready: Duration::ZERO,
            attempts: 0,
            detail: String::new(),
            answered_by: None,
            logs: Vec::new(),
            services: Vec::new(),
        };
        self.refuse_taken_ports(runner, &check)?;

        // Removed in reverse order when this vector drops (success, error or panic).
        let mut started: Vec<RunningContainer> = Vec::new();
        for service in &self.services {
            report
                .services
                .push(self.start_service(runner, service, &mut started)?);
        }
        let app = RunningContainer::register(runner, &self.name);
        let start = Instant::now();
        runner
            .capture(&self.command())
            .with_context(|| format!("cannot start a container of {}", self.image))?;
        let outcome = self
            .wait_app(runner, &check, start, &mut report)
            .map_err(|failure| self.diagnose(runner, &self.name, failure));
        if outcome.is_ok() {
            report.logs = last_logs(runner, &self.name);
        }
        let removed = app.remove();
        let mut not_removed = removed.err();
        while let Some(container) = started.pop() {
            if let Err(e) = container.remove() {
                not_removed.get_or_insert(e);
            }
        }
        match (outcome, not_removed) {
            (Ok(()), None) => Ok(report),
            (Ok(()), Some(e)) => Err(e),
            (Err(failed), None) => Err(anyhow::Error::new(failed)),
            (Err(failed), Some(e)) => {
                // The smoke test failure is the error; the leftover still has to be said.
                runner.note(&format!("warning: {e:#}"));
                Err(anyhow::Error::new(failed))
            }
        }
    }
}

/// How a failed wait reads as a smoke test failure: the container stopped, the run was
/// cancelled, or the time ran out with the last answer.
fn failure_of(failed: WaitFailed, limit: Duration) -> SmokeFailure {
    if failed.cannot_pass {
        SmokeFailure::Exited
    } else if failed.cancelled {
        SmokeFailure::Cancelled
    } else {
        SmokeFailure::Timeout(limit, failed.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            project: "webapp".into(),
            run_id: "r1".into(),
        }
    }

    #[test]
    fn command_line_host_network() {
        let smoke = Smoke::new("webapp:ci")
            .env("PORT", "5123")
            .env("APP_ENV", "smoke test")
            .args(["python", "-m", "app"]);
        assert_eq!(
            smoke.for_session(&session()).command().to_string(),
            "docker run --detach --init --name webapp_smoke_r1 \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --network host --env 'APP_ENV=smoke test' --env PORT=5123 webapp:ci python -m app"
        );
    }

    #[test]
    fn command_line_published_port() {
        let smoke = Smoke::new("webapp:ci").publish(18080, 5000);
        assert_eq!(
            smoke.for_session(&session()).command().to_string(),
            "docker run --detach --init --name webapp_smoke_r1 \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --publish 127.0.0.1:18080:5000 webapp:ci"
        );
    }

    #[test]
    fn secret_env_is_passed_by_name_with_the_value_only_in_the_environment() {
        let value = "line one of s3cr3t\nline two with spaces $(x) 'q'";
        let smoke = Smoke::new("app:ci")
            .secret_env("DB_PASSWORD", Secret::new(value))
            .service(
                "db",
                Smoke::new("mariadb:test")
                    .port(3307)
                    .secret_env("MARIADB_PASSWORD", Secret::new(value)),
            );
        let app = smoke.for_session(&session()).command();
        assert_eq!(
            app.to_string(),
            "docker run --detach --init --name webapp_smoke_r1 \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --network host --env DB_HOST=127.0.0.1 --env DB_PASSWORD --env DB_PORT=3307 app:ci"
        );
        assert_eq!(app.get_env("DB_PASSWORD"), Some(Some("***")));
        assert_eq!(app.effective_env("DB_PASSWORD").as_deref(), Some(value));
        let db = smoke.for_session(&session()).service_command("db").unwrap();
        assert_eq!(
            db.to_string(),
            "docker run --detach --init --name webapp_smoke_r1_db \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --network host --env MARIADB_PASSWORD mariadb:test"
        );
        assert!(!format!("{smoke:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_companion_that_publishes_or_has_services_of_its_own_is_refused() {
        use crate::plan::Step as _;
        let runner = Runner::new().session(session());
        let published = Smoke::new("app:ci").service(
            "db",
            Smoke::new("mariadb:test").port(3307).publish(3307, 3306),
        );
        let err = published.plan(&runner).unwrap_err().to_string();
        assert!(err.contains("service `db` publishes a port"), "{err}");
        let nested = Smoke::new("app:ci").service(
            "db",
            Smoke::new("mariadb:test")
                .port(3307)
                .service("cache", Smoke::new("redis:test").port(6379)),
        );
        let err = nested.plan(&runner).unwrap_err().to_string();
        assert!(
            err.contains("service `db` has services of its own"),
            "{err}"
        );
        // A companion is ready on a TCP connect to its port unless told otherwise.
        let plain = Smoke::new("app:ci").service("db", Smoke::new("mariadb:test").port(3307));
        assert_eq!(plain.services[0].ready, Ready::Auto);
        assert!(plain.plan(&runner).is_ok());
    }

    #[test]
    fn a_service_address_set_by_hand_wins() {
        let smoke = Smoke::new("app:ci")
            .env("DB_HOST", "localhost")
            .service("db", Smoke::new("mariadb:test").port(3307));
        assert!(smoke
            .for_session(&session())
            .command()
            .to_string()
            .contains("--env DB_HOST=localhost --env DB_PORT=3307"));
    }

    #[test]
    fn error_shows_state_exit_code_and_logs() {
        let err = SmokeError {
            image: "app:ci".into(),
            container: "app_smoke_r1".into(),
            failure: SmokeFailure::Timeout(
                Duration::from_secs(5),
                "health status unhealthy, last check exited 1: no".into(),
            ),
            state: "running".into(),
            exit_code: 0,
            oom_killed: false,
            health: Some("unhealthy".into()),
            logs: vec!["starting".into()],
        };
        assert_eq!(
            err.to_string(),
            "smoke test of app:ci failed: container app_smoke_r1 not ready after 5s (health \
             status unhealthy, last check exited 1: no)\nstate: running, exit code: 0, health: \
             unhealthy\n--- last 1 log lines\nstarting"
        );
        let err = SmokeError {
            failure: SmokeFailure::Service {
                name: "db".into(),
                image: "mariadb:test".into(),
                failure: Box::new(SmokeFailure::Exited),
            },
            container: "app_smoke_r1_db".into(),
            state: "exited".into(),
            exit_code: 137,
            oom_killed: true,
            health: None,
            logs: vec![],
            ..err
        };
        assert_eq!(
            err.to_string(),
            "smoke test of app:ci failed: service db (mariadb:test): container app_smoke_r1_db \
             stopped before it was ready; the app was not started\nstate: exited, exit code: \
             137, killed for lack of memory (OOM)\n--- no log output"
        );
    }

    #[test]
    fn a_taken_port_is_refused_before_anything_starts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let smoke = Smoke::new("app:ci").ready(Ready::Tcp(port));
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        let err = smoke
            .refuse_taken_ports(&runner, &Ready::Tcp(port))
            .unwrap_err();
        assert_eq!(
            runner.recorded().actions(),
            [crate::plan::Action::Probe(Probe::port_free(port))]
        );
        let taken = err.downcast_ref::<PortTaken>().expect("a PortTaken error");
        assert_eq!(taken.port, port);
        assert_eq!(
            taken.process.as_ref().map(|p| p.pid),
            Some(std::process::id())
        );
        assert!(err.to_string().starts_with(&format!(
            "cannot smoke-test app:ci: port {port} on 127.0.0.1 is already in use by "
        )));
    }
}
