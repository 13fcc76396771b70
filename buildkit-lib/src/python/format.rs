//! [`Format`]: black and isort format checks (and fixes) with pinned tool versions.
//!
//! Each step builds its exact command line as a value ([`Format::command`]) and runs it
//! from its [`ToolEnv`] ([`Format::tools`]) with the pinned version added. A failing check becomes a
//! [`FormatError`] listing the files that would change and the command that fixes them.
//!
//! A check never streams its diff to the terminal (a badly formatted tree makes thousands
//! of lines): the terminal gets the command line, and the error the file list, the count
//! and the fix command; the full diff goes to the runner's step log only. [`CheckAll`]
//! runs black and isort both, even when black fails, and returns one [`FormatError`]
//! with both answers.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::venv::{ToolEnv, Tools, BLACK_VERSION, ISORT_VERSION};
use crate::cmd::{Cmd, CommandError, Echo, Runner};
use crate::plan::Step;

/// The command the error of a failing check suggests, unless a step sets its own.
pub(crate) const DEFAULT_FIX_HINT: &str = "cargo xtask fmt";

/// Whether a format step only checks or rewrites the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum FormatMode {
    /// Report files that would change (and the diff); fail if any.
    Check,
    /// Rewrite the files in place.
    Fix,
}

/// A format check that found files to change: a [`Format`] check's, or a [`CheckAll`]'s
/// (then with each tool's answer in its `Display`). Downcast an `anyhow::Error` to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormatError {
    /// The tool (`black`, `isort`); for [`CheckAll`], the tools, in the order they ran.
    pub(crate) tool: String,
    /// The files to change, as the tools named them (for [`CheckAll`], black's and then
    /// isort's).
    pub files: Vec<String>,
    /// How many files the tool said would change (may exceed `files.len()` when the
    /// output was cut and no log held it).
    pub(crate) count: usize,
    /// The command that fixes them.
    pub(crate) fix: String,
    /// The step log holding the full diff, when the runner had one.
    pub(crate) log: Option<PathBuf>,
    /// For [`CheckAll`]: each tool's answer, in the order they ran; empty for one check.
    pub(crate) checks: Vec<(String, CheckOutcome)>,
}

/// One tool's answer in a [`CheckAll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    /// Nothing to change.
    Clean,
    /// Files to change.
    Changes(FormatError),
    /// The tool could not run or answer (the error, with its causes).
    Failed(String),
}

impl FormatError {
    fn write_files(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.count == 1 { "file" } else { "files" };
        write!(f, "{} would change {} {noun}:", self.tool, self.count)?;
        for file in &self.files {
            write!(f, "\n  {file}")?;
        }
        if self.count > self.files.len() {
            write!(f, "\n  ... and {} more", self.count - self.files.len())?;
        }
        Ok(())
    }

    /// The answers of a [`CheckAll`] (each tool's, in order), in the one error it
    /// returns: a [`FormatError`] when a tool found files to change, else the message
    /// of the tools that could not run.
    fn of_checks(checks: Vec<(String, CheckOutcome)>, log: Option<PathBuf>) -> anyhow::Error {
        let changes: Vec<&FormatError> = checks
            .iter()
            .filter_map(|(_, outcome)| match outcome {
                CheckOutcome::Changes(e) => Some(e),
                _ => None,
            })
            .collect();
        let error = FormatError {
            tool: checks
                .iter()
                .map(|(tool, _)| tool.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            files: changes.iter().flat_map(|e| e.files.clone()).collect(),
            count: changes.iter().map(|e| e.count).sum(),
            fix: changes.first().map(|e| e.fix.clone()).unwrap_or_default(),
            log,
            checks: Vec::new(),
        };
        let error = FormatError { checks, ..error };
        if error.count == 0 && error.files.is_empty() {
            anyhow::anyhow!("{error}")
        } else {
            anyhow::Error::new(error)
        }
    }

    /// The `Display` of a [`CheckAll`]'s error: each tool's answer, the fixes, the log.
    fn write_checks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fixes: Vec<&str> = Vec::new();
        let mut changed = false;
        for (i, (tool, outcome)) in self.checks.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match outcome {
                CheckOutcome::Clean => write!(f, "{tool}: nothing to change")?,
                CheckOutcome::Changes(format) => {
                    changed = true;
                    format.write_files(f)?;
                    if !fixes.contains(&format.fix.as_str()) {
                        fixes.push(&format.fix);
                    }
                }
                CheckOutcome::Failed(message) => f.write_str(message)?,
            }
        }
        for fix in fixes {
            write!(f, "\nhelp: run `{fix}` to fix them")?;
        }
        if let (Some(log), true) = (&self.log, changed) {
            write!(f, "\nthe diffs are in {}", log.display())?;
        }
        Ok(())
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.checks.is_empty() {
            return self.write_checks(f);
        }
        self.write_files(f)?;
        write!(f, "\nhelp: run `{}` to fix them", self.fix)?;
        if let Some(log) = &self.log {
            write!(f, "\nthe diff is in {}", log.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for FormatError {}

/// Which formatter a [`Format`] step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Formatter {
    /// Black.
    Black,
    /// isort, with `--profile black`.
    Isort,
}

impl Formatter {
    /// The program (and its PyPI package) name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Formatter::Black => "black",
            Formatter::Isort => "isort",
        }
    }
}

