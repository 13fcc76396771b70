//! What a typical xtask needs, in one `use buildkit_lib::prelude::*;`.
//!
//! The steps a project wires most ([`Build`], [`Smoke`], the format checks, packaging),
//! the values they take ([`Cache`], [`Secret`], [`Ready`]), the [`Pipeline`] that runs
//! them and the [`Step`] trait whose `run` and `plan` every step has. Each item keeps its
//! one home path (`docker::Build`, ...); this module only gathers them, so that an
//! xtask starts with one line.

pub use crate::cmd::{Cancel, Echo};
pub use crate::docker::build::{Build, Output};
pub use crate::docker::cache::Cache;
pub use crate::package::{Mode, Package, PyInstaller, Stages};
pub use crate::pipeline::{Inputs, Pipeline};
pub use crate::plan::{Plan, Step};
pub use crate::python::{CheckAll, Format, Hadolint, ToolEnv};
pub use crate::validate::smoke::{Ready, Smoke};
pub use crate::{Cmd, Runner, Secret, Session};
