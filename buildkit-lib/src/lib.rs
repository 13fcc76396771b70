//! Typed build steps for Python projects' container images and desktop packages.
//!
//! `buildkit-lib` replaces the shell scripts, Dockerfile recipes and CI YAML that Python
//! projects use to build and ship: format checks, multi-stage `docker buildx` builds,
//! PyInstaller packaging, version metadata, post-build validation and clean-up. Each step
//! is a value that can describe exactly what it will run; a [`cmd::Runner`] runs it.

pub mod cleanup;
pub mod cmd;
pub mod docker;
pub mod engine;
pub mod files;
pub mod hash;
pub mod package;
pub mod pipeline;
pub mod python;
pub mod session;
pub mod validate;
pub mod version;

pub use cmd::{Cmd, CommandError, Runner, Secret};
pub use session::Session;
