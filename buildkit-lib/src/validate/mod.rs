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

use std::fmt;

/// What a check makes of what it found: a size against its budget
/// ([`size::SizeReport::outcome`]), a scan against its threshold
/// ([`security::Threshold::verdict`]).
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
