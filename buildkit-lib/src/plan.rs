//! Plans as data: what a step does, as a value, one action after another.
//!
//! A step implements [`Step`]: its one body, [`Step::run`], does every effect through the
//! [`Runner`] (commands, read-only queries, file writes and removals, network probes and
//! waits), and the runner records each as an [`Action`]. The step's [`Plan`] is what that
//! same body records on a recording runner, where nothing runs: so the plan a
//! dry run prints is, by construction, what a real run does, and no step asks whether it
//! is a dry run. Where a later action depends on an answer (the containers a query lists,
//! an image's digest), the query's [`Cmd::dry_answer`] gives the placeholder the plan
//! shows (`<container>`, `sha256:<digest>`).
//!
//! A plan prints as a script (`$` for a command, `?` for a query), serializes to JSON for
//! golden tests, masks every secret the way [`Cmd`] does, and [`Plan::execute`] runs a
//! plan written by hand through a [`Runner`], real or backed by the `testing` feature's
//! `cmd::FakeExecutor`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::cmd::{Cmd, CommandError, Probe, Runner};

/// One thing a step would do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A command: one that changes something (builds, runs, pushes, removes), printed
    /// `$ cmd`, or a read-only query whose answer the step reads (`docker image inspect`,
    /// `git describe`; a [`Cmd::read_only`] command), printed `? cmd`, which a dry run
    /// does not make unless asked ([`Runner::dry_run_queries`]).
    Run(Cmd),
    /// A file the step writes, with its contents. A plan prints it as `write PATH (N
    /// bytes)`, with the SHA-256 of contents that are not UTF-8 text; its JSON holds the
    /// text itself, or for other contents their size and SHA-256.
    Write {
        /// Where.
        path: PathBuf,
        /// The bytes written, exactly, except that every value the runner masks
        /// ([`Runner::mask`], a [`Secret`](crate::Secret) of a command) reads `***`: a plan
        /// never holds a secret, and the plan of a write that held one writes `***` in
        /// its place.
        contents: Vec<u8>,
    },
    /// A file or folder the step removes or replaces.
    Remove(PathBuf),
    /// A folder filled beside its final place, swapped in whole ([`Runner::swap`]): the
    /// old `target` is renamed aside, `staging` renamed into place, the old one removed.
    Swap {
        /// The filled folder (beside `target`, on the same file system).
        staging: PathBuf,
        /// The folder it replaces (`dist/`).
        target: PathBuf,
    },
    /// A network question asked once (is the port free, does the engine answer).
    Probe(Probe),
    /// A probe asked until it passes or `timeout` runs out (a service becoming ready).
    Wait {
        /// What is awaited, in words (`service db is ready`).
        what: String,
        /// What is asked.
        probe: Probe,
        /// How long at most.
        timeout: Duration,
    },
}

/// What a step does, in order. Ask a step for its own with [`Step::plan`], read what a
/// run did with [`Runner::recorded`], or collect one from [`Action`]s
/// (`actions.into_iter().collect::<Plan>()`) to [`execute`](Plan::execute) it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    actions: Vec<Action>,
}

/// A step: a value whose one body, [`Step::run`], does all its effects through the
/// runner, and whose plan is that body recorded on a runner where nothing runs.
pub trait Step {
    /// What a run gives back (a report, a digest, `()`).
    type Output;

    /// Runs the step: every command, query, file write, removal, probe and wait through
    /// `runner`. The runner carries the run's session, log, echo and cancel token.
    fn run(&self, runner: &Runner) -> anyhow::Result<Self::Output>;

    /// What [`Step::run`] would do with `runner`'s session and settings, without doing
    /// any of it: the actions its body records on a runner that only records. Fails where the
    /// run would fail before its first action (a bad setting).
    fn plan(&self, runner: &Runner) -> anyhow::Result<Plan> {
        let recording = runner.recording();
        self.run(&recording)?;
        Ok(recording.recorded())
    }

    /// What a pipeline step running this value says of its output, in its log and on the
    /// terminal: an image's size against its budget, a scan's counts, a smoke test's
    /// time to ready. Nothing by default.
    fn summary(&self, output: &Self::Output) -> Option<String> {
        let _ = output;
        None
    }

    /// Whether an output passes, for a pipeline step running this value
    /// ([`Pipeline::add`](crate::pipeline::Pipeline::add)): the error the step fails with
    /// when it does not. A check that returns its verdict as a value instead of failing
    /// (an image over its maximum size, a scan with findings at HIGH or worse, builds
    /// that differ) says so here, so that a pipeline never calls it a success. `Ok` by
    /// default: a step whose failure is already an error of [`Step::run`].
    fn judge(&self, output: &Self::Output) -> anyhow::Result<()> {
        let _ = output;
        Ok(())
    }
}

