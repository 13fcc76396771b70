//! Network probes as values: an HTTP `GET`, a TCP connect, a port that must be free, an
//! engine's ping on its unix socket, and the engine's containers (running, healthy, a log
//! line, a network probe while they run).
//!
//! A step never opens a socket itself: it asks the runner to [`probe`](super::Runner::probe)
//! or to [`wait`](super::Runner::wait) for a [`Probe`], so that a probe is recorded in the
//! step's plan and log like a command, answered by a fake executor in tests, and skipped
//! (counted as answering) in a dry run. This module holds the real probes, on plain
//! `std::net` sockets: one HTTP/1.0 request written by hand (no chunked bodies, no TLS:
//! the library only probes loopback and the engine's own addresses). A
//! container probe is answered by the runner with `docker` queries (see
//! [`ContainerState`]), which are not recorded: the probe is the recorded action.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

/// One question asked of the network (an HTTP `GET`, a TCP connect, a free port, an
/// engine's ping, a container that runs and is ready), as a step's plan records it in an
/// [`Action::Probe`](crate::plan::Action::Probe) or an
/// [`Action::Wait`](crate::plan::Action::Wait). Its `Display` says what it asks
/// (`HTTP GET http://127.0.0.1:8000/health answering 2xx`); the steps make their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe(pub(crate) ProbeKind);

/// What a [`Probe`] asks, answered with what was seen (`Ok`) or why it did not pass
/// (`Err`), both in words for the step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// `GET path` on `host:port` answering 2xx (with a body containing `expect`, when
    /// given).
    Http {
        /// `host:port`, such as `127.0.0.1:8000`.
        addr: String,
        /// The request path, such as `/api/health`.
        path: String,
        /// Text the body must contain.
        expect: Option<String>,
    },
    /// `GET path` on `host:port` answering any HTTP status: the status is the answer (a
    /// registry's `/v2/` answers 200 or 401; both mean it is there).
    HttpStatus {
        /// `host:port`.
        addr: String,
        /// The request path.
        path: String,
    },
    /// A TCP connection to `host:port` is accepted.
    Tcp {
        /// `host:port`.
        addr: String,
    },
    /// Nothing serves the loopback port: no socket is bound to it and nothing accepts a
    /// connection to `127.0.0.1:<port>`.
    PortFree(u16),
    /// `GET /_ping` on a Docker engine's unix socket answering 200 `OK`: the engine (or a
    /// `docker-container` builder's) answers.
    EnginePing {
        /// The socket's path (`/var/run/docker.sock`, without `unix://`).
        socket: String,
    },
    /// The engine's container `name` runs, and `ready` passes while it does. Answered by
    /// the runner with `docker container inspect` (and `docker logs` for a log line). A
    /// container that stopped can never pass: a wait on it stops at once
    /// ([`WaitFailed::cannot_pass`](super::WaitFailed::cannot_pass)).
    Container {
        /// The container's name.
        name: String,
        /// What must pass besides running.
        ready: ContainerReady,
    },
}

/// What a container probe asks of a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContainerReady {
    /// Its health status (the image's `HEALTHCHECK`) is `healthy`.
    Healthy,
    /// A line of its output (the whole log, stdout and stderr) contains this text.
    LogLine(String),
    /// This network probe passes while the container runs (so that the answer is not
    /// from a container that stopped meanwhile).
    Probe(Box<Probe>),
}

impl Probe {
    /// An HTTP check on loopback: `GET http://127.0.0.1:<port><path>` answering 2xx.
    pub(crate) fn http(port: u16, path: impl Into<String>, expect: Option<String>) -> Probe {
        Probe(ProbeKind::Http {
            addr: format!("127.0.0.1:{port}"),
            path: path.into(),
            expect,
        })
    }

    /// `GET path` on `addr` (`host:port`) answering any HTTP status: the status is the
    /// answer.
    pub(crate) fn http_status(addr: impl Into<String>, path: impl Into<String>) -> Probe {
        Probe(ProbeKind::HttpStatus {
            addr: addr.into(),
            path: path.into(),
        })
    }

    /// A TCP connect to `addr` (`host:port`).
    pub(crate) fn tcp(addr: impl Into<String>) -> Probe {
        Probe(ProbeKind::Tcp { addr: addr.into() })
    }

    /// Nothing serves the loopback `port`.
    pub(crate) fn port_free(port: u16) -> Probe {
        Probe(ProbeKind::PortFree(port))
    }

