//! The size history: one JSON line per build with its layers, where it is kept, how it is
//! read back, and which layers changed between two builds.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::budget::SizeMeasure;

/// One layer as kept in the history: the instruction and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub(crate) struct LayerRecord {
    /// The instruction that made it (`docker history`'s `CreatedBy`); for a layer with no
    /// instruction (an imported base) a description such as `base image
    /// buildkit-local/python:3.11`, never empty.
    pub(crate) created_by: String,
    /// Its unpacked size in bytes, as `docker history` shows it (the engine keeps no
    /// per-layer compressed size of a local image).
    pub(crate) bytes: u64,
}

/// One line of the size history: one build of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub(crate) struct SizeRecord {
    /// When it was measured (RFC 3339, UTC).
    pub(crate) time: String,
    /// The image name without tag (`ghcr.io/org/app`).
    pub(crate) image: String,
    /// The tag (`latest`), empty when none.
    pub(crate) tag: String,
    /// The registry digest (`sha256:...`) when the image has one, else empty.
    pub(crate) digest: String,
    /// The local image id.
    #[serde(default)]
    pub(crate) id: String,
    /// The judged size in bytes: the size [`measure`](SizeRecord::measure) names.
    pub(crate) bytes: u64,
    /// Which size `bytes` is; `None` in records written before both sizes were kept, whose
    /// `bytes` is the engine's `.Size` (compressed on the containerd image store).
    #[serde(default)]
    pub(crate) measure: Option<SizeMeasure>,
    /// The unpacked size on disk, as `docker images` shows it.
    #[serde(default)]
    pub(crate) unpacked_bytes: Option<u64>,
    /// The compressed size (registry, transfer), when the engine knows it.
    #[serde(default)]
    pub(crate) compressed_bytes: Option<u64>,
    /// The git commit it was built from, empty when unknown.
    pub(crate) git_commit: String,
    /// Its layers, oldest first, with their unpacked sizes.
    #[serde(default)]
    pub(crate) layers: Vec<LayerRecord>,
}

impl SizeRecord {
    /// The part of the unpacked size that is not in the layers: on the containerd image
    /// store, the compressed content the engine keeps beside the unpacked layers.
    pub(crate) fn content_on_disk(&self) -> u64 {
        let layers: u64 = self.layers.iter().map(|l| l.bytes).sum();
        self.unpacked_bytes.unwrap_or(0).saturating_sub(layers)
    }
}

/// How one layer changed between two builds (matched by instruction, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct LayerChange {
    /// The instruction.
    pub(crate) created_by: String,
    /// Bytes in the previous build (`None`: the layer is new).
    pub(crate) before: Option<u64>,
    /// Bytes in this build (`None`: the layer is gone).
    pub(crate) after: Option<u64>,
}

impl LayerChange {
    /// Growth in bytes (negative when it shrank).
    pub(crate) fn delta(&self) -> i64 {
        self.after.unwrap_or(0) as i64 - self.before.unwrap_or(0) as i64
    }
}

/// The layers that differ between `before` and `after`, biggest change first. Layers are
/// matched by instruction text (and occurrence among equal texts); a layer left over is
/// matched with the one at the same position when both are the same instruction (`RUN`
/// whose build argument changed), else it is new or gone.
pub(crate) fn diff_layers(before: &[LayerRecord], after: &[LayerRecord]) -> Vec<LayerChange> {
    let mut pair: Vec<Option<usize>> = vec![None; after.len()];
    let mut used = vec![false; before.len()];
    for (j, layer) in after.iter().enumerate() {
        let found =
            (0..before.len()).find(|&i| !used[i] && before[i].created_by == layer.created_by);
        if let Some(i) = found {
            used[i] = true;
            pair[j] = Some(i);
        }
    }
    let keyword = |text: &str| text.split_whitespace().next().unwrap_or("").to_string();
    for (j, layer) in after.iter().enumerate() {
        if pair[j].is_none()
            && j < before.len()
            && !used[j]
            && keyword(&before[j].created_by) == keyword(&layer.created_by)
        {
            used[j] = true;
            pair[j] = Some(j);
        }
    }
    let mut changes: Vec<LayerChange> = after
        .iter()
        .zip(&pair)
        .map(|(layer, p)| LayerChange {
            created_by: layer.created_by.clone(),
            before: p.map(|i| before[i].bytes),
            after: Some(layer.bytes),
        })
        .collect();
    for (i, layer) in before.iter().enumerate() {
        if !used[i] {
            changes.push(LayerChange {
                created_by: layer.created_by.clone(),
                before: Some(layer.bytes),
                after: None,
            });
        }
    }
    changes.retain(|c| c.delta() != 0);
    changes.sort_by_key(|c| std::cmp::Reverse(c.delta().unsigned_abs()));
    changes
}

/// Reads a size history (missing file: empty). A line that is not a record is an error
/// naming the file and line.
pub(crate) fn read_history(path: &Path) -> Result<Vec<SizeRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{} line {} is not a size record (fix or remove that line)",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}
