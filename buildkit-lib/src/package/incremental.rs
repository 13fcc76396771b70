//! Incremental packaging (mounted mode): which path a packaging takes, and why.
//!
//! A [`Package`](super::Package) with a state folder ([`Package::incremental`]
//! (super::Package::incremental)) keeps there, between runs, PyInstaller's work folder,
//! a cache of the one-file archive's compressed entries, and a [`Record`] of what the
//! last successful packaging was made from: the runtime image's layers and environment,
//! PyInstaller's arguments, the sha256 of every file of the context, the import
//! fingerprint of every application module in PyInstaller's graph ([`super::imports`])
//! and the sha256 of every file it left in `dist`. The next run compares and takes one of three [`Path`]s:
//!
//! - **up to date**: nothing changed and `dist` holds what the last packaging left;
//!   PyInstaller does not run;
//! - **incremental**: only application modules already in the graph changed, and their
//!   imports did not: PyInstaller reuses its analysis, compiles and archives again;
//! - **full**: anything else (no record, a new or removed file, a changed spec, data
//!   file, hook or requirement, a new or removed import, a module that imports by name
//!   or loads libraries, a new runtime image, other arguments): PyInstaller's `--clean`
//!   run over an emptied work folder.
//!
//! Files are compared by content, never by modification time. In both running paths the
//! archive's compressed entries come from the cache when their bytes are the same
//! (see `incremental.py`): compression is a function of the bytes, so that reuse needs
//! no proof. The decision is pure ([`decide`]); the step writes the record only after a
//! packaging succeeded and removes it when one fails.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::imports::{fingerprint, Fingerprint};

/// The runner script, written into the state folder and run in the runtime image.
pub(crate) const SCRIPT: &str = include_str!("incremental.py");
/// Where the state folder is mounted in the package container.
pub(crate) const STATE_MOUNT: &str = "/tmp/buildkit-lib";
/// The record's format; another format takes the full path.
const FORMAT: u32 = 1;

/// What the last successful packaging was made from, and what it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// [`FORMAT`].
    pub format: u32,
    /// Everything besides the files that decides PyInstaller's output.
    pub key: Key,
    /// sha256 of each file of the context, by path relative to it.
    pub files: BTreeMap<String, String>,
    /// The import fingerprint of each application module in PyInstaller's graph.
    pub modules: BTreeMap<String, Fingerprint>,
    /// sha256 of each file left in `dist`, by path relative to it.
    pub outputs: BTreeMap<String, String>,
}

/// Everything besides the context's files that decides PyInstaller's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Key {
    /// The digest of the runtime image's layers and environment (Python, PyInstaller,
    /// hooks, dependencies).
    pub runtime: String,
    /// PyInstaller's arguments.
    pub args: Vec<String>,
    /// The reproducible-build environment (`SOURCE_DATE_EPOCH`, `PYTHONHASHSEED`).
    pub env: Vec<(String, String)>,
    /// sha256 of the runner script.
    pub script: String,
}

/// The path a packaging takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Path {
    /// Nothing changed and `dist` holds the last packaging's files.
    UpToDate,
    /// Only these application modules changed (paths relative to the context), with
    /// their imports unchanged.
    Incremental(Vec<String>),
    /// The full packaging, and why.
    Full(String),
}

impl Path {
    /// The step log's line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Path::UpToDate => "packaging: up to date (no source file, argument or runtime \
                               image changed, and dist holds the last packaging's files)"
                .into(),
            Path::Incremental(changed) if changed.is_empty() => {
                "packaging: incremental, analysis reused (no source file changed; dist differs \
                 from the last packaging)"
                    .into()
            }
            Path::Incremental(changed) => format!(
                "packaging: incremental, analysis reused: {} changed, imports unchanged",
                list(changed)
            ),
            Path::Full(why) => format!("packaging: full, {why}"),
        }
    }
}

/// Up to three names, then a count.
fn list(names: &[String]) -> String {
    let mut out = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        out.push_str(&format!(" (+{} more)", names.len() - 3));
    }
    out
}

