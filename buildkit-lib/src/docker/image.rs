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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct ImageFacts {
    /// Image id (`sha256:...`).
    pub id: String,
    /// Tags (`RepoTags`).
    pub repo_tags: Vec<String>,
    /// Registry digests (`RepoDigests`).
    pub repo_digests: Vec<String>,
    /// The engine's `Size` in bytes, as `docker image inspect` reports it. What it measures
    /// depends on the image store: on the containerd image store it is the image's content
    /// (compressed layers, config and manifests: what a push or pull transfers); on the
    /// classic store it is the unpacked layers. [`ImageSizes`] gives both, labelled.
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
    /// The layers' uncompressed digests (`RootFS.Layers`), base first: images that share
    /// a prefix of these share those layers on disk.
    pub diff_ids: Vec<String>,
}

/// One entry of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
            .capture(&inspect_cmd(image))
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
            diff_ids: strings(&v["RootFS"]["Layers"]),
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
        .capture(&history_cmd(image))
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

/// An image's size measured two ways, each labelled: what a registry stores and a push or
/// pull transfers, and what the image takes on this engine's disk (`docker images`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImageSizes {
    /// Compressed bytes: the image's content as a registry stores it and a push or pull
    /// transfers it (compressed layers, config, manifests). `None` on the classic image
    /// store, which keeps no compressed copy of local images.
    pub compressed_bytes: Option<u64>,
    /// Unpacked bytes on disk: the figure `docker images` shows. On the containerd image
    /// store that is the unpacked layers plus the compressed content kept beside them.
    pub unpacked_bytes: u64,
    /// The unpacked layers alone: the sum of the layer sizes `docker history` shows.
    pub layer_bytes: u64,
}

impl ImageSizes {
    /// Both sizes from `docker image inspect`, `docker history` and, when known, the exact
    /// figure `docker images` shows (`listed`, see [`listed_size`]). Without it the disk
    /// size is the content plus the unpacked layers, which is how the engine computes it
    /// (within the size of an index manifest, a few hundred bytes).
    ///
    /// The image store is recognised from the numbers: on the classic store the engine's
    /// `Size` is the sum of the layers; on the containerd store it is the content.
    pub fn from_parts(facts: &ImageFacts, layers: &[Layer], listed: Option<u64>) -> ImageSizes {
        let layer_bytes: u64 = layers.iter().map(|l| l.size_bytes).sum();
        if facts.size_bytes == layer_bytes {
            ImageSizes {
                compressed_bytes: None,
                unpacked_bytes: listed.unwrap_or(facts.size_bytes),
                layer_bytes,
            }
        } else {
            ImageSizes {
                compressed_bytes: Some(facts.size_bytes),
                unpacked_bytes: listed.unwrap_or(facts.size_bytes + layer_bytes),
                layer_bytes,
            }
        }
    }

    /// Measures a local image: `docker image inspect`, `docker history`, and the engine's
    /// `docker images` figure when it is a local socket. Returns the facts and the history
    /// read on the way.
    pub fn measure(
        runner: &Runner,
        image: &str,
    ) -> anyhow::Result<(ImageSizes, ImageFacts, Vec<Layer>)> {
        let facts = ImageFacts::inspect(runner, image)?;
        let layers = history(runner, image)?;
        let listed = listed_size(runner, image, &facts.id);
        Ok((
            ImageSizes::from_parts(&facts, &layers, listed),
            facts,
            layers,
        ))
    }

    /// The part of the disk size that is not unpacked layers: on the containerd image
    /// store, the compressed content the engine keeps beside them; 0 on the classic store.
    pub fn content_on_disk(&self) -> u64 {
        self.unpacked_bytes.saturating_sub(self.layer_bytes)
    }
}

/// `docker history --no-trunc --human=false --format json IMAGE`.
pub(crate) fn history_cmd(image: &str) -> Cmd {
    Cmd::new("docker")
        .args([
            "history",
            "--no-trunc",
            "--human=false",
            "--format",
            "json",
            image,
        ])
        .read_only()
}

