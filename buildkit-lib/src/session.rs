//! Who owns what: the project and run identity stamped as labels on everything created.
//!
//! Every container and image the library creates carries [`PROJECT_LABEL`] and
//! [`RUN_LABEL`], so clean-up can remove exactly what a project (or one run) owns and
//! nothing else.

use std::time::{SystemTime, UNIX_EPOCH};

/// Label naming the project that created a container or image.
pub const PROJECT_LABEL: &str = "dev.buildkit-lib.project";
/// Label naming the run that created a container or image.
pub const RUN_LABEL: &str = "dev.buildkit-lib.run";

/// The identity of one run of one project: [`Session::new`] makes a unique run id; a
/// fixed one (a golden test, a resumed run) is set on [`Session::run_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// Project name (lower-case, usable in container names).
    pub(crate) project: String,
    /// Unique id of this run.
    pub run_id: String,
}

impl Session {
    /// A new run of `project`, with an id unique on this machine.
    pub fn new(project: impl Into<String>) -> Session {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Session {
            project: project.into(),
            run_id: format!(
                "{}-{}-{:03}",
                now.as_secs(),
                std::process::id(),
                now.subsec_millis()
            ),
        }
    }

    /// `--label` arguments for `docker run` / `docker create` / `docker buildx build`.
    pub(crate) fn label_args(&self) -> Vec<String> {
        vec![
            "--label".into(),
            format!("{PROJECT_LABEL}={}", self.project),
            "--label".into(),
            format!("{RUN_LABEL}={}", self.run_id),
        ]
    }

    /// A container name unique to this run: `<project>_<purpose>_<run id>`.
    pub fn container_name(&self, purpose: &str) -> String {
        format!("{}_{}_{}", self.project, purpose, self.run_id)
    }
}
