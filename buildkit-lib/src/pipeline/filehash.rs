//! Content hashes of input files, kept between runs the way git's index keeps them.
//!
//! Hashing a 5,000-file build context on every run costs seconds; statting it costs
//! milliseconds. [`FileHashes`] remembers, per file, its size, modification and change
//! times, inode and mode next to its SHA-256, and hands back the remembered hash when all
//! of them are unchanged. A file whose modification time is not older than the cache
//! file itself is "racily clean" (it could have changed again within the same timestamp
//! tick after the cache was written) and is hashed again, as git does. A cache file that
//! is damaged or from another version is ignored whole and rebuilt, never trusted.
//!
//! The cache also keeps, for one run only, the fingerprint of each build context already
//! computed, so that steps naming the same context share one walk; that memo is dropped
//! whenever a step that ran (and so may have changed files) finishes.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::files::FileStat;
use crate::hash::sha256_file;

/// The first line of the cache file; a file without it is ignored.
const HEADER: &str = "buildkit-lib file-hashes v1";

/// What makes a remembered hash still valid (the file's type bits aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    mode: u32,
}

impl Stat {
    fn of(stat: &FileStat) -> Stat {
        Stat {
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            ctime_ns: stat.ctime_ns,
            ino: stat.ino,
            mode: stat.mode,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    hash: String,
}

/// Per-file content hashes remembered across runs, plus this run's context fingerprints.
#[derive(Debug, Default)]
pub(crate) struct FileHashes {
    path: Option<PathBuf>,
    /// The cache file's modification time when it was read: entries modified at or after
    /// it are racily clean and hashed again.
    written_ns: i128,
    /// Keyed by the path's bytes (hashing a `Path` walks its components: slower).
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    changed: Mutex<bool>,
    contexts: Mutex<HashMap<PathBuf, String>>,
    /// Files hashed (read) in this run, for tests and the benchmark.
    hashed: Mutex<u64>,
}

impl FileHashes {
    /// A cache that remembers nothing and is never saved.
    pub(crate) fn in_memory() -> FileHashes {
        FileHashes::default()
    }

    /// Reads the cache kept at `path` (a missing, damaged or foreign file gives an empty
    /// cache that will be written anew).
    pub(crate) fn load(path: &Path) -> FileHashes {
        let mut cache = FileHashes {
            path: Some(path.to_path_buf()),
            ..FileHashes::default()
        };
        let (Ok(bytes), Ok(meta)) = (std::fs::read(path), std::fs::metadata(path)) else {
            return cache;
        };
        if let Some(entries) = parse(&bytes) {
            cache.written_ns = FileStat::of(&meta).mtime_ns;
            cache.entries = Mutex::new(entries);
        } else {
            *cache.changed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
        cache
    }

    /// The SHA-256 (hex) of the file at `path` (absolute), read only when its stat
    /// differs from the remembered one or is racily clean.
    pub(crate) fn hash(&self, path: &Path, file: &FileStat) -> std::io::Result<String> {
        let stat = Stat::of(file);
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = entries.get(path.as_os_str().as_bytes()) {
                if entry.stat == stat && stat.mtime_ns < self.written_ns {
                    return Ok(entry.hash.clone());
                }
            }
        }
        let hash = sha256_file(path)?;
        *self.hashed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        // Remember it only if the file did not change while it was read.
        if std::fs::symlink_metadata(path).is_ok_and(|m| Stat::of(&FileStat::of(&m)) == stat) {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    path.as_os_str().as_bytes().to_vec(),
                    Entry {
                        stat,
                        hash: hash.clone(),
                    },
                );
            *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
        Ok(hash)
    }

    /// How many files were read and hashed so far.
    #[cfg(test)]
    pub(crate) fn hashed(&self) -> u64 {
        *self.hashed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This run's fingerprint of the context at `dir`, if computed already.
    pub(crate) fn context(&self, dir: &Path) -> Option<String> {
        self.contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dir)
            .cloned()
    }

    /// Keeps `fingerprint` of the context at `dir` for the rest of the run.
    pub(crate) fn remember_context(&self, dir: &Path, fingerprint: &str) {
        self.contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_path_buf(), fingerprint.to_string());
    }

    /// Forgets this run's context fingerprints: a step ran and may have changed files.
    pub(crate) fn forget_contexts(&self) {
        self.contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Writes the cache back (atomically) when it changed, dropping entries of files
    /// that no longer exist. Errors are not fatal: the next run hashes again.
    pub(crate) fn save(&self) {
        let Some(path) = &self.path else { return };
        if !*self.changed.lock().unwrap_or_else(|e| e.into_inner()) {
            return;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(entries.len() * 120);
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        let mut keys: Vec<&Vec<u8>> = entries
            .keys()
            .filter(|p| Path::new(std::ffi::OsStr::from_bytes(p)).exists())
            .collect();
        keys.sort();
        for key in keys {
            let e = &entries[key];
            let _ = write!(
                out,
                "{} {} {} {} {} {} ",
                e.hash, e.stat.size, e.stat.mtime_ns, e.stat.ctime_ns, e.stat.ino, e.stat.mode
            );
            out.extend_from_slice(&escape(key));
            out.push(b'\n');
        }
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::Builder::new()
            .prefix(".file-hashes-")
            .tempfile_in(dir)
        {
            if tmp.write_all(&out).is_ok() {
                let _ = tmp.persist(path);
            }
        }
    }
}

/// `%`, newline and carriage return written as `%25`, `%0A`, `%0D`; every other byte as
/// it is (paths need not be UTF-8).
fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'\n' => out.extend_from_slice(b"%0A"),
            b'\r' => out.extend_from_slice(b"%0D"),
            _ => out.push(b),
        }
    }
    out
}