impl Plan {
    /// An empty plan.
    pub(crate) fn new() -> Plan {
        Plan::default()
    }

    /// Adds a command.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn run(mut self, cmd: Cmd) -> Plan {
        self.actions.push(Action::Run(cmd));
        self
    }

    /// Adds a file write.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn write(mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Plan {
        self.actions.push(Action::Write {
            path: path.into(),
            contents: contents.into(),
        });
        self
    }

    /// Adds a removal.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn remove(mut self, path: impl Into<PathBuf>) -> Plan {
        self.actions.push(Action::Remove(path.into()));
        self
    }

    /// Adds a folder swap: `staging` replaces `target` whole.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn swap(mut self, staging: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Plan {
        self.actions.push(Action::Swap {
            staging: staging.into(),
            target: target.into(),
        });
        self
    }

    /// Adds any action.
    #[must_use]
    pub(crate) fn push(mut self, action: Action) -> Plan {
        self.actions.push(action);
        self
    }

    /// The actions, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The commands and queries, as argv with secrets masked: what the record of the
    /// step's run ([`Runner::recorded`]) holds when every answer matched the plan's
    /// assumptions.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Run(cmd) => Some(cmd.argv()),
                _ => None,
            })
            .collect()
    }

    /// The plan as JSON text (pretty, one action per object), for golden files: its
    /// `Serialize` form.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Runs the plan through `runner`, in order: commands with [`Runner::run`], queries
    /// with [`Runner::capture`], file writes and removals on disk (skipped, and printed, in
    /// a dry run). Stops at the first failure. A plan with placeholders (`<id>`) is a
    /// description, not a script: [`Plan::execute`] refuses it before doing anything.
    ///
    /// # Errors
    ///
    /// What stopped it, in words; a failed command is its [`CommandError`] (reachable with
    /// `downcast_ref`).
    pub fn execute(&self, runner: &Runner) -> anyhow::Result<()> {
        self.execute_stops(runner).map_err(|e| match e.0 {
            Stop::Command(e) => anyhow::Error::new(e),
            _ => anyhow::Error::new(e),
        })
    }

    fn execute_stops(&self, runner: &Runner) -> Result<(), PlanError> {
        if let Some(word) = self.placeholder() {
            return Err(PlanError(Stop::Placeholder(word)));
        }
        let file = |path: &PathBuf| {
            let path = path.clone();
            move |e: anyhow::Error| {
                PlanError(Stop::File {
                    path,
                    why: format!("{e:#}"),
                })
            }
        };
        for action in &self.actions {
            match action {
                Action::Run(cmd) if cmd.is_read_only() => {
                    runner.capture(cmd)?;
                }
                Action::Run(cmd) => {
                    runner.run(cmd)?;
                }
                Action::Write { path, contents } => {
                    runner.write(path, contents).map_err(file(path))?;
                }
                Action::Remove(path) => {
                    runner.remove(path).map_err(file(path))?;
                }
                Action::Swap { staging, target } => {
                    runner.swap(staging, target).map_err(file(target))?;
                }
                Action::Probe(probe) => {
                    runner
                        .probe(probe)
                        .map_err(|why| PlanError(Stop::Probe(why)))?;
                }
                Action::Wait {
                    what,
                    probe,
                    timeout,
                } => {
                    runner
                        .wait(what, probe, *timeout)
                        .map_err(|failed| PlanError(Stop::Probe(failed.last)))?;
                }
            }
        }
        Ok(())
    }

    /// The first command word holding a `<placeholder>` (`<container>`,
    /// `repo@<digest-linux/arm64>`), if any.
    fn placeholder(&self) -> Option<String> {
        self.commands().into_iter().flatten().find(|w| {
            w.find('<')
                .is_some_and(|at| w[at + 1..].find('>').is_some_and(|end| end > 0))
        })
    }
}

impl FromIterator<Action> for Plan {
    fn from_iter<I: IntoIterator<Item = Action>>(actions: I) -> Plan {
        Plan {
            actions: actions.into_iter().collect(),
        }
    }
}

/// Why [`Plan::execute`] stopped, in words: a command failed (its
/// [`CommandError`] is the error's `source`), a file could not be written or removed, a
/// probe or a wait did not pass, or the plan names a value known only while its step runs.
#[derive(Debug)]
pub(crate) struct PlanError(Stop);

/// What stopped a [`Plan::execute`].
#[derive(Debug)]
enum Stop {
    /// A command failed.
    Command(CommandError),
    /// A file could not be written or removed.
    File {
        /// The file.
        path: PathBuf,
        /// The system's words.
        why: String,
    },
    /// The plan names a value only known while the step runs.
    Placeholder(String),
    /// A probe or a wait did not pass (its last answer).
    Probe(String),
}

