//! What makes a probe's answer trustworthy, read from `/proc` (as `ss -ltnp` does): which
//! process listens on a port, and whether it is in the container. The probes themselves
//! are the runner's ([`Probe`](crate::cmd::Probe)); these are reads, not actions.

use std::path::Path;

/// A process found listening on a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Its process id.
    pub(crate) pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub(crate) name: String,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_listening_and_a_taken_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = listener_of(port).expect("this process listens");
        assert_eq!(found.pid, std::process::id());
        assert_eq!(
            same_pid_namespace(found.pid, std::process::id()),
            Some(true)
        );
        drop(listener);
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
