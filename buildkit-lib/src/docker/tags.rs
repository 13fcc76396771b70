//! Image tags derived from version and git, following docker/metadata-action's rules.
//!
//! Input is plain data (a [`semver::Version`], a commit, a branch), so the rules can be
//! tested without git or CI. Pre-releases only get their full version; `0.x` versions get
//! no `0` tag; `latest` goes only to a release built on the default branch.

use semver::Version;

/// Where the image is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagInput {
    /// The version being released, when this build is a release (a `v1.2.3` git tag).
    pub version: Option<Version>,
    /// The full or short commit id.
    pub sha: String,
    /// The branch built (`main`, `releases/v1`); `None` for a detached checkout.
    pub branch: Option<String>,
    /// The repository's default branch (`main`).
    pub default_branch: String,
}

/// When to add `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Latest {
    /// For a version that is not a pre-release, built on the default branch.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Which tags to produce. The default is metadata-action's common release set:
/// `{{version}}`, `{{major}}.{{minor}}`, `{{major}}`, the branch, `sha-<7>`, and `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRules {
    /// `{{version}}` (`1.2.3`, `2.0.8-beta.67`).
    pub version: bool,
    /// `{{major}}.{{minor}}` (`1.2`), not for pre-releases.
    pub major_minor: bool,
    /// `{{major}}` (`1`), not for pre-releases nor major version 0.
    pub major: bool,
    /// The sanitised branch name (`releases/v1` becomes `releases-v1`).
    pub branch: bool,
    /// `sha-` and the first 7 characters of the commit.
    pub sha: bool,
    /// When to add `latest`.
    pub latest: Latest,
    /// Put before every tag except `latest`.
    pub prefix: String,
    /// Put after every tag except `latest`.
    pub suffix: String,
}

impl Default for TagRules {
    fn default() -> Self {
        TagRules {
            version: true,
            major_minor: true,
            major: true,
            branch: true,
            sha: true,
            latest: Latest::Auto,
            prefix: String::new(),
            suffix: String::new(),
        }
    }
}

impl TagRules {
    /// The tags for `input`, in metadata-action's priority order (semver, branch, sha,
    /// then `latest`), without duplicates. Every tag is a valid docker tag.
    pub fn tags(&self, input: &TagInput) -> Vec<String> {
        let mut raw: Vec<String> = Vec::new();
        if let Some(v) = &input.version {
            let pre = !v.pre.is_empty();
            if self.version {
                let mut text = format!("{}.{}.{}", v.major, v.minor, v.patch);
                if pre {
                    text.push('-');
                    text.push_str(v.pre.as_str());
                }
                if !v.build.is_empty() {
                    text.push('+');
                    text.push_str(v.build.as_str());
                }
                raw.push(text);
            }
            if self.major_minor && !pre {
                raw.push(format!("{}.{}", v.major, v.minor));
            }
            if self.major && !pre && v.major != 0 {
                raw.push(v.major.to_string());
            }
        }
        if self.branch {
            if let Some(b) = &input.branch {
                raw.push(b.clone());
            }
        }
        if self.sha && !input.sha.is_empty() {
            raw.push(format!("sha-{}", &input.sha[..input.sha.len().min(7)]));
        }
        let mut out: Vec<String> = Vec::new();
        for tag in raw {
            let tag = sanitize(&format!("{}{tag}{}", self.prefix, self.suffix));
            if !tag.is_empty() && !out.contains(&tag) {
                out.push(tag);
            }
        }
        let latest = match self.latest {
            Latest::Always => true,
            Latest::Never => false,
            Latest::Auto => {
                input.version.as_ref().is_some_and(|v| v.pre.is_empty())
                    && input.branch.as_deref() == Some(input.default_branch.as_str())
            }
        };
        if latest && !out.iter().any(|t| t == "latest") {
            out.push("latest".to_string());
        }
        out
    }
}

/// Full references: every image name with every tag (`name/app:1.2.3`, ...), image by image.
pub fn references(images: &[&str], tags: &[String]) -> Vec<String> {
    images
        .iter()
        .flat_map(|image| tags.iter().map(move |t| format!("{image}:{t}")))
        .collect()
}

