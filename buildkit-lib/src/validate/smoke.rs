//! Smoke test: run the built image and wait until it is ready, with a timeout.
//!
//! [`Smoke`] starts the image detached (unique name, the session's labels, `--init`),
//! then polls until it is ready: its `HEALTHCHECK` status, a TCP port, or an HTTP `GET`
//! on loopback that must answer 2xx. The container is removed in every case (success,
//! failure, panic, Ctrl-C); a failure reports its state, exit code and last log lines.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cmd::{interrupt, Cmd, Runner};
use crate::session::Session;

/// How the smoke test decides that the container is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }
}

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
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

/// A smoke test of one image: what to run and how to tell it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smoke {
    /// The image to run.
    pub image: String,
    /// The container name (unique to the run).
    pub name: String,
    /// `--label` arguments (the session's project and run labels).
    pub labels: Vec<String>,
    /// How the container is networked.
    pub network: Network,
    /// Environment variables for the container.
    pub env: BTreeMap<String, String>,
    /// Replaces the image's `CMD` when not empty.
    pub command: Vec<String>,
    /// How readiness is checked.
    pub ready: Ready,
    /// The port [`Ready::Auto`] probes when the image has no `HEALTHCHECK`.
    pub port: Option<u16>,
    /// How long the container has to become ready.
    pub timeout: Duration,
    /// Time between two checks.
    pub poll_interval: Duration,
}

/// What a successful smoke test measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeReport {
    /// The image tested.
    pub image: String,
    /// The container name (removed by now).
    pub container: String,
    /// The check that decided readiness (never [`Ready::Auto`]).
    pub check: Ready,
    /// From `docker run` to the first successful check.
    pub time_to_ready: Duration,
    /// How many checks ran.
    pub attempts: u32,
    /// What the last check saw, such as `HTTP 200, 27 bytes`.
    pub detail: String,
    /// True when nothing ran because of a dry run.
    pub dry_run: bool,
}

impl fmt::Display for SmokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            return write!(f, "smoke test of {} not run (dry run)", self.image);
        }
        write!(
            f,
            "smoke test of {} passed: ready after {:.1}s ({}; {} checks): {}",
            self.image,
            self.time_to_ready.as_secs_f64(),
            self.check,
            self.attempts,
            self.detail
        )
    }
}

/// Why a smoke test failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeFailure {
    /// The container stopped before it was ready.
    Exited,
    /// It did not become ready in time; the text says what the last check saw.
    Timeout(Duration, String),
}

/// A failed smoke test: what happened, and the container's state, exit code and last
/// log lines as they were before it was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeError {
    /// The image tested.
    pub image: String,
    /// The container name.
    pub container: String,
    /// How it failed.
    pub failure: SmokeFailure,
    /// The container state (`running`, `exited`, ...).
    pub state: String,
    /// The container's exit code (0 while it runs).
    pub exit_code: i64,
    /// The health status, when the image has a `HEALTHCHECK`.
    pub health: Option<String>,
    /// The last lines of `docker logs --tail 20` (stdout, then stderr).
    pub logs: Vec<String>,
}

impl fmt::Display for SmokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            SmokeFailure::Exited => write!(
                f,
                "smoke test of {} failed: container {} stopped before it was ready",
                self.image, self.container
            )?,
            SmokeFailure::Timeout(limit, last) => write!(
                f,
                "smoke test of {} failed: container {} not ready after {}s ({last})",
                self.image,
                self.container,
                limit.as_secs_f64()
            )?,
        }
        write!(f, "\nstate: {}, exit code: {}", self.state, self.exit_code)?;
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

const LOG_LINES: usize = 20;

impl Smoke {
    /// A smoke test of `image` for `session`: container `<project>_smoke_<run id>` with the
    /// session's labels, host network, readiness [`Ready::Auto`], 60 s timeout, checks
    /// every 250 ms.
    pub fn new(session: &Session, image: impl Into<String>) -> Smoke {
        Smoke {
            image: image.into(),
            name: session.container_name("smoke"),
            labels: session.label_args(),
            network: Network::Host,
            env: BTreeMap::new(),
            command: Vec::new(),
            ready: Ready::Auto,
            port: None,
            timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
        }
    }

