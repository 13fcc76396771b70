//! The trivy adapter: the command line, and trivy's JSON report read into typed findings.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::model::{missing_or, text_of, Finding, ScanReport, Severity, Source};
use crate::cmd::{Cmd, Runner};

const TRIVY_INSTALL: &str = "install trivy (https://trivy.dev/latest/getting-started/installation/), \
     for example `curl -sfL https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh \
     | sh -s -- -b /usr/local/bin`, or skip this step explicitly";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let t = Trivy {
            severities: vec![Severity::High, Severity::Critical],
            ignore_unfixed: true,
            ..Trivy::default()
        };
        assert_eq!(
            t.command("app:1").to_string(),
            "trivy image --format json --quiet --severity HIGH,CRITICAL --ignore-unfixed app:1"
        );
    }
}
