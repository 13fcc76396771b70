//! The versions of the engine and of buildx actually talked to, what they make possible,
//! and the range this library was verified with ([`SUPPORTED`]).
//!
//! Features are decided from the versions the tools report, never from a guess or a
//! process-wide flag: [`Capabilities::read`] asks `docker buildx version` once per runner
//! (and its clones) and docker CLI set-up, and keeps the answer in the runner's cache of
//! engine answers, so that two runners pointed at two engines each get their own.

use std::fmt;

use anyhow::{bail, Context as _};

use semver::Version;

use crate::cmd::{Cmd, Runner};

/// Reads the leading `[v]MAJOR.MINOR[.PATCH]` of a version as docker, buildx and BuildKit
/// print it (`28.5.2+dfsg4`, `v0.13.1`, `0.29.1+ds1`, `24.0.7-0ubuntu2~22.04.1`): the
/// numbers only, what follows them is a packager's suffix. `None` without at least a
/// major and a minor number.
pub(crate) fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let mut parts = text.splitn(3, '.');
    let number = |part: Option<&str>| -> Option<u64> {
        let digits: String = part?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major_text = parts.next()?;
    if !major_text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let major = number(Some(major_text))?;
    let minor_text = parts.next()?;
    let minor = number(Some(minor_text))?;
    // A patch number only right after a minor that is all digits ("28.5.2", not
    // "28.5+x.2").
    let patch = if minor_text.chars().all(|c| c.is_ascii_digit()) {
        number(parts.next()).unwrap_or(0)
    } else {
        0
    };
    Some(Version::new(major, minor, patch))
}

fn release(version: &Version) -> (u64, u64) {
    (version.major, version.minor)
}

/// Where a version stands against a [`SupportedRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Support {
    /// Older than the oldest release verified: not supported.
    Older,
    /// Within the verified releases.
    Verified,
    /// Newer than the newest release verified: expected to work, not verified.
    Newer,
}

/// The releases (`major.minor`, any patch) of one component this library was verified
/// with, oldest and newest included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SupportedRange {
    /// The oldest release verified (its patch number is not compared).
    pub(crate) oldest: Version,
    /// The newest release verified (its patch number is not compared).
    pub(crate) newest: Version,
}

impl SupportedRange {
    /// Where `version` stands: patch releases of the newest release count as verified.
    pub(crate) fn judge(&self, version: &Version) -> Support {
        if release(version) < release(&self.oldest) {
            Support::Older
        } else if release(version) > release(&self.newest) {
            Support::Newer
        } else {
            Support::Verified
        }
    }
}

impl fmt::Display for SupportedRange {
    /// `26.1–28.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}–{}.{}",
            self.oldest.major, self.oldest.minor, self.newest.major, self.newest.minor
        )
    }
}

/// The engine and buildx releases the library is verified with: the README and
/// [`Doctor`](super::Doctor) both read them from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Supported {
    /// Docker Engine releases.
    pub(crate) engine: SupportedRange,
    /// docker buildx releases.
    pub(crate) buildx: SupportedRange,
}

impl fmt::Display for Supported {
    /// `Docker Engine 26.1–28.5, buildx 0.13–0.29`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Docker Engine {}, buildx {}", self.engine, self.buildx)
    }
}

/// The verified range: Docker Engine 26.1 (Debian trixie's `docker.io`, with buildx 0.13)
/// to 28.5 (Debian sid's, with buildx 0.29). Newer releases are expected to work and are
/// reported as "newer than verified"; older ones are not supported.
pub(crate) const SUPPORTED: Supported = Supported {
    engine: SupportedRange {
        oldest: Version::new(26, 1, 0),
        newest: Version::new(28, 5, 0),
    },
    buildx: SupportedRange {
        oldest: Version::new(0, 13, 0),
        newest: Version::new(0, 29, 0),
    },
};

/// The BuildKit release an engine release vendors (its built-in builder), when known: the
/// engine's own builder often reports `v0.0.0+unknown` (distribution builds such as
/// Debian's), so this is the best answer there is. Known: 28.5 vendors v0.25.2, 26.1
/// vendors v0.13.2.
pub(crate) fn vendored_buildkit(engine: &Version) -> Option<&'static str> {
    match release(engine) {
        (28, 5) => Some("v0.25.2"),
        (26, 1) => Some("v0.13.2"),
        _ => None,
    }
}

