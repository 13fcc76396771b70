//! The GitHub Actions cache: which service (v1 or v2) the environment offers, the errors
//! that say how to expose it, and whether the builder is new enough for v2.

use anyhow::bail;
use semver::Version;

use crate::cmd::{Cmd, Runner};
use crate::docker::builder::{buildx_version, loose_version, BuilderVersions};

/// The runtime token buildx passes to the `gha` cache backend (a secret).
pub(crate) const GHA_TOKEN: &str = "ACTIONS_RUNTIME_TOKEN";
/// The v1 cache service's address.
pub(crate) const GHA_CACHE_URL: &str = "ACTIONS_CACHE_URL";
/// The v2 cache service's address (the Actions results service).
pub(crate) const GHA_RESULTS_URL: &str = "ACTIONS_RESULTS_URL";
/// Set to a true value (`true`, `1`, ...) by runners whose cache is the v2 service.
pub(crate) const GHA_SERVICE_V2: &str = "ACTIONS_CACHE_SERVICE_V2";

/// The first BuildKit release that speaks the v2 cache service.
pub(crate) const GHA_V2_MIN_BUILDKIT: Version = Version::new(0, 20, 0);
/// The first buildx release that passes `ACTIONS_RESULTS_URL` to BuildKit.
pub(crate) const GHA_V2_MIN_BUILDX: Version = Version::new(0, 21, 0);
/// The first Docker engine release whose built-in BuildKit is 0.20 or newer.
pub(crate) const GHA_V2_MIN_ENGINE: u64 = 28;

/// How to expose the runtime variables to `run:` steps (said in every error about them).
pub(super) const EXPOSE_HINT: &str = "the runner gives these variables to actions, not to `run:` \
     steps: add `- uses: crazy-max/ghaction-github-runtime@v3` before this step (it \
     exports every ACTIONS_* variable to the later steps of the job)";

/// Which GitHub Actions cache service a `gha` cache talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GhaService {
    /// The one the environment offers, read when the build runs.
    #[default]
    Auto,
    /// The legacy service at `ACTIONS_CACHE_URL` (`version=1`); github.com shut it down
    /// on 2025-04-15, GitHub Enterprise Server and self-hosted cache servers may keep it.
    V1,
    /// The current service at `ACTIONS_RESULTS_URL` (`version=2`): BuildKit 0.20 and
    /// buildx 0.21 or newer.
    V2,
}

/// Go's `strconv.ParseBool`, which buildx applies to `ACTIONS_CACHE_SERVICE_V2`.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl GhaService {
    /// The service the environment offers, as buildx and the Actions toolkit read it: v2
    /// when `ACTIONS_CACHE_SERVICE_V2` is true (or when `ACTIONS_RESULTS_URL` is the only
    /// cache address), else v1 when `ACTIONS_CACHE_URL` is set. Fails, naming what is
    /// missing and how to expose it, when the environment offers neither or no token.
    #[cfg(test)]
    pub(crate) fn detect(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<GhaService> {
        resolve_service(GhaService::Auto, env)
    }
}

