//! Image tags derived from version and git, following docker/metadata-action's rules.
//!
//! Which tags each kind of version gets, and how PEP 440 versions are read, is documented
//! for users on [`TagRules`].

use semver::Version;

/// Where the image is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TagInput {
    /// The version being released, when this build is a release (a `v1.2.3` git tag).
    pub(crate) version: Option<Version>,
    /// The full or short commit id.
    pub(crate) sha: String,
    /// The branch built (`main`, `releases/v1`); `None` for a detached checkout.
    pub(crate) branch: Option<String>,
    /// The repository's default branch (`main`).
    pub(crate) default_branch: String,
}

/// When to add `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Latest {
    /// For a version that is not a pre-release, built on the default branch.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Which tags to produce, from a semver release ([`TagRules::tags`]) or a PEP 440 one
/// ([`TagRules::pep440_tags`]), following metadata-action's `type=semver`, `type=pep440`,
/// `type=ref,event=branch` and `type=sha` rules.
///
/// The default is metadata-action's common release set: the patterns `{{version}}`,
/// `{{major}}.{{minor}}` and `{{major}}`, the branch, `sha-<7>`, and `latest`.
/// [`TagRules::pattern`] replaces the version patterns with your own.
///
/// # Rules
///
/// Input is plain data (a [`semver::Version`], a commit, a branch), so the rules can be
/// tested without git or CI. Pre-releases only get their full version; `0.x` versions get
/// no `0` tag; `latest` goes only to a release built on the default branch.
///
/// Python projects version by PEP 440 (`1.2.3rc1`, `1.2.3.post1`, `1.2.3.dev4`), which
/// semver cannot read: [`TagRules::pep440_tags`] parses and normalizes such versions and
/// renders metadata-action's `type=pep440,pattern=...` tags from them.
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::TagRules;
///
/// let rules = TagRules::new();
/// assert_eq!(rules.pep440_tags("v1.2.3").unwrap(), ["1.2.3", "1.2", "1", "latest"]);
/// // Pre-, post- and development releases get their full version only.
/// assert_eq!(rules.pep440_tags("1.2.3rc1").unwrap(), ["1.2.3rc1"]);
/// let minor = TagRules::new().pattern("v{{major}}.{{minor}}");
/// assert_eq!(minor.pep440_tags("1.2.3").unwrap(), ["v1.2", "latest"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TagRules {
    /// The version patterns (`{{version}}`, `{{major}}.{{minor}}`, ...), in order.
    pub(crate) patterns: Vec<String>,
    /// Whether [`TagRules::pattern`] was called (the defaults are replaced).
    pub(crate) own_patterns: bool,
    /// The sanitised branch name (`releases/v1` becomes `releases-v1`).
    pub(crate) branch: bool,
    /// `sha-` and the first 7 characters of the commit.
    pub(crate) sha: bool,
    /// When to add `latest`.
    pub(crate) latest: Latest,
    /// Put before every tag except `latest`.
    pub(crate) prefix: String,
    /// Put after every tag except `latest`.
    pub(crate) suffix: String,
}

impl Default for TagRules {
    fn default() -> Self {
        TagRules {
            patterns: ["{{version}}", "{{major}}.{{minor}}", "{{major}}"]
                .map(String::from)
                .to_vec(),
            own_patterns: false,
            branch: true,
            sha: true,
            latest: Latest::Auto,
            prefix: String::new(),
            suffix: String::new(),
        }
    }
}

impl TagRules {
    /// The default rules (see [`TagRules`]), to change with the setters below.
    pub fn new() -> TagRules {
        TagRules::default()
    }

    /// Adds a version pattern (`{{version}}`, `{{major}}.{{minor}}`, `v{{major}}`, and for
    /// PEP 440 `{{raw}}`); the first call replaces the default ones.
    pub fn pattern(mut self, pattern: impl Into<String>) -> TagRules {
        if !self.own_patterns {
            self.patterns.clear();
            self.own_patterns = true;
        }
        self.patterns.push(pattern.into());
        self
    }

