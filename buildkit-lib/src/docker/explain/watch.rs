//! Explaining a running build: its inputs collected beside it (on a thread of their own),
//! its progress read while it runs, and after it the explanation made, summed up in the
//! step log, and kept with the inputs for the next build.

use std::path::PathBuf;
use std::sync::Arc;

use super::progress::ProgressReader;
use super::record::{collect, CacheInputs};
use super::{explain, ExplainRecord, Explanation};
use crate::cmd::{OutputFilter, Runner};
use crate::docker::build::Build;
use crate::pipeline::filehash::FileHashes;

/// What a build's progress shows on the terminal and writes to the step log: the plain
/// rendering without its blank separator lines, which a step's runner would print as bare
/// `[step] ` prefixes (each vertex's lines are named `#N` already).
impl OutputFilter for ProgressReader {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        without_blank_lines(ProgressReader::push(self, bytes))
    }

    fn finish(&mut self) -> Vec<u8> {
        without_blank_lines(ProgressReader::finish(self))
    }
}

/// `text` without the lines that are empty once trailing whitespace is trimmed.
fn without_blank_lines(text: Vec<u8>) -> Vec<u8> {
    let blank = |line: &[u8]| line.iter().all(u8::is_ascii_whitespace);
    if !text.split_inclusive(|&b| b == b'\n').any(blank) {
        return text;
    }
    text.split_inclusive(|&b| b == b'\n')
        .filter(|line| !blank(line))
        .flatten()
        .copied()
        .collect()
}

/// One build being explained.
#[derive(Debug)]
pub(crate) struct Watch {
    reader: ProgressReader,
    pending: Pending,
}

/// The inputs of one build being collected beside it, and where its record goes.
#[derive(Debug)]
pub(crate) struct Pending {
    inputs: Option<std::thread::JoinHandle<Collected>>,
    record: Option<PathBuf>,
}

/// The inputs of a build, collected beside it.
#[derive(Debug, Default)]
struct Collected {
    /// The previous build's record, when it is of this format.
    previous_record: Option<ExplainRecord>,
    current: Option<CacheInputs>,
    own_hashes: Option<FileHashes>,
    /// Warnings for the step log, said when the build is over.
    notes: Vec<String>,
}

impl Watch {
    /// Starts explaining `build`, unless it does not explain itself. `hashes` is the pipeline's file-hash cache, whose listing of the context
    /// this run's fingerprint already made; without it, a build with a record keeps its
    /// own cache of file hashes beside the record. The previous record is read and the
    /// inputs collected on a thread of their own while the build runs (a walk of a large
    /// context costs no wall time then); inputs that cannot be collected leave a warning
    /// in the log and an explanation without causes that need them.
    pub(crate) fn start(
        build: &Build,
        runner: &Runner,
        hashes: Option<Arc<FileHashes>>,
    ) -> Option<Watch> {
        if !build.explains() {
            return None;
        }
        Some(Watch {
            reader: ProgressReader::new(),
            pending: Pending::start(build, runner, hashes),
        })
    }

    /// The progress read so far.
    pub(crate) fn reader(&self) -> &ProgressReader {
        &self.reader
    }

    /// The reader the build's output goes through.
    pub(crate) fn filter(&mut self) -> &mut dyn OutputFilter {
        &mut self.reader
    }

    /// After a build that made its image: the explanation, its summary line in the step
    /// log (`<step>: 14/17 instructions cached; first rebuilt: ...`), and the record for
    /// the next build. Secrets the runner masks are masked in all of it.
    pub(crate) fn finish(self, runner: &Runner) -> Option<Explanation> {
        let label = runner.get_prefix().unwrap_or("build").to_string();
        self.pending.finish(
            runner,
            self.reader.vertexes(),
            self.reader.text_lines(),
            &label,
        )
    }
}

impl Pending {
    /// Starts collecting the inputs of `build` on a thread of its own (see
    /// [`Watch::start`]); its record is `build`'s.
    pub(crate) fn start(
        build: &Build,
        runner: &Runner,
        hashes: Option<Arc<FileHashes>>,
    ) -> Pending {
        let record = build.explain_record.clone();
        let (build, runner, path) = (build.clone(), runner.clone(), record.clone());
        let inputs = std::thread::Builder::new()
            .name("explain-inputs".into())
            .spawn(move || collect_beside(&build, &runner, hashes.as_deref(), path))
            .ok();
        Pending { inputs, record }
    }

