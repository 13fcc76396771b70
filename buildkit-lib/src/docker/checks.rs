//! [`BuildCheck`]: BuildKit's own Dockerfile checks (`docker buildx build
//! --call=check,format=json`, buildx 0.15 or later), read as typed findings.
//!
//! How the check runs and when it passes, fails or is skipped is documented for users on
//! [`BuildCheck`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

use super::build::Build;
use crate::cmd::{Cmd, Runner};
use crate::engine::{Capabilities, Feature};
use crate::finding::{Finding, Level};
use crate::plan::Step;

/// What the checks came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum CheckOutcome {
    /// BuildKit checked the Dockerfile: these are its findings (none when clean), in
    /// line order.
    Checked(Vec<Finding>),
    /// Nothing was checked, for this reason (a buildx or BuildKit without checks, a dry
    /// run): not a pass.
    Skipped(String),
}

/// The result of a [`BuildCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The Dockerfile checked.
    pub(crate) dockerfile: PathBuf,
    /// Findings, or why nothing was checked.
    pub(crate) outcome: CheckOutcome,
}

impl CheckReport {
    /// The findings (none when the checks were skipped).
    pub fn findings(&self) -> &[Finding] {
        match &self.outcome {
            CheckOutcome::Checked(findings) => findings,
            CheckOutcome::Skipped(_) => &[],
        }
    }

    /// Why nothing was checked, when nothing was.
    pub fn skipped(&self) -> Option<&str> {
        match &self.outcome {
            CheckOutcome::Skipped(reason) => Some(reason),
            CheckOutcome::Checked(_) => None,
        }
    }

    /// Fails when the checks found something, listing every finding. A report of checks
    /// that were skipped passes this (there is nothing to list); read
    /// [`CheckReport::skipped`] to say so, as a pipeline step does with
    /// [`StepCx::unsupported`](crate::pipeline::StepCx::unsupported).
    pub fn ensure_clean(&self) -> anyhow::Result<()> {
        let findings = self.findings();
        if findings.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "BuildKit's build checks found {} problem{} in {}:",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" },
            self.dockerfile.display()
        );
        for finding in findings {
            msg.push_str(&format!("\n  {finding}"));
        }
        msg.push_str(
            "\nhelp: fix the Dockerfile, or skip a rule with a `# check=skip=<rule>` line at \
             its top",
        );
        bail!(msg)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            CheckOutcome::Skipped(reason) => write!(
                f,
                "build checks of {} skipped: {reason}",
                self.dockerfile.display()
            ),
            CheckOutcome::Checked(findings) if findings.is_empty() => write!(
                f,
                "build checks of {}: no findings",
                self.dockerfile.display()
            ),
            CheckOutcome::Checked(findings) => {
                write!(
                    f,
                    "build checks of {}: {} finding{}",
                    self.dockerfile.display(),
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" }
                )?;
                for finding in findings {
                    write!(f, "\n  {finding}")?;
                }
                Ok(())
            }
        }
    }
}

/// BuildKit's Dockerfile checks for one build: `docker buildx build --call=check,format=json`
/// with the build's Dockerfile, target, build args and named contexts.
///
/// # Verdict
///
/// The check runs the Dockerfile frontend's rules (`FromAsCasing`, `JSONArgsRecommended`,
/// `UndefinedVar`, ...) for one build, with the build's target, build args and named
/// contexts, without building anything. buildx prints one JSON object on stdout and exits
/// 1 when it has a finding, 0 when it has none. The verdict is the library's, and never a
/// pass it did not earn:
///
/// - findings are read from the JSON, with the rule, its message and the Dockerfile line;
/// - a `buildError` (a Dockerfile that does not parse, a base image that cannot be
///   resolved) fails, naming BuildKit's message and line;
/// - output that is not the JSON expected fails, whatever the exit code;
/// - a buildx without `--call` (0.13, 0.14), or a builder whose BuildKit has no check
///   request, gives a report that says the checks were skipped and why
///   ([`CheckReport::skipped`]), never an empty list of findings.
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::Build;
/// use buildkit_lib::docker::BuildCheck;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let build = Build::new("fixtures/webapp")
///     .dockerfile("fixtures/webapp/Dockerfile.production")
///     .target("runtime")
///     .build_arg("PYTHON_IMAGE", "python:3.12-slim");
/// let plan = BuildCheck::of(&build).plan(&Runner::new())?.to_string();
/// assert!(
///     plan.contains(
///         "$ docker buildx build --progress=plain --call=check,format=json --file \
///          fixtures/webapp/Dockerfile.production --target runtime --build-arg \
///          PYTHON_IMAGE=python:3.12-slim fixtures/webapp\n"
///     ),
///     "{plan}"
/// );
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct BuildCheck {
    context: PathBuf,
    dockerfile: Option<PathBuf>,
    target: Option<String>,
    build_args: BTreeMap<String, String>,
    build_contexts: BTreeMap<String, String>,
    builder: Option<String>,
}

