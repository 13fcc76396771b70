//! Running a bake file: [`Bake`] (the `docker buildx bake` command line, run in the
//! file's directory), its pre-flight checks, the typed [`BuildResult`]s read from
//! `--metadata-file`, and [`Bake::print`].
//!
//! Apart from the export because a bake file need not come from it: a hand-written JSON
//! file is checked and run the same way (HCL and compose files are left to buildx).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

use semver::Version;

use super::entitlements::{
    check_grant, needed, prepare, with_overrides, View, BAKE_ALLOW_MIN_BUILDX,
};
use super::model::{is_local, BakeFile};
use crate::cmd::{Cmd, Runner};
use crate::docker::build::{BuildMetadataRow, BuildRecord, BuildResult};
use crate::docker::cache;
use crate::docker::explain::bake::BakeWatch;
use crate::plan::Step;

/// One `docker buildx bake`. Made by [`BakeFile::write`], or by hand with [`Bake::new`].
///
/// Bake runs in the file's directory (the paths in the file are relative to it); relative
/// paths given here (`file`, `metadata_file`, ...) are relative to the current directory.
///
/// # Paths
///
/// Bake resolves a target's `context`, named `contexts`, output and cache directories and
/// secret files against the directory it *runs in*, not the file's directory; `dockerfile`
/// is resolved against the target's `context` (an absolute one is used as it is). So the
/// builder writes every path relative to the bake file's directory, and [`Bake`] runs
/// buildx in that directory: the file works from a fresh checkout and on another machine.
/// A path that shares nothing with that directory but the filesystem root (`/tmp/..` for a
/// file under `/work`) stays absolute.
///
/// # Network
///
/// Bake files only gained a `network` attribute in buildx releases after 0.13; buildx
/// 0.13 silently ignores it in JSON and HCL, rejects `--set <target>.network=...`, and
/// reads it only from compose files. [`BakeFile::write`] therefore writes the network
/// modes twice: as `network` in the JSON (for newer buildx) and in a small compose file
/// beside it, `<stem>.network.compose.yaml`, that [`Bake`] passes before the JSON file
/// (`-f <stem>.network.compose.yaml -f <stem>.json`) so that every release honours it.
///
/// # Entitlements
///
/// From buildx 0.17 on, bake builds only what the command grants (`--allow`) beyond the
/// directory it runs in: `network.host` for a target with `network: host`, and (enforced
/// from buildx 0.20 on) `fs.read=PATH` for each local context, Dockerfile, named context,
/// local cache source and secret file outside it, `fs.write=PATH` for each local output
/// and cache destination outside it; else it stops with "additional privileges
/// requested". [`Bake`] grants exactly what the selected targets need
/// (computed from the file, never a blanket `fs=*`), on a buildx
/// that takes `--allow` (0.17 or newer: `docker buildx version`, asked once per runner
/// when the command grants anything; a plan, which does not know, shows the grants); a
/// run first creates the missing output and cache
/// directories those grants name, since buildx checks a missing path by its parent.
/// Overrides ([`Bake::set`]) count as buildx counts them: an overridden context or
/// named context is granted, an overridden output, cache or secret list needs no grant
/// (buildx grants what the command line names).
///
/// # Example
///
/// ```
/// use buildkit_lib::docker::Bake;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let bake = Bake::new("target/docker-bake.json").target("webapp");
/// let plan = bake.plan(&Runner::new())?.to_string();
/// // Bake runs in the file's directory: the file is named by its absolute path.
/// let command = plan.lines().find(|l| l.starts_with("$ ")).unwrap();
/// assert!(command.starts_with("$ docker buildx bake -f /"), "{plan}");
/// assert!(command.contains("target/docker-bake.json --metadata-file "), "{plan}");
/// assert!(command.ends_with(" --progress=plain webapp"), "{plan}");
/// // With an engine: `let result = bake.run(&buildkit_lib::Runner::new())?;`
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Bake {
    /// The bake file (`-f`).
    pub(crate) file: PathBuf,
    /// A compose file read before `file` (`-f`), carrying the targets' network modes for
    /// buildx 0.13 (see the [`Bake` docs](Bake#network)).
    pub(crate) network_file: Option<PathBuf>,
    /// Targets or groups to build; empty builds the `default` group.
    pub(crate) targets: Vec<String>,
    /// Where buildx writes the metadata JSON; [`Bake::run`] uses a temporary file when
    /// this is `None`.
    pub(crate) metadata_file: Option<PathBuf>,
    /// The buildx builder to use (`--builder`).
    pub(crate) builder: Option<String>,
    /// Progress output (`--progress`); `plain` by default, `None` leaves buildx's default.
    pub(crate) progress: Option<String>,
    /// Overrides (`--set <target pattern>.<key>=<value>`), in order.
    pub(crate) set: Vec<String>,
    /// Print the resolved definition instead of building (`--print`); see [`Bake::print`].
    pub(crate) print_only: bool,
    /// Explain each target's build (see [`Bake::explain_records`]).
    pub(crate) explain: bool,
    /// Where each target's explanation record is kept (see [`Bake::explain_records`]).
    pub(crate) explain_records: Option<PathBuf>,
    /// Entitlements granted by hand (`--allow`), beside those computed from the targets.
    pub(crate) allow: Vec<String>,
    /// The file as [`BakeFile::write`] wrote it: what a plan computes the grants from.
    pub(crate) definition: Option<BakeFile>,
    /// The grants a run computed from the file on disk (symbolic links resolved).
    pub(crate) granted: Option<Vec<String>>,
    /// The buildx release the command line is for; `None`: [`Bake::run`] asks buildx.
    pub(crate) buildx: Option<Version>,
}