    /// The explanation of the build whose progress gave `vertexes` and `text_lines`, its
    /// summary said in the step log as `<label>: <summary>`, its record kept.
    pub(crate) fn finish(
        self,
        runner: &Runner,
        vertexes: &[super::Vertex],
        text_lines: &[String],
        label: &str,
    ) -> Option<Explanation> {
        let collected = match self.inputs.map(std::thread::JoinHandle::join) {
            Some(Ok(collected)) => collected,
            Some(Err(_)) | None => {
                runner.note(
                    "warning: the build's cache inputs were not collected, so its rebuilds \
                     are not explained",
                );
                return None;
            }
        };
        for note in &collected.notes {
            runner.note(note);
        }
        let mut current = collected.current?;
        current.observe(vertexes, text_lines);
        let previous = collected.previous_record.as_ref().map(|r| &r.inputs);
        let explanation = explain(previous, &current, vertexes);
        let explanation = redacted(runner, &explanation).unwrap_or(explanation);
        let summary = runner.redact(&explanation.summary());
        runner.note(&format!("{label}: {summary}"));
        if let Some(path) = &self.record {
            let record = ExplainRecord {
                written: crate::time::rfc3339(std::time::SystemTime::now()),
                summary,
                explanation: explanation.clone(),
                inputs: current,
            };
            // The same build again (a no-op CI run): the record on disk says it already,
            // and rewriting its per-file hashes would cost more than the explanation.
            let unchanged = collected.previous_record.as_ref().is_some_and(|p| {
                p.summary == record.summary
                    && p.explanation == record.explanation
                    && p.inputs == record.inputs
            });
            if !unchanged {
                if let Err(e) = record.save_redacted(path, runner) {
                    runner.note(&format!(
                        "warning: the build record is not kept, the next build is explained \
                         without it: {e:#}"
                    ));
                }
            }
            // Written only when a file's hash or stat changed.
            if let Some((path, bytes)) = collected.own_hashes.as_ref().and_then(FileHashes::encoded)
            {
                if let Err(e) = runner.write(&path, &bytes) {
                    runner.note(&format!(
                        "warning: the file hashes are not kept, the next build hashes again: {e:#}"
                    ));
                }
            }
        }
        Some(explanation)
    }
}

/// `value` with every secret the runner masks masked (`None` when it masks nothing).
fn redacted(runner: &Runner, value: &Explanation) -> Option<Explanation> {
    if !runner.masks_anything() {
        return None;
    }
    let json = serde_json::to_string(value).ok()?;
    serde_json::from_str(&runner.redact(&json)).ok()
}

/// Reads the previous record at `record` and collects the inputs of `build` (see
/// [`Watch::start`]).
fn collect_beside(
    build: &Build,
    runner: &Runner,
    hashes: Option<&FileHashes>,
    record: Option<PathBuf>,
) -> Collected {
    let mut out = Collected::default();
    match record.as_deref().map(ExplainRecord::load) {
        Some(Ok(Some(r))) if r.inputs.is_usable() => out.previous_record = Some(r),
        Some(Err(e)) => {
            out.notes.push(format!(
                "warning: the previous build record is ignored: {e:#}"
            ));
        }
        _ => {}
    }
    out.own_hashes = match (&hashes, &record) {
        (None, Some(path)) => Some(FileHashes::load(&path.with_extension("file-hashes"))),
        _ => None,
    };
    let hashes = hashes.or(out.own_hashes.as_ref());
    let previous = out.previous_record.as_ref().map(|r| &r.inputs);
    match collect(build, runner, hashes, previous) {
        Ok(inputs) => out.current = Some(inputs),
        Err(e) => out.notes.push(format!(
            "warning: the build's cache inputs cannot be recorded, so its rebuilds are not \
             explained: {e:#}"
        )),
    }
    out
}