/// A format check (or fix) over some paths with black or isort (`--profile black`), at a
/// pinned version: [`Format::black`] or [`Format::isort`], then the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Format {
    /// Black or isort.
    pub(crate) tool: Formatter,
    /// The exact tool version (the tool environment pins it).
    pub(crate) version: String,
    /// Files and directories to format, relative to `cwd` when set.
    pub(crate) paths: Vec<PathBuf>,
    /// Check or fix.
    pub(crate) mode: FormatMode,
    /// Directory to run in (the project root), if not the current one.
    pub(crate) cwd: Option<PathBuf>,
    /// The command a failing check tells the user to run.
    pub(crate) fix_hint: String,
    /// The tool environment it runs from (this step's pin added).
    pub(crate) tools: ToolEnv,
}

impl Format {
    fn new<I, P>(tool: Formatter, version: &str, paths: I) -> Format
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Format {
            tool,
            version: version.into(),
            paths: paths.into_iter().map(Into::into).collect(),
            mode: FormatMode::Check,
            cwd: None,
            fix_hint: DEFAULT_FIX_HINT.into(),
            tools: ToolEnv::under("target"),
        }
    }

    /// A black check of `paths` with the library's pinned Black version.
    pub fn black<I, P>(paths: I) -> Format
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Format::new(Formatter::Black, BLACK_VERSION, paths)
    }

    /// An isort check of `paths` with the library's pinned isort version and `--profile
    /// black`.
    pub fn isort<I, P>(paths: I) -> Format
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Format::new(Formatter::Isort, ISORT_VERSION, paths)
    }

    /// The same step rewriting the files instead.
    pub fn fix(self) -> Format {
        Format {
            mode: FormatMode::Fix,
            ..self
        }
    }

    /// Runs in `dir`.
    pub fn cwd(self, dir: impl Into<PathBuf>) -> Format {
        Format {
            cwd: Some(dir.into()),
            ..self
        }
    }

    /// The command a failing check tells the user to run (default `cargo xtask fmt`).
    pub fn fix_hint(mut self, fix_hint: impl Into<String>) -> Format {
        self.fix_hint = fix_hint.into();
        self
    }

    /// Pins another version of the tool than the library's (the tool environment installs
    /// exactly this one).
    pub fn version(mut self, version: impl Into<String>) -> Format {
        self.version = version.into();
        self
    }

    /// The tool environment it runs from, this step's pin added (default
    /// `ToolEnv::under("target")`, cached under `target/buildkit/tools`).
    pub fn tools(mut self, tools: ToolEnv) -> Format {
        self.tools = tools;
        self
    }

    /// The command line, with the programs of `tools`.
    pub(crate) fn command(&self, tools: &Tools) -> Cmd {
        let mut cmd = Cmd::new(tools.bin(self.tool.name()).display().to_string());
        match (self.tool, self.mode) {
            (Formatter::Black, FormatMode::Check) => cmd = cmd.args(["--check", "--diff"]),
            (Formatter::Black, FormatMode::Fix) => {}
            (Formatter::Isort, mode) => {
                cmd = cmd.args(["--profile", "black"]);
                if mode == FormatMode::Check {
                    cmd = cmd.args(["--check-only", "--diff"]);
                }
            }
        }
        with_paths(cmd, &self.paths, self.cwd.as_deref())
    }

    /// The tool environment it runs from, with this step's pin.
    fn env(&self) -> ToolEnv {
        self.tools.clone().pin(self.tool.name(), &self.version)
    }

    /// Runs the tool from `tools`; a check that finds files to change fails with a
    /// [`FormatError`].
    fn run_in(&self, runner: &Runner, tools: &Tools) -> Result<()> {
        let cmd = self.command(tools);
        let parse = match self.tool {
            Formatter::Black => parse_black,
            Formatter::Isort => parse_isort,
        };
        run_format(runner, &cmd, self.tool.name(), &self.fix_hint, parse)
    }
}