    /// Always (`true`) or never (`false`) add `latest`. Without it, `latest` goes to a
    /// final release, on the default branch
    /// when the branch is known, as metadata-action's `flavor: latest=auto` does).
    pub fn latest(mut self, on: bool) -> TagRules {
        self.latest = if on { Latest::Always } else { Latest::Never };
        self
    }

    /// Put `prefix` before and `suffix` after every tag except `latest` (metadata-action's
    /// `flavor: prefix=...,suffix=...`; either may be empty).
    pub fn flavor(mut self, prefix: impl Into<String>, suffix: impl Into<String>) -> TagRules {
        self.prefix = prefix.into();
        self.suffix = suffix.into();
        self
    }

    /// The tags for a build of commit `sha` on `branch` (`None` for a detached checkout)
    /// of a repository whose default branch is `default_branch`, with `version` when the
    /// build is a release (a `v1.2.3` git tag); in metadata-action's priority order (the
    /// version patterns, branch, sha, then `latest`), without duplicates. A pre-release
    /// gets its full version only; `{{major}}` alone gives no `0` tag. Every tag is a
    /// valid docker tag. Prefix each with the image name for full references
    /// (`name/app:1.2.3`).
    pub fn tags(
        &self,
        version: Option<&Version>,
        sha: &str,
        branch: Option<&str>,
        default_branch: &str,
    ) -> Vec<String> {
        self.tags_of(&TagInput {
            version: version.cloned(),
            sha: sha.to_string(),
            branch: branch.map(str::to_string),
            default_branch: default_branch.to_string(),
        })
    }

    /// [`TagRules::tags`] of one input.
    pub(crate) fn tags_of(&self, input: &TagInput) -> Vec<String> {
        let mut raw: Vec<String> = Vec::new();
        if let Some(v) = &input.version {
            raw.extend(self.patterns.iter().filter_map(|p| semver_tag(p, v)));
        }
        if self.branch {
            if let Some(b) = &input.branch {
                raw.push(b.clone());
            }
        }
        if self.sha && !input.sha.is_empty() {
            raw.push(format!("sha-{}", &input.sha[..input.sha.len().min(7)]));
        }
        let latest = input.version.as_ref().is_some_and(|v| v.pre.is_empty())
            && input.branch.as_deref() == Some(input.default_branch.as_str());
        self.finish(raw, latest)
    }

    /// The tags for a PEP 440 version `raw` (a git tag such as `v1.2.3rc1`), following
    /// metadata-action's `type=pep440`: the version patterns in order, without
    /// duplicates, then `latest` (no branch or sha tags: there is no commit here). A pre-,
    /// post- or development release renders its full version whatever the pattern. A
    /// version or pattern that cannot be used is an error saying what is wrong.
    pub fn pep440_tags(&self, raw: &str) -> anyhow::Result<Vec<String>> {
        let version = Pep440::parse(raw)?;
        let tags = self
            .patterns
            .iter()
            .map(|pattern| pep440_tag(pattern, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.finish(tags, version.is_final()))
    }

    /// Prefix, suffix, sanitising and duplicates, then `latest` (`auto` says whether
    /// the default rule adds it).
    fn finish(&self, raw: Vec<String>, auto: bool) -> Vec<String> {
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
            Latest::Auto => auto,
        };
        if latest && !out.iter().any(|t| t == "latest") {
            out.push("latest".to_string());
        }
        out
    }
}

/// Renders one metadata-action `type=semver` pattern for `v`: `{{version}}` (with its
/// pre-release and build parts), `{{major}}`, `{{minor}}`, `{{patch}}` (an unknown or
/// unclosed expression is kept as written). A pre-release renders its full version
/// whatever the pattern; `{{major}}` with no other expression gives nothing for major
/// version 0.
fn semver_tag(pattern: &str, v: &Version) -> Option<String> {
    let mut full = format!("{}.{}.{}", v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        full.push('-');
        full.push_str(v.pre.as_str());
    }
    if !v.build.is_empty() {
        full.push('+');
        full.push_str(v.build.as_str());
    }
    if !v.pre.is_empty() {
        return Some(full);
    }
    let mut out = String::new();
    let mut rest = pattern;
    let mut names = Vec::new();
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = after[..close].trim();
        out.push_str(&match name {
            "version" | "raw" => full.clone(),
            "major" => v.major.to_string(),
            "minor" => v.minor.to_string(),
            "patch" => v.patch.to_string(),
            _ => rest[open..open + close + 4].to_string(),
        });
        names.push(name.to_string());
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    (!(names == ["major"] && v.major == 0)).then_some(out)
}

