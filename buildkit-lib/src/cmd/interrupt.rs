//! Ctrl-C and SIGTERM: stop the children, remove what this run created, exit 130.
//!
//! The first signal stops every running child process group (forwarding the signal, then
//! SIGKILL after a grace period), runs the clean-up commands registered by steps (such as
//! `docker rm -f` of the containers this run created), removes registered temporary paths
//! and exits with status 130. A second signal exits at once.
//!
//! Nothing here happens unless the program asks for it: [`install`] is called from `main`
//! (a project's xtask does; a release GUI or a service embedding the library keeps its own
//! signal handling and never calls it). Without it, the library installs no handler and
//! never ends the process; registrations ([`on_interrupt`], [`remove_on_interrupt`]) are
//! kept but only acted on once installed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use super::Cmd;

/// The exit status of a run stopped by Ctrl-C or SIGTERM.
pub const EXIT_INTERRUPTED: i32 = 130;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
struct Tracked {
    groups: BTreeMap<u64, i32>,
    cleanups: BTreeMap<u64, Cmd>,
    paths: BTreeMap<u64, PathBuf>,
}

fn tracked() -> &'static Mutex<Tracked> {
    static TRACKED: OnceLock<Mutex<Tracked>> = OnceLock::new();
    TRACKED.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Tracked> {
    tracked().lock().unwrap_or_else(|e| e.into_inner())
}

/// Set (by signal-hook, in the handler) once a SIGINT or SIGTERM arrived.
fn received() -> &'static Arc<AtomicBool> {
    static RECEIVED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    RECEIVED.get_or_init(Default::default)
}

/// Installs the SIGINT and SIGTERM handlers (through `signal-hook`) and the thread that
/// acts on them: on the first signal it stops the running commands, runs the registered
/// clean-ups and ends the process with status 130; a second signal ends it at once. For a
/// program's `main` (the library never calls it itself). Calling it again does nothing.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [SIGINT, SIGTERM] {
            // In this order: the second signal finds the flag set and exits at once.
            let _ = signal_hook::flag::register_conditional_shutdown(
                sig,
                EXIT_INTERRUPTED,
                Arc::clone(received()),
            );
            let _ = signal_hook::flag::register(sig, Arc::clone(received()));
        }
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        INSTALLED.store(true, Ordering::SeqCst);
        std::thread::Builder::new()
            .name("buildkit-interrupt".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    clean_up_and_exit(sig);
                }
            })
            .expect("cannot start the interrupt watcher thread");
    });
}

/// True once a Ctrl-C or SIGTERM has been received.
pub fn interrupted() -> bool {
    received().load(Ordering::SeqCst)
}

/// Called by a thread that noticed the interrupt (its command died of it): waits for the
/// clean-up to finish, which ends the process with status 130. Returns at once when no
/// interrupt is under way.
pub fn wait_for_cleanup() {
    if !(interrupted() && INSTALLED.load(Ordering::SeqCst)) {
        return;
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// After the first signal: forwards it to the running commands, waits for them (SIGKILL
/// after a grace period), runs the clean-ups, removes the temporary paths, exits 130.
fn clean_up_and_exit(sig: i32) {
    eprintln!("\ninterrupted: stopping running commands and cleaning up (press Ctrl-C again to exit at once)");
    let groups: Vec<i32> = lock().groups.values().copied().collect();
    for pgid in &groups {
        unsafe { libc::kill(-pgid, sig) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && groups.iter().any(|g| group_alive(*g)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pgid in &groups {
        if group_alive(*pgid) {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    let (cleanups, paths) = {
        let t = lock();
        (
            t.cleanups.values().cloned().collect::<Vec<_>>(),
            t.paths.values().cloned().collect::<Vec<_>>(),
        )
    };
    for cmd in cleanups {
        eprintln!("$ {cmd}");
        let _ = run_cleanup(&cmd);
    }
    for path in paths {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    std::process::exit(EXIT_INTERRUPTED);
}

fn group_alive(pgid: i32) -> bool {
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Runs a clean-up command directly (the runner refuses new work once interrupted).
fn run_cleanup(cmd: &Cmd) -> std::io::Result<()> {
    let mut command = std::process::Command::new(cmd.get_program());
    command
        .args(cmd.real_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in cmd.real_env() {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    let mut child = command.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keeps something registered for clean-up on interrupt; dropping it unregisters it.
#[must_use = "the registration ends when the guard is dropped"]
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut t = lock();
        t.groups.remove(&self.id);
        t.cleanups.remove(&self.id);
        t.paths.remove(&self.id);
    }
}

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::SeqCst)
}

/// Starts a child and registers its process group, stopped on interrupt, as one step: the
/// registry's lock is held across the spawn, so a signal arriving in between finds the
/// group registered (the clean-up snapshot waits for the lock), and a signal that arrived
/// before refuses the spawn (`Ok(None)`) instead of starting a child nobody would stop.
pub(crate) fn spawn_tracked<T, E>(
    spawn: impl FnOnce() -> Result<T, E>,
    pgid_of: impl FnOnce(&T) -> i32,
) -> Result<Option<(T, Guard)>, E> {
    let mut t = lock();
    if interrupted() && INSTALLED.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let child = spawn()?;
    let id = next_id();
    t.groups.insert(id, pgid_of(&child));
    Ok(Some((child, Guard { id })))
}

/// Registers a command to run on interrupt, such as `docker rm -f <container>` for a
/// container this run created. Drop the guard once the resource is gone.
pub fn on_interrupt(cleanup: Cmd) -> Guard {
    let id = next_id();
    lock().cleanups.insert(id, cleanup);
    Guard { id }
}

/// Registers a temporary file or directory to remove on interrupt.
pub fn remove_on_interrupt(path: impl Into<PathBuf>) -> Guard {
    let id = next_id();
    lock().paths.insert(id, path.into());
    Guard { id }
}
