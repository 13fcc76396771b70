//! The scheduler: runs a pipeline's steps in parallel, in dependency order.

use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::cmd::Runner;
use crate::files::write_atomic;
use crate::finding::Finding;
use crate::hash::sha256_file;
use crate::session::Session;

use super::filehash::FileHashes;
use super::fingerprint::Record;

/// The file under the pipeline's directory that keeps input files' hashes between runs.
const FILE_HASHES: &str = "file-hashes";
use super::report::{
    escape_data, ArtifactRecord, ImageRecord, InstructionRecord, Report, StepRecord, StepStatus,
    WarningRecord,
};
use super::terminal::Board;
use super::{graph, lock::RunLock, Pipeline, Step};
use crate::docker::build::BuildRecord;

/// How a pipeline runs: its own settings ([`Pipeline::jobs`], [`Pipeline::keep_going`],
/// [`Pipeline::force`]) and what the runner brings (its dry run, its session).
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// At most this many steps at once (default: the number of cores).
    pub(crate) jobs: usize,
    /// After a failure, still run the steps that do not depend on it.
    pub(crate) keep_going: bool,
    /// Run every step, even those that are up to date.
    pub(crate) force: bool,
    /// Print the plan (every step in order with its exact actions) and run nothing: the
    /// runner's dry run.
    pub(crate) dry_run: bool,
    /// In a dry run, let the steps make their read-only engine and git queries: the
    /// runner's [`Runner::dry_run_queries`].
    pub(crate) dry_run_queries: bool,
    /// The run's identity (labels, container names): the runner's session, else a new
    /// one named after the pipeline.
    pub(crate) session: Session,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            keep_going: false,
            force: false,
            dry_run: false,
            dry_run_queries: false,
            session: Session::new(""),
        }
    }
}

/// A pipeline that cannot run as declared: a cycle, an unknown dependency, a duplicate
/// step. It is a usage error (exit status 2), found before anything runs.
#[derive(Debug)]
pub struct PipelineError(String);

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PipelineError {}

/// What a step's body gets: a runner logging to the step's file, the run's identity, and
/// a place to record what it produced.
#[derive(Debug)]
pub struct StepCx {
    /// Runs this step's commands (its log file, prefix, dry-run setting and the run's
    /// session applied).
    pub runner: Runner,
    /// The run's identity (the runner carries it too: [`Runner::session`]).
    pub session: Session,
    /// Whether this is a dry run.
    pub dry_run: bool,
    images: Vec<ImageRecord>,
    artifacts: Vec<ArtifactRecord>,
    findings: Vec<Finding>,
    builds: Vec<BuildRecord>,
    unsupported: Option<String>,
    /// The run's file-hash cache (its listing of each context the fingerprints walked).
    pub(crate) file_hashes: Option<Arc<FileHashes>>,
    instructions: Vec<InstructionRecord>,
    why: Option<String>,
    warnings: Vec<WarningRecord>,
}

impl StepCx {
    /// A context for a step run with `runner`.
    fn with(runner: Runner, session: Session, dry_run: bool) -> StepCx {
        StepCx {
            runner,
            session,
            dry_run,
            images: Vec::new(),
            artifacts: Vec::new(),
            findings: Vec::new(),
            builds: Vec::new(),
            unsupported: None,
            file_hashes: None,
            instructions: Vec::new(),
            why: None,
            warnings: Vec::new(),
        }
    }

    /// Records the explanation of an image build this step ran: its summary and one row
    /// per instruction go into the step's entry of the report.
    pub(crate) fn add_explanation(&mut self, explanation: &crate::docker::explain::Explanation) {
        self.why = Some(explanation.summary());
        self.instructions.extend(
            explanation
                .rows
                .iter()
                .map(|row| InstructionRecord::of(row, &explanation.dockerfile)),
        );
    }

