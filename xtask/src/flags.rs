//! The xtask's command line, declared once: commands, flags, their types and their help.
//!
//! `xflags` generates the parser and the help text from the declaration below (a small
//! proc-macro without `syn`, as rust-analyzer's own xtask uses), so a flag cannot be
//! accepted without being documented, nor documented without being accepted. Values with
//! a fixed set of choices parse into enums here; the commands get typed structs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use buildkit_lib::version::Bump;

xflags::xflags! {
    /// This repository's own `cargo xtask`: the reference wiring of buildkit-lib. Every
    /// command takes --dry-run (print what it would do, change nothing) and --help.
    cmd xtask {
        /// Run the webapp pipeline on fixtures/webapp.
        ///
        /// Format checks, Dockerfile lint, version stamp, image build, size budget,
        /// security checks, smoke test, report
        /// (target/buildkit/build/report.json). Brings the engine up first when none
        /// answers. A second run with nothing changed reports the image up to date.
        cmd build {
            /// Print the plan and which steps are up to date; change nothing.
            optional --dry-run
            /// Run every step, even those whose inputs are unchanged.
            optional --force
            /// Go on with independent steps after a failure.
            optional --keep-going
            /// Run at most N steps at a time.
            optional --jobs n: usize
            /// Leave out the smoke test.
            optional --no-smoke
            /// Also check that the image is reproducible: built twice without cache,
            /// digests compared (the differing layer and files named otherwise).
            optional --reproducible
            /// The image build's cache: gha (the GitHub Actions cache service the job
            /// offers), gha:v1, gha:v2, registry:REF, local:DIR or none (the default).
            optional --cache spec: String
        }
        /// Run the production-shaped pipeline on fixtures/mediaserver.
        ///
        /// Generates its 5,000-file context, checks formatting, builds the runtime image (real PyPI
        /// dependencies; the first build takes a few minutes), checks its size and
        /// smoke-tests it against a real MariaDB
        /// (target/buildkit/mediaserver/report.json).
        cmd mediaserver {
            /// Print the plan and which steps are up to date; change nothing.
            optional --dry-run
            /// Run every step, even those whose inputs are unchanged.
            optional --force
            /// Go on with independent steps after a failure.
            optional --keep-going
            /// Leave out the smoke test.
            optional --no-smoke
        }
        /// Build the webapp's images with docker buildx bake.
        ///
        /// Writes the pipeline's image builds as docker-bake.json (paths in it relative
        /// to its folder) and runs docker buildx bake in that folder.
        cmd bake {
            /// Show the definition as buildx reads it instead of building (with
            /// --dry-run: the file that would be written).
            optional --print
            /// Print the commands; write and build nothing.
            optional --dry-run
            /// Where to write the bake file (default target/buildkit/build/docker-bake.json).
            optional --out file: PathBuf
            /// The image builds' cache, as for `cargo xtask build --cache`.
            optional --cache spec: String
        }
        /// Package the desktop fixture with PyInstaller into fixtures/desktop/dist/.
        ///
        /// Three stages (base, runtime, package); dist/ is replaced atomically.
        cmd package {
            /// How PyInstaller's output leaves the container: mounted, isolated (default)
            /// or isolated-cp.
            optional --mode mode: PackageMode
            /// Print the plan; change nothing.
            optional --dry-run
            /// Run every stage, even those whose inputs are unchanged.
            optional --force
            /// Build every stage (base, runtime, package) without the build cache;
            /// implies --force.
            optional --no-cache
            /// Go on with independent steps after a failure.
            optional --keep-going
        }
        /// Package the production-shaped desktop app (fixtures/signalscope) and smoke-test it.
        ///
        /// Base, runtime and package stages (PyInstaller, one file; incremental in the
        /// mounted mode, with the path taken and why in the log), then the binary runs in
        /// the base image (`--version`, and the main window opened and closed offscreen).
        /// Reports each stage's time and size.
        cmd desktop {
            /// mounted (default: incremental), isolated or isolated-cp.
            optional --mode mode: PackageMode
            /// Package only: no smoke test of the binary.
            optional --no-smoke
            /// Instead of packaging into dist/: package twice from scratch (no cache,
            /// SOURCE_DATE_EPOCH set) and compare the two file by file.
            optional --reproducible
            /// Print the plan; change nothing.
            optional --dry-run
            /// Run every stage, even those whose inputs are unchanged.
            optional --force
            /// Build every stage (base, runtime, package) without the build cache, and
            /// package in full; implies --force.
            optional --no-cache
            /// Go on with independent steps after a failure.
            optional --keep-going
        }
        /// Check the fixtures' Python formatting (black, isort; pinned versions).
        cmd check {
            /// Print the commands; run nothing.
            optional --dry-run
        }
        /// Fix the fixtures' Python formatting (black, isort; pinned versions).
        cmd fmt {
            /// Print the commands; change nothing.
            optional --dry-run
        }
        /// Release: bump the version, update the changelog, commit and tag.
        ///
        /// Bumps fixtures/webapp/version.json, moves CHANGELOG.md's Unreleased section
        /// under the new version, commits and creates the annotated tag v<version>.
        cmd release {
            /// Which part to bump: major, minor, patch, pre or release.
            required --bump part: Bump
            /// Print the plan; change nothing.
            optional --dry-run
        }
        /// Remove what this project's runs created, and nothing else.
        ///
        /// Containers and images labelled as this project's, and the fixtures' dist/
        /// and build/ folders.
        cmd clean {
            /// List what would go, with sizes; remove nothing.
            optional --dry-run
            /// Also remove containers that are running.
            optional --force
        }
        /// Say why the last run's image builds rebuilt what they rebuilt.
        ///
        /// Prints each Dockerfile instruction of the build (cached or run, with its time)
        /// and the cause of each rebuilt one, from what the last build wrote under
        /// target/buildkit/<pipeline>/why/. Reads only.
        cmd why {
            /// The pipeline step that built the image (default: every one recorded).
            optional step: String
            /// Only this pipeline's builds (build, mediaserver, ...).
            optional --pipeline name: String
            /// Accepted for uniformity: it only reads.
            optional --dry-run
        }
        /// Check the engine, buildx, builder, image store, platforms and registry.
        ///
        /// One line with the fix for each missing piece. Exit 1 when something fails.
        cmd doctor {
            /// Accepted for uniformity: the doctor only reads.
            optional --dry-run
        }
        /// Measure speed and memory against the raw tools, side by side.
        ///
        /// Runs on the real engine; writes target/buildkit/bench/bench.json.
        cmd bench {
            /// Fewer repetitions per figure.
            optional --quick
            /// Measure one figure only.
            optional --only name: String
            /// List the figures that would be measured.
            optional --dry-run
        }
        /// Start, stop or show the project's Docker engines and registry.
        ///
        /// `up` installs what is missing and starts the default engine (today's Docker,
        /// from Debian sid), the registry and the base images; name components to bring
        /// up more: second (a second engine), oldest (the oldest supported engine, Docker
        /// 26.1 from Debian trixie), arm64, mariadb, buildkit (BuildKit daemons), all.
        /// `env [current|oldest|second]` prints the export lines for `eval` on stdout.
        /// `versions` prints what each engine release installed.
        cmd engine {
            /// up (default), down, env, status, versions, registry-start or registry-stop.
            optional action: EngineAction
            /// For up: the components; for env: the engine.
            repeated what: String
            /// Print the command; run nothing.
            optional --dry-run
        }
        /// Check the declared minimum Rust version (rust-version) as far as possible.
        ///
        /// Every dependency declares one no newer; every workspace member declares it
        /// (clippy's incompatible_msrv then denies newer std APIs); with a toolchain of
        /// exactly that version installed, the workspace is checked with it, else the
        /// output says that part was not checked. Exit 1 when a check fails.
        cmd msrv {
            /// Print the commands that would change something; run only the read-only ones.
            optional --dry-run
        }
        /// Count buildkit-lib's public API: the items reachable from the crate root.
        ///
        /// Builds rustdoc's JSON with the nightly toolchain (cargo +nightly rustdoc -p
        /// buildkit-lib --lib -- -Z unstable-options --output-format json, into
        /// target/api-count) and walks it through public modules and pub use re-exports:
        /// each item counted once, by kind, and the items reached at several paths.
        cmd api-count {
            /// The checkout to measure: its directory or Cargo.toml (default: this one).
            optional path: PathBuf
            /// Count this rustdoc JSON file instead of building one.
            optional --json file: PathBuf
            /// Also print the paths of the items reached at several.
            optional --paths
            /// Also print the count of each module (a type's members with the type).
            optional --by-module
            /// Also print every item counted, by path, with its kind.
            optional --list
            /// Print the rustdoc command; build and count nothing.
            optional --dry-run
        }
        /// Run the workspace's tests against the project's engine.
        ///
        /// Brings the engines and everything the tests use up (`engine up all`), then runs
        /// `cargo test --workspace` on the default engine; with `--engine oldest`, runs the
        /// end-to-end tests (the e2e crate) on the oldest supported engine.
        cmd test {
            /// current (default) or oldest.
            optional --engine engine: TestEngine
            /// Arguments for cargo test (after `--`: test names, `--test NAME`, ...).
            repeated cargo_args: String
            /// Print the commands; run nothing.
            optional --dry-run
        }
    }
}

