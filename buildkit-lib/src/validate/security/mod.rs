//! Security checks on a built image: our own checks that always run (root user, secrets in
//! the image configuration and history, no `HEALTHCHECK`), and adapters for trivy and
//! Docker Scout whose output is read into the same typed findings.
//!
//! Every check yields [`Finding`]s with a [`Severity`]; a [`Threshold`] turns a
//! [`ScanReport`] into pass or fail. A scanner that is not installed is an error saying so
//! and how to install it, never a clean report.
//!
//! The submodules are private and split by job; every public item is re-exported here, so
//! it has one path (`validate::security::Trivy`): `model` holds findings, severities,
//! reports and thresholds; `builtin` the library's own checks; `trivy` and `scout` the
//! scanner adapters.

mod builtin;
mod model;
mod scout;
mod trivy;

pub use builtin::{builtin_findings, check_image, find_token, mask, secret_name};
pub use model::{Finding, ScanReport, ScannerMissing, Severity, SeverityCounts, Source, Threshold};
pub use scout::{parse_scout_sarif, Scout};
pub use trivy::{parse_trivy, Trivy};
