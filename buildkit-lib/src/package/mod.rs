//! PyInstaller packaging through three image stages (base, runtime, package) into `dist/`.
//!
//! [`Stages`] builds the base and runtime images, each tagged and rebuildable alone;
//! [`Package`] runs PyInstaller (mounted or fully isolated) and swaps the checked
//! artifacts into `dist/` atomically, reporting path, size and sha256 of each file.

mod artifacts;
mod disk;
mod dist;
mod imports;
mod incremental;
mod pyinstaller;
mod stages;

pub use artifacts::ArtifactReport;
pub(crate) use dist::DistComparison;
pub use dist::{Mode, Package};
pub use pyinstaller::PyInstaller;
pub use stages::{Stage, Stages};