impl Bake {
    /// Targets or groups to build; empty builds the `default` group.
    ///
    /// Adds one; call again for more.
    pub fn target(mut self, target: impl Into<String>) -> Bake {
        self.targets.push(target.into());
        self
    }

    /// Where buildx writes the metadata JSON; [`Bake::run`] uses a temporary file when
    /// this is `None`.
    pub fn metadata_file(mut self, metadata_file: impl Into<PathBuf>) -> Bake {
        self.metadata_file = Some(metadata_file.into());
        self
    }

    /// The buildx builder to use (`--builder`).
    pub fn builder(mut self, builder: impl Into<String>) -> Bake {
        self.builder = Some(builder.into());
        self
    }

    /// Overrides (`--set <target pattern>.<key>=<value>`), in order.
    ///
    /// Adds one; call again for more.
    pub fn set(mut self, set: impl Into<String>) -> Bake {
        self.set.push(set.into());
        self
    }

    /// Explain each target's build, as [`Build::explain`](crate::docker::Build::explain)
    /// does (off by default), keeping each target's explanation record in `dir`
    /// (`<dir>/<target>.json`) between bakes so that each explanation compares with the
    /// previous bake's (causes that need the previous build's inputs, such as changed
    /// files, build args, base images and instructions, are named only so; secrets are
    /// kept as identities only). With the default `plain` progress, bake runs with
    /// `--progress=rawjson` (rendered as plain text in the log), each target's cache
    /// set-up checks are said before, and each target's [`BuildResult::explanation`] says
    /// which instructions came from the cache and why each of the others ran. Targets of a
    /// JSON file with a local context and a Dockerfile file only.
    pub fn explain_records(mut self, dir: impl Into<PathBuf>) -> Bake {
        self.explain = true;
        self.explain_records = Some(dir.into());
        self
    }

    /// Grants one more entitlement (`--allow=VALUE`, such as `security.insecure` or
    /// `fs.read=/srv/keys`) beyond those computed from the targets (see the [`Bake`
    /// docs](Bake#entitlements)): for what a target asks for that the library does not
    /// model, such as its own `entitlements` or an `ssh` key file. A blanket grant
    /// (`fs=*`, `fs.read=/`) or a relative path is refused when the bake runs.
    ///
    /// Adds one; call again for more.
    pub fn allow(mut self, entitlement: impl Into<String>) -> Bake {
        self.allow.push(entitlement.into());
        self
    }

