//! What the tests read back from the loopback registry (`docker buildx imagetools
//! inspect`): an image's raw manifest, its platforms and its attestations. The library
//! pushes; these read-only checks are the tests' own.

use std::collections::BTreeMap;

use anyhow::Context;
use buildkit_lib::{Cmd, Runner};
use serde_json::Value;

/// `docker buildx imagetools inspect --raw REFERENCE`.
pub fn inspect_raw_cmd(reference: &str) -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .read_only()
}

/// The raw manifest or index of an image in a registry, as JSON.
pub fn inspect_raw(runner: &Runner, reference: &str) -> anyhow::Result<Value> {
    let out = runner
        .capture(&inspect_raw_cmd(reference))
        .with_context(|| format!("cannot inspect {reference} in its registry"))?;
    serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("the manifest of {reference} is not JSON"))
}

/// `os/architecture[/variant]` of a platform object; `None` without both os and
/// architecture.
fn platform_name(p: &Value) -> Option<String> {
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// An index entry that is an attestation manifest.
fn is_attestation(entry: &Value) -> bool {
    entry
        .pointer("/annotations/vnd.docker.reference.type")
        .and_then(Value::as_str)
        == Some("attestation-manifest")
}

/// The platforms of a raw manifest or index: every platform of an index (attestation
/// manifests left out), or `unknown` for a single manifest, which names none.
pub fn platforms_of_manifest(raw: &Value) -> Vec<String> {
    let Some(manifests) = raw.get("manifests").and_then(Value::as_array) else {
        return vec!["unknown".to_string()];
    };
    manifests
        .iter()
        .filter(|m| !is_attestation(m))
        .filter_map(|m| {
            let p = m.get("platform")?;
            if p.get("os").and_then(Value::as_str) == Some("unknown") {
                return None;
            }
            platform_name(p)
        })
        .collect()
}

/// The digests of an index's platform manifests (attestations left out), in order.
pub fn platform_digests(runner: &Runner, reference: &str) -> anyhow::Result<Vec<String>> {
    let raw = inspect_raw(runner, reference)?;
    Ok(raw
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| !is_attestation(m))
        .filter(|m| {
            m.get("platform")
                .and_then(|p| p.get("os"))
                .and_then(Value::as_str)
                != Some("unknown")
        })
        .filter_map(|m| Some(m.get("digest")?.as_str()?.to_string()))
        .collect())
}

/// The platforms of an image in a registry.
pub fn platforms(runner: &Runner, reference: &str) -> anyhow::Result<Vec<String>> {
    Ok(platforms_of_manifest(&inspect_raw(runner, reference)?))
}

/// `docker buildx imagetools inspect REFERENCE --format '{{json .FIELD}}'`.
fn inspect_format_cmd(reference: &str, field: &str) -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", reference, "--format"])
        .arg(format!("{{{{json .{field}}}}}"))
        .read_only()
}

/// The attestations of an image in a registry, read back after a push.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attestations {
    /// The image's platforms (attestation manifests left out).
    pub platforms: Vec<String>,
    /// How many attestation manifests the index lists.
    pub attestation_manifests: usize,
    /// The SLSA provenance predicate of each platform that has one.
    pub provenance: BTreeMap<String, Value>,
    /// The SBOM (SPDX) of each platform that has one.
    pub sbom: BTreeMap<String, Value>,
}

impl Attestations {
    /// The build args a platform's provenance records, from SLSA v0.2
    /// (`invocation.parameters.args`) or v1
    /// (`buildDefinition.externalParameters.request.args`).
    pub fn build_args(&self, platform: &str) -> BTreeMap<String, String> {
        let Some(p) = self.provenance.get(platform) else {
            return BTreeMap::new();
        };
        let args = p
            .pointer("/invocation/parameters/args")
            .and_then(Value::as_object)
            .or_else(|| {
                p.pointer("/buildDefinition/externalParameters/request/args")
                    .and_then(Value::as_object)
            });
        args.into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix("build-arg:")?.to_string(),
                    v.as_str()?.to_string(),
                ))
            })
            .collect()
    }
}

/// Reads the attestations of `reference` from its registry.
pub fn attestations(runner: &Runner, reference: &str) -> anyhow::Result<Attestations> {
    let raw = inspect_raw(runner, reference)?;
    let mut platforms = platforms_of_manifest(&raw);
    let manifests = raw.get("manifests").and_then(Value::as_array);
    if manifests.is_none() {
        // A single manifest does not name its platform: its config does.
        let out = runner
            .capture(&inspect_format_cmd(reference, "Image"))
            .with_context(|| format!("cannot read the image config of {reference}"))?;
        let config: Value = serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("the image config of {reference} is not JSON"))?;
        if let Some(platform) = platform_name(&config) {
            platforms = vec![platform];
        }
    }
    let attestation_manifests = manifests
        .map(|m| m.iter().filter(|e| is_attestation(e)).count())
        .unwrap_or(0);
    let read = |field: &str, inner: &str| -> anyhow::Result<BTreeMap<String, Value>> {
        let out = runner
            .capture(&inspect_format_cmd(reference, field))
            .with_context(|| format!("cannot read the {field} attestation of {reference}"))?;
        let value: Value = serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("the {field} attestation of {reference} is not JSON"))?;
        let mut found = BTreeMap::new();
        match value.get(inner) {
            Some(one) => {
                if let Some(platform) = platforms.first() {
                    found.insert(platform.clone(), one.clone());
                }
            }
            None => {
                for (platform, entry) in value.as_object().into_iter().flatten() {
                    if let Some(v) = entry.get(inner) {
                        found.insert(platform.clone(), v.clone());
                    }
                }
            }
        }
        Ok(found)
    };
    let (provenance, sbom) = if attestation_manifests == 0 {
        (BTreeMap::new(), BTreeMap::new())
    } else {
        (read("Provenance", "SLSA")?, read("SBOM", "SPDX")?)
    };
    Ok(Attestations {
        platforms,
        attestation_manifests,
        provenance,
        sbom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_are_read_from_either_provenance_shape() {
        let mut found = Attestations::default();
        found.provenance.insert(
            "linux/amd64".into(),
            serde_json::json!({"invocation": {"parameters": {"args": {
                "build-arg:CHANNEL": "beta", "build-arg:N": 3, "target": "prod"}}}}),
        );
        found.provenance.insert(
            "linux/arm64".into(),
            serde_json::json!({"buildDefinition": {"externalParameters": {"request": {
                "args": {"build-arg:CHANNEL": "stable"}}}}, "invocation": {"parameters": {}}}),
        );
        found
            .provenance
            .insert("linux/s390x".into(), serde_json::json!({"invocation": "x"}));
        assert_eq!(
            found.build_args("linux/amd64"),
            BTreeMap::from([("CHANNEL".to_string(), "beta".to_string())])
        );
        assert_eq!(
            found.build_args("linux/arm64"),
            BTreeMap::from([("CHANNEL".to_string(), "stable".to_string())])
        );
        assert!(found.build_args("linux/s390x").is_empty());
        assert!(found.build_args("linux/386").is_empty());
    }

    #[test]
    fn platforms_leave_attestation_manifests_out() {
        let raw = serde_json::json!({"manifests": [
            {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        ]});
        assert_eq!(platforms_of_manifest(&raw), ["linux/arm64/v8"]);
        assert_eq!(platforms_of_manifest(&serde_json::json!({})), ["unknown"]);
    }
}