impl BuildCheck {
    /// Checks what `build` would build: its context, Dockerfile, target, build args,
    /// named contexts and builder (a named context must exist when the check runs). For
    /// `<context>/Dockerfile` alone: `BuildCheck::of(&Build::new(context))`.
    pub fn of(build: &Build) -> BuildCheck {
        BuildCheck {
            context: build.context.clone(),
            dockerfile: build.dockerfile.clone(),
            target: build.target.clone(),
            build_args: build.build_args.clone(),
            build_contexts: build.build_contexts.clone(),
            builder: build.builder.clone(),
        }
    }

    /// The Dockerfile checked: the one set, or `<context>/Dockerfile`.
    pub(crate) fn dockerfile_path(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }

    /// The command line. Exit 1 counts as an answer (buildx's "there are findings"); a dry
    /// run answers no findings.
    pub(crate) fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "build"]);
        if let Some(builder) = &self.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        cmd = cmd.args(["--progress=plain", "--call=check,format=json"]);
        if let Some(file) = &self.dockerfile {
            cmd = cmd.arg("--file").arg_path(file);
        }
        if let Some(target) = &self.target {
            cmd = cmd.args(["--target", target]);
        }
        for (k, v) in &self.build_args {
            cmd = crate::docker::build::build_arg(cmd, k, v);
        }
        for (k, v) in &self.build_contexts {
            cmd = cmd.arg("--build-context").arg(format!("{k}={v}"));
        }
        cmd.arg_path(&self.context)
            .accept_exit(1)
            .dry_answer(r#"{"warnings":null}"#)
    }
}

impl Step for BuildCheck {
    type Output = CheckReport;

    /// The findings, or why the checks were skipped.
    fn summary(&self, report: &CheckReport) -> Option<String> {
        Some(report.to_string())
    }

    /// Fails when the checks found something ([`CheckReport::ensure_clean`]).
    fn judge(&self, report: &CheckReport) -> anyhow::Result<()> {
        report.ensure_clean()
    }

    /// Runs the checks with the buildx `runner` reaches. Asks `docker buildx version`
    /// first (once per runner): a buildx without checks gives a skipped report, and so
    /// does a builder whose BuildKit refuses the check request; a buildx whose version
    /// cannot be read is asked to check. Fails when the Dockerfile cannot be checked (BuildKit's
    /// `buildError`), when buildx's output is not the JSON expected, and when the command
    /// fails otherwise; findings are not a failure here ([`CheckReport::ensure_clean`]
    /// decides that). A dry run's check answers no findings.
    fn run(&self, runner: &Runner) -> anyhow::Result<CheckReport> {
        let dockerfile = self.dockerfile_path();
        let skipped = |reason: String| CheckReport {
            dockerfile: dockerfile.clone(),
            outcome: CheckOutcome::Skipped(reason),
        };
        // A buildx that prints no version (so far, a dry run's answer) is asked to check
        // anyway: a BuildKit without checks refuses the request, which gives the
        // skipped report below.
        let printed = crate::engine::buildx_reported(runner)?;
        let capabilities =
            Capabilities::of_buildx(printed.as_deref().unwrap_or("(version not printed)"));
        if let (Some(_), Err(unsupported)) = (&printed, capabilities.supports(Feature::BuildChecks))
        {
            runner.note(&format!("build checks skipped: {unsupported}"));
            return Ok(skipped(unsupported.reason));
        }
        let refused = |text: &str| text.contains("unsupported request frontend.lint");
        let why_refused = || {
            format!(
                "the builder's BuildKit has no Dockerfile checks (it refused the \
                 `frontend.lint` request; BuildKit 0.14 or later has them, and buildx's \
                 fallback to the docker/dockerfile frontend image needs a registry): buildx \
                 {} asked {}",
                capabilities.buildx,
                self.builder.as_deref().unwrap_or("the current builder")
            )
        };
        let out = match runner.capture(&self.command()) {
            // Exit 1 is buildx's "findings"; a BuildKit that cannot check also exits 1.
            Ok(out) if out.exit_code != 0 && refused(&out.stderr) => {
                let reason = why_refused();
                runner.note(&format!("build checks skipped: {reason}"));
                return Ok(skipped(reason));
            }
            Ok(out) => out,
            Err(e) if e.tail.iter().any(|l| refused(l)) => {
                let reason = why_refused();
                runner.note(&format!("build checks skipped: {reason}"));
                return Ok(skipped(reason));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot run BuildKit's build checks of {}",
                    dockerfile.display()
                )))
            }
        };
        let findings = read_check_json(&out.stdout, out.exit_code, &dockerfile)?;
        let report = CheckReport {
            dockerfile,
            outcome: CheckOutcome::Checked(findings),
        };
        runner.note(&report.to_string());
        Ok(report)
    }
}

