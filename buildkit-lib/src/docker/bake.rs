//! `docker buildx bake`: a pipeline's image builds as one `docker-bake.json`, built in one
//! command.
//!
//! [`BakeTarget::from_build`] turns a [`Build`] into a bake target, [`BakeFile`] collects
//! targets and groups (built with [`BakeFile::builder`]) and writes the file, and [`Bake`]
//! runs `docker buildx bake` on it ([`Bake::run`], with a typed [`BakeResult`] read from
//! `--metadata-file`) or asks buildx how it reads it ([`Bake::print`]).
//!
//! # Paths
//!
//! Bake resolves a target's `context`, named `contexts`, output and cache directories and
//! secret files against the directory it *runs in*, not the file's directory; `dockerfile`
//! is resolved against the target's `context` (an absolute one is used as it is). So the
//! builder writes every path relative to the bake file's directory, and [`Bake`] runs
//! buildx in that directory: the file works from a fresh checkout and on another machine.
//! A path that shares nothing with that directory but the filesystem root (`/tmp/..` for a
//! file under `/work`) stays absolute.
//!
//! # Network
//!
//! Bake files only gained a `network` attribute in buildx releases after 0.13; buildx
//! 0.13 silently ignores it in JSON and HCL, rejects `--set <target>.network=...`, and
//! reads it only from compose files. [`BakeFile::write`] therefore writes the network
//! modes twice: as `network` in the JSON (for newer buildx) and in a small compose file
//! beside it, `<stem>.network.compose.yaml`, that [`Bake`] passes before the JSON file
//! (`-f <stem>.network.compose.yaml -f <stem>.json`) so that every release honours it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::build::{Build, BuildSecret, Output, SecretSource};
use super::cache::{self, Cache};
use crate::cmd::{Cmd, Runner};
use crate::files::write_atomic;
use crate::session::Session;

/// One bake target: the attributes of one image build, named as bake's JSON names them.
///
/// Empty lists and maps, `None` and `false` are left out of the JSON. Entries of
/// `cache-from`, `cache-to`, `output` and `secret` are the strings the matching `docker
/// buildx build` flags take (`type=local,dest=out`); when reading (`--print` of newer
/// buildx releases prints them as objects), an object entry is read back as `k=v,...`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BakeTarget {
    /// The build context directory or URL (bake's default is `.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Dockerfile, relative to `context` unless absolute (bake's default is
    /// `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The Dockerfile's text, instead of a file.
    #[serde(
        rename = "dockerfile-inline",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dockerfile_inline: Option<String>,
    /// The stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Image references to tag the result with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Build arguments.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub args: BTreeMap<String, String>,
    /// Image labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Target platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Cache sources (`--cache-from` values).
    #[serde(
        rename = "cache-from",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub cache_from: Vec<String>,
    /// Cache destinations (`--cache-to` values).
    #[serde(
        rename = "cache-to",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub cache_to: Vec<String>,
    /// Outputs (`--output` values: `type=docker` loads, `type=registry` pushes).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub output: Vec<String>,
    /// Named build contexts (`--build-context` values).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub contexts: BTreeMap<String, String>,
    /// Build secrets (`--secret` values).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub secret: Vec<String>,
    /// Network for `RUN` steps (see the [module docs](self#network) for buildx 0.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Always look for newer base images.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pull: bool,
    /// Ignore the build cache.
    #[serde(rename = "no-cache", default, skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Attestations (`--attest` values: `type=provenance,mode=max`, `type=sbom`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "entry_list"
    )]
    pub attest: Vec<String>,
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

/// A list of `k=v,...` entries, each a string or (newer buildx) an object.
fn entry_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let raw: Option<Vec<Value>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            Value::Object(map) => Ok(map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(",")),
            other => Err(D::Error::custom(format!(
                "expected a string or an object, found `{other}`"
            ))),
        })
        .collect()
}

/// Whether a context, named context or Dockerfile value is a directory on this machine
/// (not a URL, a git address, an image, another target or stdin).
fn is_local(value: &str) -> bool {
    !(value.contains("://")
        || value.starts_with("git@")
        || value.starts_with("target:")
        || value.starts_with("docker-image:")
        || value == "-")
}

