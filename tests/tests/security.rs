//! Security checks: the built-in checks on real images with planted sentinels, and the
//! trivy / Docker Scout adapters on JSON in their documented shapes, run through fake
//! binaries (neither tool can be installed here).

use std::path::{Path, PathBuf};

use buildkit_lib::validate::security::{
    self, parse_scout_sarif, parse_trivy, ScannerMissing, Scout, Severity, SeverityCounts, Source,
    Threshold, Trivy,
};
use buildkit_lib::{Cmd, Runner};

fn fixture(name: &str) -> PathBuf {
    e2e::repo_root().join("tests/fixtures-data").join(name)
}

fn counts(c: &SeverityCounts) -> [usize; 5] {
    [c.critical, c.high, c.medium, c.low, c.unknown]
}

#[test]
fn trivy_json_is_parsed_into_typed_findings() {
    let text = std::fs::read_to_string(fixture("trivy-image.json")).unwrap();
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
fn scout_sarif_is_parsed_into_typed_findings() {
    let text = std::fs::read_to_string(fixture("scout-cves.sarif.json")).unwrap();
    let findings = parse_scout_sarif(&text).unwrap();
    // One finding per result: CVE-2023-4039 is reported for two packages' files.
    assert_eq!(counts(&SeverityCounts::of(&findings)), [1, 1, 2, 0, 1]);
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
fn trivy_runs_through_its_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let argv_file = dir.path().join("argv");
    let fake = e2e::FakeBin::new().script(
        "trivy",
        &format!(
            "echo \"$@\" > '{}'\ncat '{}'",
            argv_file.display(),
            fixture("trivy-image.json").display()
        ),
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let trivy = Trivy {
        severities: vec![Severity::Medium, Severity::High, Severity::Critical],
        ..Trivy::default()
    };
    let report = trivy.scan(&runner, "app:1").unwrap();
    assert_eq!(
        std::fs::read_to_string(&argv_file).unwrap(),
        "image --format json --quiet --severity MEDIUM,HIGH,CRITICAL app:1\n"
    );
    assert_eq!(report.source, Source::Trivy);
    assert_eq!(counts(&report.counts), [2, 2, 1, 1, 1]);
    assert_eq!(report.findings[0].severity, Severity::Critical);
    // The default threshold (any HIGH or CRITICAL) fails the step...
    let err = Threshold::default().check(&report).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("trivy scan of app:1 failed: 4 findings at HIGH or above (allowed: 0); "));
    // ...a looser one lets it through.
    Threshold {
        fail_on: Severity::Critical,
        max_allowed: 2,
    }
    .check(&report)
    .unwrap();
}

#[test]
fn trivy_that_fails_is_an_error_not_a_pass() {
    let fake = e2e::FakeBin::new().script(
        "trivy",
        "echo 'FATAL unable to initialize the vulnerability database' >&2\nexit 1",
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let err = Trivy::default().scan(&runner, "app:1").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: process didn't exit successfully: `trivy image --format json \
         --quiet app:1` (exit status: 1)\n--- last 1 lines of output\nFATAL unable to \
         initialize the vulnerability database"
    );
}

#[test]
fn missing_scanners_say_so_and_how_to_install() {
    let empty = e2e::FakeBin::new();
    let runner = e2e::runner().env("PATH", empty.path_env_only());
    let err = Trivy::default().scan(&runner, "app:1").unwrap_err();
    let missing = err
        .downcast_ref::<ScannerMissing>()
        .expect("a ScannerMissing error");
    assert_eq!(missing.tool, "trivy");
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: trivy is not installed, so the image was not scanned (this is \
         not a pass)\nhelp: install trivy (https://trivy.dev/latest/getting-started/installation/), \
         for example `curl -sfL https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh \
         | sh -s -- -b /usr/local/bin`, or skip this step explicitly"
    );

    // docker is there, its scout plugin is not (what the real CLI prints).
    let fake = e2e::FakeBin::new().script(
        "docker",
        "echo 'docker: unknown command: docker scout' >&2\necho >&2\necho \"Run 'docker --help' for more information\" >&2\nexit 1",
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let err = Scout::default().scan(&runner, "app:1").unwrap_err();
    let missing = err
        .downcast_ref::<ScannerMissing>()
        .expect("a ScannerMissing error");
    assert_eq!(missing.tool, "Docker Scout");
    assert!(format!("{err:#}").starts_with(
        "docker scout scan of app:1: Docker Scout is not installed, so the image was not \
         scanned (this is not a pass)\nhelp: install the Docker Scout CLI plugin"
    ));
}

#[test]
fn scout_runs_through_its_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv");
    let fake = e2e::FakeBin::new().script(
        "docker",
        &format!(
            "echo \"$@\" >> '{log}'\nif [ \"$1 $2\" = 'scout version' ]; then echo 'version: v1.14.0'; exit 0; fi\n\
             if [ \"$1 $2\" = 'scout cves' ]; then cat '{fixture}'; exit 0; fi\nexit 9",
            log = log.display(),
            fixture = fixture("scout-cves.sarif.json").display()
        ),
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let report = Scout::default().scan(&runner, "app:1").unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "scout version\nscout cves --format sarif app:1\n"
    );
    assert_eq!(report.source, Source::Scout);
    assert_eq!(counts(&report.counts), [1, 1, 2, 0, 1]);
    assert!(Threshold::default().check(&report).is_err());
}

fn build(runner: &Runner, dir: &Path, tag: &str, dockerfile: &str, build_args: &[&str]) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let mut cmd = Cmd::new("docker").args([
        "buildx",
        "build",
        "--progress=plain",
        "--network",
        "none",
        "--load",
        "-t",
        tag,
        "--build-arg",
    ]);
    cmd = cmd.arg(format!("BASE={}", e2e::BUSYBOX_IMAGE));
    for a in build_args {
        cmd = cmd.arg("--build-arg").arg(*a);
    }
    runner.run(&cmd.arg_path(dir)).unwrap();
}

