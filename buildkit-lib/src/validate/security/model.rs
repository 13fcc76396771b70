//! The shared model of every security check: typed [`ScanFinding`]s with a [`Severity`], the
//! [`ScanReport`] of one check of one image, the threshold that turns a report into pass
//! or fail ([`ScanReport::verdict`]), and [`ScannerMissing`], the error of a scan that did
//! not happen.

use std::fmt;

use anyhow::{bail, Result};

use crate::cmd::{CommandError, Failure};
use crate::validate::Verdict;

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
    pub(crate) fn parse(word: &str) -> Severity {
        match word.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" | "MODERATE" => Severity::Medium,
            "LOW" | "NEGLIGIBLE" => Severity::Low,
            _ => Severity::Unknown,
        }
    }

    /// The upper-case name scanners use.
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum Source {
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

/// One problem found in an image or a Dockerfile: its id and severity here; its title,
/// package and versions, and where it is are in the [`ScanReport`]'s `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanFinding {
    /// The check that found it.
    pub(crate) source: Source,
    /// Its id: a CVE (`CVE-2024-1234`), a trivy rule (`aws-access-key-id`, `DS002`) or one
    /// of ours (`runs-as-root`, `secret-in-env`,
    /// `secret-in-label`, `secret-in-history`, `no-healthcheck`).
    pub id: String,
    /// How bad it is.
    pub severity: Severity,
    /// One line saying what it is (secret values are masked).
    pub(crate) title: String,
    /// The affected package, for vulnerabilities.
    pub(crate) package: Option<String>,
    /// The installed version, for vulnerabilities.
    pub(crate) installed: Option<String>,
    /// The version that fixes it, when there is one.
    pub(crate) fixed: Option<String>,
    /// Where: a scanner target (for trivy's secrets and misconfigurations, the file),
    /// `ENV NAME`, `LABEL name`, or the history step.
    pub(crate) location: Option<String>,
    /// The 1-based line in `location`, when the scanner gives one.
    pub(crate) line: Option<u32>,
}

impl ScanFinding {
    pub(crate) fn builtin(
        id: &str,
        severity: Severity,
        title: String,
        location: Option<String>,
    ) -> ScanFinding {
        ScanFinding {
            source: Source::Builtin,
            id: id.to_string(),
            severity,
            title,
            package: None,
            installed: None,
            fixed: None,
            location,
            line: None,
        }
    }
}

/// Findings counted by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SeverityCounts {
    /// Critical findings.
    pub(crate) critical: usize,
    /// High findings.
    pub(crate) high: usize,
    /// Medium findings.
    pub(crate) medium: usize,
    /// Low findings.
    pub(crate) low: usize,
    /// Unrated findings.
    pub(crate) unknown: usize,
}

impl SeverityCounts {
    /// Counts `findings`.
    pub(crate) fn of(findings: &[ScanFinding]) -> SeverityCounts {
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
    pub(crate) fn at_or_above(&self, severity: Severity) -> usize {
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
    pub(crate) fn total(&self) -> usize {
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

/// A part of a scan that did not happen, and why: its absence of findings means nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotChecked {
    /// What was not checked (`vulnerabilities`, `misconfigurations`, `everything`).
    pub(crate) what: String,
    /// Why, and what to do about it.
    pub(crate) reason: String,
}

impl NotChecked {
    pub(crate) fn new(what: &str, reason: impl Into<String>) -> NotChecked {
        NotChecked {
            what: what.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for NotChecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} not checked: {}", self.what, self.reason)
    }
}

/// The findings of one check of one image (or of one set of Dockerfiles).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanReport {
    /// Which check.
    pub(crate) source: Source,
    /// The image (or path) checked.
    pub(crate) image: String,
    /// What it found, worst first.
    pub findings: Vec<ScanFinding>,
    /// The findings counted by severity.
    pub(crate) counts: SeverityCounts,
    /// The parts that could not run: while this is not empty the report is never a pass.
    pub(crate) not_checked: Vec<NotChecked>,
}

impl ScanReport {
    pub(crate) fn new(source: Source, image: &str, mut findings: Vec<ScanFinding>) -> ScanReport {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.location.cmp(&b.location))
                .then_with(|| a.line.cmp(&b.line))
        });
        ScanReport {
            source,
            image: image.to_string(),
            counts: SeverityCounts::of(&findings),
            findings,
            not_checked: Vec::new(),
        }
    }

    pub(crate) fn with_not_checked(mut self, parts: Vec<NotChecked>) -> ScanReport {
        self.not_checked.extend(parts);
        self
    }

    /// The report against a threshold: fail when more than `max_allowed` findings are at
    /// `fail_on` or worse (whether or not every part ran: what was found is real), else
    /// not checked when a part of the scan did not run, else pass; never
    /// [`Verdict::Warn`]. The usual threshold is `(Severity::High, 0)`: any HIGH or
    /// CRITICAL finding fails.
    pub fn verdict(&self, fail_on: Severity, max_allowed: usize) -> Verdict {
        Threshold::new(fail_on, max_allowed).verdict(self)
    }

    /// Ok only when the [`verdict`](ScanReport::verdict) is a pass; otherwise an error
    /// with the counts and the findings that count, or with the parts that did not run.
    pub fn check(&self, fail_on: Severity, max_allowed: usize) -> Result<()> {
        Threshold::new(fail_on, max_allowed).check(self)
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
                match x.line {
                    Some(n) => write!(f, " ({l}:{n})")?,
                    None => write!(f, " ({l})")?,
                }
            }
        }
        for part in &self.not_checked {
            write!(f, "\n  {part}")?;
        }
        Ok(())
    }
}

