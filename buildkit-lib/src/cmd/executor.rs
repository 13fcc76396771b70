//! The seam between a [`Runner`](super::Runner) and the processes it would start.
//!
//! A runner given an [`Executor`] asks it for each command's answer instead of spawning
//! the program. Tests use [`FakeExecutor`] to run a step's real code against a scripted
//! engine: they see every command in order, choose what each answers, and try the
//! failure paths (a non-zero exit, an unexpected answer) without an engine, the way
//! cargo-dist tests its plans. Echo, logs, the record of commands, secret masking, dry
//! runs and cancellation behave as with real processes.

#[cfg(any(test, feature = "testing"))]
use std::sync::Mutex;

use super::{Cmd, Probe};

/// What a command answered: its exit code and standard output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer {
    /// The exit code (0 is success).
    pub(crate) code: i32,
    /// What it printed on standard output.
    pub(crate) stdout: String,
    /// Files it writes, each at the path its command line gives after a flag (`flag`,
    /// contents): what buildx does with `--metadata-file PATH`.
    pub(crate) writes: Vec<(String, String)>,
}

#[cfg(any(test, feature = "testing"))]
impl Answer {
    /// Success, printing `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Answer {
        Answer {
            code: 0,
            stdout: stdout.into(),
            writes: Vec::new(),
        }
    }

    /// Failure with exit code `code`, printing `output`.
    pub fn fail(code: i32, output: impl Into<String>) -> Answer {
        Answer {
            code,
            stdout: output.into(),
            writes: Vec::new(),
        }
    }

    /// Also writes `contents` to the path the command line gives after `flag` (`--flag
    /// PATH` or `--flag=PATH`), as the real program would: a fake `docker buildx build`
    /// answering `.writing_after("--metadata-file", r#"{"containerimage.digest":"sha256:…"}"#)`
    /// lets [`Build`](crate::docker::Build)'s [`run`](crate::plan::Step::run) read its result.
    #[must_use]
    pub fn writing_after(mut self, flag: impl Into<String>, contents: impl Into<String>) -> Answer {
        self.writes.push((flag.into(), contents.into()));
        self
    }
}

/// Answers the commands of a runner built with
/// [`Runner::with_executor`](super::Runner::with_executor), in place of real processes.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// The answer to `cmd` (its secrets are masked in what it displays).
    fn answer(&self, cmd: &Cmd) -> Answer;

    /// The answer to a network probe (a step's probe or one try of its wait, recorded as
    /// [`Action::Probe`](crate::plan::Action::Probe) and
    /// [`Action::Wait`](crate::plan::Action::Wait)): passes unless the executor says
    /// otherwise.
    fn probe(&self, probe: &Probe) -> Result<String, String> {
        Ok(format!("{probe}: answered by the executor"))
    }

    /// The contents of a file an earlier command wrote, asked by
    /// `Runner::read_output`: the file as it is, unless the
    /// executor stands in for the program that would have written it.
    fn read_output(&self, path: &std::path::Path, dry_answer: &str) -> std::io::Result<String> {
        let _ = dry_answer;
        std::fs::read_to_string(path)
    }
}

/// A scripted [`Executor`] for tests: answers by the longest matching argv prefix
/// (succeeding with no output when nothing matches) and remembers every command asked,
/// as argv with secrets masked.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct FakeExecutor {
    rules: Vec<(Vec<String>, Answer)>,
    seen: Mutex<Vec<Vec<String>>>,
    dry_answers: bool,
    probe_failures: Vec<(String, String)>,
}

#[cfg(any(test, feature = "testing"))]
// The library's own tests use part of it.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
impl FakeExecutor {
    /// A fake that answers every command with success and no output.
    pub fn new() -> FakeExecutor {
        FakeExecutor::default()
    }

    /// Answers `answer` to every command whose argv starts with `prefix` (the program
    /// first, as in `["docker", "image", "inspect"]`). The longest matching prefix wins.
    #[must_use]
    pub fn on<I, S>(mut self, prefix: I, answer: Answer) -> FakeExecutor
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rules
            .push((prefix.into_iter().map(Into::into).collect(), answer));
        self
    }

    /// A fake that answers every command as a dry run would: with success and the
    /// command's [`Cmd::dry_answer`](super::Cmd::dry_answer) as its output (rules given with
    /// [`FakeExecutor::on`] still win). A step run on it takes the path its plan shows,
    /// which is how the plan-equals-execution tests compare a step's plan with its run.
    pub fn like_dry_run() -> FakeExecutor {
        FakeExecutor {
            dry_answers: true,
            ..FakeExecutor::default()
        }
    }

    /// Fails every probe whose description (its `Display`) contains `matching`, answering
    /// `why`; other probes pass.
    #[must_use]
    pub fn failing_probe(
        mut self,
        matching: impl Into<String>,
        why: impl Into<String>,
    ) -> FakeExecutor {
        self.probe_failures.push((matching.into(), why.into()));
        self
    }

    /// Every command asked so far, in order.
    pub fn seen(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(any(test, feature = "testing"))]
impl Executor for FakeExecutor {
    fn answer(&self, cmd: &Cmd) -> Answer {
        let argv = cmd.argv();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(argv.clone());
        let answer = self
            .rules
            .iter()
            .filter(|(prefix, _)| argv.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, answer)| answer.clone())
            .unwrap_or_else(|| match self.dry_answers {
                true => Answer::ok(cmd.get_dry_answer()),
                false => Answer::default(),
            });
        for (flag, contents) in &answer.writes {
            let inline = format!("{flag}=");
            let path = argv.iter().enumerate().find_map(|(i, word)| {
                if word == flag {
                    argv.get(i + 1).cloned()
                } else {
                    word.strip_prefix(&inline).map(str::to_string)
                }
            });
            match path {
                Some(path) => {
                    if let Err(e) = std::fs::write(&path, contents) {
                        return Answer::fail(1, format!("the fake could not write {path}: {e}"));
                    }
                }
                None => {
                    return Answer::fail(
                        1,
                        format!("the fake answer writes after `{flag}`, which `{cmd}` lacks"),
                    )
                }
            }
        }
        answer
    }

    /// A [`FakeExecutor::like_dry_run`] stands in for the programs: a file they would have
    /// written and that is not there answers the dry answer.
    fn read_output(&self, path: &std::path::Path, dry_answer: &str) -> std::io::Result<String> {
        match std::fs::read_to_string(path) {
            Err(e) if self.dry_answers && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(dry_answer.to_string())
            }
            read => read,
        }
    }

    fn probe(&self, probe: &Probe) -> Result<String, String> {
        let shown = probe.to_string();
        match self
            .probe_failures
            .iter()
            .find(|(m, _)| shown.contains(m.as_str()))
        {
            Some((_, why)) => Err(why.clone()),
            None => Ok(format!("{probe}: answered by the fake")),
        }
    }
}
