//! Git facts and `version.json` stamping against real git, in repositories the tests create.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use buildkit_lib::cmd::Echo;
use buildkit_lib::version::{GitFacts, VersionFile};
use buildkit_lib::{Cmd, Runner};

/// `secs` after the epoch (a `SOURCE_DATE_EPOCH`).
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Loads `version_json`, stamps it with the git facts of `repo_dir` at `when` (`options`:
/// `VersionFile::stamp`'s `full_hash` and `record_dirty`), and saves it in place; nothing is
/// written when any part fails.
fn stamp_file(
    runner: &Runner,
    version_json: &Path,
    repo_dir: &Path,
    when: SystemTime,
    options: (bool, bool),
) -> anyhow::Result<(VersionFile, GitFacts)> {
    let mut file = VersionFile::load(version_json)?;
    let git = GitFacts::read(runner, repo_dir)?;
    file.stamp(&git, when, options.0, options.1);
    file.save(runner, version_json)?;
    Ok((file, git))
}

const VERSION_JSON: &str = r#"{
  "version": "0.9.2",
  "build_date": "2025-01-01T00:00:00.000000",
  "git_commit": "0000000",
  "git_branch": "dev",
  "release_name": "Current Development",
  "features": [
    "mvtv"
  ]
}
"#;

/// git with no user or system configuration, and no repository found above the test's
/// temporary directory.
fn git_runner(ceiling: &Path) -> Runner {
    e2e::runner()
        .echo(Echo::Silent)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CEILING_DIRECTORIES", ceiling.display().to_string())
}

/// A temporary git repository with `version.json` and `app.py` committed on `main`.
struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    runner: Runner,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo::empty();
        repo.write("version.json", VERSION_JSON);
        repo.write("app.py", "print('hi')\n");
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "init"]);
        repo
    }

    fn empty() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("project");
        fs::create_dir(&dir).unwrap();
        let repo = Repo {
            runner: git_runner(tmp.path()),
            _tmp: tmp,
            dir,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo
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
}

#[test]
fn facts_on_a_branch() {
    let repo = Repo::new();
    let facts = GitFacts::read(&repo.runner, &repo.dir).unwrap();
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(facts.commit, head);
    assert_eq!(facts.commit.len(), 40);
    assert_eq!(
        facts.short_commit,
        repo.git(&["rev-parse", "--short", "HEAD"])
    );
    assert!(facts.short_commit.len() >= 7 && head.starts_with(&facts.short_commit));
    assert_eq!(facts.branch.as_deref(), Some("main"));
    assert!(!facts.dirty());
    // Not detached, and the top level is the repository (both in the facts' Debug form).
    let shown = format!("{facts:?}");
    assert!(shown.contains("detached: false"), "{shown}");
    let top = repo.dir.canonicalize().unwrap();
    assert!(shown.contains(&format!("{top:?}")), "{shown}");
    // From a subdirectory: the same facts, the same top level.
    fs::create_dir(repo.dir.join("sub")).unwrap();
    assert_eq!(
        GitFacts::read(&repo.runner, &repo.dir.join("sub")).unwrap(),
        facts
    );
}

#[test]
fn dirty_tree_is_reported_and_recorded() {
    let repo = Repo::new();
    repo.write("app.py", "print('changed')\n");
    repo.write("untracked.txt", "not counted\n");
    let facts = GitFacts::read(&repo.runner, &repo.dir).unwrap();
    // Which files count (tracked changes, not untracked ones) is the unit test
    // `parses_branch_detached_and_changes`.
    assert!(facts.dirty());

    let when = at(1_700_000_000);
    let options = (false, true);
    stamp_file(
        &repo.runner,
        &repo.dir.join("version.json"),
        &repo.dir,
        when,
        options,
    )
    .unwrap();
    let stamped: serde_json::Value = serde_json::from_str(&repo.read("version.json")).unwrap();
    assert_eq!(stamped["git_dirty"], serde_json::Value::Bool(true));
}

#[test]
fn stamp_file_keeps_fields_and_uses_source_date_epoch() {
    let repo = Repo::new();
    let when = at(1_700_000_000);
    let path = repo.dir.join("version.json");
    let (file, facts) = stamp_file(&repo.runner, &path, &repo.dir, when, (false, false)).unwrap();
    let expected = VERSION_JSON
        .replace("2025-01-01T00:00:00.000000", "2023-11-14T22:13:20.000000")
        .replace("\"0000000\"", &format!("{:?}", facts.short_commit))
        .replace("\"dev\"", "\"main\"");
    assert_eq!(repo.read("version.json"), expected);
    // The returned file is what was saved: saved elsewhere, the same bytes.
    let copy = repo.dir.join("copy.json");
    file.save(&repo.runner, &copy).unwrap();
    assert_eq!(fs::read_to_string(&copy).unwrap(), expected);
    fs::remove_file(&copy).unwrap();
    // Stamping again with the same facts and time gives the same bytes.
    stamp_file(&repo.runner, &path, &repo.dir, when, (false, false)).unwrap();
    assert_eq!(repo.read("version.json"), expected);
    // What image tag rules read.
    assert_eq!(file.version().to_string(), "0.9.2");
    assert_eq!(facts.branch.as_deref(), Some("main"));
}

