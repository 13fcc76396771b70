//! Artifacts leaving a build: a checked copy into the staging directory, and the report.
//!
//! [`collect`] copies what a container or an export left in a raw directory into the
//! staging directory of `dist/`, refusing symlinks that point outside the artifacts (a
//! link to `/etc/passwd` would otherwise ship the host's file). [`ArtifactReport`] lists
//! each file with its size and sha256.

use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

#[cfg(test)]
use crate::cmd::Runner;
#[cfg(test)]
use crate::files::write_atomic;
use crate::hash::sha256_file;

/// One file of the artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Artifact {
    /// Path relative to the artifact directory.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, lower-case hex.
    pub sha256: String,
}

/// The files of a finished package, for the user and for CI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArtifactReport {
    /// The directory holding them (`dist/`).
    pub(crate) dir: PathBuf,
    /// Every regular file, sorted by path.
    pub(crate) files: Vec<Artifact>,
    /// The path an incremental packaging took, and why (see
    /// [`Package::incremental`](super::Package::incremental)).
    pub(crate) path_taken: Option<String>,
}

impl ArtifactReport {
    /// Reads every regular file under `dir` (symlinks are listed by what they point to
    /// only when that is a file inside `dir`).
    pub(crate) fn scan(dir: &Path) -> Result<ArtifactReport> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            let sha256 = sha256_file(entry.path())
                .with_context(|| format!("cannot hash {}", entry.path().display()))?;
            files.push(Artifact {
                path: entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap_or(entry.path())
                    .to_path_buf(),
                size: meta.len(),
                sha256,
            });
        }
        Ok(ArtifactReport {
            dir: dir.to_path_buf(),
            files,
            path_taken: None,
        })
    }

    /// The path an incremental packaging took and why (`packaging: incremental, analysis
    /// reused: …`, `packaging: full, signalscope.spec changed …`, `packaging: up to date
    /// …`); `None` without [`Package::incremental`](super::Package::incremental).
    pub fn path_taken(&self) -> Option<&str> {
        self.path_taken.as_deref()
    }

    /// sha256 by path relative to the directory.
    pub(crate) fn sums(&self) -> std::collections::BTreeMap<String, String> {
        self.files
            .iter()
            .map(|f| (f.path.to_string_lossy().into_owned(), f.sha256.clone()))
            .collect()
    }

    /// The relative paths, for comparing two builds.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|a| a.path.clone()).collect()
    }

    /// The report as JSON: `{"dir": ..., "files": [{"path", "size", "sha256"}]}`.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "files": self.files.iter().map(|a| serde_json::json!({
                "path": a.path.display().to_string(),
                "size": a.size,
                "sha256": a.sha256,
            })).collect::<Vec<_>>(),
        })
    }
}

impl ArtifactReport {
    #[cfg(test)]
    /// Writes [`ArtifactReport::to_json`] to `path` atomically (dry-run aware), for CI to
    /// publish beside the release.
    pub(crate) fn write_json(&self, runner: &Runner, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(&self.to_json())
            .context("cannot serialise the artifacts report")?;
        text.push('\n');
        write_atomic(runner, path, text.as_bytes())
    }
}

impl fmt::Display for ArtifactReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "artifacts in {}:", self.dir.display())?;
        for a in &self.files {
            write!(f, "\n  {}  {:>12}  {}", a.sha256, a.size, a.path.display())?;
        }
        Ok(())
    }
}

/// Copies the tree `from` into `into` (which must exist), keeping permissions. Symlinks
/// are kept only when they point inside `from` (relative targets); any other symlink is
/// refused, naming the file and its target. Returns the number of files copied.
#[cfg(test)]
pub(crate) fn collect(from: &Path, into: &Path) -> Result<usize> {
    let mut copied = 0;
    for entry in walkdir::WalkDir::new(from).min_depth(1).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = into.join(rel);
        let kind = entry.file_type();
        if kind.is_symlink() {
            let target = link_inside(entry.path(), rel)?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("cannot create the symlink {}", dest.display()))?;
        } else if kind.is_dir() {
            fs::create_dir(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
            let mode = entry.metadata().map(|m| m.permissions());
            if let Ok(mode) = mode {
                let _ = fs::set_permissions(&dest, mode);
            }
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    dest.display()
                )
            })?;
            copied += 1;
        } else {
            bail!(
                "refusing to copy artifact `{}`: it is not a regular file, directory or symlink",
                rel.display()
            );
        }
    }
    Ok(copied)
}

/// The target of the symlink at `path` (`rel` in the artifact tree), refused unless it
/// points inside the tree.
fn link_inside(path: &Path, rel: &Path) -> Result<std::path::PathBuf> {
    let target = fs::read_link(path)
        .with_context(|| format!("cannot read the symlink {}", path.display()))?;
    if !stays_inside(rel, &target) {
        bail!(
            "refusing to copy artifact `{}`: it is a symlink to `{}`, outside the artifact \
             directory; make the build write the file itself, not a link",
            rel.display(),
            target.display()
        );
    }
    Ok(target)
}

/// Checks the tree `dir` in place the way [`collect`] checks what it copies: symlinks only
/// when they point inside `dir`, nothing but regular files, folders and such links.
/// Returns the number of regular files.
pub(crate) fn check_in_place(dir: &Path) -> Result<usize> {
    let mut files = 0;
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let kind = entry.file_type();
        if kind.is_symlink() {
            link_inside(entry.path(), rel)?;
        } else if kind.is_file() {
            files += 1;
        } else if !kind.is_dir() {
            bail!(
                "refusing to copy artifact `{}`: it is not a regular file, directory or symlink",
                rel.display()
            );
        }
    }
    Ok(files)
}

/// Whether a symlink at `link` (relative to the artifact root) pointing to `target`
/// resolves inside the root, judged on the text alone (absolute targets never do).
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for part in target.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_outside_are_refused_inside_kept() {
        let raw = tempfile::tempdir().unwrap();
        fs::create_dir(raw.path().join("app")).unwrap();
        fs::write(raw.path().join("app/lib.so.1"), "lib").unwrap();
        std::os::unix::fs::symlink("lib.so.1", raw.path().join("app/lib.so")).unwrap();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(collect(raw.path(), out.path()).unwrap(), 1);
        assert_eq!(
            fs::read_link(out.path().join("app/lib.so")).unwrap(),
            Path::new("lib.so.1")
        );

        std::os::unix::fs::symlink("/etc/passwd", raw.path().join("passwd")).unwrap();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(
            collect(raw.path(), out.path()).unwrap_err().to_string(),
            "refusing to copy artifact `passwd`: it is a symlink to `/etc/passwd`, outside \
             the artifact directory; make the build write the file itself, not a link"
        );
        assert!(!stays_inside(Path::new("a/b"), Path::new("../../x")));
        assert!(stays_inside(Path::new("a/b"), Path::new("../x")));
    }

    #[test]
    fn report_lists_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hello"), "hello\n").unwrap();
        let report = ArtifactReport::scan(dir.path()).unwrap();
        let json = dir.path().join("artifacts.json");
        report.write_json(&Runner::new(), &json).unwrap();
        let written: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(written["files"][0]["size"], 6);
        assert_eq!(
            report.files,
            vec![Artifact {
                path: "hello".into(),
                size: 6,
                sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into(),
            }]
        );
    }
}
