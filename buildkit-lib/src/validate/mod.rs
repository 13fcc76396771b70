//! Post-build validation and monitoring: smoke tests, size budgets, build context audit, security checks, build cache.
//!
//! Each check is a typed step that decides pass or fail with numbers: [`audit`] lists
//! what `.dockerignore` lets into the build context (exactly as BuildKit does),
//! [`SizeCheck`] holds an image to a byte budget and keeps its history and chart,
//! [`ImageCheck`], [`Trivy`] and [`Scout`] are our own image checks and the trivy / Docker
//! Scout adapters, [`Usage`] and [`Prune`] read and prune the build cache, [`Smoke`] starts
//! the image (with its companion services, [`Smoke::service`]) and probes it, and [`Reproducible`] builds twice and
//! compares. The files are split by check; the public module is one: `validate::Name`.
pub(crate) mod cache;
pub use cache::{CacheUsage, Prune, PruneResult, Usage};
pub(crate) mod context;
pub use context::{audit, ContextAudit};
pub(crate) mod reproducible;
pub use reproducible::{ReproReport, Reproducible};
pub(crate) mod security;
pub use security::{
    Component, ImageCheck, ScanFinding, ScanReport, ScannerMissing, Scout, Severity, Trivy,
    TrivySbom,
};
pub(crate) mod size;
pub use size::{SizeCheck, SizeReport};
pub(crate) mod smoke;
pub use smoke::{PortTaken, Ready, Smoke, SmokeError, SmokeReport};

use std::fmt;

/// What a check makes of what it found: a size against its budget
/// ([`SizeReport::outcome`]), a scan against its threshold
/// ([`ScanReport::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Every part ran and the result is within the limit (a size at or under its target).
    Pass,
    /// Over the target, at or under the maximum (sizes only).
    Warn,
    /// Over the limit: a size over its maximum, more findings than a threshold allows
    /// (whether or not every part of a scan ran: what was found is real).
    Fail,
    /// A part did not run or nothing was measured (a scanner part that could not run, a
    /// plan's placeholder answers): never a pass.
    NotChecked,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::NotChecked => "not checked",
        })
    }
}
