//! From BuildKit's vertexes to Dockerfile instructions.
//!
//! BuildKit names an instruction's vertex `[<platform> <stage> <i>/<n>] <text>` (the
//! platform only in a multi-platform build, `stage-N` for an unnamed stage, `i` padded
//! with spaces), with build args expanded in the text. It counts the stage's `FROM` (when
//! the base is an image: not `scratch`, not another stage) and each `RUN`, `COPY`, `ADD`
//! and `WORKDIR`: the `i`th of those is the instruction, and the Dockerfile gives its line
//! and its text as written.

use super::progress::Vertex;
use super::record::{CacheInputs, RecordedInstruction, RecordedStage};
use super::{InstructionRow, Outcome};

/// The parts of a vertex name of a Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepName<'a> {
    pub(crate) platform: Option<&'a str>,
    pub(crate) stage: Option<&'a str>,
    pub(crate) step: usize,
    pub(crate) steps: usize,
    pub(crate) text: &'a str,
}

/// Reads `[linux/amd64 builder  5/12] COPY ...`; `None` for other vertexes
/// (`[internal] load build context`, `exporting to image`).
pub(crate) fn parse_step_name(name: &str) -> Option<StepName<'_>> {
    let inner = name.strip_prefix('[')?;
    let close = inner.find(']')?;
    let (prefix, text) = (&inner[..close], inner[close + 1..].trim_start());
    let mut words: Vec<&str> = prefix.split_whitespace().collect();
    let (step, steps) = words.pop()?.split_once('/')?;
    let (step, steps) = (step.parse().ok()?, steps.parse().ok()?);
    let platform = match words.first() {
        Some(w) if w.contains('/') => Some(words.remove(0)),
        _ => None,
    };
    let stage = match words.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => return None,
    };
    Some(StepName {
        platform,
        stage,
        step,
        steps,
        text,
    })
}

/// Whether BuildKit counts the instruction as a step of its stage.
pub(crate) fn is_step(keyword: &str) -> bool {
    matches!(keyword, "RUN" | "COPY" | "ADD" | "WORKDIR")
}

/// A row with what the explanation needs to find its cause.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) row: InstructionRow,
    /// The vertex digest.
    pub(crate) digest: String,
    /// The stage's position in the Dockerfile (`usize::MAX` when not found).
    pub(crate) stage_index: usize,
    /// The instruction's position among the stage's instructions after `FROM`.
    pub(crate) instruction_index: Option<usize>,
}

/// The steps of a stage as BuildKit counts them: `None` stands for its `FROM`.
fn counted(stage: &RecordedStage) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    if stage.base_image.is_some() {
        out.push(None);
    }
    out.extend(
        stage
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| is_step(&i.keyword))
            .map(|(n, _)| Some(n)),
    );
    out
}

/// Where the instruction named by `step` is in `stage`: `Some(None)` for its `FROM`,
/// `Some(Some(i))` for its `i`th instruction, `None` when it cannot be matched.
fn locate(stage: &RecordedStage, step: &StepName<'_>) -> Option<Option<usize>> {
    let counted = counted(stage);
    if counted.len() == step.steps {
        return counted.get(step.step.checked_sub(1)?).copied();
    }
    // Counted differently (an `ONBUILD` of the base, a newer frontend): match the keyword
    // and the text as far as it is not expanded.
    if step.text.starts_with("FROM ") {
        return Some(None);
    }
    let keyword = step.text.split_whitespace().next()?;
    let same: Vec<(usize, &RecordedInstruction)> = stage
        .instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword.eq_ignore_ascii_case(keyword))
        .filter(|(_, i)| !i.text.contains('$') && i.text.lines().next() == Some(step.text))
        .collect();
    match same.as_slice() {
        [(n, _)] => Some(Some(*n)),
        _ => None,
    }
}

