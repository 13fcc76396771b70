//! Image facts, typed: size, configuration, layer history, and the platforms of an index.
//!
//! Read from `docker image inspect`, `docker history` and `docker buildx imagetools
//! inspect --raw` as JSON, so size budgets and security checks compare numbers and names,
//! not formatted text.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use crate::cmd::{Cmd, Runner};
use crate::rows::{nullable, NumberOrText, Pairs, Platform};

/// A container health check from the image configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Healthcheck {
    /// The test (`["CMD-SHELL", "python -c ..."]`; `["NONE"]` disables an inherited one).
    pub(crate) test: Vec<String>,
    /// Interval between checks in nanoseconds (0: docker's default).
    pub(crate) interval_ns: u64,
    /// Timeout of one check in nanoseconds (0: docker's default).
    pub(crate) timeout_ns: u64,
    /// Start period in nanoseconds (0: docker's default).
    pub(crate) start_period_ns: u64,
    /// Failures before unhealthy (0: docker's default).
    pub(crate) retries: u64,
}

/// What `docker image inspect` says about a local image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub(crate) struct ImageFacts {
    /// Image id (`sha256:...`).
    pub(crate) id: String,
    /// Tags (`RepoTags`).
    pub(crate) repo_tags: Vec<String>,
    /// Registry digests (`RepoDigests`).
    pub(crate) repo_digests: Vec<String>,
    /// The engine's `Size` in bytes, as `docker image inspect` reports it. What it measures
    /// depends on the image store: on the containerd image store it is the image's content
    /// (compressed layers, config and manifests: what a push or pull transfers); on the
    /// classic store it is the unpacked layers. [`ImageSizes`] gives both, labelled.
    pub(crate) size_bytes: u64,
    /// Operating system (`linux`).
    pub(crate) os: String,
    /// Architecture (`amd64`, `arm64`).
    pub(crate) architecture: String,
    /// Architecture variant (`v8`), when any.
    pub(crate) variant: Option<String>,
    /// The user the container runs as (`""` means root).
    pub(crate) user: String,
    /// Exposed ports (`5000/tcp`), sorted.
    pub(crate) exposed_ports: Vec<String>,
    /// The health check, when the image has one.
    pub(crate) healthcheck: Option<Healthcheck>,
    /// Names of the environment variables set (values are left out: they may be secret).
    pub(crate) env_names: Vec<String>,
    /// Labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// Entrypoint.
    pub(crate) entrypoint: Vec<String>,
    /// Command.
    pub(crate) cmd: Vec<String>,
    /// Working directory.
    pub(crate) working_dir: String,
    /// Number of layers.
    pub(crate) layer_count: usize,
    /// The layers' uncompressed digests (`RootFS.Layers`), base first: images that share
    /// a prefix of these share those layers on disk.
    pub(crate) diff_ids: Vec<String>,
}

/// One entry of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Layer {
    /// The layer's image id, when known (`<missing>` entries have none).
    pub(crate) id: Option<String>,
    /// Size in bytes (0 for metadata-only steps such as `ENV`).
    pub(crate) size_bytes: u64,
    /// The instruction that made it.
    pub(crate) created_by: String,
    /// When it was made (RFC 3339).
    pub(crate) created_at: String,
    /// Comment (`buildkit.dockerfile.v0`).
    pub(crate) comment: String,
}

impl ImageFacts {
    /// Inspects a local image. When the engine is a local socket (`DOCKER_HOST=unix://...`)
    /// it asks the engine's API directly (about 1 ms, against 25 ms for starting the CLI,
    /// which matters after a fully cached build); otherwise, or when that fails, it runs
    /// `docker image inspect`. An empty answer (a dry run's) gives the default facts:
    /// nothing known.
    pub(crate) fn inspect(runner: &Runner, image: &str) -> anyhow::Result<ImageFacts> {
        // The runner decides whether the socket may be asked (not in a dry run that
        // makes no queries).
        if let Some(row) = inspect_via_socket(runner, image) {
            return Ok(ImageFacts::from_row(row));
        }
        let out = runner
            .capture(&inspect_cmd(image))
            .with_context(|| format!("cannot inspect image {image}"))?;
        // Nothing printed (a dry run's answer; docker prints the object or fails): nothing
        // is known, which the checks reading these facts report as not measured.
        if out.stdout.trim().is_empty() {
            return Ok(ImageFacts::default());
        }
        let row = parse_inspect(&out.stdout, &format!("`docker image inspect {image}`"))?;
        Ok(ImageFacts::from_row(row))
    }