/// Makes any text a valid docker tag: characters outside `[A-Za-z0-9_.-]` become `-`
/// (runs collapse), a leading `.` or `-` is dropped, and it is cut at 128 characters.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_start_matches(['.', '-']);
    out.chars().take(super::reference::MAX_TAG_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(version: Option<&str>, branch: Option<&str>) -> TagInput {
        TagInput {
            version: version.map(|v| Version::parse(v).unwrap()),
            sha: "90dd6032fac8bda1b6c4436a2e65de27961ed071".into(),
            branch: branch.map(str::to_string),
            default_branch: "master".into(),
        }
    }

    fn semver_only() -> TagRules {
        TagRules {
            major: false,
            branch: false,
            sha: false,
            ..TagRules::default()
        }
    }

    // The tables of metadata-action's README ("Semver" usage, `type=semver`, `type=ref`,
    // `type=sha`, "Major version zero", and the bake example).
    #[test]
    fn metadata_action_readme_cases() {
        // push tag refs/tags/v1.2.3 with {{version}} and {{major}}.{{minor}}:
        // `1.2.3`, `1.2`, `latest`.
        assert_eq!(
            semver_only().tags(&input(Some("1.2.3"), Some("master"))),
            vec!["1.2.3", "1.2", "latest"]
        );
        // push tag refs/tags/v2.0.8-beta.67: only `2.0.8-beta.67`.
        assert_eq!(
            semver_only().tags(&input(Some("2.0.8-beta.67"), Some("master"))),
            vec!["2.0.8-beta.67"]
        );
        // pattern {{major}} of v1.2.3 is `1`.
        let major = TagRules {
            version: false,
            major_minor: false,
            branch: false,
            sha: false,
            latest: Latest::Never,
            ..TagRules::default()
        };
        assert_eq!(major.tags(&input(Some("1.2.3"), None)), vec!["1"]);
        // pattern v{{major}}: `v1` (prefix).
        let v_major = TagRules {
            prefix: "v".into(),
            ..major.clone()
        };
        assert_eq!(v_major.tags(&input(Some("1.2.3"), None)), vec!["v1"]);
        // Major version zero, refs/tags/v0.1.2: `0.1.2`, `0.1`, no `0`.
        let all_semver = TagRules {
            branch: false,
            sha: false,
            latest: Latest::Never,
            ..TagRules::default()
        };
        assert_eq!(
            all_semver.tags(&input(Some("0.1.2"), None)),
            vec!["0.1.2", "0.1"]
        );
        // type=ref,event=branch: refs/heads/master -> `master`,
        // refs/heads/releases/v1 -> `releases-v1`, refs/heads/my/branch -> `my-branch`.
        let branch = TagRules {
            sha: false,
            ..TagRules::default()
        };
        assert_eq!(branch.tags(&input(None, Some("master"))), vec!["master"]);
        assert_eq!(
            branch.tags(&input(None, Some("releases/v1"))),
            vec!["releases-v1"]
        );
        assert_eq!(
            branch.tags(&input(None, Some("my/branch"))),
            vec!["my-branch"]
        );
        // type=sha: `sha-90dd603`.
        let sha = TagRules {
            version: false,
            major_minor: false,
            major: false,
            branch: false,
            ..TagRules::default()
        };
        assert_eq!(sha.tags(&input(None, Some("master"))), vec!["sha-90dd603"]);
        // Bake example with refs/tags/v1.2.3: 1.2.3, 1.2, sha-90dd603, latest.
        let bake = TagRules {
            major: false,
            branch: false,
            ..TagRules::default()
        };
        assert_eq!(
            references(
                &["name/app"],
                &bake.tags(&input(Some("1.2.3"), Some("master")))
            ),
            vec![
                "name/app:1.2.3",
                "name/app:1.2",
                "name/app:sha-90dd603",
                "name/app:latest"
            ]
        );
    }

    #[test]
    fn latest_only_for_a_release_on_the_default_branch() {
        let rules = TagRules::default();
        assert_eq!(
            rules.tags(&input(Some("1.2.3"), Some("master"))),
            vec!["1.2.3", "1.2", "1", "master", "sha-90dd603", "latest"]
        );
        assert_eq!(
            rules.tags(&input(Some("1.2.3"), Some("dev"))),
            vec!["1.2.3", "1.2", "1", "dev", "sha-90dd603"]
        );
        assert_eq!(
            rules.tags(&input(None, Some("master"))),
            vec!["master", "sha-90dd603"]
        );
        assert_eq!(
            rules.tags(&input(Some("1.0.0-rc.1"), Some("master"))),
            vec!["1.0.0-rc.1", "master", "sha-90dd603"]
        );
        let always = TagRules {
            latest: Latest::Always,
            ..TagRules::default()
        };
        assert!(always
            .tags(&input(None, None))
            .ends_with(&["latest".to_string()]));
    }

    #[test]
    fn prefix_suffix_and_sanitising() {
        let rules = TagRules {
            prefix: "app-".into(),
            suffix: "-slim".into(),
            ..TagRules::default()
        };
        assert_eq!(
            rules.tags(&input(Some("0.9.2+build.7"), Some("master"))),
            vec![
                "app-0.9.2-build.7-slim",
                "app-0.9-slim",
                "app-master-slim",
                "app-sha-90dd603-slim",
                "latest"
            ]
        );
        assert_eq!(sanitize("feature/ÄÖ weird//name"), "feature-weird-name");
        assert_eq!(sanitize("-.lead"), "lead");
        assert_eq!(sanitize(&"x".repeat(200)).len(), 128);
        for t in rules.tags(&input(Some("1.2.3"), Some("feat/x y"))) {
            crate::docker::reference::check_tag(&t).unwrap();
        }
    }
}