impl Step for Format {
    type Output = ();

    /// Makes sure of its tool environment (with this step's pin), then runs the tool; a
    /// check that finds files to change fails with a [`FormatError`].
    fn run(&self, runner: &Runner) -> Result<()> {
        let tools = self
            .env()
            .ensure(runner)
            .with_context(|| format!("cannot prepare {}", self.tool.name()))?;
        self.run_in(runner, &tools)
    }
}

/// The black check and then the isort check, isort even when black fails, as one step:
/// one error with both answers (a [`FormatError`]) when either fails. When both run from
/// the same tool environment (as they do with the default pins), it is made sure of once.
/// Like the single checks, the diffs go to the runner's step log only.
///
/// ```no_run
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::python::{CheckAll, Format, ToolEnv};
/// use buildkit_lib::Runner;
///
/// let env = ToolEnv::under("target");
/// let black = Format::black(["src"]).tools(env.clone());
/// let isort = Format::isort(["src"]).tools(env);
/// let checks = CheckAll::new(black, isort);
/// print!("{}", checks.plan(&Runner::new())?);
/// checks.run(&Runner::new())?;
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CheckAll {
    /// The black check.
    pub(crate) black: Format,
    /// The isort check.
    pub(crate) isort: Format,
}

impl CheckAll {
    /// Both checks, black first ([`Format::black`], then [`Format::isort`]); each runs
    /// as given, whichever tool it names.
    pub fn new(black: Format, isort: Format) -> CheckAll {
        CheckAll { black, isort }
    }
}

impl Step for CheckAll {
    type Output = ();

    fn run(&self, runner: &Runner) -> Result<()> {
        let (black_env, isort_env) = (self.black.env(), self.isort.env());
        let results = if black_env == isort_env {
            match black_env.ensure(runner) {
                Ok(tools) => vec![
                    (
                        self.black.tool.name().to_string(),
                        self.black.run_in(runner, &tools).err(),
                    ),
                    (
                        self.isort.tool.name().to_string(),
                        self.isort.run_in(runner, &tools).err(),
                    ),
                ],
                Err(e) => return Err(e.context("cannot prepare black and isort")),
            }
        } else {
            vec![
                (
                    self.black.tool.name().to_string(),
                    self.black.run(runner).err(),
                ),
                (
                    self.isort.tool.name().to_string(),
                    self.isort.run(runner).err(),
                ),
            ]
        };
        if results.iter().all(|(_, e)| e.is_none()) {
            return Ok(());
        }
        let checks = results
            .into_iter()
            .map(|(tool, error)| {
                let outcome = match error {
                    None => CheckOutcome::Clean,
                    Some(e) => match e.downcast::<FormatError>() {
                        Ok(format) => CheckOutcome::Changes(format),
                        Err(e) => CheckOutcome::Failed(format!("{e:#}")),
                    },
                };
                (tool, outcome)
            })
            .collect();
        Err(FormatError::of_checks(
            checks,
            runner.log_path().map(Path::to_path_buf),
        ))
    }
}

fn with_paths(mut cmd: Cmd, paths: &[PathBuf], cwd: Option<&Path>) -> Cmd {
    // `--` so a path starting with `-` is never read as an option.
    cmd = cmd.arg("--");
    for path in paths {
        cmd = cmd.arg_path(path);
    }
    match cwd {
        Some(dir) => cmd.cwd(dir),
        None => cmd,
    }
}