    /// The ping of the engine at `host` (`unix:///var/run/docker.sock` or the bare path).
    pub(crate) fn engine_ping(host: impl AsRef<str>) -> Probe {
        let host = host.as_ref();
        Probe(ProbeKind::EnginePing {
            socket: host.strip_prefix("unix://").unwrap_or(host).to_string(),
        })
    }

    /// A probe of the engine's container `name`: it runs and `ready` passes.
    pub(crate) fn container(name: impl Into<String>, ready: ContainerReady) -> Probe {
        Probe(ProbeKind::Container {
            name: name.into(),
            ready,
        })
    }

    /// Asks the network, now, once. A container probe needs the engine: the runner
    /// answers it, never this.
    pub(crate) fn ask(&self) -> Result<String, String> {
        match &self.0 {
            ProbeKind::Http { addr, path, expect } => {
                let url = format!("http://{addr}{path}");
                let (status, body) = http_get(addr, path).map_err(|e| format!("GET {url}: {e}"))?;
                if !(200..300).contains(&status) {
                    return Err(format!("GET {url} answered {status}"));
                }
                match expect {
                    Some(expect) if !body.contains(expect.as_str()) => Err(format!(
                        "GET {url} answered {status} but the body does not contain {expect:?}: {}",
                        body.chars().take(200).collect::<String>()
                    )),
                    Some(expect) => Ok(format!("HTTP {status}, body contains {expect:?}")),
                    None => Ok(format!("HTTP {status}, {} bytes", body.len())),
                }
            }
            ProbeKind::HttpStatus { addr, path } => http_get(addr, path)
                .map(|(status, _)| status.to_string())
                .map_err(|e| format!("GET http://{addr}{path}: {e}")),
            ProbeKind::Tcp { addr } => {
                let to = resolve(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
                TcpStream::connect_timeout(&to, Duration::from_secs(1))
                    .map(|_| format!("{addr} accepts connections"))
                    .map_err(|e| format!("cannot connect to {addr}: {e}"))
            }
            ProbeKind::PortFree(port) => {
                let at = SocketAddr::from(([127, 0, 0, 1], *port));
                if TcpListener::bind(at).is_err()
                    || TcpStream::connect_timeout(&at, Duration::from_millis(200)).is_ok()
                {
                    Err(format!("port {port} is taken"))
                } else {
                    Ok(format!("port {port} is free"))
                }
            }
            ProbeKind::EnginePing { socket } => match super::socket::unix_get(socket, "/_ping")? {
                (200, body) if body == "OK" => Ok(format!("the engine at unix://{socket} answers")),
                (status, _) => Err(format!("`GET /_ping` answered {status}")),
            },
            ProbeKind::Container { name, .. } => Err(format!(
                "container {name}: a container probe is answered by the runner"
            )),
        }
    }
}

/// A container's `.State`, as `docker container inspect --format '{{json .State}}'` prints
/// it: what a container probe reads, and what a failure report shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ContainerState {
    #[serde(rename = "Status", default)]
    pub(crate) status: String,
    #[serde(rename = "Running", default)]
    pub(crate) running: bool,
    #[serde(rename = "OOMKilled", default)]
    pub(crate) oom_killed: bool,
    #[serde(rename = "ExitCode", default)]
    pub(crate) exit_code: i64,
    #[serde(rename = "Pid", default)]
    pub(crate) pid: u32,
    #[serde(rename = "Health", default)]
    pub(crate) health: Option<Health>,
}

/// A container's health status and its checks' results.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Health {
    #[serde(rename = "Status")]
    pub(crate) status: String,
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

/// A running container's state, as a dry run answers it (so that the step goes on down
/// the path of a container that started).
pub(crate) const RUNNING_STATE: &str = r#"{"Status":"running","Running":true,"ExitCode":0,"Pid":0,"Health":{"Status":"healthy","Log":[]}}"#;

impl ContainerState {
    /// `docker container inspect --format '{{json .State}}' NAME`.
    pub(crate) fn command(name: &str) -> super::Cmd {
        super::Cmd::new("docker")
            .args(["container", "inspect", "--format", "{{json .State}}", name])
            .read_only()
            .timeout(Duration::from_secs(30))
            .dry_answer(RUNNING_STATE)
    }

