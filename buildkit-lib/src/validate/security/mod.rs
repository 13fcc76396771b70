//! Security checks on a built image: our own checks that always run (root user, secrets in
//! the image configuration and history, no `HEALTHCHECK`), trivy (installed from PyPI into
//! the tool environment: secrets in the image layers, Dockerfile misconfigurations,
//! vulnerabilities when its database is there, CycloneDX SBOMs) and Docker Scout, whose
//! output is read into the same typed findings.
//!
//! How findings become a verdict is documented for users on [`Trivy`] (and
//! [`ScanReport::verdict`]).
//!
//! The submodules are private and split by job; every public item is re-exported here and
//! from `validate`, so it has one public path (`validate::Trivy`): `model` holds findings,
//! severities, reports, thresholds and verdicts; `builtin` the library's own checks; `trivy` the trivy
//! program and scans, `sbom` its SBOMs; `scout` the Docker Scout adapter.

mod builtin;
mod model;
mod sbom;
mod scout;
mod trivy;

pub use builtin::ImageCheck;
pub use model::{ScanFinding, ScanReport, ScannerMissing, Severity};
pub use sbom::{Component, TrivySbom};
pub use scout::Scout;
pub use trivy::Trivy;
