//! Shared helpers for the end-to-end tests: the engine under test, fake binaries, paths.
//!
//! Tests that need the Docker engine call [`engine`]: it fails the test (never skips it)
//! when no engine answers, naming the command that starts one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use buildkit_lib::{Cmd, Runner};

pub mod registry;
pub mod why;

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

/// What a downstream xtask's `main` does for Ctrl-C, for the test programs that model one:
/// a second SIGINT or SIGTERM exits 130 at once (registered first), and the first cancels
/// the returned token (the library's [`buildkit_lib::cmd::Cancel::on_signals`]). Keep the
/// guard for as long as `main` runs; give the token to the runner with `cancel_with`.
pub fn cancel_on_signals() -> (buildkit_lib::cmd::Cancel, buildkit_lib::cmd::Guard) {
    use buildkit_lib::cmd::{Cancel, EXIT_INTERRUPTED};
    use signal_hook::consts::{SIGINT, SIGTERM};
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, seen.clone())
            .expect("register the exit on a second signal");
        signal_hook::flag::register(sig, seen.clone()).expect("register the signal flag");
    }
    let cancel = Cancel::new();
    let guard = cancel.on_signals().expect("cancel the run on signals");
    (cancel, guard)
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

/// What a fake executor's packaging command leaves: the `deskapp` binary in the folder a
/// package step's command writes to (the mounted `/out`, a `type=local` export, or the
/// `docker cp` destination), as if PyInstaller had run.
pub fn fake_packaging_output(argv: &[String]) {
    let out = argv.iter().enumerate().find_map(|(i, word)| {
        if let Some(rest) = word.strip_prefix("type=bind,src=") {
            return rest.strip_suffix(",dst=/out").map(PathBuf::from);
        }
        if let Some(dest) = word.strip_prefix("type=local,dest=") {
            return Some(PathBuf::from(dest));
        }
        (argv.get(1).is_some_and(|w| w == "cp") && i == 3).then(|| PathBuf::from(word))
    });
    if let Some(out) = out {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("deskapp"), "the build").unwrap();
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
        &format!("label={}={}", buildkit_lib::RUN_LABEL, session.run_id),
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

/// The base images `xtask/engine-up.sh` pushes to the loopback registry for BuildKit
/// daemons (a BuildKit daemon does not see the engine's image store).
pub const REGISTRY_BUSYBOX_IMAGE: &str = "127.0.0.1:5000/buildkit-local/busybox:latest";
/// See [`REGISTRY_BUSYBOX_IMAGE`].
pub const REGISTRY_PYTHON_IMAGE: &str = "127.0.0.1:5000/buildkit-local/python:3.11";

/// The BuildKit builders rig `xtask/engine-up.sh` starts: one remote `buildkitd` with
/// mutual TLS, its certificates, and the image for `docker-container` builders.
#[derive(Debug, Clone)]
pub struct BuildkitRig {
    /// `tcp://127.0.0.1:PORT` (`BUILDKIT_LIB_REMOTE_BUILDKIT`).
    pub endpoint: String,
    /// The directory holding `ca.pem`, `client-cert.pem`, `client-key.pem`, ...
    /// (`BUILDKIT_LIB_BUILDKIT_CERTS`).
    pub certs: PathBuf,
    /// The BuildKit image for the `docker-container` driver (`BUILDKIT_LIB_BUILDKIT_IMAGE`).
    pub image: String,
    /// The directory holding the rig's `buildkitd` and `buildctl` (`BUILDKIT_LIB_BUILDKIT_BIN`).
    pub bin: PathBuf,
}

/// How `platform` ended in a failed fan-out, as the error's message says it (the text
/// after `  PLATFORM on ENDPOINT: `, up to the next platform's line): `not started`,
/// `built, not merged`, `failed: ...` or `its engine does not answer: ...`.
pub fn fan_out_outcome(err: &anyhow::Error, platform: &str) -> String {
    let text = err
        .chain()
        .find(|e| e.is::<buildkit_lib::docker::FanOutError>())
        .unwrap_or_else(|| panic!("not a FanOutError: {err:#}"))
        .to_string();
    let start = text
        .find(&format!("\n  {platform} on "))
        .unwrap_or_else(|| panic!("{platform} is not in {text}"));
    let rest = &text[start + 1..];
    let end = rest[1..]
        .find("\n  linux/")
        .map(|i| i + 1)
        .unwrap_or(rest.len());
    let line = &rest[..end];
    let (_, what) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("no outcome in {line}"));
    what.to_string()
}