    /// Reads the output of [`ContainerState::command`].
    pub(crate) fn parse(text: &str) -> Result<ContainerState, String> {
        serde_json::from_str(text.trim())
            .map_err(|e| format!("cannot read the container's state ({e}): {}", text.trim()))
    }

    /// Why a stopped container stopped, in words: `exited with code 3`, `killed for
    /// lack of memory (OOM), exit code 137`.
    pub(crate) fn stopped(&self) -> String {
        match self.oom_killed {
            true => format!(
                "{}: killed for lack of memory (OOM), exit code {}",
                self.status, self.exit_code
            ),
            false => format!("{} with exit code {}", self.status, self.exit_code),
        }
    }

    /// Passes when the health status is `healthy`; otherwise what the last check said.
    pub(crate) fn healthy(&self) -> Result<String, String> {
        let Some(health) = &self.health else {
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
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ProbeKind::Http {
                addr,
                path,
                expect: None,
            } => write!(f, "HTTP GET http://{addr}{path} answering 2xx"),
            ProbeKind::Http {
                addr,
                path,
                expect: Some(expect),
            } => write!(
                f,
                "HTTP GET http://{addr}{path} answering 2xx with {expect:?} in the body"
            ),
            ProbeKind::HttpStatus { addr, path } => write!(f, "HTTP GET http://{addr}{path}"),
            ProbeKind::Tcp { addr } => write!(f, "TCP connect to {addr}"),
            ProbeKind::PortFree(port) => write!(f, "loopback port {port} free"),
            ProbeKind::EnginePing { socket } => {
                write!(f, "engine ping GET /_ping on unix://{socket}")
            }
            ProbeKind::Container { name, ready } => match ready {
                ContainerReady::Healthy => write!(f, "container {name} healthy"),
                ContainerReady::LogLine(text) => {
                    write!(
                        f,
                        "container {name} running with a log line containing {text:?}"
                    )
                }
                ContainerReady::Probe(probe) => write!(f, "container {name} running and {probe}"),
            },
        }
    }
}

fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the name resolves to nothing")
    })
}

/// One HTTP/1.0 `GET` (HTTP/1.0, so no chunked body): the status and the body.
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let to = resolve(addr)?;
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(1024 * 1024).read_to_end(&mut raw)?;
    parse_response(&raw)
}

pub(crate) fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
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

    #[test]
    fn probes_a_local_server_and_a_port() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            Probe::port_free(port).ask(),
            Err(format!("port {port} is taken"))
        );
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.0 200 OK\r\n\r\n{\"version\": \"1.2.3\"}",
                "HTTP/1.0 401 Unauthorized\r\n\r\n",
            ] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    let n = conn.read(&mut buf).unwrap();
                    assert!(n > 0, "request cut short");
                    request.extend_from_slice(&buf[..n]);
                }
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        let health = Probe::http(port, "/health", Some("1.2.3".into()));
        assert_eq!(
            health.ask(),
            Ok("HTTP 200, body contains \"1.2.3\"".to_string())
        );
        let registry = Probe::http_status(format!("127.0.0.1:{port}"), "/v2/");
        assert_eq!(registry.ask(), Ok("401".to_string()));
        server.join().unwrap();
        assert_eq!(
            health.to_string(),
            format!(
                "HTTP GET http://127.0.0.1:{port}/health answering 2xx with \"1.2.3\" in the body"
            )
        );
    }

    #[test]
    fn a_closed_port_is_free_and_refuses_connections() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            Probe::port_free(port).ask(),
            Ok(format!("port {port} is free"))
        );
        let err = Probe::tcp(format!("127.0.0.1:{port}")).ask().unwrap_err();
        assert!(
            err.starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[test]
    fn an_engine_ping_answers_on_a_unix_socket() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let ping = Probe::engine_ping(format!("unix://{}", path.display()));
        assert_eq!(
            ping,
            Probe(ProbeKind::EnginePing {
                socket: path.display().to_string()
            })
        );
        assert_eq!(
            ping.to_string(),
            format!("engine ping GET /_ping on unix://{}", path.display())
        );
        assert!(ping.ask().is_err(), "nothing listens yet");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            assert!(request.starts_with(b"GET /_ping "));
            conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nOK").unwrap();
        });
        assert_eq!(
            ping.ask(),
            Ok(format!("the engine at unix://{} answers", path.display()))
        );
        server.join().unwrap();
    }
}