    /// Reads facts from one object of `docker image inspect` output. A field of another
    /// type than docker prints (not an inspect object) leaves every fact unknown (the
    /// default); [`ImageFacts::inspect`] reports that as an error instead.
    #[cfg(test)]
    pub(crate) fn from_json(v: &Value) -> ImageFacts {
        InspectRow::deserialize(v)
            .map(ImageFacts::from_row)
            .unwrap_or_default()
    }

    pub(crate) fn from_row(row: InspectRow) -> ImageFacts {
        let config = row.config.unwrap_or_default();
        let healthcheck = config.healthcheck.map(|h| Healthcheck {
            test: h.test,
            interval_ns: h.interval,
            timeout_ns: h.timeout,
            start_period_ns: h.start_period,
            retries: h.retries,
        });
        let env_names = config
            .env
            .iter()
            .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
            .collect();
        ImageFacts {
            id: row.id.unwrap_or_default(),
            repo_tags: row.repo_tags,
            repo_digests: row.repo_digests,
            size_bytes: row.size,
            os: row.os,
            architecture: row.architecture,
            variant: row.variant.filter(|s| !s.is_empty()),
            user: config.user,
            // Sorted: the map's keys.
            exposed_ports: config.exposed_ports.into_keys().collect(),
            healthcheck,
            env_names,
            labels: config.labels.0.into_iter().collect(),
            entrypoint: config.entrypoint,
            cmd: config.cmd,
            working_dir: config.working_dir,
            layer_count: row.root_fs.layers.len(),
            diff_ids: row.root_fs.layers,
        }
    }

    /// `os/architecture[/variant]`.
    pub(crate) fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// True when the image runs as a user other than root.
    pub(crate) fn runs_as_non_root(&self) -> bool {
        let user = self.user.split(':').next().unwrap_or_default();
        !(user.is_empty() || user == "root" || user == "0")
    }
}

/// The layer history of a local image, newest first (`docker history --no-trunc
/// --human=false --format json`).
pub(crate) fn history(runner: &Runner, image: &str) -> anyhow::Result<Vec<Layer>> {
    let out = runner
        .capture(&history_cmd(image))
        .with_context(|| format!("cannot read the history of image {image}"))?;
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row: HistoryRow = crate::rows::parse(line, &format!("`docker history {image}`"))?;
            // `Size` is a string of bytes with --human=false; accept a number too.
            let size_bytes = match &row.size {
                NumberOrText::Number(n) => n.as_u64().unwrap_or(0),
                NumberOrText::Text(s) => s.parse().unwrap_or(0),
            };
            let id = row.id;
            Ok(Layer {
                id: (!id.is_empty() && id != "<missing>").then_some(id),
                size_bytes,
                created_by: row.created_by,
                created_at: row.created_at,
                comment: row.comment,
            })
        })
        .collect()
}

/// An image's size measured two ways, each labelled: what a registry stores and a push or
/// pull transfers, and what the image takes on this engine's disk (`docker images`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub(crate) struct ImageSizes {
    /// Compressed bytes: the image's content as a registry stores it and a push or pull
    /// transfers it (compressed layers, config, manifests). `None` on the classic image
    /// store, which keeps no compressed copy of local images.
    pub(crate) compressed_bytes: Option<u64>,
    /// Unpacked bytes on disk: the figure `docker images` shows. On the containerd image
    /// store that is the unpacked layers plus the compressed content kept beside them.
    pub(crate) unpacked_bytes: u64,
    /// The unpacked layers alone: the sum of the layer sizes `docker history` shows.
    pub(crate) layer_bytes: u64,
}

