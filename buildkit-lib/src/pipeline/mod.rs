//! Pipelines: steps with dependencies run in parallel, skipped when up to date, with logs and reports.
