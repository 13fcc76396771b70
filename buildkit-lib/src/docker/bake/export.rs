//! From [`Build`]s to a bake file on disk: `BakeTarget::from_build`, the paths rewritten
//! relative to the file's directory (see the [`Bake` docs](super::Bake#paths)), the
//! [`BakeFile::build`] and [`BakeFile::group`] that add to a file, the session labels, the
//! network compose companion and [`BakeFile::write`].
//!
//! Apart from [`run`](super::run) because writing a file and running one are separate
//! jobs: a file written here can be run later, by hand or on another machine.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

use super::model::{is_local, validate_name, BakeFile, BakeGroup, BakeTarget};
use super::run::Bake;
use crate::cmd::Runner;
use crate::docker::build::{Build, BuildSecret, Output, SecretSource};
use crate::docker::cache::Cache;
use crate::files::write_atomic;
use crate::session::Session;

impl BakeTarget {
    /// The target for `build`, with its paths as the build has them: relative paths stay
    /// relative to the current directory (bake must then run there), except `dockerfile`,
    /// which bake reads relative to `context` and is written so. To write a file that
    /// works from its own directory, add the build with [`BakeFile::build`].
    ///
    /// `metadata_file`, `progress` and `read_facts` are about reporting, not the image, and
    /// are left out. A field bake cannot express is an error naming it: `extra_args` (bake
    /// has no raw per-target flags), `builder` (one per bake command: [`Bake::builder`]), a
    /// context or Dockerfile read from stdin (`-`).
    pub(crate) fn from_build(build: &Build) -> anyhow::Result<BakeTarget> {
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
            SecretSource::Value(_) => anyhow::bail!(
                "build secret `{}` is a value the program holds, which a bake file cannot \
                 carry: give it to bake as an environment variable (Build::secret_env) or a \
                 file (Build::secret_file)",
                s.id
            ),
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
/// The compose file holding a bake file's network modes, beside it:
/// `docker-bake.json` -> `docker-bake.network.compose.yaml`.
pub(crate) fn network_file_for(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "docker-bake".into());
    file.with_file_name(format!("{stem}.network.compose.yaml"))
}

impl BakeFile {
    /// An empty file that will live in directory `dir` (where bake then runs): builds
    /// added to it get paths relative to `dir`, and its `default` group builds them all,
    /// in the order added.
    pub fn new(dir: impl Into<PathBuf>) -> BakeFile {
        BakeFile {
            group: BTreeMap::from([("default".to_string(), BakeGroup::default())]),
            target: BTreeMap::new(),
            dir: dir.into(),
        }
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
    /// [`Bake` docs](Bake#network)); `None` when no target sets one.
    pub(crate) fn network_overlay(&self) -> Option<String> {
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
    /// compose companion from `network_file_for`; a stale companion is removed), and
    /// returns the [`Bake`] that builds it, knowing the targets' entitlements (see
    /// the [`Bake` docs](Bake#entitlements)). In a dry run nothing is written.
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
                if network_path.is_file() {
                    runner.remove(&network_path).with_context(|| {
                        format!("cannot remove the stale {}", network_path.display())
                    })?;
                }
                None
            }
        };
        Ok(Bake {
            network_file,
            definition: Some(self.clone()),
            ..Bake::new(path)
        })
    }
}

impl BakeFile {
    /// Adds `build` as target `name` (and to the `default` group), its paths rewritten
    /// relative to the file's directory. `metadata_file`, `progress` and `read_facts` are
    /// about reporting, not the image, and are left out. A field bake cannot express is
    /// an error naming it: `extra_args` (bake has no raw per-target flags), `builder` (one
    /// per bake command: [`Bake::builder`]), a context or Dockerfile read from stdin
    /// (`-`).
    pub fn build(&mut self, name: &str, build: &Build) -> anyhow::Result<&mut Self> {
        let target = if self.dir.as_os_str().is_empty() {
            BakeTarget::from_build(build)
        } else {
            BakeTarget::rebased(build, &self.dir)
        }
        .with_context(|| format!("cannot export bake target `{name}`"))?;
        self.target(name, target)
    }

    /// Adds a target as it is (its paths relative to the file's directory).
    pub(crate) fn target(&mut self, name: &str, target: BakeTarget) -> anyhow::Result<&mut Self> {
        validate_name(name)?;
        if name == "default" {
            bail!(
                "`default` cannot name a target here: it is the group of all targets; pick \
                 another name"
            );
        }
        if self.target.contains_key(name) || self.group.contains_key(name) {
            bail!("`{name}` is already in the bake file; give each target its own name");
        }
        self.group
            .entry("default".to_string())
            .or_default()
            .targets
            .push(name.to_string());
        self.target.insert(name.to_string(), target);
        Ok(self)
    }

    /// Adds a named group of targets (or groups) already added (`default`, the group of
    /// all targets, is written by the file itself).
    pub fn group<I, S>(&mut self, name: &str, members: I) -> anyhow::Result<&mut Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        validate_name(name)?;
        if name == "default" {
            bail!("the `default` group is written by the builder (all targets); pick another name");
        }
        if self.target.contains_key(name) || self.group.contains_key(name) {
            bail!("`{name}` is already in the bake file; give each group its own name");
        }
        let members: Vec<String> = members.into_iter().map(Into::into).collect();
        for member in &members {
            let known = self.target.contains_key(member)
                || member != "default" && self.group.contains_key(member);
            if !known {
                bail!(
                    "group `{name}` lists `{member}`, which is not in the bake file; add the \
                     target first"
                );
            }
        }
        self.group
            .insert(name.to_string(), BakeGroup { targets: members });
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_to_the_base_when_they_share_a_directory() {
        let rel = |b: &str, p: &str| relative_from(Path::new(b), Path::new(p)).unwrap();
        assert_eq!(
            rel("/src/app/target/buildkit/build", "/src/app/fixtures/webapp"),
            PathBuf::from("../../../fixtures/webapp")
        );
        assert_eq!(
            rel(
                "/src/app/target/buildkit/build",
                "/src/app/target/buildkit/build/meta"
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
    fn groups_resolve_to_targets_once() {
        let mut b = BakeFile::new("/tmp");
        b.target("a", BakeTarget::default()).unwrap();
        b.target("b", BakeTarget::default()).unwrap();
        b.group("ci", ["b", "a"]).unwrap();
        let file = b;
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
