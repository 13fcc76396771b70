//! Semver bumps: major, minor, patch, pre-release and release.
//!
//! Every bump drops build metadata (`+...`). The rules for pre-releases are spelled out on
//! [`Bump`] so a release engineer can predict the next version without running anything.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use semver::{BuildMetadata, Prerelease, Version};

/// How to change a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bump {
    /// `1.2.3` → `2.0.0` (always increments major; `2.0.0-rc.1` → `3.0.0`: to publish
    /// `2.0.0` use [`Bump::Release`]).
    Major,
    /// `1.2.3` → `1.3.0` (always increments minor, pre-release dropped).
    Minor,
    /// `1.2.3` → `1.2.4` (always increments patch, pre-release dropped).
    Patch,
    /// Next pre-release: `1.2.4-rc.1` → `1.2.4-rc.2` (the last numeric identifier counts
    /// up; `1.2.4-beta` → `1.2.4-beta.1`). On a release version it starts the next patch's
    /// first release candidate: `1.2.3` → `1.2.4-rc.1`.
    Pre,
    /// Drops the pre-release: `1.2.4-rc.2` → `1.2.4`. An error on a version that has none.
    Release,
}

impl Bump {
    /// Every bump, in the order the command line lists them.
    pub(crate) const ALL: [Bump; 5] = [
        Bump::Major,
        Bump::Minor,
        Bump::Patch,
        Bump::Pre,
        Bump::Release,
    ];

    /// The name on the command line (`major`, `minor`, `patch`, `pre`, `release`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Bump::Major => "major",
            Bump::Minor => "minor",
            Bump::Patch => "patch",
            Bump::Pre => "pre",
            Bump::Release => "release",
        }
    }

    /// The next version after `current`.
    pub(crate) fn apply(self, current: &Version) -> Result<Version> {
        let mut next = current.clone();
        next.build = BuildMetadata::EMPTY;
        match self {
            Bump::Major => {
                next.major += 1;
                next.minor = 0;
                next.patch = 0;
                next.pre = Prerelease::EMPTY;
            }
            Bump::Minor => {
                next.minor += 1;
                next.patch = 0;
                next.pre = Prerelease::EMPTY;
            }
            Bump::Patch => {
                next.patch += 1;
                next.pre = Prerelease::EMPTY;
            }
            Bump::Pre if current.pre.is_empty() => {
                next.patch += 1;
                next.pre = Prerelease::new("rc.1").expect("valid pre-release");
            }
            Bump::Pre => next.pre = next_prerelease(&current.pre)?,
            Bump::Release => {
                if current.pre.is_empty() {
                    bail!(
                        "{current} is already a release (no pre-release to drop); \
                         use --bump patch, minor or major"
                    );
                }
                next.pre = Prerelease::EMPTY;
            }
        }
        Ok(next)
    }
}

fn next_prerelease(pre: &Prerelease) -> Result<Prerelease> {
    let mut parts: Vec<String> = pre.as_str().split('.').map(str::to_string).collect();
    let last = parts.last_mut().expect("split yields at least one part");
    match last.parse::<u64>() {
        Ok(n) => *last = (n + 1).to_string(),
        Err(_) => parts.push("1".to_string()),
    }
    let text = parts.join(".");
    Ok(Prerelease::new(&text).expect("numbers keep a pre-release valid"))
}

impl FromStr for Bump {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Bump> {
        match Bump::ALL.iter().find(|b| b.name() == text) {
            Some(bump) => Ok(*bump),
            None => {
                bail!("unknown bump {text:?} (expected one of: major, minor, patch, pre, release)")
            }
        }
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump(kind: &str, from: &str) -> String {
        let kind: Bump = kind.parse().unwrap();
        kind.apply(&Version::parse(from).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn bumps() {
        let cases = [
            ("major", "1.2.3", "2.0.0"),
            ("major", "2.0.0-rc.1", "3.0.0"),
            ("minor", "1.2.3", "1.3.0"),
            ("minor", "1.2.3-rc.1+build.5", "1.3.0"),
            ("patch", "1.2.3", "1.2.4"),
            ("patch", "0.9.2+abc", "0.9.3"),
            ("pre", "1.2.3", "1.2.4-rc.1"),
            ("pre", "1.2.4-rc.1", "1.2.4-rc.2"),
            ("pre", "1.2.4-rc.9", "1.2.4-rc.10"),
            ("pre", "1.2.4-beta", "1.2.4-beta.1"),
            ("pre", "1.2.4-alpha.1.x", "1.2.4-alpha.1.x.1"),
            ("pre", "1.2.4-7", "1.2.4-8"),
            ("release", "1.2.4-rc.2", "1.2.4"),
            ("release", "1.2.4-rc.2+b", "1.2.4"),
        ];
        for (kind, from, to) in cases {
            assert_eq!(bump(kind, from), to, "{kind} on {from}");
        }
    }

    #[test]
    fn release_of_a_release_is_an_error() {
        let err = Bump::Release
            .apply(&Version::parse("1.2.3").unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "1.2.3 is already a release (no pre-release to drop); use --bump patch, minor or major"
        );
    }

    #[test]
    fn parses_names() {
        for bump in Bump::ALL {
            assert_eq!(bump.name().parse::<Bump>().unwrap(), bump);
            assert_eq!(bump.to_string(), bump.name());
        }
        assert_eq!(
            "prerelease".parse::<Bump>().unwrap_err().to_string(),
            "unknown bump \"prerelease\" (expected one of: major, minor, patch, pre, release)"
        );
    }
}
