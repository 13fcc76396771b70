//! Name selectors for resources that carry no labels: container name prefixes and image
//! patterns, matched on our side, anchored, on whole names.
//!
//! Docker's own `--filter name=` is an unanchored regular expression (`app` also selects
//! `myapp_1`), and `grep` on `docker ps` output is a substring match: neither is used.

use std::fmt;

use anyhow::{bail, Result};

/// Characters a container name prefix must end with, so that it stops at a word boundary.
const SEPARATORS: [char; 3] = ['_', '-', '.'];

/// A container name prefix, such as `app_`: matches a container whose whole name starts
/// with it (`app_1`, `app_ci`) and nothing else (`myapp_1`, `xapp_1`, `app-2`,
/// `application`).
///
/// It must end with `_`, `-` or `.`: a bare word such as `radarr` would also select
/// `radarr-4k`. To select one container, give its whole name as the prefix's
/// [`NamePrefix::exact`] form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePrefix {
    text: String,
    exact: bool,
}

impl NamePrefix {
    /// A prefix; fails unless it is a non-empty container name ending with `_`, `-` or `.`.
    pub fn new(prefix: &str) -> Result<NamePrefix> {
        check_name_chars(prefix, "container name prefix")?;
        if !prefix.ends_with(SEPARATORS) {
            bail!(
                "container name prefix `{prefix}` does not end with `_`, `-` or `.`: it would \
                 also select names that merely start with the same letters (`{prefix}x`); \
                 write `{prefix}_` (or the separator your names use), or select the exact name"
            );
        }
        Ok(NamePrefix {
            text: prefix.to_string(),
            exact: false,
        })
    }

    #[cfg(test)]
    /// One whole container name, matched exactly.
    pub(crate) fn exact(name: &str) -> Result<NamePrefix> {
        check_name_chars(name, "container name")?;
        Ok(NamePrefix {
            text: name.to_string(),
            exact: true,
        })
    }

    /// Whether the container named `name` (with or without docker's leading `/`) matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name = name.strip_prefix('/').unwrap_or(name);
        if self.exact {
            name == self.text
        } else {
            name.len() > self.text.len() && name.starts_with(&self.text)
        }
    }
}

impl fmt::Display for NamePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exact {
            write!(f, "name {}", self.text)
        } else {
            write!(f, "name prefix {}", self.text)
        }
    }
}

fn check_name_chars(text: &str, what: &str) -> Result<()> {
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SEPARATORS.contains(&c));
    if !first_ok || !rest_ok {
        bail!(
            "{what} `{text}` is not a container name: use letters, digits, `_`, `-` and `.`, \
             starting with a letter or digit (no wildcards or regular expressions)"
        );
    }
    Ok(())
}

/// An image selector, compared with the `REPOSITORY` and `TAG` that `docker image ls`
/// shows:
///
/// - `app` selects every tag of the repository named exactly `app` (`app:ci`, `app:1.0`),
///   not `app-tools:1`, not `other/app:ci`, not `registry:5000/app:ci`;
/// - `app:ci` selects that one reference;
/// - `app:ci-*` selects the tags of `app` that start with `ci-` (a `*` is allowed only
///   at the end of the tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImagePattern {
    repository: String,
    tag: TagMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TagMatch {
    Any,
    Exact(String),
    Prefix(String),
}

impl ImagePattern {
    /// Parses `repo`, `repo:tag` or `repo:tag-prefix*`.
    pub fn new(pattern: &str) -> Result<ImagePattern> {
        // The tag separator is a `:` after the last `/` (a registry host may carry a port).
        let slash = pattern.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match pattern[slash..].find(':') {
            Some(i) => (&pattern[..slash + i], Some(&pattern[slash + i + 1..])),
            None => (pattern, None),
        };
        let repo_ok = !repository.is_empty()
            && !repository.starts_with('/')
            && !repository.ends_with('/')
            && repository
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
        if !repo_ok {
            bail!(
                "image pattern `{pattern}` has no valid repository name: write `repo`, \
                 `repo:tag` or `repo:tag-prefix*` (lower-case; no wildcards in the repository)"
            );
        }
        let tag = match tag {
            None => TagMatch::Any,
            Some(tag) => {
                let (body, prefix) = match tag.strip_suffix('*') {
                    Some(body) => (body, true),
                    None => (tag, false),
                };
                let tag_ok = body
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    && (prefix || !body.is_empty());
                if !tag_ok {
                    bail!(
                        "image pattern `{pattern}` has an invalid tag: use letters, digits, \
                         `.`, `_` and `-`, with at most one `*` at the end"
                    );
                }
                if prefix {
                    TagMatch::Prefix(body.to_string())
                } else {
                    TagMatch::Exact(body.to_string())
                }
            }
        };
        Ok(ImagePattern {
            repository: repository.to_string(),
            tag,
        })
    }

