//! A host program that embeds the library and never asks for signal handling, for the
//! embedding test: it runs a long command through a `Runner` and nothing else. SIGINT and
//! SIGTERM must end it by their default disposition (killed by the signal), which proves
//! the library installed no handler of its own.
//!
//! Usage: `host_without_signals PIDFILE`: the command (a shell, its own process group)
//! writes its pid to PIDFILE, then sleeps; the host prints `ready` once it started.

use std::io::Write;

use buildkit_lib::{Cmd, Runner};

fn main() {
    let Some(pidfile) = std::env::args().nth(1) else {
        eprintln!("usage: host_without_signals PIDFILE");
        std::process::exit(2);
    };
    let runner = Runner::new().echo(buildkit_lib::cmd::Echo::Silent);
    println!("ready");
    let _ = std::io::stdout().flush();
    let script = format!("echo $$ > {pidfile}; exec sleep 300");
    let result = runner.run(&Cmd::new("sh").args(["-c", &script]));
    println!("the command ended: {result:?}");
}
