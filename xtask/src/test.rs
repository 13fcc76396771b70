//! `cargo xtask test`: bring up everything the tests use, then run the workspace tests on
//! the default (current) engine, or the end-to-end tests on the oldest supported one.

use std::path::Path;

use anyhow::Result;
use buildkit_lib::{Cmd, Runner};

use crate::engine;
use crate::flags::TestEngine;

/// Runs `cargo test --workspace` (plus any arguments after `--`) against the project's
/// engine, with `CI`-style failures: tests that need the engine fail without it. With
/// `--engine oldest`, runs the e2e crate's tests with the oldest engine's environment
/// (its socket, docker CLI and buildx).
pub fn run(base: &Runner, root: &Path, flags: &crate::flags::Test) -> Result<u8> {
    let runner = base.clone().dry_run(flags.dry_run);
    let which = flags.engine.unwrap_or(TestEngine::Current);
    engine::ensure_components(&runner, root, &["all"])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Cmd::new(cargo).arg("test").cwd(root);
    cmd = match which {
        TestEngine::Current => cmd.arg("--workspace"),
        TestEngine::Oldest => cmd.args(["-p", "e2e"]),
    };
    cmd = cmd
        .arg("--no-fail-fast")
        .args(flags.cargo_args.iter().cloned());
    let own_engine = std::env::var("DOCKER_HOST")
        .map_or(true, |h| h.is_empty() || h == engine::PROJECT_DOCKER_HOST);
    if (which != TestEngine::Current || own_engine) && !flags.dry_run {
        for (k, v) in engine::env_of(&runner, root, which.as_str())? {
            cmd = cmd.env(k, v);
        }
    }
    match runner.run(&cmd) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
