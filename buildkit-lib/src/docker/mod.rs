//! Docker image builds with `docker buildx build`, and the steps around them.
//!
//! [`Build`] is one build as plain data (its command line, pre-flight checks and typed
//! result); [`Cache`] and [`TagRules`] are the values it is made of (image references are
//! parsed crate-privately: an error says why one cannot be used); [`BuilderCreate`],
//! [`Push`] and [`ImagetoolsCreate`] drive buildx builders and registries (pushes with
//! retries, `imagetools`); crate-private parts read typed facts about images and a
//! Dockerfile's stages; [`Explanation`] and [`Cause`] say why each instruction was
//! rebuilt; [`FanOut`] builds one image's platforms on several engines and merges them;
//! [`Bake`] and [`BakeFile`] write and run bake files; [`BuildCheck`] runs BuildKit's own
//! Dockerfile checks (`--call=check`) for a build.
//!
//! The files are split by job (`build/`, `bake/`, `explain/`, ...), but they are one
//! public module: every item is `docker::Name`, with no second level to learn.

pub(crate) mod bake;
pub use bake::{Bake, BakeFile};
pub(crate) mod build;
pub use build::{oci_labels, Build, BuildFailed, BuildResult, Output};
pub(crate) mod builder;
pub use builder::{BuilderCreate, CreatedBuilder, NodeSpec};
pub(crate) mod cache;
pub use cache::Cache;
pub(crate) mod checks;
pub use checks::{BuildCheck, CheckReport};
pub(crate) mod dockerfile;
pub(crate) mod explain;
#[cfg(feature = "bench-internals")]
pub use explain::bench;
pub use explain::{CacheExportFailed, CacheImport, Cause, Explanation, InstructionRow};
pub(crate) mod fanout;
pub use fanout::{FanOut, FanOutError};
pub(crate) mod image;
pub(crate) mod reference;
pub(crate) mod registry;
pub use registry::{ImagetoolsCreate, Push};
pub(crate) mod tags;
pub use tags::TagRules;
