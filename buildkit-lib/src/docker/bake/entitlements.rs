//! What a bake must be allowed to do (`docker buildx bake --allow=...`), computed from the
//! targets it builds the way buildx asks for it.
//!
//! From buildx 0.17 on, bake refuses to build ("ERROR: additional privileges requested")
//! what its targets need beyond the directory it runs in, unless the command grants it:
//! `network.host` for a target with `network: host` (0.17 on), and, enforced from 0.20
//! on (0.19 only warns), `fs.read=PATH` for every local context, Dockerfile, named
//! context, local cache source and secret file outside that directory, `fs.write=PATH`
//! for every local output and local cache destination outside it. buildx checks a path
//! that does not exist yet by its nearest existing parent, with symbolic links resolved.
//! buildx 0.13 to 0.16 know no `bake --allow`.
//!
//! Here apart from the run because it is one question with one answer: given the targets,
//! the exact grants, never a blanket one (`fs=*`, `fs.read=/`).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use semver::Version;

use super::model::{is_local, BakeFile, BakeTarget};
use crate::cmd::{Cmd, Runner};
use crate::docker::cache::csv_fields;

/// The first buildx release whose `bake` takes `--allow` (and asks for `network.host`).
pub(crate) const BAKE_ALLOW_MIN_BUILDX: Version = Version::new(0, 17, 0);

/// The grants a bake of `names` (targets, resolved) of `file` running in `dir` needs, as
/// `--allow` values, sorted: `fs.read=PATH`, `fs.write=PATH`, `network.host`. Paths are
/// absolute; with `resolve`, symbolic links in their existing part are resolved as buildx
/// resolves them (a run), else they are cleaned lexically only (a plan, which reads
/// nothing). A path inside `dir` needs no grant; one under another granted path of the
/// same kind is left out.
pub(crate) fn needed(file: &BakeFile, names: &[String], dir: &Path, resolve: bool) -> Vec<String> {
    let place = |p: &Path| -> PathBuf {
        let joined = clean(&dir.join(p));
        if resolve {
            resolve_existing(&joined)
        } else {
            joined
        }
    };
    let base = if resolve {
        resolve_existing(&clean(dir))
    } else {
        clean(dir)
    };
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut network_host = false;
    for name in names {
        let Some(target) = file.target.get(name) else {
            continue;
        };
        let paths = TargetPaths::of(target);
        read.extend(paths.read.iter().map(|p| place(p)));
        write.extend(paths.write.iter().map(|p| place(p)));
        network_host |= target.network.as_deref() == Some("host");
    }
    let mut out = Vec::new();
    for (kind, paths) in [("fs.read", read), ("fs.write", write)] {
        for path in outermost(paths, &base) {
            out.push(format!("{kind}={}", path.display()));
        }
    }
    if network_host {
        out.push("network.host".to_string());
    }
    out
}

/// Which view of a bake with overrides [`with_overrides`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// What buildx asks the command to grant.
    Grants,
    /// What the bake writes and reads (the directories a run creates first).
    Paths,
}

