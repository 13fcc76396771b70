//! Explaining a running build: its inputs collected before it starts, its progress read
//! while it runs, and after it succeeded the explanation made, summed up in the step log,
//! and kept with the inputs for the next build.

use std::path::PathBuf;

use super::progress::ProgressReader;
use super::record::{collect, CacheInputs};
use super::{explain, BuildRecord, Explanation};
use crate::cmd::{OutputFilter, Runner};
use crate::docker::build::Build;
use crate::pipeline::filehash::FileHashes;

impl OutputFilter for ProgressReader {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        ProgressReader::push(self, bytes)
    }

    fn finish(&mut self) -> Vec<u8> {
        ProgressReader::finish(self)
    }
}

/// One build being explained.
#[derive(Debug)]
pub(crate) struct Watch {
    reader: ProgressReader,
    previous: Option<CacheInputs>,
    current: Option<CacheInputs>,
    record: Option<PathBuf>,
    own_hashes: Option<FileHashes>,
}

impl Watch {
    /// Starts explaining `build`, unless it does not explain itself or nothing runs (a
    /// dry run). `hashes` is the pipeline's file-hash cache, whose listing of the context
    /// this run's fingerprint already made; without it, a build with a record keeps its
    /// own cache of file hashes beside the record. Inputs that cannot be collected leave
    /// a warning in the log and an explanation without causes that need them.
    pub(crate) fn start(
        build: &Build,
        runner: &Runner,
        hashes: Option<&FileHashes>,
    ) -> Option<Watch> {
        if !build.explains() || runner.is_dry_run() {
            return None;
        }
        let record = build.explain_record.clone();
        let previous = match record.as_deref().map(BuildRecord::load) {
            Some(Ok(Some(r))) => r.inputs.usable(),
            Some(Err(e)) => {
                runner.note(&format!(
                    "warning: the previous build record is ignored: {e:#}"
                ));
                None
            }
            _ => None,
        };
        let own_hashes = match (&hashes, &record) {
            (None, Some(path)) => Some(FileHashes::load(&path.with_extension("file-hashes"))),
            _ => None,
        };
        let current = match collect(
            build,
            runner,
            hashes.or(own_hashes.as_ref()),
            previous.as_ref(),
        ) {
            Ok(inputs) => Some(inputs),
            Err(e) => {
                runner.note(&format!(
                    "warning: the build's cache inputs cannot be recorded, so its rebuilds \
                     are not explained: {e:#}"
                ));
                None
            }
        };
        Some(Watch {
            reader: ProgressReader::new(),
            previous,
            current,
            record,
            own_hashes,
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

    /// After a successful build: the explanation, its summary line in the step log
    /// (`<step>: 14/17 instructions cached; first rebuilt: ...`), and the record for the
    /// next build. Secrets the runner masks are masked in all of it.
    pub(crate) fn finish(self, runner: &Runner) -> Option<Explanation> {
        let mut current = self.current?;
        current.observe(self.reader.vertexes(), self.reader.text_lines());
        let explanation = explain(self.previous.as_ref(), &current, self.reader.vertexes());
        let explanation = redacted(runner, &explanation).unwrap_or(explanation);
        let summary = runner.redact(&explanation.summary());
        runner.note(&format!(
            "{}: {summary}",
            runner.get_prefix().unwrap_or("build")
        ));
        if let Some(path) = &self.record {
            let record = BuildRecord {
                written: crate::time::rfc3339(std::time::SystemTime::now()),
                summary,
                explanation: explanation.clone(),
                inputs: current,
            };
            if let Err(e) = record.save_redacted(path, runner) {
                runner.note(&format!(
                    "warning: the build record is not kept, the next build is explained \
                     without it: {e:#}"
                ));
            }
            if let Some(hashes) = &self.own_hashes {
                hashes.save();
            }
        }
        Some(explanation)
    }
}

/// `value` with every secret the runner masks masked.
fn redacted(runner: &Runner, value: &Explanation) -> Option<Explanation> {
    let json = serde_json::to_string(value).ok()?;
    serde_json::from_str(&runner.redact(&json)).ok()
}