/// `docker image inspect --format '{{json .}}' IMAGE`: the query behind
/// [`ImageFacts::inspect`] when the engine's socket is not at hand, and what plans show.
pub(crate) fn inspect_cmd(image: &str) -> Cmd {
    Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{json .}}", image])
        .read_only()
}

/// The exact size `docker images` shows for the image with id `id` (found by `reference`),
/// from the engine's `GET /images/json`: the CLI prints this figure only rounded. `None`
/// when the engine is not a local unix socket, in a dry run, or when anything goes wrong.
pub fn listed_size(runner: &Runner, reference: &str, id: &str) -> Option<u64> {
    let by_name = !(reference.starts_with("sha256:")
        || reference.contains('@')
        || reference.bytes().all(|b| b.is_ascii_hexdigit()));
    let filter = by_name.then(|| serde_json::json!({ "reference": [reference] }).to_string());
    listed_sizes_filtered(runner, filter.as_deref())?.remove(id)
}

/// The exact size `docker images` shows for every local image, by image id (one `GET
/// /images/json`); `None` when the engine is not a local unix socket, in a dry run, or
/// when anything goes wrong.
pub fn listed_sizes(runner: &Runner) -> Option<BTreeMap<String, u64>> {
    listed_sizes_filtered(runner, None)
}

