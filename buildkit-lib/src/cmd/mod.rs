//! Running external programs: the one place in the library that starts a process.
//!
//! A [`Cmd`] is a plain value (program, arguments, working directory, environment) that
//! displays itself shell-escaped, so plans can be printed and compared as text. A
//! [`Runner`] runs it: it echoes `$ cmd`, streams output to the terminal and the step's
//! log, keeps a bounded tail for the error, enforces timeouts and honours dry runs.
//! Given an [`Executor`], it asks it for answers instead of starting processes (tests).
//! Failures are a typed [`CommandError`]; Ctrl-C handling lives in [`interrupt`].

mod command;
mod error;
mod executor;
pub mod interrupt;
mod runner;
mod secret;
mod tail;

pub use command::{shell_escape, Cmd};
pub use error::{CommandError, Failure};
pub use executor::{Answer, Executor, FakeExecutor};
pub use runner::{Cancel, Captured, Echo, Runner};
pub use secret::Secret;
pub use tail::Tail;
