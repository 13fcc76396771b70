//! The process executor: how the [`Runner`] starts a program and lives with it.
//!
//! Resolving the program on the runner's `PATH` (a missing one is a clear error), the
//! process in its own group, its output streamed live or quietly into the step log (masked
//! line by line, through an [`OutputFilter`] when a machine format is rendered for
//! people), a bounded tail kept for the error, the timeout and the cancel token that stop
//! the whole group, and the exit status read into a typed [`CommandError`]. A fake
//! executor's answers go through the same echo, log, masking and checks. The run context
//! (settings, session, record, masks, cancel token) lives in `runner.rs`; the engine's
//! cached answers in `engine.rs`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::cancel::{Cancel, Guard as CleanupGuard};
use super::error::{install_hint, signal_name};
use super::Answer;
use super::{Cmd, CommandError, Failure, Runner, Tail};

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
    pub(crate) tail: Vec<String>,
    /// Standard error in full, secrets masked, for [`Runner::capture`] (empty for
    /// [`Runner::run`]).
    pub stderr: String,
    /// The exit code: 0, or another code the command counts as an answer rather than a
    /// failure (`docker buildx build --call=check` exits 1 when it has findings; the
    /// library's own steps accept such codes, a command that fails is a
    /// [`CommandError`](crate::CommandError) with its code).
    pub(crate) exit_code: i32,
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
            ..Captured::default()
        }
    }
}

impl Runner {
    pub(super) fn resolve(&self, cmd: &Cmd) -> Result<PathBuf, CommandError> {
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
                    let rest = pending.split_off(end + 1);
                    let done = std::mem::replace(&mut pending, rest);
                    let clean = self.masks.redact_bytes(&done);
                    emit(&clean, &mut tail, &mut sink, log.as_mut());
                } else if pending.len() > CHUNK {
                    // A long line: let it out, but hold back enough bytes that a secret
                    // cut by this boundary is whole in the next piece.
                    let keep = self.masks.longest().saturating_sub(1).min(pending.len());
                    let cut = pending.len() - keep;
                    let rest = pending.split_off(cut);
                    let done = std::mem::replace(&mut pending, rest);
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
        let limit = cmd.get_timeout();
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
            Failure::Timeout(cmd.get_timeout().unwrap_or_default())
        } else if let Some(sig) = status.signal() {
            Failure::Signal(sig, signal_name(sig))
        } else {
            let code = status.code().unwrap_or(-1);
            if is_docker(cmd) && engine_unreachable(&tail) {
                Failure::EngineUnreachable {
                    host: self.effective_env(cmd, "DOCKER_HOST").unwrap_or_else(|| {
                        "the default socket (or the current docker context)".into()
                    }),
                    help: self.engine.help().map(str::to_string),
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