/// Full references: every image name with every tag (`name/app:1.2.3`, ...), image by image.
#[cfg(test)]
pub(crate) fn references(images: &[&str], tags: &[String]) -> Vec<String> {
    images
        .iter()
        .flat_map(|image| tags.iter().map(move |t| format!("{image}:{t}")))
        .collect()
}

/// Makes any text a valid docker tag: characters outside `[A-Za-z0-9_.-]` become `-`
/// (runs collapse), a leading `.` or `-` is dropped, and it is cut at 128 characters.
pub(crate) fn sanitize(text: &str) -> String {
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

/// A PEP 440 version: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`.
///
/// [`Pep440::parse`] accepts every spelling PEP 440 normalizes (a leading `v`, any case,
/// `-`, `_` or `.` separators, `alpha`/`beta`/`c`/`pre`/`preview`, `rev`/`r` and `-N`
/// for post-releases, omitted numbers as 0); `Display` writes the normalized form
/// (`1.0-ALPHA.1` is `1.0a1`, `1.2.3post1` is `1.2.3.post1`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Pep440 {
    /// The epoch (`1!` in `1!2.0`), 0 when absent.
    pub(crate) epoch: u64,
    /// The release numbers (`[1, 2, 3]`), at least one.
    pub(crate) release: Vec<u64>,
    /// The pre-release phase and number (`rc1`).
    pub(crate) pre: Option<(PrePhase, u64)>,
    /// The post-release number (`.post1`).
    pub(crate) post: Option<u64>,
    /// The development release number (`.dev4`).
    pub(crate) dev: Option<u64>,
    /// The local version label, normalized with `.` (`ubuntu.1`).
    pub(crate) local: Option<String>,
}

/// A PEP 440 pre-release phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum PrePhase {
    /// `a` (also spelled `alpha`).
    Alpha,
    /// `b` (also spelled `beta`).
    Beta,
    /// `rc` (also spelled `c`, `pre`, `preview`).
    Rc,
}

impl PrePhase {
    /// The normalized spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PrePhase::Alpha => "a",
            PrePhase::Beta => "b",
            PrePhase::Rc => "rc",
        }
    }
}

/// A version or tag pattern that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pep440Error {
    /// The text given.
    pub(crate) input: String,
    /// What is wrong and what would do.
    pub(crate) problem: String,
}

impl std::fmt::Display for Pep440Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.input, self.problem)
    }
}

impl std::error::Error for Pep440Error {}

/// Reads `[sep]word[sep][digits]` at the start of `rest`, for the first of `words` that
/// matches; returns the word's index, the number (None when omitted) and what follows.
fn segment<'a>(rest: &'a str, words: &[&str]) -> Option<(usize, Option<u64>, &'a str)> {
    let body = rest.strip_prefix(['.', '-', '_']).unwrap_or(rest);
    let (index, after) = words
        .iter()
        .enumerate()
        .find_map(|(i, w)| body.strip_prefix(w).map(|after| (i, after)))?;
    let digits_at = after.strip_prefix(['.', '-', '_']).unwrap_or(after);
    let len = digits_at.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return Some((index, None, after));
    }
    let number = digits_at[..len].parse().ok()?;
    Some((index, Some(number), &digits_at[len..]))
}

