//! Docker image builds with `docker buildx build`, and the steps around them.
//!
//! [`Build`] is one build as plain data (its command line, pre-flight checks and typed
//! result); [`cache`], [`tags`] and [`reference`](mod@reference) are the values it is made of;
//! [`builder`], [`registry`] and [`image`] drive buildx builders, registries (pushes with
//! retries, `imagetools`) and read typed facts about images; [`dockerfile`] reads stages;
//! [`fanout`] builds one image's platforms on several engines and merges them.

pub mod bake;
pub mod build;
pub mod builder;
pub mod cache;
pub mod dockerfile;
pub mod fanout;
pub mod image;
pub mod reference;
pub mod registry;
pub mod tags;

pub use bake::{
    Bake, BakeFile, BakeFileBuilder, BakeGroup, BakeResult, BakeTarget, BakeTargetResult,
};
pub use build::{oci_labels, Build, BuildResult, BuildSecret, Output, Provenance, SecretSource};
pub use cache::Cache;
pub use image::{history, ImageFacts, Layer};
pub use reference::ImageRef;
pub use registry::{Attestations, Retry};
pub use tags::{TagInput, TagRules};