/// The TLS files of a `remote` builder or node, with the name in the daemon's certificate:
/// what [`BuilderCreate::tls`](buildkit_lib::docker::BuilderCreate::tls) and a
/// `servername` driver option take, as one value for the tests.
#[derive(Debug, Clone)]
pub struct RemoteTls {
    cacert: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    servername: Option<String>,
}

impl RemoteTls {
    /// The CA certificate, the client certificate and its key.
    pub fn new(
        cacert: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        RemoteTls {
            cacert: cacert.into(),
            cert: cert.into(),
            key: key.into(),
            servername: None,
        }
    }

    /// The name in the daemon's certificate.
    pub fn servername(mut self, servername: impl Into<String>) -> Self {
        self.servername = Some(servername.into());
        self
    }
}

/// `.with_tls(&tls)` on a builder or a node: its TLS files and `servername` driver option.
pub trait WithTls {
    /// The TLS files (and `servername`) of `tls`.
    fn with_tls(self, tls: &RemoteTls) -> Self;
}

impl WithTls for buildkit_lib::docker::BuilderCreate {
    fn with_tls(self, tls: &RemoteTls) -> Self {
        let create = self.tls(&tls.cacert, &tls.cert, &tls.key);
        match &tls.servername {
            Some(name) => create.driver_opt("servername", name),
            None => create,
        }
    }
}

impl WithTls for buildkit_lib::docker::NodeSpec {
    fn with_tls(self, tls: &RemoteTls) -> Self {
        let node = self.tls(&tls.cacert, &tls.cert, &tls.key);
        match &tls.servername {
            Some(name) => node.driver_opt("servername", name),
            None => node,
        }
    }
}

impl BuildkitRig {
    /// The client's TLS files, for a `remote` builder on [`BuildkitRig::endpoint`].
    pub fn tls(&self) -> RemoteTls {
        self.tls_with(None, None, None)
    }

    /// [`BuildkitRig::tls`] with another CA certificate, client certificate or key.
    pub fn tls_with(
        &self,
        cacert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> RemoteTls {
        RemoteTls::new(
            cacert.unwrap_or_else(|| self.certs.join("ca.pem")),
            cert.unwrap_or_else(|| self.certs.join("client-cert.pem")),
            key.unwrap_or_else(|| self.certs.join("client-key.pem")),
        )
        .servername("127.0.0.1")
    }

    /// `host:port` of the remote daemon.
    pub fn address(&self) -> &str {
        self.endpoint.trim_start_matches("tcp://")
    }
}

/// The BuildKit builders rig. Panics (fails the test, never skips it) when its
/// certificates, its image or its daemon are missing, naming the command that starts it.
pub fn buildkit_rig() -> BuildkitRig {
    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    let rig = BuildkitRig {
        endpoint: var("BUILDKIT_LIB_REMOTE_BUILDKIT", "tcp://127.0.0.1:1234"),
        certs: PathBuf::from(var(
            "BUILDKIT_LIB_BUILDKIT_CERTS",
            "/var/lib/buildkit-lib/buildkit/certs",
        )),
        image: var(
            "BUILDKIT_LIB_BUILDKIT_IMAGE",
            "buildkit-local/buildkit:v0.25.2",
        ),
        bin: PathBuf::from(var(
            "BUILDKIT_LIB_BUILDKIT_BIN",
            "/var/lib/buildkit-lib/buildkit/bin",
        )),
    };
    let start = "start it with `bash xtask/engine-up.sh` (the first run builds BuildKit, \
                 6-13 minutes)";
    for f in ["ca.pem", "client-cert.pem", "client-key.pem"] {
        let path = rig.certs.join(f);
        assert!(
            path.is_file(),
            "this test needs the BuildKit builders rig and {} is missing; {start}",
            path.display()
        );
    }
    if let Err(e) = std::net::TcpStream::connect(rig.address()) {
        panic!(
            "this test needs the remote BuildKit daemon at {} and it does not answer ({e}); \
             {start}",
            rig.endpoint
        );
    }
    let image = Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &rig.image]);
    if let Err(e) = engine().capture(&image) {
        panic!(
            "this test needs the BuildKit image {} in the engine; {start}\n{e}",
            rig.image
        );
    }
    rig
}

