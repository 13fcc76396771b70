//! A host program that embeds the library and keeps its own Ctrl-C handling, for the
//! embedding test: it installs its own SIGINT handler (a flag), prints `ready`, runs a
//! command through a `Runner`, and reports whether it saw the signal. The library must
//! neither replace its handler nor end the process.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use buildkit_lib::{Cmd, Runner};

static SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    SEEN.store(true, Ordering::SeqCst);
}

fn main() {
    // SAFETY: a handler that only stores to an atomic is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    let runner = Runner::new().echo(buildkit_lib::cmd::Echo::Silent);
    println!("ready");
    let _ = std::io::stdout().flush();
    // The command runs in its own process group: the host's SIGINT is not sent to it.
    let result = runner.run(&Cmd::new("sleep").arg("2"));
    println!(
        "host alive after the library's command ({}), SIGINT seen by the host: {}",
        if result.is_ok() { "ok" } else { "failed" },
        SEEN.load(Ordering::SeqCst)
    );
}
