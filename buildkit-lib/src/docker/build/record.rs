//! BuildKit's own record of a build (`BuildRecord`): the reference buildx writes to the
//! metadata file (`buildx.build.ref`), and, where buildx has `docker buildx history`
//! (0.21 or later, with `inspect --format json`), the record's step counts and, for a
//! failed build, BuildKit's own error.
//!
//! A failed build writes no metadata file, so its record is looked up: the builder's
//! failed records created while the build ran (`history ls`), each read (`history
//! inspect`) and kept only when its target, Dockerfile, context and build args are the
//! build's. One match or nothing: two records that both match are not told apart by
//! guessing.

use std::fmt;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Build;
use crate::cmd::{Cmd, Runner};
use crate::engine::{Capabilities, Feature};

/// BuildKit's record of one build, as far as the buildx talked to can tell.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct BuildRecord {
    /// `builder/node/id`: `buildx.build.ref` of the metadata file; for a failed build
    /// (which writes none), the matching record of `docker buildx history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<String>,
    /// Whether the build succeeded.
    pub(crate) succeeded: bool,
    /// How long BuildKit took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seconds: Option<f64>,
    /// Steps (vertexes) in the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) total_steps: Option<u64>,
    /// Steps taken from the build cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cached_steps: Option<u64>,
    /// Steps completed (those that ran and those cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) completed_steps: Option<u64>,
    /// BuildKit's own error, for a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<RecordedError>,
    /// Why the history part could not be read (a buildx without `docker buildx
    /// history`, no record that matches, ...), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) unavailable: Option<String>,
}

/// BuildKit's error of a failed build, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct RecordedError {
    /// BuildKit's message (`process "/bin/sh -c ..." did not complete successfully: exit
    /// code: 3`).
    pub(crate) message: String,
    /// The step that failed (`[3/3] RUN ...`), when BuildKit names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) step: Option<String>,
    /// The last lines that step printed (secrets the runner knows masked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) logs: Vec<String>,
}

impl BuildRecord {
    /// A record with nothing from the history, for this reason.
    pub(crate) fn without_history(reference: Option<String>, succeeded: bool, why: String) -> Self {
        BuildRecord {
            reference,
            succeeded,
            unavailable: Some(why),
            ..BuildRecord::default()
        }
    }
}

impl fmt::Display for BuildRecord {
    /// One line: `build default/default/abc: 3 of 7 steps cached, 1.2s` (or the error).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "build {}",
            self.reference.as_deref().unwrap_or("(no reference)")
        )?;
        if let (Some(cached), Some(total)) = (self.cached_steps, self.total_steps) {
            write!(f, ": {cached} of {total} steps cached")?;
        }
        if let Some(seconds) = self.seconds {
            write!(f, ", {seconds:.1}s")?;
        }
        if let Some(error) = &self.error {
            write!(f, "; BuildKit: {}", error.summary())?;
        }
        if let Some(why) = &self.unavailable {
            write!(f, " (BuildKit's record: {why})")?;
        }
        Ok(())
    }
}

/// A `docker buildx build` that failed, with BuildKit's record of it: the context of the
/// error [`Build::run`](crate::plan::Step::run) returns when the build command itself failed. Its message is the
/// one `Build::run` always gave (`cannot build image ...`, with the command and the last
/// lines of buildx's output below it in the chain, as a
/// [`CommandError`](crate::CommandError)); BuildKit's own error, where buildx keeps build
/// records (0.21+), is in its record (buildx already printed it once, so the message does
/// not repeat it): a pipeline puts the record in its report (`builds` of the step in
/// `report.json`) and BuildKit's words in the step's GitHub annotation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildFailed {
    /// What failed, as `Build::run` says it (`cannot build image app:dev`).
    pub(crate) message: String,
    /// BuildKit's record of the build (with its `unavailable` saying why when there is
    /// none).
    pub(crate) record: BuildRecord,
}