impl ImageSizes {
    /// Both sizes from `docker image inspect`, `docker history` and, when known, the exact
    /// figure `docker images` shows (`listed`, see [`listed_size`]). Without it the disk
    /// size is the content plus the unpacked layers, which is how the engine computes it
    /// (within the size of an index manifest, a few hundred bytes).
    ///
    /// The image store is recognised from the numbers: on the classic store the engine's
    /// `Size` is the sum of the layers; on the containerd store it is the content.
    pub(crate) fn from_parts(
        facts: &ImageFacts,
        layers: &[Layer],
        listed: Option<u64>,
    ) -> ImageSizes {
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
    pub(crate) fn measure(
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
    pub(crate) fn content_on_disk(&self) -> u64 {
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
/// when the engine is not a local unix socket, in a dry run that makes no queries, or
/// when anything goes wrong.
pub(crate) fn listed_size(runner: &Runner, reference: &str, id: &str) -> Option<u64> {
    let by_name = !(reference.starts_with("sha256:")
        || reference.contains('@')
        || reference.bytes().all(|b| b.is_ascii_hexdigit()));
    let filter = by_name.then(|| serde_json::json!({ "reference": [reference] }).to_string());
    listed_sizes_filtered(runner, filter.as_deref())?.remove(id)
}

/// The exact size `docker images` shows for every local image, by image id (one `GET
/// /images/json`); `None` when the engine is not a local unix socket, in a dry run that
/// makes no queries, or when anything goes wrong.
pub(crate) fn listed_sizes(runner: &Runner) -> Option<BTreeMap<String, u64>> {
    listed_sizes_filtered(runner, None)
}

fn listed_sizes_filtered(runner: &Runner, filters: Option<&str>) -> Option<BTreeMap<String, u64>> {
    let path = match filters {
        Some(f) => format!("/images/json?filters={}", encode(f, b"-._~")),
        None => "/images/json".to_string(),
    };
    match runner.engine_get(&path)?.ok()? {
        (200, body) => {
            let rows: Vec<ListedRow> = serde_json::from_str(&body).ok()?;
            Some(
                rows.into_iter()
                    .filter_map(|r| Some((r.id, r.size?)))
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
pub(crate) fn local_images(runner: &Runner) -> anyhow::Result<Vec<ImageFacts>> {
    let list = || -> anyhow::Result<Vec<String>> {
        let ids = runner
            .capture(
                &Cmd::new("docker")
                    .args(["image", "ls", "--all", "--quiet", "--no-trunc"])
                    .read_only(),
            )
            .context("cannot list local images")?;
        let mut unique: Vec<String> = ids.stdout.split_whitespace().map(str::to_string).collect();
        unique.sort_unstable();
        unique.dedup();
        Ok(unique)
    };
    let mut ids = list()?;
    let mut last_error = None;
    // While other builds come and go (a CI machine, tests side by side), an image listed
    // can be gone when it is inspected: leave out the ones the engine names as gone and
    // ask again, a few times.
    for _ in 0..6 {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = Cmd::new("docker")
            .args(["image", "inspect", "--format", "{{json .}}"])
            .args(ids.iter().cloned())
            .read_only();
        match runner.capture(&cmd) {
            Ok(out) => {
                return out
                    .stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| parse_inspect(l, "`docker image inspect`").map(ImageFacts::from_row))
                    .collect();
            }
            Err(e) if e.tail.iter().any(|l| l.contains("No such image")) => {
                let gone: Vec<&str> = e
                    .tail
                    .iter()
                    .filter_map(|l| l.split("No such image: ").nth(1))
                    .map(str::trim)
                    .collect();
                let before = ids.len();
                ids.retain(|id| !gone.contains(&id.as_str()));
                if ids.len() == before {
                    // Named otherwise than listed: list again.
                    ids = list()?;
                }
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
pub(crate) fn instruction(created_by: &str) -> &str {
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
pub(crate) fn layer_sizes(layer_count: usize, history: &[Layer]) -> Option<Vec<u64>> {
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
pub(crate) fn platforms_of_manifest(raw: &Value) -> Vec<String> {
    // Not an index (no `manifests` list): a single manifest, which names no platform.
    let Some(manifests) = IndexRow::deserialize(raw).ok().and_then(|i| i.manifests) else {
        return vec!["unknown".to_string()];
    };
    manifests
        .iter()
        .filter(|m| !m.is_attestation())
        .filter_map(|m| {
            let p = m.platform.as_ref()?;
            if p.os.as_deref() == Some("unknown") {
                return None;
            }
            p.name()
        })
        .collect()
}

/// `GET /images/<image>/json` on the engine's unix socket; `None` when the engine is not a
/// unix socket or anything goes wrong (the caller falls back to the CLI).
fn inspect_via_socket(runner: &Runner, image: &str) -> Option<InspectRow> {
    let name = encode(image, b"-._~:/@+");
    match runner.engine_get(&format!("/images/{name}/json"))?.ok()? {
        (200, body) => {
            let row: InspectRow = serde_json::from_str(&body).ok()?;
            row.id.is_some().then_some(row)
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

/// One object of `docker image inspect` (or the engine's `GET /images/{name}/json`): the
/// fields [`ImageFacts`] and the built-in security checks read. Go prints empty lists and
/// maps as `null`, read as empty.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InspectRow {
    /// Every image has one; `None` only in JSON that [`ImageFacts::from_json`] is handed.
    #[serde(rename = "Id", default)]
    id: Option<String>,
    #[serde(rename = "RepoTags", default, deserialize_with = "nullable")]
    repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests", default, deserialize_with = "nullable")]
    repo_digests: Vec<String>,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "Os", default)]
    os: String,
    #[serde(rename = "Architecture", default)]
    architecture: String,
    #[serde(rename = "Variant", default)]
    variant: Option<String>,
    #[serde(rename = "Config", default)]
    pub(crate) config: Option<ConfigRow>,
    #[serde(rename = "RootFS", default, deserialize_with = "nullable")]
    root_fs: RootFsRow,
}

/// `Config` of `docker image inspect`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigRow {
    #[serde(rename = "User", default, deserialize_with = "nullable")]
    user: String,
    #[serde(rename = "ExposedPorts", default, deserialize_with = "nullable")]
    exposed_ports: BTreeMap<String, IgnoredAny>,
    #[serde(rename = "Healthcheck", default)]
    healthcheck: Option<HealthcheckRow>,
    /// `NAME=value` entries, values included (the security checks look at them).
    #[serde(rename = "Env", default, deserialize_with = "nullable")]
    pub(crate) env: Vec<String>,
    /// In document order.
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    pub(crate) labels: Pairs,
    #[serde(rename = "Entrypoint", default, deserialize_with = "nullable")]
    entrypoint: Vec<String>,
    #[serde(rename = "Cmd", default, deserialize_with = "nullable")]
    cmd: Vec<String>,
    #[serde(rename = "WorkingDir", default, deserialize_with = "nullable")]
    working_dir: String,
}

/// `Config.Healthcheck`; a duration or count left out is docker's default (0).
#[derive(Debug, Default, Deserialize)]
struct HealthcheckRow {
    #[serde(rename = "Test", default, deserialize_with = "nullable")]
    test: Vec<String>,
    #[serde(rename = "Interval", default)]
    interval: u64,
    #[serde(rename = "Timeout", default)]
    timeout: u64,
    #[serde(rename = "StartPeriod", default)]
    start_period: u64,
    #[serde(rename = "Retries", default)]
    retries: u64,
}

/// `RootFS`.
#[derive(Debug, Default, Deserialize)]
struct RootFsRow {
    #[serde(rename = "Layers", default, deserialize_with = "nullable")]
    layers: Vec<String>,
}

/// Reads one `docker image inspect` object printed by `what`; it must name the image's
/// `Id`.
pub(crate) fn parse_inspect(text: &str, what: &str) -> anyhow::Result<InspectRow> {
    let row: InspectRow = crate::rows::parse(text, what)?;
    if row.id.is_none() {
        bail!("{what} printed an object without the image's `Id`: not an image inspection");
    }
    Ok(row)
}

/// One line of `docker history --format json`. `Size` is what the history is read for:
/// a line without it is an error.
#[derive(Debug, Deserialize)]
struct HistoryRow {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Size")]
    size: NumberOrText,
    #[serde(rename = "CreatedBy", default)]
    created_by: String,
    #[serde(rename = "CreatedAt", default)]
    created_at: String,
    #[serde(rename = "Comment", default)]
    comment: String,
}

/// One image of the engine's `GET /images/json`.
#[derive(Debug, Deserialize)]
struct ListedRow {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Size", default)]
    size: Option<u64>,
}

/// A raw manifest or index (`imagetools inspect --raw`): an index lists `manifests`.
#[derive(Debug, Deserialize)]
pub(crate) struct IndexRow {
    #[serde(default)]
    pub(crate) manifests: Option<Vec<IndexEntryRow>>,
}

/// One entry of an index.
#[derive(Debug, Deserialize)]
pub(crate) struct IndexEntryRow {
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    annotations: Option<AnnotationsRow>,
}

impl IndexEntryRow {
    /// An attestation manifest (`vnd.docker.reference.type: attestation-manifest`).
    pub(crate) fn is_attestation(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.reference_type.as_deref())
            == Some("attestation-manifest")
    }
}

/// The one annotation read of an index entry (the others are free-form).
#[derive(Debug, Deserialize)]
struct AnnotationsRow {
    #[serde(rename = "vnd.docker.reference.type", default)]
    reference_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_answer_reads_as_the_socket_one() {
        let v: Value = serde_json::from_str(
            r#"{"Id":"sha256:feed","Size":4096,"Os":"linux","Architecture":"arm64","Config":{"User":"1000:1000","Env":["A=secret-value"],"ExposedPorts":{"8080/tcp":{}}}}"#,
        )
        .unwrap();
        let facts = ImageFacts::from_json(&v);
        assert_eq!(facts.id, "sha256:feed");
        assert_eq!(facts.size_bytes, 4096);
        assert_eq!(facts.platform(), "linux/arm64");
        assert_eq!(facts.env_names, vec!["A"]);
        assert_eq!(facts.exposed_ports, vec!["8080/tcp"]);
        assert!(facts.runs_as_non_root());
    }

    /// Moved from the e2e test `image_facts_fall_back_to_the_cli_for_remote_engines`:
    /// with a remote engine (`DOCKER_HOST=tcp://...`) the facts come from the CLI.
    #[test]
    fn image_facts_fall_back_to_the_cli_for_remote_engines() {
        use crate::cmd::{Answer, FakeExecutor};
        let fake = std::sync::Arc::new(FakeExecutor::new().on(
            ["docker", "image", "inspect"],
            Answer::ok(
                r#"{"Id":"sha256:feed","Size":4096,"Os":"linux","Architecture":"arm64","Config":{"User":"1000:1000","Env":["A=secret-value"],"ExposedPorts":{"8080/tcp":{}}}}"#,
            ),
        ));
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .env("DOCKER_HOST", "tcp://127.0.0.1:1")
            .with_executor(fake.clone());
        let facts = ImageFacts::inspect(&runner, "some/image:1").unwrap();
        assert_eq!(facts.id, "sha256:feed");
        assert_eq!(facts.size_bytes, 4096);
        assert_eq!(
            fake.seen(),
            vec![vec![
                "docker",
                "image",
                "inspect",
                "--format",
                "{{json .}}",
                "some/image:1"
            ]]
        );
    }

    #[test]
    fn an_image_gone_between_listing_and_inspection_is_left_out() {
        use crate::cmd::{Answer, FakeExecutor};
        let fake = std::sync::Arc::new(
            FakeExecutor::new()
                .on(
                    ["docker", "image", "ls"],
                    Answer::ok("sha256:aa\nsha256:bb\nsha256:aa\n"),
                )
                .on(
                    [
                        "docker",
                        "image",
                        "inspect",
                        "--format",
                        "{{json .}}",
                        "sha256:aa",
                        "sha256:bb",
                    ],
                    Answer::fail(1, "Error response from daemon: No such image: sha256:bb\n"),
                )
                .on(
                    [
                        "docker",
                        "image",
                        "inspect",
                        "--format",
                        "{{json .}}",
                        "sha256:aa",
                    ],
                    Answer::ok("{\"Id\": \"sha256:aa\", \"RepoTags\": [\"a:1\"]}\n"),
                ),
        );
        let runner = Runner::new()
            .echo(crate::cmd::Echo::Silent)
            .with_executor(fake.clone());
        let images = local_images(&runner).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].id, "sha256:aa");
        // Listed once: the vanished image was dropped, not the whole list read again.
        let lists = fake.seen().iter().filter(|a| a[2] == "ls").count();
        assert_eq!(lists, 1, "{:?}", fake.seen());
    }

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
    fn inspect_rows_read_nulls_and_need_an_id() {
        let text = r#"{"Id":"sha256:abc","RepoTags":null,"Size":10,"Os":"linux",
            "Architecture":"amd64","Config":{"User":"","Env":null,"Entrypoint":null,
            "Labels":{"b":"2","a":"1"},"ExposedPorts":{"80/tcp":{},"443/tcp":{}}},
            "RootFS":{"Type":"layers","Layers":["d1"]}}"#;
        let facts = ImageFacts::from_row(parse_inspect(text, "`docker image inspect x`").unwrap());
        assert_eq!(facts.id, "sha256:abc");
        assert!(facts.repo_tags.is_empty() && facts.entrypoint.is_empty());
        assert_eq!(facts.exposed_ports, vec!["443/tcp", "80/tcp"]);
        assert_eq!(facts.labels.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(facts.healthcheck, None);
        assert_eq!(facts.layer_count, 1);
        let e = parse_inspect(r#"{"Size":10}"#, "`docker image inspect x`").unwrap_err();
        assert!(e.to_string().contains("`docker image inspect x`"), "{e}");
        assert!(e.to_string().contains("`Id`"), "{e}");
        let e = parse_inspect(
            r#"{"Id":"sha256:abc","Size":"big"}"#,
            "`docker image inspect x`",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}")
                .starts_with("`docker image inspect x` printed JSON of an unexpected shape"),
            "{e:#}"
        );
        // The public reader keeps what it can't read unknown.
        assert_eq!(
            ImageFacts::from_json(&serde_json::json!({"Size": "big"})),
            ImageFacts::default()
        );
    }

    #[test]
    fn history_rows_need_a_size() {
        let row: HistoryRow = crate::rows::parse(
            r#"{"ID":"<missing>","Size":"8192","CreatedBy":"RUN x","CreatedAt":"","Comment":""}"#,
            "`docker history x`",
        )
        .unwrap();
        assert_eq!(row.size, NumberOrText::Text("8192".into()));
        let e = crate::rows::parse::<HistoryRow>(
            r#"{"ID":"sha256:1","CreatedBy":"RUN x"}"#,
            "`docker history x`",
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("`docker history x`") && text.contains("missing field `Size`"),
            "{text}"
        );
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

    #[test]
    fn measuring_reads_the_inspect_size_and_the_history_layers() {
        use crate::cmd::{Answer, Echo, FakeExecutor};
        let history =
            "{\"ID\":\"sha256:l2\",\"Size\":\"1000\",\"CreatedBy\":\"RUN pip install x\"}\n\
                       {\"ID\":\"<missing>\",\"Size\":\"2000\",\"CreatedBy\":\"ADD rootfs\"}\n";
        let measure = |size: u64| {
            let fake = std::sync::Arc::new(
                FakeExecutor::new()
                    .on(
                        ["docker", "image", "inspect"],
                        Answer::ok(format!(
                            r#"{{"Id":"sha256:abc","Size":{size},"Os":"linux","Architecture":"amd64"}}"#
                        )),
                    )
                    .on(["docker", "history"], Answer::ok(history)),
            );
            let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
            ImageSizes::measure(&runner, "app:1").unwrap()
        };
        // The containerd store: inspect's size is the compressed content, apart from the
        // unpacked layers.
        let (sizes, facts, layers) = measure(5_000);
        assert_eq!(facts.id, "sha256:abc");
        assert_eq!(layers.len(), 2);
        assert_eq!(
            (
                sizes.compressed_bytes,
                sizes.unpacked_bytes,
                sizes.layer_bytes
            ),
            (Some(5_000), 8_000, 3_000)
        );
        // The classic store: inspect's size is the layers themselves.
        let (sizes, _, _) = measure(3_000);
        assert_eq!(
            (
                sizes.compressed_bytes,
                sizes.unpacked_bytes,
                sizes.layer_bytes
            ),
            (None, 3_000, 3_000)
        );
    }
}
