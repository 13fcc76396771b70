//! Security checks on a built image: our own checks that always run (root user, secrets in
//! the image configuration and history, no `HEALTHCHECK`), and adapters for trivy and
//! Docker Scout whose JSON is parsed into the same typed findings.
//!
//! Every check yields [`Finding`]s with a [`Severity`]; a [`Threshold`] turns a
//! [`ScanReport`] into pass or fail. A scanner that is not installed is an error saying so
//! and how to install it, never a clean report.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd::{Cmd, CommandError, Failure, Runner};
use crate::docker::image::{history, ImageFacts, Layer};

/// How bad a finding is, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Not rated (trivy `UNKNOWN`, Scout `UNSPECIFIED`).
    Unknown,
    /// Low.
    Low,
    /// Medium (also `MODERATE`).
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Reads a scanner's severity word (any case); anything unrecognised is `Unknown`.
    pub fn parse(word: &str) -> Severity {
        match word.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" | "MODERATE" => Severity::Medium,
            "LOW" | "NEGLIGIBLE" => Severity::Low,
            _ => Severity::Unknown,
        }
    }

    /// The upper-case name scanners use.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which check produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The library's own checks on the image configuration and history.
    Builtin,
    /// trivy.
    Trivy,
    /// Docker Scout.
    Scout,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Builtin => "builtin",
            Source::Trivy => "trivy",
            Source::Scout => "docker scout",
        })
    }
}

/// One problem found in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check that found it.
    pub source: Source,
    /// Its id: a CVE (`CVE-2024-1234`) or one of ours (`runs-as-root`, `secret-in-env`,
    /// `secret-in-label`, `secret-in-history`, `no-healthcheck`).
    pub id: String,
    /// How bad it is.
    pub severity: Severity,
    /// One line saying what it is (secret values are masked).
    pub title: String,
    /// The affected package, for vulnerabilities.
    pub package: Option<String>,
    /// The installed version, for vulnerabilities.
    pub installed: Option<String>,
    /// The version that fixes it, when there is one.
    pub fixed: Option<String>,
    /// Where: a scanner target, `ENV NAME`, `LABEL name`, or the history step.
    pub location: Option<String>,
}

impl Finding {
    fn builtin(id: &str, severity: Severity, title: String, location: Option<String>) -> Finding {
        Finding {
            source: Source::Builtin,
            id: id.to_string(),
            severity,
            title,
            package: None,
            installed: None,
            fixed: None,
            location,
        }
    }
}

/// Findings counted by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    /// Critical findings.
    pub critical: usize,
    /// High findings.
    pub high: usize,
    /// Medium findings.
    pub medium: usize,
    /// Low findings.
    pub low: usize,
    /// Unrated findings.
    pub unknown: usize,
}

impl SeverityCounts {
    /// Counts `findings`.
    pub fn of(findings: &[Finding]) -> SeverityCounts {
        let mut c = SeverityCounts::default();
        for f in findings {
            match f.severity {
                Severity::Critical => c.critical += 1,
                Severity::High => c.high += 1,
                Severity::Medium => c.medium += 1,
                Severity::Low => c.low += 1,
                Severity::Unknown => c.unknown += 1,
            }
        }
        c
    }

    /// Findings at `severity` or worse.
    pub fn at_or_above(&self, severity: Severity) -> usize {
        [
            (Severity::Unknown, self.unknown),
            (Severity::Low, self.low),
            (Severity::Medium, self.medium),
            (Severity::High, self.high),
            (Severity::Critical, self.critical),
        ]
        .iter()
        .filter(|(s, _)| *s >= severity)
        .map(|(_, n)| n)
        .sum()
    }

    /// All findings.
    pub fn total(&self) -> usize {
        self.at_or_above(Severity::Unknown)
    }
}

impl fmt::Display for SeverityCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} findings (CRITICAL: {}, HIGH: {}, MEDIUM: {}, LOW: {}, UNKNOWN: {})",
            self.total(),
            self.critical,
            self.high,
            self.medium,
            self.low,
            self.unknown
        )
    }
}

/// The findings of one check of one image.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// Which check.
    pub source: Source,
    /// The image checked.
    pub image: String,
    /// What it found, worst first.
    pub findings: Vec<Finding>,
    /// The findings counted by severity.
    pub counts: SeverityCounts,
}

impl ScanReport {
    fn new(source: Source, image: &str, mut findings: Vec<Finding>) -> ScanReport {
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        ScanReport {
            source,
            image: image.to_string(),
            counts: SeverityCounts::of(&findings),
            findings,
        }
    }
}

