//! PyInstaller packaging through three image stages (base, runtime, package) into `dist/`.
//!
//! [`Stages`] builds the base and runtime images, each tagged and rebuildable alone;
//! [`Package`] runs PyInstaller (mounted or fully isolated) and swaps the checked
//! artifacts into `dist/` atomically, reporting path, size and sha256 of each file.

mod artifacts;
mod disk;
mod dist;
mod pyinstaller;
mod stages;

pub use crate::files::StagedDir;
pub use artifacts::{collect, Artifact, ArtifactReport};
pub use dist::{
    DistComparison, DistDifference, Export, Mode, Package, OUT_DIR, REPRODUCIBLE_HASH_SEED,
    SOURCE_DIR, WORK_DIR,
};
pub use pyinstaller::{Bundle, Entry, PyInstaller, SPEC_DIR};
pub use stages::{download_wheels_command, Stage, Stages, WHEELS_CONTEXT};
