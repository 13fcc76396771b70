//! The clean-up [`CleanupPlan`] (what would be removed, with sizes, and what is kept and why),
//! how it is made from the engine's listings, and how it is carried out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{dirs, Cleanup, Kind};
use crate::cmd::{Cmd, CommandError, Runner};
use crate::docker::image::{history, layer_sizes, listed_sizes, local_images, ImageSizes};
use crate::plan::Step;
use crate::session::PROJECT_LABEL;
use crate::units::human_bytes;

/// One thing a clean-up can remove.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub(crate) enum Resource {
    /// A container, by name.
    Container {
        /// Its name (without docker's leading `/`).
        name: String,
        /// Its full id.
        id: String,
        /// True when it was running at planning time (it is stopped first).
        running: bool,
    },
    /// A tagged image, by reference (`repository:tag`).
    Image {
        /// `repository:tag`.
        reference: String,
        /// The image id (`sha256:...`).
        id: String,
    },
    /// An untagged image, by id.
    DanglingImage {
        /// The image id (`sha256:...`).
        id: String,
    },
    /// A directory inside the project root.
    Directory {
        /// The path as given (`dist`).
        path: PathBuf,
        /// The canonical path removed.
        real: PathBuf,
    },
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Container { name, .. } => write!(f, "container {name}"),
            Resource::Image { reference, .. } => write!(f, "image {reference}"),
            Resource::DanglingImage { id } => write!(f, "dangling image {}", short_id(id)),
            Resource::Directory { path, .. } => write!(f, "directory {}", path.display()),
        }
    }
}

/// A resource the plan removes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct ToRemove {
    /// What.
    pub(crate) resource: Resource,
    /// Bytes it frees, when known: a container's writable layer; for an image's last tag
    /// (or a dangling image), the disk space only it holds: its unpacked layers that no
    /// image left behind uses, plus on the containerd image store its compressed content,
    /// counted per image as `docker system df -v` counts it (`UniqueSize`). A layer shared
    /// by several removed images counts once, with the first of them in the plan; 0 for a
    /// tag whose image other tags keep; a directory's files.
    pub(crate) bytes: Option<u64>,
    /// Why it is ours: the label or name selector that matched.
    pub(crate) selected_by: String,
    /// Anything worth knowing, such as `running: stopped first`.
    pub(crate) note: Option<String>,
}

/// A resource found but not removed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Kept {
    /// What.
    pub(crate) resource: Resource,
    /// Why it stays.
    pub(crate) reason: String,
}

/// A removed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Removed {
    /// What.
    pub(crate) resource: Resource,
    /// Bytes freed, when known.
    pub(crate) bytes: Option<u64>,
}

/// Exactly what a clean-up will remove, in order, and what it keeps ([`Cleanup::list`]):
/// its `Display` is the listing, and it is a [`Step`] whose run removes exactly what was
/// listed, once it has been read (or confirmed by a user).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupPlan {
    /// Resources to remove: containers, then images, dangling images, directories.
    pub(crate) remove: Vec<ToRemove>,
    /// Resources selected but kept, with the reason.
    pub(crate) kept: Vec<Kept>,
    /// Whether images in use are removed anyway.
    pub(crate) force: bool,
}

/// What a clean-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// What was removed.
    pub(crate) removed: Vec<Removed>,
    /// What was kept, and why (including removals that failed).
    pub(crate) kept: Vec<Kept>,
    /// Bytes freed, as far as known. In a dry run, what a real run would free.
    pub bytes_reclaimed: u64,
}

#[derive(Debug, Deserialize)]
struct PsRow {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Names", default)]
    names: String,
}

#[derive(Debug, Deserialize)]
struct ImageRow {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Repository", default)]
    repository: String,
    #[serde(rename = "Tag", default)]
    tag: String,
}

impl ImageRow {
    fn reference(&self) -> Option<String> {
        if self.repository == "<none>" || self.tag == "<none>" || self.repository.is_empty() {
            None
        } else {
            Some(format!("{}:{}", self.repository, self.tag))
        }
    }
}