impl BakeTarget {
    /// The target for `build`, with its paths as the build has them: relative paths stay
    /// relative to the current directory (bake must then run there), except `dockerfile`,
    /// which bake reads relative to `context` and is written so. To write a file that
    /// works from its own directory, add the build with [`BakeFileBuilder::build`].
    ///
    /// `metadata_file`, `progress` and `read_size` are about reporting, not the image, and
    /// are left out. A field bake cannot express is an error naming it: `extra_args` (bake
    /// has no raw per-target flags), `builder` (one per bake command: [`Bake::builder`]), a
    /// context or Dockerfile read from stdin (`-`).
    pub fn from_build(build: &Build) -> anyhow::Result<BakeTarget> {
        from_build_with(build, &|p| Ok(p.to_path_buf()))
    }

    /// The same target with every local path rewritten for a bake running in `dir`
    /// (instead of the current directory): `context`, local named `contexts`, local and
    /// tar output destinations, local cache directories and secret files.
    fn rebased(build: &Build, dir: &Path) -> anyhow::Result<BakeTarget> {
        from_build_with(build, &|p| relative_from(dir, p))
    }
}

/// [`BakeTarget::from_build`] with `place` mapping every local path.
fn from_build_with(
    build: &Build,
    place: &dyn Fn(&Path) -> anyhow::Result<PathBuf>,
) -> anyhow::Result<BakeTarget> {
    if !build.extra_args.is_empty() {
        bail!(
            "Build.extra_args ({}) cannot be expressed in a bake file: a bake target has no \
             raw flags; express each one as a Build field, or clear `extra_args` and pass it \
             to the bake command as an override (`Bake::set`, `<target>.<key>=<value>`)",
            build.extra_args.join(" ")
        );
    }
    if let Some(builder) = &build.builder {
        bail!(
            "Build.builder `{builder}` cannot be expressed in a bake file: the builder is \
             chosen once for the whole bake command; clear `builder` on the Build and set \
             `Bake::builder` instead"
        );
    }
    let context_text = build.context.to_string_lossy().into_owned();
    if context_text == "-" {
        bail!(
            "Build.context `-` (a context read from stdin) cannot be expressed in a bake \
             file: bake reads no context from stdin; write the context to a directory and \
             set `context` to it"
        );
    }
    let local_context = is_local(&context_text);
    let context = if local_context {
        display(&place(&build.context)?)
    } else {
        context_text
    };
    let dockerfile = match &build.dockerfile {
        None => None,
        Some(file) if file.as_os_str() == "-" => bail!(
            "Build.dockerfile `-` (a Dockerfile read from stdin) cannot be expressed in a \
             bake file: bake reads no Dockerfile from stdin; write it to a file (or set \
             `BakeTarget::dockerfile_inline` on the exported target)"
        ),
        // Bake joins a relative Dockerfile path to the context.
        Some(file) if local_context => Some(display(&relative_from(&build.context, file)?)),
        Some(file) => Some(display(file)),
    };
    let mut contexts = BTreeMap::new();
    for (name, value) in &build.build_contexts {
        let value = if is_local(value) {
            display(&place(Path::new(value))?)
        } else {
            value.clone()
        };
        contexts.insert(name.clone(), value);
    }
    let rewrite = if build.rewrite_timestamp {
        ",rewrite-timestamp=true"
    } else {
        ""
    };
    let output = match &build.output {
        Output::Default => Vec::new(),
        Output::Load => vec!["type=docker".to_string()],
        Output::Push => vec![format!("type=registry{rewrite}")],
        Output::Local(dir) => vec![format!("type=local,dest={}", display(&place(dir)?))],
        Output::Tar(file) => vec![format!("type=tar,dest={}", display(&place(file)?))],
        Output::PushByDigest(name) => vec![format!(
            "type=image,name={name},push-by-digest=true,name-canonical=true,push=true{rewrite}"
        )],
        Output::OciLayout(dir) => vec![format!(
            "type=oci,dest={},tar=false{rewrite}",
            display(&place(dir)?)
        )],
    };
    let place_cache = |cache: &Cache| -> anyhow::Result<Cache> {
        cache.check()?;
        cache.map_path(place)
    };
    let mut cache_from = Vec::new();
    for cache in &build.cache_from {
        cache_from.push(place_cache(cache)?.to_from_arg());
    }
    let mut cache_to = Vec::new();
    for cache in &build.cache_to {
        cache_to.push(place_cache(cache)?.to_to_arg());
    }
    let mut secret = Vec::new();
    for s in &build.secrets {
        let placed = match &s.source {
            SecretSource::File(path) => BuildSecret::file(s.id.clone(), place(path)?),
            SecretSource::Env(_) => s.clone(),
        };
        secret.push(placed.to_arg());
    }
    Ok(BakeTarget {
        context: Some(context),
        dockerfile,
        dockerfile_inline: None,
        target: build.target.clone(),
        tags: build.tags.clone(),
        args: build.build_args.clone(),
        labels: build.labels.clone(),
        platforms: build.platforms.clone(),
        cache_from,
        cache_to,
        output,
        contexts,
        secret,
        network: build.network.clone(),
        pull: build.pull,
        no_cache: build.no_cache,
        attest: attestations(build),
    })
}

