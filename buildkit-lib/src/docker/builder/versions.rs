//! What a build runs with: buildx's version, the builder's driver and BuildKit version,
//! and (for the BuildKit built into a Docker engine that reports none) the engine's.
//!
//! Here because the library's choices depend on them and they are read the same way
//! everywhere: the GitHub Actions cache v2 gate, the bake entitlements (`--allow`), and
//! tests that state which engine they prove.

use anyhow::Context;
use semver::Version;

use crate::cmd::{Cmd, Runner};

/// A `(major, minor)` release number.
#[cfg(test)]
type Release = (u64, u64);

/// The BuildKit each Docker engine release vendors (its `vendor.mod`), by `major.minor`:
/// what its built-in builder runs when it reports no version (Debian's builds say
/// `v0.0.0+unknown`).
#[cfg(test)]
const ENGINE_BUILDKIT: &[(Release, Release)] = &[
    ((23, 0), (0, 10)),
    ((24, 0), (0, 11)),
    ((25, 0), (0, 12)),
    ((26, 0), (0, 13)),
    ((26, 1), (0, 13)),
    ((27, 0), (0, 14)),
    ((27, 1), (0, 15)),
    ((27, 2), (0, 15)),
    ((27, 3), (0, 16)),
    ((27, 4), (0, 17)),
    ((27, 5), (0, 18)),
    ((28, 0), (0, 20)),
    ((28, 1), (0, 21)),
    ((28, 2), (0, 22)),
    ((28, 3), (0, 23)),
    ((28, 4), (0, 24)),
    ((28, 5), (0, 25)),
    ((29, 0), (0, 25)),
    ((29, 1), (0, 26)),
];

/// The BuildKit release (`0.minor.0`) built into Docker engine `engine` (`28.5.2`,
/// `26.1.5+dfsg1`): exact for the releases from 23.0 to 29.1, the newest known one for a
/// later engine (a floor: a newer engine never vendors an older BuildKit), `None` for an
/// older engine or a version that cannot be read.
#[cfg(test)]
pub(crate) fn engine_buildkit(engine: &str) -> Option<Version> {
    let engine = loose_version(engine)?;
    let key = (engine.major, engine.minor);
    let (_, (major, minor)) = ENGINE_BUILDKIT
        .iter()
        .rev()
        .find(|(release, _)| *release <= key)?;
    Some(Version::new(*major, *minor, 0))
}

/// buildx's version, the builder's driver and BuildKit, and the engine's version where it
/// decides the BuildKit: read with [`BuilderVersions::read`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub(crate) struct BuilderVersions {
    /// The builder asked about (`None`: buildx's current one).
    pub(crate) builder: Option<String>,
    /// buildx's version (`docker buildx version`); `None` when it prints none that reads.
    pub(crate) buildx: Option<Version>,
    /// The builder's driver (`docker`, `docker-container`, `remote`, ...).
    pub(crate) driver: Option<String>,
    /// The BuildKit version the builder reports (`docker buildx inspect`); `None` for a
    /// build without version information (`v0.0.0+unknown`, Debian's engines).
    pub(crate) reported_buildkit: Option<Version>,
    /// The engine's version (`docker version`), asked only when it decides the BuildKit:
    /// the `docker` driver reporting none.
    pub(crate) engine: Option<String>,
}

impl BuilderVersions {
    /// Asks the builder (`self.builder`; `None`: the current one) for its driver and
    /// BuildKit version (`docker buildx inspect`, read-only).
    pub(crate) fn read_builder(&mut self, runner: &Runner) -> anyhow::Result<()> {
        let mut inspect = Cmd::new("docker").args(["buildx", "inspect"]).read_only();
        if let Some(name) = &self.builder {
            inspect = inspect.arg(name);
        }
        let out = runner
            .capture(&inspect)
            .context("cannot inspect the buildx builder")?;
        let (driver, version_text) = parse_inspect(&out.stdout);
        self.driver = driver;
        self.reported_buildkit = version_text.as_deref().and_then(loose_version);
        if self.reported_buildkit.is_none() && self.driver.as_deref() == Some("docker") {
            let out = runner
                .capture(
                    &Cmd::new("docker")
                        .args(["version", "--format", "{{.Server.Version}}"])
                        .read_only(),
                )
                .context("cannot ask the engine for its version")?;
            let engine = out.stdout.trim();
            self.engine = (!engine.is_empty()).then(|| engine.to_string());
        }
        Ok(())
    }

