//! `cargo xtask test`: bring the engine up when none answers, then run the workspace tests.

use std::path::Path;

use anyhow::Result;
use buildkit_lib::{Cmd, Runner};

use crate::engine;

/// Runs `cargo test --workspace` (plus any arguments after `--`) against the project's
/// engine, with `CI`-style failures: tests that need the engine fail without it.
pub fn run(base: &Runner, root: &Path, rest: &[String]) -> Result<u8> {
    let (flags, passthrough) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let parsed = crate::flags::Flags::parse("test", flags, &["dry-run"], &[])?;
    parsed.no_positional("test")?;
    let runner = base.clone().dry_run(parsed.on("dry-run"));
    engine::ensure(&runner, root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cmd = Cmd::new(cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(passthrough.iter().cloned())
        .cwd(root);
    match runner.run(&cmd) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
