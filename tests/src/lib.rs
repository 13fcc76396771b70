//! Shared helpers for the end-to-end tests: the engine under test, fake binaries, paths.
//!
//! Tests that need the Docker engine call [`engine`]: it fails the test (never skips it)
//! when no engine answers, naming the command that starts one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use buildkit_lib::{Cmd, Runner};

/// The socket `xtask/engine-up.sh` starts the project's private engine on.
pub const PROJECT_DOCKER_HOST: &str = "unix:///run/buildkit-lib/docker.sock";
/// The loopback registry started with the engine.
pub const REGISTRY: &str = "127.0.0.1:5000";
/// Local base images built by `xtask/engine-up.sh` (nothing can be pulled here).
pub const BUSYBOX_IMAGE: &str = "buildkit-local/busybox:latest";
/// Python 3.11 image with the host CA bundle and libpython3.11.
pub const PYTHON_IMAGE: &str = "buildkit-local/python:3.11";
/// MariaDB 10.11 image built by `xtask/engine-up.sh` (engine 1 only). Start it with
/// `--network host -e MARIADB_PORT=<free port>` plus `MARIADB_ROOT_PASSWORD`,
/// `MARIADB_DATABASE`, `MARIADB_USER`, `MARIADB_PASSWORD`; it logs
/// `mariadb ready on 127.0.0.1:<port>` once it accepts connections.
pub const MARIADB_IMAGE: &str = "buildkit-local/mariadb:10.11";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The production-shaped fixture `fixtures/mediaserver`, with its large generated build
/// context in place: runs `python3 fixtures/mediaserver/generate.py` (once per process;
/// the generator itself writes only missing or different files, atomically, so parallel
/// test processes are safe) and returns the fixture's path. Panics when the generator
/// fails.
pub fn mediaserver_fixture() -> PathBuf {
    static GENERATED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    GENERATED
        .get_or_init(|| {
            let dir = repo_root().join("fixtures/mediaserver");
            let output = std::process::Command::new("python3")
                .arg(dir.join("generate.py"))
                .arg("--quiet")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", dir.display()));
            assert!(
                output.status.success(),
                "python3 fixtures/mediaserver/generate.py failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            dir
        })
        .clone()
}

/// The engine the tests use: `DOCKER_HOST` when set, else the project's private socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| PROJECT_DOCKER_HOST.to_string())
}

/// A quiet runner pointed at the test engine, without checking that it answers.
pub fn runner() -> Runner {
    Runner::new()
        .echo(buildkit_lib::cmd::Echo::Quiet)
        .env("DOCKER_HOST", docker_host())
}

/// A runner pointed at the test engine. Panics (fails the test) when the engine does not
/// answer: tests that need the engine never pass without it.
pub fn engine() -> Runner {
    let runner = runner();
    let probe = Cmd::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .timeout(std::time::Duration::from_secs(20));
    if let Err(e) = runner.capture(&probe) {
        panic!(
            "this test needs the Docker engine at {} and it does not answer; start it with \
             `bash xtask/engine-up.sh` (or `cargo xtask engine up`)\n{e}",
            docker_host()
        );
    }
    runner
}

/// The second engine `xtask/engine-up.sh` starts, for builds spread over two engines.
pub const SECOND_DOCKER_HOST: &str = "unix:///run/buildkit-lib/docker2.sock";

/// The second engine's address: `BUILDKIT_LIB_SECOND_HOST` when set, else
/// [`SECOND_DOCKER_HOST`]. Panics (fails the test) when it does not answer.
pub fn second_engine() -> String {
    let host = std::env::var("BUILDKIT_LIB_SECOND_HOST")
        .unwrap_or_else(|_| SECOND_DOCKER_HOST.to_string());
    let probe = Cmd::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .env("DOCKER_HOST", &host)
        .timeout(std::time::Duration::from_secs(20));
    if let Err(e) = runner().capture(&probe) {
        panic!(
            "this test needs the second Docker engine at {host} and it does not answer; \
             start both engines with `bash xtask/engine-up.sh`\n{e}"
        );
    }
    host
}

/// A directory of executable scripts to put first on a command's `PATH`.
pub struct FakeBin {
    dir: tempfile::TempDir,
}

impl FakeBin {
    /// An empty fake-binary directory.
    pub fn new() -> FakeBin {
        FakeBin {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Adds an executable `name` with the given shell script body (a `#!/bin/sh` line is
    /// added).
    pub fn script(self, name: &str, body: &str) -> FakeBin {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write fake binary");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod fake binary");
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `PATH` value with this directory first, then the real `PATH`.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A `PATH` value with only this directory (real programs are not found).
    pub fn path_env_only(&self) -> String {
        self.dir.path().display().to_string()
    }
}

impl Default for FakeBin {
    fn default() -> Self {
        FakeBin::new()
    }
}

/// A unique name for a test resource: `<prefix>-<pid>-<counter>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP port nobody listens on right now on loopback (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The names of the containers labelled with `session`'s run id that still exist.
pub fn leftovers(engine: &Runner, session: &buildkit_lib::Session) -> Vec<String> {
    let cmd = Cmd::new("docker").args([
        "ps",
        "--all",
        "--filter",
        &format!(
            "label={}={}",
            buildkit_lib::session::RUN_LABEL,
            session.run_id
        ),
        "--format",
        "{{.Names}}",
    ]);
    let out = engine.capture(&cmd).expect("docker ps");
    out.stdout.lines().map(str::to_string).collect()
}

/// Fills `dir` with `files` small files in a tree shaped like a Python project with a
/// virtualenv and caches (100 files per directory, three levels), plus a `.dockerignore`
/// excluding the caches with an exception: the shape the context audit is tested on.
pub fn python_shaped_tree(dir: &Path, files: usize) -> anyhow::Result<()> {
    let per_dir = 100;
    for i in 0..files {
        let d = i / per_dir;
        let sub = match d % 4 {
            0 => format!("src/pkg{}/mod{}", d / 40, d % 40),
            1 => format!(".venv/lib/site{}/p{}", d / 40, d % 40),
            2 => format!("src/pkg{}/__pycache__/c{}", d / 40, d % 40),
            _ => format!("data/set{}/part{}", d / 40, d % 40),
        };
        let folder = dir.join(sub);
        if i % per_dir == 0 {
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let name = if d % 4 == 2 {
            format!("f{i}.pyc")
        } else {
            format!("f{i}.py")
        };
        std::fs::write(folder.join(name), b"x = 1\n")
            .with_context(|| format!("cannot write in {}", folder.display()))?;
    }
    std::fs::write(
        dir.join(".dockerignore"),
        "**/__pycache__\n*.pyc\n.venv/\n!.venv/lib/site0/p1\ndata/**/*.bin\n",
    )
    .context("cannot write .dockerignore")?;
    Ok(())
}
