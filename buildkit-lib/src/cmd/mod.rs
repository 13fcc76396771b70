//! Running external programs: the one place in the library that starts a process.
//!
//! A [`Cmd`] is a plain value (program, arguments, working directory, environment) that
//! displays itself shell-escaped, so plans can be printed and compared as text. A
//! [`Runner`] runs it: it echoes `$ cmd`, streams output to the terminal and the step's
//! log, keeps a bounded tail for the error, enforces timeouts and honours dry runs.
//! Given an [`Executor`], it asks it for answers instead of starting processes (tests).
//! Failures are a typed [`CommandError`]. A run is cancelled through its [`Cancel`] token
//! (from another thread, or on SIGINT and SIGTERM once `main` asks for it with
//! [`Cancel::on_signals`]), which stops its commands and runs the clean-ups its steps
//! registered; the library keeps no process-wide state and never ends the process.

mod actions;
mod cancel;
pub(crate) mod command;
mod engine;
pub(crate) mod error;
mod executor;
mod probe;
mod process;
pub(crate) mod runner;
pub(crate) mod secret;
mod socket;
mod tail;

// `Cmd`, `CommandError`, `Runner` and `Secret` are used by every step: their one public
// path is the crate root (`buildkit_lib::Runner`); the library reaches them here.
pub use actions::{WaitFailed, Waited};
pub use cancel::{Cancel, CleanupGuard, SignalGuard, EXIT_INTERRUPTED};
pub use command::shell_escape;
pub(crate) use command::Cmd;
pub(crate) use error::CommandError;
pub use error::Failure;
pub use executor::{Answer, Executor, FakeExecutor};
pub(crate) use probe::ContainerState;
pub use probe::{ContainerReady, Probe};
pub(crate) use process::OutputFilter;
pub use process::{Captured, Echo};
pub(crate) use runner::Runner;
pub(crate) use secret::Secret;
pub(crate) use tail::Tail;
