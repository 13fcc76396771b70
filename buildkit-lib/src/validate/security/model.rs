//! The shared model of every security check: typed [`Finding`]s with a [`Severity`], the
//! [`ScanReport`] of one check of one image, the [`Threshold`] that turns a report into pass
//! or fail, and [`ScannerMissing`], the error of a scan that did not happen.

use std::fmt;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::cmd::{CommandError, Failure};

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
    pub(crate) fn builtin(
        id: &str,
        severity: Severity,
        title: String,
        location: Option<String>,
    ) -> Finding {
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
    pub(crate) fn new(source: Source, image: &str, mut findings: Vec<Finding>) -> ScanReport {
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

pub(super) fn missing_or(
    e: CommandError,
    tool: &'static str,
    install: &'static str,
) -> anyhow::Error {
    if matches!(e.failure, Failure::NotFound { .. }) {
        anyhow::Error::new(ScannerMissing { tool, install })
    } else {
        anyhow::Error::new(e)
    }
}

pub(super) fn text_of(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