impl Pep440 {
    /// Parses `text` as PEP 440 (see the type's docs for the spellings accepted).
    pub(crate) fn parse(text: &str) -> Result<Pep440, Pep440Error> {
        let fail = |problem: &str| Pep440Error {
            input: text.to_string(),
            problem: problem.to_string(),
        };
        let lower = text.trim().to_ascii_lowercase();
        let mut rest = lower.strip_prefix('v').unwrap_or(&lower);
        let number = |s: &str| -> Option<(u64, usize)> {
            let len = s.bytes().take_while(u8::is_ascii_digit).count();
            (len > 0).then(|| s[..len].parse().ok().map(|n| (n, len)))?
        };
        let mut epoch = 0;
        if let Some((n, len)) = number(rest) {
            if rest[len..].starts_with('!') {
                epoch = n;
                rest = &rest[len + 1..];
            }
        }
        let mut release = Vec::new();
        loop {
            let Some((n, len)) = number(rest) else {
                return Err(fail(
                    "not a PEP 440 version: a version starts with release numbers such as \
                     `1.2.3`, then optionally `rc1`, `.post1`, `.dev4` or `+local`",
                ));
            };
            release.push(n);
            rest = &rest[len..];
            match rest.strip_prefix('.') {
                Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
                _ => break,
            }
        }
        let mut version = Pep440 {
            epoch,
            release,
            pre: None,
            post: None,
            dev: None,
            local: None,
        };
        let phases = ["preview", "alpha", "beta", "pre", "rc", "a", "b", "c"];
        if let Some((i, n, after)) = segment(rest, &phases) {
            let phase = match phases[i] {
                "alpha" | "a" => PrePhase::Alpha,
                "beta" | "b" => PrePhase::Beta,
                _ => PrePhase::Rc,
            };
            version.pre = Some((phase, n.unwrap_or(0)));
            rest = after;
        }
        if let Some(after) = rest
            .strip_prefix('-')
            .filter(|a| a.starts_with(|c: char| c.is_ascii_digit()))
        {
            let (n, len) = number(after).ok_or_else(|| fail("post-release number too large"))?;
            version.post = Some(n);
            rest = &after[len..];
        } else if let Some((_, n, after)) = segment(rest, &["post", "rev", "r"]) {
            version.post = Some(n.unwrap_or(0));
            rest = after;
        }
        if let Some((_, n, after)) = segment(rest, &["dev"]) {
            version.dev = Some(n.unwrap_or(0));
            rest = after;
        }
        if let Some(local) = rest.strip_prefix('+') {
            let parts: Vec<&str> = local.split(['.', '-', '_']).collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err(fail(
                    "the local version label after `+` takes letters and digits separated by \
                     `.`, `-` or `_`",
                ));
            }
            version.local = Some(parts.join("."));
            rest = "";
        }
        if !rest.is_empty() {
            return Err(fail(&format!(
                "not a PEP 440 version: `{rest}` is left over after `{version}`; PEP 440 \
                 allows only `aN`, `bN`, `rcN`, `.postN`, `.devN` and `+local` after the \
                 release numbers"
            )));
        }
        Ok(version)
    }

    /// A pre-release (`a`, `b`, `rc`) or a development release (`.dev`).
    #[cfg(test)]
    pub(crate) fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// A final release: no pre-release, post-release or development part.
    pub(crate) fn is_final(&self) -> bool {
        self.pre.is_none() && self.post.is_none() && self.dev.is_none()
    }

    /// The release number at `index` (`0` major, `1` minor, `2` patch), 0 when the
    /// version has fewer.
    pub(crate) fn part(&self, index: usize) -> u64 {
        self.release.get(index).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Pep440 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let release: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&release.join("."))?;
        if let Some((phase, n)) = self.pre {
            write!(f, "{}{n}", phase.as_str())?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{n}")?;
        }
        if let Some(local) = &self.local {
            write!(f, "+{local}")?;
        }
        Ok(())
    }
}

