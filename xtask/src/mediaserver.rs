//! `cargo xtask mediaserver`: the production-shaped pipeline on `fixtures/mediaserver`.
//!
//! The fixture is a Flask service with real PyPI dependencies (one compiles a C
//! extension), a MariaDB it needs at start-up and a 5,000-file build context. The
//! pipeline generates the context, checks formatting, builds the runtime image (apt and
//! pip downloads in BuildKit cache mounts), checks its size, and smoke-tests it against a
//! real MariaDB started as a companion service: `/api/health` must answer 200, which the
//! app does only after a real query succeeds.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use buildkit_lib::docker::{Build, Output as BuildOutput};
use buildkit_lib::pipeline::{Inputs, Pipeline};
use buildkit_lib::plan::Step as _;
use buildkit_lib::python::ToolEnv;
use buildkit_lib::validate::SizeCheck;
use buildkit_lib::validate::{Ready, Smoke};
use buildkit_lib::{Cmd, Runner, Secret};

use crate::build::PYTHON_IMAGE;
use crate::engine;
use crate::flags;

/// The MariaDB image `xtask/engine-up.sh` builds from Debian packages.
pub const MARIADB_IMAGE: &str = "buildkit-local/mariadb:10.11";
/// What `generate.py` writes (git-ignored), relative to the fixture.
const GENERATED: [&str; 4] = [
    "app/templates/generated",
    "app/static/generated",
    "app/static/thumbs",
    "data",
];
/// The mediaserver image's tag.
pub const MEDIASERVER_IMAGE: &str = "buildkit-mediaserver:dev";

/// `cargo xtask mediaserver`.
pub fn run(base: &Runner, root: &Path, flags: &flags::Mediaserver) -> Result<u8> {
    let runner = base.clone().dry_run(flags.dry_run);
    let mut pipeline = pipeline(root, !flags.no_smoke)?;
    pipeline.force(flags.force).keep_going(flags.keep_going);
    if !flags.dry_run && !flags.no_smoke {
        // The smoke test's database.
        engine::ensure_components(&runner, root, &["mariadb"])?;
    }
    let report = engine::run_pipeline(&runner, root, &pipeline)?;
    if !flags.dry_run {
        eprintln!("\n{report}");
        eprintln!("report: {}", pipeline.dir().join("report.json").display());
    }
    Ok(u8::from(!report.ok))
}

/// The generator's command: writes the fixture's generated templates, assets and data
/// (deterministic; only missing or different files are written).
pub fn generate_cmd(root: &Path) -> Cmd {
    Cmd::new("python3").arg(root.join("fixtures/mediaserver/generate.py"))
}

/// The mediaserver's image build: the runtime stage, PyPI through `--network host`,
/// loaded into the engine.
pub fn image_build(root: &Path) -> Build {
    image_build_as(root, MEDIASERVER_IMAGE)
}

/// [`image_build`] under another tag (the bench's baseline, which must not move the
/// pipeline's tag).
pub fn image_build_as(root: &Path, tag: &str) -> Build {
    let app = root.join("fixtures/mediaserver");
    Build::new(app.clone())
        .dockerfile(app.join("Dockerfile"))
        .target("runtime")
        .tag(tag)
        .build_arg("PYTHON_IMAGE", PYTHON_IMAGE)
        .network("host")
        .output(BuildOutput::Load)
}

/// The mediaserver pipeline.
pub fn pipeline(root: &Path, smoke: bool) -> Result<Pipeline> {
    let app = root.join("fixtures/mediaserver");
    let target = root.join("target");
    let tools = ToolEnv::under(&target);
    let mut pipeline = Pipeline::new("mediaserver", &target);

    let generate = generate_cmd(root);
    let mut generated = Inputs::new().file(app.join("generate.py"));
    for dir in GENERATED {
        generated = generated.file(app.join(dir));
    }
    pipeline
        .step("generate", move |cx| {
            cx.runner.run(&generate)?;
            Ok(())
        })
        .describe("generate the fixture's 5,000-file context (templates, assets, data)")
        .inputs(generated)
        .output_dir(app.join(GENERATED[0]));

    // The app's own Python (the generated files are templates, assets and data).
    let mut sources: Vec<std::path::PathBuf> = std::fs::read_dir(app.join("app"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    sources.sort();
    crate::fixtures::format_step(&mut pipeline, &tools, root, sources)
        .describe("black --check and isort --check-only (pinned) over the app's Python");

    let build = image_build(root);
    let size_inputs = Inputs::of_build(&build).value("step", "size");
    pipeline
        .image_build("image", build, "mediaserver")
        .after(["generate", "format"])
        .describe("docker buildx build --target runtime (PyPI through cache mounts), loaded");

    let history = target.join("buildkit/mediaserver/size-history.jsonl");
    let check = SizeCheck::new(MEDIASERVER_IMAGE, &history);
    pipeline
        .step("size", move |cx| {
            let report = check.run(&cx.runner)?;
            cx.runner.note(&report.to_string());
            report.ensure_within_max()
        })
        .after(["image"])
        .describe("image size against the budget, layers, history")
        .inputs(size_inputs);

    if smoke {
        pipeline
            .step("smoke", |cx| {
                let report = db_smoke(MEDIASERVER_IMAGE)?.run(&cx.runner)?;
                cx.runner.note(&report.to_string());
                for line in &report.logs {
                    cx.runner.note(&format!("  | {line}"));
                }
                Ok(())
            })
            .after(["image"])
            .describe(
                "MariaDB first, then the app: GET /api/health answers 200 after a real query",
            );
    }
    Ok(pipeline)
}

/// The database-backed smoke test of a mediaserver image: a MariaDB companion on a free
/// port with a fresh password (a secret: never on a command line), then the app on
/// another free port, ready when `/api/health` answers 200 with `"database": "ok"`.
pub fn db_smoke(image: &str) -> Result<Smoke> {
    let db_port = free_port()?;
    let app_port = free_port()?;
    let password = Secret::new(fresh_password());
    let db = Smoke::new(MARIADB_IMAGE)
        .port(db_port)
        .env("MARIADB_PORT", db_port.to_string())
        .env("MARIADB_DATABASE", "mediaserver")
        .env("MARIADB_USER", "mediaserver")
        .secret_env("MARIADB_PASSWORD", password.clone())
        .secret_env("MARIADB_ROOT_PASSWORD", Secret::new(fresh_password()))
        .ready(Ready::LogLine("mariadb ready".into()))
        .timeout(Duration::from_secs(120));
    Ok(Smoke::new(image)
        .service("db", db)
        .env("PORT", app_port.to_string())
        .env("DB_USER", "mediaserver")
        .env("DB_NAME", "mediaserver")
        .secret_env("DB_PASSWORD", password)
        .ready(Ready::Http {
            port: app_port,
            path: "/api/health".into(),
            expect_body: Some("\"database\":\"ok\"".into()),
        })
        .timeout(Duration::from_secs(90)))
}

/// A password nobody else knows: the kernel's random bytes, hex.
fn fresh_password() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A free TCP port on loopback.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
