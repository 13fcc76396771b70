//! Asking each endpoint's builder, before anything builds, which driver it runs (and so
//! whether it pushes by digest or through a per-platform tag) and whether it answers.

use std::time::Duration;

use super::{Endpoint, PlatformEndpoint};
use crate::cmd::{Probe, Runner};
use crate::docker::builder;

/// What `docker buildx inspect` says of an endpoint's builder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub(crate) struct BuilderProbe {
    /// The driver (`docker`, `docker-container`, `remote`, `kubernetes`).
    pub(crate) driver: String,
    /// The platforms its nodes build (empty until a non-`docker` builder has started).
    pub(crate) platforms: Vec<String>,
}

impl BuilderProbe {
    /// Whether a build on this builder can push by digest.
    pub(crate) fn pushes_by_digest(&self) -> bool {
        self.driver != "docker"
    }

    /// Reads the text of `docker buildx inspect NAME`. buildx exits 0 and prints an
    /// `Error:` line when the builder's engine does not answer: that is an error here.
    pub(crate) fn parse(text: &str) -> Result<BuilderProbe, String> {
        let mut probe = BuilderProbe::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Driver" => probe.driver = value.to_string(),
                "Error" if !value.is_empty() => return Err(value.to_string()),
                "Platforms" => probe.platforms.extend(
                    value
                        .split(',')
                        .map(|p| p.trim().trim_end_matches('*').to_string())
                        .filter(|p| !p.is_empty()),
                ),
                _ => {}
            }
        }
        if probe.driver.is_empty() {
            return Err("`docker buildx inspect` names no driver".to_string());
        }
        Ok(probe)
    }
}

pub(super) fn probe(runner: &Runner, p: &PlatformEndpoint) -> Result<BuilderProbe, String> {
    // An engine on a unix socket answers `GET /_ping` in a millisecond, where
    // `docker buildx inspect` takes a tenth of a second; its builder is the engine's own
    // (`docker` driver).
    if let Endpoint::Host(host) = &p.endpoint {
        if host.starts_with("unix://") {
            return runner
                .probe(&Probe::engine_ping(host))
                .map(|_| docker_driver())
                .map_err(|e| format!("Cannot connect to the Docker daemon at {host} ({e})"));
        }
    }
    if let Some(found) = stored_probe(runner, p) {
        return found;
    }
    let name = p.endpoint.builder();
    let out = runner
        .capture(
            &builder::inspect_cmd(name, false)
                .timeout(Duration::from_secs(30))
                .dry_answer(format!("Name: {name}\nDriver: <driver>\n")),
        )
        .map_err(|e| {
            e.tail
                .last()
                .cloned()
                .unwrap_or_else(|| e.to_string())
                .trim_start_matches("ERROR: ")
                .to_string()
        })?;
    let probe = BuilderProbe::parse(&out.stdout)?;
    // A remote builder is "inactive" when buildx cannot reach its daemon (down, or the TLS
    // handshake refused): the build would wait 20 s and say only "context deadline
    // exceeded". Ask the daemon why, and fail before anything is built.
    if probe.driver == "remote" {
        let field = |key: &str| -> Vec<&str> {
            out.stdout
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim())
                .collect()
        };
        let statuses = field("Status");
        if !statuses.is_empty() && statuses.iter().all(|s| *s == "inactive") {
            let name = p.endpoint.builder();
            let endpoint = field("Endpoint").first().map(|e| e.to_string());
            if let Some(why) = builder::connection_error(runner, name) {
                return Err(
                    builder::explain(&why, endpoint.as_deref(), &Default::default())
                        .map(|e| format!("{e} ({why})"))
                        .unwrap_or(why),
                );
            }
        }
    }
    let wanted = &p.platform;
    if !probe.platforms.is_empty() && !probe.platforms.iter().any(|b| b == wanted) {
        return Err(format!(
            "builder {} builds {}, not {wanted}; point {wanted} at a builder that builds it, \
             or enable emulation there (binfmt/qemu)",
            p.endpoint.builder(),
            probe.platforms.join(", ")
        ));
    }
    Ok(probe)
}

/// A builder as buildx stores it (`$BUILDX_CONFIG/instances/NAME`): what
/// [`stored_probe`] reads. A file without these is not understood (buildx is asked).
#[derive(Debug, serde::Deserialize)]
struct StoredBuilderRow {
    #[serde(rename = "Driver")]
    driver: String,
    #[serde(rename = "Nodes")]
    nodes: Vec<StoredNodeRow>,
}

