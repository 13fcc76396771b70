//! The preflight check: each piece a build needs, present or not, with the fix.

use std::fmt;

use crate::cmd::{Cmd, Probe, Runner};
use crate::plan::Step;

use super::versions::{
    vendored_buildkit, Capabilities, Feature, Reported, Support, SupportedRange, SUPPORTED,
};
use super::Engine;

/// The state of one checked piece: the library's one [`Verdict`](crate::validate::Verdict)
/// (pass: present and working; warn: works, with a limitation worth knowing; fail: missing
/// or broken; not checked: not asked).
pub(crate) use crate::validate::Verdict as Status;

/// One line of the preflight check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Check {
    /// What was checked (`engine`, `buildx`, ...).
    pub name: &'static str,
    /// The verdict: pass, warn or fail.
    pub status: crate::validate::Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is not ok.
    pub fix: Option<String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.status {
            Status::Pass => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::NotChecked => "skip",
        };
        write!(f, "{mark} {:<16} {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     {:<16} fix: {fix}", "")?;
        }
        Ok(())
    }
}

/// The preflight check: the docker client, the engine, buildx and its features, the
/// builder, BuildKit, the platforms, the image store and, when named, a registry; each a
/// [`Check`] line, present or not, with its fix.
///
/// # Example
///
/// ```
/// use buildkit_lib::engine::Doctor;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let doctor = Doctor::new().registry("127.0.0.1:5000").platform("linux/arm64");
/// let plan = doctor.plan(&Runner::new()).unwrap().to_string();
/// assert!(plan.starts_with("? docker version --format '{{.Client.Version}}'"), "{plan}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Doctor {
    /// A registry to probe (`host:port`), if the project pushes to one on loopback.
    registry: Option<String>,
    /// Platforms the project builds for (checked against the builder's list).
    platforms: Vec<String>,
    /// The command that brings the engine up, named in fixes.
    engine_up_hint: String,
}

impl Doctor {
    /// The check of the engine and buildx, with no registry or platform to look for, and
    /// a generic fix for a missing engine.
    pub fn new() -> Doctor {
        Doctor::default()
    }

    /// A registry to probe (`host:port`), if the project pushes to one on loopback.
    pub fn registry(mut self, registry: impl Into<String>) -> Doctor {
        self.registry = Some(registry.into());
        self
    }

    /// Platforms the project builds for (checked against the builder's list).
    ///
    /// Adds one; call again for more.
    pub fn platform(mut self, platform: impl Into<String>) -> Doctor {
        self.platforms.push(platform.into());
        self
    }

    /// The command that brings the engine up, named in fixes.
    pub fn engine_up_hint(mut self, engine_up_hint: impl Into<String>) -> Doctor {
        self.engine_up_hint = engine_up_hint.into();
        self
    }
}