/// Removes a buildx builder by name when dropped (a failed test leaves nothing behind).
pub struct RemoveBuilder(pub Runner, pub String);

impl Drop for RemoveBuilder {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["buildx", "rm", &self.1]));
    }
}

/// Whether a buildx builder named `name` exists.
pub fn builder_exists(runner: &Runner, name: &str) -> bool {
    builder_info(runner, name).is_some()
}

/// One node of a builder, as `docker buildx ls --format json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Endpoint (context name or URL).
    pub endpoint: String,
    /// Status (`running`, `inactive`, ...).
    pub status: String,
    /// Platforms it builds.
    pub platforms: Vec<String>,
}

/// A builder, as `docker buildx ls --format json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderFacts {
    /// Builder name.
    pub name: String,
    /// Driver name.
    pub driver: String,
    /// Its nodes.
    pub nodes: Vec<NodeFacts>,
}

/// The builder `name` as `docker buildx ls --format json` lists it (one JSON object a
/// line; buildx 0.13 repeats a builder's line once per node), `None` when there is none.
pub fn builder_info(runner: &Runner, name: &str) -> Option<BuilderFacts> {
    let out = runner
        .capture(
            &Cmd::new("docker")
                .args(["buildx", "ls", "--format", "json"])
                .read_only(),
        )
        .expect("docker buildx ls");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("buildx ls prints JSON"))
        .find(|row| row["Name"] == name)
        .map(|row| BuilderFacts {
            name: text(&row["Name"]),
            driver: text(&row["Driver"]),
            nodes: row["Nodes"]
                .as_array()
                .map(|nodes| {
                    nodes
                        .iter()
                        .map(|n| NodeFacts {
                            name: text(&n["Name"]),
                            endpoint: text(&n["Endpoint"]),
                            status: text(&n["Status"]),
                            platforms: n["Platforms"]
                                .as_array()
                                .map(|p| p.iter().map(text).collect())
                                .unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
}

/// Runs `openssl ARGS` in `dir`, failing the test with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes, with `openssl` in `dir`, a CA of its own and a certificate of `kind` (`client`
/// or `server`, the latter for 127.0.0.1) signed by it; returns (ca, cert, key).
pub fn openssl_pair(dir: &Path, prefix: &str, kind: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(format!("{prefix}-{f}"));
    let run = |args: &[&str]| openssl(dir, args);
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca-key.pem"),
        p("cert.pem"),
        p("key.pem"),
        p("req.csr"),
        p("ext.cnf"),
    );
    let s = |p: &PathBuf| p.display().to_string();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        &format!("/CN={prefix} test CA"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    let ext_text = if kind == "server" {
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    } else {
        "extendedKeyUsage=clientAuth\n"
    };
    std::fs::write(&ext, ext_text).unwrap();
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={prefix} {kind}"),
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (ca, cert, key)
}

/// A CA of its own with a server certificate (for 127.0.0.1) and a client certificate,
/// made with `openssl` in a directory: for BuildKit daemons started by a test.
#[derive(Debug, Clone)]
pub struct CertSet {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate and key.
    pub server: (PathBuf, PathBuf),
    /// The client certificate and key.
    pub client: (PathBuf, PathBuf),
}

/// Makes a [`CertSet`] in `dir`; with `expired_server`, the server certificate was valid
/// on 2020-01-01 only (made with `openssl ca`, which can date a certificate in the past).
pub fn openssl_cert_set(dir: &Path, expired_server: bool) -> CertSet {
    let run = |args: &[&str]| openssl(dir, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN=test {who}"),
            "-keyout",
            &format!("{who}-key.pem"),
            "-out",
            &format!("{who}.csr"),
        ]);
    }
    if expired_server {
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = {d}/index.txt\n\
                 new_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\n\
                 policy = policy_any\n[policy_any]\ncommonName = supplied\n",
                d = dir.display()
            ),
        )
        .unwrap();
        run(&[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca-key.pem",
            "-in",
            "server.csr",
            "-out",
            "server-cert.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extfile",
            "server.ext",
        ]);
    } else {
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "server.ext",
            "-out",
            "server-cert.pem",
        ]);
    }
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "client.ext",
        "-out",
        "client-cert.pem",
    ]);
    CertSet {
        ca: dir.join("ca.pem"),
        server: (dir.join("server-cert.pem"), dir.join("server-key.pem")),
        client: (dir.join("client-cert.pem"), dir.join("client-key.pem")),
    }
}

