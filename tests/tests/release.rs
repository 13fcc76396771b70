//! The release step end to end, in temporary git repositories the tests create: dry run,
//! a real release (commit, annotated tag, CHANGELOG), and every refusal leaving the files,
//! the commits and the tags as they were.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use buildkit_lib::cmd::Echo;
use buildkit_lib::plan::{Action, Step};
use buildkit_lib::version::{Bump, Release};
use buildkit_lib::{Cmd, Runner};

const VERSION_JSON: &str = r#"{
  "version": "0.9.2",
  "build_date": "2025-01-01T00:00:00.000000",
  "git_commit": "0000000",
  "git_branch": "dev",
  "release_name": "Current Development"
}
"#;

const CHANGELOG: &str = "# Changelog

## [Unreleased]

### Added
- Genre pages.

## [0.9.2] - 2025-01-01

### Added
- MvTV.
";

/// A temporary repository: `app/version.json`, `CHANGELOG.md` and `app.py` committed on
/// `main`, git configured only by the repository itself.
struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    runner: Runner,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("project");
        fs::create_dir_all(dir.join("app")).unwrap();
        let runner = e2e::runner()
            .echo(Echo::Silent)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CEILING_DIRECTORIES", tmp.path().display().to_string());
        let repo = Repo {
            _tmp: tmp,
            dir,
            runner,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Release Test"]);
        repo.git(&["config", "user.email", "release@example.com"]);
        repo.write("app/version.json", VERSION_JSON);
        repo.write("CHANGELOG.md", CHANGELOG);
        repo.write("app.py", "print('hi')\n");
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "init"]);
        repo
    }

    fn release(&self, bump: Bump) -> Release {
        Release::new(
            self.dir.clone(),
            self.dir.join("app/version.json"),
            self.dir.join("CHANGELOG.md"),
            bump,
        )
        // 2023-11-14T22:13:20Z
        .date(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    fn git(&self, args: &[&str]) -> String {
        let cmd = Cmd::new("git").args(args.iter().copied()).cwd(&self.dir);
        self.runner.capture(&cmd).unwrap().stdout.trim().to_string()
    }

    fn write(&self, name: &str, content: &str) {
        fs::write(self.dir.join(name), content).unwrap();
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap()
    }

    /// Files, HEAD, tags, index and work tree state, to compare before and after.
    fn snapshot(&self) -> Vec<String> {
        vec![
            self.read("app/version.json"),
            self.read("CHANGELOG.md"),
            self.git(&["rev-parse", "HEAD"]),
            self.git(&["tag", "--list"]),
            self.git(&["status", "--porcelain"]),
            self.git(&["log", "--format=%H %s", "--all"]),
        ]
    }

    /// Expects the release to fail with exactly `message` and to change nothing.
    fn refused(&self, release: &Release, runner: &Runner, message: &str) {
        let before = self.snapshot();
        let err = release.run(runner).unwrap_err();
        assert_eq!(format!("{err:#}"), message);
        assert_eq!(self.snapshot(), before, "nothing changed");
        assert_no_temporary_files(&self.dir);
    }

    fn root(&self) -> String {
        self.dir.canonicalize().unwrap().display().to_string()
    }
}

fn assert_no_temporary_files(dir: &Path) {
    for sub in [dir.to_path_buf(), dir.join("app")] {
        for entry in fs::read_dir(sub).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".buildkit-tmp-"), "left behind: {name}");
        }
    }
}

const RELEASED_CHANGELOG: &str = "# Changelog

## [Unreleased]

## [0.10.0] - 2023-11-14

### Added
- Genre pages.

## [0.9.2] - 2025-01-01

