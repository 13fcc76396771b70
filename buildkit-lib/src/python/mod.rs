//! Python tool steps: pinned black/isort format checks, hadolint, and test commands.
//!
//! The tools run from a [`ToolEnv`], a virtual environment the library creates once under
//! the target directory and reuses while the pins stay the same, so checks never depend on
//! what is on `PATH`.

pub mod format;
pub mod lint;
pub mod test;
pub mod venv;

pub use format::{check_all, Black, FormatChecks, FormatError, Isort, Mode};
pub use lint::{Finding, Hadolint, Level};
pub use test::{PythonTest, TestPlace};
pub use venv::{ToolEnv, Tools};