impl From<CommandError> for PlanError {
    fn from(e: CommandError) -> PlanError {
        PlanError(Stop::Command(e))
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Stop::Command(e) => write!(f, "{e}"),
            Stop::File { path, why } => write!(f, "could not write or remove {}: {why}", path.display()),
            Stop::Probe(why) => write!(f, "{why}"),
            Stop::Placeholder(word) => write!(
                f,
                "this plan names {word}, a value known only while the step runs: run the step itself, not its plan"
            ),
        }
    }
}

impl std::error::Error for PlanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Stop::Command(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Plan {
    /// One line per action: `$ cmd`, `? query`, `write PATH (N bytes)` (`write PATH (N
    /// bytes, sha256:HEX)` for contents that are not UTF-8 text), `remove PATH`, `swap
    /// STAGING into TARGET`, `probe ...`, `wait until ...`. Secrets show as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            match action {
                Action::Run(cmd) if cmd.is_read_only() => writeln!(f, "? {cmd}")?,
                Action::Run(cmd) => writeln!(f, "$ {cmd}")?,
                Action::Write { path, contents } => match std::str::from_utf8(contents) {
                    Ok(_) => writeln!(f, "write {} ({} bytes)", path.display(), contents.len())?,
                    Err(_) => writeln!(
                        f,
                        "write {} ({} bytes, sha256:{})",
                        path.display(),
                        contents.len(),
                        crate::hash::sha256_hex(contents)
                    )?,
                },
                Action::Remove(path) => writeln!(f, "remove {}", path.display())?,
                Action::Swap { staging, target } => {
                    writeln!(f, "swap {} into {}", staging.display(), target.display())?
                }
                Action::Probe(probe) => writeln!(f, "probe {probe}")?,
                Action::Wait {
                    what,
                    probe,
                    timeout,
                } => writeln!(
                    f,
                    "wait until {what} ({probe}), for at most {} s",
                    timeout.as_secs()
                )?,
            }
        }
        Ok(())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Action::Run(cmd) => {
                let kind = if cmd.is_read_only() { "query" } else { "run" };
                map.serialize_entry(kind, &cmd.argv())?;
                if let Some(dir) = cmd.get_cwd() {
                    map.serialize_entry("cwd", &dir.display().to_string())?;
                }
            }
            Action::Write { path, contents } => {
                map.serialize_entry("write", &path.display().to_string())?;
                match std::str::from_utf8(contents) {
                    Ok(text) => map.serialize_entry("contents", text)?,
                    Err(_) => {
                        map.serialize_entry("bytes", &contents.len())?;
                        map.serialize_entry("sha256", &crate::hash::sha256_hex(contents))?;
                    }
                }
            }
            Action::Remove(path) => map.serialize_entry("remove", &path.display().to_string())?,
            Action::Swap { staging, target } => {
                map.serialize_entry("swap", &staging.display().to_string())?;
                map.serialize_entry("into", &target.display().to_string())?;
            }
            Action::Probe(probe) => map.serialize_entry("probe", &probe.to_string())?,
            Action::Wait {
                what,
                probe,
                timeout,
            } => {
                map.serialize_entry("wait", what)?;
                map.serialize_entry("probe", &probe.to_string())?;
                map.serialize_entry("timeout_secs", &timeout.as_secs())?;
            }
        }
        map.end()
    }
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.actions.len()))?;
        for action in &self.actions {
            seq.serialize_element(action)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Answer, Failure, FakeExecutor, Secret};
    use std::sync::Arc;

    fn sample() -> Plan {
        Plan::new()
            .run(
                Cmd::new("docker")
                    .args(["image", "inspect", "app:1"])
                    .read_only(),
            )
            .run(
                Cmd::new("docker")
                    .args(["login", "--password"])
                    .secret_arg(Secret::new("multi line\npass word $x")),
            )
            .run(Cmd::new("docker").args(["push", "app:1"]))
    }

    #[test]
    fn plans_print_and_serialize_with_secrets_masked() {
        let plan = sample();
        let text = plan.to_string();
        assert_eq!(
            text,
            "? docker image inspect app:1\n$ docker login --password ***\n$ docker push app:1\n"
        );
        let json = plan.to_json();
        assert!(json.contains("\"query\""), "{json}");
        assert!(!json.contains("pass word") && !text.contains("pass word"));
    }

    #[test]
    fn a_fake_executor_runs_a_plan_in_order_and_stops_at_a_failure() {
        let fake = Arc::new(FakeExecutor::new().on(
            ["docker", "login"],
            Answer::fail(1, "denied for multi line\npass word $x"),
        ));
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        let err = sample().execute(&runner).unwrap_err();
        assert_eq!(
            fake.seen(),
            sample().commands()[..2].to_vec(),
            "the push after the failed login must not be asked"
        );
        // A failed command is its CommandError, as callers downcast it.
        let Some(e) = err.downcast_ref::<CommandError>() else {
            panic!("{err}")
        };
        assert_eq!(e.failure, Failure::Exit(1));
        let shown = format!("{err} {:?}", e.tail);
        assert!(!shown.contains("pass word"), "{shown}");
    }

    #[test]
    fn a_plan_with_a_placeholder_is_refused_before_anything_runs() {
        let fake = Arc::new(FakeExecutor::new());
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        let plan = Plan::new()
            .run(Cmd::new("docker").args(["run", "-d", "app"]))
            .run(Cmd::new("docker").args(["rm", "-f", "<container>"]));
        let err = plan.execute(&runner).unwrap_err();
        assert!(err.to_string().contains("<container>"), "{err}");
        assert!(fake.seen().is_empty());
    }

    #[test]
    fn a_dry_run_of_a_plan_asks_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeExecutor::new());
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .dry_run(true)
            .with_executor(fake.clone());
        let file = dir.path().join("version.json");
        let plan = sample().write(&file, "{}");
        plan.execute(&runner).unwrap();
        assert!(fake.seen().is_empty(), "{:?}", fake.seen());
        assert!(!file.exists());
        assert_eq!(runner.commands(), plan.commands());
    }

    #[test]
    fn a_swap_prints_serializes_and_executes() {
        let dir = tempfile::tempdir().unwrap();
        let (staging, target) = (dir.path().join(".dist.staging"), dir.path().join("dist"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("app"), "new").unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old"), "old").unwrap();
        let plan = Plan::new().swap(&staging, &target);
        assert_eq!(
            plan.to_string(),
            format!("swap {} into {}\n", staging.display(), target.display())
        );
        assert!(plan.to_json().contains("\"swap\"") && plan.to_json().contains("\"into\""));
        let dry = Runner::new().echo(crate::cmd::Echo::Silent).dry_run(true);
        plan.execute(&dry).unwrap();
        assert!(target.join("old").exists() && staging.exists());
        plan.execute(&Runner::new().echo(crate::cmd::Echo::Silent))
            .unwrap();
        assert!(target.join("app").exists() && !target.join("old").exists());
        assert!(!staging.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A binary write keeps its bytes (a plan executes it exactly) and shows their size
    /// and digest, never a lossy text; a secret the runner masks never reaches the plan.
    #[test]
    fn binary_writes_keep_their_bytes_and_secrets_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record.bin");
        let bytes = vec![0u8, 159, 146, 150, 255, b'\n'];
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        runner.write(&file, &bytes).unwrap();
        let plan = runner.recorded();
        assert_eq!(
            plan.actions(),
            [Action::Write {
                path: file.clone(),
                contents: bytes.clone()
            }]
        );
        let digest = crate::hash::sha256_hex(&bytes);
        assert_eq!(
            plan.to_string(),
            format!("write {} (6 bytes, sha256:{digest})\n", file.display())
        );
        let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(json[0]["bytes"], 6);
        assert_eq!(json[0]["sha256"], digest.as_str());
        assert!(json[0].get("contents").is_none(), "{json}");
        std::fs::remove_file(&file).unwrap();
        plan.execute(&runner).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), bytes);

        let secret = Secret::new("hunter2-token");
        let masked = Runner::new().echo(crate::cmd::Echo::Silent).recording();
        masked.mask(&secret);
        masked.write(&file, b"TOKEN=hunter2-token\n").unwrap();
        let plan = masked.recorded();
        assert!(
            !plan.to_json().contains("hunter2") && plan.to_json().contains("TOKEN=***"),
            "{}",
            plan.to_json()
        );
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/version.json");
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        Plan::new()
            .write(&file, "{\"version\":\"1.2.3\"}")
            .execute(&runner)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\"version\":\"1.2.3\"}"
        );
        Plan::new()
            .remove(dir.path().join("sub"))
            .execute(&runner)
            .unwrap();
        assert!(!dir.path().join("sub").exists());
    }

    #[test]
    fn a_plan_collects_from_actions_in_order() {
        let first = Plan::new().run(Cmd::new("docker").args(["pull", "a"]));
        let second = Plan::new()
            .run(Cmd::new("docker").args(["pull", "b"]))
            .run(Cmd::new("docker").args(["pull", "c"]));
        let both: Plan = first
            .actions()
            .iter()
            .chain(second.actions())
            .cloned()
            .collect();
        assert_eq!(
            both.commands(),
            [
                ["docker", "pull", "a"],
                ["docker", "pull", "b"],
                ["docker", "pull", "c"]
            ]
        );
        assert_eq!(first.actions().iter().cloned().collect::<Plan>(), first);
        assert!(std::iter::empty::<Action>()
            .collect::<Plan>()
            .actions()
            .is_empty());
    }
}
