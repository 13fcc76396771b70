//! The Docker Scout adapter: the plugin probe, the command line, and Scout's SARIF read
//! into typed findings.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::model::{NotChecked, ScanFinding, ScanReport, ScannerMissing, Severity, Source};
use crate::cmd::{Cmd, Failure, Runner};
use crate::plan::Step;
use crate::rows::{non_empty, nullable};

const SCOUT_INSTALL: &str = "install the Docker Scout CLI plugin \
     (https://github.com/docker/scout-cli), for example `curl -fsSL \
     https://raw.githubusercontent.com/docker/scout-cli/main/install.sh | sh`, then `docker login`; \
     or skip this step explicitly";

/// Docker Scout's scan of an image: `docker scout cves --format sarif IMAGE`, read into
/// the same typed findings as trivy's.
///
/// # Example
///
/// ```
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::validate::Scout;
/// use buildkit_lib::Runner;
///
/// let plan = Scout::new("webapp:dev").only_fixed(true).plan(&Runner::new()).unwrap();
/// assert_eq!(
///     plan.to_string(),
///     "? docker scout version\n? docker scout cves --format sarif --only-fixed webapp:dev\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Scout {
    /// The image scanned.
    image: String,
    /// Only report these severities (`--only-severity`), all when empty.
    severities: Vec<Severity>,
    /// Only vulnerabilities with a fix (`--only-fixed`).
    only_fixed: bool,
    /// Stop a scan that takes longer.
    timeout: Duration,
}

impl Scout {
    /// A Docker Scout scan of `image` with its defaults: every severity, fixed or not, a
    /// 15-minute timeout.
    pub fn new(image: impl Into<String>) -> Scout {
        Scout {
            image: image.into(),
            severities: Vec::new(),
            only_fixed: false,
            timeout: Duration::from_secs(900),
        }
    }

    /// Only report these severities (`--only-severity`), all when empty.
    ///
    /// Adds every item of `items`.
    pub fn severities(mut self, items: impl IntoIterator<Item = Severity>) -> Scout {
        self.severities.extend(items);
        self
    }

    /// Only vulnerabilities with a fix (`--only-fixed`).
    pub fn only_fixed(mut self, on: bool) -> Scout {
        self.only_fixed = on;
        self
    }

    /// Stop a scan that takes longer.
    pub fn timeout(mut self, timeout: Duration) -> Scout {
        self.timeout = timeout;
        self
    }
}

impl Scout {
    /// The probe that tells whether the plugin is installed.
    fn probe_command(&self) -> Cmd {
        Cmd::new("docker")
            .args(["scout", "version"])
            .timeout(Duration::from_secs(60))
            .read_only()
    }

    /// The command line of the scan.
    fn command(&self) -> Cmd {
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
        cmd.arg(&self.image)
            .timeout(self.timeout)
            .read_only()
            .dry_answer(DRY_SARIF)
    }
}

impl Step for Scout {
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

    /// Asks whether the plugin is installed, then scans; a missing plugin is a
    /// [`ScannerMissing`] error. Its plan is this body recorded: the two queries. The
    /// report a plan reads found nothing because nothing ran: the scan is not checked
    /// there, never a pass.
    fn run(&self, runner: &Runner) -> Result<ScanReport> {
        let image = &self.image;
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
            .capture(&self.command())
            .with_context(|| format!("docker scout scan of {image}"))?;
        let findings =
            parse_scout_sarif(&out.stdout).context("cannot read Docker Scout's SARIF")?;
        let report = ScanReport::new(Source::Scout, image, findings);
        Ok(if out.stdout == DRY_SARIF {
            report.with_not_checked(vec![NotChecked::new(
                "the scan",
                "Docker Scout did not run: this report is the placeholder a plan reads",
            )])
        } else {
            report
        })
    }
}

/// What a plan reads for the scan: a SARIF report with no run (and a key of the library's
/// own, so that it is never taken for a real one).
const DRY_SARIF: &str = r#"{"runs":[],"BuildkitLibPlaceholder":true}"#;

/// What the library reads of a SARIF 2.1.0 report.
#[derive(Debug, Deserialize)]
struct SarifRow {
    /// A SARIF report has this list: `None` is not one.
    #[serde(default)]
    runs: Option<Vec<RunRow>>,
}