impl fmt::Display for ScanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} scan of {}: {}", self.source, self.image, self.counts)?;
        for x in &self.findings {
            write!(f, "\n  {:<8} {}  {}", x.severity, x.id, x.title)?;
            if let Some(p) = &x.package {
                write!(f, " [{p} {}", x.installed.as_deref().unwrap_or("?"))?;
                match &x.fixed {
                    Some(v) if !v.is_empty() => write!(f, ", fixed in {v}]")?,
                    _ => write!(f, ", no fix]")?,
                }
            }
            if let Some(l) = &x.location {
                write!(f, " ({l})")?;
            }
        }
        Ok(())
    }
}

/// When a scan fails the step: more than `max_allowed` findings at `fail_on` or worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// The lowest severity that counts.
    pub fail_on: Severity,
    /// How many such findings are tolerated.
    pub max_allowed: usize,
}

impl Default for Threshold {
    /// Fail on any HIGH or CRITICAL finding.
    fn default() -> Self {
        Threshold {
            fail_on: Severity::High,
            max_allowed: 0,
        }
    }
}

impl Threshold {
    /// Ok when the report is within the threshold, else an error with the counts and the
    /// findings that count.
    pub fn check(&self, report: &ScanReport) -> Result<()> {
        let over = report.counts.at_or_above(self.fail_on);
        if over <= self.max_allowed {
            return Ok(());
        }
        let mut msg = format!(
            "{} scan of {} failed: {over} findings at {} or above (allowed: {}); {}",
            report.source, report.image, self.fail_on, self.max_allowed, report.counts
        );
        for x in report
            .findings
            .iter()
            .filter(|x| x.severity >= self.fail_on)
            .take(20)
        {
            msg.push_str(&format!("\n  {:<8} {}  {}", x.severity, x.id, x.title));
        }
        bail!(msg)
    }
}