    /// Records what an image build warned about: its cache set-up findings and the caches
    /// it did not write.
    pub(crate) fn add_build_warnings(&mut self, result: &crate::docker::build::BuildResult) {
        let image = result
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "image".to_string());
        for w in &result.cache_checks {
            self.warnings.push(WarningRecord::from(w));
        }
        for cache in &result.cache_not_written {
            self.warnings
                .push(WarningRecord::cache_not_written(&image, cache));
        }
    }

    /// Records what a check found ([`Finding`]s of hadolint, of BuildKit's build checks,
    /// or made by hand): they go to the report, and in GitHub Actions each becomes an
    /// annotation on its file and line. Recording findings does not fail the step; the
    /// step's body decides that.
    pub fn add_findings<I, F>(&mut self, findings: I)
    where
        I: IntoIterator<Item = F>,
        F: std::borrow::Borrow<Finding>,
    {
        self.findings
            .extend(findings.into_iter().map(|f| f.borrow().clone()));
    }

    /// Records BuildKit's record of a build this step ran ([`BuildResult::record`], or
    /// the [`BuildFailed`] error's): the report lists it under the step. Steps added with
    /// [`Pipeline::image_build`](super::Pipeline::image_build) record theirs.
    ///
    /// [`BuildResult::record`]: crate::docker::BuildResult::record
    /// [`BuildFailed`]: crate::docker::BuildFailed
    pub(crate) fn add_build(&mut self, record: BuildRecord) {
        self.builds.push(record);
    }

    /// Says that this step checked nothing because the engine or the tools cannot do
    /// what it does (`reason`, such as "buildx 0.13.1 has no build checks ..."): when the
    /// body then returns `Ok`, the step is `unsupported`, not `ok`, its reason is in the
    /// report and the summary, and it is not recorded as up to date (so it runs again on
    /// a newer engine). The steps after it still run.
    pub fn unsupported(&mut self, reason: impl Into<String>) {
        self.unsupported = Some(reason.into());
    }

    /// Records an image this step built (`build`'s tags, digest, size and platforms) as
    /// `name` in the report.
    pub fn add_image(
        &mut self,
        name: impl Into<String>,
        build: &crate::docker::build::BuildResult,
    ) {
        self.images.push(ImageRecord::of(name, build));
    }

    /// Records a file this step produced (its size and SHA-256 are read now).
    pub fn add_artifact(&mut self, path: &Path) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let size_bytes = std::fs::metadata(path)
            .with_context(|| format!("cannot read artifact {}", path.display()))?
            .len();
        let sha256 = sha256_file(path)
            .with_context(|| format!("cannot hash artifact {}", path.display()))?;
        self.artifacts.push(ArtifactRecord {
            path: path.display().to_string(),
            size_bytes,
            sha256,
        });
        Ok(())
    }
}

/// A file-name-safe form of a step name (a name may hold `/`, `[` or `,`): the stem of
/// the step's files under the pipeline's folder (`logs/<stem>.log`, `why/<stem>.json`).
pub(crate) fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Done {
    index: usize,
    record: StepRecord,
    images: Vec<ImageRecord>,
    artifacts: Vec<ArtifactRecord>,
}

impl Pipeline {
    /// At most this many steps at once (default: the number of cores).
    pub fn jobs(&mut self, jobs: usize) -> &mut Pipeline {
        self.options.jobs = jobs;
        self
    }

    /// After a failure, still run the steps that do not depend on it.
    pub fn keep_going(&mut self, on: bool) -> &mut Pipeline {
        self.options.keep_going = on;
        self
    }

    /// Run every step, even those that are up to date.
    pub fn force(&mut self, on: bool) -> &mut Pipeline {
        self.options.force = on;
        self
    }