#[derive(Debug, Deserialize)]
struct RunRow {
    #[serde(default)]
    tool: Option<ToolRow>,
    /// `None`: the run lists rules only, one finding each.
    #[serde(default)]
    results: Option<Vec<ResultRow>>,
}

#[derive(Debug, Deserialize)]
struct ToolRow {
    #[serde(default)]
    driver: Option<DriverRow>,
}

#[derive(Debug, Deserialize)]
struct DriverRow {
    #[serde(default, deserialize_with = "nullable")]
    rules: Vec<RuleRow>,
}

#[derive(Debug, Default, Deserialize)]
struct RuleRow {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "shortDescription", default)]
    short_description: Option<TextRow>,
    #[serde(default)]
    properties: Option<PropertiesRow>,
}

/// A SARIF message: `{"text": ...}`.
#[derive(Debug, Default, Deserialize)]
struct TextRow {
    #[serde(default)]
    text: Option<String>,
}

/// Scout's rule properties.
#[derive(Debug, Default, Deserialize)]
struct PropertiesRow {
    #[serde(default, deserialize_with = "nullable")]
    purls: Vec<String>,
    /// Older versions: one package URL.
    #[serde(default)]
    purl: Option<String>,
    #[serde(rename = "cvssV3_severity", default)]
    severity: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResultRow {
    #[serde(rename = "ruleId", default)]
    rule_id: Option<String>,
    #[serde(rename = "ruleIndex", default)]
    rule_index: Option<u64>,
    #[serde(default)]
    message: Option<TextRow>,
    #[serde(default, deserialize_with = "nullable")]
    locations: Vec<LocationRow>,
}

#[derive(Debug, Deserialize)]
struct LocationRow {
    #[serde(rename = "physicalLocation", default)]
    physical: Option<PhysicalLocationRow>,
}

#[derive(Debug, Deserialize)]
struct PhysicalLocationRow {
    #[serde(rename = "artifactLocation", default)]
    artifact: Option<TextUriRow>,
}

#[derive(Debug, Deserialize)]
struct TextUriRow {
    #[serde(default)]
    uri: Option<String>,
}

/// Reads Docker Scout's SARIF 2.1.0: one finding per result, its rule giving the severity
/// (`properties.cvssV3_severity`), fixed version and package URL(s) (`purls`, or `purl` in
/// older versions). Rules without results count once each.
pub(crate) fn parse_scout_sarif(json: &str) -> Result<Vec<ScanFinding>> {
    let root: SarifRow = crate::rows::parse(json, "`docker scout cves`")?;
    let Some(runs) = root.runs else {
        bail!("no `runs` list: not a SARIF report");
    };
    let mut out = Vec::new();
    for run in runs {
        let rules = run
            .tool
            .and_then(|t| t.driver)
            .map(|d| d.rules)
            .unwrap_or_default();
        let finding =
            |rule: &RuleRow, id: String, message: Option<String>, location: Option<String>| {
                let props = rule.properties.as_ref();
                let purl = props
                    .and_then(|p| p.purls.first().or(p.purl.as_ref()))
                    .cloned();
                let (package, installed) = match purl.as_deref().map(split_purl) {
                    Some((p, v)) => (Some(p), v),
                    None => (None, None),
                };
                ScanFinding {
                    source: Source::Scout,
                    severity: Severity::parse(
                        props
                            .and_then(|p| p.severity.as_deref())
                            .unwrap_or_default(),
                    ),
                    title: non_empty(rule.short_description.as_ref().and_then(|d| d.text.clone()))
                        .or(message)
                        .unwrap_or_else(|| id.clone()),
                    id,
                    package,
                    installed,
                    fixed: non_empty(props.and_then(|p| p.fixed_version.clone()))
                        .filter(|v| v != "not fixed"),
                    location,
                    line: None,
                }
            };
        match run.results {
            Some(results) => {
                let no_rule = RuleRow::default();
                for r in results {
                    let id = non_empty(r.rule_id).unwrap_or_default();
                    let is_it = |rule: &&RuleRow| rule.id.as_deref() == Some(id.as_str());
                    let rule = r
                        .rule_index
                        .and_then(|i| rules.get(i as usize))
                        .filter(is_it)
                        .or_else(|| rules.iter().find(is_it))
                        .unwrap_or(&no_rule);
                    let location = non_empty(
                        r.locations
                            .into_iter()
                            .next()
                            .and_then(|l| l.physical)
                            .and_then(|p| p.artifact)
                            .and_then(|a| a.uri),
                    );
                    let message = non_empty(r.message.and_then(|m| m.text));
                    out.push(finding(rule, id, message, location));
                }
            }
            None => {
                for rule in &rules {
                    let id = non_empty(rule.id.clone()).unwrap_or_default();
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
    use crate::validate::security::model::SeverityCounts;

    #[test]
    fn scout_sarif_is_parsed_into_typed_findings() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures-data/scout-cves.sarif.json"
        ))
        .unwrap();
        let findings = parse_scout_sarif(&text).unwrap();
        // One finding per result: CVE-2023-4039 is reported for two packages' files.
        let c = SeverityCounts::of(&findings);
        assert_eq!(
            [c.critical, c.high, c.medium, c.low, c.unknown],
            [1, 1, 2, 0, 1]
        );
        let setuptools = findings.iter().find(|f| f.id == "CVE-2024-6345").unwrap();
        assert_eq!(setuptools.package.as_deref(), Some("pypi/setuptools"));
        assert_eq!(setuptools.installed.as_deref(), Some("68.1.2"));
        assert_eq!(setuptools.fixed.as_deref(), Some("70.0.0"));
        let gcc = findings.iter().find(|f| f.id == "CVE-2023-4039").unwrap();
        assert_eq!(gcc.package.as_deref(), Some("deb/debian/gcc-12"));
        assert_eq!(gcc.fixed, None, "`not fixed` is no fixed version");
        let err = parse_scout_sarif("{}").unwrap_err();
        assert_eq!(err.to_string(), "no `runs` list: not a SARIF report");
    }

    #[test]
    fn command_line() {
        let s = Scout::new("app:1")
            .severities([Severity::Critical])
            .only_fixed(true);
        assert_eq!(
            s.command().to_string(),
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

    #[test]
    fn sarif_results_take_their_rule() {
        let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"docker scout","rules":[
          {"id":"CVE-2","shortDescription":{"text":"CVE-2"},"properties":{"cvssV3_severity":"HIGH",
           "fixed_version":"not fixed","purls":["pkg:deb/debian/zlib@1.2?arch=amd64"]}},
          {"id":"CVE-1","properties":{"cvssV3_severity":"CRITICAL","fixed_version":"3.1",
           "purl":"pkg:pypi/flask@2.0"}}]}},
          "results":[{"ruleId":"CVE-1","ruleIndex":0,"message":{"text":"flask is old"},
           "locations":[{"physicalLocation":{"artifactLocation":{"uri":"/app/req.txt"}}}]},
           {"ruleId":"CVE-2","ruleIndex":0}]},
          {"tool":{"driver":{"rules":[{"id":"CVE-3"}]}}}]}"#;
        let found = parse_scout_sarif(sarif).unwrap();
        assert_eq!(found.len(), 3);
        // `ruleIndex` 0 names another rule: the rule is found by id.
        assert_eq!(found[0].id, "CVE-1");
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(found[0].title, "flask is old");
        assert_eq!(found[0].package.as_deref(), Some("pypi/flask"));
        assert_eq!(found[0].fixed.as_deref(), Some("3.1"));
        assert_eq!(found[0].location.as_deref(), Some("/app/req.txt"));
        assert_eq!(
            (found[1].title.as_str(), found[1].fixed.as_deref()),
            ("CVE-2", None)
        );
        assert_eq!(found[1].installed.as_deref(), Some("1.2"));
        // A run without results: one finding per rule.
        assert_eq!(
            (found[2].id.as_str(), found[2].severity),
            ("CVE-3", Severity::Unknown)
        );
        let e = parse_scout_sarif(r#"{"version":"2.1.0"}"#).unwrap_err();
        assert!(e.to_string().contains("no `runs` list"), "{e}");
        let e = parse_scout_sarif(r#"{"runs":[{"results":[{"ruleIndex":"0"}]}]}"#).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("`docker scout cves` printed JSON of an unexpected shape"),
            "{e:#}"
        );
    }

    #[test]
    fn the_timeout_limits_the_scout_command() {
        assert_eq!(
            Scout::new("app:1").command().get_timeout(),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            Scout::new("app:1")
                .timeout(Duration::from_secs(42))
                .command()
                .get_timeout(),
            Some(Duration::from_secs(42))
        );
    }
}
