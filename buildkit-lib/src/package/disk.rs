//! "No space left on device" while packaging: told apart from a PyInstaller failure, with
//! where the space went and how to free it.

use std::path::Path;

use crate::cmd::{Cmd, CommandError, Runner};

/// How tools say the disk is full: the C library's `strerror(ENOSPC)` (Python's
/// `OSError: [Errno 28]`, Go's `no space left on device`, coreutils' `write error`), and
/// the engine's own words.
const DISK_FULL: &[&str] = &[
    "no space left on device",
    "[errno 28]",
    "enospc",
    "disk quota exceeded",
    "not enough space on the disk",
];

/// The first line saying the disk is full, if any.
pub(crate) fn disk_full_line(lines: &[String]) -> Option<&str> {
    lines.iter().map(String::as_str).find(|l| {
        let lower = l.to_ascii_lowercase();
        DISK_FULL.iter().any(|w| lower.contains(w))
    })
}

/// Whether `e` (anywhere in its chain: a command's output, an I/O error) says the disk is
/// full.
pub(crate) fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(cmd) = c.downcast_ref::<CommandError>() {
            return disk_full_line(&cmd.tail).is_some();
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.raw_os_error() == Some(libc::ENOSPC)
                || io.raw_os_error() == Some(libc::EDQUOT);
        }
        disk_full_line(&[c.to_string()]).is_some()
    })
}

/// `docker info --format {{.DockerRootDir}}`: where the engine keeps images, containers
/// and build cache.
pub(crate) fn data_root_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["info", "--format", "{{.DockerRootDir}}"])
        .read_only()
}

/// The error for a package step that ran out of disk: names the host path the artifacts
/// go to and the engine's data root (asked from the engine; named generically when it does
/// not answer), and how to free space. Wraps `e`, so the tool's own words stay below.
pub(crate) fn disk_full_error(
    runner: &Runner,
    host_path: &Path,
    e: anyhow::Error,
) -> anyhow::Error {
    let root = runner
        .capture(&data_root_cmd())
        .ok()
        .map(|out| out.stdout.trim().to_string())
        .filter(|r| !r.is_empty())
        .map(|r| format!("the engine's data root {r}"))
        .unwrap_or_else(|| "the engine's data root".to_string());
    e.context(format!(
        "the disk is full (no space left on device) while packaging; this is not a \
         PyInstaller problem: free space on the disk holding {} (where the artifacts are \
         written) and on the one holding {root} (images, containers and build cache), e.g. \
         with `docker builder prune` and `cargo xtask clean`, then run again",
        host_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn disk_full_is_recognised_in_every_wording() {
        for text in [
            "OSError: [Errno 28] No space left on device: '/out/deskapp/libpython3.11.so'",
            "ERROR: failed to solve: failed to copy files: copy file range failed: no space left on device",
            "cp: error writing '/out/x': No space left on device",
            "write /var/lib/docker/tmp/x: ENOSPC",
            "OSError: [Errno 122] Disk quota exceeded",
        ] {
            assert_eq!(
                disk_full_line(&lines(&["building", text])),
                Some(text),
                "{text}"
            );
        }
        for text in [
            "PyInstaller.exceptions.ImportErrorWhenRunningHook: Failed to import module",
            "SyntaxError: expected ':'",
            "ERROR: failed to solve: process \"/bin/sh -c pyinstaller\" did not complete successfully: exit code: 1",
        ] {
            assert_eq!(disk_full_line(&lines(&[text])), None, "{text}");
        }
        let io = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("cannot collect the artifacts");
        assert!(is_disk_full(&io));
        let other = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(!is_disk_full(&other));
        let cmd = anyhow::Error::new(CommandError {
            command: "docker run x".into(),
            program: "docker".into(),
            failure: crate::cmd::Failure::Exit(1),
            tail: lines(&["OSError: [Errno 28] No space left on device"]),
            log: None,
        });
        assert!(is_disk_full(&cmd));
    }
}
