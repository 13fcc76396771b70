//! A tiny program using the library, for the interrupt tests: it holds a container (or a
//! plain child process, or a smoke test) through a `Runner` until a signal arrives.
//!
//! Usage:
//! - `hold_container container NAME RUN_ID`: `docker run` (foreground) of a busybox
//!   `sleep 300` named NAME with the run label, after registering `docker rm -f NAME`;
//! - `hold_container child PIDFILE`: a shell whose background `sleep` writes its pid to
//!   PIDFILE, then waits;
//! - `hold_container stubborn PIDFILE`: a shell that ignores SIGINT and SIGTERM and writes
//!   its pid (also its process group) to PIDFILE;
//! - `hold_container smoke PROJECT PORT`: a smoke test of busybox `sleep 300` waiting for
//!   a TCP port that never opens, after a companion service container (ready at once);
//! - `hold_container builder container NAME IMAGE CONTEXT`: creates a docker-container
//!   builder NAME (this run's, removed on Ctrl-C) and builds CONTEXT on it;
//! - `hold_container builder remote NAME ENDPOINT CERTS CONTEXT`: the same with a remote
//!   builder on ENDPOINT over mutual TLS (certificates in the directory CERTS);
//! - `hold_container builder existing NAME CONTEXT`: builds CONTEXT on the user's builder
//!   NAME (never removed).
//!
//! It prints `ready` on stdout once the registration is done and the command starts. Like
//! a downstream xtask, it cancels its run on SIGINT and SIGTERM, exits 130 once the run
//! is cancelled and cleaned up, and exits at once on a second signal.

use std::time::Duration;

use buildkit_lib::plan::Step;
use buildkit_lib::validate::{Ready, Smoke};
use buildkit_lib::RUN_LABEL;
use buildkit_lib::{Cmd, Session};

fn main() {
    // Ctrl-C handling is the program's choice: this one cancels its run on signals.
    let (cancel, _signals) = e2e::cancel_on_signals();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runner = e2e::runner().cancel_with(cancel.clone());
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["container", name, run_id] => {
            let rm = Cmd::new("docker")
                .args(["rm", "--force", name])
                .env("DOCKER_HOST", e2e::docker_host());
            let _guard = runner.on_cancel(rm);
            let run = Cmd::new("docker").args([
                "run",
                "--name",
                name,
                "--label",
                &format!("{RUN_LABEL}={run_id}"),
                "--network",
                "none",
                e2e::BUSYBOX_IMAGE,
                "sleep",
                "300",
            ]);
            println!("ready");
            runner.run(&run).map(|_| ()).map_err(anyhow::Error::new)
        }
        ["child", pidfile] => {
            let script = format!("sleep 300 & echo $! > {pidfile}; wait");
            println!("ready");
            runner
                .run(&Cmd::new("sh").args(["-c", &script]))
                .map(|_| ())
                .map_err(anyhow::Error::new)
        }
        ["stubborn", pidfile] => {
            // A child that ignores SIGINT and SIGTERM: only the SIGKILL after the grace
            // period (or a second Ctrl-C ending this process) gets past it.
            println!("ready");
            runner
                .run(&Cmd::new("sh").args([
                    "-c",
                    &format!("trap '' INT TERM; echo $$ > {pidfile}; sleep 300"),
                ]))
                .map(|_| ())
                .map_err(anyhow::Error::new)
        }
        ["smoke", project, port] => {
            let port: u16 = port.parse().expect("a port number");
            let db = Smoke::new(e2e::BUSYBOX_IMAGE)
                .args(["sh", "-c", "echo db up; sleep 300"])
                .ready(Ready::LogLine("db up".into()));
            let smoke = Smoke::new(e2e::BUSYBOX_IMAGE)
                .service("db", db)
                .args(["sleep", "300"])
                .ready(Ready::Tcp(port))
                .timeout(Duration::from_secs(120));
            println!("ready");
            smoke
                .run(&runner.clone().session(Session::new(project.to_string())))
                .map(|_| ())
        }
        ["builder", mode, name, ref rest @ ..] => {
            use buildkit_lib::docker::BuilderCreate;
            let create = |driver, endpoint: Option<&str>, opts: &[(&str, &str)]| {
                let mut create = BuilderCreate::new()
                    .name(name.to_string())
                    .driver(driver)
                    .bootstrap(true);
                for (key, value) in opts {
                    create = create.driver_opt(*key, *value);
                }
                match endpoint {
                    Some(endpoint) => create.endpoint(endpoint),
                    None => create,
                }
            };
            let (created, context) = match (mode, rest) {
                ("container", [image, context]) => {
                    let c = create(
                        "docker-container",
                        None,
                        &[("image", image), ("network", "host")],
                    );
                    (Some(c.create(&runner)), *context)
                }
                ("remote", [endpoint, certs, context]) => {
                    let certs = std::path::Path::new(certs);
                    let c = create("remote", Some(endpoint), &[])
                        .tls(
                            certs.join("ca.pem"),
                            certs.join("client-cert.pem"),
                            certs.join("client-key.pem"),
                        )
                        .driver_opt("servername", "127.0.0.1");
                    (Some(c.create(&runner)), *context)
                }
                ("existing", [context]) => (None, *context),
                _ => {
                    eprintln!("usage: hold_container builder container|remote|existing NAME ...");
                    std::process::exit(2);
                }
            };
            let created = match created.transpose() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(1);
                }
            };
            println!("ready");
            let build = buildkit_lib::docker::Build::new(context)
                .builder(name.to_string())
                .network("none")
                .read_facts(false);
            let result = build.run(&runner).map(|_| ());
            drop(created);
            result
        }
        _ => {
            eprintln!(
                "usage: hold_container container NAME RUN_ID | child PIDFILE | stubborn PIDFILE | smoke PROJECT PORT"
            );
            std::process::exit(2);
        }
    };
    if cancel.is_cancelled() {
        runner.clean_up_cancelled();
        std::process::exit(buildkit_lib::cmd::EXIT_INTERRUPTED);
    }
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
