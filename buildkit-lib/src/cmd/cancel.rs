//! [`Cancel`]: one run's cancellation, with what it stops and what it cleans up.
//!
//! A run's [`Runner`] (and its clones) share one [`Cancel`] token. The token keeps the
//! run's registry: the process groups of the commands running now, and the clean-ups the
//! steps registered ([`Runner::on_cancel`], such as `docker rm -f` of a container the run
//! created; [`Runner::remove_on_cancel`], a staging directory). [`Cancel::cancel`], from
//! any thread, sends SIGTERM to the running groups (SIGKILL follows after a grace period)
//! and refuses new commands; the clean-ups then run through the runner they were
//! registered with (echoed, logged, masked, answered by a fake executor in tests), once:
//! in the thread whose command was cancelled or refused, before it returns its error, or
//! in [`Runner::clean_up_cancelled`], which a program calls once its run has ended.
//!
//! Nothing here is process-wide: two runs in one program are cancelled apart. Signals are
//! the program's business: [`Cancel::on_signals`] lets a program's `main` cancel a run on
//! SIGINT and SIGTERM; the library installs no handler by itself and never ends the
//! process (a program that wants a second Ctrl-C to exit at once registers that itself,
//! as this repository's xtask does).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{Cmd, Failure, Runner};

/// The exit status a program conventionally uses for a run stopped by Ctrl-C or SIGTERM
/// (128 + SIGINT). The library never exits; a program's `main` returns it.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long a clean-up command may run when it sets no timeout itself.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The token's states (an `AtomicU8`): running, cancelled, interrupted by a signal.
const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const INTERRUPTED: u8 = 2;

/// A handle that cancels one run: the commands of a [`Runner`] given it (with
/// [`Runner::cancel_with`]) and of that runner's clones. Cheap to clone; clones are the
/// same token.
///
/// Cancelling stops the running commands (their process group gets SIGTERM, then SIGKILL
/// after a grace period), refuses new ones (with a [`CommandError`](crate::CommandError)
/// that is [`interrupted`](crate::CommandError::interrupted), whether the program or a
/// signal cancelled it, see [`Cancel::on_signals`]), and runs the clean-ups the steps
/// registered with [`Runner::on_cancel`] (and the temporary paths the library's own steps
/// registered).
#[derive(Clone, Default)]
pub struct Cancel(Arc<Shared>);

#[derive(Default)]
struct Shared {
    state: AtomicU8,
    registry: Mutex<Registry>,
    /// Notified whenever a clean-up pass ends.
    idle: Condvar,
}

/// What one run has running and registered, by registration id.
#[derive(Default)]
struct Registry {
    next_id: u64,
    groups: BTreeMap<u64, i32>,
    cleanups: BTreeMap<u64, (Runner, Cmd)>,
    paths: BTreeMap<u64, PathBuf>,
    /// Clean-up passes under way (in any thread).
    cleaning: usize,
}

impl Registry {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancel {
    /// A token that is not cancelled, with nothing registered.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels the run: sends SIGTERM to the process groups of its running commands
    /// (SIGKILL follows after a grace period) and refuses what comes next. Returns at
    /// once; callable from any thread, any number of times.
    pub fn cancel(&self) {
        self.stop(CANCELLED);
    }

    /// Whether the run was cancelled ([`Cancel::cancel`], or a signal once
    /// [`Cancel::on_signals`] is set up).
    pub fn is_cancelled(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) != RUNNING
    }