/// The context's files now, and what they import.
pub(crate) struct Snapshot {
    /// sha256 by relative path.
    pub files: BTreeMap<String, String>,
    /// The context (absolute).
    pub root: PathBuf,
}

impl Snapshot {
    /// Hashes every file under `root` except version control, Python caches and the
    /// folders in `skip` (absolute: `dist`, staging folders, the state folder).
    pub(crate) fn take(root: &FsPath, skip: &[PathBuf]) -> Result<Snapshot> {
        let mut files = BTreeMap::new();
        let walk = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                !(e.file_type().is_dir()
                    && (name == ".git"
                        || name == "__pycache__"
                        || skip.iter().any(|s| s == e.path())
                        || name.starts_with(".dist.")))
            });
        for entry in walk {
            let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
            if !entry.file_type().is_file() || entry.path().extension() == Some("pyc".as_ref()) {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            let sum = crate::hash::sha256_file(entry.path())
                .with_context(|| format!("cannot hash {}", entry.path().display()))?;
            files.insert(rel, sum);
        }
        Ok(Snapshot {
            files,
            root: root.to_path_buf(),
        })
    }

    /// The fingerprint of the module at `rel`.
    fn fingerprint(&self, rel: &str) -> Result<Fingerprint> {
        let path = self.root.join(rel);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        fingerprint(&text)
    }

    /// The fingerprints of `modules` (relative paths that exist in the snapshot); a
    /// module that cannot be read or tokenized gets none, so any change to it takes the
    /// full path.
    pub(crate) fn fingerprints(&self, modules: &[String]) -> BTreeMap<String, Fingerprint> {
        modules
            .iter()
            .filter(|m| self.files.contains_key(*m))
            .filter_map(|m| Some((m.clone(), self.fingerprint(m).ok()?)))
            .collect()
    }
}

/// The path to take: from the last record (if any), the key and files now, whether
/// PyInstaller's work folder is still there, and `dist`'s files now (sha256 by relative
/// path; `None` when it cannot be read).
pub(crate) fn decide(
    previous: Option<&Record>,
    key: &Key,
    now: &Snapshot,
    work_folder: bool,
    dist: Option<&BTreeMap<String, String>>,
) -> Path {
    let Some(previous) = previous else {
        return Path::Full("no earlier packaging is recorded in the state folder".into());
    };
    if previous.format != FORMAT || previous.key.script != key.script {
        return Path::Full("the incremental runner changed since the last packaging".into());
    }
    if previous.key.runtime != key.runtime {
        return Path::Full(format!(
            "the runtime image's layers or environment changed ({} → {}): Python, PyInstaller, \
             a hook or a dependency may differ",
            short(&previous.key.runtime),
            short(&key.runtime)
        ));
    }
    if previous.key.args != key.args {
        return Path::Full(format!(
            "PyInstaller's arguments changed (`{}` → `{}`)",
            previous.key.args.join(" "),
            key.args.join(" ")
        ));
    }
    if previous.key.env != key.env {
        return Path::Full("the reproducible-build environment changed".into());
    }
    if !work_folder {
        return Path::Full("PyInstaller's work folder is gone".into());
    }
    let mut changed = Vec::new();
    for (rel, sum) in &now.files {
        match previous.files.get(rel) {
            None => return Path::Full(format!("{rel} was added")),
            Some(old) if old != sum => changed.push(rel.clone()),
            Some(_) => {}
        }
    }
    if let Some(rel) = previous.files.keys().find(|r| !now.files.contains_key(*r)) {
        return Path::Full(format!("{rel} was removed"));
    }
    if changed.is_empty() {
        return match dist {
            Some(files) if *files == previous.outputs => Path::UpToDate,
            _ => Path::Incremental(Vec::new()),
        };
    }
    for rel in &changed {
        if !rel.ends_with(".py") {
            return Path::Full(format!("{rel} changed (not an application module)"));
        }
        let Some(old) = previous.modules.get(rel) else {
            return Path::Full(format!(
                "{rel} changed and is not a module of the packaged application (a spec, a \
                 hook or a tool may read it)"
            ));
        };
        let new = match now.fingerprint(rel) {
            Ok(new) => new,
            Err(e) => return Path::Full(format!("cannot read the imports of {rel}: {e:#}")),
        };
        if let Some(why) = new.difference(old) {
            return Path::Full(format!("{rel}: {why}"));
        }
    }
    Path::Incremental(changed)
}

