//! Image facts, typed: size, configuration, layer history, and the platforms of an index.
//!
//! Read from `docker image inspect`, `docker history` and `docker buildx imagetools
//! inspect --raw` as JSON, so size budgets and security checks compare numbers and names,
//! not formatted text.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};

/// A container health check from the image configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test (`["CMD-SHELL", "python -c ..."]`; `["NONE"]` disables an inherited one).
    pub test: Vec<String>,
    /// Interval between checks in nanoseconds (0: docker's default).
    pub interval_ns: u64,
    /// Timeout of one check in nanoseconds (0: docker's default).
    pub timeout_ns: u64,
    /// Start period in nanoseconds (0: docker's default).
    pub start_period_ns: u64,
    /// Failures before unhealthy (0: docker's default).
    pub retries: u64,
}

/// What `docker image inspect` says about a local image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageFacts {
    /// Image id (`sha256:...`).
    pub id: String,
    /// Tags (`RepoTags`).
    pub repo_tags: Vec<String>,
    /// Registry digests (`RepoDigests`).
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Architecture variant (`v8`), when any.
    pub variant: Option<String>,
    /// The user the container runs as (`""` means root).
    pub user: String,
    /// Exposed ports (`5000/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// The health check, when the image has one.
    pub healthcheck: Option<Healthcheck>,
    /// Names of the environment variables set (values are left out: they may be secret).
    pub env_names: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// Command.
    pub cmd: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Number of layers.
    pub layer_count: usize,
}

/// One entry of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer's image id, when known (`<missing>` entries have none).
    pub id: Option<String>,
    /// Size in bytes (0 for metadata-only steps such as `ENV`).
    pub size_bytes: u64,
    /// The instruction that made it.
    pub created_by: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// Comment (`buildkit.dockerfile.v0`).
    pub comment: String,
}

impl ImageFacts {
    /// Inspects a local image. When the engine is a local socket (`DOCKER_HOST=unix://...`)
    /// it asks the engine's API directly (about 1 ms, against 25 ms for starting the CLI,
    /// which matters after a fully cached build); otherwise, or when that fails, it runs
    /// `docker image inspect`.
    pub fn inspect(runner: &Runner, image: &str) -> anyhow::Result<ImageFacts> {
        if !runner.is_dry_run() {
            if let Some(value) = inspect_via_socket(runner, image) {
                return Ok(ImageFacts::from_json(&value));
            }
        }
        let out = runner
            .capture(
                &Cmd::new("docker")
                    .args(["image", "inspect", "--format", "{{json .}}", image])
                    .read_only(),
            )
            .with_context(|| format!("cannot inspect image {image}"))?;
        if out.dry_run {
            return Ok(ImageFacts::default());
        }
        let value: Value = serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("`docker image inspect {image}` did not print JSON"))?;
        Ok(ImageFacts::from_json(&value))
    }

    /// Reads facts from one object of `docker image inspect` output.
    pub fn from_json(v: &Value) -> ImageFacts {
        let config = &v["Config"];
        let mut exposed_ports: Vec<String> = config["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        exposed_ports.sort();
        let healthcheck = config["Healthcheck"].as_object().map(|h| Healthcheck {
            test: strings(&h.get("Test").cloned().unwrap_or(Value::Null)),
            interval_ns: h.get("Interval").and_then(Value::as_u64).unwrap_or(0),
            timeout_ns: h.get("Timeout").and_then(Value::as_u64).unwrap_or(0),
            start_period_ns: h.get("StartPeriod").and_then(Value::as_u64).unwrap_or(0),
            retries: h.get("Retries").and_then(Value::as_u64).unwrap_or(0),
        });
        let env_names = strings(&config["Env"])
            .into_iter()
            .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
            .collect();
        let labels = config["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        ImageFacts {
            id: text(&v["Id"]),
            repo_tags: strings(&v["RepoTags"]),
            repo_digests: strings(&v["RepoDigests"]),
            size_bytes: v["Size"].as_u64().unwrap_or(0),
            os: text(&v["Os"]),
            architecture: text(&v["Architecture"]),
            variant: v["Variant"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            user: text(&config["User"]),
            exposed_ports,
            healthcheck,
            env_names,
            labels,
            entrypoint: strings(&config["Entrypoint"]),
            cmd: strings(&config["Cmd"]),
            working_dir: text(&config["WorkingDir"]),
            layer_count: v["RootFS"]["Layers"].as_array().map_or(0, Vec::len),
        }
    }

    /// `os/architecture[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// True when the image runs as a user other than root.
    pub fn runs_as_non_root(&self) -> bool {
        let user = self.user.split(':').next().unwrap_or_default();
        !(user.is_empty() || user == "root" || user == "0")
    }
}

/// The layer history of a local image, newest first (`docker history --no-trunc
/// --human=false --format json`).
pub fn history(runner: &Runner, image: &str) -> anyhow::Result<Vec<Layer>> {
    let out = runner
        .capture(
            &Cmd::new("docker")
                .args([
                    "history",
                    "--no-trunc",
                    "--human=false",
                    "--format",
                    "json",
                    image,
                ])
                .read_only(),
        )
        .with_context(|| format!("cannot read the history of image {image}"))?;
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).with_context(|| {
                format!("`docker history {image}` printed a line that is not JSON")
            })?;
            // `Size` is a string of bytes with --human=false; accept a number too.
            let size_bytes = match &v["Size"] {
                Value::Number(n) => n.as_u64().unwrap_or(0),
                Value::String(s) => s.parse().unwrap_or(0),
                _ => 0,
            };
            let id = text(&v["ID"]);
            Ok(Layer {
                id: (!id.is_empty() && id != "<missing>").then_some(id),
                size_bytes,
                created_by: text(&v["CreatedBy"]),
                created_at: text(&v["CreatedAt"]),
                comment: text(&v["Comment"]),
            })
        })
        .collect()
}