/// How `cargo xtask package` takes PyInstaller's output out of its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageMode {
    /// `dist/` mounted into the packaging container.
    Mounted,
    /// A build whose output is exported (`--output type=local`).
    Isolated,
    /// A container, then `docker cp` out of it.
    IsolatedCp,
}

impl FromStr for PackageMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mounted" => Ok(PackageMode::Mounted),
            "isolated" => Ok(PackageMode::Isolated),
            "isolated-cp" => Ok(PackageMode::IsolatedCp),
            other => Err(format!(
                "unknown package mode `{other}` (mounted, isolated or isolated-cp)"
            )),
        }
    }
}

/// Which engine `cargo xtask test` runs the tests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEngine {
    /// Today's engine, the default: the whole workspace.
    Current,
    /// The oldest supported engine: the end-to-end tests.
    Oldest,
}

impl FromStr for TestEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "current" => Ok(TestEngine::Current),
            "oldest" => Ok(TestEngine::Oldest),
            other => Err(format!("unknown engine `{other}` (current or oldest)")),
        }
    }
}

impl TestEngine {
    /// The engine's name, as the engine script takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TestEngine::Current => "current",
            TestEngine::Oldest => "oldest",
        }
    }
}

/// What `cargo xtask engine` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineAction {
    /// Install when missing and start everything.
    Up,
    /// Stop everything.
    Down,
    /// Print the lines that point clients at the engines.
    Env,
    /// Say what is up.
    Status,
    /// Print what each engine release installed.
    Versions,
    /// Start the loopback registry only.
    RegistryStart,
    /// Stop the loopback registry only.
    RegistryStop,
}