/// Reads a format tool's output: the files it would change, and the count it reports.
type OutputParser = fn(&[String]) -> (Vec<String>, Option<usize>);

/// Runs a format command; on exit 1 turns its output into a [`FormatError`].
fn run_format(
    runner: &Runner,
    cmd: &Cmd,
    tool: &str,
    fix: &str,
    parse: OutputParser,
) -> Result<()> {
    // The diff goes to the step log, never to the terminal; without a step log, to a
    // temporary one, so the file list is still complete.
    let mut quiet = runner.clone();
    if quiet.get_echo() == Echo::Live {
        quiet = quiet.echo(Echo::Quiet);
    }
    let mut temp_log = None;
    if quiet.log_path().is_none() {
        // A dry run logs nothing: the temporary log stays empty and is removed.
        let file = tempfile::Builder::new()
            .prefix(&format!("{tool}-check-"))
            .suffix(".log")
            .tempfile()
            .context("cannot create a temporary log file")?;
        quiet = quiet.log_to(file.path());
        temp_log = Some(file);
    }
    let err = match quiet.run(cmd) {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    let lines = output_of_last_run(&quiet, cmd).unwrap_or_else(|| err.tail.clone());
    let err = CommandError {
        log: runner.log_path().map(Path::to_path_buf),
        ..err
    };
    drop(temp_log);
    if err.exit_code() != Some(1) {
        return Err(err).with_context(|| format!("{tool} failed"));
    }
    let (mut files, count) = parse(&lines);
    if let Some(dir) = cmd.get_cwd() {
        // Name files as the user gave the paths: relative to the project, not absolute.
        let prefix = format!("{}/", dir.display().to_string().trim_end_matches('/'));
        for file in &mut files {
            if let Some(rel) = file.strip_prefix(&prefix) {
                *file = rel.to_string();
            }
        }
    }
    // The tools work in parallel: sorted, the list reads the same on every run.
    files.sort();
    files.dedup();
    if files.is_empty() && count.is_none() {
        return Err(err).with_context(|| format!("{tool} failed"));
    }
    let count = count.unwrap_or(files.len()).max(files.len());
    Err(anyhow::Error::new(FormatError {
        tool: tool.into(),
        files,
        count,
        fix: fix.into(),
        log: runner.log_path().map(Path::to_path_buf),
        checks: Vec::new(),
    }))
}

/// The lines the last run of `cmd` wrote into the runner's step log, if it has one.
fn output_of_last_run(runner: &Runner, cmd: &Cmd) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(runner.log_path()?).ok()?;
    let header = format!("$ {cmd}");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().rposition(|l| *l == header)?;
    Some(lines[start + 1..].iter().map(|l| l.to_string()).collect())
}

/// Files from `would reformat X` lines, and the count from `N files would be reformatted`.
pub(crate) fn parse_black(lines: &[String]) -> (Vec<String>, Option<usize>) {
    let mut files: Vec<String> = Vec::new();
    let mut count = None;
    for line in lines {
        if let Some(file) = line.strip_prefix("would reformat ") {
            let file = file.trim().to_string();
            if !files.contains(&file) {
                files.push(file);
            }
        } else if let Some(pos) = line.find(" would be reformatted") {
            let head = &line[..pos];
            let n = head
                .trim_end_matches(" files")
                .trim_end_matches(" file")
                .trim();
            count = n.parse().ok();
        }
    }
    (files, count)
}

