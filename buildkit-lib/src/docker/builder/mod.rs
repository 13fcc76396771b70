//! Buildx builders, typed: `create` (drivers `docker`, `docker-container`, `remote` with
//! TLS files, `kubernetes`), multi-node builders ([`BuilderCreate::node`]: one node per
//! machine or cluster, each with its platforms, created with `--append`), `use`,
//! `inspect`, `rm`, `ls`.
//!
//! Each is a command line as data plus a function that runs it, so a CI setup can be
//! printed and golden-tested before anything runs. A builder with nodes for several
//! platforms is BuildKit's own way of spreading a build over machines: a
//! `docker buildx build --builder NAME --platform linux/amd64,linux/arm64` sends each
//! platform to the node that declares it, and buildx merges the result.
//!
//! Every node of one builder has the same driver (buildx refuses
//! `existing instance ... but has mismatched driver`); a BuildKit daemon running in a
//! container can still join a `remote` builder as `docker-container://CONTAINER`.
//!
//! [`BuilderCreate::create`] returns a [`CreatedBuilder`]: the builder this run made,
//! removed when it is dropped and when the run is cancelled (a Ctrl-C too, once the
//! program's `main` cancels its run on signals with [`crate::cmd::Cancel::on_signals`]); a
//! builder the user made is never removed.
//! Failures buildx reports in its own words (a TLS handshake refused, a builder image
//! that is neither local nor pullable, a name that is taken) are explained in ours.
//!
//! # Layout
//!
//! One job per file, each item re-exported here (`docker::builder::explain`): `driver`
//! (the drivers and a remote builder's TLS files), `create` (creating builders and
//! removing the ones a run made), `diagnose` (buildx's failures in our words) and `manage`
//! (use, rm, inspect, prune, ls), `versions` (buildx's, the builder's BuildKit and the
//! engine's versions, which the library's choices depend on). Only `create` depends on the
//! others.

mod create;
mod diagnose;
mod driver;
mod manage;
mod versions;

pub use create::{BuilderCreate, CreatedBuilder, NodeSpec};
pub(crate) use diagnose::{connection_error, explain};
pub use driver::Driver;
pub(crate) use manage::inspect_cmd;
pub(crate) use versions::{buildx_version, loose_version, BuilderVersions};