/// The platforms of an image in a registry (`docker buildx imagetools inspect --raw`):
/// every platform of an index (attestation manifests left out), or the one platform of a
/// single manifest as `unknown` when the manifest does not say.
pub fn platforms(runner: &Runner, reference: &str) -> anyhow::Result<Vec<String>> {
    let raw = super::registry::inspect_raw(runner, reference)?;
    Ok(platforms_of_manifest(&raw))
}

/// The platforms listed in a raw manifest or index.
pub fn platforms_of_manifest(raw: &Value) -> Vec<String> {
    let Some(manifests) = raw["manifests"].as_array() else {
        return vec!["unknown".to_string()];
    };
    manifests
        .iter()
        .filter(|m| {
            m["annotations"]["vnd.docker.reference.type"].as_str() != Some("attestation-manifest")
        })
        .filter_map(|m| {
            let p = &m["platform"];
            let os = p["os"].as_str()?;
            let arch = p["architecture"].as_str()?;
            if os == "unknown" {
                return None;
            }
            Some(match p["variant"].as_str() {
                Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
                _ => format!("{os}/{arch}"),
            })
        })
        .collect()
}

/// `GET /images/<image>/json` on the engine's unix socket; `None` when the engine is not a
/// unix socket or anything goes wrong (the caller falls back to the CLI).
fn inspect_via_socket(runner: &Runner, image: &str) -> Option<Value> {
    let host = runner.effective_env(&Cmd::new("docker"), "DOCKER_HOST")?;
    let socket = host.strip_prefix("unix://")?;
    let name: String = image
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:/@+".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    match crate::engine::unix_get(socket, &format!("/images/{name}/json")).ok()? {
        (200, body) => {
            let value: Value = serde_json::from_str(&body).ok()?;
            value["Id"].is_string().then_some(value)
        }
        _ => None,
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inspect_json() {
        let v: Value = serde_json::json!({
            "Id": "sha256:abc", "RepoTags": ["web:1"], "Size": 1234,
            "Os": "linux", "Architecture": "arm64", "Variant": "v8",
            "Config": {
                "User": "app", "Env": ["PATH=/bin", "PORT=5000"],
                "ExposedPorts": {"5000/tcp": {}},
                "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000u64},
                "Labels": {"a": "b"}, "Cmd": ["python"]
            },
            "RootFS": {"Layers": ["x", "y"]}
        });
        let f = ImageFacts::from_json(&v);
        assert_eq!(f.size_bytes, 1234);
        assert_eq!(f.platform(), "linux/arm64/v8");
        assert_eq!(f.env_names, vec!["PATH", "PORT"]);
        assert_eq!(f.exposed_ports, vec!["5000/tcp"]);
        assert_eq!(f.healthcheck.as_ref().unwrap().interval_ns, 30_000_000_000);
        assert!(f.runs_as_non_root());
        assert_eq!(f.layer_count, 2);
        assert!(!ImageFacts::default().runs_as_non_root());
    }

    #[test]
    fn index_platforms_skip_attestations() {
        let raw = serde_json::json!({"manifests": [
            {"platform": {"os": "linux", "architecture": "amd64"}},
            {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        ]});
        assert_eq!(
            platforms_of_manifest(&raw),
            vec!["linux/amd64", "linux/arm64/v8"]
        );
    }
}