/// The rows of every instruction vertex, `FROM`s left out, in Dockerfile order.
pub(crate) fn rows(inputs: &CacheInputs, vertexes: &[Vertex]) -> Vec<Mapped> {
    let mut out = Vec::new();
    for v in vertexes {
        let Some(step) = parse_step_name(&v.name) else {
            continue;
        };
        let stage_name = step.stage.unwrap_or("stage-0");
        let found = inputs
            .stages
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.eq_ignore_ascii_case(stage_name));
        let located = found.and_then(|(_, stage)| locate(stage, &step));
        if located == Some(None) || (located.is_none() && step.text.starts_with("FROM ")) {
            continue;
        }
        let instruction = match (found, located) {
            (Some((_, stage)), Some(Some(n))) => stage.instructions.get(n),
            _ => None,
        };
        let outcome = match (&v.error, v.cached, &v.started, &v.completed) {
            (Some(error), _, _, _) => Outcome::Failed {
                error: error.clone(),
            },
            (None, true, _, _) => Outcome::Cached,
            (None, false, Some(_), Some(_)) => Outcome::Built,
            (None, false, Some(_), None) => Outcome::Failed {
                error: "did not complete".to_string(),
            },
            (None, false, None, _) => Outcome::NotReached,
        };
        out.push(Mapped {
            row: InstructionRow {
                stage: stage_name.to_string(),
                platform: step.platform.map(str::to_string),
                step: step.step,
                steps: step.steps,
                line: instruction.map(|i| i.line),
                instruction: instruction
                    .map(|i| i.text.lines().next().unwrap_or("").to_string())
                    .unwrap_or_else(|| step.text.to_string()),
                seconds: if matches!(outcome, Outcome::Built | Outcome::Failed { .. }) {
                    v.seconds()
                } else {
                    None
                },
                outcome,
                cause: None,
            },
            digest: v.digest.clone(),
            stage_index: found.map_or(usize::MAX, |(i, _)| i),
            instruction_index: located.flatten(),
        });
    }
    out.sort_by(|a, b| {
        (a.stage_index, &a.row.platform, a.row.step).cmp(&(
            b.stage_index,
            &b.row.platform,
            b.row.step,
        ))
    });
    one_row_per_step(out)
}

/// One row for each step of a stage (and platform). BuildKit reports a step twice, under
/// two vertex digests, when another build running at the same time on the same builder has
/// the same step with the same cache key (the same Dockerfile on a context with the same
/// files, sent by another session): it merges the two and this build's progress carries the
/// other's vertex as well. The row kept is the one that says most of what happened to the
/// step: run, then failed (a vertex merged while still running ends without completing),
/// then cached, then never reached; the first of two alike.
fn one_row_per_step(rows: Vec<Mapped>) -> Vec<Mapped> {
    fn rank(m: &Mapped) -> u8 {
        match m.row.outcome {
            Outcome::Built => 3,
            Outcome::Failed { .. } => 2,
            Outcome::Cached => 1,
            Outcome::NotReached => 0,
        }
    }
    let mut out: Vec<Mapped> = Vec::with_capacity(rows.len());
    for m in rows {
        match out.last_mut() {
            Some(kept)
                if kept.stage_index == m.stage_index
                    && kept.row.stage == m.row.stage
                    && kept.row.platform == m.row.platform
                    && kept.row.step == m.row.step =>
            {
                if rank(&m) > rank(kept) {
                    *kept = m;
                }
            }
            _ => out.push(m),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_read_with_their_padding_platform_and_stage() {
        let s = parse_step_name("[stage-0  9/13] RUN echo six > /w/6").unwrap();
        assert_eq!(
            (s.platform, s.stage, s.step, s.steps, s.text),
            (None, Some("stage-0"), 9, 13, "RUN echo six > /w/6")
        );
        let s = parse_step_name("[linux/arm64 builder 1/6] FROM docker.io/x@sha256:1").unwrap();
        assert_eq!(
            (s.platform, s.stage, s.step),
            (Some("linux/arm64"), Some("builder"), 1)
        );
        let s = parse_step_name("[2/3] COPY a b").unwrap();
        assert_eq!((s.stage, s.step, s.steps), (None, 2, 3));
        assert!(parse_step_name("[internal] load build context").is_none());
        assert!(parse_step_name("exporting to image").is_none());
    }
}