### Added
- MvTV.
";

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let repo = Repo::new();
    let before = repo.snapshot();
    let runner = repo
        .runner
        .with_fresh_record()
        .dry_run(true)
        .dry_run_queries(true);
    let plan = repo.release(Bump::Minor).run(&runner).unwrap();
    assert_eq!(repo.snapshot(), before);
    assert_eq!(
        plan.to_string(),
        r#"release 0.9.2 -> 0.10.0 (bump minor), tag v0.10.0

new app/version.json:
{
  "version": "0.10.0",
  "build_date": "2025-01-01T00:00:00.000000",
  "git_commit": "0000000",
  "git_branch": "dev",
  "release_name": "Current Development"
}

--- CHANGELOG.md
+++ CHANGELOG.md
@@ -2,6 +2,8 @@
 
 ## [Unreleased]
 
+## [0.10.0] - 2023-11-14
+
 ### Added
 - Genre pages.
 
"#
        .to_string()
            + r#"
$ git add -- app/version.json CHANGELOG.md
$ git commit -m 'Release v0.10.0'
$ git tag -a v0.10.0 -m 'Release v0.10.0'

dry run: nothing was changed
"#
    );
    // Only read-only queries ran; the writes and the three git steps were only recorded.
    let recorded = runner.recorded();
    let ran: Vec<String> = recorded.commands().iter().map(|c| c.join(" ")).collect();
    assert_eq!(
        ran,
        [
            "git --no-optional-locks status --porcelain=v2 --branch --untracked-files=no",
            "git rev-parse --short HEAD",
            "git rev-parse --show-toplevel",
            "git tag --list v0.10.0",
            "git add -- app/version.json CHANGELOG.md",
            "git commit -m Release v0.10.0",
            "git tag -a v0.10.0 -m Release v0.10.0",
        ]
    );
    // Both files written whole, before the three git steps.
    let shown = recorded.to_string();
    assert_eq!(shown.matches("\nwrite ").count(), 2, "{shown}");
    assert!(
        shown.find("\nwrite ").unwrap() < shown.find("$ git add").unwrap(),
        "{shown}"
    );
    // The CHANGELOG the release writes: the recorded write's contents.
    let changelog_after = recorded.actions().iter().find_map(|a| match a {
        Action::Write { path, contents } if path.ends_with("CHANGELOG.md") => Some(contents),
        _ => None,
    });
    assert_eq!(
        changelog_after.map(|c| std::str::from_utf8(c).unwrap()),
        Some(RELEASED_CHANGELOG)
    );
    // Three git commands: add, commit, tag.
    assert_eq!(plan.to_string().matches("\n$ git ").count(), 3);
}

#[test]
fn real_release_commits_and_tags() {
    let repo = Repo::new();
    let parent = repo.git(&["rev-parse", "HEAD"]);
    let plan = repo.release(Bump::Minor).run(&repo.runner).unwrap();
    assert_eq!(plan.to.to_string(), "0.10.0");

    assert_eq!(
        repo.read("app/version.json"),
        VERSION_JSON.replace("\"0.9.2\"", "\"0.10.0\"")
    );
    assert_eq!(repo.read("CHANGELOG.md"), RELEASED_CHANGELOG);
    assert_eq!(repo.git(&["log", "-1", "--format=%s"]), "Release v0.10.0");
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), parent);
    assert_eq!(
        repo.git(&["show", "--name-only", "--format=", "HEAD"]),
        "CHANGELOG.md\napp/version.json"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    // An annotated tag on the release commit, with the release message.
    assert_eq!(repo.git(&["cat-file", "-t", "v0.10.0"]), "tag");
    assert_eq!(
        repo.git(&["rev-parse", "v0.10.0^{commit}"]),
        repo.git(&["rev-parse", "HEAD"])
    );
    assert_eq!(
        repo.git(&["tag", "--list", "--format=%(contents)", "v0.10.0"]),
        "Release v0.10.0"
    );
    assert_no_temporary_files(&repo.dir);

    // The next pre-release starts from there.
    repo.write(
        "CHANGELOG.md",
        &RELEASED_CHANGELOG.replace(
            "## [Unreleased]\n",
            "## [Unreleased]\n\n### Fixed\n- A crash.\n",
        ),
    );
    repo.git(&["commit", "-q", "-am", "more"]);
    let plan = repo.release(Bump::Pre).run(&repo.runner).unwrap();
    assert_eq!(plan.tag, "v0.10.1-rc.1");
    assert_eq!(repo.git(&["cat-file", "-t", "v0.10.1-rc.1"]), "tag");
    // Promoting the release candidate needs no new CHANGELOG entries.
    let plan = repo.release(Bump::Release).run(&repo.runner).unwrap();
    assert_eq!(plan.tag, "v0.10.1");
    assert!(repo.read("CHANGELOG.md").starts_with(
        "# Changelog\n\n## [Unreleased]\n\n## [0.10.1] - 2023-11-14\n\n\
         No changes since 0.10.1-rc.1.\n\n## [0.10.1-rc.1] - 2023-11-14\n\n### Fixed\n"
    ));
    assert_eq!(
        repo.git(&["log", "--format=%s", "-3"]),
        "Release v0.10.1\nRelease v0.10.1-rc.1\nmore"
    );
}

#[test]
fn dirty_tree_is_refused() {
    let repo = Repo::new();
    repo.write("app.py", "print('changed')\n");
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "the work tree at {} has uncommitted changes (app.py): commit or stash them, \
             then release again",
            repo.root()
        ),
    );
}

#[test]
fn existing_tag_is_refused() {
    let repo = Repo::new();
    repo.git(&["tag", "v0.9.3"]);
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        "tag v0.9.3 already exists: 0.9.3 was released before (choose another --bump, or \
         delete the tag with `git tag -d v0.9.3` if it was made by mistake)",
    );
    // The dry run refuses it the same way.
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner.clone().dry_run(true).dry_run_queries(true),
        "tag v0.9.3 already exists: 0.9.3 was released before (choose another --bump, or \
         delete the tag with `git tag -d v0.9.3` if it was made by mistake)",
    );
}

