//! Typed build steps for Python projects' container images and desktop packages.
//!
//! `buildkit-lib` replaces the shell scripts, Dockerfile recipes and CI YAML that Python
//! projects use to build and ship: format checks, multi-stage `docker buildx` builds,
//! PyInstaller packaging, version metadata, post-build validation and clean-up. Each step
//! is a value that can describe exactly what it will run; a [`Runner`] runs it, and a
//! [`pipeline::Pipeline`] runs steps side by side with logs and a report.
//!
//! # The whole xtask, in six names
//!
//! Build an image with a secret and a registry cache, then smoke-test it with a MariaDB
//! companion. `cargo xtask` runs it; the steps are values, the pipeline runs them side by
//! side with logs and `target/buildkit/myapp/report.json`, and the session (the labels and
//! names of what the run creates) is the pipeline's project, named once.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use buildkit_lib::prelude::*;
//!
//! fn main() -> anyhow::Result<ExitCode> {
//!     let db_password = Secret::new(std::env::var("DB_PASSWORD")?);
//!     let cache = Cache::registry("127.0.0.1:5000/myapp:cache");
//!     let mut pipeline = Pipeline::new("myapp", "target");
//!     let image = Build::new(".")
//!         .tag("myapp:dev")
//!         .secret_value("pip_token", Secret::new(std::env::var("PIP_TOKEN")?))
//!         .cache_from(cache.clone())
//!         .cache_to(cache.mode_max(true));
//!     pipeline.image_build("image", image, "myapp");
//!     let db = Smoke::new("mariadb:11")
//!         .port(3306)
//!         .secret_env("MARIADB_ROOT_PASSWORD", db_password.clone());
//!     let smoke = Smoke::new("myapp:dev")
//!         .service("db", db)
//!         .secret_env("DB_PASSWORD", db_password)
//!         .http(5000, "/api/health");
//!     pipeline.add("smoke", smoke).after(["image"]);
//!     let report = pipeline.run(&Runner::new())?;
//!     eprintln!("{report}");
//!     Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
//! }
//! ```
//!
//! # The shape: steps → plan → executor → engine
//!
//! A step ([`plan::Step`]) is a value with one body, `run(&self, runner)`, that does every
//! effect through the [`Runner`]: commands and read-only queries, file writes, removals
//! and swaps, network probes and waits. The runner is the one executor: it records each
//! effect as a [`plan::Action`], runs it (a process in its own group, streamed, masked,
//! logged, timed out and cancellable; an atomic file operation; a probe), or, on a
//! recording runner ([`plan::Step::plan`]), only records it. A step's [`plan::Plan`] is its body
//! recorded that way, so the plan a dry run prints is what a real run does, and no step
//! asks whether it is a dry run. Where the engine is asked, the runner keeps its answers
//! and versions for the run.
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
//! use buildkit_lib::cmd::EXIT_INTERRUPTED;
//! use buildkit_lib::prelude::*;
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
//!     let mut pipeline = Pipeline::new("myapp", "target");
//!
//!     // Each step is a value with one body; a dry run records that body as its plan.
//!     let black = Format::black(["src"]).tools(tools.clone());
//!     let isort = Format::isort(["src"]).tools(tools);
//!     pipeline
//!         // black and isort both answer; diffs go to the step log only
//!         .add("format", CheckAll::new(black, isort))
//!         .inputs(Inputs::new().file("src"));
//!
//!     // An image build step declares its inputs and output by itself.
//!     let image = Build::new(".")
//!         .dockerfile("Dockerfile.production")
//!         .target("runtime")
//!         .tag("myapp:dev")
//!         .network("host")
//!         .output(Output::Load);
//!     pipeline.image_build("image", image, "myapp").after(["format"]);
//!
//!     let smoke = Smoke::new("myapp:dev")
//!         .http(5000, "/api/health")
//!         .timeout(Duration::from_secs(60));
//!     pipeline.add("smoke", smoke).after(["image"]);
//!
//!     let report = pipeline.run(&runner.clone().dry_run(dry_run))?;
//!     if !dry_run {
//!         eprintln!("{report}");
//!     }
//!     Ok(u8::from(!report.ok))
//! }
//! ```
//!
//! # One API shape
//!
//! - **Paths.** Every public item has one home path: [`Runner`], [`Cmd`], [`Secret`],
//!   [`CommandError`], [`Session`], [`Finding`] and [`Level`] at the root; everything else
//!   in its domain module (`docker::Build`, `validate::Smoke`, `python::Format`, ...).
//!   [`prelude`] gathers what a typical xtask needs under a second path.
//! - **Steps are values.** A step is made with `new` (or a named constructor such as
//!   `Format::black`) taking what it cannot do without, then chained setters; its fields
//!   are private. Result and report types have public fields and are
//!   `#[non_exhaustive]`, as are the public enums: new options and new outcomes are not
//!   breaking changes.
//! - **Running.** Every step runs one way: `run(&self, runner: &Runner) ->
//!   anyhow::Result<T>`. What a run needs beyond the step's own settings is on the
//!   runner: echo, logging, dry runs, cancellation ([`cmd::Cancel`]), which secrets are
//!   masked, and the run's [`Session`] ([`Runner::session`]; a pipeline gives every
//!   step's runner its session), which the steps that create containers and images name
//!   and label them with (they refuse to run without one). What belongs to the step is set
//!   on it: its tool environment (`Format::tools`, `Trivy::tools`, or `Trivy::bin` for a
//!   given trivy), its retries (`ImagetoolsCreate::retry`). What a step runs is read
//!   from its plan ([`plan::Step::plan`]), not from command builders.
//! - **Plans.** Every step kind can say what it would do without running anything
//!   ([`plan::Step::plan`], the step's body recorded with the runner's session and `PATH`;
//!   queries answer the placeholder of their [`Cmd::dry_answer`]). A dry run makes
//!   no engine or git query unless asked ([`Runner::dry_run_queries`]). In tests, the
//!   `testing` feature's `Runner::with_executor` with a `cmd::FakeExecutor` runs a
//!   step's real code against scripted answers.
//! - **Engine features.** What the engine makes possible is read from the versions the
//!   buildx and engine talked to report (asked once per runner and kept with its other
//!   engine answers), judged against one verified range (Docker Engine 26.1–28.5, buildx
//!   0.13–0.29, as [`engine::Doctor`] reports): BuildKit's build checks ([`docker::BuildCheck`],
//!   buildx 0.15+) and build records (in a pipeline's report, buildx 0.21+) are
//!   used where they exist, and where they do not the step says it was skipped and why
//!   ([`pipeline::StepCx::unsupported`]), never a silent pass.
//! - **Process-wide state: none.** The library has no `static`; cancellation is per run:
//!   a runner's [`cmd::Cancel`] token (shared by its clones) stops that run's commands
//!   and runs the clean-ups its steps registered ([`Runner::on_cancel`]) through the
//!   runner, so two runs in one program are cancelled apart. Signals are the program's:
//!   the library installs no handler unless `main` asks it to cancel a run on SIGINT and
//!   SIGTERM ([`cmd::Cancel::on_signals`]); nothing is printed that the caller did not
//!   ask for, and the library never exits the process (a program returns
//!   [`cmd::EXIT_INTERRUPTED`] itself).
//!
//! # Errors
//!
//! Steps return `anyhow::Result`. A failed command is a [`CommandError`] (the command
//! line with secrets masked, what ended it, the last lines of its output, the step log;
//! [`CommandError::interrupted`] when the run was cancelled); the other typed errors, each reachable with
//! `anyhow::Error::downcast_ref` and each saying what to do in its message, are:
//!
//! | error | when |
//! |---|---|
//! | [`pipeline::PipelineError`] | the pipeline cannot run as declared (a cycle, an unknown step): a usage error, exit 2 |
//! | [`pipeline::EngineUnavailable`] | the Docker engine does not answer before the first step that needs it |
//! | [`python::FormatError`] | black or isort found files to change |
//! | [`validate::SmokeError`] | the app did not become ready (with its logs) |
//! | [`validate::PortTaken`] | a port the smoke test probes is already served by something else |
//! | [`validate::ScannerMissing`] | trivy or docker scout is not installed |
//! | [`docker::BuildFailed`] | `docker buildx build` failed (buildx's message); BuildKit's own error, where buildx keeps build records (0.21+), is in the pipeline's report |
//! | [`docker::FanOutError`] | a multi-engine build failed; each platform's outcome |
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
mod finding;
mod hash;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod prelude;
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
pub use finding::{Finding, Level};
pub use session::{Session, PROJECT_LABEL, RUN_LABEL};