struct RemoveImage<'a>(&'a Runner, String);

impl Drop for RemoveImage<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .capture(&Cmd::new("docker").args(["image", "rm", "-f", &self.1]));
    }
}

#[test]
fn builtin_checks_find_planted_secrets_in_a_real_image() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{}:1", e2e::unique("security-sentinel"));
    let _cleanup = RemoveImage(&runner, tag.clone());
    let token = format!("ghp_{}", "Zq9".repeat(12));
    build(
        &runner,
        dir.path(),
        &tag,
        &format!(
            "ARG BASE\nFROM ${{BASE}}\nENV API_TOKEN=sentinel-env-value-41\n\
             LABEL deploy.password=sentinel-label-value-42\nARG DEPLOY_PASSWORD\n\
             RUN echo \"$DEPLOY_PASSWORD\" > /dev/null\nRUN echo {token} > /dev/null\n\
             CMD [\"sh\"]\n"
        ),
        &["DEPLOY_PASSWORD=sentinel-arg-value-43"],
    );
    let report = security::check_image(&runner, &tag).unwrap();
    let found: Vec<(&str, Severity, &str)> = report
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.severity, f.title.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "secret-in-history",
                Severity::Critical,
                "a token is written in the build history: ghp_***"
            ),
            (
                "secret-in-env",
                Severity::High,
                "ENV API_TOKEN has a value baked into the image: sent*** (pass secrets at run \
                 time or with `--secret`)"
            ),
            (
                "secret-in-history",
                Severity::High,
                "DEPLOY_PASSWORD has a value in the build history: sent***"
            ),
            (
                "secret-in-label",
                Severity::High,
                "LABEL deploy.password has a value baked into the image: sent*** (pass secrets \
                 at run time or with `--secret`)"
            ),
            (
                "runs-as-root",
                Severity::Medium,
                "the container runs as root (no USER); add a USER with a non-zero uid"
            ),
            (
                "no-healthcheck",
                Severity::Low,
                "the image has no HEALTHCHECK: orchestrators cannot tell a hung app from a \
                 healthy one"
            ),
        ]
    );
    // No finding prints a secret in full.
    let shown = report.to_string();
    for secret in [
        "sentinel-env-value-41",
        "sentinel-label-value-42",
        "sentinel-arg-value-43",
        token.as_str(),
    ] {
        assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
    }
    assert!(Threshold::default().check(&report).is_err());
}

#[test]
fn builtin_checks_pass_a_clean_image() {
    let runner = e2e::engine();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{}:1", e2e::unique("security-clean"));
    let _cleanup = RemoveImage(&runner, tag.clone());
    build(
        &runner,
        dir.path(),
        &tag,
        "ARG BASE\nFROM ${BASE}\nENV APP_HOME=/app GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D\n\
         USER 1000:1000\nHEALTHCHECK --interval=30s CMD [\"true\"]\nCMD [\"sh\"]\n",
        &[],
    );
    let report = security::check_image(&runner, &tag).unwrap();
    assert!(report.findings.is_empty(), "{report}");
    Threshold {
        fail_on: Severity::Low,
        max_allowed: 0,
    }
    .check(&report)
    .unwrap();
}
