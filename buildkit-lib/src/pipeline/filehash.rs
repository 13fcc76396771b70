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
//! The cache file is binary (a header line, then fixed-size records and the path bytes):
//! reading and writing 50,000 entries must cost milliseconds, not a text parser's time.
//! Entries not looked at in a run are dropped when it is saved.
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
const HEADER: &[u8] = b"buildkit-lib file-hashes v2\n";

/// Bytes of a record before its path: digest, size, mtime, ctime, inode, mode, path length.
const RECORD: usize = 32 + 8 + 16 + 16 + 8 + 4 + 4;

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
    digest: [u8; 32],
    /// Looked at (or written) in this run: kept when the cache is saved.
    used: bool,
}

/// A build context as the fingerprint saw it: its digest, and each file sent with what
/// identifies its content (`<mode>:<sha256>`, or `<mode>:link:<target>` for a symlink),
/// sorted by path. Kept so that the explanation of a rebuild names the files that changed
/// without walking the context again.
#[derive(Debug, Default)]
pub(crate) struct ContextListing {
    pub(crate) fingerprint: String,
    pub(crate) files: Vec<(String, String)>,
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
    contexts: Mutex<HashMap<PathBuf, std::sync::Arc<ContextListing>>>,
    /// Files hashed (read) in this run, for tests.
    hashed: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            *lock(&cache.changed) = true;
        }
        cache
    }

    /// The SHA-256 (hex) of the file at `path` (absolute), read only when its stat
    /// differs from the remembered one or is racily clean.
    pub(crate) fn hash(&self, path: &Path, file: &FileStat) -> std::io::Result<String> {
        let stat = Stat::of(file);
        let key = path.as_os_str().as_bytes();
        {
            let mut entries = lock(&self.entries);
            if let Some(entry) = entries.get_mut(key) {
                if entry.stat == stat && stat.mtime_ns < self.written_ns {
                    entry.used = true;
                    return Ok(hex(&entry.digest));
                }
            }
        }
        let hash = sha256_file(path)?;
        *lock(&self.hashed) += 1;
        // Remember it only if the file did not change while it was read.
        let unchanged =
            std::fs::symlink_metadata(path).is_ok_and(|m| Stat::of(&FileStat::of(&m)) == stat);
        if let (true, Some(digest)) = (unchanged, unhex(&hash)) {
            lock(&self.entries).insert(
                key.to_vec(),
                Entry {
                    stat,
                    digest,
                    used: true,
                },
            );
            *lock(&self.changed) = true;
        }
        Ok(hash)
    }

    /// How many files were read and hashed so far.
    #[cfg(test)]
    pub(crate) fn hashed(&self) -> u64 {
        *lock(&self.hashed)
    }

    /// This run's fingerprint and file hashes of the context at `dir`, if computed already.
    pub(crate) fn context(&self, dir: &Path) -> Option<std::sync::Arc<ContextListing>> {
        lock(&self.contexts).get(dir).cloned()
    }

    /// Keeps the fingerprint and file hashes of the context at `dir` for the rest of the run.
    pub(crate) fn remember_context(&self, dir: &Path, listing: std::sync::Arc<ContextListing>) {
        lock(&self.contexts).insert(dir.to_path_buf(), listing);
    }

    /// Forgets this run's context fingerprints: a step ran and may have changed files.
    pub(crate) fn forget_contexts(&self) {
        lock(&self.contexts).clear();
    }

    /// Writes the cache back (atomically) when it changed or entries went unused, keeping
    /// only the entries this run looked at. Errors are not fatal: the next run hashes
    /// again.
    pub(crate) fn save(&self) {
        let Some((path, out)) = self.encoded() else {
            return;
        };
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

    /// Where the cache goes and its bytes, when it changed or entries went unused (what
    /// [`FileHashes::save`] writes), for a step that writes it through its runner.
    pub(crate) fn encoded(&self) -> Option<(std::path::PathBuf, Vec<u8>)> {
        let path = self.path.clone()?;
        let entries = lock(&self.entries);
        let unused = entries.values().any(|e| !e.used);
        if !*lock(&self.changed) && !unused {
            return None;
        }
        let mut out = Vec::with_capacity(HEADER.len() + entries.len() * (RECORD + 80));
        out.extend_from_slice(HEADER);
        for (key, e) in entries.iter().filter(|(_, e)| e.used) {
            out.extend_from_slice(&e.digest);
            out.extend_from_slice(&e.stat.size.to_le_bytes());
            out.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
            out.extend_from_slice(&e.stat.ctime_ns.to_le_bytes());
            out.extend_from_slice(&e.stat.ino.to_le_bytes());
            out.extend_from_slice(&e.stat.mode.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
        }
        Some((path, out))
    }
}

fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// The entries of a cache file, or `None` when it is not exactly as `save` writes it.
fn parse(bytes: &[u8]) -> Option<HashMap<Vec<u8>, Entry>> {
    let mut rest = bytes.strip_prefix(HEADER)?;
    let mut entries = HashMap::new();
    while !rest.is_empty() {
        if rest.len() < RECORD {
            return None;
        }
        let (record, tail) = rest.split_at(RECORD);
        let u64_at = |i: usize| u64::from_le_bytes(record[i..i + 8].try_into().unwrap());
        let i128_at = |i: usize| i128::from_le_bytes(record[i..i + 16].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(record[i..i + 4].try_into().unwrap());
        let digest: [u8; 32] = record[..32].try_into().unwrap();
        let stat = Stat {
            size: u64_at(32),
            mtime_ns: i128_at(40),
            ctime_ns: i128_at(56),
            ino: u64_at(72),
            mode: u32_at(80),
        };
        let len = u32_at(84) as usize;
        if len == 0 || tail.len() < len {
            return None;
        }
        let (key, after) = tail.split_at(len);
        entries.insert(
            key.to_vec(),
            Entry {
                stat,
                digest,
                used: false,
            },
        );
        rest = after;
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
        assert_eq!(h1, crate::hash::sha256_hex(b"one"));
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
        let mut truncated = HEADER.to_vec();
        truncated.extend_from_slice(&[0u8; RECORD - 1]);
        let mut short_path = HEADER.to_vec();
        short_path.extend_from_slice(&[0u8; RECORD - 4]);
        short_path.extend_from_slice(&9u32.to_le_bytes());
        short_path.extend_from_slice(b"/x");
        for bytes in [
            b"buildkit-lib file-hashes v1\n".to_vec(),
            b"not a cache".to_vec(),
            truncated,
            short_path,
        ] {
            std::fs::write(&store, bytes).unwrap();
            let cache = FileHashes::load(&store);
            assert!(lock(&cache.entries).is_empty());
            assert!(*lock(&cache.changed), "rewritten on save");
        }
    }

    #[test]
    fn odd_paths_round_trip_and_unused_entries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cache");
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"a b%\nnew\rline\xff"));
        let other = dir.path().join("other");
        std::fs::write(&odd, "odd").unwrap();
        std::fs::write(&other, "other").unwrap();
        let first = FileHashes::load(&store);
        first.hash(&odd, &meta(&odd)).unwrap();
        first.hash(&other, &meta(&other)).unwrap();
        first.save();
        let second = FileHashes::load(&store);
        assert_eq!(lock(&second.entries).len(), 2);
        second.hash(&odd, &meta(&odd)).unwrap();
        second.save();
        let third = FileHashes::load(&store);
        let entries = lock(&third.entries);
        assert_eq!(entries.len(), 1, "the entry not looked at was dropped");
        assert!(entries.contains_key(odd.as_os_str().as_bytes()));
    }
}
