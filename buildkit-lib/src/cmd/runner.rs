//! [`Runner`]: runs [`Cmd`]s with echo, live streaming, step logs, timeouts and dry runs.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::cancel::{Cancel, CleanupGuard};
use super::error::{install_hint, signal_name};
use super::secret::Masks;
use super::Secret;
use super::{Answer, Executor};
use super::{Cmd, CommandError, Failure, Tail};
use crate::plan::{Action, Plan};
use crate::session::Session;

/// Turns a command's output into what is shown and logged: a reader of a machine format
/// (BuildKit's `rawjson` progress) that renders it for people as it comes.
pub(crate) trait OutputFilter {
    /// The text for `bytes`, the next piece of output (cut anywhere).
    fn push(&mut self, bytes: &[u8]) -> Vec<u8>;
    /// The text for what is left at the end of the output.
    fn finish(&mut self) -> Vec<u8>;
}

/// Where a command's output goes besides the step log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Echo {
    /// Echo `$ cmd` and stream the output to the terminal (stderr).
    Live,
    /// Echo `$ cmd`; the output goes only to the log (and the error tail).
    Quiet,
    /// Print nothing on the terminal.
    Silent,
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Captured {
    /// Standard output, for [`Runner::capture`] (empty for [`Runner::run`], whose output
    /// is streamed).
    pub stdout: String,
    /// The last lines of output (stderr for `capture`, combined output for `run`).
    pub tail: Vec<String>,
    /// Standard error in full, secrets masked, for [`Runner::capture`] (empty for
    /// [`Runner::run`]).
    pub stderr: String,
    /// True when nothing ran because of a dry run.
    pub dry_run: bool,
    /// The exit code: 0, or a code the command accepts ([`Cmd::accept_exit`]).
    pub exit_code: i32,
}

