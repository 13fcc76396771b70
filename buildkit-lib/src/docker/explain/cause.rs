//! Naming the cause of each rebuilt instruction: the previous build's inputs against this
//! one's, and BuildKit's own graph (which vertex fed which), most specific cause first.

use std::collections::{BTreeSet, HashMap};

use super::progress::Vertex;
use super::record::{copy_sources, CacheInputs, RecordedInstruction, RecordedStage};
use super::rows::{is_step, Mapped};
use super::{Cause, Explanation, ImportStatus};

/// Instructions whose text decides the cache of what follows them in the stage.
fn shapes_cache(keyword: &str) -> bool {
    is_step(keyword) || matches!(keyword, "ENV" | "ARG" | "USER" | "SHELL")
}

/// The explanation of `rows` (mapped from `vertexes` against `current`).
pub(crate) fn explain(
    previous: Option<&CacheInputs>,
    current: &CacheInputs,
    vertexes: &[Vertex],
    mut rows: Vec<Mapped>,
) -> Explanation {
    let by_digest: HashMap<&str, &Vertex> =
        vertexes.iter().map(|v| (v.digest.as_str(), v)).collect();
    let row_of: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, m)| (m.digest.clone(), i))
        .collect();
    let changed = previous.map(|prev| Changed::between(prev, current));
    let mut causes = Vec::with_capacity(rows.len());
    for (i, m) in rows.iter().enumerate() {
        if !m.row.rebuilt() {
            causes.push(None);
            continue;
        }
        let inputs: &[String] = by_digest
            .get(m.digest.as_str())
            .map_or(&[], |v| v.inputs.as_slice());
        let prev = previous.zip(changed.as_ref());
        causes.push(Some(cause_of(prev, current, &rows, i, inputs, &row_of)));
    }
    for (m, cause) in rows.iter_mut().zip(causes) {
        m.row.cause = cause;
    }
    let secrets_changed = match previous {
        Some(prev) => current
            .secrets
            .iter()
            .filter(|(id, identity)| prev.secrets.get(*id).is_some_and(|p| p != *identity))
            .map(|(id, _)| id.clone())
            .collect(),
        None => Vec::new(),
    };
    Explanation {
        dockerfile: std::path::Path::new(&current.dockerfile)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| current.dockerfile.clone()),
        rows: rows.into_iter().map(|m| m.row).collect(),
        bases: current.bases.clone(),
        cache_imports: current.cache_imports.clone(),
        secrets_changed,
        previous_record: previous.is_some(),
        progress_read: !vertexes.is_empty(),
    }
}

/// The files that differ between two builds' records, found once for all rows.
struct Changed<'a> {
    /// Of the build context.
    context: Vec<&'a str>,
    /// Of each named context whose value stayed the same.
    named: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Changed<'a> {
    fn between(prev: &'a CacheInputs, current: &'a CacheInputs) -> Changed<'a> {
        let context = if prev.context_hashed && current.context_hashed {
            differing(&prev.context_files, &current.context_files)
        } else {
            Vec::new()
        };
        let named = current
            .named_contexts
            .iter()
            .filter_map(|(name, now)| {
                let then = prev.named_contexts.get(name)?;
                (then.value == now.value)
                    .then(|| (name.as_str(), differing(&then.files, &now.files)))
            })
            .collect();
        Changed { context, named }
    }
}

/// Paths whose identity differs, or that are in only one of the two (sorted, both maps
/// being sorted).
fn differing<'a>(
    old: &'a std::collections::BTreeMap<String, String>,
    new: &'a std::collections::BTreeMap<String, String>,
) -> Vec<&'a str> {
    let mut out: BTreeSet<&str> = BTreeSet::new();
    for (path, identity) in new {
        if old.get(path) != Some(identity) {
            out.insert(path);
        }
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            out.insert(path);
        }
    }
    out.into_iter().collect()
}

