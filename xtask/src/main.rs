//! This repository's own `cargo xtask`: the reference wiring of `buildkit-lib`.
//!
//! One module per subcommand; `main` parses the subcommand and its flags and dispatches.
//! Exit status: 0 success, 1 a step failed, 2 usage error, 130 interrupted.

mod api_count;
mod bake;
mod bench;
mod build;
mod check;
mod clean;
mod engine;
mod fixtures;
mod flags;
mod mediaserver;
mod msrv;
mod package;
mod release;
mod test;
mod why;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use buildkit_lib::cmd::{Cancel, Echo, EXIT_INTERRUPTED};
use buildkit_lib::engine::Doctor;
use buildkit_lib::pipeline::PipelineError;
use buildkit_lib::plan::Step;
use buildkit_lib::validate::Verdict;
use buildkit_lib::Runner;
use flags::{EngineAction, Parsed, UsageError, XtaskCmd};

fn main() -> ExitCode {
    // The run's cancel token: Ctrl-C or SIGTERM sets it (the library then stops the
    // running commands and removes what the run registered), a second one exits at once.
    let cancel = Cancel::new();
    let _signals = match exit_on_second_signal().and_then(|()| cancel.on_signals()) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("warning: cannot handle Ctrl-C ({e}); it will end the xtask at once");
            None
        }
    };
    let base = Runner::new().cancel_with(cancel.clone());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = dispatch(&base, &args);
    if cancel.is_cancelled() {
        // Whatever the run returned (a failed step, a pipeline report): it was stopped.
        base.clean_up_cancelled();
        return ExitCode::from(EXIT_INTERRUPTED as u8);
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if err.downcast_ref::<UsageError>().is_some()
                || err.downcast_ref::<PipelineError>().is_some()
            {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// Makes a second SIGINT or SIGTERM end the process at once with status 130, without
/// waiting for the running commands or the clean-up the first one started. Registered
/// before [`Cancel::on_signals`]: the first signal finds the flag unset, then sets it.
fn exit_on_second_signal() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, seen.clone())?;
        flag::register(sig, seen.clone())?;
    }
    Ok(())
}

/// The repository root (the xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

fn dispatch(base: &Runner, args: &[String]) -> anyhow::Result<u8> {
    if args.first().map(String::as_str) == Some("bench-stream") {
        // Internal: the measured side of the benchmark's log_stream figure.
        return bench::stream(&args[1..]);
    }
    let command = match flags::parse(args)? {
        Parsed::Help(text) => {
            // A closed pipe (`cargo xtask --help | head`) is not an error.
            let _ = writeln!(std::io::stdout(), "{text}");
            return Ok(0);
        }
        Parsed::Run(flags) => flags.subcommand,
    };
    let root = root();
    let base = engine::point_at_engine(base.clone());
    match command {
        XtaskCmd::Doctor(_) => {
            let runner = base.echo(Echo::Silent);
            let checks = Doctor::new()
                .registry(engine::REGISTRY)
                .platform("linux/amd64")
                .platform("linux/arm64")
                .engine_up_hint(
                    "run `cargo xtask engine up` (installs and starts the project's engine)",
                )
                .run(&runner)?;
            for check in &checks {
                println!("{check}");
            }
            Ok(u8::from(checks.iter().any(|c| c.status == Verdict::Fail)))
        }
        XtaskCmd::Engine(flags) => {
            let action = flags.action.unwrap_or(EngineAction::Up);
            engine::run(
                &base.dry_run(flags.dry_run),
                &root,
                action.as_str(),
                &flags.what,
                flags.dry_run,
            )?;
            Ok(0)
        }
        XtaskCmd::Test(flags) => test::run(&base, &root, &flags),
        XtaskCmd::Msrv(flags) => msrv::run(&base, &root, flags.dry_run),
        XtaskCmd::ApiCount(flags) => api_count::run(&base, &root, &flags),
        XtaskCmd::Bench(flags) => bench::run(&base, &root, &flags),
        XtaskCmd::Clean(flags) => clean::run(&base, &root, &flags),
        XtaskCmd::Package(flags) => package::run(&base, &root, &flags),
        XtaskCmd::Desktop(flags) => package::desktop(&base, &root, &flags),
        XtaskCmd::Release(flags) => {
            release::run(&base, &root, flags.bump, flags.dry_run)?;
            Ok(0)
        }
        XtaskCmd::Build(flags) => build::run(&base, &root, &flags),
        XtaskCmd::Mediaserver(flags) => mediaserver::run(&base, &root, &flags),
        XtaskCmd::Bake(flags) => bake::run(&base, &root, &flags),
        XtaskCmd::Check(flags) => check::run(&base, &root, flags.dry_run, false),
        XtaskCmd::Fmt(flags) => check::run(&base, &root, flags.dry_run, true),
        XtaskCmd::Why(flags) => why::run(&root, &flags),
    }
}
