//! The release step: bump `version.json`, date the CHANGELOG, commit, tag `v<version>`.
//!
//! [`Release`] is a [`Step`]: `Release::prepare` only reads (files and read-only git
//! queries) and checks everything that can be checked up front: a clean work tree on a
//! branch, no existing tag, a valid version file and CHANGELOG, writable files. The
//! [`ReleasePlan`] it returns is plain data that prints as a report
//! (`ReleasePlan::render`); `ReleasePlan::execute` carries it out and puts both files
//! back when a git step fails. A dry run asks git nothing unless its runner lets queries
//! run ([`Runner::dry_run_queries`]): its git facts are placeholders of a clean work tree
//! on a branch without the tag.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use semver::Version;

use super::bump::Bump;
use super::changelog::release_changelog;
use super::diff::unified_diff;
use super::file::{ensure_writable, VersionFile};
use super::git::GitFacts;
use crate::cmd::{Cmd, Runner};
use crate::files::write_atomic;
use crate::plan::Step;
use crate::time::utc_date;

/// What to release: where, which files, which bump, which day.
///
/// # Example
///
/// ```no_run
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::version::{Bump, Release};
/// use buildkit_lib::Runner;
///
/// let release = Release::new(".", "version.json", "CHANGELOG.md", Bump::Minor);
/// // What it would do (no git query, no file written):
/// print!("{}", release.plan(&Runner::new())?);
/// // The checks (clean work tree, no such tag) and the new files, then the release:
/// let done = release.run(&Runner::new())?;
/// println!("released {}", done.to);
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Release {
    /// A directory of the git work tree; git commands run here.
    pub(crate) repo: PathBuf,
    /// The `version.json` to bump.
    pub(crate) version_file: PathBuf,
    /// The CHANGELOG whose Unreleased section becomes the release's.
    pub(crate) changelog: PathBuf,
    /// How to change the version.
    pub(crate) bump: Bump,
    /// The release date (its UTC day goes into the CHANGELOG heading).
    pub(crate) date: SystemTime,
}

impl Release {
    /// A release of the work tree at `repo`: bumps `version_file` as `bump` says and turns
    /// the Unreleased section of `changelog` into the release's, dated today (UTC) unless
    /// [`Release::date`] says otherwise.
    pub fn new(
        repo: impl Into<PathBuf>,
        version_file: impl Into<PathBuf>,
        changelog: impl Into<PathBuf>,
        bump: Bump,
    ) -> Release {
        Release {
            repo: repo.into(),
            version_file: version_file.into(),
            changelog: changelog.into(),
            bump,
            date: SystemTime::now(),
        }
    }

    /// The release date (its UTC day goes into the CHANGELOG heading).
    pub fn date(mut self, date: SystemTime) -> Release {
        self.date = date;
        self
    }
}

/// A release computed ahead of time: the files' new content and the git commands. Its
/// `Display` is the dry-run report: versions, the new `version.json`, the CHANGELOG diff
/// and the git commands (for a caller to print when its run is a dry run).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReleasePlan {
    /// Where the git commands run.
    pub(crate) repo: PathBuf,
    /// The bump that was asked for.
    pub(crate) bump: Bump,
    /// The version before.
    pub(crate) from: Version,
    /// The version released.
    pub to: Version,
    /// The annotated tag to create, `v<version>`.
    pub tag: String,
    /// The version file.
    pub(crate) version_file: PathBuf,
    /// Its bytes now (restored if a git step fails).
    pub(crate) version_before: Vec<u8>,
    /// Its bytes after the release.
    pub(crate) version_after: Vec<u8>,
    /// The CHANGELOG.
    pub(crate) changelog: PathBuf,
    /// Its text now.
    pub(crate) changelog_before: String,
    /// Its text after the release.
    pub(crate) changelog_after: String,
    /// `git add`, `git commit`, `git tag`, in order.
    pub(crate) commands: Vec<Cmd>,
}

impl std::fmt::Display for ReleasePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// How many changed files a dirty-tree error lists before "and N more".
const LISTED: usize = 5;