/// `sha256:0123456789ab` from an image ID.
fn short(id: &str) -> &str {
    &id[..id.len().min(19)]
}

/// What `incremental.py` reports after a packaging.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RunResult {
    /// `reused` or `rebuilt`.
    #[serde(default)]
    pub analysis: String,
    /// The modules of PyInstaller's graph (paths in the container).
    #[serde(default)]
    pub modules: Vec<String>,
}

impl RunResult {
    /// The graph's modules under the source mount, relative to it.
    pub(crate) fn application_modules(&self, source_dir: &str) -> Vec<String> {
        let prefix = format!("{}/", source_dir.trim_end_matches('/'));
        self.modules
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

/// The record for a packaging that succeeded.
pub(crate) fn record(
    key: Key,
    now: &Snapshot,
    modules: &[String],
    outputs: BTreeMap<String, String>,
) -> Record {
    Record {
        format: FORMAT,
        key,
        files: now.files.clone(),
        modules: now.fingerprints(modules),
        outputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            runtime: "sha256:aaaa".into(),
            args: vec!["app.spec".into()],
            env: Vec::new(),
            script: "s".into(),
        }
    }

    /// A context on disk with `files`, and its snapshot.
    fn context(files: &[(&str, &str)]) -> (tempfile::TempDir, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let snap = Snapshot::take(dir.path(), &[]).unwrap();
        (dir, snap)
    }

    const BASE: &[(&str, &str)] = &[
        ("app.spec", "a = Analysis(['src/app/__main__.py'])\n"),
        ("src/app/__main__.py", "from app import ui\nui.main()\n"),
        (
            "src/app/ui.py",
            "import os\nMARGIN = 12\ndef main():\n    pass\n",
        ),
        ("src/app/icon.png", "png"),
        ("tools/gen.py", "print(1)\n"),
    ];

    fn previous() -> Record {
        let (_dir, snap) = context(BASE);
        let outputs = BTreeMap::from([("app".to_string(), "out".to_string())]);
        record(
            key(),
            &snap,
            &["src/app/__main__.py".into(), "src/app/ui.py".into()],
            outputs,
        )
    }

    fn with(change: &[(&str, Option<&str>)]) -> Path {
        let mut files: BTreeMap<&str, &str> = BASE.iter().cloned().collect();
        for (rel, text) in change {
            match text {
                Some(t) => files.insert(rel, t),
                None => files.remove(rel),
            };
        }
        let files: Vec<_> = files.into_iter().collect();
        let (_dir, snap) = context(&files);
        let outputs = BTreeMap::from([("app".to_string(), "out".to_string())]);
        decide(Some(&previous()), &key(), &snap, true, Some(&outputs))
    }

    #[test]
    fn only_a_body_edit_of_a_graph_module_is_incremental() {
        assert_eq!(with(&[]), Path::UpToDate);
        assert_eq!(
            with(&[(
                "src/app/ui.py",
                Some("import os\nMARGIN = 37\ndef main():\n    pass\n")
            )]),
            Path::Incremental(vec!["src/app/ui.py".into()])
        );
        let full = |change: &[(&str, Option<&str>)], why: &str| {
            assert_eq!(with(change), Path::Full(why.into()), "{change:?}");
        };
        full(
            &[(
                "src/app/ui.py",
                Some("import os\nimport json\nMARGIN = 1\n"),
            )],
            "src/app/ui.py: its imports changed (+import json)",
        );
        full(
            &[("src/app/ui.py", Some("MARGIN = 1\n"))],
            "src/app/ui.py: its imports changed (-import os)",
        );
        full(
            &[("src/app/new.py", Some("x = 1\n"))],
            "src/app/new.py was added",
        );
        full(&[("src/app/ui.py", None)], "src/app/ui.py was removed");
        full(
            &[("src/app/icon.png", Some("png2"))],
            "src/app/icon.png changed (not an application module)",
        );
        full(
            &[("app.spec", Some("a = Analysis(['x'])\n"))],
            "app.spec changed (not an application module)",
        );
        full(
            &[("tools/gen.py", Some("print(2)\n"))],
            "tools/gen.py changed and is not a module of the packaged application (a spec, a \
             hook or a tool may read it)",
        );
        full(
            &[("src/app/ui.py", Some("import os\nx = __import__('json')\n"))],
            "src/app/ui.py: it uses __import__ (its effect on the analysis cannot be proven \
             from its imports)",
        );
    }

    #[test]
    fn anything_besides_the_files_takes_the_full_path() {
        let (_dir, snap) = context(BASE);
        let outputs = BTreeMap::from([("app".to_string(), "out".to_string())]);
        let prev = previous();
        assert_eq!(
            decide(None, &key(), &snap, true, Some(&outputs)),
            Path::Full("no earlier packaging is recorded in the state folder".into())
        );
        let mut other = key();
        other.runtime = "sha256:bbbb".into();
        assert!(matches!(
            decide(Some(&prev), &other, &snap, true, Some(&outputs)),
            Path::Full(why) if why.starts_with("the runtime image's layers or environment changed (sha256:aaaa → sha256:bbbb)")
        ));
        let mut other = key();
        other.args.insert(0, "--log-level=WARN".into());
        assert!(matches!(
            decide(Some(&prev), &other, &snap, true, Some(&outputs)),
            Path::Full(why) if why.starts_with("PyInstaller's arguments changed")
        ));
        let mut other = key();
        other.env.push(("SOURCE_DATE_EPOCH".into(), "1".into()));
        assert!(matches!(
            decide(Some(&prev), &other, &snap, true, Some(&outputs)),
            Path::Full(_)
        ));
        assert_eq!(
            decide(Some(&prev), &key(), &snap, false, Some(&outputs)),
            Path::Full("PyInstaller's work folder is gone".into())
        );
        // dist changed by hand (or lost): not up to date, packaged again.
        let touched = BTreeMap::from([("app".to_string(), "edited".to_string())]);
        assert_eq!(
            decide(Some(&prev), &key(), &snap, true, Some(&touched)),
            Path::Incremental(Vec::new())
        );
        assert_eq!(
            decide(Some(&prev), &key(), &snap, true, None),
            Path::Incremental(Vec::new())
        );
    }

    #[test]
    fn a_file_with_an_old_modification_time_is_still_a_change() {
        // Content decides, not times: the edited file gets the old file's mtime back.
        let (dir, _) = context(BASE);
        let path = dir.path().join("src/app/ui.py");
        let old = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "import os\nMARGIN = 99\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let snap = Snapshot::take(dir.path(), &[]).unwrap();
        let outputs = BTreeMap::from([("app".to_string(), "out".to_string())]);
        assert_eq!(
            decide(Some(&previous()), &key(), &snap, true, Some(&outputs)),
            Path::Incremental(vec!["src/app/ui.py".into()])
        );
    }

    #[test]
    fn snapshots_skip_caches_dist_and_version_control() {
        let (dir, _) = context(&[
            ("a.py", "x = 1\n"),
            (".git/HEAD", "ref"),
            ("src/__pycache__/a.cpython-311.pyc", "pyc"),
            ("dist/app", "bin"),
            (".dist.raw-1/app", "bin"),
        ]);
        let snap = Snapshot::take(dir.path(), &[dir.path().join("dist")]).unwrap();
        assert_eq!(snap.files.keys().collect::<Vec<_>>(), vec!["a.py"]);
    }
}
