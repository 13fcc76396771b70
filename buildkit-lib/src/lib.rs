//! Typed build steps for Python projects' container images and desktop packages.
//!
//! `buildkit-lib` replaces the shell scripts, Dockerfile recipes and CI YAML that Python
//! projects use to build and ship: format checks, multi-stage `docker buildx` builds,
//! PyInstaller packaging, version metadata, post-build validation and clean-up. Each step
//! is a value that can describe exactly what it will run; a [`Runner`] runs it, and a
//! [`pipeline::Pipeline`] runs steps side by side with logs and a report.
//!
//! # A downstream project's `xtask/src/main.rs`
//!
//! The whole of a small project's xtask: `cargo xtask build` checks formatting, builds the
//! image, and smoke-tests it; `cargo xtask build --dry-run` prints each step's plan instead,
//! asking the engine and git nothing. Ctrl-C cancels the run (its commands stop, the
//! containers it created are removed) and the xtask exits 130.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//!
//! use buildkit_lib::docker::build::{Build, Output as BuildOutput};
//! use buildkit_lib::pipeline::{Inputs, Pipeline, RunOptions};
//! use buildkit_lib::plan::Step;
//! use buildkit_lib::python::{Black, CheckAll, Isort, ToolEnv};
//! use buildkit_lib::validate::smoke::{Ready, Smoke};
//! use buildkit_lib::cmd::{Cancel, EXIT_INTERRUPTED};
//! use buildkit_lib::{Runner, Session};
//!
//! fn main() -> ExitCode {
//!     // The run's cancel token, set by Ctrl-C and SIGTERM: signals are `main`'s choice.
//!     let cancel = Cancel::new();
//!     let _signals = cancel.on_signals().expect("cannot handle Ctrl-C");
//!     let runner = Runner::new().cancel_with(cancel.clone());
//!     let args: Vec<String> = std::env::args().skip(1).collect();
//!     let dry_run = args.iter().any(|a| a == "--dry-run");
//!     match args.first().map(String::as_str) {
//!         Some("build") => match build(&runner, dry_run) {
//!             _ if cancel.is_cancelled() => {
//!                 runner.clean_up_cancelled();
//!                 ExitCode::from(EXIT_INTERRUPTED as u8)
//!             }
//!             Ok(code) => ExitCode::from(code),
//!             Err(e) => {
//!                 eprintln!("error: {e:#}");
//!                 ExitCode::from(1)
//!             }
//!         },
//!         _ => {
//!             eprintln!("usage: cargo xtask build [--dry-run]");
//!             ExitCode::from(2)
//!         }
//!     }
//! }
//!
//! fn build(runner: &Runner, dry_run: bool) -> anyhow::Result<u8> {
//!     let tools = ToolEnv::under("target");
//!     let mut pipeline = Pipeline::new("build", "target");
//!
//!     // Each step is a value: its body runs it, its plan says what a dry run prints.
//!     let black = Black::check(["src"]).tools(tools.clone());
//!     let isort = Isort::check(["src"]).tools(tools);
//!     pipeline
//!         // black and isort both answer; diffs go to the step log only
//!         .step_of("format", CheckAll::new(black, isort), |format, cx| format.run(&cx.runner))
//!         .inputs(Inputs::new().file("src"));
//!
//!     // An image build step declares its plan, inputs and output by itself.
//!     let image = Build::new(".")
//!         .dockerfile("Dockerfile.production")
//!         .target("runtime")
//!         .tag("myapp:dev")
//!         .network("host")
//!         .output(BuildOutput::Load);
//!     pipeline.image_build("image", image, "myapp").after(["format"]);
//!
//!     let smoke = |session: &Session| {
//!         Smoke::new("myapp:dev")
//!             .ready(Ready::Http { port: 5000, path: "/api/health".into(), expect_body: None })
//!             .timeout(Duration::from_secs(60))
//!     };
//!     pipeline
//!         .step("smoke", move |cx| {
//!             smoke(&cx.session).run(&cx.runner)?;
//!             Ok(())
//!         })
//!         .after(["image"]);
//!
//!     let options = RunOptions::new("myapp").dry_run(dry_run);
//!     let report = pipeline.run(runner, &options)?;
//!     if !dry_run {
//!         eprintln!("{}", report.table());
//!     }
//!     Ok(report.exit_code() as u8)
//! }
//! ```
//!
//! # One API shape
//!
//! - **Paths.** Every public item has one path: [`Runner`], [`Cmd`], [`Secret`],
//!   [`CommandError`] and [`Session`] at the root; everything else in its domain module
//!   (`docker::build::Build`, `validate::smoke::Smoke`, `python::Black`, ...).
//! - **Steps are values.** A step is made with `new` (or a named constructor such as
//!   `Black::check`) taking what it cannot do without, then chained setters; its fields
//!   are private. Result and report types have public fields and are
//!   `#[non_exhaustive]`, as are the public enums: new options and new outcomes are not
//!   breaking changes.
//! - **Running.** Every step runs one way: `run(&self, runner: &Runner) ->
//!   anyhow::Result<T>`. What a run needs beyond the step's own settings is on the
//!   runner: echo, logging, dry runs, cancellation ([`cmd::Cancel`]), which secrets are
//!   masked, and the run's [`Session`] ([`Runner::session`]; a pipeline gives every
//!   step's runner its session), which the steps that create containers and images name
//!   and label them with (they refuse to run without one). What belongs to the step is set
//!   on it: its tool environment (`Black::tools`, `Trivy::tools`, or `Trivy::bin` for a
//!   given trivy), its retries (`ImagetoolsCreate::retry`). `command()` is always the
//!   step's main [`Cmd`].
//! - **Plans.** Every step kind can say what it would do without running anything
//!   ([`plan::Step::plan`], the step's body recorded with the runner's session and `PATH`;
//!   [`plan::Planned`] for the steps not moved yet). A dry run makes
//!   no engine or git query unless asked ([`Runner::dry_run_queries`]). In tests,
//!   [`Runner::with_executor`] with a [`cmd::FakeExecutor`] runs a step's real code
//!   against scripted answers.
//! - **Engine features.** What the engine makes possible is read from the versions the
//!   buildx and engine talked to report ([`engine::Capabilities`], asked once per runner
//!   and kept with its other engine answers), judged against one verified range
//!   ([`engine::SUPPORTED`]): BuildKit's build checks ([`docker::checks::BuildCheck`],
//!   buildx 0.15+) and build records ([`docker::build::BuildRecord`], buildx 0.21+) are
//!   used where they exist, and where they do not the step says it was skipped and why
//!   ([`pipeline::StepCx::unsupported`]), never a silent pass.
//! - **Process-wide state: none.** The library has no `static`; cancellation is per run:
//!   a runner's [`cmd::Cancel`] token (shared by its clones) stops that run's commands
//!   and runs the clean-ups its steps registered ([`Runner::on_cancel`],
//!   [`Runner::remove_on_cancel`]) through the runner, so two runs in one program are
//!   cancelled apart. Signals are the program's: the library installs no handler unless
//!   `main` asks it to cancel a run on SIGINT and SIGTERM ([`cmd::Cancel::on_signals`]);
//!   nothing is printed that the caller did not ask for, and the library never exits the
//!   process (a program returns [`cmd::EXIT_INTERRUPTED`] itself).
//!
//! # Errors
//!
//! Steps return `anyhow::Result`. A failed command is a [`CommandError`] (the command
//! line with secrets masked, what ended it as a [`cmd::Failure`], the last lines of its
//! output, the step log); the other typed errors, each reachable with
//! `anyhow::Error::downcast_ref` and each saying what to do in its message, are:
//!
//! | error | when |
//! |---|---|
//! | [`pipeline::PipelineError`] | the pipeline cannot run as declared (a cycle, an unknown step): a usage error, exit 2 |
//! | [`pipeline::EngineUnavailable`] | the Docker engine does not answer before the first step that needs it |
//! | [`python::FormatError`], [`python::FormatChecks`] | black or isort found files to change |
//! | [`validate::smoke::SmokeError`] | the app did not become ready (with its logs) |
//! | [`validate::smoke::PortTaken`] | a port the smoke test probes is already served by something else |
//! | [`validate::security::ScannerMissing`] | trivy or docker scout is not installed |
//! | [`docker::build::BuildFailed`] | `docker buildx build` failed (buildx's message); its record holds BuildKit's own error where buildx keeps build records (0.21+) |
//! | [`docker::fanout::FanOutError`] | a multi-engine build failed; each platform's outcome |
//! | [`docker::ReferenceError`], [`docker::tags::Pep440Error`] | an image reference or a version that cannot be used |
//! | [`plan::PlanError`] | [`plan::Plan::execute`] stopped |
//!
//! Every other error is a message naming the thing and what to do.

// `CommandError` is returned by value on purpose: it is the product of a failed command
// (command line, status, output tail), read by callers, and failures are rare.
#![allow(clippy::result_large_err)]
#![deny(missing_docs)]

pub mod cleanup;
pub mod cmd;
pub mod docker;
pub(crate) mod dockerignore;
pub mod engine;
mod files;
mod hash;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod python;
mod rows;
mod session;
mod time;
pub mod units;
pub mod validate;
pub mod version;

pub use cmd::command::Cmd;
pub use cmd::error::CommandError;
pub use cmd::runner::Runner;
pub use cmd::secret::Secret;
pub use session::{Session, PROJECT_LABEL, RUN_LABEL};