fn listed_sizes_filtered(runner: &Runner, filters: Option<&str>) -> Option<BTreeMap<String, u64>> {
    if runner.is_dry_run() {
        return None;
    }
    let path = match filters {
        Some(f) => format!("/images/json?filters={}", encode(f, b"-._~")),
        None => "/images/json".to_string(),
    };
    match runner.engine_get(&path)?.ok()? {
        (200, body) => {
            let value: Value = serde_json::from_str(&body).ok()?;
            Some(
                value
                    .as_array()?
                    .iter()
                    .filter_map(|i| Some((text(&i["Id"]), i["Size"].as_u64()?)))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Every local image's facts: `docker image ls --all` and one `docker image inspect` of
/// them all. Layer sharing between images is read from their
/// [`diff_ids`](ImageFacts::diff_ids). An image removed meanwhile (by someone else) is
/// left out.
pub fn local_images(runner: &Runner) -> anyhow::Result<Vec<ImageFacts>> {
    let mut last_error = None;
    for _ in 0..3 {
        let ids = runner
            .capture(
                &Cmd::new("docker")
                    .args(["image", "ls", "--all", "--quiet", "--no-trunc"])
                    .read_only(),
            )
            .context("cannot list local images")?;
        let mut unique: Vec<&str> = ids.stdout.split_whitespace().collect();
        unique.sort_unstable();
        unique.dedup();
        if unique.is_empty() || ids.dry_run {
            return Ok(Vec::new());
        }
        let cmd = Cmd::new("docker")
            .args(["image", "inspect", "--format", "{{json .}}"])
            .args(unique.iter().copied())
            .read_only();
        match runner.capture(&cmd) {
            Ok(out) => {
                return out
                    .stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| {
                        serde_json::from_str::<Value>(l)
                            .map(|v| ImageFacts::from_json(&v))
                            .context("`docker image inspect` did not print JSON")
                    })
                    .collect();
            }
            // An image went away between the listing and the inspection: list again.
            Err(e) if e.tail.iter().any(|l| l.contains("No such image")) => {
                last_error = Some(e);
            }
            Err(e) => return Err(e).context("cannot inspect local images"),
        }
    }
    Err(last_error.expect("the loop ran")).context("cannot inspect local images")
}

/// The instructions that change no file, so make no layer (`ENV`, `CMD`, `LABEL`, ...).
const METADATA_INSTRUCTIONS: [&str; 13] = [
    "ARG",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
];

/// The Dockerfile instruction a history entry records (`RUN`, `COPY`, `ENV`, ...), from
/// BuildKit's text (`RUN /bin/sh -c ...`) or the classic builder's (`/bin/sh -c #(nop)
/// ENV ...`, `/bin/sh -c pip install ...`); empty for an imported layer.
pub fn instruction(created_by: &str) -> &str {
    let text = created_by.trim();
    if let Some(rest) = text.strip_prefix("/bin/sh -c #(nop)") {
        return rest.split_whitespace().next().unwrap_or_default();
    }
    if text.starts_with("/bin/sh -c") {
        return "RUN";
    }
    text.split_whitespace().next().unwrap_or_default()
}

/// Which layer each `docker history` entry made: for each entry of `history` (newest first,
/// as `docker history` lists them) the index into the image's
/// [`diff_ids`](ImageFacts::diff_ids) (base first), or `None` for a step that made no
/// layer. `None` overall when the entries cannot be matched with `layer_count` layers.
///
/// The engine lists a size for every layer-making entry and 0 for the others, but the
/// API does not say which zero-size entries made an (empty) layer; entries with bytes are
/// matched first, then entries whose instruction changes files.
pub(crate) fn layer_indices(layer_count: usize, history: &[Layer]) -> Option<Vec<Option<usize>>> {
    let oldest_first: Vec<&Layer> = history.iter().rev().collect();
    let by_size = |l: &Layer| l.size_bytes > 0;
    let by_instruction = |l: &Layer| {
        l.size_bytes > 0 || !METADATA_INSTRUCTIONS.contains(&instruction(&l.created_by))
    };
    let makes: Vec<bool> = [&by_size as &dyn Fn(&Layer) -> bool, &by_instruction]
        .iter()
        .map(|rule| oldest_first.iter().map(|l| rule(l)).collect::<Vec<bool>>())
        .find(|makes| makes.iter().filter(|m| **m).count() == layer_count)?;
    let mut next = 0;
    let mut indices: Vec<Option<usize>> = makes
        .into_iter()
        .map(|m| {
            m.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    indices.reverse();
    Some(indices)
}

/// The unpacked size of each of an image's layers, base first, matched as
/// `layer_indices` does; `None` when the history cannot be matched with the layers.
pub fn layer_sizes(layer_count: usize, history: &[Layer]) -> Option<Vec<u64>> {
    let indices = layer_indices(layer_count, history)?;
    let mut sizes = vec![0; layer_count];
    for (layer, index) in history.iter().zip(indices) {
        if let Some(i) = index {
            sizes[i] = layer.size_bytes;
        }
    }
    Some(sizes)
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
    let name = encode(image, b"-._~:/@+");
    match runner.engine_get(&format!("/images/{name}/json"))?.ok()? {
        (200, body) => {
            let value: Value = serde_json::from_str(&body).ok()?;
            value["Id"].is_string().then_some(value)
        }
        _ => None,
    }
}

/// Percent-encodes every byte but ASCII letters, digits and `keep`.
pub(crate) fn encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
        assert_eq!(f.diff_ids, vec!["x", "y"]);
        assert!(!ImageFacts::default().runs_as_non_root());
    }

    fn entry(created_by: &str, size_bytes: u64) -> Layer {
        Layer {
            id: None,
            size_bytes,
            created_by: created_by.into(),
            created_at: String::new(),
            comment: String::new(),
        }
    }

    #[test]
    fn history_entries_are_matched_with_layers() {
        // Newest first, as `docker history` lists them.
        let history = vec![
            entry("CMD [\"sh\"]", 0),
            entry("RUN /bin/sh -c echo hi > /hi # buildkit", 8_192),
            entry("ENV A=1", 0),
            entry("", 1_990_656),
        ];
        assert_eq!(
            layer_indices(2, &history),
            Some(vec![None, Some(1), None, Some(0)])
        );
        assert_eq!(layer_sizes(2, &history), Some(vec![1_990_656, 8_192]));
        // A zero-byte layer (WORKDIR of an existing directory) is matched by instruction.
        let history = vec![
            entry("WORKDIR /app", 0),
            entry("/bin/sh -c #(nop)  ENV A=1", 0),
            entry("/bin/sh -c pip install x", 4_096),
        ];
        assert_eq!(layer_sizes(2, &history), Some(vec![4_096, 0]));
        assert_eq!(instruction("/bin/sh -c #(nop)  ENV A=1"), "ENV");
        assert_eq!(instruction("/bin/sh -c pip install x"), "RUN");
        // No match: unknown.
        assert_eq!(layer_indices(5, &history), None);
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
