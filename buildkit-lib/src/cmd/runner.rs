//! The run context: what every step runs with.
//!
//! A [`Runner`] carries one run's settings into every step: its session (the labels and
//! names of what the run creates), its echo, step log and line prefix, the environment
//! its commands get, its cancel token and the clean-ups registered with it, the secrets it
//! masks, and the record of every action taken. It is also the one executor: steps do
//! every effect through it. How a program is started and watched lives in `process.rs`,
//! the engine's handle and cached answers in `engine.rs`, the file and network actions in
//! `actions.rs`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::cancel::{Cancel, Guard as CleanupGuard};
use super::engine::EngineHandle;
use super::secret::Masks;
use super::{Cmd, CommandError, Echo, Executor, Failure, Secret};
use crate::plan::{Action, Plan};
use crate::session::Session;

/// Runs commands. Cheap to clone; clones share the record of commands run.
///
/// Every external program the library starts goes through here: it resolves the program
/// before spawning (a missing one is a clear error), echoes `$ cmd` to stderr, streams
/// combined output live or quietly into the step log, keeps a bounded tail for errors,
/// stops commands that outlive their timeout, and in a dry run prints instead of running.
#[derive(Debug, Clone)]
pub struct Runner {
    pub(super) dry_run: bool,
    /// Whether a dry run still runs read-only queries.
    pub(super) dry_run_queries: bool,
    pub(super) executor: Option<Arc<dyn Executor>>,
    pub(super) echo: Echo,
    pub(super) log: Option<PathBuf>,
    pub(super) prefix: Option<String>,
    /// Variables set (`Some`) or removed (`None`) for every command.
    pub(super) env: Vec<(String, Option<String>)>,
    /// The run's identity, labelling what the steps run with this runner create.
    pub(super) session: Option<Session>,
    pub(super) cancel: Cancel,
    /// The secret values this runner's commands were given: masked in all it shows.
    pub(super) masks: Masks,
    /// The engine's handle: how to start it, and its answers kept for the run.
    pub(super) engine: EngineHandle,
    /// Every action this runner and its clones ran (or, in a dry run, recorded).
    pub(super) recorded: Arc<Mutex<Vec<Action>>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// A runner that echoes and streams live, with no log file and no dry run.
    pub fn new() -> Runner {
        Runner {
            dry_run: false,
            dry_run_queries: false,
            executor: None,
            echo: Echo::Live,
            log: None,
            prefix: None,
            env: Vec::new(),
            session: None,
            cancel: Cancel::default(),
            masks: Masks::default(),
            engine: EngineHandle::default(),
            recorded: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// In a dry run, nothing runs: commands are printed (to stdout, `$ cmd`) and
    /// recorded, and so are the read-only queries (`? cmd`, marked [`Cmd::read_only`]),
    /// which answer nothing, unless [`Runner::dry_run_queries`] lets them run. A
    /// [`Pipeline`](crate::pipeline::Pipeline) run with a dry-run runner prints its plan.
    pub fn dry_run(mut self, on: bool) -> Runner {
        self.dry_run = on;
        self
    }

    /// Lets a dry run still run read-only queries (engine inspections, `git describe`), so
    /// that a step whose later commands depend on their answers plans further. Off by
    /// default: a dry run asks nothing of the engine or of git.
    pub fn dry_run_queries(mut self, on: bool) -> Runner {
        self.dry_run_queries = on;
        self
    }

    /// Asks `executor` for each command's answer instead of starting a process (for
    /// tests; see [`FakeExecutor`](super::FakeExecutor)). The engine's socket fast path is
    /// off, so engine queries reach the executor as `docker` commands. Needs the `testing`
    /// feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Runner {
        self.executor = Some(executor);
        self
    }

    /// The run's identity: the steps run with this runner (and its clones) label the
    /// containers and images they create with it and name their containers after it. A
    /// [`Pipeline`](crate::pipeline::Pipeline) gives each step's runner its runner's
    /// session (or a new one named after the pipeline).
    pub fn session(mut self, session: Session) -> Runner {
        self.session = Some(session);
        self
    }

    /// The run's identity, if one was set with [`Runner::session`].
    pub(crate) fn get_session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The run's identity, or an error saying that `what` needs one and how to give it.
    pub(crate) fn require_session(&self, what: &str) -> anyhow::Result<&Session> {
        self.session.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{what} labels what it creates with the run's session, but the runner has \
                 none\nhelp: give the runner one with `Runner::session(Session::new(\"<project>\"))` \
                 (a pipeline gives its steps' runners the run's session)"
            )
        })
    }

    /// Whether a dry run still runs read-only queries ([`Runner::dry_run_queries`]).
    pub(crate) fn runs_dry_queries(&self) -> bool {
        self.dry_run_queries
    }

    /// Whether actions are only recorded (a dry run, [`Runner::dry_run`]): for the
    /// executor's own methods, and for the pipeline, which tells its steps.
    pub(crate) fn only_records(&self) -> bool {
        self.dry_run
    }

    /// The executor standing in for processes and sockets, if any (tests).
    pub(super) fn fake(&self) -> Option<&Arc<dyn Executor>> {
        self.executor.as_ref()
    }

    /// Appends a line to the step log (never in a dry run).
    pub(super) fn log_line(&self, line: &str) {
        if !self.dry_run {
            if let Some(mut log) = self.open_log() {
                let _ = writeln!(log, "{}", self.redact(line));
            }
        }
    }

    /// Sets how much reaches the terminal.
    pub fn echo(mut self, echo: Echo) -> Runner {
        self.echo = echo;
        self
    }

    /// The echo mode.
    pub(crate) fn get_echo(&self) -> Echo {
        self.echo
    }

    /// Appends every command line and its output to this log file (created with its
    /// parent directories on first use; never in a dry run).
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Runner {
        self.log = Some(path.into());
        self
    }

    /// The step log, if any.
    pub(crate) fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Prefixes every line this runner prints on the terminal (`[build] ...`), for steps
    /// running side by side.
    pub(crate) fn prefix(mut self, prefix: impl Into<String>) -> Runner {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets an environment variable for every command this runner starts, unless the
    /// command sets it itself (for example `DOCKER_HOST`, or a `PATH` with test doubles).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Runner {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, Some(value.into())));
        self
    }

    /// Removes an environment variable from every command this runner starts, unless the
    /// command sets it itself (for example `DOCKER_HOST`, so that a docker context
    /// applies).
    pub fn env_remove(mut self, key: impl Into<String>) -> Runner {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, None));
        self
    }

    /// The value of `key` a command started here would see.
    pub(crate) fn effective_env(&self, cmd: &Cmd, key: &str) -> Option<String> {
        match cmd.get_env(key) {
            Some(_) => cmd.effective_env(key),
            None => self
                .env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| std::env::var(key).ok()),
        }
    }

    /// Every command this runner (and its clones) ran or, in a dry run, would have run,
    /// as argv arrays with secrets masked.
    pub(crate) fn commands(&self) -> Vec<Vec<String>> {
        self.recorded().commands()
    }

    /// Every action this runner (and its clones) took or, in a dry run, would have taken,
    /// in order, as a [`Plan`]: commands, queries, file writes and removals, probes and
    /// waits. A step's plan ([`Step::plan`](crate::plan::Step::plan)) is this, recorded
    /// on a runner that only records; run the step for real and this is what it did.
    pub fn recorded(&self) -> Plan {
        let actions = self
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        actions.into_iter().fold(Plan::new(), Plan::push)
    }

    /// A silent dry-run clone with a fresh record: a step run on it does nothing (no
    /// process, no engine or git query, no file written, no socket opened) and its
    /// [`Runner::recorded`] actions are the step's plan. Queries answer what each
    /// [`Cmd::dry_answer`] says; probes and waits pass. What [`Step::plan`] runs on.
    ///
    /// [`Step::plan`]: crate::plan::Step::plan
    pub(crate) fn recording(&self) -> Runner {
        Runner {
            dry_run: true,
            dry_run_queries: false,
            echo: Echo::Silent,
            log: None,
            recorded: Arc::new(Mutex::new(Vec::new())),
            // Placeholder answers must never reach the real runner's cache.
            engine: self.engine.with_fresh_answers(),
            ..self.clone()
        }
    }

    /// A clone with a fresh, separate record of commands (for one step of a pipeline).
    pub fn with_fresh_record(&self) -> Runner {
        Runner {
            recorded: Arc::new(Mutex::new(Vec::new())),
            ..self.clone()
        }
    }

    /// Masks `secret` in everything this runner (and its clones) shows from now on: for a
    /// value that reaches a program some other way than as a [`Cmd`]'s secret argument
    /// or environment value (those are masked by themselves).
    pub fn mask(&self, secret: &Secret) {
        self.masks.register(secret.expose().as_bytes());
    }

    /// Masks a value given as bytes (a secret file's content).
    pub(crate) fn mask_bytes(&self, value: &[u8]) {
        self.masks.register(value);
    }

    /// `text` with every secret this runner knows shown as `***`: for errors and reports
    /// built from command output.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.masks.redact(text)
    }

    /// True when this runner masks anything (a text needs redacting then).
    pub(crate) fn masks_anything(&self) -> bool {
        self.masks.any()
    }

    /// Makes `cancel` this run's token: cancelling it stops this runner's commands and
    /// its clones', and runs the clean-ups they registered. For a program's `main`, which
    /// creates the token, may have signals set it ([`Cancel::on_signals`]), and gives it
    /// to its base runner.
    pub fn cancel_with(mut self, cancel: Cancel) -> Runner {
        self.cancel = cancel;
        self
    }

    /// Registers `cleanup` (such as `docker rm -f NAME` of a container this run creates)
    /// to run if the run is cancelled, through a never-cancelled clone of this runner (so
    /// it is echoed, logged and masked like any command, with this runner's environment).
    /// Register before creating the thing; remove it yourself in the normal path, then
    /// drop the guard, which unregisters it.
    pub fn on_cancel(&self, cleanup: Cmd) -> CleanupGuard {
        self.cancel.register_cleanup(self.for_cleanup(), cleanup)
    }

    /// Registers a temporary file or directory (a staging directory) to remove if the run
    /// is cancelled; dropping the guard unregisters it.
    pub(crate) fn remove_on_cancel(&self, path: impl Into<PathBuf>) -> CleanupGuard {
        self.cancel.register_path(path.into())
    }

    /// Once the run was cancelled: runs the clean-ups still registered and waits for those
    /// another thread is running, so that nothing the run registered is left. A command
    /// that was cancelled or refused already ran them before returning its error; a
    /// program calls this after its run ended cancelled, before it exits. Does nothing
    /// when the run was not cancelled; each clean-up runs once.
    pub fn clean_up_cancelled(&self) {
        self.cancel.run_cleanups();
    }

    /// Whether this runner was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A clone that is never cancelled, for clean-up that must run after a cancel (removing
    /// the containers a cancelled run created). It shares the record and log.
    pub(crate) fn for_cleanup(&self) -> Runner {
        Runner {
            cancel: Cancel::default(),
            ..self.clone()
        }
    }

    /// Where `cmd`'s program would be found (its `PATH` as this runner passes it), or
    /// `None` when it is not installed.
    pub(crate) fn program_path(&self, cmd: &Cmd) -> Option<PathBuf> {
        self.resolve(cmd).ok()
    }

    /// The prefix of the lines it prints (a pipeline step's name), if any.
    pub(crate) fn get_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Prints a line the way this runner prints (prefix, echo mode; each line of a text
    /// with several carries the prefix) and logs it.
    pub fn note(&self, line: &str) {
        let line = self.redact(line);
        if self.echo != Echo::Silent {
            // Each line of a several-line note carries the prefix, so that steps printing
            // side by side stay apart.
            let prefix = self.prefix_text();
            for part in line.lines() {
                eprintln!("{prefix}{part}");
            }
        }
        if !self.dry_run {
            if let Some(mut log) = self.open_log() {
                let _ = writeln!(log, "{line}");
            }
        }
    }

    pub(super) fn prefix_text(&self) -> String {
        match &self.prefix {
            Some(p) => format!("[{p}] "),
            None => String::new(),
        }
    }

    pub(super) fn open_log(&self) -> Option<File> {
        let path = self.log.as_ref()?;
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        OpenOptions::new().create(true).append(true).open(path).ok()
    }

    pub(super) fn record(&self, cmd: &Cmd) {
        self.record_action(Action::Run(cmd.clone()));
    }

    pub(super) fn record_action(&self, action: Action) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(action);
    }

    /// Prints a dry run's line (`$ cmd`, `write PATH`) on stdout, unless silent.
    pub(super) fn dry_print(&self, line: &str) {
        if self.echo != Echo::Silent {
            println!("{}{line}", self.prefix_text());
        }
    }

    pub(super) fn error(&self, cmd: &Cmd, failure: Failure, tail: Vec<String>) -> CommandError {
        CommandError {
            command: cmd.to_string(),
            program: cmd.get_program().to_string(),
            failure,
            tail,
            log: if self.dry_run { None } else { self.log.clone() },
        }
    }

    /// Prints the command in a dry run and says whether to skip running it.
    pub(super) fn dry_run_skip(&self, cmd: &Cmd) -> bool {
        if !self.dry_run {
            return false;
        }
        if !cmd.is_read_only() {
            self.dry_print(&format!("$ {cmd}"));
            return true;
        }
        if !self.dry_run_queries {
            self.dry_print(&format!("? {cmd}"));
            return true;
        }
        false
    }
}
