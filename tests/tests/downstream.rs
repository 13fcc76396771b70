//! A downstream project's xtask, built as a user would: a throwaway crate that depends on
//! `buildkit-lib` by path, wires a pipeline in its `main.rs`, and runs it against the real
//! engine.

use std::path::Path;
use std::process::Command;

use buildkit_lib::Cmd;

const MAIN_RS: &str = r#"
use buildkit_lib::cmd::EXIT_INTERRUPTED;
use buildkit_lib::prelude::*;

fn main() -> std::process::ExitCode {
    // Ctrl-C and SIGTERM cancel the run: its commands stop, what it created is removed.
    let cancel = Cancel::new();
    let _signals = cancel.on_signals().expect("cancel the run on Ctrl-C");
    let runner = Runner::new().cancel_with(cancel.clone());
    let tag = std::env::args().nth(1).expect("usage: xtask TAG");
    let project = std::env::current_dir().unwrap();
    let mut pipeline = Pipeline::new("downstream", project.join("target"));
    pipeline.step("hello", |cx| {
        cx.runner.run(&Cmd::new("sh").args(["-c", "echo hello from the downstream xtask"]))?;
        Ok(())
    });
    let build = Build::new(project.join("app")).tag(tag.clone()).network("none").output(Output::Load);
    pipeline
        .step("image", move |cx| {
            let result = build.clone().with_session_labels(&cx.session).run(&cx.runner)?;
            cx.add_image("downstream", &result);
            Ok(())
        })
        .after(["hello"])
        .inputs(Inputs::new().context(project.join("app")))
        .output_image(&tag);
    let report = pipeline
        .run(&runner.clone().session(Session::new("downstream")))
        .expect("the pipeline runs");
    if cancel.is_cancelled() {
        runner.clean_up_cancelled();
        return std::process::ExitCode::from(EXIT_INTERRUPTED as u8);
    }
    eprintln!("{report}");
    std::process::ExitCode::from(u8::from(!report.ok))
}
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_downstream_crate_builds_and_runs_its_pipeline() {
    let runner = e2e::engine();
    let root = e2e::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    write(
        &project.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"downstream-xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nbuildkit-lib = {{ path = \"{}\" }}\n\n[workspace]\n",
            root.join("buildkit-lib").display()
        ),
    );
    write(&project.join("src/main.rs"), MAIN_RS);
    write(
        &project.join("app/Dockerfile"),
        &format!(
            "FROM {}\nRUN echo built > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
            e2e::BUSYBOX_IMAGE
        ),
    );
    // Share the workspace's lock file and target directory: the dependencies are built once.
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", root.join("target/downstream"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the downstream crate compiles against the library"
    );

    let tag = format!("{}:1", e2e::unique("downstream"));
    let bin = root.join("target/downstream/debug/downstream-xtask");
    let run = |expect_image: &str| {
        let out = Command::new(&bin)
            .arg(&tag)
            .current_dir(project)
            .env("DOCKER_HOST", e2e::docker_host())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(project.join("target/buildkit/downstream/report.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(report["ok"], true);
        assert_eq!(report["steps"][1]["name"], "image");
        assert_eq!(report["steps"][1]["status"], expect_image, "{stderr}");
        stderr.to_string()
    };
    let first = run("ok");
    assert!(first.contains("hello from the downstream xtask"), "{first}");
    let second = run("up-to-date");
    assert!(!second.contains("docker buildx build"), "{second}");

    let out = runner
        .capture(&Cmd::new("docker").args(["run", "--rm", "--network", "none", &tag]))
        .unwrap();
    assert_eq!(out.stdout.trim(), "built");
    runner
        .capture(&Cmd::new("docker").args(["image", "rm", &tag]))
        .unwrap();
}