/// Files from isort's `ERROR: X Imports are incorrectly sorted` lines.
pub(crate) fn parse_isort(lines: &[String]) -> (Vec<String>, Option<usize>) {
    let mut files: Vec<String> = Vec::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("ERROR: ") else {
            continue;
        };
        if let Some(pos) = rest.find(" Imports are incorrectly sorted") {
            let file = rest[..pos].to_string();
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    (files, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_command_lines() {
        let tools = Tools::at("/t/env");
        let black = Format::black(["src", "tests"]).cwd("/proj");
        assert_eq!(
            black.command(&tools).to_string(),
            "/t/env/bin/black --check --diff -- src tests"
        );
        assert_eq!(
            black.clone().fix().command(&tools).to_string(),
            "/t/env/bin/black -- src tests"
        );
        assert_eq!(black.command(&tools).get_cwd(), Some(Path::new("/proj")));
        let isort = Format::isort(["src"]);
        assert_eq!(
            isort.command(&tools).to_string(),
            "/t/env/bin/isort --profile black --check-only --diff -- src"
        );
        assert_eq!(
            isort.fix().command(&tools).to_string(),
            "/t/env/bin/isort --profile black -- src"
        );
    }

    #[test]
    fn parses_the_files_that_would_change() {
        let lines: Vec<String> = [
            "--- src/a.py\t2024-01-01 00:00:00+00:00",
            "+++ src/a.py\t2024-01-01 00:00:00+00:00",
            "@@ -1 +1 @@",
            "would reformat src/a.py",
            "would reformat src/pkg/b.py",
            "",
            "Oh no! 💥 💔 💥",
            "2 files would be reformatted, 3 files would be left unchanged.",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            parse_black(&lines),
            (vec!["src/a.py".into(), "src/pkg/b.py".into()], Some(2))
        );
        let one = vec!["1 file would be reformatted.".to_string()];
        assert_eq!(parse_black(&one), (vec![], Some(1)));
        let isort = vec![
            "ERROR: /p/src/a.py Imports are incorrectly sorted and/or formatted.".to_string(),
            "--- /p/src/a.py:before".to_string(),
        ];
        assert_eq!(parse_isort(&isort), (vec!["/p/src/a.py".into()], None));
        let err = FormatError {
            tool: "black".into(),
            files: vec!["src/a.py".into()],
            count: 3,
            fix: DEFAULT_FIX_HINT.into(),
            log: None,
            checks: Vec::new(),
        };
        assert_eq!(
            err.to_string(),
            "black would change 3 files:\n  src/a.py\n  ... and 2 more\nhelp: run `cargo xtask fmt` to fix them"
        );
    }

    #[test]
    fn a_failing_check_suggests_the_fix_hint_its_step_was_given() {
        use std::sync::Arc;

        use crate::cmd::{Answer, Echo, FakeExecutor};
        let tools = Tools::at("/t/env");
        let fake = Arc::new(
            FakeExecutor::new()
                .on(
                    ["/t/env/bin/black"],
                    Answer::fail(1, "would reformat src/a.py\n1 file would be reformatted.\n"),
                )
                .on(
                    ["/t/env/bin/isort"],
                    Answer::fail(
                        1,
                        "ERROR: src/b.py Imports are incorrectly sorted and/or formatted.\n",
                    ),
                ),
        );
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
        let fix_of = |result: Result<()>| {
            let err = result.unwrap_err();
            let format = err.downcast_ref::<FormatError>().expect("a FormatError");
            (format.fix.clone(), format.to_string())
        };
        let (fix, text) = fix_of(Format::black(["src"]).run_in(&runner, &tools));
        assert_eq!(fix, DEFAULT_FIX_HINT);
        assert!(
            text.contains("help: run `cargo xtask fmt` to fix them"),
            "{text}"
        );
        let (fix, text) = fix_of(
            Format::black(["src"])
                .fix_hint("make format")
                .run_in(&runner, &tools),
        );
        assert_eq!(fix, "make format");
        assert!(
            text.ends_with("help: run `make format` to fix them"),
            "{text}"
        );
        let (fix, text) = fix_of(
            Format::isort(["src"])
                .fix_hint("nox -s fmt")
                .run_in(&runner, &tools),
        );
        assert_eq!(fix, "nox -s fmt");
        assert!(
            text.starts_with("isort would change 1 file:\n  src/b.py"),
            "{text}"
        );
    }

    #[test]
    fn a_version_pin_replaces_the_library_pin_in_the_tool_environment() {
        let black = Format::black(["src"]);
        assert_eq!(black.env().pins()["black"], BLACK_VERSION);
        assert_eq!(black.version("23.1.0").env().pins()["black"], "23.1.0");
        let isort = Format::isort(["src"]);
        assert_eq!(isort.env().pins()["isort"], ISORT_VERSION);
        assert_eq!(isort.version("5.12.0").env().pins()["isort"], "5.12.0");
    }
}
