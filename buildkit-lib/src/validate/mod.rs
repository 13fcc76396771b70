//! Post-build validation and monitoring: smoke tests, size budgets, build context audit, security checks, build cache.
pub mod smoke;
pub mod cache;
pub mod context;
pub mod security;
pub mod size;
