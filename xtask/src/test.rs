//! `cargo xtask test`: bring the engine up when none answers, then run the workspace tests.

use std::path::Path;

use anyhow::Result;
use buildkit_lib::{Cmd, Runner};

use crate::engine;

/// Runs `cargo test --workspace` (plus any arguments after `--`) against the project's
/// engine, with `CI`-style failures: tests that need the engine fail without it.
pub fn run(base: &Runner, root: &Path, flags: &crate::flags::Test) -> Result<u8> {
    let runner = base.clone().dry_run(flags.dry_run);
    engine::ensure(&runner, root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cmd = Cmd::new(cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(flags.cargo_args.iter().cloned())
        .cwd(root);
    match runner.run(&cmd) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
