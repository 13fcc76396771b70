//! The library's own checks, which need no scanner: the image runs as root, has no
//! `HEALTHCHECK`, or carries a secret in its environment, labels or build history. Secret
//! values are masked before they reach a finding.

use anyhow::{Context, Result};
#[cfg(test)]
use serde_json::Value;

use super::model::{ScanFinding, ScanReport, Severity, Source};
use crate::cmd::Runner;
use crate::docker::image::{history, parse_inspect, ImageFacts, InspectRow, Layer};
use crate::plan::Step;

/// Words in a variable or label name that suggest its value is a secret.
const SECRET_NAME_WORDS: [&str; 7] = [
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
];

/// Names that contain a secret word but hold public data in common base images.
const PUBLIC_NAMES: [&str; 3] = ["GPG_KEY", "GPG_KEYS", "PUBLIC_KEY"];

/// Whether a variable or label name looks like it holds a secret.
pub(crate) fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    !PUBLIC_NAMES.iter().any(|p| upper.ends_with(p))
        && !upper.contains("PUBLIC")
        && SECRET_NAME_WORDS.iter().any(|w| upper.contains(w))
}

/// Known token shapes: prefix, allowed tail characters, minimum tail length.
const TOKEN_SHAPES: [(&str, &str, usize); 11] = [
    ("ghp_", "alnum", 36),
    ("gho_", "alnum", 36),
    ("ghs_", "alnum", 36),
    ("github_pat_", "alnum_", 40),
    ("glpat-", "alnum-_", 20),
    ("AKIA", "upper_digit", 16),
    ("xoxb-", "alnum-", 20),
    ("xoxp-", "alnum-", 20),
    ("sk_live_", "alnum", 20),
    ("npm_", "alnum", 36),
    ("pypi-", "alnum-_", 50),
];

fn shape_char(class: &str, c: char) -> bool {
    match class {
        "alnum" => c.is_ascii_alphanumeric(),
        "alnum_" => c.is_ascii_alphanumeric() || c == '_',
        "alnum-" => c.is_ascii_alphanumeric() || c == '-',
        "alnum-_" => c.is_ascii_alphanumeric() || c == '-' || c == '_',
        "upper_digit" => c.is_ascii_uppercase() || c.is_ascii_digit(),
        _ => false,
    }
}

/// The first token of a known shape in `text` (GitHub, GitLab, AWS key id, Slack, Stripe,
/// npm, PyPI tokens, or a PEM private key header), if any.
pub(crate) fn find_token(text: &str) -> Option<&str> {
    if let Some(at) = text.find("-----BEGIN") {
        let rest = &text[at..];
        if let Some(end) = rest.find("PRIVATE KEY-----") {
            return Some(&rest[..end + "PRIVATE KEY-----".len()]);
        }
    }
    for (prefix, class, min) in TOKEN_SHAPES {
        let mut from = 0;
        while let Some(pos) = text[from..].find(prefix) {
            let start = from + pos;
            // A token starts a word.
            let boundary = text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            let tail_len = text[start + prefix.len()..]
                .chars()
                .take_while(|&c| shape_char(class, c))
                .count();
            if boundary && tail_len >= min {
                return Some(&text[start..start + prefix.len() + tail_len]);
            }
            from = start + prefix.len();
        }
    }
    None
}

/// A secret shown safely: its first 4 characters, then `***`.
pub(crate) fn mask(value: &str) -> String {
    let head: String = value.chars().take(4).collect();
    format!("{head}***")
}

fn unquote(value: &str) -> &str {
    value.trim_matches(|c| c == '"' || c == '\'')
}

/// The built-in checks on an image's configuration (`docker image inspect` JSON) and its
/// history: runs as root, no health check, secrets in env, labels or history.
#[cfg(test)]
pub(crate) fn builtin_findings(inspect: &Value, layers: &[Layer]) -> Vec<ScanFinding> {
    use serde::Deserialize;
    findings_of(InspectRow::deserialize(inspect).unwrap_or_default(), layers)
}

