//! The CHANGELOG side of a release, for files in the "Keep a Changelog" layout.
//!
//! Releasing moves the entries under `## [Unreleased]` into a new `## [X.Y.Z] - YYYY-MM-DD`
//! section right below a fresh, empty Unreleased heading, and updates the compare links
//! at the bottom when the file has them. Everything else stays as written.

use std::path::Path;

use anyhow::{bail, Result};
use semver::Version;

/// The CHANGELOG text after releasing `version` (bumped from `previous`) on `date`
/// (`YYYY-MM-DD`). `path` is only named in errors: no Unreleased section, a section for
/// `version` already there, or an empty Unreleased section. Empty is fine only when a
/// pre-release becomes its release (`1.2.0-rc.2` → `1.2.0`, whose notes went to the
/// pre-release sections): the new section then says "No changes since 1.2.0-rc.2."
pub(crate) fn release_changelog(
    path: &Path,
    text: &str,
    previous: &Version,
    version: &Version,
    date: &str,
) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let shown = path.display();
    let Some(head) = lines.iter().position(|l| is_unreleased_heading(l)) else {
        bail!(
            "{shown} has no \"## [Unreleased]\" section (add one at the top, listing what \
             changed since the last release)"
        );
    };
    if lines.iter().any(|l| is_version_heading(l, version)) {
        bail!("{shown} already has a section for {version} (was it released before?)");
    }
    let end = (head + 1..lines.len())
        .find(|&i| lines[i].starts_with("## ") || is_link_definition(lines[i]))
        .unwrap_or(lines.len());
    let mut body: Vec<String> = trim_blank(&lines[head + 1..end])
        .iter()
        .map(|l| l.to_string())
        .collect();
    if body.is_empty() && is_promotion(previous, version) {
        body.push(format!("No changes since {previous}."));
    }
    if body.is_empty() {
        bail!(
            "the \"## [Unreleased]\" section of {shown} is empty: nothing to release (list \
             the changes there, then run again)"
        );
    }
    let heading = format!("## [{version}] - {date}");
    let mut out: Vec<String> = lines[..=head].iter().map(|l| l.to_string()).collect();
    out.push(String::new());
    out.push(heading);
    out.push(String::new());
    out.extend(body);
    if end < lines.len() {
        out.push(String::new());
        for line in &lines[end..] {
            out.push(line.to_string());
            if let Some(released) = released_link(line, version) {
                out.pop();
                out.extend(released);
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// `1.2.0-rc.2` → `1.2.0`.
fn is_promotion(previous: &Version, version: &Version) -> bool {
    !previous.pre.is_empty()
        && version.pre.is_empty()
        && (previous.major, previous.minor, previous.patch)
            == (version.major, version.minor, version.patch)
}

/// `## [Unreleased]` or `## Unreleased`, any case.
fn is_unreleased_heading(line: &str) -> bool {
    line.strip_prefix("## ")
        .map(|t| t.trim().trim_start_matches('[').trim_end_matches(']'))
        .is_some_and(|t| t.eq_ignore_ascii_case("unreleased"))
}

/// `## [1.2.3]...` or `## 1.2.3...` for this version.
fn is_version_heading(line: &str, version: &Version) -> bool {
    let Some(rest) = line.strip_prefix("## ") else {
        return false;
    };
    let rest = rest.trim_start_matches('[').trim_start_matches('v');
    let version = version.to_string();
    rest.strip_prefix(&version)
        .is_some_and(|after| after.is_empty() || after.starts_with([']', ' ']))
}

/// A Markdown link reference definition, `[label]: url`, as the compare links at the end.
fn is_link_definition(line: &str) -> bool {
    line.starts_with('[') && line.contains("]: ")
}

/// `[Unreleased]: <base>compare/<previous>...HEAD` becomes the Unreleased link from the
/// new tag plus a link for the new version; other lines are left alone (`None`).
fn released_link(line: &str, version: &Version) -> Option<[String; 2]> {
    let (label, url) = line.split_once("]: ")?;
    if !label
        .trim_start_matches('[')
        .eq_ignore_ascii_case("unreleased")
    {
        return None;
    }
    let (base, range) = url.trim().rsplit_once("compare/")?;
    let previous = range.strip_suffix("...HEAD")?;
    Some([
        format!("{label}]: {base}compare/v{version}...HEAD"),
        format!("[{version}]: {base}compare/{previous}...v{version}"),
    ])
}

fn trim_blank<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |i| i + 1);
    &lines[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# Changelog\n\
        \n\
        All notable changes to this project are documented here.\n\
        \n\
        ## [Unreleased]\n\
        \n\
        ### Added\n\
        - Genre pages.\n\
        \n\
        ### Fixed\n\
        - Thumbnails on Safari.\n\
        \n\
        ## [0.9.2] - 2025-01-01\n\
        \n\
        ### Added\n\
        - MvTV.\n\
        \n\
        [Unreleased]: https://example.com/o/r/compare/v0.9.2...HEAD\n\
        [0.9.2]: https://example.com/o/r/compare/v0.9.1...v0.9.2\n";

    fn release(text: &str, version: &str) -> Result<String> {
        release_from(text, "0.9.2", version)
    }

    fn release_from(text: &str, previous: &str, version: &str) -> Result<String> {
        let previous = Version::parse(previous).unwrap();
        let version = Version::parse(version).unwrap();
        release_changelog(
            Path::new("CHANGELOG.md"),
            text,
            &previous,
            &version,
            "2026-11-21",
        )
    }

    #[test]
    fn moves_unreleased_under_the_new_version() {
        assert_eq!(
            release(BEFORE, "0.10.0").unwrap(),
            "# Changelog\n\
             \n\
             All notable changes to this project are documented here.\n\
             \n\
             ## [Unreleased]\n\
             \n\
             ## [0.10.0] - 2026-11-21\n\
             \n\
             ### Added\n\
             - Genre pages.\n\
             \n\
             ### Fixed\n\
             - Thumbnails on Safari.\n\
             \n\
             ## [0.9.2] - 2025-01-01\n\
             \n\
             ### Added\n\
             - MvTV.\n\
             \n\
             [Unreleased]: https://example.com/o/r/compare/v0.10.0...HEAD\n\
             [0.10.0]: https://example.com/o/r/compare/v0.9.2...v0.10.0\n\
             [0.9.2]: https://example.com/o/r/compare/v0.9.1...v0.9.2\n"
        );
    }

    #[test]
    fn first_release_without_older_sections_or_links() {
        let text = "# Changelog\n\n## Unreleased\n- First.\n";
        assert_eq!(
            release(text, "0.1.0").unwrap(),
            "# Changelog\n\n## Unreleased\n\n## [0.1.0] - 2026-11-21\n\n- First.\n"
        );
    }

    #[test]
    fn promoting_a_pre_release_needs_no_new_entries() {
        let text = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0-rc.2] - 2025-01-01\n- x\n";
        assert_eq!(
            release_from(text, "1.0.0-rc.2", "1.0.0").unwrap(),
            "# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-11-21\n\n\
             No changes since 1.0.0-rc.2.\n\n## [1.0.0-rc.2] - 2025-01-01\n- x\n"
        );
    }

    #[test]
    fn errors() {
        let missing = release("# Changelog\n\n## [0.9.2] - 2025-01-01\n- x\n", "1.0.0");
        assert_eq!(
            missing.unwrap_err().to_string(),
            "CHANGELOG.md has no \"## [Unreleased]\" section (add one at the top, listing \
             what changed since the last release)"
        );
        let empty = release(
            "# Changelog\n\n## [Unreleased]\n\n\n## [0.9.2] - 2025-01-01\n",
            "1.0.0",
        );
        assert_eq!(
            empty.unwrap_err().to_string(),
            "the \"## [Unreleased]\" section of CHANGELOG.md is empty: nothing to release \
             (list the changes there, then run again)"
        );
        // An empty section is refused between pre-releases too.
        let empty = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0-rc.1] - 2025-01-01\n- x\n";
        assert!(release_from(empty, "1.0.0-rc.1", "1.0.0-rc.2").is_err());
        assert_eq!(
            release(BEFORE, "0.9.2").unwrap_err().to_string(),
            "CHANGELOG.md already has a section for 0.9.2 (was it released before?)"
        );
        // 0.9.20 is not 0.9.2.
        assert!(release(&BEFORE.replace("0.9.2]", "0.9.20]"), "0.9.2").is_ok());
    }
}