    /// Runs the pipeline with `runner` (`&Runner::new()` when the program needs nothing
    /// else). The run's session is the runner's ([`Runner::session`]), or a new one named
    /// after the pipeline; every step's runner gets it. On a dry-run runner
    /// ([`Runner::dry_run`]) the pipeline prints its plan (every step in order with its
    /// exact actions, each step's body run on a runner that only records) and runs
    /// nothing; [`Runner::dry_run_queries`] lets the steps' read-only queries run.
    ///
    /// Graph errors ([`PipelineError`]) and a pipeline already running are errors; a
    /// failed step is not: the report says `ok: false` (exit status 1).
    pub fn run(&self, runner: &Runner) -> Result<Report> {
        let options = RunOptions {
            dry_run: runner.only_records(),
            dry_run_queries: runner.runs_dry_queries(),
            session: runner
                .get_session()
                .cloned()
                .unwrap_or_else(|| Session::new(&self.name)),
            ..self.options.clone()
        };
        let options = &options;
        let order =
            graph::order(&self.name, &self.steps).map_err(|e| PipelineError(e.to_string()))?;
        if options.dry_run {
            return self.plan(runner, options, &order);
        }
        let engine_steps: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.uses_engine())
            .map(|s| s.name.clone())
            .collect();
        if !engine_steps.is_empty() {
            let buildx = self.steps.iter().any(|s| {
                s.build.is_some()
                    || matches!(
                        s.output,
                        Some(super::StepOutput(super::fingerprint::OutputKind::Image(_)))
                    )
            });
            let stamp = self.dir().join("buildx-answered");
            super::preflight::check_engine(runner, engine_steps, buildx, Some(&stamp))?;
        }
        let dir = self.dir();
        let _lock = RunLock::acquire(&self.name, &dir.join("lock"))?;
        let started = Instant::now();
        let hashes = Arc::new(FileHashes::load(&dir.join(FILE_HASHES)));
        let hashes = &hashes;
        let board = Board::new(runner.get_echo());
        let jobs = options.jobs.max(1);

        let mut status: Vec<Option<StepStatus>> = vec![None; self.steps.len()];
        let mut records: Vec<Option<StepRecord>> = vec![None; self.steps.len()];
        let mut images = Vec::new();
        let mut artifacts = Vec::new();
        let mut running = 0usize;
        let mut failed = false;
        let (tx, rx) = mpsc::channel::<Done>();

