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
//! image, and smoke-tests it; `cargo xtask build --dry-run` prints every command instead.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//!
//! use buildkit_lib::docker::build::{Build, Output as BuildOutput};
//! use buildkit_lib::pipeline::{Inputs, Output, Pipeline, RunOptions};
//! use buildkit_lib::python::{check_all, Black, Isort};
//! use buildkit_lib::python::ToolEnv;
//! use buildkit_lib::validate::smoke::{Ready, Smoke};
//! use buildkit_lib::Runner;
//!
//! fn main() -> ExitCode {
//!     buildkit_lib::cmd::interrupt::install();
//!     let args: Vec<String> = std::env::args().skip(1).collect();
//!     let dry_run = args.iter().any(|a| a == "--dry-run");
//!     match args.first().map(String::as_str) {
//!         Some("build") => match build(dry_run) {
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
//! fn build(dry_run: bool) -> anyhow::Result<u8> {
//!     let tools = ToolEnv::under("target");
//!     let mut pipeline = Pipeline::new("build", "target");
//!
//!     let env = tools.clone();
//!     pipeline
//!         .step("format", move |cx| {
//!             // black and isort both answer; diffs go to the step log only
//!             check_all(&cx.runner, &env, &Black::check(["src"]), &Isort::check(["src"]))
//!         })
//!         .inputs(Inputs::new().file("src"));
//!
//!     let image = Build::new(".")
//!         .dockerfile("Dockerfile.production")
//!         .target("runtime")
//!         .tag("myapp:dev")
//!         .network("host")
//!         .output(BuildOutput::Load);
//!     pipeline
//!         .step("image", move |cx| {
//!             image.clone().with_session_labels(&cx.session).run(&cx.runner)?;
//!             Ok(())
//!         })
//!         .after(["format"])
//!         .inputs(Inputs::new().context("."))
//!         .output(Output::image("myapp:dev"));
//!
//!     pipeline
//!         .step("smoke", |cx| {
//!             Smoke::new(&cx.session, "myapp:dev")
//!                 .ready(Ready::Http { port: 5000, path: "/api/health".into(), expect_body: None })
//!                 .timeout(Duration::from_secs(60))
//!                 .run(&cx.runner)?;
//!             Ok(())
//!         })
//!         .after(["image"]);
//!
//!     let mut options = RunOptions::new("myapp");
//!     options.dry_run = dry_run;
//!     let report = pipeline.run(&Runner::new(), &options)?;
//!     if !dry_run {
//!         eprintln!("{}", report.table());
//!     }
//!     Ok(report.exit_code() as u8)
//! }
//! ```

// `CommandError` is returned by value on purpose: it is the product of a failed command
// (command line, status, output tail), read by callers, and failures are rare.
#![allow(clippy::result_large_err)]
#![deny(missing_docs)]

pub mod cleanup;
pub mod cmd;
pub mod docker;
pub mod dockerignore;
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