impl FromStr for EngineAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "up" => EngineAction::Up,
            "down" => EngineAction::Down,
            "env" => EngineAction::Env,
            "status" => EngineAction::Status,
            "versions" => EngineAction::Versions,
            "registry-start" => EngineAction::RegistryStart,
            "registry-stop" => EngineAction::RegistryStop,
            other => {
                return Err(format!(
                    "unknown engine action `{other}` (up, down, env, status, versions, registry-start, registry-stop)"
                ))
            }
        })
    }
}

impl EngineAction {
    /// The action's name, as the engine script takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineAction::Up => "up",
            EngineAction::Down => "down",
            EngineAction::Env => "env",
            EngineAction::Status => "status",
            EngineAction::Versions => "versions",
            EngineAction::RegistryStart => "registry-start",
            EngineAction::RegistryStop => "registry-stop",
        }
    }
}

/// A usage error: the xtask prints it with a pointer to the help and exits 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed {
    /// Run a command.
    Run(Xtask),
    /// Print this help text and exit 0.
    Help(String),
}

/// Parses the arguments after `cargo xtask`. `--help` anywhere gives the help of the
/// command it follows (the whole list without a command); errors name the command.
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let command = args.first().filter(|a| !a.starts_with('-'));
    match Xtask::from_vec(args.iter().map(OsString::from).collect()) {
        Ok(flags) => Ok(Parsed::Run(flags)),
        Err(e) if e.is_help() => Ok(Parsed::Help(help_of(command.map(String::as_str)))),
        Err(_) if args.is_empty() => {
            Err(UsageError(format!("no command given\n\n{}", help_of(None))))
        }
        Err(e) => Err(UsageError(match command {
            Some(c) if section(c).is_some() => {
                format!("{e} for `cargo xtask {c}` (see `cargo xtask {c} --help`)")
            }
            Some(c) => format!("unknown command `{c}` (see `cargo xtask --help`)"),
            None => format!("{e} (see `cargo xtask --help`)"),
        })),
    }
}

/// The generated help of one command, or the list of commands with the first line of
/// each one's description.
pub fn help_of(command: Option<&str>) -> String {
    if let Some(text) = command.and_then(section) {
        return format!("Usage: cargo {text}");
    }
    let mut out = String::from("Usage: cargo xtask <command> [flags]\n\n");
    let whole = Xtask::HELP_;
    let mut lines = whole.lines().skip(1);
    for line in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
        out.push_str(line.trim());
        out.push('\n');
    }
    out.push_str("\nCommands:\n");
    for name in whole.lines().filter_map(|l| l.strip_prefix("xtask ")) {
        let first = section(name)
            .and_then(|text| text.lines().nth(1))
            .unwrap_or_default();
        out.push_str(&format!("  {name:<12} {}\n", first.trim()));
    }
    out.push_str("\nRun `cargo xtask <command> --help` for its flags.");
    out
}