fn cause_of(
    previous: Option<(&CacheInputs, &Changed<'_>)>,
    current: &CacheInputs,
    rows: &[Mapped],
    at: usize,
    inputs: &[String],
    row_of: &HashMap<String, usize>,
) -> Cause {
    let m = &rows[at];
    if current.no_cache {
        return Cause::NoCache;
    }
    let stage = current.stage(&m.row.stage);
    let instruction = stage
        .zip(m.instruction_index)
        .and_then(|(s, n)| s.instructions.get(n));
    if let (Some((prev, changed)), Some(stage), Some(instruction)) = (previous, stage, instruction)
    {
        if let Some(files) = files_changed(prev, changed, current, stage, instruction) {
            return Cause::FilesChanged { files };
        }
        let names = args_changed(prev, current, stage, instruction, is_first(rows, at));
        if !names.is_empty() {
            return Cause::BuildArgChanged { names };
        }
        if is_first(rows, at) {
            if let Some(moved) = base_moved(prev, current, &stage.name) {
                return moved;
            }
        }
        if let Some(changed) = text_changed(prev, stage, m.instruction_index.unwrap_or(0)) {
            return changed;
        }
    }
    if let Some(cause) = upstream_rebuilt(current, rows, at, inputs, row_of) {
        return cause;
    }
    for import in &current.cache_imports {
        if let ImportStatus::Failed { error } = &import.status {
            return Cause::CacheNotImported {
                source: import.source.clone(),
                error: error.clone(),
            };
        }
    }
    let Some((prev, _)) = previous else {
        return Cause::NoPreviousRecord;
    };
    if prev.builder != current.builder {
        return Cause::BuilderChanged {
            old: prev.builder.clone(),
            new: current.builder.clone(),
        };
    }
    if prev.platforms != current.platforms {
        let show = |p: &[String]| {
            if p.is_empty() {
                "the builder's own".to_string()
            } else {
                p.join(",")
            }
        };
        return Cause::PlatformChanged {
            old: show(&prev.platforms),
            new: show(&current.platforms),
        };
    }
    // Said only for what BuildKit's cache key shows to be true: a cache mount's content
    // is no part of it (see `Cause::UnknownWithCacheMounts`).
    let mounts = instruction.map(cache_mounts).unwrap_or_default();
    if mounts.is_empty() {
        Cause::Unknown
    } else {
        Cause::UnknownWithCacheMounts { mounts }
    }
}

/// The cache mounts of a `RUN` (`--mount=type=cache,...`) not seeded `from=` a stage or
/// image, each by the id BuildKit keeps it under: its `id=`, else its target path. Empty
/// for any other instruction.
pub(crate) fn cache_mounts(instruction: &RecordedInstruction) -> Vec<String> {
    if instruction.keyword != "RUN" {
        return Vec::new();
    }
    let first_line = instruction.text.lines().next().unwrap_or("");
    first_line
        .split_whitespace()
        .skip(1)
        .take_while(|w| w.starts_with("--"))
        .filter_map(|w| w.strip_prefix("--mount="))
        .filter_map(|spec| {
            let field = |keys: &[&str]| {
                spec.split(',').find_map(|f| {
                    let (k, v) = f.split_once('=')?;
                    keys.contains(&k.trim().to_ascii_lowercase().as_str())
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            };
            if !field(&["type"]).is_some_and(|t| t.eq_ignore_ascii_case("cache")) {
                return None;
            }
            // Seeded from a stage or image: that is an input of the `RUN`, content and all.
            if field(&["from"]).is_some() {
                return None;
            }
            field(&["id"])
                .filter(|id| !id.is_empty())
                .or_else(|| field(&["target", "dst", "destination"]))
        })
        .collect()
}

/// Whether the row is the first step after its stage's `FROM` (the one a new base image
/// invalidates).
fn is_first(rows: &[Mapped], at: usize) -> bool {
    let m = &rows[at];
    !rows.iter().any(|o| {
        o.row.stage == m.row.stage && o.row.platform == m.row.platform && o.row.step < m.row.step
    })
}

/// The files a `COPY`/`ADD` takes that differ from the previous build, when it took them
/// with the same sources then.
fn files_changed(
    prev: &CacheInputs,
    changed: &Changed<'_>,
    current: &CacheInputs,
    stage: &RecordedStage,
    instruction: &RecordedInstruction,
) -> Option<Vec<String>> {
    if !current.context_hashed || !prev.context_hashed {
        return None;
    }
    let sources = copy_sources(instruction, &current.vars(Some(stage)))?;
    // The same instruction must have been there: otherwise its text changed, not files.
    let prev_stage = prev.stage(&stage.name)?;
    prev_stage
        .instructions
        .iter()
        .find(|i| i.text == instruction.text)?;
    let (paths, label) = match &sources.from {
        None => (&changed.context, None),
        Some(name) => (changed.named.get(name.as_str())?, Some(name.as_str())),
    };
    let files: Vec<String> = paths
        .iter()
        .filter(|p| sources.takes(p))
        .map(|p| match label {
            Some(name) => format!("{name}:{p}"),
            None => p.to_string(),
        })
        .collect();
    (!files.is_empty()).then_some(files)
}

/// The build args the instruction sees whose value changed: every arg the stage declared
/// before it for a `RUN` (they are its environment), the args its text names otherwise,
/// and for the stage's first step the global args its `FROM` names.
fn args_changed(
    prev: &CacheInputs,
    current: &CacheInputs,
    stage: &RecordedStage,
    instruction: &RecordedInstruction,
    first: bool,
) -> Vec<String> {
    let mut declared: Vec<String> = Vec::new();
    for i in stage
        .instructions
        .iter()
        .take_while(|i| i.line < instruction.line)
    {
        if i.keyword == "ARG" {
            for word in i.text.split_whitespace().skip(1) {
                declared.push(word.split('=').next().unwrap_or(word).to_string());
            }
        }
    }
    let names = |text: &str, name: &str| {
        text.contains(&format!("${name}")) || text.contains(&format!("${{{name}"))
    };
    let mut seen: Vec<String> = declared
        .into_iter()
        .filter(|n| instruction.keyword == "RUN" || names(&instruction.text, n))
        .collect();
    if first {
        for arg in &current.global_args {
            for word in arg.text.split_whitespace().skip(1) {
                let name = word.split('=').next().unwrap_or(word).to_string();
                if names(&stage.from, &name) {
                    seen.push(name);
                }
            }
        }
    }
    let mut out: Vec<String> = seen
        .into_iter()
        .filter(|n| prev.arg_value(n) != current.arg_value(n))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The stage's base image resolved to another digest, on the same platforms (for other
/// platforms BuildKit may show another digest of the same image: the platform changed).
fn base_moved(prev: &CacheInputs, current: &CacheInputs, stage: &str) -> Option<Cause> {
    if prev.platforms != current.platforms {
        return None;
    }
    let now = current.bases.iter().find(|b| b.stage == stage)?;
    let then = prev.bases.iter().find(|b| b.stage == stage)?;
    match (&then.digest, &now.digest) {
        (Some(old), Some(new)) if old != new => Some(Cause::BaseImageMoved {
            image: now.image.clone(),
            old: old.clone(),
            new: new.clone(),
        }),
        _ => None,
    }
}

/// The first instruction up to this one whose text differs from the previous build's,
/// when it is this one or one that runs nothing itself (an earlier step that changed is
/// named as rebuilt instead).
fn text_changed(prev: &CacheInputs, stage: &RecordedStage, index: usize) -> Option<Cause> {
    let prev_stage = prev.stage(&stage.name)?;
    if prev_stage.from != stage.from {
        return Some(Cause::InstructionChanged {
            line: Some(stage.line),
            old: Some(prev_stage.from.clone()),
            new: Some(stage.from.clone()),
        });
    }
    let now: Vec<(usize, &RecordedInstruction)> = stage
        .instructions
        .iter()
        .enumerate()
        .take(index + 1)
        .filter(|(_, i)| shapes_cache(&i.keyword))
        .collect();
    let then: Vec<&RecordedInstruction> = prev_stage
        .instructions
        .iter()
        .filter(|i| shapes_cache(&i.keyword))
        .collect();
    for (k, (n, i)) in now.iter().enumerate() {
        let old = then.get(k);
        if old.is_some_and(|o| o.text == i.text) {
            continue;
        }
        // Removed: this instruction follows further on in the previous build.
        if let Some(removed) = old.filter(|_| then[k + 1..].iter().any(|o| o.text == i.text)) {
            return Some(Cause::InstructionChanged {
                line: None,
                old: Some(removed.text.clone()),
                new: None,
            });
        }
        if *n != index && is_step(&i.keyword) {
            // An earlier step changed: it was rebuilt itself, and is named as such.
            return None;
        }
        // Added (the previous one follows further on now) or replaced.
        let added = old.is_none_or(|o| now[k + 1..].iter().any(|(_, x)| x.text == o.text));
        return Some(Cause::InstructionChanged {
            line: Some(i.line),
            old: if added {
                None
            } else {
                old.map(|o| o.text.clone())
            },
            new: Some(i.text.clone()),
        });
    }
    None
}

/// The instructions of stage `name` after its `FROM`.
fn stage_instructions<'a>(current: &'a CacheInputs, name: &str) -> Vec<&'a RecordedInstruction> {
    current
        .stage(name)
        .map(|s| s.instructions.iter().collect())
        .unwrap_or_default()
}

/// An input vertex that was rebuilt: an earlier step of the same stage, or the stage it
/// builds on or copies from (named by that stage's first rebuilt instruction).
fn upstream_rebuilt(
    current: &CacheInputs,
    rows: &[Mapped],
    at: usize,
    inputs: &[String],
    row_of: &HashMap<String, usize>,
) -> Option<Cause> {
    let m = &rows[at];
    let rebuilt: Vec<&Mapped> = inputs
        .iter()
        .filter_map(|d| row_of.get(d))
        .map(|&i| &rows[i])
        .filter(|o| o.row.rebuilt())
        .collect();
    let same = rebuilt.iter().find(|o| o.row.stage == m.row.stage);
    if let Some(o) = same {
        return Some(Cause::EarlierRebuilt {
            instruction: o.row.instruction.clone(),
            line: o.row.line,
        });
    }
    if let Some(o) = rebuilt.first() {
        // BuildKit runs an instruction that two stages share once (same base, same text):
        // the stage's own copy of it, before this one, is what was rebuilt.
        let own = stage_instructions(current, &m.row.stage)
            .into_iter()
            .take_while(|i| Some(i.line) != m.row.line)
            .filter(|i| is_step(&i.keyword))
            .find(|i| i.text.lines().next() == Some(o.row.instruction.as_str()));
        if let Some(own) = own {
            return Some(Cause::EarlierRebuilt {
                instruction: o.row.instruction.clone(),
                line: Some(own.line),
            });
        }
        let root = rows
            .iter()
            .find(|r| {
                r.row.stage == o.row.stage && r.row.platform == o.row.platform && r.row.rebuilt()
            })
            .unwrap_or(o);
        return Some(Cause::StageRebuilt {
            stage: o.row.stage.clone(),
            instruction: root.row.instruction.clone(),
            line: root.row.line,
        });
    }
    if !inputs.is_empty() {
        return None;
    }
    // No graph in the progress: the step before it in the stage.
    rows.iter()
        .rev()
        .find(|o| {
            o.row.stage == m.row.stage
                && o.row.platform == m.row.platform
                && o.row.step < m.row.step
                && o.row.rebuilt()
        })
        .map(|o| Cause::EarlierRebuilt {
            instruction: o.row.instruction.clone(),
            line: o.row.line,
        })
}