/// A `buildkitd` of the rig's build started by a test on a loopback port of its own, with
/// mutual TLS from `certs` and its state in a temporary directory; stopped and cleaned
/// up when dropped (the shared daemon is never stopped by a test).
pub struct PrivateBuildkitd {
    child: Option<std::process::Child>,
    root: tempfile::TempDir,
    /// `tcp://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl PrivateBuildkitd {
    /// Starts it and waits until its port accepts connections.
    pub fn start(rig: &BuildkitRig, certs: &CertSet) -> PrivateBuildkitd {
        let root = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let config = root.path().join("buildkitd.toml");
        std::fs::write(
            &config,
            format!(
                "root = \"{root}/state\"\n[worker.oci]\n  enabled = true\n\
                 [worker.containerd]\n  enabled = false\n\
                 [registry.\"{REGISTRY}\"]\n  http = true\n  insecure = true\n\
                 [grpc]\n  address = [\"{endpoint}\"]\n\
                 [grpc.tls]\n  cert = \"{}\"\n  key = \"{}\"\n  ca = \"{}\"\n",
                certs.server.0.display(),
                certs.server.1.display(),
                certs.ca.display(),
                root = root.path().display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.path().join("buildkitd.log")).unwrap();
        let child = std::process::Command::new(rig.bin.join("buildkitd"))
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {}: {e}", rig.bin.join("buildkitd").display())
            });
        let mut daemon = PrivateBuildkitd {
            child: Some(child),
            root,
            endpoint,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = daemon.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("buildkitd exited ({status}):\n{}", daemon.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "buildkitd not listening:\n{}",
                daemon.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        daemon
    }

    /// What the daemon logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("buildkitd.log")).unwrap_or_default()
    }

    /// Stops the daemon with `signal` and waits for it to exit.
    pub fn stop(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, signal) };
            // BuildKit 0.25 stops gracefully on SIGTERM: it waits for the builds it runs.
            // A daemon that has not exited after 10 s is killed, with the build steps it
            // started (they are its children's children, left running otherwise).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                let pid = child.id() as i32;
                let descendants = descendants_of(pid);
                unsafe { libc::kill(pid, libc::SIGKILL) };
                for d in descendants {
                    unsafe { libc::kill(d, libc::SIGKILL) };
                }
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBuildkitd {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
        // Whatever a stopped daemon left mounted under its state directory.
        let root = self.root.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = std::process::Command::new("umount")
                .args(["-l", m])
                .status();
        }
    }
}

/// The SHA-256 of `bytes`, as lowercase hex (digests in registries and files' sums).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of a file's content, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(sha256_hex(&std::fs::read(path)?))
}