/// The part of the generated help that describes `command`.
fn section(command: &str) -> Option<&'static str> {
    let head = format!("\n\nxtask {command}\n");
    let start = Xtask::HELP_.find(&head)? + 2;
    let rest = &Xtask::HELP_[start..];
    let end = rest[1..].find("\n\nxtask ").map_or(rest.len(), |i| i + 1);
    Some(rest[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn run(text: &str) -> XtaskCmd {
        match parse(&args(text)) {
            Ok(Parsed::Run(x)) => x.subcommand,
            other => panic!("`{text}`: {other:?}"),
        }
    }

    fn usage(text: &str) -> String {
        match parse(&args(text)) {
            Err(e) => e.0,
            other => panic!("`{text}` was accepted: {other:?}"),
        }
    }

    #[test]
    fn typed_flags_reach_the_commands() {
        match run("build --jobs 3 --no-smoke --dry-run") {
            XtaskCmd::Build(b) => {
                assert_eq!(b.jobs, Some(3));
                assert!(b.no_smoke && b.dry_run && !b.force && !b.keep_going);
            }
            other => panic!("{other:?}"),
        }
        match run("package --mode isolated-cp") {
            XtaskCmd::Package(p) => assert_eq!(p.mode, Some(PackageMode::IsolatedCp)),
            other => panic!("{other:?}"),
        }
        match run("package --no-cache") {
            XtaskCmd::Package(p) => assert!(p.no_cache && !p.force),
            other => panic!("{other:?}"),
        }
        match run("release --bump pre") {
            XtaskCmd::Release(r) => assert_eq!(r.bump, Bump::Pre),
            other => panic!("{other:?}"),
        }
        match run("why image --pipeline mediaserver") {
            XtaskCmd::Why(w) => {
                assert_eq!(w.step.as_deref(), Some("image"));
                assert_eq!(w.pipeline.as_deref(), Some("mediaserver"));
            }
            other => panic!("{other:?}"),
        }
        match run("engine status") {
            XtaskCmd::Engine(e) => assert_eq!(e.action, Some(EngineAction::Status)),
            other => panic!("{other:?}"),
        }
        match run("test -- --test pipeline -q") {
            XtaskCmd::Test(t) => assert_eq!(t.cargo_args, ["--test", "pipeline", "-q"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_input_names_the_command_and_the_help() {
        let e = usage("build --jbos 3");
        assert!(
            e.contains("`--jbos`") && e.contains("`cargo xtask build --help`"),
            "{e}"
        );
        let e = usage("build --jobs three");
        assert!(
            e.contains("--jobs") && e.contains("cargo xtask build"),
            "{e}"
        );
        let e = usage("package --mode docker");
        assert!(e.contains("unknown package mode `docker`"), "{e}");
        let e = usage("release");
        assert!(e.contains("--bump"), "{e}");
        let e = usage("engine sideways");
        assert!(e.contains("unknown engine action `sideways`"), "{e}");
        let e = usage("deploy");
        assert!(e.contains("unknown command `deploy`"), "{e}");
        let e = usage("clean extra");
        assert!(
            e.contains("\"extra\"") && e.contains("cargo xtask clean"),
            "{e}"
        );
        assert!(usage("").contains("no command given"));
    }

    #[test]
    fn help_is_generated_per_command_from_the_declarations() {
        let Ok(Parsed::Help(all)) = parse(&args("--help")) else {
            panic!("no help")
        };
        for command in [
            "build",
            "mediaserver",
            "bake",
            "package",
            "desktop",
            "check",
            "fmt",
            "release",
            "clean",
            "doctor",
            "why",
            "bench",
            "engine",
            "msrv",
            "api-count",
            "test",
        ] {
            assert!(
                all.contains(&format!("\n  {command} ")),
                "{command} not listed: {all}"
            );
            let Ok(Parsed::Help(one)) = parse(&args(&format!("{command} --help"))) else {
                panic!("no help for {command}")
            };
            assert!(
                one.starts_with(&format!("Usage: cargo xtask {command}\n")),
                "{one}"
            );
            assert!(one.contains("--dry-run"), "{command}: {one}");
            assert!(
                !one.contains("\nxtask "),
                "{command} help runs into the next: {one}"
            );
        }
        let Ok(Parsed::Help(build)) = parse(&args("build --help")) else {
            panic!()
        };
        assert!(build.contains("--jobs <n>") && build.contains("Run at most N steps"));
    }
}