/// Something newer buildx releases can do that the library uses when it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum Feature {
    /// Dockerfile build checks: `docker buildx build --call=check,format=json` (buildx
    /// 0.15 or later).
    BuildChecks,
    /// BuildKit's build records: `docker buildx history ls|inspect --format json` (buildx
    /// 0.21 or later; 0.20 has the command, without `inspect --format json`).
    BuildHistory,
}

impl Feature {
    /// The first buildx release with the feature.
    pub(crate) fn min_buildx(self) -> Version {
        match self {
            Feature::BuildChecks => Version::new(0, 15, 0),
            Feature::BuildHistory => Version::new(0, 21, 0),
        }
    }

    /// The feature in a few words (`build checks`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Feature::BuildChecks => "build checks",
            Feature::BuildHistory => "build records",
        }
    }

    /// The command that gives it (`docker buildx build --call=check`).
    pub(crate) fn command(self) -> &'static str {
        match self {
            Feature::BuildChecks => "docker buildx build --call=check",
            Feature::BuildHistory => "docker buildx history inspect --format json",
        }
    }

    /// The feature with its command: ``build checks (`docker buildx build --call=check`)``.
    pub(crate) fn describe(self) -> String {
        format!("{} (`{}`)", self.name(), self.command())
    }
}

/// A feature the buildx talked to does not have, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Unsupported {
    /// The feature.
    pub(crate) feature: Feature,
    /// Why it is not there, such as `buildx 0.13.1 has no build checks (...)`.
    pub(crate) reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// A version as a tool reported it: its own words and the numbers read from them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Reported {
    /// As printed (`0.29.1+ds1`, `v0.13.1`, `28.5.2+dfsg4`).
    pub(crate) text: String,
    /// The numbers, when the text has them.
    pub(crate) version: Option<Version>,
}

impl Reported {
    /// `text`, with its numbers read.
    pub(crate) fn new(text: impl Into<String>) -> Reported {
        let text = text.into();
        let version = parse_version(&text);
        Reported { text, version }
    }
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the buildx a runner's commands reach can do, read from its version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Capabilities {
    /// The buildx version (`docker buildx version`).
    pub(crate) buildx: Reported,
}

impl Capabilities {
    /// The capabilities of the buildx `runner`'s `docker` runs. Asks `docker buildx
    /// version` once per runner (and its clones) and docker set-up (`PATH`'s docker,
    /// `DOCKER_CONFIG`, `HOME`), keeping the answer in the runner's cache of engine
    /// answers. A dry run that asks nothing gets an error: nothing is known.
    pub(crate) fn read(runner: &Runner) -> anyhow::Result<Capabilities> {
        let text = buildx_reported(runner)?.context(
            "buildx's version is not known: a dry run asks nothing, or `docker buildx \
             version` printed none",
        )?;
        Ok(Capabilities {
            buildx: Reported::new(text),
        })
    }

    /// Capabilities of a buildx that reported `text` as its version (for tests and for
    /// versions read elsewhere).
    pub(crate) fn of_buildx(text: impl Into<String>) -> Capabilities {
        Capabilities {
            buildx: Reported::new(text),
        }
    }

    /// Whether buildx has `feature`; the error says which version it is and which it
    /// needs.
    pub(crate) fn supports(&self, feature: Feature) -> Result<(), Unsupported> {
        let needs = feature.min_buildx();
        match &self.buildx.version {
            Some(v) if *v >= needs => Ok(()),
            Some(_) => Err(Unsupported {
                feature,
                reason: format!(
                    "buildx {} has no {} (`{}` needs buildx {}.{} or later)",
                    self.buildx.text,
                    feature.name(),
                    feature.command(),
                    needs.major,
                    needs.minor
                ),
            }),
            None => Err(Unsupported {
                feature,
                reason: format!(
                    "buildx's version `{}` cannot be read, so {} cannot be relied on \
                     (buildx {}.{} or later has them)",
                    self.buildx.text,
                    feature.describe(),
                    needs.major,
                    needs.minor
                ),
            }),
        }
    }
}

