//! `cargo xtask why [STEP]`: the explanation of the last run's image builds, in full.
//!
//! Each image build of a pipeline keeps its explanation and the inputs that decided its
//! cache in `target/buildkit/<pipeline>/why/<step>.json`; this prints them, and asks
//! nothing of the engine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use buildkit_lib::docker::Explanation;

use crate::flags;

/// `cargo xtask why`.
pub fn run(root: &Path, flags: &flags::Why) -> Result<u8> {
    let base = root.join("target/buildkit");
    let records = find(&base, flags.pipeline.as_deref(), flags.step.as_deref())?;
    if records.is_empty() {
        let what = match (&flags.pipeline, &flags.step) {
            (Some(p), Some(s)) => format!("of step `{s}` of pipeline `{p}`"),
            (Some(p), None) => format!("of pipeline `{p}`"),
            (None, Some(s)) => format!("of a step `{s}`"),
            (None, None) => "of any image build".to_string(),
        };
        bail!(
            "no build record {what} under {}/*/why/: run the pipeline first (`cargo xtask \
             build`); a build that was up to date keeps the record of its last run",
            base.display()
        );
    }
    let mut first = true;
    for (pipeline, step, path) in records {
        let explanation = Explanation::load(&path)?
            .with_context(|| format!("{} went away while reading", path.display()))?;
        // A build that explains itself as the one before leaves the record as it is: the
        // file's modification time is when the build it holds ended.
        let written = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(buildkit_lib::version::rfc3339)
            .with_context(|| format!("cannot read the time of {}", path.display()))?;
        if !first {
            println!();
        }
        first = false;
        println!("== pipeline {pipeline}, step {step} (recorded {written})");
        print!("{explanation}");
    }
    Ok(0)
}

/// The records under `base`, as (pipeline, step, path), sorted.
fn find(
    base: &Path,
    pipeline: Option<&str>,
    step: Option<&str>,
) -> Result<Vec<(String, String, PathBuf)>> {
    let mut out = Vec::new();
    let pipelines = match std::fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", base.display())),
    };
    for entry in pipelines.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if pipeline.is_some_and(|p| p != name) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(entry.path().join("why")) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if step.is_some_and(|s| file_stem(s) != stem) {
                continue;
            }
            out.push((name.clone(), stem, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The stem of a step's files under its pipeline's folder (`why/<stem>.json`): the step
/// name with every character but ASCII letters, digits, `.`, `-` and `_` as `_`, as the
/// pipeline names them.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder removed when the test ends (the xtask has no `tempfile`).
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn records_are_found_by_pipeline_and_step() {
        let dir = TempDir(std::env::temp_dir().join(format!("xtask-why-{}", std::process::id())));
        for (pipeline, step) in [
            ("build", "image"),
            ("mediaserver", "image"),
            ("build", "x_1_"),
        ] {
            let why = dir.path().join(pipeline).join("why");
            std::fs::create_dir_all(&why).unwrap();
            std::fs::write(why.join(format!("{step}.json")), "{}").unwrap();
        }
        std::fs::write(dir.path().join("build/why/image.file-hashes"), "").unwrap();
        let names = |p: Option<&str>, s: Option<&str>| -> Vec<String> {
            find(dir.path(), p, s)
                .unwrap()
                .into_iter()
                .map(|(p, s, _)| format!("{p}/{s}"))
                .collect()
        };
        assert_eq!(
            names(None, None),
            ["build/image", "build/x_1_", "mediaserver/image"]
        );
        assert_eq!(
            names(None, Some("image")),
            ["build/image", "mediaserver/image"]
        );
        assert_eq!(names(Some("build"), Some("x[1]")), ["build/x_1_"]);
        assert!(names(Some("package"), None).is_empty());
        assert!(find(&dir.path().join("none"), None, None)
            .unwrap()
            .is_empty());
    }
}