        std::thread::scope(|scope| {
            loop {
                // Start or skip whatever can be decided now, in plan order.
                for &i in &order {
                    if status[i].is_some() || records[i].is_some() {
                        continue;
                    }
                    let step = &self.steps[i];
                    let dep_status: Vec<Option<StepStatus>> =
                        step.deps.iter().map(|d| status[self.index_of(d)]).collect();
                    let blocked = dep_status
                        .iter()
                        .any(|s| matches!(s, Some(StepStatus::Failed | StepStatus::Skipped)));
                    if blocked || (failed && !options.keep_going) || runner.is_cancelled() {
                        // The report says why, for each step that did not run.
                        let reason = if runner.is_cancelled() {
                            "the run was cancelled".to_string()
                        } else if let Some((dep, dep_status)) =
                            step.deps.iter().zip(&dep_status).find(|(_, s)| {
                                matches!(s, Some(StepStatus::Failed | StepStatus::Skipped))
                            })
                        {
                            match dep_status {
                                Some(StepStatus::Failed) => {
                                    format!("`{dep}`, which it follows, failed")
                                }
                                _ => format!("`{dep}`, which it follows, did not run"),
                            }
                        } else {
                            "an earlier step failed (a pipeline with `keep_going(true)` runs \
                             the steps that do not follow it)"
                                .to_string()
                        };
                        status[i] = Some(StepStatus::Skipped);
                        records[i] = Some(StepRecord {
                            reason: Some(reason),
                            ..skipped_record(step)
                        });
                        board.finished(&step.name, StepStatus::Skipped, 0.0);
                        continue;
                    }
                    let ready = dep_status
                        .iter()
                        .all(|s| s.is_some_and(StepStatus::succeeded));
                    if ready && running < jobs {
                        running += 1;
                        // Mark as taken; the real status arrives on the channel.
                        records[i] = Some(skipped_record(step));
                        board.started(&step.name);
                        let tx = tx.clone();
                        let runner = self.step_runner(runner, step, &board, &options.session);
                        let session = options.session.clone();
                        let force = options.force;
                        let state = dir
                            .join("state")
                            .join(format!("{}.json", file_stem(&step.name)));
                        scope.spawn(move || {
                            let done = run_step(
                                i,
                                step,
                                runner,
                                session,
                                force,
                                &state,
                                Arc::clone(hashes),
                            );
                            let _ = tx.send(done);
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let done = rx.recv().expect("a running step reports back");
                running -= 1;
                let st = done.record.status;
                if matches!(st, StepStatus::Ok | StepStatus::Failed) {
                    // It ran, so it may have changed files other steps fingerprint.
                    hashes.forget_contexts();
                }
                board.finished(&done.record.name, st, done.record.seconds);
                if st == StepStatus::Failed {
                    failed = true;
                    if let Some(error) = &done.record.error {
                        board.failure(&done.record.name, error, done.record.log.as_deref());
                    }
                }
                status[done.index] = Some(st);
                records[done.index] = Some(done.record);
                images.extend(done.images);
                artifacts.extend(done.artifacts);
            }
        });
        board.clear();
        // A cancelled run: the clean-ups its steps registered and no step ran yet.
        runner.clean_up_cancelled();
        hashes.save();

        let steps: Vec<StepRecord> = order
            .iter()
            .map(|&i| {
                records[i]
                    .clone()
                    .unwrap_or_else(|| skipped_record(&self.steps[i]))
            })
            .collect();
        let report = Report {
            pipeline: self.name.clone(),
            ok: steps.iter().all(|s| s.status.succeeded()),
            seconds: started.elapsed().as_secs_f64(),
            run_id: options.session.run_id.clone(),
            steps,
            images,
            artifacts,
        };
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        write_atomic(
            &Runner::new(),
            &dir.join("report.json"),
            format!("{json}\n").as_bytes(),
        )?;
        github_actions(&report, &dir);
        Ok(report)
    }

    fn index_of(&self, name: &str) -> usize {
        self.steps
            .iter()
            .position(|s| s.name == name)
            .expect("dependencies were checked")
    }

    /// The runner of one step: its own log file, prefix and record, the run's session.
    fn step_runner(&self, base: &Runner, step: &Step, board: &Board, session: &Session) -> Runner {
        let log = self
            .dir()
            .join("logs")
            .join(format!("{}.log", file_stem(&step.name)));
        let _ = std::fs::remove_file(&log);
        base.with_fresh_record()
            .log_to(log)
            .prefix(step.name.clone())
            .echo(board.step_echo())
            .session(session.clone())
    }

    fn plan(&self, runner: &Runner, options: &RunOptions, order: &[usize]) -> Result<Report> {
        let mut steps = Vec::new();
        // Read, never written: a dry run creates no file.
        let hashes = FileHashes::load(&self.dir().join(FILE_HASHES));
        // One recording runner for the run, as a run has one runner: the engine answers it
        // keeps (buildx's version) are asked once, by the first step that needs them.
        let recording = runner.recording();
        for &i in order {
            let step = &self.steps[i];
            let mut header = format!("== step {}", step.name);
            if !step.deps.is_empty() {
                header.push_str(&format!(" (after {})", step.deps.join(", ")));
            }
            if let Some(text) = &step.description {
                header.push_str(&format!(": {text}"));
            }
            // The step's own body on a runner that only records: its plan is what it does.
            let runner = recording
                .with_fresh_record()
                .dry_run_queries(options.dry_run_queries)
                .session(options.session.clone());
            let state = self
                .dir()
                .join("state")
                .join(format!("{}.json", file_stem(&step.name)));
            let fingerprint = step
                .inputs
                .as_ref()
                .and_then(|i| i.fingerprint_with(&hashes).ok());
            if !options.force && is_up_to_date(step, fingerprint.as_deref(), &state, &runner) {
                println!(
                    "{header}\n   up to date ({}): would be skipped",
                    up_to_date_reason(step)
                );
                steps.push(StepRecord::new(&step.name, StepStatus::UpToDate));
                continue;
            }
            println!("{header}");
            let mut cx = StepCx::with(runner.clone(), options.session.clone(), true);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (step.body)(&mut cx)));
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(runner.redact(&format!("{e:#}"))),
                Err(panic) => Some(format!("panicked: {}", panic_text(&panic))),
            };
            let plan = runner.recorded();
            for line in runner.redact(&plan.to_string()).lines() {
                println!("{line}");
            }
            if let Some(e) = &error {
                println!("   (the plan of this step stops here: {e})");
            }
            // A plan that stops on an error is a run that would fail there: the dry run
            // fails too, and says which step.
            let status = if error.is_some() {
                StepStatus::Failed
            } else {
                StepStatus::Skipped
            };
            steps.push(StepRecord {
                commands: redacted_commands(&runner, plan.commands()),
                error,
                ..StepRecord::new(&step.name, status)
            });
        }
        Ok(Report {
            pipeline: self.name.clone(),
            ok: steps.iter().all(|s| s.status != StepStatus::Failed),
            seconds: 0.0,
            run_id: options.session.run_id.clone(),
            steps,
            images: Vec::new(),
            artifacts: Vec::new(),
        })
    }
}

