//! Clean-up of containers, images and build folders that the project owns, and nothing
//! else (the engine's build cache, shared by every project, is `validate::Prune`'s).
//!
//! Ownership comes from the project label every resource the library creates carries
//! ([`crate::session::PROJECT_LABEL`]), and, for resources
//! made by older scripts, from name selectors matched on our side, anchored, on whole
//! names (`select.rs`). The only filters handed to the engine are `label=K=V` (an exact
//! comparison) and `ancestor=<image id>` (to find the containers using an image). A
//! [`Cleanup`] describes the selection and is a [`Step`]: [`Cleanup::list`] lists exactly
//! what would go, with sizes, as a [`CleanupPlan`], itself a step whose run removes exactly
//! that and returns a [`Summary`]. A dry run asks the engine nothing unless its runner lets queries run
//! ([`Runner::dry_run_queries`]): without the answers, its plan shows the listing queries
//! and the directories only.

mod dirs;
mod plan;
mod select;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::Runner;
use crate::plan::Step;

pub use plan::{CleanupPlan, Summary};
pub(crate) use select::{ImagePattern, NamePrefix};

/// The kinds of resources a clean-up can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub(crate) enum Kind {
    /// Containers (stopped first when running).
    Containers,
    /// Tagged images.
    Images,
    /// Untagged (dangling) images carrying the project's label.
    DanglingImages,
    /// Build folders such as `dist/` and `build/` inside the project root.
    Directories,
}

/// The label that makes a resource ours: the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// Value of [`crate::session::PROJECT_LABEL`].
    pub(crate) project: String,
}

/// A clean-up selection: what is ours, which kinds to remove, and how.
///
/// # Example
///
/// ```no_run
/// use buildkit_lib::cleanup::Cleanup;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// // Everything project "myapp" created: listed first (the listing asks the engine), then
/// // removed. A dry run that lets queries run lists for real and removes nothing.
/// let dry = Runner::new().dry_run(true).dry_run_queries(true);
/// println!("{}", Cleanup::for_project("myapp").list(&dry)?);
/// let summary = Cleanup::for_project("myapp").run(&Runner::new())?;
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Cleanup {
    /// Resources carrying these labels are selected.
    pub(crate) owner: Option<Owner>,
    /// The kinds of resources removed.
    pub(crate) kinds: BTreeSet<Kind>,
    /// Containers selected by name (made by older scripts, without labels).
    pub(crate) container_names: Vec<NamePrefix>,
    /// Images selected by `repository[:tag]` (made by older scripts, without labels).
    pub(crate) image_names: Vec<ImagePattern>,
    /// The project root that directories must lie inside.
    pub(crate) root: Option<PathBuf>,
    /// Directories to remove, relative to the root (`dist`, `build`).
    pub(crate) directories: Vec<PathBuf>,
    /// Remove images even when a container still uses them (`docker rmi --force`).
    pub(crate) force: bool,
}

impl Cleanup {}

impl Cleanup {
    /// Nothing selected yet.
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// Containers, tagged images and dangling images labelled with `project`.
    pub fn for_project(project: impl Into<String>) -> Cleanup {
        Cleanup {
            owner: Some(Owner {
                project: project.into(),
            }),
            kinds: [Kind::Containers, Kind::Images, Kind::DanglingImages].into(),
            ..Cleanup::default()
        }
    }

    /// Also containers whose whole name starts with `prefix` (matched on our side, anchored,
    /// on whole names: `app_` selects `app_1`, not `myapp_1`).
    pub fn container_prefix(mut self, prefix: &str) -> Result<Cleanup> {
        self.container_names.push(NamePrefix::new(prefix)?);
        self.kinds.insert(Kind::Containers);
        Ok(self)
    }

    /// Also images matching `pattern`: `repo`, `repo:tag` or `repo:tag-prefix*` (matched on
    /// our side, on whole repository names).
    pub fn images(mut self, pattern: &str) -> Result<Cleanup> {
        self.image_names.push(ImagePattern::new(pattern)?);
        self.kinds.insert(Kind::Images);
        Ok(self)
    }

    /// Also the directories `dirs` (such as `["dist", "build"]`) inside `root`.
    pub fn directories<I, P>(mut self, root: impl Into<PathBuf>, dirs: I) -> Cleanup
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.root = Some(root.into());
        self.directories.extend(dirs.into_iter().map(Into::into));
        self.kinds.insert(Kind::Directories);
        self
    }

    /// Removes images even when a container uses them.
    pub fn force(mut self, force: bool) -> Cleanup {
        self.force = force;
        self
    }

    /// Lists exactly what would be removed, with sizes, and what is kept and why. Runs
    /// only read-only queries (in a dry run only when the runner lets queries run,
    /// [`Runner::dry_run_queries`]); fails, removing nothing, on a directory outside the
    /// project root.
    pub fn list(&self, runner: &Runner) -> Result<CleanupPlan> {
        plan::make(self, runner)
    }
}

impl Step for Cleanup {
    type Output = Summary;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &Summary) -> Option<String> {
        Some(output.to_string())
    }

    /// Lists ([`Cleanup::list`]), says what it will remove, then removes it
    /// (the [`CleanupPlan`]'s run).
    fn run(&self, runner: &Runner) -> Result<Summary> {
        let listing = self.list(runner)?;
        runner.note(&listing.to_string());
        listing.execute(runner)
    }
}