fn unescape(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let code = bytes.get(i + 1..i + 3)?;
            out.push(match code {
                b"25" => b'%',
                b"0A" => b'\n',
                b"0D" => b'\r',
                _ => return None,
            });
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The entries of a cache file, or `None` when any line is not as written by `save`.
fn parse(bytes: &[u8]) -> Option<HashMap<Vec<u8>, Entry>> {
    let mut lines = bytes.split(|&b| b == b'\n');
    if lines.next()? != HEADER.as_bytes() {
        return None;
    }
    let mut entries = HashMap::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(7, |&b| b == b' ');
        let mut field = || std::str::from_utf8(parts.next()?).ok().map(str::to_string);
        let hash = field()?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let stat = Stat {
            size: field()?.parse().ok()?,
            mtime_ns: field()?.parse().ok()?,
            ctime_ns: field()?.parse().ok()?,
            ino: field()?.parse().ok()?,
            mode: field()?.parse().ok()?,
        };
        let path = unescape(parts.next()?)?;
        if path.is_empty() {
            return None;
        }
        entries.insert(path, Entry { stat, hash });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(p: &Path) -> FileStat {
        FileStat::of(&std::fs::symlink_metadata(p).unwrap())
    }

    #[test]
    fn unchanged_files_are_not_read_again_after_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "one").unwrap();
        let store = dir.path().join("cache");
        // Old enough not to be racy once the cache is written.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let first = FileHashes::load(&store);
        let h1 = first.hash(&file, &meta(&file)).unwrap();
        assert_eq!(first.hashed(), 1);
        first.save();
        let second = FileHashes::load(&store);
        assert_eq!(second.hash(&file, &meta(&file)).unwrap(), h1);
        assert_eq!(second.hashed(), 0, "an unchanged file is not read");
    }

    #[test]
    fn a_racily_clean_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        let store = dir.path().join("cache");
        std::fs::write(&file, "one").unwrap();
        let first = FileHashes::load(&store);
        first.hash(&file, &meta(&file)).unwrap();
        first.save();
        // Same size, and its mtime set to the cache file's own: within the same tick.
        std::fs::write(&file, "two").unwrap();
        let when = std::fs::metadata(&store).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let second = FileHashes::load(&store);
        let h = second.hash(&file, &meta(&file)).unwrap();
        assert_eq!(h, crate::hash::sha256_hex(b"two"));
        assert_eq!(second.hashed(), 1);
    }

    #[test]
    fn damaged_or_foreign_cache_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cache");
        for text in [
            "buildkit-lib file-hashes v0\n".to_string(),
            format!("{HEADER}\nnot a line\n"),
            format!("{HEADER}\n{} 1 2 3 4 5 /x\n", "z".repeat(64)),
            format!("{HEADER}\n{} 1 2 3 4 5 /x%zz\n", "a".repeat(64)),
        ] {
            std::fs::write(&store, text).unwrap();
            let cache = FileHashes::load(&store);
            assert!(cache.entries.lock().unwrap().is_empty());
            assert!(*cache.changed.lock().unwrap(), "rewritten on save");
        }
    }

    #[test]
    fn odd_paths_round_trip() {
        let raw: &[u8] = b"/tmp/a b/100%\nnew\rline\xff";
        let back = unescape(&escape(raw)).unwrap();
        assert_eq!(back, raw);
        let text = format!("{HEADER}\n{} 1 2 3 4 5 ", "a".repeat(64));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&escape(raw));
        bytes.push(b'\n');
        let entries = parse(&bytes).unwrap();
        assert!(entries.contains_key(raw));
    }
}