/// Every process below `pid` (children, their children, ...), read from `/proc`.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the second field after the parenthesised command name.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|f| f.parse::<i32>().ok())
        {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The engine and buildx the tests run against, read raw (`docker version`, `docker buildx
/// version`), not through the library: what a test that depends on them states it proves.
#[derive(Debug, Clone)]
pub struct EngineUnderTest {
    /// The engine's version text (`28.5.2+dfsg4`, `26.1.5+dfsg1`).
    pub engine: String,
    /// buildx's version text (`0.29.1+ds1`, `0.13.1+ds1`).
    pub buildx: String,
}

impl EngineUnderTest {
    fn major_minor(text: &str) -> (u64, u64) {
        let mut parts = text
            .trim_start_matches('v')
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u64>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// Whether the engine is `major.minor` or newer.
    pub fn engine_at_least(&self, major: u64, minor: u64) -> bool {
        Self::major_minor(&self.engine) >= (major, minor)
    }

    /// Whether buildx is `major.minor` or newer.
    pub fn buildx_at_least(&self, major: u64, minor: u64) -> bool {
        Self::major_minor(&self.buildx) >= (major, minor)
    }

    /// `Docker 28.5.2+dfsg4, buildx 0.29.1+ds1`, for assertion messages.
    pub fn describe(&self) -> String {
        format!("Docker {}, buildx {}", self.engine, self.buildx)
    }
}

/// The engine and buildx under test. Panics (fails the test) when the engine does not
/// answer.
pub fn engine_under_test() -> EngineUnderTest {
    let runner = engine();
    let engine = runner
        .capture(&Cmd::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
        .expect("docker version")
        .stdout
        .trim()
        .to_string();
    let buildx = buildx_version_word(&runner)
        .trim_start_matches('v')
        .to_string();
    EngineUnderTest { engine, buildx }
}

/// buildx's version as `docker buildx version` prints it, read raw: `0.29.1+ds1` of
/// `github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4`, `v0.21.2` of `... v0.21.2 1360a9e`.
fn buildx_version_word(runner: &Runner) -> String {
    runner
        .capture(&Cmd::new("docker").args(["buildx", "version"]))
        .expect("docker buildx version")
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("buildx prints its version")
        .to_string()
}

/// The plan-equals-execution check of one step kind: the step's plan (its body recorded on
/// a runner where nothing runs) must equal the actions the same step takes when it runs
/// for real against a fake engine that answers every query with the placeholder its
/// plan shows. Returns the plan, for the caller's own assertions. Files the step writes
/// are really written: give the step paths in a temporary folder.
pub fn assert_plan_is_execution<S: buildkit_lib::plan::Step>(
    step: &S,
    session: &buildkit_lib::Session,
) -> buildkit_lib::plan::Plan {
    let fake = buildkit_lib::cmd::FakeExecutor::like_dry_run();
    assert_plan_is_execution_on(step, session, std::sync::Arc::new(fake)).0
}

/// [`assert_plan_is_execution`] against `executor`, a fake engine of the test's own that
/// answers what the plan assumed (and, say, leaves the files a command would): returns
/// the plan and what the run gave back.
pub fn assert_plan_is_execution_on<S: buildkit_lib::plan::Step>(
    step: &S,
    session: &buildkit_lib::Session,
    executor: std::sync::Arc<dyn buildkit_lib::cmd::Executor>,
) -> (buildkit_lib::plan::Plan, S::Output) {
    use buildkit_lib::cmd::Echo;
    let base = Runner::new().echo(Echo::Silent).session(session.clone());
    let plan = step
        .plan(&base)
        .unwrap_or_else(|e| panic!("the step has no plan: {e:#}"));
    let real = base.with_executor(executor).with_fresh_record();
    let output = match step.run(&real) {
        Ok(output) => output,
        Err(e) => {
            panic!("the step failed against the answers its plan shows: {e:#}\nplan:\n{plan}")
        }
    };
    assert_eq!(
        real.recorded().to_string(),
        plan.to_string(),
        "what the step did differs from its plan"
    );
    assert_eq!(real.recorded(), plan, "the actions differ from the plan's");
    (plan, output)
}

/// `docker image inspect IMAGE`, its one object: what a test reads of an image's config
/// (tags, user, ports, healthcheck, env, labels) beyond the facts the library exposes.
pub fn image_inspect(runner: &Runner, image: &str) -> serde_json::Value {
    let out = runner
        .capture(
            &Cmd::new("docker")
                .args(["image", "inspect", image])
                .read_only(),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let all: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    all[0].clone()
}

/// The records of a size history file (`SizeCheck`'s JSON lines), oldest first.
pub fn size_history(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The `(created_by, bytes)` of a size record's layers, biggest first (the order of the
/// report's "largest layers").
pub fn largest_layers(record: &serde_json::Value) -> Vec<(String, u64)> {
    let mut layers: Vec<(String, u64)> = record["layers"]
        .as_array()
        .expect("a record lists its layers")
        .iter()
        .map(|l| {
            (
                l["created_by"].as_str().unwrap().to_string(),
                l["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    layers.sort_by_key(|l| std::cmp::Reverse(l.1));
    layers
}

/// The lines of a report's `Display` under the line `header`, up to the next line that
/// does not start with a space.
pub fn section<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect()
}

/// A passed smoke test as its report's `Display` tells it: `smoke test of IMAGE passed:
/// ready after Ts (CHECK; N checks): DETAIL[, answered by WHO]`, then one line per
/// companion service (`service NAME ready after Ts (CHECK)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeShown {
    /// The check that decided readiness, as displayed (`container health status`).
    pub check: String,
    /// How many checks ran.
    pub attempts: u32,
    /// What the last check saw (`HTTP 200, 27 bytes`).
    pub detail: String,
    /// Who answered the probe, when told.
    pub answered_by: Option<String>,
    /// The companion services' names, in the order they started.
    pub services: Vec<String>,
}

/// Reads a smoke report's `Display` (see [`SmokeShown`]).
pub fn smoke_shown(text: &str) -> SmokeShown {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let rest = first
        .split_once(" passed: ready after ")
        .and_then(|(_, rest)| rest.split_once("s ("))
        .unwrap_or_else(|| panic!("not a smoke report: {text}"))
        .1;
    let (check, rest) = rest.split_once("; ").unwrap();
    let (attempts, rest) = rest.split_once(" checks): ").unwrap();
    let (detail, answered_by) = match rest.split_once(", answered by ") {
        Some((detail, who)) => (detail, Some(who.to_string())),
        None => (rest, None),
    };
    let services = lines
        .filter_map(|l| l.strip_prefix("service "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    SmokeShown {
        check: check.to_string(),
        attempts: attempts.parse().unwrap(),
        detail: detail.to_string(),
        answered_by,
        services,
    }
}

/// Step `step` of the `report.json` that pipeline `pipeline` wrote under `target_dir`
/// (`<target_dir>/buildkit/<pipeline>/report.json`), as JSON: how a test reads the parts
/// of a step's record that only the report file shows (its instructions, warnings, and
/// the reason it checked nothing).
pub fn report_step(target_dir: &Path, pipeline: &str, step: &str) -> serde_json::Value {
    let path = target_dir
        .join("buildkit")
        .join(pipeline)
        .join("report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {}", path.display()))
        .clone()
}

/// A feature newer buildx releases have, which the library uses where it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildxFeature {
    /// Dockerfile build checks (`--call=check`), buildx 0.15 or later.
    BuildChecks,
    /// BuildKit's build records (`docker buildx history inspect --format json`), buildx
    /// 0.21 or later.
    BuildHistory,
}

/// Whether the buildx `runner`'s `docker` runs has `feature`, from `docker buildx
/// version`; when not, the reason the library gives, word for word.
pub fn buildx_supports(runner: &Runner, feature: BuildxFeature) -> Result<(), String> {
    let (name, command, minor) = match feature {
        BuildxFeature::BuildChecks => ("build checks", "docker buildx build --call=check", 15),
        BuildxFeature::BuildHistory => (
            "build records",
            "docker buildx history inspect --format json",
            21,
        ),
    };
    let word = buildx_version_word(runner);
    if EngineUnderTest::major_minor(&word) >= (0, minor) {
        Ok(())
    } else {
        Err(format!(
            "buildx {word} has no {name} (`{command}` needs buildx 0.{minor} or later)"
        ))
    }
}

/// A trivy program and the cache directory it uses, as the tests give them to
/// `Trivy::bin` and `TrivySbom::bin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrivyAt {
    program: PathBuf,
    cache: PathBuf,
}

impl TrivyAt {
    /// The trivy at `program` using `cache`.
    pub fn at(program: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> TrivyAt {
        TrivyAt {
            program: program.into(),
            cache: cache.into(),
        }
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Its cache directory.
    pub fn cache(&self) -> &Path {
        &self.cache
    }
}

/// The `cache/not-written` findings of a build's result.
pub fn cache_not_written(
    result: &buildkit_lib::docker::BuildResult,
) -> Vec<&buildkit_lib::Finding> {
    result
        .cache_warnings
        .iter()
        .filter(|w| w.rule == "cache/not-written")
        .collect()
}