    /// The BuildKit the builder runs: the version it reports, else (the `docker` driver)
    /// the one its engine release vendors ([`engine_buildkit`]); `None` when neither is
    /// known.
    #[cfg(test)]
    pub(crate) fn buildkit(&self) -> Option<Version> {
        self.reported_buildkit.clone().or_else(|| {
            match (self.driver.as_deref(), self.engine.as_deref()) {
                (Some("docker"), Some(engine)) => engine_buildkit(engine),
                _ => None,
            }
        })
    }
}

/// `docker buildx version`, read (`None` when it prints no version that reads, or in a
/// dry run that may not ask).
pub(crate) fn buildx_version(runner: &Runner) -> anyhow::Result<Option<Version>> {
    Ok(crate::engine::buildx_reported(runner)?.and_then(|text| loose_version(&text)))
}

/// A version as buildx and BuildKit print them (`v0.13.2`, `0.13.1+ds1`, `26.1.5+dfsg1`,
/// `v0.20.0-rc1`): the leading `v` dropped, missing parts taken as 0. `None` for the
/// `v0.0.0+unknown` of a build without version information.
pub(crate) fn loose_version(text: &str) -> Option<Version> {
    let text = text.trim().trim_start_matches('v');
    let core: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = core
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    let version = Version::new(major, minor, patch);
    (version != Version::new(0, 0, 0)).then_some(version)
}

/// What `docker buildx inspect` says about a builder: its driver and its first node's
/// BuildKit version text (`BuildKit version:` in buildx 0.13+, `Buildkit:` before).
pub(crate) fn parse_inspect(text: &str) -> (Option<String>, Option<String>) {
    let field = |names: &[&str]| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            names
                .contains(&key.trim())
                .then(|| value.trim().to_string())
                .filter(|v| !v.is_empty())
        })
    };
    (
        field(&["Driver"]),
        field(&["BuildKit version", "BuildKit", "Buildkit"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_buildkit_is_read_from_its_release() {
        let v = |text: &str| engine_buildkit(text).map(|v| v.to_string());
        // The oldest supported engine (Debian trixie) and today's (Debian sid).
        assert_eq!(v("26.1.5+dfsg1").as_deref(), Some("0.13.0"));
        assert_eq!(v("28.5.2+dfsg4").as_deref(), Some("0.25.0"));
        assert_eq!(v("27.5.1").as_deref(), Some("0.18.0"));
        assert_eq!(v("28.0.4").as_deref(), Some("0.20.0"));
        assert_eq!(v("28.1.0").as_deref(), Some("0.21.0"));
        // Later than the table: at least the newest known.
        assert_eq!(v("31.2.0").as_deref(), Some("0.26.0"));
        // Older than the table, or unreadable: unknown.
        assert_eq!(v("20.10.24"), None);
        assert_eq!(v("dev"), None);
    }

    #[test]
    fn the_builders_buildkit_falls_back_to_the_engines() {
        let debian = BuilderVersions {
            driver: Some("docker".into()),
            engine: Some("28.5.2+dfsg4".into()),
            ..BuilderVersions::default()
        };
        assert_eq!(debian.buildkit(), Some(Version::new(0, 25, 0)));
        let reported = BuilderVersions {
            reported_buildkit: Some(Version::new(0, 13, 2)),
            ..debian.clone()
        };
        assert_eq!(reported.buildkit(), Some(Version::new(0, 13, 2)));
        // The engine's release says nothing about another driver's BuildKit.
        let container = BuilderVersions {
            driver: Some("docker-container".into()),
            ..debian
        };
        assert_eq!(container.buildkit(), None);
    }

    #[test]
    fn versions_are_read_as_the_tools_print_them() {
        assert_eq!(loose_version("0.13.1+ds1"), Some(Version::new(0, 13, 1)));
        assert_eq!(loose_version("v0.21.2"), Some(Version::new(0, 21, 2)));
        assert_eq!(loose_version("v0.0.0+unknown"), None);
        assert_eq!(loose_version("v0.20.0-rc1"), Some(Version::new(0, 20, 0)));
        assert_eq!(loose_version("26.1.5+dfsg1"), Some(Version::new(26, 1, 5)));
        assert_eq!(loose_version("garbage"), None);
        let inspect = "Name:          default\nDriver:        docker\nLast Activity: 2026-11-30 \
                       22:05:29 +0000 UTC\n\nNodes:\nName:             default\nEndpoint:  \
                       default\nStatus:           running\nBuildKit version: v0.0.0+unknown\n";
        assert_eq!(
            parse_inspect(inspect),
            (Some("docker".into()), Some("v0.0.0+unknown".into()))
        );
        assert_eq!(
            parse_inspect("Driver: docker-container\nBuildkit: v0.12.5\n"),
            (Some("docker-container".into()), Some("v0.12.5".into()))
        );
    }
}
