//! Post-build validation and monitoring: smoke tests, size budgets, build context audit, security checks, build cache.