#[derive(Debug, Deserialize)]
struct ContainerInspect {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "State")]
    state: InspectState,
    #[serde(rename = "SizeRw", default)]
    size_rw: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct InspectState {
    #[serde(rename = "Running")]
    running: bool,
}

fn json_lines<T: for<'de> Deserialize<'de>>(cmd: &Cmd, out: &str) -> Result<Vec<T>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("cannot read `{cmd}` output: {l}"))
        })
        .collect()
}

fn query<T: for<'de> Deserialize<'de>>(runner: &Runner, cmd: Cmd) -> Result<Vec<T>> {
    let cmd = cmd.read_only();
    let out = runner.capture(&cmd)?;
    json_lines(&cmd, &out.stdout)
}

fn label_filters(cleanup: &Cleanup) -> Vec<String> {
    let Some(owner) = &cleanup.owner else {
        return Vec::new();
    };
    vec![
        "--filter".to_string(),
        format!("label={PROJECT_LABEL}={}", owner.project),
    ]
}

fn owner_text(cleanup: &Cleanup) -> String {
    match &cleanup.owner {
        Some(owner) => format!("label {PROJECT_LABEL}={}", owner.project),
        None => String::new(),
    }
}

fn ps_all() -> Cmd {
    Cmd::new("docker").args(["ps", "--all", "--no-trunc", "--format", "json"])
}

fn images_all() -> Cmd {
    Cmd::new("docker").args(["image", "ls", "--no-trunc", "--format", "json"])
}

/// The engine says the container or image no longer exists.
fn gone(e: &CommandError) -> bool {
    e.tail
        .iter()
        .any(|l| l.contains("No such container") || l.contains("No such image"))
}

fn is_gone(e: &anyhow::Error) -> bool {
    e.downcast_ref::<CommandError>().is_some_and(gone)
}

pub(super) fn make(cleanup: &Cleanup, runner: &Runner) -> Result<CleanupPlan> {
    let mut plan = CleanupPlan {
        remove: Vec::new(),
        kept: Vec::new(),
        force: cleanup.force,
    };
    // Directories first: a refused path fails the plan before any engine query.
    let mut directories = Vec::new();
    if cleanup.kinds.contains(&Kind::Directories) {
        let Some(root) = &cleanup.root else {
            bail!("cannot clean directories without a project root (set it with `directories`)");
        };
        for path in &cleanup.directories {
            if let Some(dir) = dirs::check(root, path)? {
                directories.push(ToRemove {
                    bytes: Some(dirs::size(&dir.real)),
                    resource: Resource::Directory {
                        path: dir.given,
                        real: dir.real,
                    },
                    selected_by: format!("directory inside {}", root.display()),
                    note: None,
                });
            }
        }
    }
    let mut removed_containers = BTreeSet::new();
    if cleanup.kinds.contains(&Kind::Containers) {
        plan_containers(cleanup, runner, &mut plan, &mut removed_containers)?;
    }
    let images = cleanup.kinds.contains(&Kind::Images);
    let dangling = cleanup.kinds.contains(&Kind::DanglingImages) && cleanup.owner.is_some();
    if images || dangling {
        plan_images(cleanup, runner, &mut plan, &removed_containers)?;
    }
    plan.remove.extend(directories);
    Ok(plan)
}

