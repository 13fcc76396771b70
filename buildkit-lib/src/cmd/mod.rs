//! Running external programs: the one place in the library that starts a process.
//!
//! A [`Cmd`] is a plain value (program, arguments, working directory, environment) that
//! displays itself shell-escaped, so plans can be printed and compared as text. A
//! [`Runner`] runs it: it echoes `$ cmd`, streams output to the terminal and the step's
//! log, keeps a bounded tail for the error, enforces timeouts and honours dry runs.
//! Given an [`Executor`], it asks it for answers instead of starting processes (tests).
//! Failures are a typed [`CommandError`]; Ctrl-C handling lives in [`interrupt`].

mod actions;
pub(crate) mod command;
pub(crate) mod error;
mod executor;
pub mod interrupt;
mod probe;
pub(crate) mod runner;
pub(crate) mod secret;
mod socket;
mod tail;

// `Cmd`, `CommandError`, `Runner` and `Secret` are used by every step: their one public
// path is the crate root (`buildkit_lib::Runner`); the library reaches them here.
pub use actions::{WaitFailed, Waited};
pub use command::shell_escape;
pub(crate) use command::Cmd;
pub(crate) use error::CommandError;
pub use error::Failure;
pub use executor::{Answer, Executor, FakeExecutor};
pub(crate) use probe::ContainerState;
pub use probe::{ContainerReady, Probe};
pub use runner::{Cancel, Captured, Echo};
pub(crate) use runner::{OutputFilter, Runner};
pub(crate) use secret::Secret;
pub use tail::Tail;
