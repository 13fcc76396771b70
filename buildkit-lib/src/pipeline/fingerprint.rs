//! Up-to-date checks: a fingerprint of a step's declared inputs, recorded with its output.
//!
//! A step that declares [`Inputs`] and an [`Output`] is skipped when the fingerprint of
//! its inputs equals the one recorded after its last successful run and the output still
//! exists (for an image, the engine still has it). Build contexts are fingerprinted over
//! exactly the files the engine would receive (`.dockerignore` applied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cmd::{Cmd, Runner};
use crate::hash::{sha256_file, Sha256};

/// What a step's result depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    files: Vec<PathBuf>,
    contexts: Vec<PathBuf>,
    values: BTreeMap<String, String>,
}

impl Inputs {
    /// No inputs yet.
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// A file, or a directory taken whole (every file under it).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Inputs {
        self.files.push(path.into());
        self
    }

    /// A build context: the files the engine would receive, `.dockerignore` applied.
    pub fn context(mut self, dir: impl Into<PathBuf>) -> Inputs {
        self.contexts.push(dir.into());
        self
    }

    /// A named value: a build arg, a setting of the step, a tool version.
    pub fn value(mut self, key: impl Into<String>, value: impl Into<String>) -> Inputs {
        self.values.insert(key.into(), value.into());
        self
    }

    /// The fingerprint: SHA-256 over every input file's relative path and content hash,
    /// and every value, in a fixed order.
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = Sha256::new();
        for path in &self.files {
            h.update(b"file\0");
            hash_tree(&mut h, path, &all_files(path)?)?;
        }
        for dir in &self.contexts {
            h.update(b"context\0");
            let files = context_files(dir)
                .with_context(|| format!("cannot list the build context {}", dir.display()))?;
            hash_tree(&mut h, dir, &files)?;
        }
        for (key, value) in &self.values {
            h.update(b"value\0");
            h.update(key.as_bytes());
            h.update(b"\0");
            h.update(value.as_bytes());
            h.update(b"\0");
        }
        Ok(h.finish_hex())
    }
}

/// The files the engine would receive from a build context (`.dockerignore` applied).
fn context_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let audit = crate::validate::context::audit(dir, &Default::default())?;
    Ok(audit
        .files
        .into_iter()
        .filter(|f| f.kind == crate::validate::context::EntryKind::File)
        .map(|f| PathBuf::from(f.path))
        .collect())
}

fn all_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![PathBuf::new()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
        if entry.file_type().is_file() {
            files.push(entry.path().strip_prefix(path)?.to_path_buf());
        }
    }
    Ok(files)
}

fn hash_tree(h: &mut Sha256, root: &Path, files: &[PathBuf]) -> Result<()> {
    h.update(root.to_string_lossy().as_bytes());
    h.update(b"\0");
    for rel in files {
        let full = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let digest =
            sha256_file(&full).with_context(|| format!("cannot read {}", full.display()))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update(b"\0");
        h.update(digest.as_bytes());
    }
    Ok(())
}

/// What a step produces, checked for existence before a step is called up to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// An image tag the engine must still have.
    Image(String),
    /// A directory that must still exist and not be empty.
    Dir(PathBuf),
}

impl Output {
    /// An image output.
    pub fn image(tag: impl Into<String>) -> Output {
        Output::Image(tag.into())
    }

    /// A directory output.
    pub fn dir(path: impl Into<PathBuf>) -> Output {
        Output::Dir(path.into())
    }

    /// Whether the output still exists.
    pub fn exists(&self, runner: &Runner) -> bool {
        match self {
            Output::Image(tag) => runner
                .capture(
                    &Cmd::new("docker")
                        .args(["image", "inspect", "--format", "{{.Id}}", tag.as_str()])
                        .read_only(),
                )
                .is_ok(),
            Output::Dir(dir) => std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false),
        }
    }
}

/// What is recorded after a step succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub fingerprint: String,
    pub output: Option<Output>,
}

impl Record {
    pub(crate) fn load(path: &Path) -> Option<Record> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_content_and_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "print(1)\n").unwrap();
        let inputs = Inputs::new()
            .file(dir.path())
            .value("PYTHON_IMAGE", "py:3.11");
        let first = inputs.fingerprint().unwrap();
        assert_eq!(first, inputs.fingerprint().unwrap());
        std::fs::write(dir.path().join("a.py"), "print(2)\n").unwrap();
        let second = inputs.fingerprint().unwrap();
        assert_ne!(first, second);
        let third = inputs
            .clone()
            .value("PYTHON_IMAGE", "py:3.12")
            .fingerprint()
            .unwrap();
        assert_ne!(second, third);
    }
}
