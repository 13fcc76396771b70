//! A pipeline that handles sentinel secrets of every shape, for the leak test: a build
//! with a multi-line file secret and an env secret whose `RUN` prints both, a push of the
//! image, a smoke test whose container gets a secret environment variable and prints it,
//! and a build that prints the secrets and fails.
//!
//! Usage: `leak_probe TARGET_DIR IMAGE PEM_FILE` with the env secret in `LEAK_TOKEN` and
//! the smoke test's in `LEAK_DB_PASSWORD`, and a value secret in `LEAK_VALUE`. Exits 1 (the failing step fails), printing
//! the pipeline's table and error like an xtask would.

use std::time::Duration;

use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::Build;
use buildkit_lib::docker::Output;
use buildkit_lib::docker::Push;
use buildkit_lib::pipeline::Pipeline;
use buildkit_lib::plan::Step;
use buildkit_lib::validate::{Ready, Smoke};
use buildkit_lib::{Secret, Session};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, image, pem] = &args[..] else {
        eprintln!("usage: leak_probe TARGET_DIR IMAGE PEM_FILE");
        std::process::exit(2);
    };
    let runner = e2e::runner().echo(Echo::Live);
    let context = tempfile::tempdir().expect("a context folder");
    // The value secret is held by this program (a `Secret`), handed to buildx only in its
    // environment; the build fails unless it arrived whole.
    let prints = "RUN --mount=type=secret,id=pem --mount=type=secret,id=token \
                  --mount=type=secret,id=value \
                  cat /run/secrets/pem && echo && cat /run/secrets/token && echo && \
                  test -s /run/secrets/value && cat /run/secrets/value && echo";
    let value = Secret::new(std::env::var("LEAK_VALUE").expect("LEAK_VALUE"));
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {}\nARG NONCE\nRUN echo nonce $NONCE\n{prints}\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    std::fs::write(
        context.path().join("Dockerfile.fail"),
        format!(
            "FROM {}\nARG NONCE\nRUN echo nonce $NONCE\n{prints} && exit 7\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    let nonce = e2e::unique("nonce");
    let build = |dockerfile: &str, tags: Vec<String>| {
        tags.into_iter()
            .fold(Build::new(context.path().to_path_buf()), Build::tag)
            .dockerfile(context.path().join(dockerfile))
            .build_arg("NONCE", nonce.clone())
            .secret_file("pem", pem)
            .secret_env("token", "LEAK_TOKEN")
            .secret_value("value", value.clone())
            .network("none")
            .output(Output::Load)
    };

    let mut pipeline = Pipeline::new("leak", target);
    let good = build("Dockerfile", vec![image.clone()]);
    pipeline.step("build", move |cx| {
        let build = good.clone().with_session_labels(&cx.session);
        let result = build.run(&cx.runner)?;
        cx.runner.note(&format!(
            "built {} ({})",
            build.command(),
            result.image_id.unwrap_or_default()
        ));
        Ok(())
    });
    let pushed = image.clone();
    pipeline
        .step("push", move |cx| {
            Push::new(&pushed).run(&cx.runner)?;
            Ok(())
        })
        .after(["build"]);
    let password = std::env::var("LEAK_DB_PASSWORD").expect("LEAK_DB_PASSWORD");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pipeline
        .step("smoke", move |cx| {
            let report = Smoke::new(e2e::BUSYBOX_IMAGE)
                .secret_env("DB_PASSWORD", Secret::new(password.clone()))
                .args([
                    "sh",
                    "-c",
                    &format!("echo \"password is $DB_PASSWORD\"; exec nc -ll -p {port} -e true"),
                ])
                .ready(Ready::Tcp(port))
                .timeout(Duration::from_secs(30))
                .run(&cx.runner)?;
            cx.runner.note(&report.to_string());
            for line in &report.logs {
                cx.runner.note(line);
            }
            Ok(())
        })
        .after(["build"]);
    let bad = build("Dockerfile.fail", vec![]);
    pipeline
        .step("fails", move |cx| {
            bad.run(&cx.runner)?;
            Ok(())
        })
        .after(["smoke", "push"]);
    pipeline.jobs(1);
    match pipeline.run(&runner.session(Session::new("leakprobe"))) {
        Ok(report) => {
            eprintln!("{report}");
            std::process::exit(i32::from(!report.ok));
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