/// What `--call=check,format=json` prints (buildx's `lint.LintResults`).
#[derive(Debug, Deserialize)]
struct CheckJson {
    #[serde(default, deserialize_with = "crate::rows::nullable")]
    warnings: Vec<WarningRow>,
    #[serde(default, deserialize_with = "crate::rows::nullable")]
    sources: Vec<SourceRow>,
    #[serde(rename = "buildError", default)]
    build_error: Option<BuildErrorRow>,
}

#[derive(Debug, Deserialize)]
struct WarningRow {
    #[serde(rename = "ruleName")]
    rule_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    location: Option<LocationRow>,
}

#[derive(Debug, Deserialize)]
struct SourceRow {
    #[serde(default)]
    filename: String,
}

#[derive(Debug, Deserialize)]
struct BuildErrorRow {
    #[serde(default)]
    message: String,
    #[serde(default)]
    location: Option<LocationRow>,
}

#[derive(Debug, Deserialize)]
struct LocationRow {
    #[serde(rename = "sourceIndex", default)]
    source_index: usize,
    #[serde(default, deserialize_with = "crate::rows::nullable")]
    ranges: Vec<RangeRow>,
}

#[derive(Debug, Deserialize)]
struct RangeRow {
    #[serde(default)]
    start: Option<PositionRow>,
    #[serde(default)]
    end: Option<PositionRow>,
}

#[derive(Debug, Deserialize)]
struct PositionRow {
    #[serde(default)]
    line: u32,
}

impl LocationRow {
    fn lines(&self) -> (Option<u32>, Option<u32>) {
        let first = self.ranges.first();
        let line = |p: Option<&PositionRow>| p.map(|p| p.line).filter(|l| *l > 0);
        let start = line(first.and_then(|r| r.start.as_ref()));
        let end = line(self.ranges.last().and_then(|r| r.end.as_ref())).or(start);
        (start, end)
    }
}

