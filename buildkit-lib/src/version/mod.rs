//! Version metadata (`version.json`), git facts, semver bumps and releases.
//!
//! One typed model replaces the usual pair of disagreeing scripts: [`VersionFile`] loads,
//! validates, stamps and saves `version.json` keeping every field in its order;
//! [`GitFacts`] asks git for commit, branch and dirty state; [`Bump`] computes the next
//! version; [`Release`] plans and carries out a release (version, CHANGELOG, commit, tag).
//!
//! Decisions worth knowing:
//! - `build_date` is UTC `YYYY-MM-DDTHH:MM:SS.ffffff`; with `SOURCE_DATE_EPOCH` set it is
//!   that instant ([`build_time`]); hand the same value to the image build as the
//!   `SOURCE_DATE_EPOCH` build argument.
//! - `git_commit` is git's short hash unless [`VersionFile::stamp`] is asked for the full
//!   one; in a detached
//!   HEAD `git_branch` is `"HEAD (detached)"` and [`GitFacts::branch`] is `None`.
//! - `git_dirty` is written when asked, and always kept current once present.
//! - `pre` on a release version starts the next patch's `rc.1`; `release` on a release
//!   version is an error.
//! - A release needs entries under `## [Unreleased]`, except when it promotes a
//!   pre-release (`1.2.0-rc.2` → `1.2.0`). It refuses a dirty work tree (tracked files),
//!   a detached HEAD and an existing tag, and commits only the two files it changed.
//!
//! Image tag rules need only plain values: [`VersionFile::version`] (a
//! `semver::Version`), [`GitFacts::short_commit`] and [`GitFacts::branch`].

mod bump;
mod changelog;
mod diff;
mod file;
pub(crate) mod git;
mod release;

pub use crate::time::{build_time, rfc3339};
pub use bump::Bump;
pub use file::VersionFile;
pub(crate) use git::last_commit_time;
pub use git::GitFacts;
pub use release::{Release, ReleasePlan};
