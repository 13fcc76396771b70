//! [`GitFacts`]: commit, branch and dirty state, asked of git itself through the runner.
//!
//! Two read-only queries (`git status --porcelain=v2 --branch` and `git rev-parse --short`)
//! give everything `version.json`, image tags and releases need. A dry run (and a step's
//! plan) does not ask git: the queries answer placeholders ([`COMMIT_PLACEHOLDER`],
//! [`BRANCH_PLACEHOLDER`]) that read like a clean work tree on a branch, unless the runner
//! lets queries run ([`Runner::dry_run_queries`]).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::cmd::{Cmd, CommandError, Runner};

/// What `version.json` records for `git_branch` in a detached HEAD.
pub(crate) const DETACHED_BRANCH: &str = "HEAD (detached)";

/// The commit a dry run's git queries answer (full and short).
pub(crate) const COMMIT_PLACEHOLDER: &str = "<commit>";
/// The branch a dry run's git queries answer.
pub(crate) const BRANCH_PLACEHOLDER: &str = "<branch>";
/// The last commit's time (seconds) a dry run's git query answers.
pub(crate) const COMMIT_TIME_PLACEHOLDER: &str = "<last-commit-time>";

/// The state of a git work tree at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GitFacts {
    /// The work tree's top-level directory.
    pub(crate) root: PathBuf,
    /// The full commit hash of `HEAD`.
    pub commit: String,
    /// The short commit hash, abbreviated by git (`git rev-parse --short HEAD`, at least
    /// 7 characters and unique in the repository).
    pub short_commit: String,
    /// The checked-out branch; `None` in a detached HEAD.
    pub branch: Option<String>,
    /// True when `HEAD` is detached (a tag or commit checked out, as CI often does).
    pub(crate) detached: bool,
    /// Tracked files with uncommitted changes, staged or not, as git prints their paths
    /// (untracked files do not count, as with `git describe --dirty`).
    pub(crate) changed: Vec<String>,
}

impl GitFacts {
    /// Reads the facts of the work tree containing `dir`. Errors: git missing, `dir` not
    /// a directory, not a git repository (said so, naming `dir`), a repository without
    /// commits.
    pub fn read(runner: &Runner, dir: &Path) -> Result<GitFacts> {
        if !dir.is_dir() {
            bail!(
                "cannot read git facts: {} is not a directory",
                dir.display()
            );
        }
        let status = Cmd::new("git")
            .args([
                "--no-optional-locks",
                "status",
                "--porcelain=v2",
                "--branch",
            ])
            .arg("--untracked-files=no")
            .cwd(dir)
            .read_only()
            .dry_answer(format!(
                "# branch.oid {COMMIT_PLACEHOLDER}\n# branch.head {BRANCH_PLACEHOLDER}\n"
            ));
        let out = match runner.capture(&status) {
            Ok(out) => out.stdout,
            Err(e) if not_a_repository(&e) => bail!(
                "{} is not a git repository (run this in the project's git checkout, or \
                 `git init` it first)",
                dir.display()
            ),
            Err(e) => {
                return Err(anyhow!(e))
                    .with_context(|| format!("cannot read git facts in {}", dir.display()))
            }
        };
        let mut facts = parse_status(&out).ok_or_else(|| {
            anyhow!(
                "cannot read git facts in {}: unexpected `git status` output",
                dir.display()
            )
        })?;
        if facts.commit.is_empty() {
            bail!(
                "{} is a git repository without commits (commit once, then run again)",
                dir.display()
            );
        }
        let query = |args: &[&str], dry_answer: String| -> Result<String> {
            let cmd = Cmd::new("git")
                .args(args.iter().copied())
                .cwd(dir)
                .read_only()
                .dry_answer(dry_answer);
            let out = runner
                .capture(&cmd)
                .with_context(|| format!("cannot read git facts in {}", dir.display()))?;
            Ok(out.stdout.trim().to_string())
        };
        facts.short_commit = query(
            &["rev-parse", "--short", "HEAD"],
            COMMIT_PLACEHOLDER.to_string(),
        )?;
        facts.root = PathBuf::from(query(
            &["rev-parse", "--show-toplevel"],
            dir.display().to_string(),
        )?);
        Ok(facts)
    }

    /// True when tracked files have uncommitted changes.
    pub fn dirty(&self) -> bool {
        !self.changed.is_empty()
    }

    /// The branch as `version.json` records it: its name, or [`DETACHED_BRANCH`].
    pub(crate) fn branch_label(&self) -> &str {
        self.branch.as_deref().unwrap_or(DETACHED_BRANCH)
    }

    /// The commit hash, full or short.
    pub(crate) fn commit_hash(&self, full: bool) -> &str {
        if full {
            &self.commit
        } else {
            &self.short_commit
        }
    }
}