    /// Sets an environment variable in the container.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Smoke {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Replaces the image's `CMD`.
    pub fn command<I, S>(mut self, args: I) -> Smoke
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how readiness is checked.
    pub fn ready(mut self, ready: Ready) -> Smoke {
        self.ready = ready;
        self
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

    /// Time between two checks.
    pub fn poll_interval(mut self, every: Duration) -> Smoke {
        self.poll_interval = every;
        self
    }

    /// The `docker run -d ...` command that starts the container.
    pub fn command_line(&self) -> Cmd {
        let mut cmd = Cmd::new("docker")
            .args(["run", "--detach", "--init", "--name", &self.name])
            .args(self.labels.iter().cloned());
        cmd = match &self.network {
            Network::Host => cmd.args(["--network", "host"]),
            Network::Publish { host, container } => cmd
                .arg("--publish")
                .arg(format!("127.0.0.1:{host}:{container}")),
        };
        for (key, value) in &self.env {
            cmd = cmd.arg("--env").arg(format!("{key}={value}"));
        }
        cmd.arg(&self.image).args(self.command.iter().cloned())
    }

    /// Runs the smoke test: starts the container, waits until it is ready or the timeout,
    /// and removes it in every case. Fails with a [`SmokeError`] (inside the
    /// `anyhow::Error`) when the container stops or is not ready in time.
    pub fn run(&self, runner: &Runner) -> Result<SmokeReport> {
        let check = self.resolve_check(runner)?;
        let start_cmd = self.command_line();
        if runner.is_dry_run() {
            runner
                .run(&start_cmd)
                .with_context(|| format!("cannot start {}", self.image))?;
            return Ok(SmokeReport {
                image: self.image.clone(),
                container: self.name.clone(),
                check,
                time_to_ready: Duration::ZERO,
                attempts: 0,
                detail: String::new(),
                dry_run: true,
            });
        }
        let container = RunningContainer::register(runner, &self.name);
        let started = Instant::now();
        runner
            .capture(&start_cmd)
            .with_context(|| format!("cannot start a container of {}", self.image))?;
        let outcome = self
            .wait_ready(runner, &check, started)
            .map_err(|failure| self.diagnose(runner, failure));
        let removed = container.remove();
        match (outcome, removed) {
            (Ok(report), removed) => removed.map(|_| report),
            (Err(failed), Ok(())) => Err(anyhow::Error::new(failed)),
            (Err(failed), Err(not_removed)) => {
                // The smoke test failure is the error; the leftover still has to be said.
                runner.note(&format!("warning: {not_removed:#}"));
                Err(anyhow::Error::new(failed))
            }
        }
    }

    /// Turns [`Ready::Auto`] and [`Ready::Health`] into a concrete check from the image's
    /// configuration.
    fn resolve_check(&self, runner: &Runner) -> Result<Ready> {
        if !matches!(self.ready, Ready::Auto | Ready::Health) {
            return Ok(self.ready.clone());
        }
        let config = image_config(runner, &self.image)?;
        let has_health = config
            .healthcheck
            .as_ref()
            .and_then(|h| h.test.first())
            .is_some_and(|t| t != "NONE");
        if has_health {
            return Ok(Ready::Health);
        }
        if self.ready == Ready::Health {
            bail!(
                "cannot wait for the health status of {}: the image has no HEALTHCHECK (add one \
                 to the Dockerfile, or check a port with Ready::Tcp or Ready::Http)",
                self.image
            );
        }
        let exposed = config
            .exposed_ports
            .keys()
            .find_map(|p| p.strip_suffix("/tcp").unwrap_or(p).parse::<u16>().ok());
        let port = match (&self.network, self.port, exposed) {
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

    fn wait_ready(
        &self,
        runner: &Runner,
        check: &Ready,
        started: Instant,
    ) -> std::result::Result<SmokeReport, SmokeFailure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match inspect_state(runner, &self.name) {
                Ok(state) if !state.running => return Err(SmokeFailure::Exited),
                Ok(state) => {
                    let probe = match check {
                        Ready::Health => health_ready(&state),
                        Ready::Tcp(port) => tcp_ready(*port),
                        Ready::Http {
                            port,
                            path,
                            expect_body,
                        } => http_ready(*port, path, expect_body.as_deref()),
                        Ready::Auto => unreachable!("resolved before waiting"),
                    };
                    match probe {
                        Ok(detail) => {
                            return Ok(SmokeReport {
                                image: self.image.clone(),
                                container: self.name.clone(),
                                check: check.clone(),
                                time_to_ready: started.elapsed(),
                                attempts,
                                detail,
                                dry_run: false,
                            })
                        }
                        Err(why) => why,
                    }
                }
                Err(e) => format!("cannot inspect the container: {e:#}"),
            };
            if started.elapsed() + self.poll_interval > self.timeout {
                return Err(SmokeFailure::Timeout(self.timeout, last));
            }
            std::thread::sleep(self.poll_interval);
        }
    }

    /// Collects state, exit code, health and last logs of the failed container.
    fn diagnose(&self, runner: &Runner, failure: SmokeFailure) -> SmokeError {
        let state = inspect_state(runner, &self.name).ok();
        let logs_cmd = Cmd::new("docker")
            .args(["logs", "--tail", &LOG_LINES.to_string(), &self.name])
            .read_only();
        let logs = match runner.capture(&logs_cmd) {
            Ok(out) => {
                let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
                lines.extend(out.tail);
                let skip = lines.len().saturating_sub(LOG_LINES);
                lines.split_off(skip)
            }
            Err(e) => vec![format!("(cannot read the logs: {e})")],
        };
        SmokeError {
            image: self.image.clone(),
            container: self.name.clone(),
            failure,
            state: state
                .as_ref()
                .map(|s| s.status.clone())
                .unwrap_or_else(|| "unknown".into()),
            exit_code: state.as_ref().map(|s| s.exit_code).unwrap_or(-1),
            health: state.and_then(|s| s.health.map(|h| h.status)),
            logs,
        }
    }
}

/// The container of a smoke test: removed by [`RunningContainer::remove`], or when
/// dropped (a panic), or by the interrupt handler on Ctrl-C.
struct RunningContainer {
    runner: Runner,
    name: String,
    removed: bool,
    _interrupt: interrupt::Guard,
}

impl RunningContainer {
    /// Registers the removal before the container exists, so no moment is uncovered.
    fn register(runner: &Runner, name: &str) -> RunningContainer {
        let rm = remove_cmd(name);
        let mut on_signal = rm.clone();
        // The interrupt handler runs the command directly, without the runner's defaults.
        for key in ["DOCKER_HOST", "PATH"] {
            if let Some(value) = runner.effective_env(&rm, key) {
                on_signal = on_signal.env(key, value);
            }
        }
        RunningContainer {
            runner: runner.clone(),
            name: name.to_string(),
            removed: false,
            _interrupt: interrupt::on_interrupt(on_signal),
        }
    }