    /// The entitlements the command grants when buildx takes them, sorted: those computed
    /// from the selected targets of the file as written ([`BakeFile::write`]; a run
    /// computes them again from the file on disk), then those given with [`Bake::allow`].
    pub(crate) fn entitlements(&self) -> Vec<String> {
        let mut out = match (&self.granted, &self.definition) {
            (Some(granted), _) => granted.clone(),
            (None, Some(file)) => file
                .resolve(&self.targets)
                .map(|names| {
                    let effective = with_overrides(file, &names, &self.set, View::Grants);
                    needed(&effective, &names, &self.dir(), false)
                })
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        for grant in &self.allow {
            if !out.contains(grant) {
                out.push(grant.clone());
            }
        }
        out
    }

    /// Whether the command line carries `--allow`: a buildx that takes it for bake.
    fn takes_allow(&self) -> bool {
        self.buildx
            .as_ref()
            .is_none_or(|v| *v >= BAKE_ALLOW_MIN_BUILDX)
    }

    /// Whether the bake reads BuildKit's per-instruction progress to explain its targets.
    pub(crate) fn explains(&self) -> bool {
        self.explain && self.progress.as_deref() == Some("plain")
    }
}

/// What a bake produced: each target's result, by target name.
pub(crate) type BakeResult = BTreeMap<String, BuildResult>;

/// Reads bake's metadata JSON: an object keyed by target name. Each target's
/// [`BuildResult`] holds its digest, its image id (the config digest, as the `docker`
/// driver names the image), the image names buildx reports as its `tags` (`image.name`,
/// normalized: `docker.io/library/web:1`), the target's metadata as written and the
/// reference of BuildKit's record.
pub(crate) fn parse_metadata(text: &str) -> anyhow::Result<BakeResult> {
    let value: Value = serde_json::from_str(text).context("bake metadata is not JSON")?;
    let Value::Object(map) = value else {
        bail!("bake metadata is not a JSON object keyed by target name");
    };
    map.into_iter()
        .filter(|(_, v)| v.is_object())
        .map(|(name, v)| {
            let row: BuildMetadataRow =
                crate::rows::from_value(&v, &format!("the bake metadata of target {name}"))?;
            let tags: Vec<String> = row
                .image_name
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            let result = BuildResult {
                image_name: tags.first().cloned(),
                tags,
                digest: row.digest,
                image_id: row.config_digest,
                metadata: v,
                record: BuildRecord::without_history(
                    row.build_ref,
                    true,
                    "not read for a bake target".into(),
                ),
                ..BuildResult::default()
            };
            Ok((name, result))
        })
        .collect()
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
            print_only: false,
            explain: false,
            explain_records: None,
            allow: Vec::new(),
            definition: None,
            granted: None,
            buildx: None,
        }
    }

    /// The directory bake runs in: the file's.
    pub(crate) fn dir(&self) -> PathBuf {
        let file = absolute_or_same(&self.file);
        match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The command line, in a fixed argument order: `docker buildx bake [--builder B]
    /// [--allow=E].. [-f NETWORK_FILE] -f FILE [--metadata-file M] [--progress=P]
    /// [--set S].. [--print] [TARGET..]`, run in the file's directory, with absolute
    /// paths. `--allow` carries the entitlements the targets need (see the [`Bake`
    /// docs](Bake#entitlements)) and those of [`Bake::allow`] (a run leaves them out on a
    /// buildx older than 0.17, which has no `bake --allow`); never with `--print`, which
    /// builds nothing.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "bake"]).cwd(self.dir());
        if let Some(builder) = &self.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        if !self.print_only && self.takes_allow() {
            for grant in self.entitlements() {
                cmd = cmd.arg(format!("--allow={grant}"));
            }
        }
        if let Some(network) = &self.network_file {
            cmd = cmd.arg("-f").arg_path(absolute_or_same(network));
        }
        cmd = cmd.arg("-f").arg_path(absolute_or_same(&self.file));
        if let Some(file) = &self.metadata_file {
            cmd = cmd.arg("--metadata-file").arg_path(absolute_or_same(file));
        }
        if let Some(progress) = &self.progress {
            let progress = if self.explains() { "rawjson" } else { progress };
            cmd = cmd.arg(format!("--progress={progress}"));
        }
        for set in &self.set {
            cmd = cmd.arg("--set").arg(set);
        }
        if self.print_only {
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
        // An override can bring a gha cache in too (`--set *.cache-to=type=gha`).
        for set in &self.set {
            let Some((key, value)) = set.split_once('=') else {
                continue;
            };
            let key = key.trim_end_matches('+');
            if key.ends_with(".cache-to") || key.ends_with(".cache-from") {
                gha_v2 |= cache::resolve_gha_entries(&[value.to_string()], env)
                    .with_context(|| format!("override `--set {set}` of the bake of {shown}"))?;
            }
        }
        Ok(gha_v2)
    }

    /// Registers the values of the selected targets' secrets for redaction, and of their
    /// build args whose value looks like a secret (BuildKit's progress names a `RUN` with
    /// the build args it sees expanded).
    fn register_secret_values(&self, file: &BakeFile, runner: &Runner) {
        let probe = Cmd::new("docker");
        let dir = self.dir();
        let Ok(names) = file.resolve(&self.targets) else {
            return;
        };
        for name in names {
            for value in file.target[&name].args.values() {
                if crate::docker::build::looks_like_secret_value(value).is_some() {
                    runner.mask_bytes(value.trim().as_bytes());
                }
            }
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
}

impl Step for Bake {
    type Output = BakeResult;

    /// Checks, runs the bake and reads each target's result from the metadata file. A
    /// JSON file not written yet (a dry run's plan of a pipeline that writes it first) is
    /// not checked, and said so.
    ///
    /// Before the bake: its pre-flight checks (each target's cache settings, the files it
    /// names) with the runner's environment (a
    /// file other than JSON is read as `docker buildx bake --print` resolves it), the
    /// builder check of a v2 gha cache, the missing output and cache directories outside
    /// the file's directory created (`mkdir -p`, see the [`Bake` docs](Bake#entitlements)),
    /// and, when the command grants entitlements, `docker buildx version` (once per
    /// runner) to know whether buildx takes `--allow`. Without a [`Bake::metadata_file`], buildx writes its metadata to a file
    /// in the temporary directory named after the run and the command, removed once read.
    fn run(&self, runner: &Runner) -> anyhow::Result<BakeResult> {
        self.run_checked(runner)
    }
}

/// Whether the buildx `runner` starts takes `bake --allow` (asked once per runner and
/// docker set-up, see [`crate::engine::Capabilities::read`]); `None` when a dry run may
/// not ask, or the version cannot be read.
fn buildx_takes_allow(runner: &Runner) -> anyhow::Result<Option<bool>> {
    Ok(crate::docker::builder::buildx_version(runner)?.map(|v| v >= BAKE_ALLOW_MIN_BUILDX))
}

impl Bake {
    fn run_checked(&self, runner: &Runner) -> anyhow::Result<BakeResult> {
        if self.print_only {
            bail!("this bake only prints its definition (`print_only` is set): use `Bake::print`");
        }
        for grant in &self.allow {
            check_grant(grant)?;
        }
        let mut why = None;
        let mut bake = self.clone();
        // The definition the checks and grants are computed from: a JSON file as written;
        // any other file (HCL, compose) as buildx resolves it (`--print`).
        let definition = if self.file.extension().is_some_and(|e| e == "json") {
            if self.file.exists() {
                self.read_file()?
            } else {
                runner.note(&format!(
                    "bake file {} is not written yet: its targets are not checked",
                    self.file.display()
                ));
                None
            }
        } else {
            self.printed(runner)?
        };
        if let Some(file) = definition {
            let probe = Cmd::new("docker");
            let gha_v2 = self.check_file(&file, &|k| runner.effective_env(&probe, k))?;
            self.register_secret_values(&file, runner);
            cache::mask_gha_token(runner);
            if gha_v2 {
                cache::check_gha_v2(runner, self.builder.as_deref())
                    .with_context(|| format!("cannot bake {}", self.file.display()))?;
            }
            let names = file.resolve(&self.targets)?;
            if self.explains() {
                why = BakeWatch::start(
                    &self.dir(),
                    &file,
                    &names,
                    self.explain_records.as_deref(),
                    self.builder.as_deref(),
                    runner,
                );
            }
            let paths = with_overrides(&file, &names, &self.set, View::Paths);
            prepare(&paths, &names, &self.dir(), runner)
                .with_context(|| format!("cannot bake {}", self.file.display()))?;
            let effective = with_overrides(&file, &names, &self.set, View::Grants);
            bake.granted = Some(needed(&effective, &names, &self.dir(), true));
        }
        if bake.buildx.is_none() && !bake.entitlements().is_empty() {
            if let Some(false) = buildx_takes_allow(runner)? {
                // Older than 0.17 (which exactly, the answer kept per runner does not say):
                // the command leaves `--allow` out.
                bake.buildx = Some(Version::new(0, 0, 0));
            }
        }
        let (metadata_path, ours) = crate::docker::build::metadata_file(
            self.metadata_file.as_deref(),
            &bake.command(),
            runner,
        );
        bake.metadata_file = Some(metadata_path.clone());
        let cmd = bake.command();
        let what = if self.targets.is_empty() {
            "the default group".to_string()
        } else {
            self.targets.join(", ")
        };
        runner
            .run_filtered(&cmd, why.as_mut().map(|w| w.filter()))
            .map_err(|e| {
                let refused = e
                    .tail
                    .iter()
                    .any(|l| l.contains("additional privileges requested"));
                let err = anyhow::Error::new(e);
                if refused {
                    err.context(format!(
                        "cannot bake {what} of {}: buildx asks for entitlements the command does \
                     not grant (it grants the paths and host network the targets use, not \
                     what a target asks for itself, such as `entitlements` or `ssh`): grant \
                     the exact ones buildx names with `Bake::allow`",
                        self.file.display()
                    ))
                } else {
                    err.context(format!("cannot bake {what} of {}", self.file.display()))
                }
            })?;
        let metadata = crate::docker::build::read_metadata(
            runner,
            &metadata_path,
            &self.metadata_dry_answer(),
            "bake",
        )?;
        if ours {
            runner.remove(&metadata_path)?;
        }
        let mut result = parse_metadata(&metadata.to_string())
            .with_context(|| format!("bake metadata {}", metadata_path.display()))?;
        if let Some(why) = why {
            let explained = why.finish(runner);
            for (name, explanation) in explained.explanations {
                if let Some(target) = result.get_mut(&name) {
                    target.explanation = Some(explanation);
                }
            }
            for (name, findings) in explained.warnings {
                if let Some(target) = result.get_mut(&name) {
                    target.cache_warnings = findings;
                }
            }
        }
        Ok(result)
    }

    /// What a dry run reads in place of the metadata file: each target asked for (none for
    /// the default group) with a placeholder digest.
    fn metadata_dry_answer(&self) -> String {
        let targets: serde_json::Map<String, Value> = self
            .targets
            .iter()
            .map(|t| {
                let row = serde_json::json!({
                    "containerimage.digest": "sha256:<digest>",
                    "buildx.build.ref": "<builder>/<node>/<build-ref>",
                });
                (t.clone(), row)
            })
            .collect();
        Value::Object(targets).to_string()
    }

    /// The definition as `docker buildx bake --print` resolves it, for the checks of a
    /// file other than JSON; `None` when it prints nothing (a dry run, which does not ask).
    fn printed(&self, runner: &Runner) -> anyhow::Result<Option<BakeFile>> {
        let bake = Bake {
            print_only: true,
            metadata_file: None,
            progress: None,
            ..self.clone()
        };
        let out = runner
            .capture(&bake.command().read_only())
            .with_context(|| format!("cannot print bake file {}", self.file.display()))?;
        if out.stdout.trim().is_empty() {
            runner.note(&format!(
                "`docker buildx bake --print` of {} printed nothing: its targets are not checked",
                self.file.display()
            ));
            return Ok(None);
        }
        BakeFile::parse(&out.stdout).map(Some).with_context(|| {
            format!(
                "`docker buildx bake --print` of {} printed something else than a bake file",
                self.file.display()
            )
        })
    }

    /// Runs `docker buildx bake --print` (read-only: it runs in a dry run too) and reads
    /// the definition as buildx resolved it: only the selected targets, defaults filled in
    /// (`context` `.`, `dockerfile` `Dockerfile`), duplicate tags dropped, named groups
    /// other than those asked for left out. buildx 0.13 leaves out `network` and reads
    /// secret files even to print (a missing one is an error); paths are printed as written.
    pub fn print(&self, runner: &Runner) -> anyhow::Result<BakeFile> {
        let bake = Bake {
            print_only: true,
            metadata_file: None,
            progress: None,
            ..self.clone()
        };
        let cmd = bake.command().read_only();
        // Printing is what was asked: it runs in a dry run too.
        let out = runner
            .clone()
            .dry_run_queries(true)
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
        let results = parse_metadata(text).unwrap();
        assert_eq!(results["web"].digest.as_deref(), Some("sha256:d1"));
        assert_eq!(results["web"].image_id.as_deref(), Some("sha256:c0"));
        assert_eq!(
            results["web"].tags,
            ["docker.io/library/web:1", "docker.io/library/web:latest"]
        );
        assert_eq!(results["files"].digest, None);
        assert!(results["files"].tags.is_empty());
        assert_eq!(
            results["files"].record.reference.as_deref(),
            Some("default/default/def")
        );
        assert!(parse_metadata("[]").is_err());
    }

    #[test]
    fn metadata_of_another_shape_names_the_target() {
        let e = parse_metadata(r#"{"web": {"containerimage.digest": 12}}"#).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.starts_with("the bake metadata of target web is JSON of an unexpected shape"),
            "{text}"
        );
    }

    #[test]
    fn another_bake_file_is_the_one_passed_and_its_folder_the_one_run_in() {
        let bake = Bake::new("/srv/other/bake.json");
        let cmd = bake.command();
        assert_eq!(
            cmd.to_string(),
            "docker buildx bake -f /srv/other/bake.json --progress=plain"
        );
        assert_eq!(cmd.get_cwd(), Some(Path::new("/srv/other")));
    }
}