/// When a scan fails the step: more than `max_allowed` findings at `fail_on` or worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Threshold {
    /// The lowest severity that counts.
    pub(crate) fail_on: Severity,
    /// How many such findings are tolerated.
    pub(crate) max_allowed: usize,
}

impl Threshold {
    fn new(fail_on: Severity, max_allowed: usize) -> Threshold {
        Threshold {
            fail_on,
            max_allowed,
        }
    }
}

impl Threshold {
    /// Pass, fail, or not checked (a part of the scan did not run); never
    /// [`Verdict::Warn`].
    fn verdict(&self, report: &ScanReport) -> Verdict {
        let over = report.counts.at_or_above(self.fail_on);
        if over > self.max_allowed {
            Verdict::Fail
        } else if !report.not_checked.is_empty() {
            Verdict::NotChecked
        } else {
            Verdict::Pass
        }
    }

    /// Ok only for [`Verdict::Pass`]; otherwise an error with the counts and the findings
    /// that count, or with the parts that did not run.
    fn check(&self, report: &ScanReport) -> Result<()> {
        let over = report.counts.at_or_above(self.fail_on);
        match self.verdict(report) {
            Verdict::Pass | Verdict::Warn => return Ok(()),
            Verdict::Fail => {}
            Verdict::NotChecked => {
                let mut msg = format!(
                    "{} scan of {} is not a pass: part of it did not run ({})",
                    report.source, report.image, report.counts
                );
                for part in &report.not_checked {
                    msg.push_str(&format!("\n  {part}"));
                }
                bail!(msg)
            }
        }
        let mut msg = format!(
            "{} scan of {} failed: {over} findings at {} or above (allowed: {}); {}",
            report.source, report.image, self.fail_on, self.max_allowed, report.counts
        );
        for part in &report.not_checked {
            msg.push_str(&format!("; {} not checked", part.what));
        }
        for x in report
            .findings
            .iter()
            .filter(|x| x.severity >= self.fail_on)
            .take(20)
        {
            msg.push_str(&format!("\n  {:<8} {}  {}", x.severity, x.id, x.title));
        }
        // What did not run is said beside what failed: more may be there.
        if !report.not_checked.is_empty() {
            let parts: Vec<String> = report.not_checked.iter().map(|p| p.to_string()).collect();
            msg.push_str(&format!(
                "\nalso not checked, so there may be more: {}",
                parts.join("; ")
            ));
        }
        bail!(msg)
    }
}

/// A scanner that is not installed: the scan did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScannerMissing {
    /// The scanner.
    pub tool: &'static str,
    /// How to install it.
    pub(crate) install: &'static str,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_and_order() {
        assert_eq!(Severity::parse("moderate"), Severity::Medium);
        assert_eq!(Severity::parse("UNSPECIFIED"), Severity::Unknown);
        assert!(Severity::Critical > Severity::High);
        let findings: Vec<ScanFinding> = [Severity::Critical, Severity::Low, Severity::High]
            .iter()
            .map(|&s| ScanFinding::builtin("x", s, String::new(), None))
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
                ScanFinding::builtin("CVE-1", Severity::High, "bad".into(), None),
                ScanFinding::builtin("CVE-2", Severity::Low, "meh".into(), None),
            ],
        );
        assert!(Threshold {
            fail_on: Severity::Critical,
            max_allowed: 0
        }
        .check(&report)
        .is_ok());
        let err = report.check(Severity::High, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trivy scan of app:1 failed: 1 findings at HIGH or above (allowed: 0); 2 findings \
             (CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 0)\n  HIGH     CVE-1  bad"
        );
    }

    #[test]
    fn a_part_not_checked_is_never_a_pass() {
        let clean = ScanReport::new(Source::Trivy, "app:1", Vec::new());
        assert_eq!(clean.verdict(Severity::High, 0), Verdict::Pass);
        let partial = clean
            .clone()
            .with_not_checked(vec![NotChecked::new("vulnerabilities", "no database")]);
        let loose = Threshold {
            fail_on: Severity::Critical,
            max_allowed: 100,
        };
        assert_eq!(loose.verdict(&partial), Verdict::NotChecked);
        assert_eq!(
            loose.check(&partial).unwrap_err().to_string(),
            "trivy scan of app:1 is not a pass: part of it did not run (0 findings (CRITICAL: \
             0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0))\n  vulnerabilities not checked: no \
             database"
        );
        // What was found still fails, checked or not.
        let mut found = ScanReport::new(
            Source::Trivy,
            "app:1",
            vec![ScanFinding::builtin(
                "CVE-1",
                Severity::High,
                "bad".into(),
                None,
            )],
        );
        found.not_checked = partial.not_checked.clone();
        assert_eq!(found.verdict(Severity::High, 0), Verdict::Fail);
        assert_eq!(found.counts.at_or_above(Severity::High), 1);
        // Its error's last line says what did not run, beside the finding that failed it.
        let err = found.check(Severity::High, 0).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].ends_with("; vulnerabilities not checked"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "  HIGH     CVE-1  bad");
        assert_eq!(
            lines.last().copied(),
            Some(
                "also not checked, so there may be more: vulnerabilities not checked: no database"
            )
        );
        // Every part ran: no such line.
        let mut complete = found.clone();
        complete.not_checked.clear();
        let err = complete.check(Severity::High, 0).unwrap_err().to_string();
        assert!(!err.contains("not checked"), "{err}");
        assert!(partial
            .to_string()
            .ends_with("\n  vulnerabilities not checked: no database"));
    }
}