#[derive(Debug, serde::Deserialize)]
struct StoredNodeRow {
    #[serde(rename = "Endpoint")]
    endpoint: String,
    #[serde(
        rename = "Platforms",
        default,
        deserialize_with = "crate::rows::nullable"
    )]
    platforms: Vec<crate::rows::Platform>,
}

/// The probe of a buildx builder read from what buildx stored when it was created
/// (`instances/NAME` under `$BUILDX_CONFIG`, else `$DOCKER_CONFIG/buildx`, else
/// `~/.docker/buildx`), with each node's daemon or engine checked by a connection
/// instead of `docker buildx inspect` (which dials every node through gRPC: 0.3-0.6 s):
/// a TCP connect to a `remote` node, the engine ping of a `docker-container` node's
/// engine, each a probe of the runner. `None` (ask buildx) for other endpoints, or when
/// the file is missing or not understood.
fn stored_probe(runner: &Runner, p: &PlatformEndpoint) -> Option<Result<BuilderProbe, String>> {
    let Endpoint::Builder(name) = &p.endpoint else {
        return None;
    };
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let env = |key: &str| runner.effective_env(&crate::cmd::Cmd::new("docker"), key);
    let dir = env("BUILDX_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| env("DOCKER_CONFIG").map(|d| std::path::Path::new(&d).join("buildx")))
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".docker/buildx")))?;
    let text = std::fs::read_to_string(dir.join("instances").join(name)).ok()?;
    let stored: StoredBuilderRow = serde_json::from_str(&text).ok()?;
    let driver = stored.driver;
    let mut platforms = Vec::new();
    let mut endpoints = Vec::new();
    for node in stored.nodes {
        endpoints.push(node.endpoint);
        for platform in &node.platforms {
            platforms.push(platform.name()?);
        }
    }
    let answers = |endpoint: &str| -> Option<bool> {
        if driver == "remote" {
            let addr = endpoint.strip_prefix("tcp://")?;
            return Some(runner.probe(&Probe::tcp(addr)).is_ok());
        }
        if driver == "docker-container" && endpoint.starts_with("unix://") {
            return Some(runner.probe(&Probe::engine_ping(endpoint)).is_ok());
        }
        None
    };
    let mut any = false;
    for endpoint in &endpoints {
        any |= answers(endpoint)?;
    }
    if !any {
        let endpoint = endpoints.first().cloned().unwrap_or_default();
        let why = builder::connection_error(runner, name)
            .unwrap_or_else(|| format!("nothing answers at {endpoint}"));
        return Some(Err(builder::explain(
            &why,
            Some(&endpoint),
            &Default::default(),
        )
        .map(|e| format!("{e} ({why})"))
        .unwrap_or(why)));
    }
    let wanted = &p.platform;
    if !platforms.is_empty() && !platforms.iter().any(|b| b == wanted) {
        return Some(Err(format!(
            "builder {name} builds {}, not {wanted}; point {wanted} at a builder that builds \
             it, or enable emulation there (binfmt/qemu)",
            platforms.join(", ")
        )));
    }
    Some(Ok(BuilderProbe { driver, platforms }))
}

fn docker_driver() -> BuilderProbe {
    BuilderProbe {
        driver: "docker".into(),
        platforms: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_builders_are_rows() {
        let text = r#"{"Name":"fan","Driver":"remote","Nodes":[{"Name":"fan0","Endpoint":
          "tcp://10.0.0.2:1234","Platforms":[{"architecture":"arm64","os":"linux","variant":"v8"}],
          "Flags":null}],"Dynamic":false}"#;
        let row: StoredBuilderRow = serde_json::from_str(text).unwrap();
        assert_eq!(row.driver, "remote");
        assert_eq!(row.nodes[0].endpoint, "tcp://10.0.0.2:1234");
        assert_eq!(
            row.nodes[0].platforms[0].name().as_deref(),
            Some("linux/arm64/v8")
        );
        // Not understood: buildx is asked instead.
        let e = serde_json::from_str::<StoredBuilderRow>(r#"{"Nodes":[]}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `Driver`"), "{e}");
    }
}