    /// Whether the image reference `repository:tag` matches (`<none>` never does).
    pub(crate) fn matches(&self, repository: &str, tag: &str) -> bool {
        if repository != self.repository || tag == "<none>" || tag.is_empty() {
            return false;
        }
        match &self.tag {
            TagMatch::Any => true,
            TagMatch::Exact(t) => tag == t,
            TagMatch::Prefix(p) => tag.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            TagMatch::Any => write!(f, "image {}", self.repository),
            TagMatch::Exact(t) => write!(f, "image {}:{t}", self.repository),
            TagMatch::Prefix(p) => write!(f, "image {}:{p}*", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_anchored_on_whole_names() {
        let p = NamePrefix::new("app_").unwrap();
        let names = [
            "app_1",
            "app_ci",
            "myapp_1",
            "app-2",
            "xapp_1",
            "application",
            "app_",
        ];
        let selected: Vec<&str> = names.into_iter().filter(|n| p.matches(n)).collect();
        assert_eq!(selected, ["app_1", "app_ci"]);
        assert!(p.matches("/app_1"));
    }

    #[test]
    fn exact_name_matches_only_itself() {
        let p = NamePrefix::exact("radarr").unwrap();
        assert!(p.matches("radarr"));
        assert!(!p.matches("radarr-4k"));
    }

    #[test]
    fn refuses_prefixes_that_are_not_anchored_words() {
        assert_eq!(
            NamePrefix::new("radarr").unwrap_err().to_string(),
            "container name prefix `radarr` does not end with `_`, `-` or `.`: it would also \
             select names that merely start with the same letters (`radarrx`); write \
             `radarr_` (or the separator your names use), or select the exact name"
        );
        assert_eq!(
            NamePrefix::new("app.*_").unwrap_err().to_string(),
            "container name prefix `app.*_` is not a container name: use letters, digits, \
             `_`, `-` and `.`, starting with a letter or digit (no wildcards or regular \
             expressions)"
        );
        assert!(NamePrefix::new("").is_err());
        assert!(NamePrefix::new("_").is_err());
    }

    #[test]
    fn image_repository_matches_exactly() {
        let p = ImagePattern::new("app").unwrap();
        assert!(p.matches("app", "ci"));
        assert!(p.matches("app", "1.0"));
        assert!(!p.matches("app-tools", "1"));
        assert!(!p.matches("other/app", "ci"));
        assert!(!p.matches("127.0.0.1:5000/app", "ci"));
        assert!(!p.matches("app", "<none>"));
    }

    #[test]
    fn image_tags_exact_and_prefix() {
        let exact = ImagePattern::new("app:ci").unwrap();
        assert!(exact.matches("app", "ci"));
        assert!(!exact.matches("app", "ci-2"));
        let prefix = ImagePattern::new("app:ci-*").unwrap();
        assert!(prefix.matches("app", "ci-2"));
        assert!(!prefix.matches("app", "ci"));
        let registry = ImagePattern::new("127.0.0.1:5000/app:1.*").unwrap();
        assert!(registry.matches("127.0.0.1:5000/app", "1.2"));
        assert!(!registry.matches("app", "1.2"));
        assert_eq!(registry.to_string(), "image 127.0.0.1:5000/app:1.*");
        let host_port_only = ImagePattern::new("127.0.0.1:5000/app").unwrap();
        assert!(host_port_only.matches("127.0.0.1:5000/app", "latest"));
    }

    #[test]
    fn refuses_wildcards_in_repositories() {
        assert_eq!(
            ImagePattern::new("app*").unwrap_err().to_string(),
            "image pattern `app*` has no valid repository name: write `repo`, `repo:tag` or \
             `repo:tag-prefix*` (lower-case; no wildcards in the repository)"
        );
        assert!(ImagePattern::new("app:").is_err());
        assert!(ImagePattern::new("app:c*i").is_err());
        assert!(ImagePattern::new("").is_err());
    }
}