/// Renders one metadata-action `type=pep440` pattern for the version `raw` (a git tag
/// such as `v1.2.3rc1`): `{{raw}}` (as given), `{{version}}` (normalized), `{{major}}`,
/// `{{minor}}`, `{{patch}}`. A pre-, post- or development release renders its full
/// version whatever the pattern (its raw text when the pattern names `{{raw}}`): such
/// versions never get `1` or `1.2` tags. The result is a valid docker tag (`sanitize`).
pub(crate) fn pep440_tag(pattern: &str, raw: &str) -> Result<String, Pep440Error> {
    let version = Pep440::parse(raw)?;
    let mut out = String::new();
    let mut rest = pattern;
    let mut names_raw = false;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| Pep440Error {
            input: pattern.to_string(),
            problem: "a `{{` is not closed by `}}`".into(),
        })?;
        let value = match after[..close].trim() {
            "raw" => {
                names_raw = true;
                raw.to_string()
            }
            "version" => version.to_string(),
            "major" => version.part(0).to_string(),
            "minor" => version.part(1).to_string(),
            "patch" => version.part(2).to_string(),
            other => {
                return Err(Pep440Error {
                    input: pattern.to_string(),
                    problem: format!(
                        "`{{{{{other}}}}}` is not a pep440 expression; use {{{{raw}}}}, \
                         {{{{version}}}}, {{{{major}}}}, {{{{minor}}}} or {{{{patch}}}}"
                    ),
                })
            }
        };
        out.push_str(&value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if !version.is_final() {
        out = if names_raw {
            raw.to_string()
        } else {
            version.to_string()
        };
    }
    Ok(sanitize(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    // metadata-action's `type=pep440` table (its README), plus the Python shapes the
    // issue names: rc, post and dev releases, with each pattern.
    #[test]
    fn metadata_action_pep440_table() {
        let cases = [
            ("1.2.3", "{{raw}}", "1.2.3"),
            ("1.2.3", "{{version}}", "1.2.3"),
            ("v1.2.3", "{{version}}", "1.2.3"),
            ("1.2.3", "{{major}}.{{minor}}", "1.2"),
            ("1.2.3", "v{{major}}", "v1"),
            ("v1.2.3rc2", "{{raw}}", "v1.2.3rc2"),
            ("1.2.3rc2", "{{version}}", "1.2.3rc2"),
            ("1.2.3rc2", "{{major}}.{{minor}}", "1.2.3rc2"),
            ("1.2.3post1", "{{major}}.{{minor}}", "1.2.3.post1"),
            ("1.2.3beta2", "{{major}}.{{minor}}", "1.2.3b2"),
            ("1.0dev4", "{{major}}.{{minor}}", "1.0.dev4"),
            // The issue's shapes.
            ("1.2.3rc1", "{{version}}", "1.2.3rc1"),
            ("1.2.3rc1", "{{major}}", "1.2.3rc1"),
            ("1.2.3rc1", "v{{major}}.{{minor}}", "1.2.3rc1"),
            ("1.2.3.post1", "{{version}}", "1.2.3.post1"),
            ("1.2.3.post1", "{{major}}.{{minor}}", "1.2.3.post1"),
            ("1.2.3.post1", "{{raw}}", "1.2.3.post1"),
            ("1.2.3.dev4", "{{version}}", "1.2.3.dev4"),
            ("1.2.3.dev4", "{{major}}", "1.2.3.dev4"),
            ("v1.2.3.dev4", "{{raw}}", "v1.2.3.dev4"),
            ("1.2.3", "{{patch}}", "3"),
            ("1.2.3", "{{minor}}", "2"),
            ("1.2.3", "{{ major }}", "1"),
            ("2.0", "{{major}}.{{minor}}.{{patch}}", "2.0.0"),
            ("1.0.0+ubuntu-1", "{{version}}", "1.0.0-ubuntu.1"),
        ];
        for (raw, pattern, want) in cases {
            assert_eq!(
                pep440_tag(pattern, raw).unwrap(),
                want,
                "{raw} with {pattern}"
            );
        }
    }

    #[test]
    fn pre_post_and_dev_releases_get_no_major_minor_tags_nor_latest() {
        let rules = TagRules::new()
            .pattern("{{version}}")
            .pattern("{{major}}.{{minor}}")
            .pattern("{{major}}");
        assert_eq!(
            rules.pep440_tags("1.2.3").unwrap(),
            ["1.2.3", "1.2", "1", "latest"]
        );
        for (raw, only) in [
            ("1.2.3rc1", "1.2.3rc1"),
            ("1.2.3.post1", "1.2.3.post1"),
            ("1.2.3.dev4", "1.2.3.dev4"),
            ("1.2.3a1.dev2", "1.2.3a1.dev2"),
        ] {
            assert_eq!(rules.pep440_tags(raw).unwrap(), [only], "{raw}");
        }
        let prefixed = TagRules::new()
            .pattern("{{version}}")
            .pattern("{{major}}")
            .flavor("py-", "-slim")
            .latest(false);
        assert_eq!(
            prefixed.pep440_tags("v2.1.0").unwrap(),
            ["py-2.1.0-slim", "py-2-slim"]
        );
        let always = TagRules::new().pattern("{{version}}").latest(true);
        assert_eq!(always.pep440_tags("1.0rc1").unwrap(), ["1.0rc1", "latest"]);
        for tag in rules.pep440_tags("1!2.0.0+abc.7").unwrap() {
            crate::docker::reference::check_tag(&tag).unwrap();
        }
    }

    #[test]
    fn pep440_spellings_normalize() {
        for (given, normal) in [
            ("1.0-ALPHA.1", "1.0a1"),
            ("1.0c1", "1.0rc1"),
            ("1.0preview2", "1.0rc2"),
            ("1.0.rc", "1.0rc0"),
            ("1.0-1", "1.0.post1"),
            ("1.0.post", "1.0.post0"),
            ("1.0rev2", "1.0.post2"),
            ("1.0r3", "1.0.post3"),
            ("1.0_dev_5", "1.0.dev5"),
            ("1.0-b2-post3-dev4", "1.0b2.post3.dev4"),
            ("1.2.3-beta.67", "1.2.3b67"),
            ("V1!2.01.0", "1!2.1.0"),
            ("0!1.0", "1.0"),
            ("1.0+Ubuntu_1", "1.0+ubuntu.1"),
        ] {
            assert_eq!(Pep440::parse(given).unwrap().to_string(), normal, "{given}");
        }
        let v = Pep440::parse("1.2.3rc1").unwrap();
        assert_eq!(v.pre, Some((PrePhase::Rc, 1)));
        assert!(v.is_prerelease() && !v.is_final());
        let post = Pep440::parse("1.2.3.post1").unwrap();
        assert!(!post.is_prerelease() && !post.is_final());
    }

    #[test]
    fn bad_versions_and_patterns_are_refused_with_the_fix() {
        let err = |raw: &str| Pep440::parse(raw).unwrap_err().to_string();
        assert_eq!(
            err("main"),
            "`main`: not a PEP 440 version: a version starts with release numbers such as \
             `1.2.3`, then optionally `rc1`, `.post1`, `.dev4` or `+local`"
        );
        assert_eq!(
            err("1.2.3-foo"),
            "`1.2.3-foo`: not a PEP 440 version: `-foo` is left over after `1.2.3`; PEP \
             440 allows only `aN`, `bN`, `rcN`, `.postN`, `.devN` and `+local` after the \
             release numbers"
        );
        assert_eq!(
            err("1.0+"),
            "`1.0+`: the local version label after `+` takes letters and digits separated by \
             `.`, `-` or `_`"
        );
        assert_eq!(
            pep440_tag("{{semver}}", "1.0").unwrap_err().to_string(),
            "`{{semver}}`: `{{semver}}` is not a pep440 expression; use {{raw}}, {{version}}, \
             {{major}}, {{minor}} or {{patch}}"
        );
        assert_eq!(
            pep440_tag("{{version", "1.0").unwrap_err().to_string(),
            "`{{version`: a `{{` is not closed by `}}`"
        );
        assert!(TagRules::new()
            .pattern("{{version}}")
            .pep440_tags("")
            .is_err());
    }

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
            branch: false,
            sha: false,
            ..TagRules::default()
        }
        .pattern("{{version}}")
        .pattern("{{major}}.{{minor}}")
    }

    // The tables of metadata-action's README ("Semver" usage, `type=semver`, `type=ref`,
    // `type=sha`, "Major version zero", and the bake example).
    #[test]
    fn metadata_action_readme_cases() {
        // push tag refs/tags/v1.2.3 with {{version}} and {{major}}.{{minor}}:
        // `1.2.3`, `1.2`, `latest`.
        assert_eq!(
            semver_only().tags_of(&input(Some("1.2.3"), Some("master"))),
            vec!["1.2.3", "1.2", "latest"]
        );
        // push tag refs/tags/v2.0.8-beta.67: only `2.0.8-beta.67`.
        assert_eq!(
            semver_only().tags_of(&input(Some("2.0.8-beta.67"), Some("master"))),
            vec!["2.0.8-beta.67"]
        );
        // pattern {{major}} of v1.2.3 is `1`.
        let major = TagRules {
            branch: false,
            sha: false,
            latest: Latest::Never,
            ..TagRules::default()
        }
        .pattern("{{major}}");
        assert_eq!(major.tags_of(&input(Some("1.2.3"), None)), vec!["1"]);
        // pattern v{{major}}: `v1` (prefix).
        let v_major = TagRules {
            prefix: "v".into(),
            ..major.clone()
        };
        assert_eq!(v_major.tags_of(&input(Some("1.2.3"), None)), vec!["v1"]);
        // Major version zero, refs/tags/v0.1.2: `0.1.2`, `0.1`, no `0`.
        let all_semver = TagRules {
            branch: false,
            sha: false,
            latest: Latest::Never,
            ..TagRules::default()
        };
        assert_eq!(
            all_semver.tags_of(&input(Some("0.1.2"), None)),
            vec!["0.1.2", "0.1"]
        );
        // type=ref,event=branch: refs/heads/master -> `master`,
        // refs/heads/releases/v1 -> `releases-v1`, refs/heads/my/branch -> `my-branch`.
        let branch = TagRules {
            sha: false,
            ..TagRules::default()
        };
        assert_eq!(branch.tags_of(&input(None, Some("master"))), vec!["master"]);
        assert_eq!(
            branch.tags_of(&input(None, Some("releases/v1"))),
            vec!["releases-v1"]
        );
        assert_eq!(
            branch.tags_of(&input(None, Some("my/branch"))),
            vec!["my-branch"]
        );
        // type=sha: `sha-90dd603`.
        let sha = TagRules {
            patterns: Vec::new(),
            branch: false,
            ..TagRules::default()
        };
        assert_eq!(
            sha.tags_of(&input(None, Some("master"))),
            vec!["sha-90dd603"]
        );
        // Bake example with refs/tags/v1.2.3: 1.2.3, 1.2, sha-90dd603, latest.
        let bake = TagRules {
            branch: false,
            ..TagRules::default()
        }
        .pattern("{{version}}")
        .pattern("{{major}}.{{minor}}");
        assert_eq!(
            references(
                &["name/app"],
                &bake.tags_of(&input(Some("1.2.3"), Some("master")))
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
    fn semver_patterns_render_like_metadata_action() {
        let rules = TagRules {
            branch: false,
            sha: false,
            latest: Latest::Never,
            ..TagRules::default()
        }
        .pattern("v{{major}}.{{minor}}")
        .pattern("{{ patch }}")
        .pattern("{{major}}");
        assert_eq!(
            rules.tags_of(&input(Some("1.2.3"), None)),
            vec!["v1.2", "3", "1"]
        );
        assert_eq!(
            rules.tags_of(&input(Some("0.4.1"), None)),
            vec!["v0.4", "1"]
        );
        assert_eq!(
            rules.tags_of(&input(Some("1.2.3-rc.1"), None)),
            vec!["1.2.3-rc.1"]
        );
    }

    #[test]
    fn latest_only_for_a_release_on_the_default_branch() {
        let rules = TagRules::default();
        assert_eq!(
            rules.tags_of(&input(Some("1.2.3"), Some("master"))),
            vec!["1.2.3", "1.2", "1", "master", "sha-90dd603", "latest"]
        );
        assert_eq!(
            rules.tags_of(&input(Some("1.2.3"), Some("dev"))),
            vec!["1.2.3", "1.2", "1", "dev", "sha-90dd603"]
        );
        assert_eq!(
            rules.tags_of(&input(None, Some("master"))),
            vec!["master", "sha-90dd603"]
        );
        assert_eq!(
            rules.tags_of(&input(Some("1.0.0-rc.1"), Some("master"))),
            vec!["1.0.0-rc.1", "master", "sha-90dd603"]
        );
        let always = TagRules {
            latest: Latest::Always,
            ..TagRules::default()
        };
        assert!(always
            .tags_of(&input(None, None))
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
            rules.tags_of(&input(Some("0.9.2+build.7"), Some("master"))),
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
        for t in rules.tags_of(&input(Some("1.2.3"), Some("feat/x y"))) {
            crate::docker::reference::check_tag(&t).unwrap();
        }
    }
}