/// Up to date: same inputs as the last success, and its output (if any) still the one
/// it left (the same image ID, the same files).
fn is_up_to_date(step: &Step, fingerprint: Option<&str>, state: &Path, runner: &Runner) -> bool {
    match (fingerprint, Record::load(state)) {
        (Some(fp), Some(record)) => {
            record.fingerprint == fp
                && record.output == step.output
                && step.output.as_ref().is_none_or(|o| {
                    record.output_id.is_some() && o.identity(runner) == record.output_id
                })
        }
        _ => false,
    }
}

/// Why an up-to-date step is: its inputs, and its output when it declares one.
fn up_to_date_reason(step: &Step) -> &'static str {
    if step.output.is_some() {
        "inputs unchanged, output present"
    } else {
        "inputs unchanged"
    }
}

fn skipped_record(step: &Step) -> StepRecord {
    StepRecord::new(&step.name, StepStatus::Skipped)
}

fn run_step(
    index: usize,
    step: &Step,
    runner: Runner,
    session: Session,
    force: bool,
    state: &PathBuf,
    hashes: Arc<FileHashes>,
) -> Done {
    let started = Instant::now();
    let log = runner.log_path().map(|p| p.display().to_string());
    let mut cx = StepCx::with(runner.clone(), session, false);
    cx.file_hashes = Some(Arc::clone(&hashes));
    let mut status = StepStatus::Ok;
    let mut error = None;

    let fingerprint = match &step.inputs {
        Some(inputs) => match inputs.fingerprint_with(&hashes) {
            Ok(fp) => Some(fp),
            Err(e) => {
                status = StepStatus::Failed;
                error = Some(format!("{e:#}"));
                None
            }
        },
        None => None,
    };
    let up_to_date = !force && is_up_to_date(step, fingerprint.as_deref(), state, &runner);

    if up_to_date {
        status = StepStatus::UpToDate;
        runner.note(&format!(
            "{}: up-to-date ({})",
            step.name,
            up_to_date_reason(step)
        ));
    } else if status == StepStatus::Ok {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (step.body)(&mut cx)));
        match outcome {
            Ok(Ok(())) if cx.unsupported.is_some() => {
                // It checked nothing: never up to date, so a newer engine checks it.
                status = StepStatus::Unsupported;
                let _ = std::fs::remove_file(state);
                runner.note(&format!(
                    "{}: skipped: {}",
                    step.name,
                    cx.unsupported.as_deref().unwrap_or_default()
                ));
            }
            Ok(Ok(())) => {
                if let Some(fp) = fingerprint {
                    let record = Record {
                        fingerprint: fp,
                        output: step.output.clone(),
                        output_id: step.output.as_ref().and_then(|o| o.identity(&runner)),
                    };
                    let json = serde_json::to_string(&record).unwrap_or_default();
                    if let Err(e) = write_atomic(&Runner::new(), state, json.as_bytes()) {
                        runner.note(&format!(
                            "warning: cannot record the up-to-date state: {e:#}"
                        ));
                    }
                }
            }
            Ok(Err(e)) => {
                status = StepStatus::Failed;
                error = Some(format!("{e:#}"));
            }
            Err(panic) => {
                status = StepStatus::Failed;
                error = Some(format!("step panicked: {}", panic_text(&panic)));
            }
        }
        if status == StepStatus::Failed {
            // A failed step's old record must not make the next run skip it.
            let _ = std::fs::remove_file(state);
        }
    }
    if let (Some(e), Some(path)) = (&error, runner.log_path()) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .or_else(|_| std::fs::File::create(path))
        {
            let _ = writeln!(f, "error: {}", runner.redact(e));
        }
    }
    Done {
        index,
        record: StepRecord {
            seconds: started.elapsed().as_secs_f64(),
            log,
            commands: redacted_commands(&runner, runner.commands()),
            error: error.map(|e| runner.redact(&e)),
            why: cx.why.take().map(|w| runner.redact(&w)),
            instructions: std::mem::take(&mut cx.instructions),
            reason: cx
                .unsupported
                .take()
                .filter(|_| status == StepStatus::Unsupported)
                .map(|r| runner.redact(&r)),
            findings: std::mem::take(&mut cx.findings),
            builds: std::mem::take(&mut cx.builds),
            warnings: std::mem::take(&mut cx.warnings)
                .into_iter()
                .map(|w| WarningRecord {
                    message: runner.redact(&w.message),
                    fix: w.fix.map(|f| runner.redact(&f)),
                    ..w
                })
                .collect(),
            ..StepRecord::new(&step.name, status)
        },
        images: cx.images,
        artifacts: cx.artifacts,
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".into())
}