#[test]
fn detached_head_is_reported_as_such() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "--detach"]);
    let facts = GitFacts::read(&repo.runner, &repo.dir).unwrap();
    assert_eq!(facts.branch, None);
    assert!(format!("{facts:?}").contains("detached: true"), "{facts:?}");
    assert_eq!(facts.commit, repo.git(&["rev-parse", "HEAD"]));

    let when = at(0);
    let options = (true, false);
    let path = repo.dir.join("version.json");
    stamp_file(&repo.runner, &path, &repo.dir, when, options).unwrap();
    let file = VersionFile::load(&path).unwrap();
    assert_eq!(file.fields()["git_branch"], "HEAD (detached)");
    assert_eq!(file.fields()["git_commit"], facts.commit.as_str());
    assert_eq!(file.fields()["build_date"], "1970-01-01T00:00:00.000000");
}

#[test]
fn not_a_git_repository_is_said_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let runner = git_runner(tmp.path());
    let dir = tmp.path().join("plain");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("version.json");
    fs::write(&path, VERSION_JSON).unwrap();

    let err = GitFacts::read(&runner, &dir).unwrap_err();
    let expected = format!(
        "{} is not a git repository (run this in the project's git checkout, or `git init` \
         it first)",
        dir.display()
    );
    assert_eq!(format!("{err:#}"), expected);

    let when = SystemTime::now();
    let err = stamp_file(&runner, &path, &dir, when, (false, false)).unwrap_err();
    assert_eq!(format!("{err:#}"), expected);
    assert_eq!(fs::read_to_string(&path).unwrap(), VERSION_JSON);
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn repository_without_commits() {
    let repo = Repo::empty();
    let err = GitFacts::read(&repo.runner, &repo.dir).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{} is a git repository without commits (commit once, then run again)",
            repo.dir.display()
        )
    );
}

#[test]
fn git_not_installed() {
    let repo = Repo::new();
    let nothing = e2e::FakeBin::new();
    let runner = repo.runner.clone().env("PATH", nothing.path_env_only());
    let err = GitFacts::read(&runner, &repo.dir).unwrap_err();
    let text = format!("{err:#}");
    let expected = format!(
        "cannot read git facts in {}: command not found: `git` (never executed)",
        repo.dir.display()
    );
    assert!(text.starts_with(&expected), "{text}");
}

/// Removes a test image when dropped, even when the test fails.
struct ImageGuard {
    runner: Runner,
    name: String,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = self.runner.capture(&Cmd::new("docker").args([
            "image",
            "rm",
            "-f",
            self.name.as_str(),
        ]));
    }
}

#[test]
fn source_date_epoch_reaches_the_image_build() {
    use buildkit_lib::version::rfc3339;

    let runner = e2e::engine().echo(Echo::Silent);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nARG SOURCE_DATE_EPOCH\nRUN echo \"$SOURCE_DATE_EPOCH\" > /epoch\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    let image = format!("{}:latest", e2e::unique("buildkit-test-sde"));
    let _guard = ImageGuard {
        runner: runner.clone(),
        name: image.clone(),
    };
    let (key, value) = ("SOURCE_DATE_EPOCH", "1700000000");
    let build = Cmd::new("docker")
        .args(["buildx", "build", "--network", "none", "--build-arg"])
        .arg(format!("{key}={value}"))
        .args(["-t", image.as_str()])
        .arg(ctx.path());
    runner.run(&build).unwrap();

    let when = at(1_700_000_000);
    let inspect = Cmd::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{.Created}}",
        image.as_str(),
    ]);
    let created = runner.capture(&inspect).unwrap().stdout;
    assert_eq!(
        created.trim(),
        rfc3339(when),
        "the image's created time is SOURCE_DATE_EPOCH"
    );
    let run = Cmd::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        image.as_str(),
        "cat",
        "/epoch",
    ]);
    assert_eq!(runner.capture(&run).unwrap().stdout, "1700000000\n");
}

#[test]
fn stamp_file_refuses_a_byte_order_mark_and_leaves_the_tree_clean() {
    let repo = Repo::empty();
    let with_bom = format!("\u{feff}{VERSION_JSON}");
    repo.write("version.json", &with_bom);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-q", "-m", "init"]);
    let path = repo.dir.join("version.json");
    let err = stamp_file(
        &repo.runner,
        &path,
        &repo.dir,
        at(1_700_000_000),
        (false, false),
    )
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{} starts with a UTF-8 byte order mark; save it without BOM",
            path.display()
        )
    );
    assert_eq!(repo.read("version.json"), with_bom);
    assert_eq!(repo.git(&["status", "--porcelain", "--ignored"]), "");
}
