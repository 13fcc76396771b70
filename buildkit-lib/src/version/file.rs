//! [`VersionFile`]: `version.json` loaded, validated, stamped and saved without losing a field.
//!
//! The file is kept as an ordered JSON object, so fields this library does not know
//! (`release_name`, `features`, ...) survive in their place. Output is canonical (2-space
//! indent, trailing newline): the same content always gives the same bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use semver::Version;
use serde_json::{Map, Value};

use super::git::GitFacts;
use crate::cmd::Runner;
use crate::files::write_atomic;
use crate::time::utc_timestamp_micros;

/// Field names this library writes.
pub(crate) mod field {
    /// The semantic version (`"1.2.3"`).
    pub const VERSION: &str = "version";
    /// UTC build time, `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub const BUILD_DATE: &str = "build_date";
    /// The commit built (short by default).
    pub const GIT_COMMIT: &str = "git_commit";
    /// The branch built, or `"HEAD (detached)"`.
    pub const GIT_BRANCH: &str = "git_branch";
    /// Whether tracked files had uncommitted changes.
    pub const GIT_DIRTY: &str = "git_dirty";
}

/// The UTF-8 byte order mark some Windows editors put at the start of a file; JSON
/// forbids it, so a `version.json` starting with it is refused by name.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A `version.json`: every field in its order, with a validated semantic `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionFile {
    path: PathBuf,
    fields: Map<String, Value>,
    version: Version,
}

impl VersionFile {
    /// Loads and validates `path`. Errors name the file and say what is wrong: unreadable,
    /// invalid JSON (with line and column), not an object, no `version`, a `version` that
    /// is not a string or not semver.
    pub fn load(path: &Path) -> Result<VersionFile> {
        let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        VersionFile::parse(path, &text)
    }

    /// Validates `bytes` as the content of `path` (which is only used in messages and as
    /// the default place to save).
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<VersionFile> {
        let shown = path.display();
        if bytes.starts_with(UTF8_BOM) {
            // serde_json would only say "expected value at line 1 column 1".
            bail!("{shown} starts with a UTF-8 byte order mark; save it without BOM");
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            let position = format!(" at line {} column {}", e.line(), e.column());
            let full = e.to_string();
            let what = full.strip_suffix(&position).unwrap_or(&full);
            anyhow::anyhow!(
                "invalid JSON in {shown} at line {}, column {}: {what}",
                e.line(),
                e.column()
            )
        })?;
        let Value::Object(fields) = value else {
            bail!(
                "{shown} must hold a JSON object like {{\"version\": \"1.2.3\"}}, not {}",
                describe(&value)
            );
        };
        let version = match fields.get(field::VERSION) {
            None => {
                bail!("{shown} has no \"version\" field (add one, e.g. \"version\": \"0.1.0\")")
            }
            Some(Value::String(text)) => parse_version(path, text)?,
            Some(other) => bail!(
                "{shown}: \"version\" must be a string like \"1.2.3\", not {}",
                describe(other)
            ),
        };
        Ok(VersionFile {
            path: path.to_path_buf(),
            fields,
            version,
        })
    }

    /// The semantic version (what image tag rules and releases start from).
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Replaces the version, keeping the field's place.
    pub(crate) fn set_version(&mut self, version: Version) {
        self.fields.insert(
            field::VERSION.to_string(),
            Value::String(version.to_string()),
        );
        self.version = version;
    }

    /// Every field, in file order.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    #[cfg(test)]
    /// Sets `release_name` (the human name of a release, e.g. `"Current Development"`),
    /// keeping the field's place, or appending it when new.
    pub(crate) fn set_release_name(&mut self, name: impl Into<String>) {
        self.set("release_name", Value::String(name.into()));
    }

    #[cfg(test)]
    /// Sets any field to a string, keeping its place (a new field is appended). Setting
    /// `version` validates it as [`set_version`](Self::set_version) does; an invalid one is
    /// refused and nothing changes.
    pub(crate) fn set_str(&mut self, key: &str, value: impl Into<String>) -> Result<()> {
        let value = value.into();
        if key == field::VERSION {
            let version = parse_version(&self.path, &value)?;
            self.set_version(version);
        } else {
            self.set(key, Value::String(value));
        }
        Ok(())
    }

    /// Records a build at `when`: `build_date` (UTC, microseconds), `git_commit` (git's
    /// short hash, the full one with `full_hash`), `git_branch` (the branch, or `"HEAD
    /// (detached)"`), and, with `record_dirty`, `git_dirty` (whether tracked files had
    /// uncommitted changes). A `git_dirty` already in the file is updated even without
    /// `record_dirty`, so a stale `false` never hides a dirty tree. Fields already present
    /// keep their place; new ones are appended in that order. Nothing else changes.
    pub fn stamp(&mut self, git: &GitFacts, when: SystemTime, full_hash: bool, record_dirty: bool) {
        self.set(field::BUILD_DATE, Value::String(utc_timestamp_micros(when)));
        self.set(
            field::GIT_COMMIT,
            Value::String(git.commit_hash(full_hash).to_string()),
        );
        self.set(
            field::GIT_BRANCH,
            Value::String(git.branch_label().to_string()),
        );
        if record_dirty || self.fields.contains_key(field::GIT_DIRTY) {
            self.set(field::GIT_DIRTY, Value::Bool(git.dirty()));
        }
    }

    fn set(&mut self, name: &str, value: Value) {
        self.fields.insert(name.to_string(), value);
    }

    /// The canonical bytes: pretty JSON with 2-space indent and a trailing newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(&self.fields).expect("a JSON map always serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Writes the file (its fields in their order, pretty-printed) to `path` atomically (temporary file, rename). A
    /// read-only file is refused before anything is written; in a dry run nothing is.
    pub fn save(&self, runner: &Runner, path: &Path) -> Result<()> {
        ensure_writable(path)?;
        write_atomic(runner, path, &self.to_bytes())
    }
}

