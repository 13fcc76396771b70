//! The engine's unix socket, spoken to directly: one HTTP/1.0 `GET`, for the runner's
//! fast path ([`Runner::engine_get`](super::Runner::engine_get)), which records and logs
//! it like any command. Here, beside the runner, because the runner is the one channel to
//! the engine.

/// `GET <path>` on an engine's unix socket (`socket`, without `unix://`), HTTP/1.0: the
/// status code and the body. A millisecond where a `docker` process takes tens; errors
/// are the I/O error's text.
pub(crate) fn unix_get(socket: &str, path: &str) -> std::result::Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let limit = Some(std::time::Duration::from_secs(10));
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream
        .set_read_timeout(limit)
        .and_then(|()| stream.set_write_timeout(limit))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "the engine's answer has no HTTP header".to_string())?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!(
                "the engine answered `{}`",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, body.to_string()))
}