/// Reads buildx's check JSON (`stdout`, exit code `code`) for `dockerfile` into findings;
/// fails on a build error, on output that is not that JSON, and on an exit 1 with
/// nothing found.
pub(crate) fn read_check_json(
    stdout: &str,
    code: i32,
    dockerfile: &Path,
) -> anyhow::Result<Vec<Finding>> {
    let what = "`docker buildx build --call=check,format=json`";
    let nothing = || {
        format!(
            "cannot read BuildKit's build checks of {} (exit code {code}); nothing was \
             checked",
            dockerfile.display()
        )
    };
    let value: serde_json::Value = crate::rows::parse(stdout, what).with_context(nothing)?;
    // Only the object buildx prints, with its `warnings` (null when clean): `[]`, `{}`
    // or another tool's JSON is not a clean result.
    if !value
        .as_object()
        .is_some_and(|o| o.contains_key("warnings"))
    {
        return Err(anyhow::anyhow!(
            "{what} printed JSON without its `warnings` field: {}",
            stdout.trim().chars().take(200).collect::<String>()
        ))
        .with_context(nothing);
    }
    let parsed: CheckJson = crate::rows::from_value(&value, what).with_context(nothing)?;
    let file_of = |location: Option<&LocationRow>| -> PathBuf {
        let index = location.map_or(0, |l| l.source_index);
        match parsed.sources.get(index).map(|s| s.filename.as_str()) {
            // The Dockerfile, as the check was given it.
            Some(name)
                if name.is_empty()
                    || dockerfile.file_name().and_then(|n| n.to_str()) == Some(name)
                    || Path::new(name) == dockerfile =>
            {
                dockerfile.to_path_buf()
            }
            Some(name) => PathBuf::from(name),
            None => dockerfile.to_path_buf(),
        }
    };
    if let Some(error) = &parsed.build_error {
        let (line, _) = error
            .location
            .as_ref()
            .map(LocationRow::lines)
            .unwrap_or_default();
        let file = file_of(error.location.as_ref());
        let place = match line {
            Some(line) => format!("{}:{line}", file.display()),
            None => file.display().to_string(),
        };
        bail!(
            "BuildKit cannot check {place}: {}\nhelp: the build would fail the same way; fix \
             the Dockerfile (or the build args and contexts it is given)",
            error.message
        );
    }
    let mut findings: Vec<Finding> = parsed
        .warnings
        .iter()
        .map(|w| {
            let (line, end_line) = w
                .location
                .as_ref()
                .map(LocationRow::lines)
                .unwrap_or_default();
            let message = if w.detail.is_empty() {
                w.description.clone()
            } else {
                w.detail.clone()
            };
            let file = file_of(w.location.as_ref()).display().to_string();
            let mut finding = Finding::new(
                "buildkit",
                &w.rule_name,
                Level::Warning,
                file,
                line,
                message,
            );
            finding.end_line = end_line;
            finding.url = w.url.clone().filter(|u| !u.is_empty());
            finding
        })
        .collect();
    if code != 0 && findings.is_empty() {
        bail!(
            "BuildKit's build checks of {} exited with code {code} but reported neither a \
             finding nor an error; nothing can be concluded",
            dockerfile.display()
        );
    }
    findings.sort_by(|a, b| (&a.file, a.line, &a.rule).cmp(&(&b.file, b.line, &b.rule)));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cmd::{Answer, Echo, FakeExecutor};

    const TWO_WARNINGS: &str = r#"{
      "warnings": [
        {"ruleName": "JSONArgsRecommended",
         "description": "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
         "url": "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
         "detail": "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
         "location": {"ranges": [{"start": {"line": 3}, "end": {"line": 3}}]}},
        {"ruleName": "FromAsCasing",
         "description": "The 'as' keyword should match the case of the 'from' keyword",
         "url": "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
         "detail": "'as' and 'FROM' keywords' casing do not match",
         "location": {"ranges": [{"start": {"line": 1}, "end": {"line": 1}}]}}
      ],
      "sources": [{"filename": "Dockerfile", "data": "", "language": "Dockerfile"}]
    }"#;

    #[test]
    fn findings_carry_rule_message_and_line_in_line_order() {
        let findings = read_check_json(TWO_WARNINGS, 1, Path::new("app/Dockerfile")).unwrap();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].rule, "FromAsCasing");
        assert_eq!(findings[0].line, Some(1));
        assert_eq!(findings[0].file, "app/Dockerfile");
        assert_eq!(
            findings[0].message,
            "'as' and 'FROM' keywords' casing do not match"
        );
        assert_eq!(findings[1].rule, "JSONArgsRecommended");
        assert_eq!(findings[1].line, Some(3));
        assert_eq!(
            findings[1].to_string(),
            "app/Dockerfile:3 JSONArgsRecommended warning: JSON arguments recommended for CMD to \
             prevent unintended behavior related to OS signals \
             (https://docs.docker.com/go/dockerfile/rule/json-args-recommended/)"
        );
    }

    #[test]
    fn clean_is_no_findings_and_null_reads_as_none() {
        let clean = r#"{"warnings": null, "sources": [{"filename": "Dockerfile"}]}"#;
        assert!(read_check_json(clean, 0, Path::new("Dockerfile"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_build_error_fails_with_its_message_and_line() {
        let json = r#"{"warnings": null, "sources": [{"filename": "Dockerfile.bad"}],
          "buildError": {"message": "dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)",
                         "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]}}}"#;
        for code in [0, 1] {
            let err = read_check_json(json, code, Path::new("x/Dockerfile.bad"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "BuildKit cannot check x/Dockerfile.bad:2: dockerfile parse error on line \
                     2: unknown instruction: RUNN"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn output_that_is_not_the_json_never_passes() {
        for (text, code) in [
            ("", 1),
            ("", 0),
            ("Check complete, no warnings found.\n", 0),
            ("[]", 0),
            ("{}", 0),
            (r#"{"sources": []}"#, 0),
        ] {
            let err = read_check_json(text, code, Path::new("Dockerfile")).unwrap_err();
            assert!(
                format!("{err:#}").contains("nothing was checked"),
                "{text:?} {code}: {err:#}"
            );
        }
        let nothing = r#"{"warnings": [], "sources": []}"#;
        let err = read_check_json(nothing, 1, Path::new("Dockerfile")).unwrap_err();
        assert!(
            err.to_string().contains("neither a finding nor an error"),
            "{err}"
        );
    }

    #[test]
    fn an_old_buildx_skips_and_says_why_without_running_the_check() {
        let fake = Arc::new(FakeExecutor::new().on(
            ["docker", "buildx", "version"],
            Answer::ok("github.com/docker/buildx v0.13.1 abc\n"),
        ));
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
        let dir = tempfile::tempdir().unwrap();
        let report = BuildCheck::of(&Build::new(dir.path()))
            .run(&runner)
            .unwrap();
        assert_eq!(
            report.skipped(),
            Some(
                "buildx v0.13.1 has no build checks (`docker buildx build --call=check` \
                 needs buildx 0.15 or later)"
            )
        );
        assert!(report.findings().is_empty());
        assert!(
            fake.seen()
                .iter()
                .all(|argv| !argv.iter().any(|a| a.starts_with("--call"))),
            "{:?}",
            fake.seen()
        );
    }

    #[test]
    fn findings_on_exit_1_are_read_and_ensure_clean_lists_them() {
        let fake = Arc::new(
            FakeExecutor::new()
                .on(
                    ["docker", "buildx", "version"],
                    Answer::ok("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n"),
                )
                .on(["docker", "buildx", "build"], Answer::fail(1, TWO_WARNINGS)),
        );
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
        let report = BuildCheck::of(&Build::new("ctx")).run(&runner).unwrap();
        assert_eq!(report.findings().len(), 2);
        let err = report.ensure_clean().unwrap_err().to_string();
        assert!(
            err.starts_with("BuildKit's build checks found 2 problems in ctx/Dockerfile:\n  ctx/Dockerfile:1 FromAsCasing"),
            "{err}"
        );
    }

    #[test]
    fn a_buildkit_that_refuses_the_check_request_is_a_skip_that_says_so() {
        let fake = Arc::new(
            FakeExecutor::new()
                .on(
                    ["docker", "buildx", "version"],
                    Answer::ok("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n"),
                )
                .on(
                    ["docker", "buildx", "build"],
                    Answer::fail(
                        2,
                        "ERROR: failed to build: failed to solve: unsupported request \
                         frontend.lint: unsupported request frontend.lint\n",
                    ),
                ),
        );
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
        let report = BuildCheck::of(&Build::new("ctx")).run(&runner).unwrap();
        assert!(
            report
                .skipped()
                .is_some_and(|r| r.starts_with("the builder's BuildKit has no Dockerfile checks")),
            "{report}"
        );
    }

    #[test]
    fn an_exit_other_than_0_or_1_fails() {
        let fake = Arc::new(
            FakeExecutor::new()
                .on(
                    ["docker", "buildx", "version"],
                    Answer::ok("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n"),
                )
                .on(["docker", "buildx", "build"], Answer::fail(125, "")),
        );
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
        assert!(BuildCheck::of(&Build::new("ctx")).run(&runner).is_err());
    }
}
