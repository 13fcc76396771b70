//! `docker buildx bake`: a pipeline's image builds as one `docker-bake.json`, built in one
//! command.
//!
//! [`BakeFile`] collects targets (each a [`Build`], [`BakeFile::build`]) and groups
//! ([`BakeFile::group`]) and writes the file, and [`Bake`]
//! runs `docker buildx bake` on it ([`Bake::run`](crate::plan::Step::run), with a typed [`BakeTargetResult`] per target read from
//! `--metadata-file`) or asks buildx how it reads it ([`Bake::print`]).
//!
//! # Paths
//!
//! Bake resolves a target's `context`, named `contexts`, output and cache directories and
//! secret files against the directory it *runs in*, not the file's directory; `dockerfile`
//! is resolved against the target's `context` (an absolute one is used as it is). So the
//! builder writes every path relative to the bake file's directory, and [`Bake`] runs
//! buildx in that directory: the file works from a fresh checkout and on another machine.
//! A path that shares nothing with that directory but the filesystem root (`/tmp/..` for a
//! file under `/work`) stays absolute.
//!
//! # Network
//!
//! Bake files only gained a `network` attribute in buildx releases after 0.13; buildx
//! 0.13 silently ignores it in JSON and HCL, rejects `--set <target>.network=...`, and
//! reads it only from compose files. [`BakeFile::write`] therefore writes the network
//! modes twice: as `network` in the JSON (for newer buildx) and in a small compose file
//! beside it, `<stem>.network.compose.yaml`, that [`Bake`] passes before the JSON file
//! (`-f <stem>.network.compose.yaml -f <stem>.json`) so that every release honours it.
//!
//! # Entitlements
//!
//! From buildx 0.17 on, bake builds only what the command grants (`--allow`) beyond the
//! directory it runs in: `network.host` for a target with `network: host`, and (enforced
//! from buildx 0.20 on) `fs.read=PATH` for each local context, Dockerfile, named context,
//! local cache source and secret file outside it, `fs.write=PATH` for each local output
//! and cache destination outside it; else it stops with "additional privileges
//! requested". [`Bake`] grants exactly what the selected targets need
//! (computed from the file, never a blanket `fs=*`), on a buildx
//! that takes `--allow` (0.17 or newer, asked once per runner, or stated
//! with [`Bake::buildx_version`]); a run first creates the missing output and cache
//! directories those grants name, since buildx checks a missing path by its parent.
//! Overrides ([`Bake::set`]) count as buildx counts them: an overridden context or
//! named context is granted, an overridden output, cache or secret list needs no grant
//! (buildx grants what the command line names).
//!
//! # Layout
//!
//! One job per file, each item re-exported here (`docker::bake::Bake`): `model` is the
//! file's data (targets, groups, names, reading); `export` turns builds into that data
//! and writes it; `entitlements` computes what the targets must be granted; `run` runs a
//! written file and reads its result. `run` and `export` depend on `model`, `export` on
//! `run` (writing returns the [`Bake`] that builds the file), `entitlements` on `model`,
//! and nothing the other way round.
//!
//! [`Build`]: crate::docker::build::Build

mod entitlements;
mod export;
mod model;
mod run;

pub(crate) use model::is_local;

pub(crate) use model::sanitize_name;
pub use model::BakeFile;
pub(crate) use model::BakeTarget;
pub use run::{Bake, BakeTargetResult};
