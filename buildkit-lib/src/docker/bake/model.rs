//! The bake file as data: [`BakeTarget`], [`BakeGroup`] and [`BakeFile`], named and shaped
//! as bake's JSON names them, read back from a file or from `--print` (older and newer
//! buildx releases alike), target names checked, and groups resolved to targets.
//!
//! Here because both other halves need it and need nothing else of each other's: the
//! export writes these values, the run reads them back for its pre-flight checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One bake target: the attributes of one image build, named as bake's JSON names them.
///
/// Empty lists and maps, `None` and `false` are left out of the JSON. Entries of
/// `cache-from`, `cache-to`, `output` and `secret` are the strings the matching `docker
/// buildx build` flags take (`type=local,dest=out`); when reading (`--print` of newer
/// buildx releases prints them as objects), an object entry is read back as `k=v,...`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct BakeTarget {
    /// The build context directory or URL (bake's default is `.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<String>,
    /// The Dockerfile, relative to `context` unless absolute (bake's default is
    /// `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dockerfile: Option<String>,
    /// The Dockerfile's text, instead of a file.
    #[serde(
        rename = "dockerfile-inline",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) dockerfile_inline: Option<String>,
    /// The stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    /// Image references to tag the result with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
    /// Build arguments.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub(crate) args: BTreeMap<String, String>,
    /// Image labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub(crate) labels: BTreeMap<String, String>,
    /// Target platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) platforms: Vec<String>,
    /// Cache sources (`--cache-from` values).
    #[serde(
        rename = "cache-from",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub(crate) cache_from: Vec<String>,
    /// Cache destinations (`--cache-to` values).
    #[serde(
        rename = "cache-to",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub(crate) cache_to: Vec<String>,
    /// Outputs (`--output` values: `type=docker` loads, `type=registry` pushes).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub(crate) output: Vec<String>,
    /// Named build contexts (`--build-context` values).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub(crate) contexts: BTreeMap<String, String>,
    /// Build secrets (`--secret` values).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub(crate) secret: Vec<String>,
    /// Network for `RUN` steps (see the [`Bake` docs](crate::docker::Bake#network) for buildx 0.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) network: Option<String>,
    /// Always look for newer base images.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) pull: bool,
    /// Ignore the build cache.
    #[serde(rename = "no-cache", default, skip_serializing_if = "is_false")]
    pub(crate) no_cache: bool,
    /// Attestations (`--attest` values: `type=provenance,mode=max`, `type=sbom`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub(crate) attest: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A map whose `null` values (bake prints an argument declared without a value that way)
/// are left out.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Option<String>>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// A list of `k=v,...` entries, each a string or (newer buildx) an object. An object is
/// read by name, whatever order its keys come in (buildx 0.29 prints them sorted): `type`
/// (or, for a secret, `id`) first, the others after it in the order printed, each field
/// quoted as buildx splits them when it holds a `,` or `"`.
fn entry_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let raw: Option<Vec<Value>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            Value::Object(map) => {
                let field = |(k, v): (&String, &Value)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                };
                let first = ["type", "id"].into_iter().find(|k| map.contains_key(*k));
                let fields: Vec<String> = map
                    .iter()
                    .filter(|(k, _)| Some(k.as_str()) == first)
                    .chain(map.iter().filter(|(k, _)| Some(k.as_str()) != first))
                    .map(field)
                    .collect();
                Ok(crate::docker::cache::csv_join(&fields))
            }
            other => Err(D::Error::custom(format!(
                "expected a string or an object, found `{other}`"
            ))),
        })
        .collect()
}

/// Whether a context, named context or Dockerfile value is a directory on this machine
/// (not a URL, a git address, an image, another target or stdin).
pub(crate) fn is_local(value: &str) -> bool {
    !(value.contains("://")
        || value.starts_with("git@")
        || value.starts_with("target:")
        || value.starts_with("docker-image:")
        || value == "-")
}

/// A group of targets built together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct BakeGroup {
    /// The targets (or other groups) it builds.
    #[serde(default)]
    pub(crate) targets: Vec<String>,
}