impl Default for Doctor {
    fn default() -> Self {
        Doctor {
            registry: None,
            platforms: Vec::new(),
            engine_up_hint: "start a Docker engine and point DOCKER_HOST at it".into(),
        }
    }
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

/// A version judged against the verified range: `ok` inside it, `warn` newer than
/// verified, `FAIL` older than supported.
fn judged(
    name: &'static str,
    found: &str,
    version: &Reported,
    range: &SupportedRange,
    what: &str,
) -> Check {
    match version.version.as_ref().map(|v| range.judge(v)) {
        Some(Support::Verified) => check(
            name,
            Status::Pass,
            format!("{found} (verified: {range})"),
            None,
        ),
        Some(Support::Newer) => check(
            name,
            Status::Warn,
            format!("{found}: newer than verified ({range})"),
            Some(format!(
                "expected to work; if something fails, compare with {what} {}.{}",
                range.newest.major, range.newest.minor
            )),
        ),
        Some(_) => check(
            name,
            Status::Fail,
            format!("{found}: older than supported ({range})"),
            Some(format!(
                "install {what} {}.{} or later",
                range.oldest.major, range.oldest.minor
            )),
        ),
        None => check(
            name,
            Status::Warn,
            format!("{found}: its version cannot be read (verified: {range})"),
            None,
        ),
    }
}

/// What buildx can do for the library: build checks and build records.
fn features(capabilities: &Capabilities) -> Check {
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for feature in [Feature::BuildChecks, Feature::BuildHistory] {
        match capabilities.supports(feature) {
            Ok(()) => have.push(feature.describe().to_string()),
            Err(e) => missing.push(e.reason),
        }
    }
    if missing.is_empty() {
        check("features", Status::Pass, have.join(", "), None)
    } else {
        let mut detail = missing.join("; ");
        if !have.is_empty() {
            detail = format!("{}; {detail}", have.join(", "));
        }
        check(
            "features",
            Status::Warn,
            detail,
            Some(format!(
                "builds work; the steps that need these say they were skipped. buildx {}.{} \
                 or later has them all",
                Feature::BuildHistory.min_buildx().major,
                Feature::BuildHistory.min_buildx().minor
            )),
        )
    }
}

/// The builder's BuildKit version, as `docker buildx inspect` says it; for the engine's
/// own builder when it does not say (`v0.0.0+unknown`, distribution builds), the one the
/// engine release vendors when known.
fn buildkit_check(said: &str, driver: &str, engine: Option<&Reported>) -> Check {
    let unknown = said.is_empty() || said.trim_start_matches('v').starts_with("0.0.0");
    if !unknown {
        return check("buildkit", Status::Pass, format!("BuildKit {said}"), None);
    }
    let said = if said.is_empty() {
        "BuildKit (no version)".to_string()
    } else {
        format!("BuildKit {said}")
    };
    let vendored = engine.and_then(|e| e.version.as_ref().and_then(vendored_buildkit));
    let detail = match (driver, engine, vendored) {
        ("docker", Some(engine), Some(vendored)) => format!(
            "{said}: this build does not say its BuildKit version; Docker {engine} vendors \
             BuildKit {vendored}"
        ),
        ("docker", Some(engine), None) => format!(
            "{said}: this build does not say its BuildKit version, and the one Docker \
             {engine} vendors is unknown here"
        ),
        _ => format!("{said}: the builder does not say its BuildKit version (unknown)"),
    };
    check("buildkit", Status::Pass, detail, None)
}

impl Step for Doctor {
    type Output = Vec<Check>;

