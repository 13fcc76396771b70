//! `docker buildx bake`: a pipeline's image builds as one `docker-bake.json`, built in one
//! command.
//!
//! [`BakeFile`] collects targets (each a [`Build`], [`BakeFile::build`]) and groups
//! ([`BakeFile::group`]) and writes the file, and [`Bake`] runs `docker buildx bake` on it
//! ([`Bake::run`](crate::plan::Step::run), with a typed [`BuildResult`](crate::docker::BuildResult) per target
//! read from `--metadata-file`) or asks buildx how it reads it ([`Bake::print`]). How bake
//! resolves paths, network modes for old buildx and entitlements is documented for users
//! on [`Bake`] (its "Paths", "Network" and "Entitlements" sections).
//!
//! # Layout
//!
//! One job per file, each public item re-exported here and from `docker` (`docker::Bake`):
//! `model` is the file's data (targets, groups, names, reading); `export` turns builds
//! into that data and writes it; `entitlements` computes what the targets must be
//! granted; `run` runs a written file and reads its result. `run` and `export` depend on
//! `model`, `export` on `run` (writing returns the [`Bake`] that builds the file),
//! `entitlements` on `model`, and nothing the other way round.
//!
//! [`Build`]: crate::docker::Build

mod entitlements;
mod export;
mod model;
mod run;

pub(crate) use model::is_local;

pub(crate) use model::sanitize_name;
pub use model::BakeFile;
pub(crate) use model::BakeTarget;
pub use run::Bake;