/// In GitHub Actions: the summary as Markdown in `$GITHUB_STEP_SUMMARY`, failures as
/// `::error` annotations, findings as annotations on their file and line, and steps that
/// could check nothing as `::notice`.
fn github_actions(report: &Report, _dir: &Path) {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return;
    }
    let workspace = std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    for line in annotations(report, workspace.as_deref()) {
        println!("{line}");
    }
    if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{}", report.markdown());
        }
    }
}

/// `::warning file=F,line=L,title=T::message (fix: ...)`: the file relative to the
/// workspace (GitHub places annotations by the repository's paths).
fn warning_annotation(step: &str, w: &WarningRecord, workspace: Option<&str>) -> String {
    let mut props = Vec::new();
    if let Some(file) = &w.file {
        let path = Path::new(file);
        let cwd = std::env::current_dir().ok();
        let relative = workspace
            .map(Path::new)
            .or(cwd.as_deref())
            .and_then(|base| path.strip_prefix(base).ok())
            .unwrap_or(path);
        props.push(format!(
            "file={}",
            escape_property(&relative.display().to_string())
        ));
        if let Some(line) = w.line {
            props.push(format!("line={line}"));
        }
    }
    props.push(format!(
        "title={}",
        escape_property(&format!("step {step}: {}", w.kind))
    ));
    let mut message = w.message.clone();
    if let Some(fix) = &w.fix {
        message.push_str(&format!("\nfix: {fix}"));
    }
    format!(
        "::warning {}::{}",
        props.join(","),
        escape_workflow(&message)
    )
}