fn plan_containers(
    cleanup: &Cleanup,
    runner: &Runner,
    plan: &mut CleanupPlan,
    selected_ids: &mut BTreeSet<String>,
) -> Result<()> {
    // id -> why
    let mut selected: BTreeMap<String, String> = BTreeMap::new();
    if cleanup.owner.is_some() {
        let cmd = ps_all().args(label_filters(cleanup));
        for row in query::<PsRow>(runner, cmd).context("cannot list the project's containers")? {
            selected
                .entry(row.id)
                .or_insert_with(|| owner_text(cleanup));
        }
    }
    if !cleanup.container_names.is_empty() {
        for row in query::<PsRow>(runner, ps_all()).context("cannot list containers")? {
            let hit = cleanup
                .container_names
                .iter()
                .find(|sel| row.names.split(',').any(|n| sel.matches(n.trim())));
            if let Some(sel) = hit {
                selected.entry(row.id).or_insert_with(|| sel.to_string());
            }
        }
    }
    let mut found = Vec::new();
    for (id, why) in selected {
        let cmd = Cmd::new("docker")
            .args([
                "container",
                "inspect",
                "--size",
                "--format",
                "{{json .}}",
                &id,
            ])
            .read_only();
        let info = match runner.capture(&cmd) {
            Ok(out) => serde_json::from_str::<ContainerInspect>(out.stdout.trim())
                .with_context(|| format!("cannot read `{cmd}` output"))?,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e).context("cannot inspect a container to remove"),
        };
        found.push(ToRemove {
            resource: Resource::Container {
                name: info.name.trim_start_matches('/').to_string(),
                id: info.id,
                running: info.state.running,
            },
            bytes: info.size_rw,
            selected_by: why,
            note: info
                .state
                .running
                .then(|| "running: stopped first".to_string()),
        });
    }
    found.sort_by(|a, b| a.resource.cmp(&b.resource));
    for item in &found {
        if let Resource::Container { id, .. } = &item.resource {
            selected_ids.insert(id.clone());
        }
    }
    plan.remove.extend(found);
    Ok(())
}

fn plan_images(
    cleanup: &Cleanup,
    runner: &Runner,
    plan: &mut CleanupPlan,
    removed_containers: &BTreeSet<String>,
) -> Result<()> {
    let all: Vec<ImageRow> = query(runner, images_all()).context("cannot list images")?;
    // reference -> (id, why); dangling id -> why
    let mut refs: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut dangling: BTreeMap<String, String> = BTreeMap::new();
    if cleanup.owner.is_some() {
        let cmd = images_all().args(label_filters(cleanup));
        let owned: Vec<ImageRow> =
            query(runner, cmd).context("cannot list the project's images")?;
        for row in owned {
            match row.reference() {
                Some(r) if cleanup.kinds.contains(&Kind::Images) => {
                    refs.insert(r, (row.id, owner_text(cleanup)));
                }
                None if cleanup.kinds.contains(&Kind::DanglingImages) => {
                    dangling.insert(row.id, owner_text(cleanup));
                }
                _ => {}
            }
        }
    }
    if cleanup.kinds.contains(&Kind::Images) {
        for row in &all {
            let hit = cleanup
                .image_names
                .iter()
                .find(|p| p.matches(&row.repository, &row.tag));
            if let (Some(p), Some(r)) = (hit, row.reference()) {
                refs.entry(r)
                    .or_insert_with(|| (row.id.clone(), p.to_string()));
            }
        }
    }
    // Which references each image id has: removing a tag frees bytes only when it is the
    // last one, and only then can a container's use of the image block it.
    let mut refs_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for row in &all {
        if let Some(r) = row.reference() {
            refs_of.entry(row.id.as_str()).or_default().insert(r);
        }
    }
    let mut by_id: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (reference, (id, why)) in refs {
        by_id.entry(id).or_default().push((reference, why));
    }
    for (id, selected) in by_id {
        let chosen: BTreeSet<&String> = selected.iter().map(|(r, _)| r).collect();
        let last = refs_of
            .get(id.as_str())
            .is_none_or(|all_refs| all_refs.iter().all(|r| chosen.contains(r)));
        let users = if last {
            image_users(runner, &id, removed_containers)?
        } else {
            Vec::new()
        };
        let size = if last { None } else { Some(0) };
        let count = selected.len();
        for (i, (reference, why)) in selected.into_iter().enumerate() {
            let resource = Resource::Image {
                reference,
                id: id.clone(),
            };
            if !users.is_empty() && !cleanup.force {
                plan.kept.push(Kept {
                    resource,
                    reason: format!(
                        "in use by container {} (remove the container, or use force)",
                        users.join(", ")
                    ),
                });
                continue;
            }
            // The image's bytes go with its last tag.
            let freed = if i + 1 == count { size } else { Some(0) };
            let note = if !users.is_empty() {
                Some(format!("forced: in use by container {}", users.join(", ")))
            } else if !last {
                Some("other tags keep the image: only the tag goes".to_string())
            } else {
                None
            };
            plan.remove.push(ToRemove {
                resource,
                bytes: freed,
                selected_by: why,
                note,
            });
        }
    }
    for (id, why) in dangling {
        let users = image_users(runner, &id, removed_containers)?;
        let resource = Resource::DanglingImage { id: id.clone() };
        if !users.is_empty() && !cleanup.force {
            plan.kept.push(Kept {
                resource,
                reason: format!(
                    "in use by container {} (remove the container, or use force)",
                    users.join(", ")
                ),
            });
            continue;
        }
        plan.remove.push(ToRemove {
            resource,
            bytes: None,
            selected_by: why,
            note: None,
        });
    }
    reclaimable(runner, plan)
}

