//! The library in a host program that keeps its own signal handling: a SIGINT to the
//! host reaches the host's handler, the library's command finishes, and the host goes on
//! (no handler installed by the library, no `process::exit`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn sigint_to_a_host_is_the_hosts_business() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedding_host"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the host");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // Let the library start its command first (that used to install its handler).
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the host was ended: {rest}");
    assert_eq!(
        rest.trim(),
        "host alive after the library's command (ok), SIGINT seen by the host: true"
    );
}