/// Refuses an existing read-only file: checked from its permission bits rather than by
/// trying, so it holds for root too (who could write anyway).
pub(crate) fn ensure_writable(path: &Path) -> Result<()> {
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().readonly() {
            bail!(
                "cannot write {}: the file is read-only (make it writable, then run again)",
                path.display()
            );
        }
    }
    Ok(())
}

fn parse_version(path: &Path, text: &str) -> Result<Version> {
    match Version::parse(text) {
        Ok(version) => Ok(version),
        Err(e) => {
            let hint = match text.strip_prefix('v').map(Version::parse) {
                Some(Ok(_)) => format!("drop the leading \"v\": \"{}\"", &text[1..]),
                _ => "write MAJOR.MINOR.PATCH, e.g. \"1.2.0\"".to_string(),
            };
            bail!(
                "{}: \"version\" is {text:?}, which is not a semantic version: {e} ({hint})",
                path.display()
            )
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const SEED: &str = r#"{
  "version": "0.9.2",
  "build_date": "2025-01-01T00:00:00.000000",
  "git_commit": "0000000",
  "git_branch": "dev",
  "release_name": "Current Development",
  "features": [
    "mvtv",
    "genres"
  ],
  "extra": {
    "b": 1,
    "a": null
  }
}
"#;

    fn facts(branch: Option<&str>, changed: &[&str]) -> GitFacts {
        GitFacts {
            root: PathBuf::from("/repo"),
            commit: "abcdef0123456789abcdef0123456789abcdef01".to_string(),
            short_commit: "abcdef0".to_string(),
            branch: branch.map(str::to_string),
            detached: branch.is_none(),
            changed: changed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn when() -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456)
    }

    fn keys(file: &VersionFile) -> Vec<&str> {
        file.fields().keys().map(String::as_str).collect()
    }

    #[test]
    fn stamps_and_keeps_every_other_field_in_order() {
        let mut file = VersionFile::parse(Path::new("version.json"), SEED.as_bytes()).unwrap();
        assert_eq!(file.version(), &Version::new(0, 9, 2));
        file.stamp(&facts(Some("main"), &[]), when(), false, false);
        let expected = SEED
            .replace("2025-01-01T00:00:00.000000", "2023-11-14T22:13:20.123456")
            .replace("\"0000000\"", "\"abcdef0\"")
            .replace("\"dev\"", "\"main\"");
        assert_eq!(String::from_utf8(file.to_bytes()).unwrap(), expected);
    }

    #[test]
    fn appends_missing_fields_full_hash_detached_and_dirty() {
        let text = "{\"release_name\": \"x\", \"version\": \"1.0.0\"}";
        let mut file = VersionFile::parse(Path::new("v.json"), text.as_bytes()).unwrap();
        file.stamp(&facts(None, &["app.py"]), when(), true, true);
        assert_eq!(
            String::from_utf8(file.to_bytes()).unwrap(),
            "{\n  \"release_name\": \"x\",\n  \"version\": \"1.0.0\",\n  \
             \"build_date\": \"2023-11-14T22:13:20.123456\",\n  \
             \"git_commit\": \"abcdef0123456789abcdef0123456789abcdef01\",\n  \
             \"git_branch\": \"HEAD (detached)\",\n  \"git_dirty\": true\n}\n"
        );
        // A git_dirty already there is kept up to date even when not asked to record it.
        file.stamp(&facts(Some("main"), &[]), when(), false, false);
        assert_eq!(file.fields().get("git_dirty"), Some(&Value::Bool(false)));
        assert_eq!(
            keys(&file),
            [
                "release_name",
                "version",
                "build_date",
                "git_commit",
                "git_branch",
                "git_dirty"
            ]
        );
    }

    #[test]
    fn output_is_stable() {
        let file = VersionFile::parse(Path::new("v.json"), SEED.as_bytes()).unwrap();
        assert_eq!(
            file.to_bytes(),
            SEED.as_bytes(),
            "canonical input comes back byte for byte"
        );
        let compact = "{\"version\":\"1.0.0\",\"n\":1.5,\"u\":\"caf\u{e9}\",\"e\":[]}";
        let once = VersionFile::parse(Path::new("v.json"), compact.as_bytes())
            .unwrap()
            .to_bytes();
        let twice = VersionFile::parse(Path::new("v.json"), &once)
            .unwrap()
            .to_bytes();
        assert_eq!(once, twice);
        assert_eq!(
            String::from_utf8(once).unwrap(),
            "{\n  \"version\": \"1.0.0\",\n  \"n\": 1.5,\n  \"u\": \"caf\u{e9}\",\n  \"e\": []\n}\n"
        );
    }

    #[test]
    fn save_writes_atomically_and_stably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version.json");
        fs::write(&path, SEED).unwrap();
        let mut file = VersionFile::load(&path).unwrap();
        file.stamp(&facts(Some("main"), &[]), when(), false, false);
        file.save(&Runner::new(), &path).unwrap();
        let first = fs::read(&path).unwrap();
        VersionFile::load(&path)
            .unwrap()
            .save(&Runner::new(), &path)
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        // A dry run writes nothing.
        file.set_version(Version::new(2, 0, 0));
        file.save(&Runner::new().dry_run(true), &path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);
    }

    /// Writes `content` to a fresh `version.json`, expects `load` to fail with `message`
    /// (`{path}` replaced), and checks the file is byte-for-byte unchanged.
    fn load_fails(content: &str, message: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version.json");
        fs::write(&path, content).unwrap();
        let err = VersionFile::load(&path).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            message.replace("{path}", &path.display().to_string())
        );
        assert_eq!(fs::read(&path).unwrap(), content.as_bytes());
    }

    #[test]
    fn invalid_json_names_file_line_and_column() {
        load_fails(
            "{\n  \"version\": \"1.0.0\",\n  \"git_commit\" \"abc\"\n}\n",
            "invalid JSON in {path} at line 3, column 16: expected `:`",
        );
        load_fails(
            "{\n  \"version\": \"1.0.0\",\n}\n",
            "invalid JSON in {path} at line 3, column 1: trailing comma",
        );
        load_fails(
            "",
            "invalid JSON in {path} at line 1, column 0: EOF while parsing a value",
        );
    }

    #[test]
    fn not_an_object_or_no_version() {
        load_fails(
            "[\"1.0.0\"]",
            "{path} must hold a JSON object like {\"version\": \"1.2.3\"}, not an array",
        );
        load_fails(
            "{\"release_name\": \"x\"}",
            "{path} has no \"version\" field (add one, e.g. \"version\": \"0.1.0\")",
        );
        load_fails(
            "{\"version\": 1.2}",
            "{path}: \"version\" must be a string like \"1.2.3\", not the number 1.2",
        );
    }

    #[test]
    fn non_semver_version_names_file_value_and_problem() {
        load_fails(
            "{\"version\": \"1.2\"}",
            "{path}: \"version\" is \"1.2\", which is not a semantic version: unexpected end \
             of input while parsing minor version number (write MAJOR.MINOR.PATCH, e.g. \"1.2.0\")",
        );
        load_fails(
            "{\"version\": \"v1.2.3\"}",
            "{path}: \"version\" is \"v1.2.3\", which is not a semantic version: unexpected \
             character 'v' while parsing major version number (drop the leading \"v\": \"1.2.3\")",
        );
        load_fails(
            "{\"version\": \"01.2.3\"}",
            "{path}: \"version\" is \"01.2.3\", which is not a semantic version: invalid \
             leading zero in major version number (write MAJOR.MINOR.PATCH, e.g. \"1.2.0\")",
        );
    }

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version.json");
        let err = VersionFile::load(&path).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        assert!(!path.exists());
    }

    #[test]
    fn read_only_file_is_refused_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version.json");
        fs::write(&path, SEED).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let mut file = VersionFile::load(&path).unwrap();
        file.stamp(&facts(Some("main"), &[]), when(), false, false);
        let err = file.save(&Runner::new(), &path).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot write {}: the file is read-only (make it writable, then run again)",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), SEED.as_bytes());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version.json");
        let bytes = [b"\xEF\xBB\xBF".as_slice(), SEED.as_bytes()].concat();
        fs::write(&path, &bytes).unwrap();
        let err = VersionFile::load(&path).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "{} starts with a UTF-8 byte order mark; save it without BOM",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn typed_setters_keep_the_field_order() {
        let mut file = VersionFile::parse(Path::new("version.json"), SEED.as_bytes()).unwrap();
        file.set_release_name("Blue Moon");
        file.set_str("git_branch", "release/1.0").unwrap();
        file.set_str("channel", "beta").unwrap();
        file.set_str("version", "1.0.0-rc.1").unwrap();
        assert_eq!(
            keys(&file),
            [
                "version",
                "build_date",
                "git_commit",
                "git_branch",
                "release_name",
                "features",
                "extra",
                "channel"
            ]
        );
        assert_eq!(
            file.fields().get("release_name"),
            Some(&Value::from("Blue Moon"))
        );
        assert_eq!(
            file.fields().get("git_branch"),
            Some(&Value::from("release/1.0"))
        );
        assert_eq!(file.version().to_string(), "1.0.0-rc.1");
        let before = file.clone();
        let err = file.set_str("version", "v2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "version.json: \"version\" is \"v2\", which is not a semantic version: unexpected \
             character 'v' while parsing major version number (write MAJOR.MINOR.PATCH, e.g. \"1.2.0\")"
        );
        assert_eq!(file, before);
    }
}