pub(super) fn resolve_service(
    wanted: GhaService,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<GhaService> {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    let in_actions = env("GITHUB_ACTIONS").as_deref() == Some("true");
    let v2_flag = env(GHA_SERVICE_V2).and_then(|v| go_bool(&v)) == Some(true);
    let (token, results, cache_url) = (set(GHA_TOKEN), set(GHA_RESULTS_URL), set(GHA_CACHE_URL));
    if !token && !results && !cache_url {
        if in_actions {
            bail!(
                "this GitHub Actions step does not see the runtime variables the gha cache \
                 needs ({GHA_TOKEN}, and {GHA_RESULTS_URL} with {GHA_SERVICE_V2}=true, or the \
                 older {GHA_CACHE_URL}): {EXPOSE_HINT}"
            );
        }
        bail!(
            "the gha cache needs the GitHub Actions runtime ({GHA_TOKEN} and \
             {GHA_RESULTS_URL}), and this process is not in a GitHub Actions job (GITHUB_ACTIONS \
             is not `true`); use a registry or local cache here"
        );
    }
    let service = match wanted {
        GhaService::Auto if v2_flag || (results && !cache_url) => GhaService::V2,
        GhaService::Auto => GhaService::V1,
        explicit => explicit,
    };
    let needed = match service {
        GhaService::V2 => GHA_RESULTS_URL,
        _ => GHA_CACHE_URL,
    };
    let missing: Vec<&str> = [GHA_TOKEN, needed]
        .into_iter()
        .filter(|k| !set(k))
        .collect();
    if !missing.is_empty() {
        let why = match (wanted, service) {
            (GhaService::Auto, GhaService::V2) if v2_flag => {
                format!("{GHA_SERVICE_V2} selects the v2 cache service")
            }
            (GhaService::Auto, _) => "the environment offers a cache service".to_string(),
            (_, GhaService::V2) => "the cache asks for the v2 service".to_string(),
            _ => "the cache asks for the v1 service".to_string(),
        };
        let hint = if in_actions {
            EXPOSE_HINT.to_string()
        } else {
            "the gha cache only works inside a GitHub Actions job".to_string()
        };
        bail!(
            "{why}, but {} {} not set: {hint}",
            missing.join(" and "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(service)
}

/// The service a cache entry names when it is a `type=gha` entry (read as buildx reads
/// it: CSV fields, keys in any case, `version=1|2`, [`GhaService::Auto`] without one);
/// `None` for another backend.
fn gha_service_of(entry: &str) -> Option<GhaService> {
    let fields: Vec<(String, String)> = super::csv_fields(entry)
        .into_iter()
        .filter_map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let value = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if value("type") != Some("gha") {
        return None;
    }
    Some(match value("version") {
        Some("1") => GhaService::V1,
        Some("2") => GhaService::V2,
        _ => GhaService::Auto,
    })
}

/// The `type=gha` entries of a bake target's cache list, with the service each names
/// (`version=1|2`; [`GhaService::Auto`] without one).
#[cfg(test)]
pub(crate) fn gha_entries(entries: &[String]) -> Vec<GhaService> {
    entries.iter().filter_map(|e| gha_service_of(e)).collect()
}

/// Resolves a list of cache entries (bake's, or raw `--cache-from`/`--cache-to` values)
/// against the environment, as [`Cache::resolve`](super::Cache::resolve) does; returns
/// whether any of them uses the v2 service.
pub(crate) fn resolve_gha_entries(
    entries: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<bool> {
    let mut v2 = false;
    for entry in entries {
        let Some(service) = gha_service_of(entry) else {
            continue;
        };
        let resolved = resolve_service(service, env)
            .map_err(|e| anyhow::anyhow!("cache `{entry}` cannot be used: {e}"))?;
        v2 |= resolved == GhaService::V2;
    }
    Ok(v2)
}

/// The `--cache-from` / `--cache-to` values among raw command-line arguments (both the
/// `--flag value` and `--flag=value` forms) that name the GitHub Actions cache.
pub(crate) fn gha_in_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = match arg.as_str() {
            "--cache-from" | "--cache-to" => iter.next().cloned(),
            other => other
                .strip_prefix("--cache-from=")
                .or_else(|| other.strip_prefix("--cache-to="))
                .map(str::to_string),
        };
        if let Some(value) = value.filter(|v| gha_service_of(v).is_some()) {
            out.push(value);
        }
    }
    out
}

/// Registers the runtime token for redaction, so a tool that prints it cannot leak it.
pub(crate) fn mask_gha_token(runner: &Runner) {
    if let Some(token) = runner.effective_env(&Cmd::new("docker"), GHA_TOKEN) {
        if !token.is_empty() {
            runner.mask_bytes(token.as_bytes());
        }
    }
}

/// Checks that buildx and the builder (`None`: buildx's current one) can use the v2
/// GitHub Actions cache service: buildx 0.21 or newer (it passes `ACTIONS_RESULTS_URL`
/// on), BuildKit 0.20 or newer (it speaks the service). The BuildKit built into a Docker
/// engine reports no version on some builds (`v0.0.0+unknown`); the engine's version
/// decides then (28.0 is the first with BuildKit 0.20). Costs `docker buildx version`,
/// `docker buildx inspect` and at most one `docker version`, all read-only; a version it
/// cannot read is not held against the builder.
pub(crate) fn check_gha_v2(runner: &Runner, builder: Option<&str>) -> anyhow::Result<()> {
    if let Some(buildx) = buildx_version(runner)? {
        if buildx < GHA_V2_MIN_BUILDX {
            bail!(
                "buildx {buildx} cannot use the GitHub Actions cache v2: it does not pass \
                 {GHA_RESULTS_URL} to BuildKit (buildx reads it from {GHA_V2_MIN_BUILDX} on); \
                 install a newer buildx (docker/setup-buildx-action installs the latest)"
            );
        }
    }
    let mut versions = BuilderVersions {
        builder: builder.map(str::to_string),
        ..BuilderVersions::default()
    };
    versions.read_builder(runner)?;
    let name = builder.unwrap_or("the current builder");
    let driver = versions.driver.as_deref().unwrap_or("unknown");
    let fix = "create a docker-container builder with a newer BuildKit (`docker buildx \
               create --driver docker-container --use`; docker/setup-buildx-action does this \
               in a workflow)";
    match &versions.reported_buildkit {
        Some(v) if *v < GHA_V2_MIN_BUILDKIT => bail!(
            "builder `{name}` (driver {driver}) runs BuildKit {v}, and the GitHub Actions cache \
             v2 needs BuildKit {GHA_V2_MIN_BUILDKIT} or newer: {fix}"
        ),
        Some(_) => Ok(()),
        None if driver == "docker" => {
            let engine = versions.engine.as_deref().unwrap_or_default();
            match loose_version(engine) {
                Some(v) if v.major < GHA_V2_MIN_ENGINE => bail!(
                    "builder `{name}` uses the BuildKit built into Docker engine {engine}, \
                     older than BuildKit {GHA_V2_MIN_BUILDKIT} (engine 26 has BuildKit 0.13; \
                     {GHA_V2_MIN_ENGINE}.0 is the first engine with 0.20), and the GitHub \
                     Actions cache v2 needs {GHA_V2_MIN_BUILDKIT} or newer: {fix}, or upgrade \
                     the engine"
                ),
                _ => Ok(()),
            }
        }
        None => Ok(()),
    }
}