/// Fills in the bytes each removed image frees (its last tag, or a dangling image): a
/// layer counts only when no image left behind uses it, and once however many removed
/// images share it.
fn reclaimable(runner: &Runner, plan: &mut CleanupPlan) -> Result<()> {
    let removed: Vec<usize> = plan
        .remove
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.bytes.is_none()
                && matches!(
                    p.resource,
                    Resource::Image { .. } | Resource::DanglingImage { .. }
                )
        })
        .map(|(i, _)| i)
        .collect();
    if removed.is_empty() {
        return Ok(());
    }
    let image_id = |p: &ToRemove| match &p.resource {
        Resource::Image { id, .. } | Resource::DanglingImage { id } => id.clone(),
        _ => String::new(),
    };
    let going: BTreeSet<String> = removed.iter().map(|&i| image_id(&plan.remove[i])).collect();
    let locals = local_images(runner).context("cannot read which images share layers")?;
    // Layer stacks (a layer with every layer under it, like containerd's chain ids) that
    // images left behind use: removing the others does not free them.
    let mut kept: BTreeSet<&[String]> = BTreeSet::new();
    for image in locals.iter().filter(|i| !going.contains(&i.id)) {
        for n in 1..=image.diff_ids.len() {
            kept.insert(&image.diff_ids[..n]);
        }
    }
    let listed = listed_sizes(runner);
    let mut counted: BTreeSet<&[String]> = BTreeSet::new();
    for i in removed {
        let id = image_id(&plan.remove[i]);
        let Some(facts) = locals.iter().find(|f| f.id == id) else {
            continue; // gone meanwhile: size unknown
        };
        let layers = match history(runner, &id) {
            Ok(layers) => layers,
            Err(e) if is_gone(&e) => continue,
            Err(e) => return Err(e),
        };
        let sizes = ImageSizes::from_parts(
            facts,
            &layers,
            listed.as_ref().and_then(|l| l.get(&id).copied()),
        );
        let mut freed = sizes.content_on_disk();
        match layer_sizes(facts.diff_ids.len(), &layers) {
            Some(per_layer) => {
                for (n, bytes) in per_layer.into_iter().enumerate() {
                    let stack = &facts.diff_ids[..=n];
                    if !kept.contains(stack) && counted.insert(stack) {
                        freed += bytes;
                    }
                }
            }
            // The history could not be matched with the layers (rare): count the layers
            // only when none is used elsewhere, so the figure is never too high.
            None => {
                let stacks: Vec<&[String]> = (1..=facts.diff_ids.len())
                    .map(|n| &facts.diff_ids[..n])
                    .collect();
                if stacks
                    .iter()
                    .all(|s| !kept.contains(s) && !counted.contains(s))
                {
                    freed += sizes.layer_bytes;
                    counted.extend(stacks);
                }
            }
        }
        plan.remove[i].bytes = Some(freed);
    }
    Ok(())
}