impl fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl RecordedError {
    /// One line: ``step `[3/3] RUN ...` failed: <BuildKit's message>``.
    pub(crate) fn summary(&self) -> String {
        match &self.step {
            Some(step) => format!("step `{step}` failed: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl std::error::Error for BuildFailed {}

/// `docker buildx history inspect ID --format json` (with `--builder`).
fn inspect_cmd(id: &str, builder: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("docker").args(["buildx", "history", "inspect"]);
    if let Some(builder) = builder {
        cmd = cmd.args(["--builder", builder]);
    }
    cmd.args([id, "--format", "json"])
        .timeout(Duration::from_secs(30))
        .read_only()
}

/// `docker buildx history ls --format json --no-trunc` (with `--builder`).
fn ls_cmd(builder: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("docker").args(["buildx", "history", "ls"]);
    if let Some(builder) = builder {
        cmd = cmd.args(["--builder", builder]);
    }
    cmd.args(["--format", "json", "--no-trunc"])
        .timeout(Duration::from_secs(30))
        .read_only()
}

/// Whether the buildx `runner` reaches keeps build records; the reason when not.
fn history_available(runner: &Runner) -> Result<(), String> {
    match Capabilities::read(runner) {
        Ok(capabilities) => capabilities
            .supports(Feature::BuildHistory)
            .map_err(|u| u.reason),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The record of a successful build whose metadata named `reference`
/// (`builder/node/id`), with its step counts when buildx keeps build records. Never
/// fails: what cannot be read is said in [`BuildRecord::unavailable`].
pub(crate) fn of_success(runner: &Runner, reference: Option<String>) -> BuildRecord {
    let Some(reference) = reference else {
        return BuildRecord::without_history(
            None,
            true,
            "the build's metadata file names no `buildx.build.ref`".into(),
        );
    };
    if let Err(why) = history_available(runner) {
        return BuildRecord::without_history(Some(reference), true, why);
    }
    let mut parts = reference.splitn(3, '/');
    let (builder, _node, id) = (parts.next(), parts.next(), parts.next());
    let (Some(builder), Some(id)) = (builder, id) else {
        return BuildRecord::without_history(
            Some(reference.clone()),
            true,
            format!("`{reference}` is not a builder/node/id reference"),
        );
    };
    match inspect(runner, id, Some(builder)) {
        Ok(row) => row.into_record(runner, Some(reference)),
        Err(why) => BuildRecord::without_history(Some(reference), true, why),
    }
}

/// The record of `build`, which failed after starting at `started` (on the builder it
/// names, else the current one): found among the builder's failed records, when exactly
/// one matches. Never fails: what cannot be read is said in
/// [`BuildRecord::unavailable`].
pub(crate) fn of_failure(runner: &Runner, build: &Build, started: SystemTime) -> BuildRecord {
    if let Err(why) = history_available(runner) {
        return BuildRecord::without_history(None, false, why);
    }
    let builder = build.builder.as_deref();
    let listed = match runner.capture(&ls_cmd(builder)) {
        Ok(out) => out.stdout,
        Err(e) => {
            return BuildRecord::without_history(
                None,
                false,
                format!(
                    "`docker buildx history ls` failed: {}",
                    e.tail.last().cloned().unwrap_or_else(|| e.to_string())
                ),
            )
        }
    };
    let ended = SystemTime::now();
    // The daemon's clock stamps records; allow it to differ a little from ours, but not
    // so much that the same build run moments before counts.
    let slack = Duration::from_secs(2);
    let (from, to) = (started.checked_sub(slack).unwrap_or(started), ended + slack);
    let mut candidates: Vec<(SystemTime, String)> = listed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<LsRow>(l).ok())
        .filter(|r| r.status.eq_ignore_ascii_case("error"))
        .filter_map(|r| {
            let created = crate::time::parse_rfc3339(&r.created_at)?;
            (created >= from && created <= to).then_some((created, r.reference))
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut matches = Vec::new();
    let mut unread = Vec::new();
    // Records of other builds may fail at the same time; a handful is plenty.
    for (_, reference) in candidates.iter().take(8) {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        match inspect(runner, id, builder) {
            Ok(row) if row.is_of(build) => matches.push((reference.clone(), row)),
            Ok(_) => {}
            Err(why) => unread.push(why),
        }
    }
    match matches.len() {
        1 => {
            let (reference, row) = matches.remove(0);
            row.into_record(runner, Some(reference))
        }
        0 => BuildRecord::without_history(
            None,
            false,
            match unread.first() {
                Some(why) => format!("no failed record of this build could be read ({why})"),
                None => "buildx's history has no failed record of this build (it may have \
                         failed before BuildKit started it)"
                    .into(),
            },
        ),
        n => BuildRecord::without_history(
            None,
            false,
            format!(
                "{n} failed records in buildx's history match this build ({}); not guessing \
                 which is this one",
                matches
                    .iter()
                    .map(|(r, _)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

fn inspect(runner: &Runner, id: &str, builder: Option<&str>) -> Result<InspectRow, String> {
    let out = runner.capture(&inspect_cmd(id, builder)).map_err(|e| {
        format!(
            "`docker buildx history inspect {id}` failed: {}",
            e.tail.last().cloned().unwrap_or_else(|| e.to_string())
        )
    })?;
    crate::rows::parse::<InspectRow>(&out.stdout, "`docker buildx history inspect`")
        .map_err(|e| format!("{e:#}"))
}

/// One line of `docker buildx history ls --format json`.
#[derive(Debug, Deserialize)]
struct LsRow {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    created_at: String,
}

/// What the library reads of `docker buildx history inspect --format json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectRow {
    #[serde(default)]
    context: String,
    #[serde(default)]
    dockerfile: String,
    #[serde(default)]
    target: String,
    /// Nanoseconds (Go's `time.Duration`).
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<ErrorRow>,
    #[serde(default)]
    num_completed_steps: Option<u64>,
    #[serde(default)]
    num_total_steps: Option<u64>,
    #[serde(default)]
    num_cached_steps: Option<u64>,
    #[serde(default, deserialize_with = "crate::rows::nullable")]
    build_args: Vec<KeyValueRow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorRow {
    #[serde(default)]
    message: String,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "crate::rows::nullable")]
    logs: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyValueRow {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// Lines of a failed step's log kept in a record.
const LOG_LINES: usize = 20;

impl InspectRow {
    fn into_record(self, runner: &Runner, reference: Option<String>) -> BuildRecord {
        let succeeded = self.error.is_none()
            && matches!(self.status.to_ascii_lowercase().as_str(), "completed" | "");
        let error = self.error.map(|e| {
            let skip = e.logs.len().saturating_sub(LOG_LINES);
            RecordedError {
                message: runner.redact(&e.message),
                step: Some(runner.redact(&e.name)).filter(|n| !n.is_empty()),
                logs: e.logs[skip..].iter().map(|l| runner.redact(l)).collect(),
            }
        });
        BuildRecord {
            reference,
            succeeded,
            seconds: self.duration.map(|ns| ns as f64 / 1e9),
            total_steps: self.num_total_steps,
            cached_steps: self.num_cached_steps,
            completed_steps: self.num_completed_steps,
            error,
            unavailable: None,
        }
    }

    /// Whether this record is of `build`: the same target, Dockerfile name, context and
    /// build args.
    fn is_of(&self, build: &Build) -> bool {
        let target = build.target.as_deref().unwrap_or("");
        if !self.target.eq_ignore_ascii_case(target) {
            return false;
        }
        let dockerfile = build.dockerfile_path();
        let wanted = dockerfile
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let recorded = Path::new(if self.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            &self.dockerfile
        });
        if recorded.file_name().and_then(|n| n.to_str()) != Some(wanted) {
            return false;
        }
        if !same_context(&self.context, &build.context) {
            return false;
        }
        build.build_args.iter().all(|(k, v)| {
            self.build_args
                .iter()
                .any(|kv| &kv.name == k && &kv.value == v)
        })
    }
}

/// Whether a record's context (absolute, relative to the git repository's root, or as
/// given) names `context`.
fn same_context(recorded: &str, context: &Path) -> bool {
    if recorded.is_empty() || recorded == "." {
        // Not said, or the client's working directory: other fields decide.
        return true;
    }
    let recorded_path = Path::new(recorded);
    if recorded_path == context {
        return true;
    }
    let Ok(ours) = std::fs::canonicalize(context) else {
        return false;
    };
    if recorded_path.is_absolute() {
        return std::fs::canonicalize(recorded_path).is_ok_and(|p| p == ours);
    }
    let tail: Vec<Component> = recorded_path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let ours: Vec<Component> = ours.components().collect();
    !tail.is_empty() && ours.ends_with(&tail)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cmd::{Answer, Echo, FakeExecutor};

    const NEW_BUILDX: &str = "github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n";

    fn runner(fake: FakeExecutor) -> (Runner, Arc<FakeExecutor>) {
        let fake = Arc::new(fake);
        (
            Runner::new().echo(Echo::Silent).with_executor(fake.clone()),
            fake,
        )
    }

    #[test]
    fn a_success_reads_its_steps_from_the_record_its_metadata_names() {
        let (runner, fake) = runner(
            FakeExecutor::new()
                .on(["docker", "buildx", "version"], Answer::ok(NEW_BUILDX))
                .on(
                    ["docker", "buildx", "history", "inspect"],
                    Answer::ok(
                        r#"{"Ref":"abc","Status":"completed","Duration":1500000000,
                            "NumCompletedSteps":7,"NumTotalSteps":7,"NumCachedSteps":5}"#,
                    ),
                ),
        );
        let record = of_success(&runner, Some("mybuilder/node0/abc".into()));
        assert_eq!(record.reference.as_deref(), Some("mybuilder/node0/abc"));
        assert!(record.succeeded);
        assert_eq!(
            (record.cached_steps, record.total_steps),
            (Some(5), Some(7))
        );
        assert_eq!(record.seconds, Some(1.5));
        assert_eq!(record.unavailable, None);
        assert_eq!(
            fake.seen().last().unwrap().join(" "),
            "docker buildx history inspect --builder mybuilder abc --format json"
        );
        assert_eq!(
            record.to_string(),
            "build mybuilder/node0/abc: 5 of 7 steps cached, 1.5s"
        );
    }

    /// Moved from the e2e test of a successful build's record: how a record reads.
    #[test]
    fn a_record_reads_as_one_line() {
        let record = BuildRecord {
            reference: Some("default/default/abc".into()),
            succeeded: true,
            seconds: Some(1.23),
            total_steps: Some(7),
            cached_steps: Some(3),
            ..BuildRecord::default()
        };
        assert_eq!(
            record.to_string(),
            "build default/default/abc: 3 of 7 steps cached, 1.2s"
        );
        let failed = BuildRecord {
            error: Some(RecordedError {
                message: "exit code: 3".into(),
                step: Some("[3/3] RUN false".into()),
                logs: Vec::new(),
            }),
            ..BuildRecord::without_history(None, false, "no history".into())
        };
        assert_eq!(
            failed.to_string(),
            "build (no reference); BuildKit: step `[3/3] RUN false` failed: exit code: 3 \
             (BuildKit's record: no history)"
        );
    }

    #[test]
    fn an_old_buildx_keeps_the_reference_and_says_why_there_is_no_more() {
        let (runner, fake) = runner(FakeExecutor::new().on(
            ["docker", "buildx", "version"],
            Answer::ok("github.com/docker/buildx v0.13.1 abc\n"),
        ));
        let record = of_success(&runner, Some("default/default/abc".into()));
        assert_eq!(record.reference.as_deref(), Some("default/default/abc"));
        assert_eq!(record.cached_steps, None);
        assert!(
            record
                .unavailable
                .as_deref()
                .is_some_and(|w| w.starts_with("buildx v0.13.1 has no build records")),
            "{record:?}"
        );
        assert_eq!(fake.seen().len(), 1, "only the version was asked");
        let failed = of_failure(&runner, &Build::new("."), SystemTime::now());
        assert!(!failed.succeeded);
        assert!(failed.unavailable.is_some());
    }

    fn ls_line(reference: &str, status: &str, created: SystemTime) -> String {
        format!(
            r#"{{"ref":"{reference}","name":"x","status":"{status}","created_at":"{}"}}"#,
            rfc3339_nanos(created)
        )
    }

    fn rfc3339_nanos(t: SystemTime) -> String {
        let text = crate::time::rfc3339(t);
        let nanos = t
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{}.{nanos:09}Z", text.trim_end_matches('Z'))
    }

    #[test]
    fn a_failure_is_found_by_time_status_and_what_was_built() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("app");
        std::fs::create_dir(&context).unwrap();
        let now = SystemTime::now();
        let listed = [
            // Ours: failed just now, same target, Dockerfile, context and args.
            ls_line("default/default/ours", "Error", now),
            // Someone else's failure at the same time: another target.
            ls_line("default/default/other", "Error", now),
            // A success, and an old failure: never read.
            ls_line("default/default/fine", "Completed", now),
            ls_line(
                "default/default/old",
                "Error",
                now - Duration::from_secs(3600),
            ),
        ]
        .join("\n");
        let ours = format!(
            r#"{{"Context":"{}","Dockerfile":"Dockerfile.prod","Target":"runtime",
                "Status":"failed","NumTotalSteps":6,"NumCachedSteps":1,"NumCompletedSteps":6,
                "BuildArgs":[{{"Name":"PY","Value":"3.11"}}],
                "Error":{{"Code":2,"Message":"process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
                          "Name":"[3/3] RUN exit 3","Logs":["failing"]}}}}"#,
            context.display()
        );
        let other = r#"{"Context":".","Dockerfile":"Dockerfile.prod","Target":"builder",
                         "Status":"failed","Error":{"Message":"other"}}"#;
        let (runner, fake) = runner(
            FakeExecutor::new()
                .on(["docker", "buildx", "version"], Answer::ok(NEW_BUILDX))
                .on(["docker", "buildx", "history", "ls"], Answer::ok(listed))
                .on(
                    ["docker", "buildx", "history", "inspect", "ours"],
                    Answer::ok(ours),
                )
                .on(
                    ["docker", "buildx", "history", "inspect", "other"],
                    Answer::ok(other),
                ),
        );
        let build = Build::new(&context)
            .dockerfile(context.join("Dockerfile.prod"))
            .target("runtime")
            .build_arg("PY", "3.11");
        let record = of_failure(&runner, &build, now - Duration::from_secs(2));
        assert_eq!(record.reference.as_deref(), Some("default/default/ours"));
        assert!(!record.succeeded);
        let error = record.error.as_ref().unwrap();
        assert_eq!(error.step.as_deref(), Some("[3/3] RUN exit 3"));
        assert_eq!(
            error.message,
            "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"
        );
        assert_eq!(error.logs, ["failing"]);
        let inspected: Vec<String> = fake
            .seen()
            .iter()
            .filter(|a| a.get(3).is_some_and(|w| w == "inspect"))
            .map(|a| a[4].clone())
            .collect();
        assert_eq!(inspected, ["ours", "other"]);

        // The same build with another build arg value is not ours: nothing is guessed.
        let record = of_failure(&runner, &build.clone().build_arg("PY", "3.12"), now);
        assert_eq!(record.reference, None);
        assert!(record.error.is_none());
        assert!(record.unavailable.is_some());
    }

    #[test]
    fn two_matching_failures_are_not_told_apart_by_guessing() {
        let now = SystemTime::now();
        let listed = [
            ls_line("default/default/a", "Error", now),
            ls_line("default/default/b", "Error", now),
        ]
        .join("\n");
        let row = r#"{"Context":".","Dockerfile":"Dockerfile","Status":"failed","Error":{"Message":"boom"}}"#;
        let (runner, _) = runner(
            FakeExecutor::new()
                .on(["docker", "buildx", "version"], Answer::ok(NEW_BUILDX))
                .on(["docker", "buildx", "history", "ls"], Answer::ok(listed))
                .on(["docker", "buildx", "history", "inspect"], Answer::ok(row)),
        );
        let record = of_failure(&runner, &Build::new("."), now);
        assert_eq!(record.reference, None);
        assert!(
            record
                .unavailable
                .as_deref()
                .is_some_and(|w| w.starts_with("2 failed records")),
            "{record:?}"
        );
    }

    #[test]
    fn contexts_match_absolute_relative_to_the_repository_or_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("fixtures/webapp");
        std::fs::create_dir_all(&context).unwrap();
        assert!(same_context(&context.display().to_string(), &context));
        assert!(same_context("fixtures/webapp", &context));
        assert!(same_context("webapp", &context));
        assert!(!same_context("fixtures/other", &context));
        assert!(!same_context("/somewhere/else", &context));
        assert!(same_context(".", &context));
    }

    #[test]
    fn a_failed_build_says_the_usual_message_and_keeps_buildkits_error_in_its_record() {
        let failed = BuildFailed {
            message: "cannot build image app:dev".into(),
            record: BuildRecord {
                reference: Some("default/default/x".into()),
                error: Some(RecordedError {
                    message: "exit code: 3".into(),
                    step: Some("[2/2] RUN exit 3".into()),
                    logs: Vec::new(),
                }),
                ..BuildRecord::default()
            },
        };
        // buildx printed BuildKit's error already: the message does not repeat it.
        assert_eq!(failed.to_string(), "cannot build image app:dev");
        assert_eq!(
            failed.record.error.as_ref().unwrap().summary(),
            "step `[2/2] RUN exit 3` failed: exit code: 3"
        );
        assert_eq!(
            failed.record.to_string(),
            "build default/default/x; BuildKit: step `[2/2] RUN exit 3` failed: exit code: 3"
        );
    }
}