fn escape_property(text: &str) -> String {
    escape_workflow(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

fn escape_workflow(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `commands` with every secret `runner` masks masked (a build arg whose value looks
/// like a secret is on its command line).
fn redacted_commands(runner: &Runner, commands: Vec<Vec<String>>) -> Vec<Vec<String>> {
    commands
        .into_iter()
        .map(|words| words.iter().map(|w| runner.redact(w)).collect())
        .collect()
}

/// The workflow commands of a report, in step order: each step's findings, then its
/// error or the reason it checked nothing.
pub(crate) fn annotations(report: &Report, workspace: Option<&Path>) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &report.steps {
        for w in &step.warnings {
            lines.push(warning_annotation(
                &step.name,
                w,
                workspace.and_then(|p| p.to_str()),
            ));
        }
        for finding in &step.findings {
            lines.push(finding.annotation(workspace));
        }
        match (step.status, &step.error, &step.reason) {
            (StepStatus::Failed, Some(error), _) => {
                let mut first = error.lines().next().unwrap_or_default().to_string();
                // A failed build: BuildKit's own words, where its record has them (the
                // streamed output that said them is not on the annotation).
                if let Some(said) = step.builds.iter().find_map(|b| b.error.as_ref()) {
                    first.push_str(&format!("; BuildKit: {}", said.summary()));
                }
                lines.push(format!(
                    "::error title=step {}::{}",
                    step.name,
                    escape_data(&first)
                ));
            }
            (StepStatus::Unsupported, _, Some(reason)) => lines.push(format!(
                "::notice title=step {} skipped::{}",
                step.name,
                escape_data(reason)
            )),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Echo;
    use crate::finding::Level;
    use crate::pipeline::Inputs;

    fn silent() -> Runner {
        Runner::new().echo(Echo::Silent)
    }

    #[test]
    fn an_unsupported_step_says_why_lets_later_steps_run_and_is_never_up_to_date() {
        let target = tempfile::tempdir().unwrap();
        let input = target.path().join("input.txt");
        std::fs::write(&input, "x").unwrap();
        let mut p = Pipeline::new("unsupported", target.path());
        p.step("checks", |cx| {
            cx.unsupported("buildx 0.13.1 has no build checks");
            Ok(())
        })
        .inputs(Inputs::new().file(&input));
        p.step("after", |_| Ok(())).after(["checks"]);
        for _ in 0..2 {
            let report = p.run(&silent()).unwrap();
            assert!(report.ok, "{}", report.table());
            let checks = report.step("checks").unwrap();
            assert_eq!(checks.status, StepStatus::Unsupported, "never up to date");
            assert_eq!(
                checks.reason.as_deref(),
                Some("buildx 0.13.1 has no build checks")
            );
            assert_eq!(report.step("after").unwrap().status, StepStatus::Ok);
            let table = report.table();
            assert!(
                table.contains("unsupported") && table.contains("skipped: buildx 0.13.1"),
                "{table}"
            );
            assert!(report
                .markdown()
                .contains("unsupported (skipped: buildx 0.13.1"));
            assert_eq!(
                annotations(&report, None),
                ["::notice title=step checks skipped::buildx 0.13.1 has no build checks"]
            );
        }
        let json = std::fs::read_to_string(target.path().join("buildkit/unsupported/report.json"))
            .unwrap();
        assert!(json.contains("\"status\": \"unsupported\""), "{json}");
    }

    #[test]
    fn findings_reach_the_report_and_become_annotations_on_their_lines() {
        let target = tempfile::tempdir().unwrap();
        let dockerfile = target.path().join("app/Dockerfile");
        let hadolint = Finding::new(
            "hadolint",
            "DL3008",
            Level::Warning,
            dockerfile.display().to_string(),
            Some(4),
            "Pin versions, 100% of them: please",
        );
        let mut p = Pipeline::new("findings", target.path());
        p.step("lint", move |cx| {
            cx.add_findings([&hadolint]);
            anyhow::bail!("hadolint found 1 finding\nmore detail")
        });
        let report = p.run(&silent()).unwrap();
        let lint = report.step("lint").unwrap();
        assert_eq!(lint.status, StepStatus::Failed);
        assert_eq!(
            lint.findings.len(),
            1,
            "findings are kept when the step fails"
        );
        assert_eq!(lint.findings[0].level, Level::Warning);
        assert_eq!(
            annotations(&report, Some(target.path())),
            [
                "::warning file=app/Dockerfile,line=4,title=hadolint DL3008::Pin versions, \
                 100%25 of them: please",
                "::error title=step lint::hadolint found 1 finding",
            ]
        );
        let loaded = Report::load(&target.path().join("buildkit/findings/report.json")).unwrap();
        assert_eq!(loaded.step("lint").unwrap().findings, lint.findings);
        assert!(report.table().contains("1 finding"), "{}", report.table());
    }

    #[test]
    fn a_failed_builds_annotation_carries_buildkits_own_words() {
        let target = tempfile::tempdir().unwrap();
        let mut p = Pipeline::new("failed-build", target.path());
        p.step("image", |cx| {
            let record: BuildRecord = serde_json::from_value(serde_json::json!({
                "reference": "default/default/abc",
                "succeeded": false,
                "error": {"message": "process \"/bin/sh -c exit 7\" did not complete successfully: exit code: 7",
                          "step": "[2/2] RUN exit 7"}
            }))
            .unwrap();
            cx.add_build(record);
            anyhow::bail!("cannot build image app:dev: process didn't exit successfully\n--- tail")
        });
        let report = p.run(&silent()).unwrap();
        assert_eq!(report.step("image").unwrap().builds.len(), 1);
        assert_eq!(
            annotations(&report, None),
            [
                "::error title=step image::cannot build image app:dev: process didn't exit \
              successfully; BuildKit: step `[2/2] RUN exit 7` failed: process \"/bin/sh -c exit \
              7\" did not complete successfully: exit code: 7"
            ]
        );
    }

    #[test]
    fn a_report_written_before_findings_and_builds_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(
            &path,
            r#"{"pipeline":"p","ok":true,"seconds":1.0,"run_id":"r","steps":[
                {"name":"a","status":"ok","seconds":0.5,"log":null,"commands":[]}],
                "images":[],"artifacts":[]}"#,
        )
        .unwrap();
        let report = Report::load(&path).unwrap();
        assert!(report.steps[0].findings.is_empty() && report.steps[0].builds.is_empty());
    }
}

#[cfg(test)]
mod warning_tests {
    use super::*;

    #[test]
    fn a_warning_is_annotated_at_its_dockerfile_line_relative_to_the_workspace() {
        let w = WarningRecord {
            kind: "copy-before-install".into(),
            message: "`COPY . .` (Dockerfile:3) copies: all, of it".into(),
            fix: Some("copy the lists first".into()),
            file: Some("/home/runner/work/app/docker/Dockerfile".into()),
            line: Some(3),
        };
        assert_eq!(
            warning_annotation("image", &w, Some("/home/runner/work/app")),
            "::warning file=docker/Dockerfile,line=3,title=step image%3A copy-before-install\
             ::`COPY . .` (Dockerfile:3) copies: all, of it%0Afix: copy the lists first"
        );
        // A warning about no file in particular is annotated without a place.
        let w = WarningRecord::new("cache-not-written", "image a:1 built; cache not written");
        assert_eq!(
            warning_annotation("image", &w, None),
            "::warning title=step image%3A cache-not-written::image a:1 built; cache not written"
        );
    }
}