// ---------------------------------------------------------------------------------------
// Our own checks

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
pub fn secret_name(name: &str) -> bool {
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
pub fn find_token(text: &str) -> Option<&str> {
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
pub fn mask(value: &str) -> String {
    let head: String = value.chars().take(4).collect();
    format!("{head}***")
}

fn unquote(value: &str) -> &str {
    value.trim_matches(|c| c == '"' || c == '\'')
}

/// The built-in checks on an image's configuration (`docker image inspect` JSON) and its
/// history: runs as root, no health check, secrets in env, labels or history.
pub fn builtin_findings(inspect: &Value, layers: &[Layer]) -> Vec<Finding> {
    let facts = ImageFacts::from_json(inspect);
    let mut out = Vec::new();
    if !facts.runs_as_non_root() {
        let user = if facts.user.is_empty() {
            "no USER".to_string()
        } else {
            format!("USER {}", facts.user)
        };
        out.push(Finding::builtin(
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
        out.push(Finding::builtin(
            "no-healthcheck",
            Severity::Low,
            "the image has no HEALTHCHECK: orchestrators cannot tell a hung app from a \
             healthy one"
                .into(),
            Some("config Healthcheck".into()),
        ));
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    let env = inspect["Config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kv in env.iter().filter_map(Value::as_str) {
        let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
        if let Some(f) = secret_pair("secret-in-env", "ENV", name, value) {
            seen.push((name.to_string(), value.to_string()));
            out.push(f);
        }
    }
    if let Some(labels) = inspect["Config"]["Labels"].as_object() {
        for (name, value) in labels {
            let value = value.as_str().unwrap_or_default();
            if let Some(f) = secret_pair("secret-in-label", "LABEL", name, value) {
                seen.push((name.clone(), value.to_string()));
                out.push(f);
            }
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
            out.push(Finding::builtin(
                "secret-in-history",
                Severity::High,
                format!("{name} has a value in the build history: {}", mask(value)),
                Some(where_.clone()),
            ));
        }
        if let Some(token) = find_token(step) {
            if !seen.iter().any(|(_, v)| v.contains(token)) {
                seen.push((String::new(), token.to_string()));
                out.push(Finding::builtin(
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

fn secret_pair(id: &str, kind: &str, name: &str, value: &str) -> Option<Finding> {
    if let Some(token) = find_token(value) {
        return Some(Finding::builtin(
            id,
            Severity::Critical,
            format!("{kind} {name} holds a token: {}", mask(token)),
            Some(format!("{kind} {name}")),
        ));
    }
    if !value.is_empty() && secret_name(name) {
        return Some(Finding::builtin(
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

/// Runs the built-in checks on a local image (`docker image inspect`, `docker history`).
pub fn check_image(runner: &Runner, image: &str) -> Result<ScanReport> {
    let out = runner
        .capture(
            &Cmd::new("docker")
                .args(["image", "inspect", "--format", "{{json .}}", image])
                .read_only(),
        )
        .with_context(|| format!("cannot inspect image {image}"))?;
    let inspect: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("`docker image inspect {image}` did not print JSON"))?;
    let layers = history(runner, image)?;
    Ok(ScanReport::new(
        Source::Builtin,
        image,
        builtin_findings(&inspect, &layers),
    ))
}

// ---------------------------------------------------------------------------------------
// Scanners

/// A scanner that is not installed: the scan did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerMissing {
    /// The scanner.
    pub tool: &'static str,
    /// How to install it.
    pub install: &'static str,
}

impl fmt::Display for ScannerMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not installed, so the image was not scanned (this is not a pass)\nhelp: {}",
            self.tool, self.install
        )
    }
}

impl std::error::Error for ScannerMissing {}

const TRIVY_INSTALL: &str = "install trivy (https://trivy.dev/latest/getting-started/installation/), \
     for example `curl -sfL https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh \
     | sh -s -- -b /usr/local/bin`, or skip this step explicitly";
const SCOUT_INSTALL: &str = "install the Docker Scout CLI plugin \
     (https://github.com/docker/scout-cli), for example `curl -fsSL \
     https://raw.githubusercontent.com/docker/scout-cli/main/install.sh | sh`, then `docker login`; \
     or skip this step explicitly";

/// trivy: `trivy image --format json --quiet IMAGE`.
#[derive(Debug, Clone)]
pub struct Trivy {
    /// The program (`trivy`, or a path).
    pub program: String,
    /// Only report these severities (`--severity`), all when empty.
    pub severities: Vec<Severity>,
    /// Leave out vulnerabilities without a fix (`--ignore-unfixed`).
    pub ignore_unfixed: bool,
    /// Stop a scan that takes longer (the first run downloads the database).
    pub timeout: Duration,
}

impl Default for Trivy {
    fn default() -> Self {
        Trivy {
            program: "trivy".into(),
            severities: Vec::new(),
            ignore_unfixed: false,
            timeout: Duration::from_secs(900),
        }
    }
}

impl Trivy {
    /// The command line that scans `image`.
    pub fn command(&self, image: &str) -> Cmd {
        let mut cmd = Cmd::new(&self.program).args(["image", "--format", "json", "--quiet"]);
        if !self.severities.is_empty() {
            let list: Vec<&str> = self.severities.iter().map(|s| s.as_str()).collect();
            cmd = cmd.arg("--severity").arg(list.join(","));
        }
        if self.ignore_unfixed {
            cmd = cmd.arg("--ignore-unfixed");
        }
        cmd.arg(image).timeout(self.timeout).read_only()
    }

    /// Scans `image`; a missing trivy is a [`ScannerMissing`] error.
    pub fn scan(&self, runner: &Runner, image: &str) -> Result<ScanReport> {
        let out = runner
            .capture(&self.command(image))
            .map_err(|e| missing_or(e, "trivy", TRIVY_INSTALL))
            .with_context(|| format!("trivy scan of {image}"))?;
        let findings = parse_trivy(&out.stdout).context("cannot read trivy's JSON report")?;
        Ok(ScanReport::new(Source::Trivy, image, findings))
    }
}

fn missing_or(e: CommandError, tool: &'static str, install: &'static str) -> anyhow::Error {
    if matches!(e.failure, Failure::NotFound { .. }) {
        anyhow::Error::new(ScannerMissing { tool, install })
    } else {
        anyhow::Error::new(e)
    }
}

fn text_of(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Reads trivy's JSON report: the current shape (`{"SchemaVersion": 2, "Results": [...]}`)
/// or the old one (a bare array of results). Vulnerabilities, secrets and
/// misconfigurations become findings.
pub fn parse_trivy(json: &str) -> Result<Vec<Finding>> {
    let root: Value = serde_json::from_str(json.trim()).context("not JSON")?;
    let results = match &root {
        Value::Array(items) => items.clone(),
        Value::Object(_) => match &root["Results"] {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            _ => bail!("`Results` is not a list"),
        },
        _ => bail!("expected an object with `Results`"),
    };
    let mut out = Vec::new();
    for result in &results {
        let target = text_of(&result["Target"]);
        for v in result["Vulnerabilities"].as_array().into_iter().flatten() {
            let id = text_of(&v["VulnerabilityID"]).unwrap_or_else(|| "unknown".into());
            out.push(Finding {
                source: Source::Trivy,
                title: text_of(&v["Title"]).unwrap_or_else(|| id.clone()),
                id,
                severity: Severity::parse(v["Severity"].as_str().unwrap_or_default()),
                package: text_of(&v["PkgName"]),
                installed: text_of(&v["InstalledVersion"]),
                fixed: text_of(&v["FixedVersion"]),
                location: target.clone(),
            });
        }
        for s in result["Secrets"].as_array().into_iter().flatten() {
            out.push(Finding {
                source: Source::Trivy,
                id: text_of(&s["RuleID"]).unwrap_or_else(|| "secret".into()),
                severity: Severity::parse(s["Severity"].as_str().unwrap_or_default()),
                title: text_of(&s["Title"]).unwrap_or_else(|| "secret".into()),
                package: None,
                installed: None,
                fixed: None,
                location: target.clone(),
            });
        }
        for m in result["Misconfigurations"].as_array().into_iter().flatten() {
            if m["Status"].as_str() == Some("PASS") {
                continue;
            }
            out.push(Finding {
                source: Source::Trivy,
                id: text_of(&m["ID"]).unwrap_or_else(|| "misconfiguration".into()),
                severity: Severity::parse(m["Severity"].as_str().unwrap_or_default()),
                title: text_of(&m["Title"]).unwrap_or_default(),
                package: None,
                installed: None,
                fixed: None,
                location: target.clone(),
            });
        }
    }
    Ok(out)
}

/// Docker Scout: `docker scout cves --format sarif IMAGE`.
#[derive(Debug, Clone)]
pub struct Scout {
    /// Only report these severities (`--only-severity`), all when empty.
    pub severities: Vec<Severity>,
    /// Only vulnerabilities with a fix (`--only-fixed`).
    pub only_fixed: bool,
    /// Stop a scan that takes longer.
    pub timeout: Duration,
}

impl Default for Scout {
    fn default() -> Self {
        Scout {
            severities: Vec::new(),
            only_fixed: false,
            timeout: Duration::from_secs(900),
        }
    }
}

impl Scout {
    /// The probe that tells whether the plugin is installed.
    pub fn probe_command(&self) -> Cmd {
        Cmd::new("docker")
            .args(["scout", "version"])
            .timeout(Duration::from_secs(60))
            .read_only()
    }

    /// The command line that scans `image`.
    pub fn command(&self, image: &str) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["scout", "cves", "--format", "sarif"]);
        if !self.severities.is_empty() {
            let list: Vec<String> = self
                .severities
                .iter()
                .map(|s| s.as_str().to_ascii_lowercase())
                .collect();
            cmd = cmd.arg("--only-severity").arg(list.join(","));
        }
        if self.only_fixed {
            cmd = cmd.arg("--only-fixed");
        }
        cmd.arg(image).timeout(self.timeout).read_only()
    }

    /// Scans `image`; a missing plugin is a [`ScannerMissing`] error.
    pub fn scan(&self, runner: &Runner, image: &str) -> Result<ScanReport> {
        if let Err(e) = runner.capture(&self.probe_command()) {
            return Err(match e.failure {
                Failure::NotFound { .. } | Failure::Exit(_) => anyhow::Error::new(ScannerMissing {
                    tool: "Docker Scout",
                    install: SCOUT_INSTALL,
                }),
                _ => anyhow::Error::new(e),
            })
            .with_context(|| format!("docker scout scan of {image}"));
        }
        let out = runner
            .capture(&self.command(image))
            .with_context(|| format!("docker scout scan of {image}"))?;
        let findings =
            parse_scout_sarif(&out.stdout).context("cannot read Docker Scout's SARIF")?;
        Ok(ScanReport::new(Source::Scout, image, findings))
    }
}

/// Reads Docker Scout's SARIF 2.1.0: one finding per result, its rule giving the severity
/// (`properties.cvssV3_severity`), fixed version and package URL(s) (`purls`, or `purl` in
/// older versions). Rules without results count once each.
pub fn parse_scout_sarif(json: &str) -> Result<Vec<Finding>> {
    let root: Value = serde_json::from_str(json.trim()).context("not JSON")?;
    let Some(runs) = root["runs"].as_array() else {
        bail!("no `runs` list: not a SARIF report");
    };
    let mut out = Vec::new();
    for run in runs {
        let rules = run["tool"]["driver"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let finding = |rule: &Value,
                       id: String,
                       message: Option<String>,
                       location: Option<String>| {
            let props = &rule["properties"];
            let purl = props["purls"]
                .as_array()
                .and_then(|p| p.first())
                .and_then(Value::as_str)
                .or_else(|| props["purl"].as_str())
                .map(str::to_string);
            let (package, installed) = match purl.as_deref().map(split_purl) {
                Some((p, v)) => (Some(p), v),
                None => (None, None),
            };
            Finding {
                source: Source::Scout,
                severity: Severity::parse(props["cvssV3_severity"].as_str().unwrap_or_default()),
                title: text_of(&rule["shortDescription"]["text"])
                    .or(message)
                    .unwrap_or_else(|| id.clone()),
                id,
                package,
                installed,
                fixed: text_of(&props["fixed_version"]).filter(|v| v != "not fixed"),
                location,
            }
        };
        match run["results"].as_array() {
            Some(results) => {
                for r in results {
                    let id = text_of(&r["ruleId"]).unwrap_or_default();
                    let rule = r["ruleIndex"]
                        .as_u64()
                        .and_then(|i| rules.get(i as usize))
                        .filter(|rule| rule["id"].as_str() == Some(id.as_str()))
                        .or_else(|| rules.iter().find(|rule| rule["id"].as_str() == Some(&id)))
                        .cloned()
                        .unwrap_or(Value::Null);
                    let location =
                        text_of(&r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]);
                    out.push(finding(&rule, id, text_of(&r["message"]["text"]), location));
                }
            }
            None => {
                for rule in &rules {
                    let id = text_of(&rule["id"]).unwrap_or_default();
                    out.push(finding(rule, id, None, None));
                }
            }
        }
    }
    Ok(out)
}

/// `pkg:pypi/setuptools@68.1.2?x=y` → (`pypi/setuptools`, `68.1.2`).
fn split_purl(purl: &str) -> (String, Option<String>) {
    let bare = purl.strip_prefix("pkg:").unwrap_or(purl);
    let bare = bare.split(['?', '#']).next().unwrap_or(bare);
    match bare.rsplit_once('@') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (bare.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn severities_parse_and_order() {
        assert_eq!(Severity::parse("moderate"), Severity::Medium);
        assert_eq!(Severity::parse("UNSPECIFIED"), Severity::Unknown);
        assert!(Severity::Critical > Severity::High);
        let findings: Vec<Finding> = [Severity::Critical, Severity::Low, Severity::High]
            .iter()
            .map(|&s| Finding::builtin("x", s, String::new(), None))
            .collect();
        let c = SeverityCounts::of(&findings);
        assert_eq!(c.at_or_above(Severity::High), 2);
        assert_eq!(
            c.to_string(),
            "3 findings (CRITICAL: 1, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 0)"
        );
    }

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

    #[test]
    fn threshold_fails_with_counts() {
        let report = ScanReport::new(
            Source::Trivy,
            "app:1",
            vec![
                Finding::builtin("CVE-1", Severity::High, "bad".into(), None),
                Finding::builtin("CVE-2", Severity::Low, "meh".into(), None),
            ],
        );
        assert!(Threshold {
            fail_on: Severity::Critical,
            max_allowed: 0
        }
        .check(&report)
        .is_ok());
        let err = Threshold::default().check(&report).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trivy scan of app:1 failed: 1 findings at HIGH or above (allowed: 0); 2 findings \
             (CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 0)\n  HIGH     CVE-1  bad"
        );
    }

    #[test]
    fn command_lines() {
        let t = Trivy {
            severities: vec![Severity::High, Severity::Critical],
            ignore_unfixed: true,
            ..Trivy::default()
        };
        assert_eq!(
            t.command("app:1").to_string(),
            "trivy image --format json --quiet --severity HIGH,CRITICAL --ignore-unfixed app:1"
        );
        let s = Scout {
            severities: vec![Severity::Critical],
            only_fixed: true,
            ..Scout::default()
        };
        assert_eq!(
            s.command("app:1").to_string(),
            "docker scout cves --format sarif --only-severity critical --only-fixed app:1"
        );
        assert_eq!(
            split_purl("pkg:deb/debian/openssl@3.0.11-1?arch=amd64"),
            (
                "deb/debian/openssl".to_string(),
                Some("3.0.11-1".to_string())
            )
        );
    }
}
