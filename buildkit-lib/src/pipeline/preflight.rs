//! The engine check a pipeline makes once, before any step runs: when a step needs the
//! Docker engine (an image build, an image output, or a step marked so), a missing
//! `docker`, an engine that does not answer or a missing buildx plugin stops the run
//! before anything changes (no version stamp, no tool environment, no log).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::{Cmd, CommandError, Failure, Runner};

/// What is missing for the pipeline's engine steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineProblem {
    /// The `docker` program is not on `PATH`.
    DockerMissing,
    /// The engine does not answer at this address.
    EngineDown {
        /// Where the client looked.
        host: String,
        /// The client's last line.
        detail: String,
    },
    /// `docker buildx` does not work (the plugin is missing or broken).
    BuildxMissing {
        /// The client's last line.
        detail: String,
    },
}

/// The pipeline needs the engine and cannot have it; nothing was run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineUnavailable {
    /// What is missing.
    pub(crate) problem: EngineProblem,
    /// The steps that needed it.
    pub(crate) steps: Vec<String>,
    /// How the embedding project starts its engine ([`Runner::engine_help`]).
    pub(crate) help: Option<String>,
}

impl fmt::Display for EngineUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = self.steps.join(", ");
        match &self.problem {
            EngineProblem::DockerMissing => write!(
                f,
                "steps {steps} need the Docker engine, but `docker` is not installed (not \
                 found on PATH); no step was run\nhelp: install the Docker CLI and engine (on \
                 Debian: `apt-get install docker.io docker-buildx`)"
            )?,
            EngineProblem::EngineDown { host, detail } => write!(
                f,
                "steps {steps} need the Docker engine at {host}, and it does not answer \
                 ({detail}); no step was run\nhelp: start it{}, or point DOCKER_HOST or \
                 `docker context use` at a running engine",
                self.help
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            )?,
            EngineProblem::BuildxMissing { detail } => write!(
                f,
                "steps {steps} build images with `docker buildx`, and it does not work \
                 ({detail}); no step was run\nhelp: install the buildx plugin (on Debian: \
                 `apt-get install docker-buildx`; it goes to /usr/libexec/docker/cli-plugins/)"
            )?,
        }
        if let (Some(help), EngineProblem::DockerMissing) = (&self.help, &self.problem) {
            write!(f, "; then {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineUnavailable {}

impl EngineUnavailable {
    /// Whether no engine answers (or `docker` itself is missing), so that starting one
    /// would help; false when the engine answers and the buildx plugin is what fails.
    pub fn is_engine_down(&self) -> bool {
        matches!(
            self.problem,
            EngineProblem::DockerMissing | EngineProblem::EngineDown { .. }
        )
    }
}

fn last_line(e: &CommandError) -> String {
    e.tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| e.to_string().lines().next().unwrap_or_default().to_string())
}

/// Checks the engine (and buildx when `buildx`), through `runner`, for `steps`. A buildx
/// plugin that answered before is not run again while its file is unchanged: `stamp`
/// (when given) remembers the plugin file that last answered.
pub(crate) fn check_engine(
    runner: &Runner,
    steps: Vec<String>,
    buildx: bool,
    stamp: Option<&Path>,
) -> Result<(), EngineUnavailable> {
    let fail = |problem| EngineUnavailable {
        problem,
        steps: steps.clone(),
        help: runner.get_engine_help().map(str::to_string),
    };
    let version = Cmd::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .read_only()
        .timeout(Duration::from_secs(20));
    // An engine on a unix socket answers `GET /_ping` in a millisecond; the client must
    // still be installed, since the steps run it.
    let ping = runner.engine_get("/_ping");
    let pinged = match (&ping, runner.program_path(&version)) {
        (_, None) => Err(fail(EngineProblem::DockerMissing)),
        (Some(Ok((200, body))), Some(_)) if body == "OK" => Ok(true),
        (Some(Err(e)), Some(_)) => Err(fail(EngineProblem::EngineDown {
            host: format!("unix://{}", runner.engine_socket().unwrap_or_default()),
            detail: e.tail.first().cloned().unwrap_or_else(|| e.to_string()),
        })),
        _ => Ok(false),
    };
    let answered = pinged?;
    if let Some(e) = (!answered)
        .then(|| runner.capture(&version).err())
        .flatten()
    {
        return Err(fail(match &e.failure {
            Failure::NotFound { .. } => EngineProblem::DockerMissing,
            Failure::EngineUnreachable { host, .. } => EngineProblem::EngineDown {
                host: host.clone(),
                detail: last_line(&e),
            },
            _ => EngineProblem::EngineDown {
                host: runner
                    .effective_env(&version, "DOCKER_HOST")
                    .unwrap_or_else(|| "the default socket".into()),
                detail: last_line(&e),
            },
        }));
    }
    if buildx {
        // `docker buildx version` first asks every CLI plugin for its metadata (about
        // 0.1 s); the plugin itself answers in a fifth of that. Found as the CLI finds it.
        let probe = Cmd::new("docker");
        let config = runner.effective_env(&probe, "DOCKER_CONFIG");
        let home = runner.effective_env(&probe, "HOME");
        let Some(plugin) = buildx_plugin(config.as_deref(), home.as_deref()) else {
            return Err(fail(EngineProblem::BuildxMissing {
                detail: format!(
                    "no docker-buildx in {}",
                    plugin_dirs(config.as_deref(), home.as_deref())
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }));
        };
        let identity = plugin_identity(&plugin);
        let known = stamp.and_then(|s| std::fs::read_to_string(s).ok());
        if identity.is_none() || known != identity {
            let version = Cmd::new(plugin.display().to_string())
                .arg("version")
                .read_only()
                .timeout(Duration::from_secs(20));
            if let Err(e) = runner.capture(&version) {
                return Err(fail(EngineProblem::BuildxMissing {
                    detail: last_line(&e),
                }));
            }
            if let (Some(stamp), Some(identity)) = (stamp, identity) {
                // Only a time saver: a stamp that cannot be written is asked again next run.
                let _ = runner.write(stamp, identity.as_bytes());
            }
        }
    }
    Ok(())
}

/// The plugin file as it is now: path, size, modification time and inode.
fn plugin_identity(plugin: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(plugin).ok()?;
    Some(format!(
        "{} {} {}.{} {}\n",
        plugin.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

/// Where the docker CLI looks for plugins, in its order: the user's config folder
/// (`$DOCKER_CONFIG`, else `~/.docker`), then the system folders.
fn plugin_dirs(docker_config: Option<&str>, home: Option<&str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match (docker_config.filter(|c| !c.is_empty()), home) {
        (Some(config), _) => dirs.push(Path::new(config).join("cli-plugins")),
        (None, Some(home)) => dirs.push(Path::new(home).join(".docker/cli-plugins")),
        (None, None) => {}
    }
    for dir in [
        "/usr/local/lib/docker/cli-plugins",
        "/usr/local/libexec/docker/cli-plugins",
        "/usr/lib/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

/// The buildx plugin the docker CLI would run: the first executable `docker-buildx`.
fn buildx_plugin(docker_config: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    plugin_dirs(docker_config, home)
        .into_iter()
        .map(|d| d.join("docker-buildx"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