impl Release {
    /// Computes the release without changing anything; refuses a dirty work tree, a
    /// detached HEAD, an existing tag, and bad or read-only files, with errors that say
    /// what to do. It asks only git, with read-only queries (in a dry run only when the
    /// runner lets queries run, [`Runner::dry_run_queries`]).
    pub(crate) fn prepare(&self, runner: &Runner) -> Result<ReleasePlan> {
        let version_before = fs::read(&self.version_file)
            .with_context(|| format!("cannot read {}", self.version_file.display()))?;
        let mut file = VersionFile::parse(&self.version_file, &version_before)?;
        let from = file.version().clone();
        let to = self.bump.apply(&from)?;
        let tag = format!("v{to}");

        let git = GitFacts::read(runner, &self.repo)?;
        if git.dirty() {
            let mut listed = git.changed[..git.changed.len().min(LISTED)].join(", ");
            if git.changed.len() > LISTED {
                write!(listed, " and {} more", git.changed.len() - LISTED).unwrap();
            }
            bail!(
                "the work tree at {} has uncommitted changes ({listed}): commit or stash \
                 them, then release again",
                git.root.display()
            );
        }
        if git.detached {
            bail!(
                "HEAD is detached at {} in {}: check out the branch to release from (e.g. \
                 `git switch main`), then release again",
                git.short_commit,
                git.root.display()
            );
        }
        let existing = runner
            .capture(&git_cmd(&self.repo, ["tag", "--list", tag.as_str()]).read_only())
            // A dry run that asks nothing: no such tag yet.
            .with_context(|| format!("cannot list the tags in {}", self.repo.display()))?;
        if existing.stdout.lines().any(|l| l.trim() == tag) {
            bail!(
                "tag {tag} already exists: {to} was released before (choose another \
                 --bump, or delete the tag with `git tag -d {tag}` if it was made by mistake)"
            );
        }

        let changelog_before = match fs::read_to_string(&self.changelog) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} does not exist (create it with a \"## [Unreleased]\" section listing the \
                 changes, then release again)",
                self.changelog.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.changelog.display()))
            }
        };
        let changelog_after = release_changelog(
            &self.changelog,
            &changelog_before,
            &from,
            &to,
            &utc_date(self.date),
        )?;
        ensure_writable(&self.version_file)?;
        ensure_writable(&self.changelog)?;

        file.set_version(to.clone());
        let message = format!("Release {tag}");
        let commands = vec![
            git_cmd(&self.repo, ["add", "--"])
                .arg_path(relative(&self.version_file, &self.repo))
                .arg_path(relative(&self.changelog, &self.repo)),
            git_cmd(&self.repo, ["commit", "-m", message.as_str()]),
            git_cmd(
                &self.repo,
                ["tag", "-a", tag.as_str(), "-m", message.as_str()],
            ),
        ];
        Ok(ReleasePlan {
            repo: self.repo.clone(),
            bump: self.bump,
            from,
            to,
            tag,
            version_file: self.version_file.clone(),
            version_before,
            version_after: file.to_bytes(),
            changelog: self.changelog.clone(),
            changelog_before,
            changelog_after,
            commands,
        })
    }
}

impl Step for Release {
    type Output = ReleasePlan;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &ReleasePlan) -> Option<String> {
        Some(output.to_string())
    }

    /// Computes the release without changing anything, refusing a dirty work tree, a
    /// detached HEAD, an existing tag, and bad or read-only files with errors that say
    /// what to do (asking git only read-only queries); then writes both files atomically,
    /// commits and tags, and returns what it released. Files edited between the two are
    /// not overwritten. When `git add` or `git commit` fails both files are restored (and
    /// unstaged); when `git tag` fails the commit is undone too. On a dry-run runner the
    /// writes and git commands are printed, not done, and the returned plan's `Display`
    /// is the report.
    fn run(&self, runner: &Runner) -> Result<ReleasePlan> {
        let plan = self.prepare(runner)?;
        plan.execute(runner)?;
        Ok(plan)
    }
}

impl ReleasePlan {
    /// The CHANGELOG change as a unified diff (3 lines of context).
    pub(crate) fn changelog_diff(&self) -> String {
        let name = relative(&self.changelog, &self.repo).display().to_string();
        unified_diff(
            &name,
            &name,
            &self.changelog_before,
            &self.changelog_after,
            3,
        )
    }

    /// The dry-run report (its `Display`).
    fn render(&self) -> String {
        let mut out = String::new();
        let version_name = relative(&self.version_file, &self.repo);
        writeln!(
            out,
            "release {} -> {} (bump {}), tag {}\n",
            self.from, self.to, self.bump, self.tag
        )
        .unwrap();
        writeln!(out, "new {}:", version_name.display()).unwrap();
        out.push_str(&String::from_utf8_lossy(&self.version_after));
        out.push('\n');
        out.push_str(&self.changelog_diff());
        out.push('\n');
        for cmd in &self.commands {
            writeln!(out, "$ {cmd}").unwrap();
        }
        out.push_str("\ndry run: nothing was changed\n");
        out
    }

