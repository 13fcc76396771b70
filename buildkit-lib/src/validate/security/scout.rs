//! The Docker Scout adapter: the plugin probe, the command line, and Scout's SARIF read
//! into typed findings.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::model::{text_of, Finding, ScanReport, ScannerMissing, Severity, Source};
use crate::cmd::{Cmd, Failure, Runner};

const SCOUT_INSTALL: &str = "install the Docker Scout CLI plugin \
     (https://github.com/docker/scout-cli), for example `curl -fsSL \
     https://raw.githubusercontent.com/docker/scout-cli/main/install.sh | sh`, then `docker login`; \
     or skip this step explicitly";

/// Docker Scout: `docker scout cves --format sarif IMAGE`.
#[derive(Debug, Clone)]
#[must_use]
pub struct Scout {
    /// Only report these severities (`--only-severity`), all when empty.
    pub(crate) severities: Vec<Severity>,
    /// Only vulnerabilities with a fix (`--only-fixed`).
    pub(crate) only_fixed: bool,
    /// Stop a scan that takes longer.
    pub(crate) timeout: Duration,
}

impl Scout {
    /// Docker Scout with its defaults: every severity, fixed or not, a 15-minute timeout.
    pub fn new() -> Scout {
        Scout::default()
    }

    /// Only report these severities (`--only-severity`), all when empty.
    ///
    /// Adds one; call again for more.
    pub fn severity(mut self, severity: Severity) -> Scout {
        self.severities.push(severity);
        self
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
                line: None,
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

    #[test]
    fn command_line() {
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
