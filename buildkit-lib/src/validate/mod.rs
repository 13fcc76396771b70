//! Post-build validation and monitoring: smoke tests, size budgets, build context audit, security checks, build cache.
//!
//! Each check is a typed step that decides pass or fail with numbers: [`context`] lists
//! what `.dockerignore` lets into the build context (exactly as BuildKit does), [`size`]
//! holds an image to a byte budget and keeps its history and chart, [`security`] runs our
//! own image checks and the trivy / Docker Scout adapters, and [`cache`] reads and prunes
//! the build cache.
pub mod cache;
pub mod context;
pub mod reproducible;
pub mod security;
pub mod size;
pub mod smoke;
