//! The one executor: every effect a step has goes through here, and only here does the
//! library start a process or open a socket.
//!
//! A [`Cmd`] is a plain value (program, arguments, working directory, environment) that
//! displays itself shell-escaped, so plans can be printed and compared as text. A
//! [`Runner`] carries one run's context (`runner.rs`) and does every action of a step:
//! commands through the process executor (`process.rs`: echo `$ cmd`, stream to the
//! terminal and the step's log, keep a bounded tail, time out, stop the process group),
//! engine questions through its engine handle (`engine.rs`), file writes, removals,
//! swaps, probes and waits (`actions.rs`, `probe.rs`). It records each as a
//! [`plan::Action`](crate::plan::Action); a recording runner only records, which is how a
//! step's plan is made. Given an executor (the `testing` feature's `Executor`), it asks
//! it for answers instead. Failures are a typed [`CommandError`]. A run is cancelled
//! through its [`Cancel`] token (from another thread, or on SIGINT and SIGTERM once
//! `main` asks for it with [`Cancel::on_signals`]), which stops its commands and runs the clean-ups its steps
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
pub(crate) use actions::WaitFailed;
pub(crate) use cancel::Guard as CleanupGuard;
pub use cancel::{Cancel, Guard, EXIT_INTERRUPTED};
pub(crate) use command::Cmd;
pub(crate) use error::CommandError;
pub(crate) use error::Failure;
// The test-support surface (the `testing` feature): scripted answers in place of processes.
#[cfg(all(test, not(feature = "testing")))]
pub(crate) use executor::FakeExecutor;
#[cfg(not(feature = "testing"))]
pub(crate) use executor::{Answer, Executor};
#[cfg(feature = "testing")]
pub use executor::{Answer, Executor, FakeExecutor};
pub use probe::Probe;
pub(crate) use probe::{ContainerReady, ContainerState};
pub(crate) use process::OutputFilter;
pub use process::{Captured, Echo};
pub(crate) use runner::Runner;
pub(crate) use secret::Secret;
pub(crate) use tail::Tail;
