//! Where the fixtures' Python lives, for the format steps.

use std::path::{Path, PathBuf};

/// The Python source folders of the fixtures, relative to the repository root.
pub fn python_paths(root: &Path) -> Vec<PathBuf> {
    ["fixtures/webapp/src", "fixtures/desktop/src"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| root.join(p).exists())
        .collect()
}