/// The built-in checks on an image's inspection row and its history.
fn findings_of(inspect: InspectRow, layers: &[Layer]) -> Vec<ScanFinding> {
    let config = inspect.config.as_ref();
    let env = config.map(|c| c.env.clone()).unwrap_or_default();
    let labels = config.map(|c| c.labels.0.clone()).unwrap_or_default();
    let facts = ImageFacts::from_row(inspect);
    let mut out = Vec::new();
    if !facts.runs_as_non_root() {
        let user = if facts.user.is_empty() {
            "no USER".to_string()
        } else {
            format!("USER {}", facts.user)
        };
        out.push(ScanFinding::builtin(
            "runs-as-root",
            Severity::Medium,
            format!("the container runs as root ({user}); add a USER with a non-zero uid"),
            Some("config User".into()),
        ));
    }
    let disabled = facts
        .healthcheck
        .as_ref()
        .is_none_or(|h| h.test.first().map(String::as_str) == Some("NONE") || h.test.is_empty());
    if disabled {
        out.push(ScanFinding::builtin(
            "no-healthcheck",
            Severity::Low,
            "the image has no HEALTHCHECK: orchestrators cannot tell a hung app from a \
             healthy one"
                .into(),
            Some("config Healthcheck".into()),
        ));
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    for kv in &env {
        let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
        if let Some(f) = secret_pair("secret-in-env", "ENV", name, value) {
            seen.push((name.to_string(), value.to_string()));
            out.push(f);
        }
    }
    for (name, value) in &labels {
        if let Some(f) = secret_pair("secret-in-label", "LABEL", name, value) {
            seen.push((name.clone(), value.clone()));
            out.push(f);
        }
    }
    for layer in layers {
        let step = layer.created_by.trim();
        let where_ = format!("history: {}", shorten(&redact_step(step), 80));
        for word in step.split_whitespace() {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            let value = unquote(value);
            // Build arguments in scope show as `|1 NAME=value` before a RUN's command.
            let name = name.trim_start_matches(['|', '-']);
            let reported = seen.iter().any(|(n, v)| n == name && v == value);
            if reported || value.is_empty() || value.starts_with('$') || !secret_name(name) {
                continue;
            }
            seen.push((name.to_string(), value.to_string()));
            out.push(ScanFinding::builtin(
                "secret-in-history",
                Severity::High,
                format!("{name} has a value in the build history: {}", mask(value)),
                Some(where_.clone()),
            ));
        }
        if let Some(token) = find_token(step) {
            if !seen.iter().any(|(_, v)| v.contains(token)) {
                seen.push((String::new(), token.to_string()));
                out.push(ScanFinding::builtin(
                    "secret-in-history",
                    Severity::Critical,
                    format!("a token is written in the build history: {}", mask(token)),
                    Some(where_),
                ));
            }
        }
    }
    out
}

/// A history step with every secret-looking value and token masked, for display.
fn redact_step(step: &str) -> String {
    let words: Vec<String> = step
        .split(' ')
        .map(|word| match word.split_once('=') {
            Some((name, value))
                if !unquote(value).is_empty()
                    && secret_name(name.trim_start_matches(['|', '-'])) =>
            {
                format!("{name}={}", mask(unquote(value)))
            }
            _ => word.to_string(),
        })
        .collect();
    let mut text = words.join(" ");
    while let Some(token) = find_token(&text).map(str::to_string) {
        text = text.replace(&token, &mask(&token));
    }
    text
}

fn secret_pair(id: &str, kind: &str, name: &str, value: &str) -> Option<ScanFinding> {
    if let Some(token) = find_token(value) {
        return Some(ScanFinding::builtin(
            id,
            Severity::Critical,
            format!("{kind} {name} holds a token: {}", mask(token)),
            Some(format!("{kind} {name}")),
        ));
    }
    if !value.is_empty() && secret_name(name) {
        return Some(ScanFinding::builtin(
            id,
            Severity::High,
            format!(
                "{kind} {name} has a value baked into the image: {} (pass secrets at run time \
                 or with `--secret`)",
                mask(value)
            ),
            Some(format!("{kind} {name}")),
        ));
    }
    None
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 3).collect();
    format!("{cut}...")
}

/// The library's own checks of a local image, which need no scanner: it runs as root, has
/// no `HEALTHCHECK`, or carries a secret in its environment, labels or build history
/// (`docker image inspect`, `docker history`).
///
/// # Example
///
/// ```
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::ImageCheck;
/// use buildkit_lib::Runner;
///
/// let plan = ImageCheck::new("webapp:dev").plan(&Runner::new()).unwrap().to_string();
/// assert!(plan.starts_with("? docker image inspect"), "{plan}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ImageCheck {
    /// The local image checked.
    image: String,
}

impl ImageCheck {
    /// The checks of the local image `image`.
    pub fn new(image: impl Into<String>) -> ImageCheck {
        ImageCheck {
            image: image.into(),
        }
    }
}

impl Step for ImageCheck {
    type Output = ScanReport;

    /// The report: counts, then each finding.
    fn summary(&self, report: &ScanReport) -> Option<String> {
        Some(report.to_string())
    }

