//! Up-to-date checks: a fingerprint of a step's declared inputs, recorded with its output.
//!
//! A step that declares [`Inputs`] and an [`StepOutput`] is skipped when the fingerprint of
//! its inputs equals the one recorded after its last successful run and the output still
//! exists (for an image, the engine still has it). Build contexts are fingerprinted over
//! exactly the files the engine would receive (`.dockerignore` applied).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cmd::{Cmd, Runner};
use crate::files::FileStat;
use crate::hash::Sha256;

use super::filehash::{ContextListing, FileHashes};
use crate::docker::bake::is_local;
use crate::docker::build::Build;

/// The OCI label that records when an image was built.
const CREATED_LABEL: &str = "org.opencontainers.image.created";

/// What a step's result depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    files: Vec<PathBuf>,
    /// Build contexts, each with the Dockerfile whose `<Dockerfile>.dockerignore` applies.
    contexts: Vec<(PathBuf, Option<PathBuf>)>,
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
        self.contexts.push((dir.into(), None));
        self
    }

    /// A build context built with `dockerfile`: a `<Dockerfile>.dockerignore` beside it
    /// takes the place of the context's `.dockerignore`, as in BuildKit.
    pub(crate) fn context_for(
        mut self,
        dir: impl Into<PathBuf>,
        dockerfile: impl Into<PathBuf>,
    ) -> Inputs {
        self.contexts.push((dir.into(), Some(dockerfile.into())));
        self
    }

    /// Adds everything `other` declares.
    pub(crate) fn merge(mut self, other: Inputs) -> Inputs {
        for file in other.files {
            if !self.files.contains(&file) {
                self.files.push(file);
            }
        }
        for dir in other.contexts {
            if !self.contexts.contains(&dir) {
                self.contexts.push(dir);
            }
        }
        self.values.extend(other.values);
        self
    }

    /// What an image build depends on, read from the [`Build`] itself: its context
    /// (`.dockerignore` applied), its Dockerfile, every local named context, and its
    /// command line (tags, target, args, labels, platforms, caches, output: every option
    /// that changes the build). The `org.opencontainers.image.created` label is left out:
    /// it records when the build ran, which is not a reason to build again.
    ///
    /// A local named context is an input whether or not it exists yet: an earlier step of
    /// the same run may create it (a stamped metadata folder), and the fingerprint is
    /// taken when the step runs, so a run that creates it and the next one that finds it
    /// agree.
    pub fn of_build(build: &Build) -> Inputs {
        let mut key = build.clone();
        key.labels.remove(CREATED_LABEL);
        key.metadata_file = None;
        let dockerfile = build
            .dockerfile
            .clone()
            .unwrap_or_else(|| build.context.join("Dockerfile"));
        let mut inputs = Inputs::new()
            .context_for(&build.context, &dockerfile)
            .value("build.command", key.command().to_string())
            .file(&dockerfile);
        // A build arg whose value looks like a secret is on the command line by name only:
        // its value counts through its digest.
        for (name, value) in &build.build_args {
            if crate::docker::build::looks_like_secret_value(value).is_some() {
                inputs = inputs.value(
                    format!("build.arg.{name}"),
                    crate::hash::sha256_hex(value.as_bytes()),
                );
            }
        }
        for (name, source) in &build.build_contexts {
            if is_local(source) {
                inputs = inputs.value(format!("build.context.{name}"), source.clone());
                inputs = inputs.file(Path::new(source));
            }
        }
        inputs
    }

    /// A named value: a build arg, a setting of the step, a tool version.
    pub fn value(mut self, key: impl Into<String>, value: impl Into<String>) -> Inputs {
        self.values.insert(key.into(), value.into());
        self
    }

    /// The fingerprint: SHA-256 over every input file's relative path, kind, mode and
    /// content hash (a symlink's target instead of content), each context's directories,
    /// and every value, in a fixed order. Every file is read and hashed.
    pub fn fingerprint(&self) -> Result<String> {
        self.fingerprint_with(&FileHashes::in_memory())
    }

    /// [`Inputs::fingerprint`] reading only the files whose stat changed since `hashes`
    /// last saw them, and reusing a context's fingerprint already computed in this run.
    pub(crate) fn fingerprint_with(&self, hashes: &FileHashes) -> Result<String> {
        let mut h = Sha256::new();
        for path in &self.files {
            h.update(b"file\0");
            hash_tree(&mut h, path, &all_files(path)?, hashes)?;
        }
        for (dir, dockerfile) in &self.contexts {
            h.update(b"context\0");
            let listing = context_listing(dir, dockerfile.as_deref(), hashes)?;
            h.update(listing.fingerprint.as_bytes());
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

/// The fingerprint and per-file hashes of the build context at `dir` built with
/// `dockerfile`: this run's, when a step already computed them (one walk per context and
/// run), else walked and hashed now and kept for the rest of the run.
pub(crate) fn context_listing(
    dir: &Path,
    dockerfile: Option<&Path>,
    hashes: &FileHashes,
) -> Result<Arc<ContextListing>> {
    let key = match dockerfile {
        Some(f) => dir.join("\0").join(f),
        None => dir.to_path_buf(),
    };
    if let Some(listing) = hashes.context(&key) {
        return Ok(listing);
    }
    let listing = Arc::new(context_digest(dir, dockerfile, hashes)?);
    hashes.remember_context(&key, Arc::clone(&listing));
    Ok(listing)
}

/// The digest of what the engine would receive from a build context (`.dockerignore`
/// applied): each file's path, mode and content, each symlink's target, each directory;
/// with each file's own identity beside it.
fn context_digest(
    dir: &Path,
    dockerfile: Option<&Path>,
    hashes: &FileHashes,
) -> Result<ContextListing> {
    let (_, _, files, dirs) = crate::validate::context::sent(dir, dockerfile)
        .with_context(|| format!("cannot list the build context {}", dir.display()))?;
    let mut h = Sha256::new();
    h.update(dir.as_os_str().as_bytes());
    h.update(b"\0");
    let mut listed = Vec::with_capacity(files.len());
    // Files and directories come in a fixed order (sorted by path).
    for file in &files {
        let identity = hash_entry(
            &mut h,
            &dir.join(&file.os_path),
            &file.os_path,
            file.stat,
            hashes,
        )?;
        listed.push((file.path.clone(), identity));
    }
    for d in &dirs {
        h.update(b"dir\0");
        h.update(d.as_bytes());
        h.update(b"\0");
    }
    Ok(ContextListing {
        fingerprint: h.finish_hex(),
        files: listed,
    })
}

fn all_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![PathBuf::new()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
        if !entry.file_type().is_dir() {
            files.push(entry.path().strip_prefix(path)?.to_path_buf());
        }
    }
    Ok(files)
}

fn hash_tree(h: &mut Sha256, root: &Path, files: &[PathBuf], hashes: &FileHashes) -> Result<()> {
    h.update(root.as_os_str().as_bytes());
    h.update(b"\0");
    if std::fs::symlink_metadata(root).is_err() {
        // Not there (yet): that is a state too, and its appearance changes the fingerprint.
        h.update(b"absent\0");
        return Ok(());
    }
    for rel in files {
        let full = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        hash_entry(h, &full, rel, None, hashes)?;
    }
    Ok(())
}

/// One entry: relative path, then the kind and mode, then the content hash (a regular
/// file), the link target (a symlink), or nothing (anything else). Returns the entry's
/// identity: `<mode>:<sha256>`, `<mode>:link:<target>` or `<mode>:`.
fn hash_entry(
    h: &mut Sha256,
    full: &Path,
    rel: &Path,
    known: Option<FileStat>,
    hashes: &FileHashes,
) -> Result<String> {
    let meta = match known {
        Some(stat) => stat,
        None => FileStat::of(
            &std::fs::symlink_metadata(full)
                .with_context(|| format!("cannot read {}", full.display()))?,
        ),
    };
    h.update(rel.as_os_str().as_bytes());
    h.update(b"\0");
    h.update(&meta.mode.to_le_bytes());
    let mut identity = format!("{:o}:", meta.mode & 0o7777);
    if meta.is_symlink {
        let target =
            std::fs::read_link(full).with_context(|| format!("cannot read {}", full.display()))?;
        h.update(b"link\0");
        h.update(target.as_os_str().as_bytes());
        identity.push_str("link:");
        identity.push_str(&target.to_string_lossy());
    } else if meta.is_file {
        let digest = hashes
            .hash(full, &meta)
            .with_context(|| format!("cannot read {}", full.display()))?;
        h.update(digest.as_bytes());
        identity.push_str(&digest);
    }
    h.update(b"\0");
    Ok(identity)
}

/// What a step produces, checked for existence before a step is called up to date: an
/// image ([`Step::output_image`](super::Step::output_image)) or a directory
/// ([`Step::output_dir`](super::Step::output_dir)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct StepOutput(pub(crate) OutputKind);

/// The kinds of [`StepOutput`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OutputKind {
    /// An image tag the engine must still have.
    Image(String),
    /// A directory that must still exist and not be empty.
    Dir(PathBuf),
}

