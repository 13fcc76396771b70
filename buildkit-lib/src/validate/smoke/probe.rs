//! Readiness probes on loopback (TCP connect, one HTTP GET) and the questions that make
//! their answers trustworthy: is a port already taken before the test starts, and which
//! process listens on it (read from `/proc`, as `ss -ltnp` does).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// `127.0.0.1:<port>`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A process found listening on a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listener {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// Whether something already serves `port` on loopback: a listening socket bound to it
/// (any address), or anything that accepts a connection to `127.0.0.1:<port>`.
pub(crate) fn port_taken(port: u16) -> bool {
    if TcpListener::bind(loopback(port)).is_err() {
        return true;
    }
    TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).is_ok()
}

/// The process listening on TCP `port`, when `/proc` tells (it does for root, or for the
/// caller's own processes).
pub(crate) fn listener_of(port: u16) -> Option<Listener> {
    listener_in(Path::new("/proc"), port)
}

fn listener_in(proc_root: &Path, port: u16) -> Option<Listener> {
    let mut inodes = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(proc_root.join(table)) else {
            continue;
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir(proc_root).ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|n| n.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some(Listener { pid, name });
            }
        }
    }
    None
}

/// Socket inodes in LISTEN state (`0A`) on `port`, from a `/proc/net/tcp{,6}` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let want = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols.get(1)?.rsplit(':').next()?;
            (local_port == want && *cols.get(3)? == "0A")
                .then(|| cols.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// True when both processes are in the same PID namespace (the same container).
pub(crate) fn same_pid_namespace(a: u32, b: u32) -> Option<bool> {
    let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    Some(ns(a)? == ns(b)?)
}

/// A TCP connect to `127.0.0.1:<port>`.
pub(crate) fn tcp_ready(port: u16) -> Result<String, String> {
    TcpStream::connect_timeout(&loopback(port), Duration::from_secs(1))
        .map(|_| format!("127.0.0.1:{port} accepts connections"))
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))
}

/// One HTTP/1.0 `GET` on loopback (HTTP/1.0, so no chunked body), written by hand.
pub(crate) fn http_ready(port: u16, path: &str, expect: Option<&str>) -> Result<String, String> {
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
    fn finds_this_process_listening_and_a_taken_port() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(port_taken(port));
        let found = listener_of(port).expect("this process listens");
        assert_eq!(found.pid, std::process::id());
        assert_eq!(
            same_pid_namespace(found.pid, std::process::id()),
            Some(true)
        );
        drop(listener);
        assert!(!port_taken(port));
        assert_eq!(listener_of(port), None);
    }

    #[test]
    fn reads_listening_sockets_from_a_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n\
   1: 0100007F:1388 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n\
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0\n";
        assert_eq!(listening_inodes(table, 5000), vec![4242]);
        assert_eq!(listening_inodes(table, 22), vec![77]);
        assert!(listening_inodes(table, 80).is_empty());
    }
}