    /// The usual threshold ([`ScanReport::check`] at HIGH, none allowed): any HIGH or
    /// CRITICAL finding fails, and so does a part of the scan that did not run.
    fn judge(&self, report: &ScanReport) -> anyhow::Result<()> {
        report.check(super::model::Severity::High, 0)
    }

    /// Reads the image's configuration and history and checks them. An image whose
    /// history lists no layer had no instruction checked: the report says so (not
    /// checked: [`Verdict::NotChecked`](crate::validate::Verdict::NotChecked)), never a pass. A plan
    /// answers an image with an empty history, so its report is never a pass either.
    fn run(&self, runner: &Runner) -> Result<ScanReport> {
        let image = &self.image;
        let out = runner
            .capture(&crate::docker::image::inspect_cmd(image).dry_answer(DRY_INSPECT))
            .with_context(|| format!("cannot inspect image {image}"))?;
        let inspect = parse_inspect(&out.stdout, &format!("`docker image inspect {image}`"))?;
        let layers = history(runner, image)?;
        let mut report = ScanReport::new(Source::Builtin, image, findings_of(inspect, &layers));
        if layers.is_empty() {
            report.not_checked.push(super::model::NotChecked::new(
                "the image",
                "`docker history` listed no layer, so no instruction was checked",
            ));
        }
        Ok(report)
    }
}

/// What a dry run answers for the image's inspection: an image with no configuration.
const DRY_INSPECT: &str = r#"{"Id":"sha256:<image-id>","Config":{}}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_shapes() {
        let ghp = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(find_token(&format!("echo {ghp} > /x")), Some(ghp.as_str()));
        assert_eq!(
            find_token("AKIAIOSFODNN7EXAMPLE"),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        assert_eq!(find_token("ghp_short"), None);
        assert_eq!(
            find_token("xghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            None
        );
        assert!(find_token("-----BEGIN OPENSSH PRIVATE KEY-----\nabc").is_some());
        assert_eq!(mask("supersecret"), "supe***");
    }

    #[test]
    fn secret_names() {
        for n in [
            "API_TOKEN",
            "db_password",
            "AWS_SECRET_ACCESS_KEY",
            "private.key",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in ["GPG_KEY", "PATH", "PYTHON_VERSION", "SSH_PUBLIC_KEY"] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn builtin_checks_on_a_config() {
        let inspect = json!({
            "Config": {
                "User": "",
                "Env": ["PATH=/usr/bin", "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
                        "API_TOKEN=s3cr3t-value", "EMPTY_PASSWORD="],
                "Labels": {"org.opencontainers.image.title": "app", "deploy.key": "k-123"}
            }
        });
        let layers = vec![
            Layer {
                id: None,
                size_bytes: 0,
                created_by: "ENV API_TOKEN=s3cr3t-value".into(),
                created_at: String::new(),
                comment: String::new(),
            },
            Layer {
                id: None,
                size_bytes: 10,
                created_by: "RUN |1 PIP_PASSWORD=hunter2 /bin/sh -c pip install x # buildkit"
                    .into(),
                created_at: String::new(),
                comment: String::new(),
            },
        ];
        let found: Vec<(String, Severity, String)> = builtin_findings(&inspect, &layers)
            .into_iter()
            .map(|f| (f.id, f.severity, f.title))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "runs-as-root".to_string(),
                    Severity::Medium,
                    "the container runs as root (no USER); add a USER with a non-zero uid"
                        .to_string()
                ),
                (
                    "no-healthcheck".to_string(),
                    Severity::Low,
                    "the image has no HEALTHCHECK: orchestrators cannot tell a hung app from a \
                     healthy one"
                        .to_string()
                ),
                (
                    "secret-in-env".to_string(),
                    Severity::High,
                    "ENV API_TOKEN has a value baked into the image: s3cr*** (pass secrets at \
                     run time or with `--secret`)"
                        .to_string()
                ),
                (
                    "secret-in-label".to_string(),
                    Severity::High,
                    "LABEL deploy.key has a value baked into the image: k-12*** (pass secrets at \
                     run time or with `--secret`)"
                        .to_string()
                ),
                (
                    "secret-in-history".to_string(),
                    Severity::High,
                    "PIP_PASSWORD has a value in the build history: hunt***".to_string()
                ),
            ]
        );
    }

    #[test]
    fn non_root_with_healthcheck_is_clean() {
        let inspect = json!({"Config": {"User": "app:app",
            "Healthcheck": {"Test": ["CMD", "true"]}, "Env": ["PATH=/bin"]}});
        assert!(builtin_findings(&inspect, &[]).is_empty());
        let inspect = json!({"Config": {"User": "0:0"}});
        assert_eq!(builtin_findings(&inspect, &[])[0].id, "runs-as-root");
    }
}