/// Runs commands. Cheap to clone; clones share the record of commands run.
///
/// Every external program the library starts goes through here: it resolves the program
/// before spawning (a missing one is a clear error), echoes `$ cmd` to stderr, streams
/// combined output live or quietly into the step log, keeps a bounded tail for errors,
/// stops commands that outlive their timeout, and in a dry run prints instead of running.
#[derive(Debug, Clone)]
pub struct Runner {
    dry_run: bool,
    /// Whether a dry run still runs read-only queries.
    dry_run_queries: bool,
    executor: Option<Arc<dyn Executor>>,
    echo: Echo,
    log: Option<PathBuf>,
    prefix: Option<String>,
    /// Variables set (`Some`) or removed (`None`) for every command.
    env: Vec<(String, Option<String>)>,
    default_timeout: Option<Duration>,
    engine_help: Option<String>,
    /// The run's identity, labelling what the steps run with this runner create.
    session: Option<Session>,
    cancel: Cancel,
    /// The secret values this runner's commands were given: masked in all it shows.
    masks: Masks,
    /// Answers of the engine and its tools that do not change while they run (such as the
    /// image store, or the buildx and engine versions), asked once per engine by this
    /// runner and its clones.
    answers: Arc<Mutex<std::collections::HashMap<String, String>>>,
    /// Every action this runner and its clones ran (or, in a dry run, recorded).
    recorded: Arc<Mutex<Vec<Action>>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

/// What [`Runner::prepare`] decided for a command.
enum Prepared {
    /// A dry run skipped it.
    Skipped,
    /// The executor answered it.
    Answered(Answer),
    /// Spawn this program.
    Program(PathBuf),
}

const TAIL_BYTES: usize = 16 * 1024;
const CHUNK: usize = 64 * 1024;

impl Captured {
    /// What a dry run returns for a command it did not run: the command's
    /// [`Cmd::dry_answer`] as its output.
    fn skipped(cmd: &Cmd) -> Captured {
        Captured {
            stdout: cmd.get_dry_answer().to_string(),
            dry_run: true,
            ..Captured::default()
        }
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
            default_timeout: None,
            engine_help: None,
            session: None,
            cancel: Cancel::default(),
            masks: Masks::default(),
            answers: Arc::default(),
            recorded: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// In a dry run, nothing runs: commands are printed (to stdout, `$ cmd`) and
    /// recorded, and so are the read-only queries (`? cmd`, marked [`Cmd::read_only`]),
    /// which answer nothing, unless [`Runner::dry_run_queries`] lets them run.
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
    /// off, so engine queries reach the executor as `docker` commands.
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Runner {
        self.executor = Some(executor);
        self
    }

    /// How the embedding project starts its Docker engine (such as "run `cargo xtask
    /// engine up`"), named in every error about an engine that does not answer. Without
    /// it, the errors say only to start one or to point `DOCKER_HOST` at one.
    pub fn engine_help(mut self, how: impl Into<String>) -> Runner {
        self.engine_help = Some(how.into());
        self
    }

    /// The embedding project's way to start its engine, if it set one.
    pub fn get_engine_help(&self) -> Option<&str> {
        self.engine_help.as_deref()
    }

    /// The run's identity: the steps run with this runner (and its clones) label the
    /// containers and images they create with it and name their containers after it. A
    /// [`Pipeline`](crate::pipeline::Pipeline) gives each step's runner the run's
    /// session ([`RunOptions::session`](crate::pipeline::RunOptions::session)).
    pub fn session(mut self, session: Session) -> Runner {
        self.session = Some(session);
        self
    }

    /// The run's identity, if one was set with [`Runner::session`].
    pub fn get_session(&self) -> Option<&Session> {
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

    /// Whether actions are only recorded (a dry run), for the executor's own methods.
    pub(super) fn only_records(&self) -> bool {
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
    pub fn get_echo(&self) -> Echo {
        self.echo
    }

    /// Appends every command line and its output to this log file (created with its
    /// parent directories on first use; never in a dry run).
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Runner {
        self.log = Some(path.into());
        self
    }

    /// The step log, if any.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Prefixes every line this runner prints on the terminal (`[build] ...`), for steps
    /// running side by side.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Runner {
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

    /// A timeout for commands that set none themselves.
    pub fn default_timeout(mut self, limit: Duration) -> Runner {
        self.default_timeout = Some(limit);
        self
    }

    /// The value of `key` a command started here would see.
    pub fn effective_env(&self, cmd: &Cmd, key: &str) -> Option<String> {
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
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.recorded().commands()
    }

    /// Every action this runner (and its clones) took or, in a dry run, would have taken,
    /// in order, as a [`Plan`]: commands, queries, file writes and removals, probes and
    /// waits. Run a step on [`Runner::recording`] and this is the step's plan; run it for
    /// real and this is what it did.
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
    /// [`Cmd::dry_answer`] says; probes and waits pass.
    pub fn recording(&self) -> Runner {
        Runner {
            dry_run: true,
            dry_run_queries: false,
            echo: Echo::Silent,
            log: None,
            recorded: Arc::new(Mutex::new(Vec::new())),
            // Placeholder answers must never reach the real runner's cache.
            answers: Arc::default(),
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
    pub fn redact(&self, text: &str) -> String {
        self.masks.redact(text)
    }

    /// The handle that cancels this runner's commands (shared by its clones).
    pub fn canceller(&self) -> Cancel {
        self.cancel.clone()
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
    pub fn remove_on_cancel(&self, path: impl Into<PathBuf>) -> CleanupGuard {
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
    pub fn is_cancelled(&self) -> bool {
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

    /// An engine answer this runner (or a clone) already got for `key`.
    pub(crate) fn known_answer(&self, key: &str) -> Option<bool> {
        self.known_text(key).map(|v| v == "true")
    }

    /// Keeps an engine answer for this runner and its clones.
    pub(crate) fn keep_answer(&self, key: &str, answer: bool) {
        self.keep_text(key, answer.to_string());
    }

    /// An engine or tool answer in words (a version) this runner (or a clone) already got
    /// for `key`.
    pub(crate) fn known_text(&self, key: &str) -> Option<String> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Keeps an engine or tool answer in words for this runner and its clones.
    pub(crate) fn keep_text(&self, key: &str, answer: impl Into<String>) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), answer.into());
    }

    /// Where `cmd`'s program would be found (its `PATH` as this runner passes it), or
    /// `None` when it is not installed.
    pub fn program_path(&self, cmd: &Cmd) -> Option<PathBuf> {
        self.resolve(cmd).ok()
    }

    /// The engine's unix socket path, when `DOCKER_HOST` as this runner passes it names
    /// one (`unix:///run/docker.sock` gives `/run/docker.sock`).
    pub fn engine_socket(&self) -> Option<String> {
        let host = self.effective_env(&Cmd::new("docker"), "DOCKER_HOST")?;
        host.strip_prefix("unix://").map(str::to_string)
    }

    /// An Engine API `GET` on the engine's unix socket: a millisecond where a `docker`
    /// process takes tens. `None` when the engine is not on a unix socket (use the CLI).
    /// Like a read-only command it runs in a dry run too, is recorded (as `GET SOCKET
    /// PATH`) and logged, and fails with a [`CommandError`]: an engine that does not
    /// answer is [`Failure::EngineUnreachable`]. Answers of any status are returned.
    pub fn engine_get(&self, path: &str) -> Option<Result<(u16, String), CommandError>> {
        // A fake engine, or a dry run that asks nothing: the `docker` command path
        // records (and, with a fake, answers) the query.
        if self.executor.is_some() || (self.dry_run && !self.dry_run_queries) {
            return None;
        }
        let socket = self.engine_socket()?;
        let shown = Cmd::new("GET").arg(&socket).arg(path).read_only();
        self.record(&shown);
        if let Some(mut log) = self.open_log() {
            let _ = writeln!(log, "$ {shown}");
        }
        Some(super::socket::unix_get(&socket, path).map_err(|why| {
            let unreachable = why.contains("No such file")
                || why.contains("Connection refused")
                || why.contains("os error 2)")
                || why.contains("os error 111)");
            let failure = if unreachable {
                Failure::EngineUnreachable {
                    host: format!("unix://{socket}"),
                    help: self.engine_help.clone(),
                }
            } else {
                Failure::Spawn(why.clone())
            };
            self.error(&shown, failure, vec![why])
        }))
    }

    /// The prefix of the lines it prints (a pipeline step's name), if any.
    pub fn get_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Prints a line the way this runner prints (prefix, echo mode) and logs it.
    pub fn note(&self, line: &str) {
        let line = self.redact(line);
        if self.echo != Echo::Silent {
            eprintln!("{}{line}", self.prefix_text());
        }
        if !self.dry_run {
            if let Some(mut log) = self.open_log() {
                let _ = writeln!(log, "{line}");
            }
        }
    }

    fn prefix_text(&self) -> String {
        match &self.prefix {
            Some(p) => format!("[{p}] "),
            None => String::new(),
        }
    }

    fn open_log(&self) -> Option<File> {
        let path = self.log.as_ref()?;
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        OpenOptions::new().create(true).append(true).open(path).ok()
    }

    fn record(&self, cmd: &Cmd) {
        self.record_action(if cmd.is_read_only() {
            Action::Query(cmd.clone())
        } else {
            Action::Run(cmd.clone())
        });
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

    fn error(&self, cmd: &Cmd, failure: Failure, tail: Vec<String>) -> CommandError {
        CommandError {
            command: cmd.to_string(),
            program: cmd.get_program().to_string(),
            failure,
            tail,
            log: if self.dry_run { None } else { self.log.clone() },
        }
    }

    /// Prints the command in a dry run and says whether to skip running it.
    fn dry_run_skip(&self, cmd: &Cmd) -> bool {
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

    fn resolve(&self, cmd: &Cmd) -> Result<PathBuf, CommandError> {
        let program = cmd.get_program();
        if program.contains('/') {
            let path = match cmd.get_cwd() {
                Some(dir) if Path::new(program).is_relative() => dir.join(program),
                _ => PathBuf::from(program),
            };
            if path.exists() {
                return Ok(path);
            }
        } else {
            let search = self.effective_env(cmd, "PATH").unwrap_or_default();
            let cwd = cmd
                .get_cwd()
                .map(Path::to_path_buf)
                .or_else(|| std::env::current_dir().ok())
                .unwrap_or_else(|| PathBuf::from("."));
            if let Ok(path) = which::which_in(program, Some(search), cwd) {
                return Ok(path);
            }
        }
        Err(self.error(
            cmd,
            Failure::NotFound {
                hint: install_hint(program),
            },
            Vec::new(),
        ))
    }

    fn expression(&self, cmd: &Cmd, program: &Path) -> duct::Expression {
        let mut expr = duct::cmd(program, cmd.real_args());
        if let Some(dir) = cmd.get_cwd() {
            expr = expr.dir(dir);
        }
        for (key, value) in &self.env {
            if cmd.get_env(key).is_none() {
                expr = match value {
                    Some(v) => expr.env(key, v),
                    None => expr.env_remove(key),
                };
            }
        }
        for (key, value) in cmd.real_env() {
            expr = match value {
                Some(v) => expr.env(key, v),
                None => expr.env_remove(key),
            };
        }
        expr = match cmd.get_stdin() {
            Some(bytes) => expr.stdin_bytes(bytes.to_vec()),
            None => expr.stdin_null(),
        };
        // Own process group: a timeout or a cancel stops grandchildren too, and a Ctrl-C
        // at the terminal reaches only the program, which decides what reaches them.
        expr.before_spawn(|c| {
            c.process_group(0);
            Ok(())
        })
        .unchecked()
    }

    /// Spawns through the run's [`Cancel`] registry, so that a cancel cannot fall between
    /// the spawn and the registration of the child's process group.
    fn spawn_tracked<T>(
        &self,
        cmd: &Cmd,
        spawn: impl FnOnce() -> std::io::Result<T>,
        pids: impl FnOnce(&T) -> Vec<u32>,
    ) -> Result<(T, CleanupGuard), CommandError> {
        let pgid_of = |child: &T| pids(child).first().copied().unwrap_or(0) as i32;
        match self.cancel.spawn_tracked(spawn, pgid_of) {
            Ok(Some(started)) => Ok(started),
            Ok(None) => Err(self.cancelled(cmd, Vec::new())),
            Err(e) => Err(self.error(cmd, Failure::Spawn(e.to_string()), Vec::new())),
        }
    }

    /// The error of a command the run's cancel refused or stopped, after the run's
    /// pending clean-ups ran (this thread observed the cancel).
    fn cancelled(&self, cmd: &Cmd, tail: Vec<String>) -> CommandError {
        self.cancel.run_cleanups();
        let failure = self.cancel.failure().unwrap_or(Failure::Cancelled);
        self.error(cmd, failure, tail)
    }

    fn echo_line(&self, cmd: &Cmd) {
        if self.echo != Echo::Silent {
            eprintln!("{}$ {cmd}", self.prefix_text());
        }
    }

    /// Runs `cmd`, streaming its combined stdout and stderr (live on the terminal unless
    /// quiet, and into the step log), and fails with a [`CommandError`] unless it exits 0.
    pub fn run(&self, cmd: &Cmd) -> Result<Captured, CommandError> {
        self.run_filtered(cmd, None)
    }

    /// [`Runner::run`] with the output passed through `filter` before it is masked, shown,
    /// logged and kept for the error (a machine format rendered for people).
    pub(crate) fn run_filtered(
        &self,
        cmd: &Cmd,
        mut filter: Option<&mut dyn OutputFilter>,
    ) -> Result<Captured, CommandError> {
        let program = match self.prepare(cmd)? {
            Prepared::Skipped => return Ok(Captured::skipped(cmd)),
            Prepared::Answered(mut answer) => {
                if let Some(filter) = filter {
                    let mut shown = filter.push(answer.stdout.as_bytes());
                    shown.extend(filter.finish());
                    answer.stdout = String::from_utf8_lossy(&shown).into_owned();
                }
                let mut done = self.answered(cmd, answer, true)?;
                done.stdout.clear();
                return Ok(done);
            }
            Prepared::Program(program) => program,
        };
        self.echo_line(cmd);
        let mut log = self.open_log().map(BufWriter::new);
        if let Some(log) = log.as_mut() {
            let _ = writeln!(log, "$ {cmd}");
        }
        let expr = self.expression(cmd, &program).stderr_to_stdout();
        let (reader, _group) = self.spawn_tracked(cmd, || expr.reader(), |r| r.pids())?;
        let pgid = reader.pids().first().copied().unwrap_or(0) as i32;
        let timer = self.start_timer(cmd, pgid);

        let mut tail = Tail::new(TAIL_BYTES);
        let mut sink = Sink::new(self.echo == Echo::Live, self.prefix_text());
        let redacting = self.masks.any();
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut at_end = false;
        loop {
            let n = match (&reader).read(&mut buf) {
                Ok(0) => 0,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            let filtered;
            let bytes: &[u8] = match filter.as_deref_mut() {
                Some(f) if n == 0 => {
                    at_end = true;
                    filtered = f.finish();
                    &filtered
                }
                Some(f) => {
                    filtered = f.push(&buf[..n]);
                    &filtered
                }
                None if n == 0 => break,
                None => &buf[..n],
            };
            if redacting {
                pending.extend_from_slice(bytes);
                // Redact whole lines only, so a secret split across reads is still masked.
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    let done: Vec<u8> = pending.drain(..=end).collect();
                    let clean = self.masks.redact_bytes(&done);
                    emit(&clean, &mut tail, &mut sink, log.as_mut());
                } else if pending.len() > CHUNK {
                    // A long line: let it out, but hold back enough bytes that a secret
                    // cut by this boundary is whole in the next piece.
                    let keep = self.masks.longest().saturating_sub(1).min(pending.len());
                    let cut = pending.len() - keep;
                    let done: Vec<u8> = pending.drain(..cut).collect();
                    let clean = self.masks.redact_bytes(&done);
                    emit(&clean, &mut tail, &mut sink, log.as_mut());
                }
            } else {
                emit(bytes, &mut tail, &mut sink, log.as_mut());
            }
            if at_end {
                break;
            }
        }
        if !pending.is_empty() {
            let clean = self.masks.redact_bytes(&pending);
            emit(&clean, &mut tail, &mut sink, log.as_mut());
        }
        sink.finish();
        if let Some(log) = log.as_mut() {
            let _ = log.flush();
        }
        let status = loop {
            match reader.try_wait() {
                Ok(Some(out)) => break Ok(out.status),
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => break Err(e),
            }
        };
        let timed_out = timer.map(|t| t.stop()).unwrap_or(false);
        let lines = tail.lines(Tail::LINES);
        let status =
            status.map_err(|e| self.error(cmd, Failure::Spawn(e.to_string()), lines.clone()))?;
        self.check_status(cmd, status, timed_out, lines.clone())?;
        Ok(Captured {
            stdout: String::new(),
            tail: lines,
            stderr: String::new(),
            dry_run: false,
            exit_code: status.code().unwrap_or(0),
        })
    }

    /// Runs a query and returns its standard output; its stderr goes to the step log and
    /// the error tail. The command line is echoed only in the log, unless the runner is
    /// live and the command is not read-only.
    pub fn capture(&self, cmd: &Cmd) -> Result<Captured, CommandError> {
        let program = match self.prepare(cmd)? {
            Prepared::Skipped => return Ok(Captured::skipped(cmd)),
            Prepared::Answered(answer) => {
                let live = !cmd.is_read_only() && self.echo != Echo::Silent;
                return self.answered(cmd, answer, live);
            }
            Prepared::Program(program) => program,
        };
        if !cmd.is_read_only() && self.echo != Echo::Silent {
            self.echo_line(cmd);
        }
        let expr = self
            .expression(cmd, &program)
            .stdout_capture()
            .stderr_capture();
        let (handle, _group) = self.spawn_tracked(cmd, || expr.start(), |h| h.pids())?;
        let pgid = handle.pids().first().copied().unwrap_or(0) as i32;
        let timer = self.start_timer(cmd, pgid);
        let output = handle
            .wait()
            .map_err(|e| self.error(cmd, Failure::Spawn(e.to_string()), Vec::new()))?;
        let timed_out = timer.map(|t| t.stop()).unwrap_or(false);
        let stderr = self.masks.redact_bytes(&output.stderr);
        let mut tail = Tail::new(TAIL_BYTES);
        tail.push(&stderr);
        let lines = tail.lines(Tail::LINES);
        if let Some(mut log) = self.open_log() {
            let _ = writeln!(log, "$ {cmd}");
            let _ = log.write_all(&stderr);
        }
        self.check_status(cmd, output.status, timed_out, lines.clone())?;
        Ok(Captured {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            tail: lines,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            dry_run: false,
            exit_code: output.status.code().unwrap_or(0),
        })
    }

    /// Records the command, then: `None` when a dry run skips it, else the resolved
    /// program, after refusing to start anything once interrupted.
    fn prepare(&self, cmd: &Cmd) -> Result<Prepared, CommandError> {
        for secret in cmd.secrets() {
            self.mask(secret);
        }
        self.record(cmd);
        if self.dry_run_skip(cmd) {
            return Ok(Prepared::Skipped);
        }
        self.start_checks(cmd)?;
        if let Some(executor) = &self.executor {
            return Ok(Prepared::Answered(executor.answer(cmd)));
        }
        self.resolve(cmd).map(Prepared::Program)
    }

    /// A fake executor's answer, shown, logged and checked like a real command's output.
    fn answered(&self, cmd: &Cmd, answer: Answer, live: bool) -> Result<Captured, CommandError> {
        if live {
            self.echo_line(cmd);
        }
        let stdout = self.masks.redact_bytes(answer.stdout.as_bytes());
        let mut tail = Tail::new(TAIL_BYTES);
        tail.push(&stdout);
        let lines = tail.lines(Tail::LINES);
        if let Some(mut log) = self.open_log() {
            let _ = writeln!(log, "$ {cmd}");
            let _ = log.write_all(&stdout);
        }
        if !cmd.accepts_exit(answer.code) {
            return Err(self.error(cmd, Failure::Exit(answer.code), lines));
        }
        Ok(Captured {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            tail: lines,
            stderr: String::new(),
            dry_run: false,
            exit_code: answer.code,
        })
    }

    fn start_checks(&self, cmd: &Cmd) -> Result<(), CommandError> {
        if self.cancel.is_cancelled() {
            return Err(self.cancelled(cmd, Vec::new()));
        }
        Ok(())
    }

    fn start_timer(&self, cmd: &Cmd, pgid: i32) -> Option<Timer> {
        let limit = cmd.get_timeout().or(self.default_timeout);
        Some(Timer::start(limit, pgid, self.cancel.clone()))
    }

    fn check_status(
        &self,
        cmd: &Cmd,
        status: std::process::ExitStatus,
        timed_out: bool,
        tail: Vec<String>,
    ) -> Result<(), CommandError> {
        if status.success() || (!timed_out && status.code().is_some_and(|c| cmd.accepts_exit(c))) {
            return Ok(());
        }
        if self.cancel.is_cancelled() {
            return Err(self.cancelled(cmd, tail));
        }
        let failure = if timed_out {
            Failure::Timeout(
                cmd.get_timeout()
                    .or(self.default_timeout)
                    .unwrap_or_default(),
            )
        } else if let Some(sig) = status.signal() {
            Failure::Signal(sig, signal_name(sig))
        } else {
            let code = status.code().unwrap_or(-1);
            if is_docker(cmd) && engine_unreachable(&tail) {
                Failure::EngineUnreachable {
                    host: self.effective_env(cmd, "DOCKER_HOST").unwrap_or_else(|| {
                        "the default socket (or the current docker context)".into()
                    }),
                    help: self.engine_help.clone(),
                }
            } else if let Some(detail) = is_docker(cmd).then(|| engine_lost(&tail)).flatten() {
                Failure::EngineLost {
                    host: self.effective_env(cmd, "DOCKER_HOST").unwrap_or_else(|| {
                        "the default socket (or the current docker context)".into()
                    }),
                    detail,
                }
            } else {
                Failure::Exit(code)
            }
        };
        Err(self.error(cmd, failure, tail))
    }
}

fn is_docker(cmd: &Cmd) -> bool {
    Path::new(cmd.get_program())
        .file_name()
        .is_some_and(|n| n == "docker")
}

/// The docker client's own words for "no daemon there".
pub(crate) fn engine_unreachable(tail: &[String]) -> bool {
    tail.iter().any(|l| {
        l.contains("Cannot connect to the Docker daemon")
            || l.contains("error during connect")
            || l.contains("Is the docker daemon running")
    })
}

/// The client's words for "the engine's connection closed mid-command" (gRPC from
/// buildx, HTTP from the classic client), as the short reason.
pub(crate) fn engine_lost(tail: &[String]) -> Option<String> {
    const SIGNS: [&str; 3] = [
        "error reading from server: EOF",
        "code = Unavailable desc = closing transport",
        "read/write on closed pipe",
    ];
    tail.iter()
        .rev()
        .find_map(|l| SIGNS.iter().find(|s| l.contains(*s)).map(|s| s.to_string()))
}

fn emit(bytes: &[u8], tail: &mut Tail, sink: &mut Sink, log: Option<&mut BufWriter<File>>) {
    tail.push(bytes);
    if let Some(log) = log {
        let _ = log.write_all(bytes);
    }
    sink.write(bytes);
}

/// The terminal side of a streamed command: live output, prefixed per line when asked.
struct Sink {
    live: bool,
    prefix: String,
    at_line_start: bool,
}

impl Sink {
    fn new(live: bool, prefix: String) -> Sink {
        Sink {
            live,
            prefix,
            at_line_start: true,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if !self.live {
            return;
        }
        let stderr = io::stderr();
        let mut out = stderr.lock();
        if self.prefix.is_empty() {
            let _ = out.write_all(bytes);
            return;
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                let _ = out.write_all(self.prefix.as_bytes());
            }
            let _ = out.write_all(piece);
            self.at_line_start = piece.ends_with(b"\n");
        }
    }

    fn finish(&mut self) {
        if self.live && !self.at_line_start {
            let _ = io::stderr().write_all(b"\n");
        }
    }
}

/// How often a running command checks whether its runner was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// How long a cancelled command has between SIGTERM and SIGKILL.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Kills a process group when its time is up or its runner is cancelled.
struct Timer {
    stop: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Timer {
    /// Watches a running command: kills its process group when `limit` passes (and says
    /// so), or, once `cancel` is set (which sent the group SIGTERM), kills it after a
    /// grace period.
    fn start(limit: Option<Duration>, pgid: i32, cancel: Cancel) -> Timer {
        let (stop, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let started = std::time::Instant::now();
        let thread = std::thread::spawn(move || loop {
            let left = limit.map(|l| l.saturating_sub(started.elapsed()));
            let wait = left.map_or(CANCEL_POLL, |l| l.min(CANCEL_POLL));
            match rx.recv_timeout(wait) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            if left.is_some_and(|l| l <= wait) {
                flag.store(true, Ordering::SeqCst);
                if pgid > 0 {
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                return;
            }
            if cancel.is_cancelled() && pgid > 0 {
                if rx.recv_timeout(CANCEL_GRACE).is_err() {
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                return;
            }
        });
        Timer {
            stop,
            fired,
            thread,
        }
    }

    /// Stops the timer; true when it had fired.
    fn stop(self) -> bool {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.fired.load(Ordering::SeqCst)
    }
}