/// The committer time of `HEAD` in the work tree containing `dir`, in seconds since
/// 1970-01-01 UTC: the default `SOURCE_DATE_EPOCH` of a reproducible build (two builds of
/// one commit get the same timestamps, whenever they run). As text, for a build argument:
/// a dry run (and a step's plan) answers [`COMMIT_TIME_PLACEHOLDER`].
pub(crate) fn last_commit_epoch(runner: &Runner, dir: &Path) -> Result<String> {
    let out = match runner.capture(&last_commit_cmd(dir)) {
        Ok(out) => out.stdout,
        Err(e) if not_a_repository(&e) => bail!(
            "{} is not a git repository, so there is no last commit to take the build time \
             from; set SOURCE_DATE_EPOCH (seconds since 1970-01-01) instead",
            dir.display()
        ),
        Err(e) => {
            return Err(anyhow!(e)).with_context(|| {
                format!("cannot read the last commit's time in {}", dir.display())
            })
        }
    };
    let text = out.trim();
    if text == COMMIT_TIME_PLACEHOLDER || text.parse::<u64>().is_ok() {
        return Ok(text.to_string());
    }
    bail!(
        "cannot read the last commit's time in {}: git printed {text:?} (a repository \
         without commits? commit once, or set SOURCE_DATE_EPOCH)",
        dir.display()
    )
}

/// [`last_commit_epoch`] as a number. A dry run's answer, [`COMMIT_TIME_PLACEHOLDER`],
/// is no number: a step whose plan shows the time uses [`last_commit_epoch`].
pub(crate) fn last_commit_time(runner: &Runner, dir: &Path) -> Result<u64> {
    let text = last_commit_epoch(runner, dir)?;
    text.parse().map_err(|_| {
        anyhow!(
            "the last commit's time in {} is not known in a dry run ({text}): set \
             SOURCE_DATE_EPOCH, or read it with `last_commit_epoch`",
            dir.display()
        )
    })
}

/// `git log -1 --format=%ct HEAD` in `dir`: the last commit's time.
pub(crate) fn last_commit_cmd(dir: &Path) -> Cmd {
    Cmd::new("git")
        .args(["log", "-1", "--format=%ct", "HEAD"])
        .cwd(dir)
        .read_only()
        .dry_answer(COMMIT_TIME_PLACEHOLDER)
}

fn not_a_repository(e: &CommandError) -> bool {
    e.tail.iter().any(|l| l.contains("not a git repository"))
}

/// Reads `git status --porcelain=v2 --branch` output; `commit` is empty before the first
/// commit. `root` and `short_commit` are filled by the caller.
fn parse_status(out: &str) -> Option<GitFacts> {
    let mut commit = None;
    let mut head = None;
    let mut changed = Vec::new();
    for line in out.lines() {
        if let Some(oid) = line.strip_prefix("# branch.oid ") {
            commit = Some(if oid == "(initial)" {
                String::new()
            } else {
                oid.to_string()
            });
        } else if let Some(name) = line.strip_prefix("# branch.head ") {
            head = Some(name.to_string());
        } else if let Some(path) = changed_path(line) {
            changed.push(path);
        }
    }
    let head = head?;
    let detached = head == "(detached)";
    Some(GitFacts {
        root: PathBuf::new(),
        commit: commit?,
        short_commit: String::new(),
        branch: (!detached).then_some(head),
        detached,
        changed,
    })
}

/// The path of a porcelain v2 change entry (`1` changed, `2` renamed, `u` unmerged).
fn changed_path(line: &str) -> Option<String> {
    let fields = match line.split(' ').next()? {
        "1" => 9,
        "2" => 10,
        "u" => 11,
        _ => return None,
    };
    let path = line.splitn(fields, ' ').nth(fields - 1)?;
    // A rename reads `new<TAB>old`.
    Some(path.split('\t').next().unwrap_or(path).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_branch_detached_and_changes() {
        let out = "# branch.oid 0123456789abcdef0123456789abcdef01234567\n\
                   # branch.head main\n\
                   1 .M N... 100644 100644 100644 aaaa bbbb src/app.py\n\
                   2 R. N... 100644 100644 100644 aaaa bbbb R100 new name.txt\told.txt\n\
                   u UU N... 100644 100644 100644 100644 aaaa bbbb cccc conflict.txt\n\
                   ? untracked.txt\n";
        let facts = parse_status(out).unwrap();
        assert_eq!(facts.commit, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(facts.branch.as_deref(), Some("main"));
        assert!(!facts.detached);
        assert_eq!(
            facts.changed,
            ["src/app.py", "new name.txt", "conflict.txt"]
        );
        assert!(facts.dirty());

        let out =
            "# branch.oid 0123456789abcdef0123456789abcdef01234567\n# branch.head (detached)\n";
        let facts = parse_status(out).unwrap();
        assert_eq!(facts.branch, None);
        assert!(facts.detached && !facts.dirty());
        assert_eq!(facts.branch_label(), "HEAD (detached)");

        let facts = parse_status("# branch.oid (initial)\n# branch.head main\n").unwrap();
        assert_eq!(facts.commit, "");
        assert!(parse_status("garbage\n").is_none());
    }
}