/// The version word of the buildx `runner`'s `docker` runs, as printed: asked once per
/// runner (and its clones) and docker set-up (`PATH`'s docker, `DOCKER_CONFIG`, `HOME`),
/// kept in the runner's cache of engine answers, an unknown version too. `None` when a dry
/// run may not ask or the output has no version. Every reader of buildx's version goes through here.
pub(crate) fn buildx_reported(runner: &Runner) -> anyhow::Result<Option<String>> {
    let probe = Cmd::new("docker");
    let key = format!(
        "buildx-version {}|{}|{}",
        runner
            .program_path(&probe)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        runner
            .effective_env(&probe, "DOCKER_CONFIG")
            .unwrap_or_default(),
        runner.effective_env(&probe, "HOME").unwrap_or_default(),
    );
    if let Some(text) = runner.known_text(&key) {
        // Kept empty: asked already, and the answer named no version.
        return Ok(Some(text).filter(|t| !t.is_empty()));
    }
    let out = runner
        .capture(&buildx_version_cmd())
        .context("cannot ask buildx for its version")?;
    // Nothing said (a dry run's answer, too) is an unknown version, never a guess; it is
    // kept as such, so that the run asks once, as a plan shows it.
    let text = parse_buildx_version(&out.stdout);
    runner.keep_text(&key, text.clone().unwrap_or_default());
    Ok(text)
}

/// `docker buildx version`.
pub(crate) fn buildx_version_cmd() -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "version"])
        .timeout(std::time::Duration::from_secs(20))
        .read_only()
}

/// The version word of `docker buildx version`'s `github.com/docker/buildx 0.29.1+ds1
/// 0.29.1+ds1-4` (or `... v0.13.1 <commit>`).
pub(crate) fn parse_buildx_version(stdout: &str) -> Option<String> {
    let line = stdout.lines().find(|l| !l.trim().is_empty())?;
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let word = if first.contains("buildx") {
        words.next()?
    } else {
        first
    };
    Some(word.to_string())
}