/// A bake file: groups and targets, as `docker-bake.json` holds them. Make one with
/// [`BakeFile::new`] and add builds ([`BakeFile::build`]) and groups
/// ([`BakeFile::group`]), or read one ([`BakeFile::parse`]); [`BakeFile::to_json`] is
/// its text.
#[derive(Debug, Clone, Eq, Default, Serialize, Deserialize)]
pub struct BakeFile {
    /// Groups by name; `default` is what a bake without target names builds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) group: BTreeMap<String, BakeGroup>,
    /// Targets by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) target: BTreeMap<String, BakeTarget>,
    /// The directory the file will live in (where bake then runs): builds added get
    /// paths relative to it. Empty for a file read back.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
}

impl PartialEq for BakeFile {
    /// The same groups and targets (wherever the file lives).
    fn eq(&self, other: &BakeFile) -> bool {
        self.group == other.group && self.target == other.target
    }
}

/// Checks a target or group name against what bake accepts (`[a-zA-Z0-9_-]+`).
pub(crate) fn validate_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!(
            "`{name}` is not a valid bake target or group name: bake accepts only letters, \
             digits, `_` and `-` (`{}` would do)",
            sanitize_name(name)
        );
    }
    Ok(())
}

/// A valid bake name for `name`: every run of other characters becomes one `-`, and
/// leading and trailing ones are dropped (`image[3.11,amd64]` -> `image-3-11-amd64`).
pub(crate) fn sanitize_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "target".to_string()
    } else {
        trimmed.to_string()
    }
}

impl BakeFile {
    /// Reads a bake JSON file (what [`BakeFile::to_json`] or `docker buildx bake --print`
    /// writes).
    pub fn parse(text: &str) -> anyhow::Result<BakeFile> {
        serde_json::from_str(text).context(
            "not a bake JSON file (an object with `group` and `target` objects); HCL and \
             compose files are not read here",
        )
    }

    /// The file as pretty JSON, keys sorted, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("bake files serialize");
        text.push('\n');
        text
    }

    /// The targets that building `names` builds (groups expanded, each once, in order);
    /// no names means the `default` group (or a target named `default`).
    pub(crate) fn resolve(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
        let wanted: Vec<String> = if names.is_empty() {
            vec!["default".to_string()]
        } else {
            names.to_vec()
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for name in &wanted {
            self.expand(name, &mut out, &mut seen)?;
        }
        Ok(out)
    }

    fn expand(
        &self,
        name: &str,
        out: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> anyhow::Result<()> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        if let Some(group) = self.group.get(name) {
            for member in &group.targets {
                self.expand(member, out, seen)?;
            }
            return Ok(());
        }
        if self.target.contains_key(name) {
            out.push(name.to_string());
            return Ok(());
        }
        let known = self.target.keys().cloned().collect::<Vec<_>>().join(", ");
        if name == "default" {
            bail!(
                "the bake file has no `default` group or target: name the targets to build \
                 (its targets are: {known})"
            );
        }
        bail!("`{name}` is neither a target nor a group of the bake file; its targets are: {known}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_sanitised() {
        assert!(validate_name("web_app-2").is_ok());
        assert_eq!(
            validate_name("image[3.11]").unwrap_err().to_string(),
            "`image[3.11]` is not a valid bake target or group name: bake accepts only \
             letters, digits, `_` and `-` (`image-3-11` would do)"
        );
        assert_eq!(sanitize_name("image[3.11,amd64]"), "image-3-11-amd64");
        assert_eq!(sanitize_name("a..b"), "a-b");
        assert_eq!(sanitize_name("[]"), "target");
    }

    #[test]
    fn printed_entries_may_be_objects() {
        let t: BakeTarget = serde_json::from_str(
            r#"{"cache-to": [{"type": "local", "dest": "c", "mode": "max"}],
                "args": {"A": "1", "B": null}}"#,
        )
        .unwrap();
        assert_eq!(t.cache_to, ["type=local,dest=c,mode=max"]);
        assert_eq!(t.args.len(), 1);
        // buildx 0.29 prints keys sorted: `type` (or a secret's `id`) is still read first.
        let t: BakeTarget = serde_json::from_str(
            r#"{"output": [{"dest": "../files.tar", "type": "tar"}],
                "cache-to": [{"mode": "max", "ref": "r/a:c", "type": "registry"}],
                "secret": [{"env": "TOKEN", "id": "tok"}, {"id": "pip", "src": "a,b"}]}"#,
        )
        .unwrap();
        assert_eq!(t.output, ["type=tar,dest=../files.tar"]);
        assert_eq!(t.cache_to, ["type=registry,mode=max,ref=r/a:c"]);
        assert_eq!(t.secret, ["id=tok,env=TOKEN", "id=pip,\"src=a,b\""]);
    }
}