    fn remove(mut self) -> Result<()> {
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

fn remove_cmd(name: &str) -> Cmd {
    Cmd::new("docker")
        .args(["rm", "--force", "--volumes", name])
        .timeout(Duration::from_secs(60))
}

#[derive(Debug, Default, Deserialize)]
struct ImageInspect {
    #[serde(rename = "Config", default)]
    config: Option<ImageConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
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

fn image_config(runner: &Runner, image: &str) -> Result<ImageConfig> {
    let cmd = Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{json .}}", image])
        .read_only();
    let out = runner
        .capture(&cmd)
        .with_context(|| format!("cannot inspect image {image} (build it first)"))?;
    let parsed: ImageInspect = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("cannot read `{cmd}` output"))?;
    Ok(parsed.config.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
struct ContainerState {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Running")]
    running: bool,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
    #[serde(rename = "Health", default)]
    health: Option<Health>,
}

#[derive(Debug, Clone, Deserialize)]
struct Health {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Log", default)]
    log: Vec<HealthLog>,
}

#[derive(Debug, Clone, Deserialize)]
struct HealthLog {
    #[serde(rename = "ExitCode")]
    exit_code: i64,
    #[serde(rename = "Output", default)]
    output: String,
}

fn inspect_state(runner: &Runner, name: &str) -> Result<ContainerState> {
    let cmd = Cmd::new("docker")
        .args(["container", "inspect", "--format", "{{json .State}}", name])
        .read_only()
        .timeout(Duration::from_secs(30));
    let out = runner.capture(&cmd)?;
    serde_json::from_str(out.stdout.trim()).with_context(|| format!("cannot read `{cmd}` output"))
}

fn health_ready(state: &ContainerState) -> std::result::Result<String, String> {
    let Some(health) = &state.health else {
        return Err("the container reports no health status".into());
    };
    if health.status == "healthy" {
        return Ok("health status healthy".into());
    }
    match health.log.last() {
        Some(last) if last.output.trim().is_empty() => Err(format!(
            "health status {}, last check exited {}",
            health.status, last.exit_code
        )),
        Some(last) => Err(format!(
            "health status {}, last check exited {}: {}",
            health.status,
            last.exit_code,
            last.output.trim()
        )),
        None => Err(format!(
            "health status {}, no check finished yet",
            health.status
        )),
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn tcp_ready(port: u16) -> std::result::Result<String, String> {
    TcpStream::connect_timeout(&loopback(port), Duration::from_secs(1))
        .map(|_| format!("127.0.0.1:{port} accepts connections"))
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))
}

/// One HTTP/1.0 `GET` on loopback (HTTP/1.0, so no chunked body), written by hand.
fn http_ready(port: u16, path: &str, expect: Option<&str>) -> std::result::Result<String, String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let (status, body) = http_get(port, path).map_err(|e| format!("GET {url}: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("GET {url} answered {status}"));
    }
    if let Some(expect) = expect {
        if !body.contains(expect) {
            return Err(format!(
                "GET {url} answered {status} but the body does not contain {expect:?}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        return Ok(format!("HTTP {status}, body contains {expect:?}"));
    }
    Ok(format!("HTTP {status}, {} bytes", body.len()))
}

fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&loopback(port), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(1024 * 1024).read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no complete HTTP response"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(bad(&format!("not an HTTP response: {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(&format!("no status code in {status_line:?}")))?;
    Ok((status, body.to_string()))
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
        let smoke = Smoke::new(&session(), "webapp:ci")
            .env("PORT", "5123")
            .env("APP_ENV", "smoke test")
            .command(["python", "-m", "app"]);
        assert_eq!(
            smoke.command_line().to_string(),
            "docker run --detach --init --name webapp_smoke_r1 \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --network host --env 'APP_ENV=smoke test' --env PORT=5123 webapp:ci python -m app"
        );
    }

    #[test]
    fn command_line_published_port() {
        let smoke = Smoke::new(&session(), "webapp:ci").publish(18080, 5000);
        assert_eq!(
            smoke.command_line().to_string(),
            "docker run --detach --init --name webapp_smoke_r1 \
             --label dev.buildkit-lib.project=webapp --label dev.buildkit-lib.run=r1 \
             --publish 127.0.0.1:18080:5000 webapp:ci"
        );
    }

    #[test]
    fn parses_http_responses() {
        let (status, body) =
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"v\":1}")
                .unwrap();
        assert_eq!((status, body.as_str()), (200, "{\"v\":1}"));
        let (status, _) = parse_response(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").unwrap();
        assert_eq!(status, 503);
        let err = parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err();
        assert_eq!(err.to_string(), "not an HTTP response: \"SSH-2.0-OpenSSH\"");
        let err = parse_response(b"HTTP/1.0 200 OK\r\n").unwrap_err();
        assert_eq!(err.to_string(), "no complete HTTP response");
    }

    #[test]
    fn http_check_against_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.0 200 OK\r\n\r\n{\"version\": \"1.2.3\"}",
                "HTTP/1.0 500 Oops\r\n\r\n",
            ] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    let n = conn.read(&mut buf).unwrap();
                    assert!(n > 0, "request cut short");
                    request.extend_from_slice(&buf[..n]);
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                assert_eq!(
                    request,
                    format!(
                        "GET /api/health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: \
                         */*\r\nConnection: close\r\n\r\n"
                    )
                );
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        assert_eq!(
            http_ready(port, "/api/health", Some("1.2.3")),
            Ok("HTTP 200, body contains \"1.2.3\"".to_string())
        );
        assert_eq!(
            http_ready(port, "/api/health", None),
            Err(format!(
                "GET http://127.0.0.1:{port}/api/health answered 500"
            ))
        );
        server.join().unwrap();
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
            health: Some("unhealthy".into()),
            logs: vec!["starting".into()],
        };
        assert_eq!(
            err.to_string(),
            "smoke test of app:ci failed: container app_smoke_r1 not ready after 5s (health \
             status unhealthy, last check exited 1: no)\nstate: running, exit code: 0, health: \
             unhealthy\n--- last 1 log lines\nstarting"
        );
    }
}