/// The engine's version (`docker version --format {{.Server.Version}}`), asked once per
/// runner (and its clones) and engine; through the engine's socket (`GET /version`) when
/// it is on one.
pub(crate) fn engine_version(runner: &Runner) -> anyhow::Result<Reported> {
    let host = runner
        .effective_env(&Cmd::new("docker"), "DOCKER_HOST")
        .unwrap_or_default();
    let key = format!("engine-version {host}");
    if let Some(text) = runner.known_text(&key) {
        return Ok(Reported::new(text));
    }
    let text = match runner.engine_get("/version") {
        Some(Ok((200, body))) => {
            #[derive(serde::Deserialize)]
            struct VersionRow {
                #[serde(rename = "Version")]
                version: String,
            }
            crate::rows::parse::<VersionRow>(&body, "the engine's GET /version")?.version
        }
        Some(Err(e)) => return Err(e.into()),
        _ => {
            let out = runner.capture(&super::version_probe())?;
            let text = out.stdout.trim().to_string();
            if text.is_empty() {
                bail!("the engine did not say its version (`docker version` answered nothing)");
            }
            text
        }
    };
    runner.keep_text(&key, text.clone());
    Ok(Reported::new(text))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cmd::{Answer, FakeExecutor};

    #[test]
    fn versions_are_read_as_the_tools_print_them() {
        assert_eq!(parse_version("26.1.5+dfsg1"), Some(Version::new(26, 1, 5)));
        assert_eq!(parse_version("0.0.0+unknown"), Some(Version::new(0, 0, 0)));
        assert_eq!(parse_version("28.5"), Some(Version::new(28, 5, 0)));
        assert_eq!(parse_version("28"), None);
        assert_eq!(parse_version("dev.1.2"), None);
        assert_eq!(parse_version(""), None);
        assert_eq!(
            parse_version("24.0.7-0ubuntu2~22.04.1"),
            Some(Version::new(24, 0, 7))
        );
        assert!(Version::new(0, 29, 1) > Version::new(0, 15, 0));
        assert!(
            Version::new(0, 9, 0) < Version::new(0, 13, 0),
            "numbers, not text"
        );
    }

    #[test]
    fn the_supported_range_compares_releases_not_patches() {
        let engine = &SUPPORTED.engine;
        assert_eq!(engine.judge(&Version::new(28, 5, 9)), Support::Verified);
        assert_eq!(engine.judge(&Version::new(26, 1, 0)), Support::Verified);
        assert_eq!(engine.judge(&Version::new(27, 3, 1)), Support::Verified);
        assert_eq!(engine.judge(&Version::new(28, 6, 0)), Support::Newer);
        assert_eq!(engine.judge(&Version::new(29, 0, 0)), Support::Newer);
        assert_eq!(engine.judge(&Version::new(26, 0, 9)), Support::Older);
        assert_eq!(
            SUPPORTED.buildx.judge(&Version::new(0, 30, 0)),
            Support::Newer
        );
        assert_eq!(
            SUPPORTED.to_string(),
            "Docker Engine 26.1–28.5, buildx 0.13–0.29"
        );
    }

    #[test]
    fn parse_version_reads_the_leading_numbers() {
        assert_eq!(parse_version("0.29.1+ds1"), Some(Version::new(0, 29, 1)));
        assert_eq!(parse_version("v0.13.1"), Some(Version::new(0, 13, 1)));
        assert_eq!(parse_version("28.5.2+dfsg4"), Some(Version::new(28, 5, 2)));
        assert_eq!(parse_version("unknown"), None);
    }

    #[test]
    fn vendored_buildkit_is_known_for_the_verified_ends_only() {
        assert_eq!(vendored_buildkit(&Version::new(28, 5, 2)), Some("v0.25.2"));
        assert_eq!(vendored_buildkit(&Version::new(26, 1, 5)), Some("v0.13.2"));
        assert_eq!(vendored_buildkit(&Version::new(27, 0, 0)), None);
    }

    #[test]
    fn features_follow_the_buildx_version() {
        let old = Capabilities::of_buildx("0.13.1+ds1");
        let err = old.supports(Feature::BuildChecks).unwrap_err();
        assert_eq!(
            err.to_string(),
            "buildx 0.13.1+ds1 has no build checks (`docker buildx build --call=check` needs \
             buildx 0.15 or later)"
        );
        assert!(old.supports(Feature::BuildHistory).is_err());
        let middle = Capabilities::of_buildx("v0.20.1");
        assert!(middle.supports(Feature::BuildChecks).is_ok());
        assert!(middle.supports(Feature::BuildHistory).is_err());
        let new = Capabilities::of_buildx("0.29.1+ds1");
        assert!(new.supports(Feature::BuildChecks).is_ok());
        assert!(new.supports(Feature::BuildHistory).is_ok());
        let unknown = Capabilities::of_buildx("dev");
        assert!(unknown
            .supports(Feature::BuildChecks)
            .unwrap_err()
            .reason
            .contains("cannot be read"));
    }

    #[test]
    fn buildx_version_lines_of_both_packagings() {
        assert_eq!(
            parse_buildx_version("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n"),
            Some("0.29.1+ds1".into())
        );
        assert_eq!(
            parse_buildx_version(
                "github.com/docker/buildx v0.13.1 788433953af10f2a698f5c07611dddce2e08c7a0\n"
            ),
            Some("v0.13.1".into())
        );
        assert_eq!(parse_buildx_version(""), None);
    }

    #[test]
    fn the_buildx_version_is_asked_once_per_runner_and_its_clones() {
        let fake = Arc::new(FakeExecutor::new().on(
            ["docker", "buildx", "version"],
            Answer::ok("github.com/docker/buildx v0.13.1 abc\n"),
        ));
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        let first = Capabilities::read(&runner).unwrap();
        let second = Capabilities::read(&runner.clone().prefix("step")).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.buildx.version, Some(Version::new(0, 13, 1)));
        assert_eq!(fake.seen().len(), 1, "{:?}", fake.seen());
        // Another runner asks again: nothing is process-wide.
        let other = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        Capabilities::read(&other).unwrap();
        assert_eq!(fake.seen().len(), 2);
    }

    /// A buildx that names no version (a plan's placeholder answer, too) is asked once:
    /// the unknown answer is kept like a known one.
    #[test]
    fn an_unknown_buildx_version_is_asked_once_too() {
        let fake =
            Arc::new(FakeExecutor::new().on(["docker", "buildx", "version"], Answer::ok("")));
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        for _ in 0..3 {
            assert!(Capabilities::read(&runner).is_err());
        }
        assert_eq!(fake.seen().len(), 1, "{:?}", fake.seen());
        let recording = Runner::new().recording();
        for _ in 0..3 {
            assert_eq!(buildx_reported(&recording).unwrap(), None);
        }
        assert_eq!(
            recording.recorded().to_string(),
            "? docker buildx version\n",
            "a plan asks once"
        );
    }
}
