//! Buildx builders, typed: `create` (drivers `docker`, `docker-container`, `remote` with
//! TLS files, `kubernetes`), multi-node builders ([`BuilderCreate::node`]: one node per
//! machine or cluster, each with its platforms, created with `--append`), `use`,
//! `inspect`, `rm`, `ls`.
//!
//! What users need to know about nodes, drivers, cleanup and errors is documented on
//! [`BuilderCreate`].
//!
//! # Layout
//!
//! One job per file, each item re-exported here (the public ones flat from `docker`:
//! `docker::BuilderCreate`): `driver` (the drivers and a remote builder's TLS files),
//! `create` (creating builders and removing the ones a run made), `diagnose` (buildx's
//! failures in our words) and `manage` (use, rm, inspect, prune, ls), `versions` (buildx's,
//! the builder's BuildKit and the engine's versions, which the library's choices depend
//! on). Only `create` depends on the others.

mod create;
mod diagnose;
mod driver;
mod manage;
mod versions;

pub use create::{BuilderCreate, CreatedBuilder, NodeSpec};
pub(crate) use diagnose::{connection_error, explain};
pub(crate) use manage::inspect_cmd;
pub(crate) use versions::{buildx_version, loose_version, BuilderVersions};