    /// For a program's `main`: cancels this run on SIGINT and SIGTERM (through
    /// `signal-hook`) until the returned guard is dropped. The run's commands then fail
    /// [`interrupted`](crate::CommandError::interrupted); the program decides what follows (this repository's
    /// xtask runs [`Runner::clean_up_cancelled`] and exits [`EXIT_INTERRUPTED`], and
    /// exits at once on a second signal). The library never calls it itself.
    ///
    /// Dropping the guard stops the cancelling, but `signal-hook` leaves its handler in
    /// place, so the two signals are then ignored: keep the guard for as long as `main`
    /// runs.
    ///
    /// # Errors
    ///
    /// When the handlers cannot be registered (the error of `signal-hook`).
    pub fn on_signals(&self) -> io::Result<Guard> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let cancel = self.clone();
        let thread = std::thread::Builder::new()
            .name("buildkit-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if !cancel.is_cancelled() {
                        eprintln!(
                            "\ninterrupted ({}): stopping the running commands and cleaning up",
                            super::error::signal_name(sig)
                        );
                    }
                    cancel.stop(INTERRUPTED);
                }
            })?;
        Ok(Guard(Held::Signals {
            handle,
            thread: Some(thread),
        }))
    }

    /// The failure of a command this token refused or stopped, once cancelled.
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self.0.state.load(Ordering::SeqCst) {
            RUNNING => None,
            INTERRUPTED => Some(Failure::Interrupted),
            _ => Some(Failure::Cancelled),
        }
    }

    /// Sets the state (the first reason stays) and stops the running groups. The state is
    /// set before the registry is locked: a spawn holding the lock either saw it unset and
    /// registered its group before this loop reads the groups, or sees it set and refuses.
    fn stop(&self, why: u8) {
        let first = self
            .0
            .state
            .compare_exchange(RUNNING, why, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !first {
            return;
        }
        for &pgid in self.lock().groups.values() {
            if pgid > 0 {
                // SAFETY: kill(2) of a process group this run started.
                unsafe { libc::kill(-pgid, libc::SIGTERM) };
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a child and registers its process group as one step: the registry's lock is
    /// held across the spawn, so a cancel arriving in between finds the group registered,
    /// and one that arrived before refuses the spawn (`Ok(None)`) instead of starting a
    /// child nobody would stop.
    pub(crate) fn spawn_tracked<T, E>(
        &self,
        spawn: impl FnOnce() -> Result<T, E>,
        pgid_of: impl FnOnce(&T) -> i32,
    ) -> Result<Option<(T, Guard)>, E> {
        let mut registry = self.lock();
        if self.is_cancelled() {
            return Ok(None);
        }
        let child = spawn()?;
        let id = registry.next_id();
        registry.groups.insert(id, pgid_of(&child));
        Ok(Some((child, self.guard(id))))
    }

    /// Registers `cmd`, run with `runner` (never cancelled) if the run is cancelled.
    pub(crate) fn register_cleanup(&self, runner: Runner, cmd: Cmd) -> Guard {
        let mut registry = self.lock();
        let id = registry.next_id();
        registry.cleanups.insert(id, (runner, cmd));
        drop(registry);
        self.guard(id)
    }

    /// Registers a temporary file or directory removed if the run is cancelled.
    pub(crate) fn register_path(&self, path: PathBuf) -> Guard {
        let mut registry = self.lock();
        let id = registry.next_id();
        registry.paths.insert(id, path);
        drop(registry);
        self.guard(id)
    }

    fn guard(&self, id: u64) -> Guard {
        Guard(Held::Registration {
            cancel: self.clone(),
            id,
        })
    }

    /// Once cancelled: takes the registered clean-ups out of the registry (so each runs
    /// once), runs the commands through their runners and removes the paths, then waits
    /// for the passes other threads have under way. Does nothing before a cancel.
    pub(crate) fn run_cleanups(&self) {
        if !self.is_cancelled() {
            return;
        }
        let (cleanups, paths) = {
            let mut registry = self.lock();
            registry.cleaning += 1;
            (
                std::mem::take(&mut registry.cleanups),
                std::mem::take(&mut registry.paths),
            )
        };
        for (runner, cmd) in cleanups.into_values() {
            let cmd = match cmd.get_timeout() {
                Some(_) => cmd,
                None => cmd.timeout(CLEANUP_TIMEOUT),
            };
            if let Err(e) = runner.capture(&cmd) {
                runner.note(&format!("clean-up after the cancel failed: {e}"));
            }
        }
        for path in paths.into_values() {
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
        let mut registry = self.lock();
        registry.cleaning -= 1;
        self.0.idle.notify_all();
        while registry.cleaning > 0 {
            registry = self
                .0
                .idle
                .wait(registry)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Keeps something set up with a run's [`Cancel`] until dropped: a clean-up registered with
/// [`Runner::on_cancel`] (dropping the guard unregisters it; in the normal path the step
/// removes the thing itself, then drops the guard), or the signal handling of
/// [`Cancel::on_signals`] (signals cancel the run only while the guard lives).
#[must_use = "what the guard keeps ends when it is dropped"]
pub struct Guard(Held);

/// What a [`Guard`] keeps.
enum Held {
    /// A registration with the token (a running command's process group, a clean-up
    /// command, a temporary path).
    Registration { cancel: Cancel, id: u64 },
    /// The SIGINT and SIGTERM handling thread.
    Signals {
        handle: signal_hook::iterator::Handle,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Held::Registration { id, .. } => f.debug_struct("Guard").field("id", id).finish(),
            Held::Signals { .. } => f.debug_struct("Guard").field("signals", &true).finish(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        match &mut self.0 {
            Held::Registration { cancel, id } => {
                let mut registry = cancel.lock();
                registry.groups.remove(id);
                registry.cleanups.remove(id);
                registry.paths.remove(id);
            }
            Held::Signals { handle, thread } => {
                handle.close();
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cmd::FakeExecutor;

    #[test]
    fn a_cancel_runs_each_registered_clean_up_once_through_its_runner() {
        let fake = Arc::new(FakeExecutor::new());
        let cancel = Cancel::new();
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone())
            .cancel_with(cancel.clone());
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let _rm = runner.on_cancel(Cmd::new("docker").args(["rm", "-f", "kept"]));
        let dropped = runner.on_cancel(Cmd::new("docker").args(["rm", "-f", "gone"]));
        let _path = runner.remove_on_cancel(&staging);
        drop(dropped);
        // Nothing runs before the cancel.
        runner.clean_up_cancelled();
        assert!(staging.exists());
        cancel.cancel();
        let err = runner.run(&Cmd::new("docker").arg("build")).unwrap_err();
        assert_eq!(err.failure, Failure::Cancelled);
        // The refused command ran the clean-ups before its error returned (the path
        // registered by a step is removed then, as the command's clean-up runs).
        assert!(!staging.exists());
        runner.clean_up_cancelled();
        assert!(!staging.exists());
        let ran: Vec<String> = runner.commands().iter().map(|c| c.join(" ")).collect();
        assert_eq!(ran, ["docker build", "docker rm -f kept"]);
        assert_eq!(
            fake.seen().len(),
            1,
            "only the clean-up reached the executor"
        );
    }

    #[test]
    fn two_tokens_are_apart() {
        let a = Cancel::new();
        let b = Cancel::new();
        a.cancel();
        assert!(a.is_cancelled());
        assert!(!b.is_cancelled());
        assert_eq!(a.failure(), Some(Failure::Cancelled));
        assert_eq!(b.failure(), None);
    }
}