    /// One line per check.
    fn summary(&self, checks: &Vec<Check>) -> Option<String> {
        Some(
            checks
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    /// Fails when a check failed, naming each.
    fn judge(&self, checks: &Vec<Check>) -> anyhow::Result<()> {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.status == crate::validate::Verdict::Fail)
            .map(|c| c.to_string())
            .collect();
        anyhow::ensure!(
            failed.is_empty(),
            "the preflight check failed:\n{}",
            failed.join("\n")
        );
        Ok(())
    }

    /// Runs the preflight check. It never fails itself: each missing piece is a `Fail`
    /// line. Its plan is this body recorded: read-only queries of docker and, with a
    /// registry, a probe of it (where nothing answers, the engine's checks fail there).
    fn run(&self, runner: &Runner) -> anyhow::Result<Vec<Check>> {
        Ok(doctor(runner, self))
    }
}

/// The preflight check's lines.
fn doctor(runner: &Runner, options: &Doctor) -> Vec<Check> {
    let mut checks = Vec::new();
    let client = runner.capture(
        &Cmd::new("docker")
            .args(["version", "--format", "{{.Client.Version}}"])
            .read_only(),
    );
    match &client {
        Ok(out) => checks.push(check(
            "docker client",
            Status::Pass,
            out.stdout.trim(),
            None,
        )),
        Err(e) if matches!(e.failure, crate::cmd::Failure::NotFound { .. }) => {
            checks.push(check(
                "docker client",
                Status::Fail,
                "not installed",
                Some(options.engine_up_hint.clone()),
            ));
            return checks;
        }
        // Without a daemon `docker version` exits 1 but still names the client.
        Err(_) => checks.push(check("docker client", Status::Pass, "installed", None)),
    }
    let engine = Engine::detect(runner).ok();
    let host = engine
        .as_ref()
        .map(|e| e.host.clone())
        .unwrap_or_else(|| super::DEFAULT_HOST.to_string());
    let engine_version = super::engine_version(runner).ok();
    match &engine_version {
        Some(version) => checks.push(judged(
            "engine",
            &format!("Docker {version} at {host}"),
            version,
            &SUPPORTED.engine,
            "Docker Engine",
        )),
        None => {
            checks.push(check(
                "engine",
                Status::Fail,
                format!("no engine answers at {host}"),
                Some(options.engine_up_hint.clone()),
            ));
        }
    }
    let engine_ok = checks.last().is_some_and(|c| c.status == Status::Pass);

    let capabilities = Capabilities::read(runner);
    match &capabilities {
        Ok(capabilities) => {
            checks.push(judged(
                "buildx",
                &format!("buildx {}", capabilities.buildx),
                &capabilities.buildx,
                &SUPPORTED.buildx,
                "buildx",
            ));
            checks.push(features(capabilities));
        }
        Err(_) => checks.push(check(
            "buildx",
            Status::Fail,
            "the buildx plugin is missing",
            Some(
                "install docker-buildx (Debian) or docker-buildx-plugin (Docker's packages)".into(),
            ),
        )),
    }
    if !engine_ok {
        return checks;
    }

    match runner.capture(&Cmd::new("docker").args(["buildx", "inspect"]).read_only()) {
        Ok(out) => {
            let field = |name: &str| {
                out.stdout
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            let driver = field("Driver:");
            checks.push(check(
                "builder",
                Status::Pass,
                format!("{} (driver {driver})", field("Name:")),
                None,
            ));
            let buildkit = {
                let said = field("BuildKit version:");
                if said.is_empty() {
                    field("Buildkit:")
                } else {
                    said
                }
            };
            checks.push(buildkit_check(&buildkit, &driver, engine_version.as_ref()));
            let platforms = field("Platforms:");
            let missing: Vec<&String> = options
                .platforms
                .iter()
                .filter(|p| {
                    !platforms
                        .split(',')
                        .any(|have| have.trim().trim_end_matches('*') == p.as_str())
                })
                .collect();
            if missing.is_empty() {
                checks.push(check("platforms", Status::Pass, platforms, None));
            } else {
                checks.push(check(
                    "platforms",
                    Status::Fail,
                    format!("{platforms} (missing: {})", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                    Some("register QEMU emulation: `apt-get install qemu-user-static binfmt-support` and `update-binfmts --enable qemu-aarch64`".into()),
                ));
            }
        }
        Err(e) => checks.push(check(
            "builder",
            Status::Fail,
            format!(
                "`docker buildx inspect` failed: {}",
                e.tail.last().cloned().unwrap_or_default()
            ),
            Some("create one with `docker buildx create --use`".into()),
        )),
    }

    match runner.capture(
        &Cmd::new("docker")
            .args(["info", "--format", "{{json .DriverStatus}}"])
            .read_only(),
    ) {
        Ok(out) if out.stdout.contains("io.containerd.snapshotter") => checks.push(check(
            "image store",
            Status::Pass,
            "containerd (multi-platform --load and cache export work)",
            None,
        )),
        Ok(_) => checks.push(check(
            "image store",
            Status::Warn,
            "classic (no multi-platform --load, no cache export with the docker driver)",
            Some("enable `\"features\": {\"containerd-snapshotter\": true}` in daemon.json and restart dockerd".into()),
        )),
        Err(_) => checks.push(check("image store", Status::Warn, "unknown (`docker info` failed)", None)),
    }

    if let Some(registry) = &options.registry {
        let (status, detail, fix) = match probe_registry(runner, registry) {
            Ok(answer) => (
                Status::Pass,
                match answer.parse::<u16>() {
                    Ok(code) => format!("{registry} answers /v2/ (HTTP {code})"),
                    Err(_) => format!("{registry}: {answer}"),
                },
                None,
            ),
            Err(why) => (
                Status::Fail,
                format!("{registry} does not answer: {why}"),
                Some(format!(
                    "start a registry on {registry} (`docker-registry serve CONFIG`)"
                )),
            ),
        };
        checks.push(check("registry", status, detail, fix));
    }
    checks
}

/// `GET /v2/` on a registry (`host:port`), through the runner's probe: the HTTP status
/// it answered (any status: 200 and 401 both mean a registry is there).
pub(crate) fn probe_registry(runner: &Runner, registry: &str) -> Result<String, String> {
    runner.probe(&Probe::http_status(registry, "/v2/"))
}
