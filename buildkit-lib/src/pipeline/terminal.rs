//! What a running pipeline shows: a live status line per running step on a terminal,
//! plain prefixed lines otherwise (CI), log groups in GitHub Actions, `NO_COLOR` honoured.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use crate::cmd::Echo;

use super::report::StepStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A terminal: step output goes to the logs, a status board shows running steps.
    Live,
    /// Not a terminal: step output streams with a `[step]` prefix.
    Plain,
    /// GitHub Actions: like plain, each step's log printed in a group when it ends.
    Actions,
    /// Nothing on the terminal.
    Silent,
}

/// The terminal side of a pipeline run.
pub(crate) struct Board {
    mode: Mode,
    color: bool,
    state: Arc<Mutex<BoardState>>,
    ticking: Arc<AtomicBool>,
}

struct BoardState {
    running: BTreeMap<String, Instant>,
    drawn: usize,
}

impl Board {
    pub(crate) fn new(echo: Echo) -> Board {
        let mode = if echo == Echo::Silent {
            Mode::Silent
        } else if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            Mode::Actions
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        };
        let color = mode == Mode::Live && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let board = Board {
            mode,
            color,
            state: Arc::new(Mutex::new(BoardState {
                running: BTreeMap::new(),
                drawn: 0,
            })),
            ticking: Arc::new(AtomicBool::new(mode == Mode::Live)),
        };
        if mode == Mode::Live {
            // Keep the running steps' elapsed times moving between events.
            let ticker = Board {
                mode,
                color,
                state: board.state.clone(),
                ticking: board.ticking.clone(),
            };
            std::thread::spawn(move || {
                while ticker.ticking.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(250));
                    let mut state = ticker.state.lock().unwrap_or_else(|e| e.into_inner());
                    if ticker.ticking.load(Ordering::SeqCst) && !state.running.is_empty() {
                        ticker.redraw(&mut state);
                    }
                }
            });
        }
        board
    }

    /// How steps' runners should echo.
    pub(crate) fn step_echo(&self) -> Echo {
        match self.mode {
            Mode::Plain => Echo::Live,
            Mode::Actions => Echo::Quiet,
            Mode::Live => Echo::Silent,
            Mode::Silent => Echo::Silent,
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub(crate) fn started(&self, name: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running.insert(name.to_string(), Instant::now());
        match self.mode {
            Mode::Plain | Mode::Actions => eprintln!("[{name}] started"),
            Mode::Live => self.redraw(&mut state),
            Mode::Silent => {}
        }
    }

    pub(crate) fn finished(&self, name: &str, status: StepStatus, seconds: f64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running.remove(name);
        let code = match status {
            StepStatus::Ok => "32",
            StepStatus::UpToDate => "36",
            StepStatus::Skipped => "33",
            StepStatus::Failed => "31",
            StepStatus::Unsupported => "35",
        };
        let word = self.paint(&format!("{:>12}", status.as_str()), code);
        match self.mode {
            Mode::Silent => {}
            Mode::Live => {
                self.erase(&mut state);
                eprintln!("{word} {name} ({seconds:.1}s)");
                self.redraw(&mut state);
            }
            Mode::Plain => eprintln!("[{name}] {} ({seconds:.1}s)", status.as_str()),
            Mode::Actions => eprintln!("[{name}] {} ({seconds:.1}s)", status.as_str()),
        }
    }

    /// A failed step: its error, and in GitHub Actions its whole log in a group.
    pub(crate) fn failure(&self, name: &str, error: &str, log: Option<&str>) {
        if self.mode == Mode::Silent {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.erase(&mut state);
        if self.mode == Mode::Actions {
            if let Some(text) = log.and_then(|l| std::fs::read_to_string(l).ok()) {
                eprintln!("::group::log of step {name}");
                eprint!("{text}");
                eprintln!("::endgroup::");
            }
        }
        // Plain and Actions modes streamed the output already: its tail is not repeated.
        let error = if matches!(self.mode, Mode::Plain | Mode::Actions) {
            without_output_tail(error)
        } else {
            error.to_string()
        };
        let error = error.as_str();
        eprintln!("error: step `{name}` failed: {error}");
        // A command's error already names its log: say it once.
        if let Some(log) = log.filter(|l| !error.contains(l)) {
            eprintln!("       full log: {log}");
        }
        self.redraw(&mut state);
    }

    fn erase(&self, state: &mut BoardState) {
        if self.mode != Mode::Live || state.drawn == 0 {
            return;
        }
        let mut err = std::io::stderr().lock();
        for _ in 0..state.drawn {
            let _ = write!(err, "\x1b[1A\x1b[2K");
        }
        state.drawn = 0;
    }

    fn redraw(&self, state: &mut BoardState) {
        if self.mode != Mode::Live {
            return;
        }
        self.erase(state);
        let mut err = std::io::stderr().lock();
        for (name, since) in &state.running {
            let _ = writeln!(
                err,
                "{} {name} ({:.0}s)",
                self.paint(&format!("{:>12}", "running"), "34"),
                since.elapsed().as_secs_f64()
            );
        }
        state.drawn = state.running.len();
    }

    pub(crate) fn clear(&self) {
        self.ticking.store(false, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.erase(&mut state);
    }
}

/// `error` without a command error's "--- last N lines of output" block (kept: what comes
/// before it and the "--- full output" line after it, and any other "--- last" block).
fn without_output_tail(error: &str) -> String {
    // Only a command's streamed output: a smoke test's container log lines ("--- last N
    // log lines") were never shown, and say why it failed.
    let Some(start) = error
        .match_indices("\n--- last ")
        .map(|(i, _)| i)
        .find(|&i| {
            error[i..]
                .lines()
                .nth(1)
                .is_some_and(|l| l.ends_with(" lines of output"))
        })
    else {
        return error.to_string();
    };
    let rest = &error[start + 1..];
    match rest.find("\n--- full output: ") {
        Some(end) => format!("{}{}", &error[..start], &rest[end..]),
        None => error[..start].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_output_tail;

    #[test]
    fn a_commands_streamed_tail_goes_and_a_containers_log_lines_stay() {
        let command = "cannot build image app\n--- last 2 lines of output\nstep 3\nERROR: x\n\
                       --- full output: target/logs/image.log";
        assert_eq!(
            without_output_tail(command),
            "cannot build image app\n--- full output: target/logs/image.log"
        );
        let smoke = "service db stopped before it was ready\nstate: exited, exit code: 1\n\
                     --- last 1 log lines\nfirst start needs MARIADB_ROOT_PASSWORD";
        assert_eq!(without_output_tail(smoke), smoke);
    }
}