/// A build's attestations as bake's `attest` entries.
fn attestations(build: &Build) -> Vec<String> {
    let mut out = Vec::new();
    match build.provenance_arg() {
        Some("false") => out.push("type=provenance,disabled=true".to_string()),
        Some(mode) => out.push(format!("type=provenance,{mode}")),
        None => {}
    }
    if build.sbom {
        out.push("type=sbom".to_string());
    }
    out.extend(build.attest.iter().cloned());
    out
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `path` made absolute against the current directory, then cleaned lexically (`.`
/// dropped, `a/..` folded), as bake cleans paths before joining them.
fn absolute_clean(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path).with_context(|| {
        format!(
            "cannot resolve `{}`: the current directory cannot be read; run from an \
             existing directory",
            path.display()
        )
    })?;
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `path` as seen from directory `base` (both relative to the current directory, or
/// absolute): a relative path when they share at least their first directory, else
/// `path` made absolute.
fn relative_from(base: &Path, path: &Path) -> anyhow::Result<PathBuf> {
    let (base, path) = (absolute_clean(base)?, absolute_clean(path)?);
    let b: Vec<Component> = base.components().collect();
    let p: Vec<Component> = path.components().collect();
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y).count();
    // Only the root in common: a `../../..` climb would depend on where the file sits.
    if common < 2 {
        return Ok(path);
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for part in &p[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Ok(out)
}

/// A group of targets built together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BakeGroup {
    /// The targets (or other groups) it builds.
    #[serde(default)]
    pub targets: Vec<String>,
}

/// A bake file: groups and targets, as `docker-bake.json` holds them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BakeFile {
    /// Groups by name; `default` is what a bake without target names builds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, BakeGroup>,
    /// Targets by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, BakeTarget>,
}

/// Checks a target or group name against what bake accepts (`[a-zA-Z0-9_-]+`).
pub fn validate_name(name: &str) -> anyhow::Result<()> {
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
pub fn sanitize_name(name: &str) -> String {
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

/// The compose file holding a bake file's network modes, beside it:
/// `docker-bake.json` -> `docker-bake.network.compose.yaml`.
pub fn network_file_for(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "docker-bake".into());
    file.with_file_name(format!("{stem}.network.compose.yaml"))
}

impl BakeFile {
    /// A builder for a file that will live in directory `dir` (where bake then runs):
    /// builds added to it get paths relative to `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> BakeFileBuilder {
        BakeFileBuilder {
            dir: dir.into(),
            order: Vec::new(),
            groups: BTreeMap::new(),
            targets: BTreeMap::new(),
        }
    }

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

    /// Adds the session's ownership labels (project and run) to every target, so
    /// clean-up can find the images, as [`Build::with_session_labels`] does.
    pub fn with_session_labels(mut self, session: &Session) -> BakeFile {
        for pair in session.label_args().chunks(2) {
            if let [_, kv] = pair {
                if let Some((k, v)) = kv.split_once('=') {
                    for target in self.target.values_mut() {
                        target.labels.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        self
    }

    /// The compose file that gives buildx 0.13 the targets' network modes (see the
    /// [module docs](self#network)); `None` when no target sets one.
    pub fn network_overlay(&self) -> Option<String> {
        let with_network: Vec<(&String, &String)> = self
            .target
            .iter()
            .filter_map(|(name, t)| t.network.as_ref().map(|n| (name, n)))
            .collect();
        if with_network.is_empty() {
            return None;
        }
        let mut text = String::from(
            "# Written with the bake file beside it: each target's network mode, which\n\
             # buildx 0.13 reads only from compose files. Pass it first:\n\
             # docker buildx bake -f <this file> -f <the bake file>\n\
             services:\n",
        );
        for (name, network) in with_network {
            // A JSON string is a YAML double-quoted scalar: `true` or `1` stay strings.
            let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
            text.push_str(&format!(
                "  {}:\n    build:\n      network: {}\n",
                quote(name),
                quote(network)
            ));
        }
        Some(text)
    }

    /// Writes the file to `path` atomically (and, when a target sets a network, its
    /// compose companion from [`network_file_for`]; a stale companion is removed), and
    /// returns the [`Bake`] that builds it. In a dry run nothing is written.
    pub fn write(&self, runner: &Runner, path: &Path) -> anyhow::Result<Bake> {
        write_atomic(runner, path, self.to_json().as_bytes())
            .with_context(|| format!("cannot write bake file {}", path.display()))?;
        let network_path = network_file_for(path);
        let network_file = match self.network_overlay() {
            Some(text) => {
                write_atomic(runner, &network_path, text.as_bytes())
                    .with_context(|| format!("cannot write {}", network_path.display()))?;
                Some(network_path)
            }
            None => {
                if !runner.is_dry_run() && network_path.is_file() {
                    std::fs::remove_file(&network_path).with_context(|| {
                        format!("cannot remove the stale {}", network_path.display())
                    })?;
                }
                None
            }
        };
        Ok(Bake {
            network_file,
            ..Bake::new(path)
        })
    }

    /// The targets that building `names` builds (groups expanded, each once, in order);
    /// no names means the `default` group (or a target named `default`).
    pub fn resolve(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
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

/// Builds a [`BakeFile`]: targets are added in order, and `default` groups them all.
#[derive(Debug, Clone)]
pub struct BakeFileBuilder {
    dir: PathBuf,
    order: Vec<String>,
    groups: BTreeMap<String, BakeGroup>,
    targets: BTreeMap<String, BakeTarget>,
}

impl BakeFileBuilder {
    /// The directory the file will live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds `build` as target `name`, its paths rewritten relative to the file's
    /// directory (see [`BakeTarget::from_build`] for what cannot be exported).
    pub fn build(&mut self, name: &str, build: &Build) -> anyhow::Result<&mut Self> {
        let target = BakeTarget::rebased(build, &self.dir)
            .with_context(|| format!("cannot export bake target `{name}`"))?;
        self.target(name, target)
    }

    /// Adds a target as it is (its paths relative to the file's directory).
    pub fn target(&mut self, name: &str, target: BakeTarget) -> anyhow::Result<&mut Self> {
        validate_name(name)?;
        if name == "default" {
            bail!(
                "`default` cannot name a target here: it is the group of all targets; pick \
                 another name"
            );
        }
        if self.targets.contains_key(name) || self.groups.contains_key(name) {
            bail!("`{name}` is already in the bake file; give each target its own name");
        }
        self.order.push(name.to_string());
        self.targets.insert(name.to_string(), target);
        Ok(self)
    }

    /// Adds a named group of targets (or groups) already added.
    pub fn group<I, S>(&mut self, name: &str, members: I) -> anyhow::Result<&mut Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        validate_name(name)?;
        if name == "default" {
            bail!("the `default` group is written by the builder (all targets); pick another name");
        }
        if self.targets.contains_key(name) || self.groups.contains_key(name) {
            bail!("`{name}` is already in the bake file; give each group its own name");
        }
        let members: Vec<String> = members.into_iter().map(Into::into).collect();
        for member in &members {
            if !self.targets.contains_key(member) && !self.groups.contains_key(member) {
                bail!(
                    "group `{name}` lists `{member}`, which is not in the bake file; add the \
                     target first"
                );
            }
        }
        self.groups
            .insert(name.to_string(), BakeGroup { targets: members });
        Ok(self)
    }

    /// The file: the targets, the named groups, and `default` with every target in the
    /// order added.
    pub fn finish(&self) -> BakeFile {
        let mut group = self.groups.clone();
        group.insert(
            "default".to_string(),
            BakeGroup {
                targets: self.order.clone(),
            },
        );
        BakeFile {
            group,
            target: self.targets.clone(),
        }
    }
}

/// One `docker buildx bake`. Made by [`BakeFile::write`], or by hand with [`Bake::new`].
///
/// Bake runs in the file's directory (the paths in the file are relative to it); relative
/// paths given here (`file`, `metadata_file`, ...) are relative to the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bake {
    /// The bake file (`-f`).
    pub file: PathBuf,
    /// A compose file read before `file` (`-f`), carrying the targets' network modes for
    /// buildx 0.13 (see the [module docs](self#network)).
    pub network_file: Option<PathBuf>,
    /// Targets or groups to build; empty builds the `default` group.
    pub targets: Vec<String>,
    /// Where buildx writes the metadata JSON; [`Bake::run`] uses a temporary file when
    /// this is `None`.
    pub metadata_file: Option<PathBuf>,
    /// The buildx builder to use (`--builder`).
    pub builder: Option<String>,
    /// Progress output (`--progress`); `plain` by default, `None` leaves buildx's default.
    pub progress: Option<String>,
    /// Overrides (`--set <target pattern>.<key>=<value>`), in order.
    pub set: Vec<String>,
    /// Print the resolved definition instead of building (`--print`); see [`Bake::print`].
    pub print: bool,
}

/// What bake produced for one target, read from its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BakeTargetResult {
    /// The digest of the image manifest or index (`containerimage.digest`).
    pub digest: Option<String>,
    /// The digest of the image configuration (`containerimage.config.digest`); absent
    /// when the result is an index (several platforms, or attestations).
    pub config_digest: Option<String>,
    /// The image names buildx reports (`image.name`, comma-separated there).
    pub image_names: Vec<String>,
    /// The target's metadata as written.
    pub metadata: Value,
}

/// What a bake produced, per target.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BakeResult {
    /// Each target's result, by target name.
    pub targets: BTreeMap<String, BakeTargetResult>,
    /// The metadata JSON as written (empty object in a dry run).
    pub metadata: Value,
    /// The command line run (secrets masked).
    pub command: String,
    /// True when nothing ran because of a dry run.
    pub dry_run: bool,
}

impl BakeResult {
    /// Reads bake's metadata JSON: an object keyed by target name.
    pub fn parse_metadata(text: &str) -> anyhow::Result<BTreeMap<String, BakeTargetResult>> {
        let value: Value = serde_json::from_str(text).context("bake metadata is not JSON")?;
        let Value::Object(map) = value else {
            bail!("bake metadata is not a JSON object keyed by target name");
        };
        let text_of = |v: &Value, key: &str| v[key].as_str().map(str::to_string);
        Ok(map
            .into_iter()
            .filter(|(_, v)| v.is_object())
            .map(|(name, v)| {
                let result = BakeTargetResult {
                    digest: text_of(&v, "containerimage.digest"),
                    config_digest: text_of(&v, "containerimage.config.digest"),
                    image_names: v["image.name"]
                        .as_str()
                        .unwrap_or("")
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect(),
                    metadata: v,
                };
                (name, result)
            })
            .collect())
    }
}

impl Bake {
    /// A bake of `file`'s `default` group, progress `plain`.
    pub fn new(file: impl Into<PathBuf>) -> Bake {
        Bake {
            file: file.into(),
            network_file: None,
            targets: Vec::new(),
            metadata_file: None,
            builder: None,
            progress: Some("plain".to_string()),
            set: Vec::new(),
            print: false,
        }
    }

    /// The directory bake runs in: the file's.
    pub fn dir(&self) -> PathBuf {
        let file = absolute_or_same(&self.file);
        match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The command line, in a fixed argument order: `docker buildx bake [--builder B]
    /// [-f NETWORK_FILE] -f FILE [--metadata-file M] [--progress=P] [--set S].. [--print]
    /// [TARGET..]`, run in the file's directory, with absolute paths.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "bake"]).cwd(self.dir());
        if let Some(builder) = &self.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        if let Some(network) = &self.network_file {
            cmd = cmd.arg("-f").arg_path(absolute_or_same(network));
        }
        cmd = cmd.arg("-f").arg_path(absolute_or_same(&self.file));
        if let Some(file) = &self.metadata_file {
            cmd = cmd.arg("--metadata-file").arg_path(absolute_or_same(file));
        }
        if let Some(progress) = &self.progress {
            cmd = cmd.arg(format!("--progress={progress}"));
        }
        for set in &self.set {
            cmd = cmd.arg("--set").arg(set);
        }
        if self.print {
            cmd = cmd.arg("--print");
        }
        cmd.args(self.targets.iter().cloned())
    }

    /// Reads the bake file for the pre-flight checks; `None` for a file this module does
    /// not read (HCL, compose), which buildx alone checks.
    fn read_file(&self) -> anyhow::Result<Option<BakeFile>> {
        if self.file.extension().is_none_or(|e| e != "json") {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&self.file).with_context(|| {
            format!(
                "cannot read bake file {}; write it first (`BakeFile::write`)",
                self.file.display()
            )
        })?;
        BakeFile::parse(&text)
            .with_context(|| format!("bake file {} cannot be read", self.file.display()))
            .map(Some)
    }

    /// The pre-flight checks, with this process's environment: the targets asked for are
    /// in the file, each one's local context, Dockerfile and named contexts exist, resolved
    /// as bake resolves them (from the file's directory), and its `gha` caches find the
    /// GitHub Actions runtime they need. Only JSON files are checked.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.read_file()? {
            Some(file) => self
                .check_file(&file, &|k| std::env::var(k).ok())
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// [`Bake::check`] of a read file with `env`; returns whether a selected target uses
    /// the v2 GitHub Actions cache service.
    fn check_file(
        &self,
        file: &BakeFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<bool> {
        let shown = self.file.display();
        let dir = self.dir();
        let names = file
            .resolve(&self.targets)
            .with_context(|| format!("nothing to bake in {shown}"))?;
        let mut gha_v2 = false;
        for name in names {
            let target = &file.target[&name];
            let caches: Vec<String> = target
                .cache_from
                .iter()
                .chain(&target.cache_to)
                .cloned()
                .collect();
            gha_v2 |= cache::resolve_gha_entries(&caches, env)
                .with_context(|| format!("target `{name}` of {shown}"))?;
            let context = target.context.clone().unwrap_or_else(|| ".".into());
            if !is_local(&context) {
                continue;
            }
            let context_dir = dir.join(&context);
            if !context_dir.is_dir() {
                bail!(
                    "target `{name}` of {shown} builds context `{context}`, and `{}` is not \
                     a directory; bake reads `context` relative to the directory it runs in \
                     (the file's, {}): fix the path in the bake file, or export it again",
                    context_dir.display(),
                    dir.display()
                );
            }
            if target.dockerfile_inline.is_none() {
                let dockerfile = target.dockerfile.as_deref().unwrap_or("Dockerfile");
                let path = context_dir.join(dockerfile);
                if !path.is_file() {
                    bail!(
                        "target `{name}` of {shown} reads Dockerfile `{dockerfile}`, and `{}` \
                         does not exist; bake reads `dockerfile` relative to the target's \
                         context (`{context}`): fix `dockerfile` in the bake file, or \
                         export it again",
                        path.display()
                    );
                }
            }
            for (key, value) in &target.contexts {
                if is_local(value) && !dir.join(value).exists() {
                    bail!(
                        "target `{name}` of {shown} reads build context `{key}` from \
                         `{value}`, and `{}` does not exist; create it first (or fix the \
                         path, relative to {})",
                        dir.join(value).display(),
                        dir.display()
                    );
                }
            }
        }
        Ok(gha_v2)
    }

    /// Registers the values of the selected targets' secrets for redaction.
    fn register_secret_values(&self, file: &BakeFile, runner: &Runner) {
        let probe = Cmd::new("docker");
        let dir = self.dir();
        let Ok(names) = file.resolve(&self.targets) else {
            return;
        };
        for name in names {
            for entry in &file.target[&name].secret {
                for part in entry.split(',') {
                    let value = match part.split_once('=') {
                        Some(("src" | "source", path)) => std::fs::read(dir.join(path)).ok(),
                        Some(("env", var)) => {
                            runner.effective_env(&probe, var).map(String::into_bytes)
                        }
                        _ => None,
                    };
                    if let Some(value) = value {
                        runner.mask_bytes(&value);
                    }
                }
            }
        }
    }

    /// Checks, runs the bake and reads each target's result from the metadata file. In a
    /// dry run, a file not written yet is not checked.
    pub fn run(&self, runner: &Runner) -> anyhow::Result<BakeResult> {
        if self.print {
            bail!("this bake only prints its definition (`print` is set): use `Bake::print`");
        }
        if !runner.is_dry_run() || self.file.exists() {
            if let Some(file) = self.read_file()? {
                let probe = Cmd::new("docker");
                let gha_v2 = self.check_file(&file, &|k| runner.effective_env(&probe, k))?;
                self.register_secret_values(&file, runner);
                cache::mask_gha_token(runner);
                if gha_v2 && !runner.is_dry_run() {
                    cache::check_gha_v2(runner, self.builder.as_deref())
                        .with_context(|| format!("cannot bake {}", self.file.display()))?;
                }
            }
        }
        let mut bake = self.clone();
        let (metadata_file, temp) =
            super::build::metadata_file(self.metadata_file.as_deref(), runner)?;
        bake.metadata_file = metadata_file;
        let cmd = bake.command();
        let what = if self.targets.is_empty() {
            "the default group".to_string()
        } else {
            self.targets.join(", ")
        };
        let ran = runner
            .run(&cmd)
            .with_context(|| format!("cannot bake {what} of {}", self.file.display()))?;
        let mut result = BakeResult {
            command: cmd.to_string(),
            dry_run: ran.dry_run,
            metadata: Value::Object(Default::default()),
            ..BakeResult::default()
        };
        if ran.dry_run {
            return Ok(result);
        }
        let metadata_path = bake.metadata_file.as_deref().unwrap_or(Path::new(""));
        let text = std::fs::read_to_string(metadata_path)
            .with_context(|| format!("cannot read bake metadata {}", metadata_path.display()))?;
        drop(temp);
        result.targets = BakeResult::parse_metadata(&text)
            .with_context(|| format!("bake metadata {}", metadata_path.display()))?;
        result.metadata = serde_json::from_str(&text).unwrap_or_default();
        Ok(result)
    }

    /// Runs `docker buildx bake --print` (read-only: it runs in a dry run too) and reads
    /// the definition as buildx resolved it: only the selected targets, defaults filled in
    /// (`context` `.`, `dockerfile` `Dockerfile`), duplicate tags dropped, named groups
    /// other than those asked for left out. buildx 0.13 leaves out `network` and reads
    /// secret files even to print (a missing one is an error); paths are printed as written.
    pub fn print(&self, runner: &Runner) -> anyhow::Result<BakeFile> {
        let bake = Bake {
            print: true,
            metadata_file: None,
            ..self.clone()
        };
        let cmd = bake.command().read_only();
        let out = runner
            .capture(&cmd)
            .with_context(|| format!("cannot print bake file {}", self.file.display()))?;
        BakeFile::parse(&out.stdout).with_context(|| {
            format!(
                "`docker buildx bake --print` of {} printed something else than a bake file",
                self.file.display()
            )
        })
    }
}

/// `path` absolute against the current directory, or as given when that cannot be read.
fn absolute_or_same(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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
    fn paths_are_made_relative_to_the_base_when_they_share_a_directory() {
        let rel = |b: &str, p: &str| relative_from(Path::new(b), Path::new(p)).unwrap();
        assert_eq!(
            rel(
                "/work/main/target/buildkit/build",
                "/work/main/fixtures/webapp"
            ),
            PathBuf::from("../../../fixtures/webapp")
        );
        assert_eq!(
            rel(
                "/work/main/target/buildkit/build",
                "/work/main/target/buildkit/build/meta"
            ),
            PathBuf::from("meta")
        );
        assert_eq!(rel("/work/a", "/work/a"), PathBuf::from("."));
        assert_eq!(rel("/work/a", "/tmp/x"), PathBuf::from("/tmp/x"));
        assert_eq!(
            rel("fixtures/webapp", "fixtures/webapp/./Dockerfile.production"),
            PathBuf::from("Dockerfile.production")
        );
        assert_eq!(
            rel("fixtures/webapp", "fixtures/other/../docker/Dockerfile"),
            PathBuf::from("../docker/Dockerfile")
        );
    }

    #[test]
    fn metadata_is_read_per_target() {
        let text = r#"{
          "web": {
            "buildx.build.ref": "default/default/abc",
            "containerimage.config.digest": "sha256:c0",
            "containerimage.digest": "sha256:d1",
            "image.name": "docker.io/library/web:1,docker.io/library/web:latest"
          },
          "files": {"buildx.build.ref": "default/default/def"}
        }"#;
        let results = BakeResult::parse_metadata(text).unwrap();
        assert_eq!(results["web"].digest.as_deref(), Some("sha256:d1"));
        assert_eq!(results["web"].config_digest.as_deref(), Some("sha256:c0"));
        assert_eq!(
            results["web"].image_names,
            ["docker.io/library/web:1", "docker.io/library/web:latest"]
        );
        assert_eq!(results["files"].digest, None);
        assert!(results["files"].image_names.is_empty());
        assert!(BakeResult::parse_metadata("[]").is_err());
    }

    #[test]
    fn groups_resolve_to_targets_once() {
        let mut b = BakeFile::builder("/tmp");
        b.target("a", BakeTarget::default()).unwrap();
        b.target("b", BakeTarget::default()).unwrap();
        b.group("ci", ["b", "a"]).unwrap();
        let file = b.finish();
        assert_eq!(file.resolve(&[]).unwrap(), ["a", "b"]);
        assert_eq!(
            file.resolve(&["ci".into(), "a".into()]).unwrap(),
            ["b", "a"]
        );
        assert_eq!(
            file.resolve(&["nope".into()]).unwrap_err().to_string(),
            "`nope` is neither a target nor a group of the bake file; its targets are: a, b"
        );
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
    }

    #[test]
    fn attestations_become_attest_entries() {
        let mut build = Build {
            context: PathBuf::from("/src"),
            provenance: crate::docker::build::Provenance::Max,
            sbom: true,
            attest: vec!["type=sbom,generator=127.0.0.1:5000/scanner".into()],
            ..Build::new(".")
        };
        let target = BakeTarget::from_build(&build).unwrap();
        assert_eq!(
            target.attest,
            [
                "type=provenance,mode=max",
                "type=sbom",
                "type=sbom,generator=127.0.0.1:5000/scanner"
            ]
        );
        build.provenance = crate::docker::build::Provenance::Off;
        build.sbom = false;
        build.attest.clear();
        let target = BakeTarget::from_build(&build).unwrap();
        assert_eq!(target.attest, ["type=provenance,disabled=true"]);
        let json = serde_json::to_value(&target).unwrap();
        assert_eq!(json["attest"][0], "type=provenance,disabled=true");
    }
}
