//! [`CommandError`]: how a command failed, what it was, and what it said last.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How a command ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It exited with a non-zero code.
    Exit(i32),
    /// A signal ended it (number and name).
    Signal(i32, &'static str),
    /// It ran longer than its timeout and was stopped.
    Timeout(Duration),
    /// The program is not installed (not found on `PATH`), so it never ran.
    NotFound {
        /// How to get the program.
        hint: String,
    },
    /// It could not be started for another reason.
    Spawn(String),
    /// The Docker engine did not answer (the command ran, the daemon was not there).
    EngineUnreachable {
        /// Where the client looked for the engine.
        host: String,
        /// How the embedding project starts it ([`Runner::engine_help`](crate::Runner::engine_help)).
        help: Option<String>,
    },
    /// The engine went away while the command ran (the connection to it closed).
    EngineLost {
        /// Where the client talked to the engine.
        host: String,
        /// The client's words, such as `error reading from server: EOF`.
        detail: String,
    },
    /// The run was interrupted: a SIGINT or SIGTERM cancelled it, once the program asked
    /// for that with [`Cancel::on_signals`](crate::cmd::Cancel::on_signals).
    Interrupted,
    /// The runner was cancelled through its [`Cancel`](crate::cmd::Cancel) handle.
    Cancelled,
}

/// A command that did not succeed. Callers can downcast an `anyhow::Error` to it to ask
/// how it ended ([`CommandError::exit_code`], [`CommandError::interrupted`],
/// [`CommandError::timed_out`]); printed, it reads like cargo's process errors: the
/// command line with secrets masked, what ended it (exit status, signal, timeout, a
/// missing program, an engine that does not answer or went away, a cancel), the last
/// lines of its output and the log file holding all of it.
#[derive(Debug, Clone)]
pub struct CommandError {
    /// The command line as displayed (secrets masked).
    pub(crate) command: String,
    /// The program.
    pub(crate) program: String,
    /// How it ended.
    pub(crate) failure: Failure,
    /// The last lines of its combined output (at most 20).
    pub(crate) tail: Vec<String>,
    /// The log file holding its full output, when it had one.
    pub(crate) log: Option<PathBuf>,
}

impl CommandError {
    /// The exit code, when it exited on its own.
    pub fn exit_code(&self) -> Option<i32> {
        match self.failure {
            Failure::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// Whether the run was stopped rather than the command failing: cancelled through its
    /// [`Cancel`](crate::cmd::Cancel) token or interrupted by SIGINT or SIGTERM (once
    /// `main` asked for that with [`Cancel::on_signals`](crate::cmd::Cancel::on_signals)).
    /// A program then exits [`EXIT_INTERRUPTED`](crate::cmd::EXIT_INTERRUPTED).
    pub fn interrupted(&self) -> bool {
        matches!(self.failure, Failure::Interrupted | Failure::Cancelled)
    }

    /// The limit it ran into, when it ran longer than its timeout
    /// ([`Cmd::timeout`](crate::Cmd::timeout)) and was stopped.
    pub fn timed_out(&self) -> Option<Duration> {
        match self.failure {
            Failure::Timeout(limit) => Some(limit),
            _ => None,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::NotFound { hint } => {
                return write!(
                    f,
                    "command not found: `{}` (never executed)\nhelp: {hint}",
                    self.program
                )
            }
            Failure::Spawn(why) => {
                return write!(
                    f,
                    "could not execute process `{}` (never executed): {why}",
                    self.command
                )
            }
            Failure::Exit(code) => write!(
                f,
                "process didn't exit successfully: `{}` (exit status: {code})",
                self.command
            )?,
            Failure::Signal(num, name) => write!(
                f,
                "process didn't exit successfully: `{}` (signal: {num}, {name})",
                self.command
            )?,
            Failure::Timeout(limit) => write!(
                f,
                "process timed out after {}: `{}` (stopped)",
                human_duration(*limit),
                self.command
            )?,
            Failure::Interrupted => write!(f, "process interrupted: `{}`", self.command)?,
            Failure::Cancelled => write!(f, "process cancelled: `{}`", self.command)?,
            Failure::EngineLost { host, detail } => write!(
                f,
                "the Docker engine at {host} went away during `{}` ({detail})\nhelp: the \
                 engine stopped or crashed mid-command: check that it runs (`docker info`, \
                 its log), then run again",
                self.command
            )?,
            Failure::EngineUnreachable { host, help } => {
                write!(
                    f,
                    "the Docker engine at {host} does not answer: `{}`\nhelp: start it",
                    self.command
                )?;
                if let Some(how) = help {
                    write!(f, " ({how})")?;
                }
                write!(
                    f,
                    ", or point DOCKER_HOST or `docker context use` at a running engine"
                )?
            }
        }
        if !self.tail.is_empty() {
            write!(f, "\n--- last {} lines of output", self.tail.len())?;
            for line in &self.tail {
                write!(f, "\n{line}")?;
            }
        }
        if let Some(log) = &self.log {
            write!(f, "\n--- full output: {}", log.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandError {}

fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(num: i32) -> &'static str {
    match num {
        libc::SIGHUP => "SIGHUP: hangup",
        libc::SIGINT => "SIGINT: interrupt",
        libc::SIGQUIT => "SIGQUIT: quit",
        libc::SIGILL => "SIGILL: illegal instruction",
        libc::SIGABRT => "SIGABRT: abort",
        libc::SIGBUS => "SIGBUS: bus error",
        libc::SIGFPE => "SIGFPE: floating point exception",
        libc::SIGKILL => "SIGKILL: kill",
        libc::SIGSEGV => "SIGSEGV: invalid memory reference",
        libc::SIGPIPE => "SIGPIPE: write to a closed pipe",
        libc::SIGALRM => "SIGALRM: alarm",
        libc::SIGTERM => "SIGTERM: termination",
        _ => "unknown signal",
    }
}

/// How to get a program that is not installed.
pub(crate) fn install_hint(program: &str) -> String {
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string());
    match name.as_str() {
        "docker" | "dockerd" => "install the Docker CLI and engine (on Debian: `apt-get install docker.io docker-buildx`)".into(),
        "git" => "install git (on Debian: `apt-get install git`)".into(),
        "python3" | "python" => "install Python 3 with venv (on Debian: `apt-get install python3 python3-venv`)".into(),
        "black" | "isort" | "pyinstaller" | "hadolint" => format!("`{name}` runs from the tool environment the library creates under target/; check that python3 can create a venv and reach PyPI"),
        "trivy" => "install trivy (https://trivy.dev) and put it on PATH".into(),
        _ => format!("install `{name}` and make sure it is on PATH"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_cargo() {
        let e = CommandError {
            command: "docker buildx build .".into(),
            program: "docker".into(),
            failure: Failure::Exit(1),
            tail: vec!["ERROR: failed to solve".into()],
            log: None,
        };
        assert_eq!(
            e.to_string(),
            "process didn't exit successfully: `docker buildx build .` (exit status: 1)\n\
             --- last 1 lines of output\nERROR: failed to solve"
        );
        let s = CommandError {
            failure: Failure::Signal(9, signal_name(9)),
            tail: vec![],
            ..e
        };
        assert!(s.to_string().ends_with("(signal: 9, SIGKILL: kill)"));
    }
}
