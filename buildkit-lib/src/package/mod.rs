//! PyInstaller packaging through three image stages (base, runtime, package) into `dist/`.
//!
//! [`Stages`] builds the base and runtime images, each tagged and rebuildable alone;
//! [`Package`] runs PyInstaller (mounted or fully isolated) and swaps the checked
//! artifacts into `dist/` atomically, reporting path, size and sha256 of each file.

pub mod artifacts;
pub mod disk;
pub mod dist;
pub mod pyinstaller;
pub mod stages;

pub use artifacts::{collect, Artifact, ArtifactReport};
pub use disk::{disk_full_line, is_disk_full};
pub use dist::{DistComparison, DistDifference, Export, Mode, Package, REPRODUCIBLE_HASH_SEED};
pub use pyinstaller::{Bundle, Entry, PyInstaller};
pub use stages::{download_wheels_command, Stage, Stages, WHEELS_CONTEXT};
