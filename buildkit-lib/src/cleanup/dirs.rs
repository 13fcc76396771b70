//! Build folders (`dist/`, `build/`) to remove, checked to lie strictly inside the project
//! root.
//!
//! A path is refused when it contains `..`, when it (or a symlink on the way) leads
//! outside the root, or when it is the root itself; both sides are canonicalized first.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A directory that may be removed: its canonical path, inside the canonical root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SafeDir {
    /// The path as the user gave it (for messages).
    pub(crate) given: PathBuf,
    /// The canonical path that will be removed.
    pub(crate) real: PathBuf,
}

/// Checks `path` (relative to `root`, or absolute) for removal. `Ok(None)` when it does
/// not exist.
pub(crate) fn check(root: &Path, path: &Path) -> Result<Option<SafeDir>> {
    let root_real = root
        .canonicalize()
        .with_context(|| format!("cannot resolve the project root {}", root.display()))?;
    if path.components().any(|c| c == Component::ParentDir) {
        bail!(
            "refusing to remove {}: `..` leads out of the project root {}; name a directory \
             inside it, such as `dist`",
            path.display(),
            root_real.display()
        );
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let meta = match std::fs::symlink_metadata(&joined) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", joined.display())),
    };
    let real = joined
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", joined.display()))?;
    if real == root_real {
        bail!(
            "refusing to remove {}: it is the project root itself; name a directory inside \
             it, such as `dist`",
            path.display()
        );
    }
    if !real.starts_with(&root_real) {
        let how = if meta.file_type().is_symlink() || real != joined {
            format!("it is a symlink to {}, ", real.display())
        } else {
            String::new()
        };
        bail!(
            "refusing to remove {}: {how}outside the project root {}; only directories \
             inside the project are removed",
            path.display(),
            root_real.display()
        );
    }
    if !real.is_dir() {
        bail!(
            "refusing to remove {}: it is not a directory (only build folders such as `dist` \
             and `build` are removed)",
            path.display()
        );
    }
    Ok(Some(SafeDir {
        given: path.to_path_buf(),
        real,
    }))
}

/// Bytes of the regular files under `dir`, not following symlinks.
pub(crate) fn size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dist/app")).unwrap();
        std::fs::write(root.path().join("dist/app/bin"), vec![0u8; 1000]).unwrap();
        std::fs::write(root.path().join("dist/readme"), b"hello").unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        (root, outside)
    }

    #[test]
    fn accepts_a_directory_inside_and_sizes_it() {
        let (root, _outside) = project();
        let dir = check(root.path(), Path::new("dist")).unwrap().unwrap();
        assert_eq!(dir.real, root.path().canonicalize().unwrap().join("dist"));
        assert_eq!(size(&dir.real), 1005);
        assert_eq!(check(root.path(), Path::new("build")).unwrap(), None);
    }

    #[test]
    fn refuses_parent_outside_symlink_and_root() {
        let (root, outside) = project();
        let r = root.path().canonicalize().unwrap();
        let err = check(root.path(), Path::new("../x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to remove ../x: `..` leads out of the project root {}; name a \
                 directory inside it, such as `dist`",
                r.display()
            )
        );
        let err = check(root.path(), outside.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to remove {}: outside the project root {}; only directories inside \
                 the project are removed",
                outside.path().display(),
                r.display()
            )
        );
        std::os::unix::fs::symlink(outside.path(), root.path().join("build")).unwrap();
        let err = check(root.path(), Path::new("build")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to remove build: it is a symlink to {}, outside the project root {}; \
                 only directories inside the project are removed",
                outside.path().canonicalize().unwrap().display(),
                r.display()
            )
        );
        for root_itself in [Path::new("."), Path::new(""), root.path()] {
            let err = check(root.path(), root_itself).unwrap_err().to_string();
            assert!(err.contains("it is the project root itself"), "{err}");
        }
        let err = check(root.path(), Path::new("dist/readme")).unwrap_err();
        assert!(err.to_string().contains("it is not a directory"));
    }
}