    /// Writes both files atomically, then commits and tags. When `git add` or `git commit`
    /// fails both files are restored (and unstaged); when `git tag` fails the commit is
    /// undone too. Each write and command goes through `runner` (printed, not done, in a
    /// dry run).
    pub(crate) fn execute(&self, runner: &Runner) -> Result<()> {
        self.check_unchanged()?;
        write_atomic(runner, &self.version_file, &self.version_after)?;
        if let Err(e) = write_atomic(runner, &self.changelog, self.changelog_after.as_bytes()) {
            self.restore(runner, false);
            return Err(e);
        }
        for cmd in &self.commands[..2] {
            if let Err(e) = runner.run(cmd) {
                self.restore(runner, true);
                return Err(e).context(format!(
                    "cannot commit release {}; {} and {} are restored",
                    self.tag,
                    self.version_file.display(),
                    self.changelog.display()
                ));
            }
        }
        if let Err(e) = runner.run(&self.commands[2]) {
            let undo = git_cmd(&self.repo, ["reset", "-q", "--keep", "HEAD~1"]);
            if runner.run(&undo).is_err() {
                // Leave the commit and its files consistent for the user to finish or undo.
                return Err(e).context(format!(
                    "cannot create tag {}; the release commit is kept: tag it with `{}`, or \
                     undo it with `{undo}`",
                    self.tag, self.commands[2]
                ));
            }
            self.restore(runner, false);
            return Err(e).context(format!(
                "cannot create tag {}; the release commit is undone and {} and {} are restored",
                self.tag,
                self.version_file.display(),
                self.changelog.display()
            ));
        }
        runner.note(&format!("released {} (tag {})", self.to, self.tag));
        Ok(())
    }

    /// Refuses to write over files edited since the plan was made.
    fn check_unchanged(&self) -> Result<()> {
        let same = |path: &Path, before: &[u8]| fs::read(path).is_ok_and(|now| now == before);
        for (path, before) in [
            (&self.version_file, self.version_before.as_slice()),
            (&self.changelog, self.changelog_before.as_bytes()),
        ] {
            if !same(path, before) {
                bail!(
                    "{} changed since the release was planned; run the release again",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Best effort: puts both files back as they were and, when staged, unstages them.
    fn restore(&self, runner: &Runner, unstage: bool) {
        if unstage {
            let reset = git_cmd(&self.repo, ["reset", "-q", "--"])
                .arg_path(relative(&self.version_file, &self.repo))
                .arg_path(relative(&self.changelog, &self.repo));
            let _ = runner.run(&reset);
        }
        for (path, before) in [
            (&self.version_file, self.version_before.as_slice()),
            (&self.changelog, self.changelog_before.as_bytes()),
        ] {
            if fs::read(path).map_or(true, |now| now != before) {
                if let Err(e) = write_atomic(runner, path, before) {
                    runner.note(&format!(
                        "warning: cannot restore {}: {e:#}",
                        path.display()
                    ));
                }
            }
        }
    }
}

fn git_cmd<'a>(repo: &Path, args: impl IntoIterator<Item = &'a str>) -> Cmd {
    Cmd::new("git").args(args).cwd(repo)
}

/// `path` relative to `base` when it lies inside it (shorter commands and reports).
fn relative(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| path.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release planned, then its files edited before it is carried out: nothing is
    /// overwritten (moved from the e2e tests when `prepare`/`execute` became internal).
    #[test]
    fn files_edited_after_planning_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (version, changelog) = (
            dir.path().join("version.json"),
            dir.path().join("CHANGELOG.md"),
        );
        fs::write(&version, "{\n  \"version\": \"0.9.2\"\n}\n").unwrap();
        let text = "# Changelog\n\n## [Unreleased]\n\n### Added\n- Genre pages.\n";
        fs::write(&changelog, text).unwrap();
        // A dry run's git answers: a clean work tree on a branch, no such tag.
        let runner = Runner::new().echo(crate::cmd::Echo::Silent).dry_run(true);
        let release = Release::new(dir.path(), &version, &changelog, Bump::Patch);
        let plan = release.prepare(&runner).unwrap();
        fs::write(
            &changelog,
            text.replace("Genre pages.", "Genre pages, edited."),
        )
        .unwrap();
        let err = plan.execute(&runner).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "{} changed since the release was planned; run the release again",
                changelog.display()
            )
        );
        assert_eq!(
            fs::read_to_string(&version).unwrap(),
            "{\n  \"version\": \"0.9.2\"\n}\n"
        );
        assert!(fs::read_to_string(&changelog).unwrap().contains("edited"));
    }
}
