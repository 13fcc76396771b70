//! Docker image builds with `docker buildx build`, and the steps around them.
//!
//! [`build::Build`] is one build as plain data (its command line, pre-flight checks and typed
//! result); [`cache`] and [`tags`] are the values it is made of (with image references,
//! parsed crate-privately, an error saying why one cannot be used);
//! [`builder`] and [`registry`] drive buildx builders and registries (pushes with
//! retries, `imagetools`); crate-private parts read typed facts about images and a
//! Dockerfile's stages;
//! [`explain`] says why each instruction was rebuilt;
//! [`fanout`] builds one image's platforms on several engines and merges them; [`bake`]
//! writes and runs bake files; [`checks`] runs BuildKit's own Dockerfile checks
//! (`--call=check`) for a build.
//!
//! Each item has one path, in the module of its job (`docker::build::Build`,
//! `docker::registry::Push`): nothing is re-exported here, so that an item named for what
//! it does in its module (`Push`, `BuildCheck`) keeps that module's name.

pub mod bake;
pub mod build;
pub mod builder;
pub mod cache;
pub mod checks;
pub(crate) mod dockerfile;
pub mod explain;
pub mod fanout;
pub(crate) mod image;
pub(crate) mod reference;
pub mod registry;
pub mod tags;