impl StepOutput {
    /// An image output: a tag the engine must still have.
    pub(crate) fn image(tag: impl Into<String>) -> StepOutput {
        StepOutput(OutputKind::Image(tag.into()))
    }

    /// A directory output: a directory that must still exist and not be empty.
    pub(crate) fn dir(path: impl Into<PathBuf>) -> StepOutput {
        StepOutput(OutputKind::Dir(path.into()))
    }

    /// Whether the output still exists.
    pub(crate) fn exists(&self, runner: &Runner) -> bool {
        match self {
            StepOutput(OutputKind::Image(_)) => self.identity(runner).is_some(),
            StepOutput(OutputKind::Dir(dir)) => std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false),
        }
    }
}

impl StepOutput {
    /// What the output is now, to compare with what the step left: an image's ID, or a
    /// digest of a directory's files (relative paths, kinds and contents). `None` when it
    /// is not there or cannot be read: never the same as a recorded identity.
    pub(crate) fn identity(&self, runner: &Runner) -> Option<String> {
        match self {
            StepOutput(OutputKind::Image(tag)) => {
                let path = format!(
                    "/images/{}/json",
                    crate::docker::image::encode(tag, b"-._~:/@+")
                );
                match runner.engine_get(&path) {
                    Some(Ok((200, body))) => {
                        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
                        return json["Id"].as_str().map(str::to_string);
                    }
                    Some(Ok((404, _))) => return None,
                    // Another answer or no socket: ask the CLI.
                    _ => {}
                }
                let id = runner
                    .capture(
                        &Cmd::new("docker")
                            .args(["image", "inspect", "--format", "{{.Id}}", tag.as_str()])
                            .read_only(),
                    )
                    .ok()?
                    .stdout
                    .trim()
                    .to_string();
                // An image ID, or it is not there: a query that answers nothing (as in a
                // dry run that asks nothing) is never "still there".
                (!id.is_empty()).then_some(id)
            }
            StepOutput(OutputKind::Dir(dir)) => {
                if !self.exists(runner) {
                    return None;
                }
                // The same digest as a directory given as an input (paths, kinds, modes,
                // contents).
                Inputs::new().file(dir.clone()).fingerprint().ok()
            }
        }
    }
}