#[test]
fn detached_head_is_refused() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "--detach"]);
    let short = repo.git(&["rev-parse", "--short", "HEAD"]);
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "HEAD is detached at {short} in {}: check out the branch to release from (e.g. \
             `git switch main`), then release again",
            repo.root()
        ),
    );
}

#[test]
fn bad_files_are_refused() {
    let repo = Repo::new();
    let version_path = repo.dir.join("app/version.json");

    repo.write("app/version.json", "{\n  \"version\": \"0.9\"\n}\n");
    repo.git(&["commit", "-q", "-am", "bad version"]);
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "{}: \"version\" is \"0.9\", which is not a semantic version: unexpected end of \
             input while parsing minor version number (write MAJOR.MINOR.PATCH, e.g. \"1.2.0\")",
            version_path.display()
        ),
    );

    repo.write("app/version.json", "{\n  \"version\": \"0.9.2\",\n}\n");
    repo.git(&["commit", "-q", "-am", "bad json"]);
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "invalid JSON in {} at line 3, column 1: trailing comma",
            version_path.display()
        ),
    );

    repo.write("app/version.json", VERSION_JSON);
    repo.write(
        "CHANGELOG.md",
        "# Changelog\n\n## [Unreleased]\n\n## [0.9.2] - 2025-01-01\n",
    );
    repo.git(&["commit", "-q", "-am", "empty changelog"]);
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "the \"## [Unreleased]\" section of {} is empty: nothing to release (list the \
             changes there, then run again)",
            repo.dir.join("CHANGELOG.md").display()
        ),
    );
}

#[test]
fn read_only_version_file_is_refused() {
    let repo = Repo::new();
    let path = repo.dir.join("app/version.json");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    repo.refused(
        &repo.release(Bump::Patch),
        &repo.runner,
        &format!(
            "cannot write {}: the file is read-only (make it writable, then run again)",
            path.display()
        ),
    );
}

#[test]
fn not_a_git_repository_is_refused() {
    let repo = Repo::new();
    fs::rename(repo.dir.join(".git"), repo.dir.join("moved.git")).unwrap();
    let before = (repo.read("app/version.json"), repo.read("CHANGELOG.md"));
    let err = repo.release(Bump::Patch).run(&repo.runner).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{} is not a git repository (run this in the project's git checkout, or `git \
             init` it first)",
            repo.dir.display()
        )
    );
    assert_eq!(
        (repo.read("app/version.json"), repo.read("CHANGELOG.md")),
        before
    );
    assert_no_temporary_files(&repo.dir);
}

#[test]
fn failing_commit_restores_both_files() {
    let repo = Repo::new();
    let hook = repo.dir.join(".git/hooks/pre-commit");
    fs::write(
        &hook,
        "#!/bin/sh\necho 'hook: no releases today' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let before = repo.snapshot();
    let err = repo.release(Bump::Patch).run(&repo.runner).unwrap_err();
    let text = format!("{err:#}");
    let expected = format!(
        "cannot commit release v0.9.3; {} and {} are restored: process didn't exit \
         successfully: `git commit -m 'Release v0.9.3'` (exit status: 1)",
        repo.dir.join("app/version.json").display(),
        repo.dir.join("CHANGELOG.md").display()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains("hook: no releases today"), "{text}");
    assert_eq!(
        repo.snapshot(),
        before,
        "files restored and unstaged, no commit, no tag"
    );
    assert_no_temporary_files(&repo.dir);
}

#[test]
fn failing_tag_undoes_the_commit() {
    let repo = Repo::new();
    let real_git = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("git"))
        .find(|path| path.is_file())
        .expect("git on PATH");
    let fake = e2e::FakeBin::new().script(
        "git",
        &format!(
            "if [ \"$1\" = tag ] && [ \"$2\" = -a ]; then echo 'fatal: tag refused' >&2; exit 1; fi\n\
             exec {} \"$@\"",
            real_git.display()
        ),
    );
    let runner = repo.runner.clone().env("PATH", fake.path_env());
    let before = repo.snapshot();
    let err = repo.release(Bump::Patch).run(&runner).unwrap_err();
    let text = format!("{err:#}");
    let expected = format!(
        "cannot create tag v0.9.3; the release commit is undone and {} and {} are restored: \
         process didn't exit successfully: `git tag -a v0.9.3 -m 'Release v0.9.3'` (exit \
         status: 1)",
        repo.dir.join("app/version.json").display(),
        repo.dir.join("CHANGELOG.md").display()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert_eq!(
        repo.snapshot(),
        before,
        "commit undone, files as they were, no tag"
    );
}