/// `file` as the bake of `names` with the overrides `sets` (`--set PATTERN.KEY=VALUE`)
/// is checked by buildx. An overridden `context`, `dockerfile` or `contexts.NAME` is read
/// from the override, and asked for as the file's would be. An overridden `output`,
/// `cache-to`, `cache-from` or `secrets` list replaces the file's (with `+=`, extends
/// it), and buildx grants what it then holds itself: [`View::Grants`] leaves it empty,
/// [`View::Paths`] keeps it (buildx still checks a missing path by its parent, so a run
/// creates it first). An overridden `network` asks for nothing.
pub(crate) fn with_overrides(
    file: &BakeFile,
    names: &[String],
    sets: &[String],
    view: View,
) -> BakeFile {
    let mut out = file.clone();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            continue;
        };
        let append = key.ends_with('+');
        let key = key.trim_end_matches('+');
        let Some((pattern, attribute)) = key.split_once('.') else {
            continue;
        };
        for name in names.iter().filter(|n| glob(pattern, n)) {
            let Some(target) = out.target.get_mut(name) else {
                continue;
            };
            let list = match attribute {
                "output" => Some(&mut target.output),
                "cache-to" => Some(&mut target.cache_to),
                "cache-from" => Some(&mut target.cache_from),
                "secrets" | "secret" => Some(&mut target.secret),
                _ => None,
            };
            if let Some(list) = list {
                if !append {
                    list.clear();
                }
                list.push(value.to_string());
            }
            match attribute {
                "context" => target.context = Some(value.to_string()),
                "dockerfile" => target.dockerfile = Some(value.to_string()),
                "output" | "cache-to" | "cache-from" | "secrets" | "secret" => {
                    if view == View::Grants {
                        match attribute {
                            "output" => target.output.clear(),
                            "cache-to" => target.cache_to.clear(),
                            "cache-from" => target.cache_from.clear(),
                            _ => target.secret.clear(),
                        }
                    }
                }
                "network" => target.network = None,
                other => {
                    if let Some(context) = other.strip_prefix("contexts.") {
                        target
                            .contexts
                            .insert(context.to_string(), value.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Whether `name` matches a bake override's target pattern (`*` any run, `?` one
/// character, anything else itself).
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

/// The local paths one target reads and writes, as written in the file (relative to the
/// directory bake runs in, or absolute).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TargetPaths {
    /// Context, Dockerfile, named contexts, local cache sources, secret files.
    pub(crate) read: Vec<PathBuf>,
    /// Local and file outputs, local cache destinations.
    pub(crate) write: Vec<PathBuf>,
    /// Of `write`: the directories (local outputs, OCI layouts, cache destinations), which
    /// a run may create first; the others are files buildx creates.
    pub(crate) write_dirs: Vec<PathBuf>,
    /// Of `read`: the local cache sources, which need not exist yet (BuildKit warns and
    /// builds without them), so a run may create them first.
    pub(crate) cache_sources: Vec<PathBuf>,
}

impl TargetPaths {
    pub(crate) fn of(target: &BakeTarget) -> TargetPaths {
        let mut paths = TargetPaths::default();
        let context = target.context.clone().unwrap_or_else(|| ".".to_string());
        let local_context = is_local(&context);
        if local_context {
            paths.read.push(PathBuf::from(&context));
        }
        if target.dockerfile_inline.is_none() {
            let dockerfile = target.dockerfile.as_deref().unwrap_or("Dockerfile");
            let path = Path::new(dockerfile);
            if path.is_absolute() {
                paths.read.push(path.to_path_buf());
            } else if local_context {
                paths.read.push(Path::new(&context).join(path));
            }
        }
        for value in target.contexts.values() {
            if is_local(value) {
                paths.read.push(PathBuf::from(value));
            }
        }
        for entry in &target.cache_from {
            let fields = fields(entry);
            if value(&fields, "type") == Some("local") {
                if let Some(src) = value(&fields, "src") {
                    paths.read.push(PathBuf::from(src));
                    paths.cache_sources.push(PathBuf::from(src));
                }
            }
        }
        for entry in &target.cache_to {
            let fields = fields(entry);
            if value(&fields, "type") == Some("local") {
                if let Some(dest) = value(&fields, "dest") {
                    paths.write.push(PathBuf::from(dest));
                    paths.write_dirs.push(PathBuf::from(dest));
                }
            }
        }
        for entry in &target.output {
            let fields = fields(entry);
            let Some(dest) = value(&fields, "dest").filter(|d| *d != "-") else {
                continue;
            };
            let tar = value(&fields, "tar").is_none_or(|t| !matches!(t, "false" | "0"));
            let dir = match value(&fields, "type") {
                Some("local") => true,
                Some("tar") => false,
                Some("oci" | "docker") => !tar,
                _ => continue,
            };
            paths.write.push(PathBuf::from(dest));
            if dir {
                paths.write_dirs.push(PathBuf::from(dest));
            }
        }
        for entry in &target.secret {
            let fields = fields(entry);
            if let Some(src) = value(&fields, "src").or_else(|| value(&fields, "source")) {
                paths.read.push(PathBuf::from(src));
            }
        }
        paths
    }
}

/// Creates what the grants of a run name and buildx would otherwise check by a parent:
/// the missing local output and cache directories of `names` outside `dir`, and the
/// missing parent directories of file outputs there (buildx creates the file itself,
/// before it checks). BuildKit writes (or, for a cache source, skips with a warning) an
/// empty directory as it would a missing one.
pub(crate) fn prepare(
    file: &BakeFile,
    names: &[String],
    dir: &Path,
    runner: &Runner,
) -> anyhow::Result<()> {
    let base = resolve_existing(&clean(dir));
    let outside = |p: &Path| -> Option<PathBuf> {
        let joined = clean(&dir.join(p));
        (!resolve_existing(&joined).starts_with(&base)).then_some(joined)
    };
    // The missing ones first, each once and only the deepest (`mkdir -p` makes its
    // parents), so that what runs does not depend on what an earlier `mkdir` made.
    let mut missing: Vec<(PathBuf, &str)> = Vec::new();
    for name in names {
        let Some(target) = file.target.get(name) else {
            continue;
        };
        let paths = TargetPaths::of(target);
        let dirs = paths.write_dirs.iter().chain(&paths.cache_sources);
        let parents = paths
            .write
            .iter()
            .filter(|p| !paths.write_dirs.contains(p))
            .filter_map(|p| p.parent());
        for wanted in dirs.map(PathBuf::as_path).chain(parents) {
            let Some(path) = outside(wanted) else {
                continue;
            };
            if !path.exists() && !missing.iter().any(|(p, _)| *p == path) {
                missing.push((path, name));
            }
        }
    }
    let deepest: Vec<&(PathBuf, &str)> = missing
        .iter()
        .filter(|(p, _)| !missing.iter().any(|(q, _)| q != p && q.starts_with(p)))
        .collect();
    for (path, name) in deepest {
        let mkdir = Cmd::new("mkdir").arg("-p").arg_path(path);
        runner.run(&mkdir).with_context(|| {
            format!(
                "cannot create {} for target `{name}` (bake checks a missing path by its \
                 parent, which would need a wider grant)",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// An entry's `key=value` fields, keys lower-cased as buildx reads them.
fn fields(entry: &str) -> Vec<(String, String)> {
    csv_fields(entry)
        .into_iter()
        .filter_map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        })
        .collect()
}

fn value<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The paths outside `base`, each once, without those under another one.
fn outermost(paths: Vec<PathBuf>, base: &Path) -> Vec<PathBuf> {
    let set: BTreeSet<PathBuf> = paths.into_iter().filter(|p| !p.starts_with(base)).collect();
    set.iter()
        .filter(|p| !set.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect()
}

/// `path` cleaned lexically (`.` dropped, `a/..` folded), as buildx cleans paths.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` (absolute, clean) with the symbolic links of its existing part resolved, the
/// rest appended as it is.
fn resolve_existing(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Refuses a grant that is not one exact thing: any path (`*`), the whole filesystem
/// (`/`), or a relative path (buildx would read it against the directory it runs in,
/// which the caller may not mean).
pub(crate) fn check_grant(grant: &str) -> anyhow::Result<()> {
    let Some((key, path)) = grant.split_once('=') else {
        return Ok(());
    };
    if !matches!(key, "fs" | "fs.read" | "fs.write") {
        return Ok(());
    }
    let blanket = path == "*" || clean(Path::new(path)) == Path::new("/");
    if blanket {
        bail!(
            "`--allow={grant}` would let every target of the bake read{} any file: grant the \
             exact paths instead (the library computes the ones the bake file's targets need)",
            if key == "fs.read" { "" } else { " or write" }
        );
    }
    if !Path::new(path).is_absolute() {
        bail!("`--allow={grant}`: name the path absolutely");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn file_of(targets: &[(&str, BakeTarget)]) -> BakeFile {
        BakeFile {
            group: BTreeMap::new(),
            target: targets
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
            dir: std::path::PathBuf::new(),
        }
    }

    #[test]
    fn each_path_outside_the_directory_is_granted_exactly() {
        let web = BakeTarget {
            context: Some("../../../fixtures/webapp".into()),
            dockerfile: Some("Dockerfile.production".into()),
            contexts: BTreeMap::from([
                ("meta".into(), "meta".into()),
                ("base".into(), "docker-image://busybox:1.36".into()),
                ("shared".into(), "/srv/shared/lib".into()),
            ]),
            cache_from: vec![
                "type=local,src=/var/cache/bkl".into(),
                "type=registry,ref=r/a:c".into(),
            ],
            cache_to: vec!["\"TYPE=local\",dest=/var/cache/bkl,mode=max".into()],
            output: vec!["type=local,dest=../../dist".into()],
            secret: vec![
                "id=pip,src=/run/secrets/pip.conf".into(),
                "id=tok,env=TOKEN".into(),
            ],
            network: Some("host".into()),
            ..BakeTarget::default()
        };
        let inside = BakeTarget {
            context: Some("app".into()),
            output: vec!["type=tar,dest=out/app.tar".into(), "type=docker".into()],
            network: Some("none".into()),
            ..BakeTarget::default()
        };
        let file = file_of(&[("web", web), ("inside", inside)]);
        let dir = Path::new("/srv/repo/target/buildkit/build");
        assert_eq!(
            needed(&file, &["web".into(), "inside".into()], dir, false),
            [
                // The Dockerfile is in the context: the context's grant covers it.
                "fs.read=/run/secrets/pip.conf",
                "fs.read=/srv/repo/fixtures/webapp",
                "fs.read=/srv/shared/lib",
                "fs.read=/var/cache/bkl",
                "fs.write=/srv/repo/target/dist",
                "fs.write=/var/cache/bkl",
                "network.host",
            ]
        );
        // Only what the selected targets need.
        assert!(needed(&file, &["inside".into()], dir, false).is_empty());
    }

    #[test]
    fn a_dockerfile_outside_its_context_and_file_outputs_are_granted_themselves() {
        let t = BakeTarget {
            context: Some("/srv/app".into()),
            dockerfile: Some("/srv/docker/Dockerfile".into()),
            output: vec![
                "type=tar,dest=/srv/out/app.tar".into(),
                "type=oci,dest=/srv/oci,tar=false".into(),
            ],
            ..BakeTarget::default()
        };
        let paths = TargetPaths::of(&t);
        assert_eq!(paths.write_dirs, [PathBuf::from("/srv/oci")]);
        assert_eq!(
            needed(
                &file_of(&[("t", t)]),
                &["t".into()],
                Path::new("/work"),
                false
            ),
            [
                "fs.read=/srv/app",
                "fs.read=/srv/docker/Dockerfile",
                "fs.write=/srv/oci",
                "fs.write=/srv/out/app.tar",
            ]
        );
    }

    #[test]
    fn symbolic_links_are_resolved_as_buildx_resolves_them() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir_all(outside.join("app")).unwrap();
        let dir = root.path().join("bake");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        let t = BakeTarget {
            context: Some("link/app".into()),
            output: vec!["type=local,dest=link/not-yet/out".into()],
            ..BakeTarget::default()
        };
        let file = file_of(&[("t", t)]);
        let real = outside.canonicalize().unwrap();
        // Lexically inside the directory, really outside it.
        assert!(needed(&file, &["t".into()], &dir, false).is_empty());
        assert_eq!(
            needed(&file, &["t".into()], &dir, true),
            [
                format!("fs.read={}", real.join("app").display()),
                format!("fs.write={}", real.join("not-yet/out").display()),
            ]
        );
    }

    #[test]
    fn overrides_change_what_is_asked_for() {
        let t = BakeTarget {
            context: Some("/srv/app".into()),
            output: vec!["type=local,dest=/srv/dist".into()],
            network: Some("host".into()),
            ..BakeTarget::default()
        };
        let file = file_of(&[("web", t.clone()), ("api", t)]);
        let names = ["web".to_string(), "api".to_string()];
        let dir = Path::new("/work");
        let sets = [
            "w*.context=/srv/web".to_string(),
            "*.output=type=local,dest=/srv/elsewhere".to_string(),
            "api.network=none".to_string(),
            "web.contexts.meta=/srv/meta".to_string(),
            "api.args.X=1".to_string(),
        ];
        assert_eq!(
            needed(
                &with_overrides(&file, &names, &sets, View::Grants),
                &names,
                dir,
                false
            ),
            [
                "fs.read=/srv/app",
                "fs.read=/srv/meta",
                "fs.read=/srv/web",
                "network.host",
            ]
        );
        // The paths view keeps the overriding output: a run creates it first.
        let paths = with_overrides(&file, &names, &sets, View::Paths);
        assert_eq!(
            paths.target["api"].output,
            ["type=local,dest=/srv/elsewhere"]
        );
        let appended = with_overrides(
            &file,
            &names,
            &["web.output+=type=tar,dest=/srv/x.tar".to_string()],
            View::Paths,
        );
        assert_eq!(appended.target["web"].output.len(), 2);
        assert!(glob("*", "web") && glob("w?b", "web") && !glob("api", "web"));
    }

    #[test]
    fn blanket_grants_are_refused() {
        for grant in [
            "fs=*",
            "fs.read=*",
            "fs.write=/",
            "fs.read=/./",
            "fs=/tmp/..",
        ] {
            let err = check_grant(grant).unwrap_err().to_string();
            assert!(
                err.contains("grant the exact paths instead"),
                "{grant}: {err}"
            );
        }
        assert!(check_grant("fs.read=relative/dir").is_err());
        for grant in ["fs.read=/srv/app", "network.host", "security.insecure"] {
            assert!(check_grant(grant).is_ok(), "{grant}");
        }
    }
}