/// Containers (other than those being removed) created from image `id`.
fn image_users(runner: &Runner, id: &str, removed: &BTreeSet<String>) -> Result<Vec<String>> {
    let cmd = ps_all().args(["--filter".to_string(), format!("ancestor={id}")]);
    let rows: Vec<PsRow> = query(runner, cmd).context("cannot list the containers of an image")?;
    Ok(rows
        .into_iter()
        .filter(|r| !removed.contains(&r.id))
        .map(|r| r.names)
        .collect())
}

impl ToRemove {
    /// The commands that remove it (none for a directory, removed by the library itself).
    pub(crate) fn commands(&self, plan: &CleanupPlan) -> Vec<Cmd> {
        let docker = || Cmd::new("docker");
        match &self.resource {
            Resource::Container { name, running, .. } => {
                let mut cmds = Vec::new();
                if *running {
                    cmds.push(docker().args(["stop", "--time", "10", name]));
                }
                cmds.push(docker().args(["rm", "--volumes", name]));
                cmds
            }
            Resource::Image { reference, .. } => {
                let forced = plan.force
                    && self
                        .note
                        .as_deref()
                        .is_some_and(|n| n.starts_with("forced"));
                let cmd = if forced {
                    docker().args(["rmi", "--force", reference])
                } else {
                    docker().args(["rmi", reference])
                };
                vec![cmd]
            }
            Resource::DanglingImage { id } => {
                let cmd = if plan.force {
                    docker().args(["rmi", "--force", id])
                } else {
                    docker().args(["rmi", id])
                };
                vec![cmd]
            }
            Resource::Directory { .. } => Vec::new(),
        }
    }
}

impl CleanupPlan {
    /// Bytes the plan frees, as far as known (in its `Display`; run on a dry-run runner,
    /// the summary's `bytes_reclaimed`).
    pub(crate) fn bytes(&self) -> u64 {
        self.remove.iter().filter_map(|p| p.bytes).sum()
    }

    /// Every command the plan runs, in order (directory removals are not commands).
    #[cfg(test)]
    pub(crate) fn commands(&self) -> Vec<Cmd> {
        self.remove.iter().flat_map(|p| p.commands(self)).collect()
    }

