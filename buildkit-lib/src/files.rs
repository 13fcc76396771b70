//! File writes that never leave half a file: atomic writes and directory swaps, done
//! through the runner ([`Runner::write`], [`Runner::swap`]).
//!
//! Every file the library writes for the user (`version.json`, `dist/`, reports) goes
//! through here: the content lands in a temporary sibling first and is renamed into place
//! only when complete, so a failure or Ctrl-C leaves the previous version as it was.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cmd::Runner;

/// What identifies a file's version without reading it: size, modification and change
/// times, inode and mode (the fields git's index compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
    pub(crate) ino: u64,
    pub(crate) mode: u32,
    pub(crate) is_file: bool,
    pub(crate) is_symlink: bool,
}

impl FileStat {
    /// From `lstat`-style metadata.
    pub(crate) fn of(meta: &fs::Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            ino: meta.ino(),
            mode: meta.mode(),
            is_file: meta.file_type().is_file(),
            is_symlink: meta.file_type().is_symlink(),
        }
    }
}

/// Writes `bytes` to `path` atomically through `runner` ([`Runner::write`]: recorded,
/// and only printed in a dry run).
pub fn write_atomic(runner: &Runner, path: &Path, bytes: &[u8]) -> Result<()> {
    runner.write(path, bytes)
}

/// The write itself, for [`Runner::write`]: a temporary file in the same directory,
/// fsync, rename. Keeps the permissions of an existing file.
pub(crate) fn write_file_atomic(runner: &Runner, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().readonly() {
            bail!(
                "cannot write {}: the file is read-only (make it writable, then run again)",
                path.display()
            );
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".buildkit-tmp-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let _guard = runner.remove_on_cancel(tmp.path());
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    // A temporary file is private (0600); the file it replaces keeps its mode, and a new
    // file gets the usual 0644, so that, say, a `version.json` copied into an image stays
    // readable by the image's non-root user.
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => fs::Permissions::from_mode(0o644),
    };
    let _ = fs::set_permissions(tmp.path(), mode);
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Removes a file, or a folder with all it holds; nothing to do when it is not there.
pub(crate) fn remove_path(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The swap itself, for [`Runner::swap`]: the old directory (if any) renamed aside,
/// `staging` renamed into place, then the old one removed. On failure `target` is put
/// back and `staging` removed.
pub(crate) fn swap_dir(staging: &Path, target: &Path) -> Result<()> {
    if !staging.is_dir() {
        bail!(
            "cannot replace {} with {}: the staging directory does not exist",
            target.display(),
            staging.display()
        );
    }
    let old = target.with_file_name(format!(
        ".{}.old-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had_old = target.exists();
    if had_old {
        if let Err(e) = fs::rename(target, &old) {
            let _ = fs::remove_dir_all(staging);
            return Err(swap_error(target, e, "move it aside"));
        }
    }
    if let Err(e) = fs::rename(staging, target) {
        if had_old {
            let _ = fs::rename(&old, target);
        }
        let _ = fs::remove_dir_all(staging);
        return Err(swap_error(target, e, "move the new one into place"));
    }
    if had_old {
        fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the previous {}", old.display()))?;
    }
    Ok(())
}

/// The error of a failed rename: a mount point (EBUSY, EXDEV) is said by name.
fn swap_error(target: &Path, e: std::io::Error, what: &str) -> anyhow::Error {
    let mount =
        matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EXDEV)) || is_mount_point(target);
    let target = target.display();
    if mount {
        anyhow::anyhow!(
            "cannot replace {target}: it is a mount point, and a mount point cannot be \
             renamed ({e}); mount its parent directory instead, or write into a directory \
             that is not a mount point; {target} is left as it was"
        )
    } else {
        anyhow::Error::new(e).context(format!("cannot replace {target} ({what})"))
    }
}

/// Whether `path` is a mount point (a bind mount or a volume, as in a container): its
/// device differs from its parent's, or `/proc/self/mountinfo` lists it.
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(real) = fs::canonicalize(path) else {
        return false;
    };
    if let (Ok(meta), Some(Ok(parent))) = (fs::metadata(&real), real.parent().map(fs::metadata)) {
        if meta.dev() != parent.dev() {
            return true;
        }
    }
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    table.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|point| Path::new(&unescape_mountinfo(point)) == real)
    })
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as `\040`-style octal.
fn unescape_mountinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|octal| u8::from_str_radix(octal, 8).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b/c\\134d"), "/a b/c\\d");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert!(is_mount_point(Path::new("/")));
        assert!(!is_mount_point(
            &std::env::temp_dir().join("no-such-dir-here")
        ));
    }

    #[test]
    fn atomic_write_and_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        write_atomic(&Runner::new(), &path, b"one").unwrap();
        write_atomic(&Runner::new().dry_run(true), &path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let entries = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file left behind");
    }
}
