//! The walk of a build context: what the engine receives, file by file.
//!
//! Mirrors BuildKit's fsutil walk (parent-match inheritance, pruning of excluded
//! directories no exception can reach), and keeps each file's `stat` so that the build
//! fingerprints can reuse hashes of unchanged files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::dockerignore::{ignore_file_for, IgnoreRules};

/// What kind of entry the engine receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum EntryKind {
    /// A regular file.
    File,
    /// A symbolic link (sent as a link, never followed).
    Symlink,
    /// A socket, device or pipe.
    Other,
}

/// One non-directory entry of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct ContextFile {
    /// Path relative to the context root, `/`-separated, for display and matching (a
    /// name that is not UTF-8 shows U+FFFD for its bad bytes).
    pub(crate) path: String,
    /// The same path byte for byte, as the file system has it (names need not be UTF-8).
    pub(crate) os_path: std::path::PathBuf,
    /// Size in bytes (a symlink counts the length of its target).
    pub(crate) bytes: u64,
    /// File, symlink or other.
    pub(crate) kind: EntryKind,
    /// The walk's `lstat` of it, so fingerprints need not stat it again.
    pub(crate) stat: Option<crate::files::FileStat>,
}

/// A directory and everything the context holds beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct DirUsage {
    /// Path relative to the context root.
    pub(crate) path: String,
    /// Bytes of all files beneath it.
    pub(crate) bytes: u64,
    /// Number of files beneath it.
    pub(crate) files: usize,
}

struct OpenDir {
    depth: usize,
    path: String,
    info: Vec<bool>,
    sent: bool,
}

/// What the engine receives from `context` (built with `dockerfile`): the ignore file
/// used, its rules, the files and the directories, each sorted by path. The fingerprint
/// of a build context is made from this alone (no sizes ranking, no secret search).
#[allow(clippy::type_complexity)]
pub(crate) fn sent(
    context: &Path,
    dockerfile: Option<&Path>,
) -> Result<(Option<PathBuf>, IgnoreRules, Vec<ContextFile>, Vec<String>)> {
    if !context.is_dir() {
        bail!(
            "build context {} is not a directory (give the folder passed to `docker build`)",
            context.display()
        );
    }
    let ignore_file = ignore_file_for(context, dockerfile);
    let rules = match &ignore_file {
        Some(path) => IgnoreRules::read(path)?,
        None => IgnoreRules::default(),
    };
    let (mut files, mut dirs) = walk(context, &rules)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    dirs.sort_unstable();
    Ok((ignore_file, rules, files, dirs))
}

/// The walk of fsutil's filtered file system: every entry is matched with its parent's
/// results, an excluded directory is pruned when no exception can reach beneath it, and an
/// excluded directory holding a re-included entry is sent as well.
fn walk(context: &Path, rules: &IgnoreRules) -> Result<(Vec<ContextFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut open: Vec<OpenDir> = Vec::new();
    let mut info = Vec::new();
    let mut entries = walkdir::WalkDir::new(context).min_depth(1).into_iter();
    while let Some(entry) = entries.next() {
        let entry = entry.with_context(|| format!("cannot walk {}", context.display()))?;
        let depth = entry.depth();
        while open.last().is_some_and(|d| d.depth >= depth) {
            open.pop();
        }
        let rel = entry
            .path()
            .strip_prefix(context)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let is_dir = entry.file_type().is_dir();
        let excluded = !rules.is_empty() && {
            let parent = open.last().map(|d| d.info.as_slice()).unwrap_or(&[]);
            rules.matches_using_parent(&rel, parent, &mut info).0
        };
        if excluded {
            if is_dir {
                if rules.can_skip_dir(&rel) {
                    entries.skip_current_dir();
                } else {
                    open.push(OpenDir {
                        depth,
                        path: rel,
                        info: std::mem::take(&mut info),
                        sent: false,
                    });
                }
            }
            continue;
        }
        for dir in open.iter_mut().filter(|d| !d.sent) {
            dir.sent = true;
            dirs.push(dir.path.clone());
        }
        if is_dir {
            dirs.push(rel.clone());
            open.push(OpenDir {
                depth,
                path: rel,
                info: std::mem::take(&mut info),
                sent: true,
            });
            continue;
        }
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let ft = entry.file_type();
        let kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        files.push(ContextFile {
            path: rel,
            os_path: entry
                .path()
                .strip_prefix(context)
                .unwrap_or(entry.path())
                .to_path_buf(),
            bytes: meta.len(),
            kind,
            stat: Some(crate::files::FileStat::of(&meta)),
        });
    }
    Ok((files, dirs))
}

pub(super) fn largest_dirs(files: &[ContextFile], top: usize) -> Vec<DirUsage> {
    let mut usage: HashMap<&str, (u64, usize)> = HashMap::new();
    for file in files {
        let mut path = file.path.as_str();
        while let Some(slash) = path.rfind('/') {
            path = &file.path[..slash];
            let slot = usage.entry(path).or_default();
            slot.0 += file.bytes;
            slot.1 += 1;
        }
    }
    let mut dirs: Vec<DirUsage> = usage
        .into_iter()
        .map(|(path, (bytes, files))| DirUsage {
            path: path.to_string(),
            bytes,
            files,
        })
        .collect();
    dirs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    dirs.truncate(top);
    dirs
}