/// What is recorded after a step succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) fingerprint: String,
    pub(crate) output: Option<StepOutput>,
    /// [`StepOutput::identity`] of the output the step left: a later run is up to date
    /// only while the output is still that one (not merely there: a `dist/` another
    /// tool filled, or a tag moved to another image, is not this step's output).
    #[serde(default)]
    pub(crate) output_id: Option<String>,
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

    #[test]
    fn a_secret_looking_build_args_value_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let with = |value: &str| {
            Inputs::of_build(&Build::new(dir.path()).build_arg("PIP_EXTRA", value))
                .fingerprint()
                .unwrap()
        };
        assert_ne!(
            with("ghp_0123456789abcdefABCDEF0123456789abcd"),
            with("ghp_0123456789abcdefABCDEF0123456789abce")
        );
    }

    #[test]
    fn a_named_context_is_an_input_before_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let meta = dir.path().join("meta");
        let build = Build::new(dir.path())
            .build_context("meta", meta.display().to_string())
            .build_context("base", "docker-image://busybox:latest");
        // Declared while `meta` does not exist (a pipeline is declared before its steps
        // run), fingerprinted after an earlier step created it.
        let declared_early = Inputs::of_build(&build);
        let absent = declared_early.fingerprint().unwrap();
        std::fs::create_dir(&meta).unwrap();
        std::fs::write(meta.join("version.json"), "{}\n").unwrap();
        let early = declared_early.fingerprint().unwrap();
        assert_ne!(absent, early, "its appearance changes the fingerprint");
        // The next run declares it when it exists: the same fingerprint.
        assert_eq!(Inputs::of_build(&build).fingerprint().unwrap(), early);
        std::fs::write(meta.join("version.json"), "{\"v\": 2}\n").unwrap();
        assert_ne!(declared_early.fingerprint().unwrap(), early);
        // An image or URL context is no file of this machine.
        assert!(!declared_early.values.contains_key("build.context.base"));
    }

    #[test]
    fn a_dir_output_exists_only_while_it_holds_something() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Runner::new();
        let out = StepOutput::dir(dir.path().join("dist"));
        assert!(!out.exists(&runner), "missing");
        std::fs::create_dir(dir.path().join("dist")).unwrap();
        assert!(!out.exists(&runner), "empty");
        std::fs::write(dir.path().join("dist/app"), "x").unwrap();
        assert!(out.exists(&runner));
    }
}