    /// Removes everything planned (see the [`Step`] impl).
    pub(crate) fn execute(&self, runner: &Runner) -> Result<Summary> {
        let mut summary = Summary {
            removed: Vec::new(),
            kept: self.kept.clone(),
            bytes_reclaimed: 0,
        };
        let mut failed = 0;
        for item in &self.remove {
            let outcome = match &item.resource {
                Resource::Directory { real, .. } => runner.remove(real),
                _ => item
                    .commands(self)
                    .iter()
                    .try_for_each(|cmd| runner.run(cmd).map(|_| ()).map_err(anyhow::Error::new)),
            };
            match outcome {
                Ok(()) => {
                    summary.bytes_reclaimed += item.bytes.unwrap_or(0);
                    summary.removed.push(Removed {
                        resource: item.resource.clone(),
                        bytes: item.bytes,
                    });
                }
                Err(e) if is_gone(&e) => summary.kept.push(Kept {
                    resource: item.resource.clone(),
                    reason: "already gone".into(),
                }),
                Err(e) => {
                    failed += 1;
                    summary.kept.push(Kept {
                        resource: item.resource.clone(),
                        reason: format!("removal failed: {}", first_line(&format!("{e:#}"))),
                    });
                }
            }
        }
        if failed > 0 {
            bail!(
                "clean-up could not remove {failed} of {} resources\n{summary}",
                self.remove.len()
            );
        }
        Ok(summary)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn size_text(bytes: Option<u64>) -> String {
    bytes
        .map(human_bytes)
        .unwrap_or_else(|| "size unknown".into())
}

impl Step for CleanupPlan {
    type Output = Summary;

    /// The result, as its `Display` prints it.
    fn summary(&self, output: &Summary) -> Option<String> {
        Some(output.to_string())
    }

    /// Removes exactly what was listed, in order: containers (running ones stopped
    /// first), images, dangling images, directories, each through `runner` (printed, not
    /// done, in a dry run, whose summary says what a real run removes). Fails, after
    /// trying every item, when any removal failed; the error lists what was removed and
    /// what was not. Its plan is this body recorded: the removals.
    fn run(&self, runner: &Runner) -> Result<Summary> {
        self.execute(runner)
    }
}

impl fmt::Display for CleanupPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.remove.is_empty() {
            write!(f, "nothing to remove")?;
        } else {
            write!(
                f,
                "would remove {} ({} known):",
                counted(self.remove.iter().map(|p| &p.resource)),
                human_bytes(self.bytes())
            )?;
            for item in &self.remove {
                write!(f, "\n  {} ({})", item.resource, size_text(item.bytes))?;
                if let Some(note) = &item.note {
                    write!(f, " {note};")?;
                }
                write!(f, " selected by {}", item.selected_by)?;
            }
        }
        for kept in &self.kept {
            write!(f, "\nkeep {}: {}", kept.resource, kept.reason)?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed.is_empty() {
            write!(f, "nothing removed")?;
        } else {
            write!(
                f,
                "removed {}: {} reclaimed",
                counted(self.removed.iter().map(|r| &r.resource)),
                human_bytes(self.bytes_reclaimed)
            )?;
            for r in &self.removed {
                write!(f, "\n  {} ({})", r.resource, size_text(r.bytes))?;
            }
        }
        for kept in &self.kept {
            write!(f, "\nkept {}: {}", kept.resource, kept.reason)?;
        }
        Ok(())
    }
}

/// `2 containers, 1 image and 1 directory`.
fn counted<'a>(resources: impl Iterator<Item = &'a Resource>) -> String {
    let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
    for r in resources {
        let key = match r {
            Resource::Container { .. } => 0,
            Resource::Image { .. } => 1,
            Resource::DanglingImage { .. } => 2,
            Resource::Directory { .. } => 3,
        };
        *counts.entry(key).or_default() += 1;
    }
    let names = [
        ("container", "containers"),
        ("image", "images"),
        ("dangling image", "dangling images"),
        ("directory", "directories"),
    ];
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(k, n)| {
            let (one, many) = names[k as usize];
            format!("{n} {}", if n == 1 { one } else { many })
        })
        .collect();
    match parts.len() {
        0 => "nothing".into(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_display_of_a_plan() {
        let plan = CleanupPlan {
            remove: vec![
                ToRemove {
                    resource: Resource::Container {
                        name: "app_1".into(),
                        id: "c1".into(),
                        running: true,
                    },
                    bytes: Some(4096),
                    selected_by: "name prefix app_".into(),
                    note: Some("running: stopped first".into()),
                },
                ToRemove {
                    resource: Resource::Image {
                        reference: "app:ci".into(),
                        id: "sha256:0123456789abcdef".into(),
                    },
                    bytes: Some(0),
                    selected_by: "image app".into(),
                    note: Some("other tags keep the image: only the tag goes".into()),
                },
                ToRemove {
                    resource: Resource::DanglingImage {
                        id: "sha256:0123456789abcdef".into(),
                    },
                    bytes: Some(2048),
                    selected_by: "label dev.buildkit-lib.project=app".into(),
                    note: None,
                },
            ],
            kept: vec![Kept {
                resource: Resource::Image {
                    reference: "app:old".into(),
                    id: "sha256:ff".into(),
                },
                reason: "in use by container web_1 (remove the container, or use force)".into(),
            }],
            force: false,
        };
        let cmds: Vec<String> = plan.commands().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cmds,
            [
                "docker stop --time 10 app_1",
                "docker rm --volumes app_1",
                "docker rmi app:ci",
                "docker rmi sha256:0123456789abcdef",
            ]
        );
        assert_eq!(
            plan.to_string(),
            "would remove 1 container, 1 image and 1 dangling image (6.14 kB known):\n  \
             container app_1 (4.1 kB) running: stopped first; selected by name prefix app_\n  \
             image app:ci (0 B) other tags keep the image: only the tag goes; selected by image app\n  \
             dangling image 0123456789ab (2.05 kB) selected by label dev.buildkit-lib.project=app\n\
             keep image app:old: in use by container web_1 (remove the container, or use force)"
        );
    }
}
