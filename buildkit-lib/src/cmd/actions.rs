//! The runner's actions besides commands: file writes and removals, probes and waits.
//!
//! A step does every one of its effects through the [`Runner`]: commands
//! ([`Runner::run`], [`Runner::capture`]) and, here, the rest. Each is recorded as an
//! [`Action`] in the same order as the commands, so that what a step did (or, on a
//! recording runner, would do) reads as one [`Plan`](crate::plan::Plan). In a
//! dry run nothing is touched: writes and removals are printed, probes and waits pass. A
//! fake executor answers probes in tests. No step asks whether it is a dry run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::probe::{ContainerReady, ContainerState, Probe, ProbeKind};
use super::{Cmd, Runner};
use crate::plan::Action;

/// How a [`Runner::wait`] ended well: the probe's last answer, after how long and how many
/// tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waited {
    /// What the probe saw when it passed.
    pub(crate) answer: String,
    /// Time from the start of the wait.
    pub(crate) elapsed: Duration,
    /// How many times the probe was asked.
    pub(crate) attempts: u32,
}

/// Why a [`Runner::wait`] gave up: the time ran out (or the run was cancelled), with the
/// probe's last answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WaitFailed {
    /// The probe's last answer (why it did not pass).
    pub(crate) last: String,
    /// Time from the start of the wait.
    pub(crate) elapsed: Duration,
    /// How many times the probe was asked.
    pub(crate) attempts: u32,
    /// True when the run was cancelled while waiting.
    pub(crate) cancelled: bool,
    /// True when the last answer can never pass (the container of a container probe
    /// stopped): the wait stopped there, before its timeout.
    pub(crate) cannot_pass: bool,
}

/// Why one answer to a probe did not pass, and whether a later one still could.
struct NotReady {
    why: String,
    never: bool,
}

impl NotReady {
    /// Not yet: a later try may pass.
    fn later(why: impl Into<String>) -> NotReady {
        NotReady {
            why: why.into(),
            never: false,
        }
    }
}

impl Runner {
    /// Writes `bytes` to `path` atomically (a temporary sibling renamed into place, so a
    /// failure leaves the previous file whole). Recorded as [`Action::Write`], its bytes
    /// with every masked value as `***`; a dry run prints `write PATH (N bytes)` and
    /// touches nothing.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        // The record holds no secret: what the runner masks reads `***` there.
        let contents = if self.masks.any() {
            self.masks.redact_bytes(bytes)
        } else {
            bytes.to_vec()
        };
        self.record_action(Action::Write {
            path: path.to_path_buf(),
            contents,
        });
        if self.only_records() {
            self.dry_print(&format!("write {} ({} bytes)", path.display(), bytes.len()));
            return Ok(());
        }
        self.log_line(&format!("write {} ({} bytes)", path.display(), bytes.len()));
        crate::files::write_file_atomic(self, path, bytes)
    }

    /// Removes a file or a folder with everything in it (nothing to do when it is not
    /// there). Recorded as [`Action::Remove`]; a dry run prints `remove PATH`.
    pub fn remove(&self, path: &Path) -> Result<()> {
        self.record_action(Action::Remove(path.to_path_buf()));
        if self.only_records() {
            self.dry_print(&format!("remove {}", path.display()));
            return Ok(());
        }
        self.log_line(&format!("remove {}", path.display()));
        crate::files::remove_path(path)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", path.display()))
    }

    /// Replaces the folder `target` with `staging` (a folder filled beside it, on the same
    /// file system): the old `target` is renamed aside, `staging` renamed into place, then
    /// the old one removed, so a failure leaves `target` as it was. Recorded as
    /// [`Action::Swap`]; a dry run prints `swap STAGING into TARGET` and touches nothing.
    pub fn swap(&self, staging: &Path, target: &Path) -> Result<()> {
        self.record_action(Action::Swap {
            staging: staging.to_path_buf(),
            target: target.to_path_buf(),
        });
        let line = format!("swap {} into {}", staging.display(), target.display());
        if self.only_records() {
            self.dry_print(&line);
            return Ok(());
        }
        self.log_line(&line);
        crate::files::swap_dir(staging, target)
    }

    /// Asks `probe` once. Recorded as [`Action::Probe`] and logged with its answer; a dry
    /// run does not open a socket and counts it as passed; a fake executor answers it.
    pub(crate) fn probe(&self, probe: &Probe) -> Result<String, String> {
        self.record_action(Action::Probe(probe.clone()));
        if self.only_records() {
            self.dry_print(&format!("probe {probe}"));
            return Ok(format!("{probe}: not asked in a dry run"));
        }
        let answer = self.ask(probe).map_err(|not| not.why);
        self.log_line(&format!(
            "probe {probe}: {}",
            match &answer {
                Ok(seen) | Err(seen) => seen,
            }
        ));
        answer
    }

    /// Asks `probe` until it passes, the `timeout` runs out, the run is cancelled or an
    /// answer can never pass (the container of a container probe stopped), with
    /// growing pauses between tries (a quarter second up to two seconds). `what` says in
    /// words what is awaited (`service db is ready`). Recorded as one [`Action::Wait`],
    /// however many tries it takes; a dry run passes at once.
    pub(crate) fn wait(
        &self,
        what: &str,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<Waited, WaitFailed> {
        self.record_action(Action::Wait {
            what: what.to_string(),
            probe: probe.clone(),
            timeout,
        });
        if self.only_records() {
            self.dry_print(&format!(
                "wait until {what} ({probe}), for at most {} s",
                timeout.as_secs()
            ));
            return Ok(Waited {
                answer: format!("{probe}: not asked in a dry run"),
                elapsed: Duration::ZERO,
                attempts: 0,
            });
        }
        self.log_line(&format!(
            "wait until {what} ({probe}), for at most {} s",
            timeout.as_secs()
        ));
        let start = Instant::now();
        let mut pause = Duration::from_millis(250);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = self.ask(probe);
            let elapsed = start.elapsed();
            match answer {
                Ok(answer) => {
                    self.log_line(&format!("ready after {attempts} tries: {answer}"));
                    return Ok(Waited {
                        answer,
                        elapsed,
                        attempts,
                    });
                }
                Err(NotReady { why: last, never }) => {
                    let cancelled = self.is_cancelled();
                    if never || cancelled || elapsed >= timeout {
                        self.log_line(&format!("gave up after {attempts} tries: {last}"));
                        return Err(WaitFailed {
                            last,
                            elapsed,
                            attempts,
                            cancelled,
                            cannot_pass: never,
                        });
                    }
                }
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Reads a file that an earlier command of the step wrote (buildx's
    /// `--metadata-file`, an exported report). In a dry run that command did not run, so
    /// this answers `dry_answer` instead, the way a query answers its
    /// [`Cmd::dry_answer`](super::Cmd::dry_answer).
    pub(crate) fn read_output(&self, path: &Path, dry_answer: &str) -> std::io::Result<String> {
        if self.only_records() {
            return Ok(dry_answer.to_string());
        }
        match self.fake() {
            Some(fake) => fake.read_output(path, dry_answer),
            None => std::fs::read_to_string(path),
        }
    }

    /// Adds `done`'s actions to this runner's record, in order, as if this runner had
    /// taken them: for parts of a step run side by side, each on a clone with a fresh
    /// record ([`Runner::with_fresh_record`]), whose actions are then adopted part after
    /// part, so that the step's plan reads the same whatever order the threads ran in.
    pub(crate) fn adopt(&self, done: &crate::plan::Plan) {
        for action in done.actions() {
            self.record_action(action.clone());
        }
    }

    /// Reads, with `read`, what earlier commands of the step left at `path` (a folder of
    /// artifacts, a report): [`Runner::read_output`] for any reader. In a dry run those
    /// commands did not run, so this answers `dry_answer` instead and reads nothing.
    pub(crate) fn read_output_with<T>(
        &self,
        path: &Path,
        dry_answer: T,
        read: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        if self.only_records() {
            return Ok(dry_answer);
        }
        read(path)
    }

    /// Takes a lock with `take` (a lock file the run holds while it fills a shared cache,
    /// such as a tool environment) and returns its guard; a runner that only records
    /// takes none, since it fills nothing. Not an action: a lock changes nothing the user
    /// owns.
    pub(crate) fn hold_lock<T>(&self, take: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
        if self.only_records() {
            return Ok(None);
        }
        take().map(Some)
    }

    /// One real (or faked) answer to `probe`, unrecorded. A container probe asks the
    /// engine (or the fake executor's command answers) through this runner.
    fn ask(&self, probe: &Probe) -> Result<String, NotReady> {
        if let ProbeKind::Container { name, ready } = &probe.0 {
            return self.ask_container(name, ready);
        }
        match self.fake() {
            Some(fake) => fake.probe(probe),
            None => probe.ask(),
        }
        .map_err(NotReady::later)
    }

    /// Whether container `name` runs and passes `ready`: `docker container inspect` (and
    /// `docker logs`), unrecorded, since the probe is the recorded action. A stopped
    /// container can never pass.
    fn ask_container(&self, name: &str, ready: &ContainerReady) -> Result<String, NotReady> {
        let quiet = self.with_fresh_record();
        let out = quiet
            .capture(&ContainerState::command(name))
            .map_err(|e| NotReady::later(format!("cannot inspect container {name}: {e}")))?;
        let state = ContainerState::parse(&out.stdout).map_err(NotReady::later)?;
        if !state.running {
            return Err(NotReady {
                why: format!("container {name} stopped ({})", state.stopped()),
                never: true,
            });
        }
        match ready {
            ContainerReady::Healthy => state.healthy().map_err(NotReady::later),
            ContainerReady::LogLine(text) => {
                let logs = Cmd::new("docker")
                    .args(["logs", name])
                    .read_only()
                    .timeout(Duration::from_secs(30))
                    .dry_answer(text.clone());
                match quiet.capture(&logs) {
                    Ok(out)
                        if out
                            .stdout
                            .lines()
                            .chain(out.stderr.lines())
                            .any(|l| l.contains(text.as_str())) =>
                    {
                        Ok(format!("log line {text:?} seen"))
                    }
                    Ok(_) => Err(NotReady::later(format!(
                        "no log line containing {text:?} yet"
                    ))),
                    Err(e) => Err(NotReady::later(format!("cannot read the logs: {e}"))),
                }
            }
            ContainerReady::Probe(inner) => self.ask(inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{ContainerReady, Echo, FakeExecutor};
    use crate::plan::Plan;
    use std::sync::Arc;

    #[test]
    fn a_dry_run_records_writes_removals_and_waits_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("version.json");
        std::fs::write(dir.path().join("old"), "x").unwrap();
        let runner = Runner::new().recording();
        runner.write(&file, b"{}").unwrap();
        runner.remove(&dir.path().join("old")).unwrap();
        let waited = runner
            .wait(
                "the app is ready",
                &Probe::http(1, "/", None),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(waited.attempts, 0);
        assert!(!file.exists() && dir.path().join("old").exists());
        let want = Plan::new()
            .write(&file, "{}")
            .remove(dir.path().join("old"))
            .push(Action::Wait {
                what: "the app is ready".into(),
                probe: Probe::http(1, "/", None),
                timeout: Duration::from_secs(5),
            });
        assert_eq!(runner.recorded(), want);
    }

    #[test]
    fn a_real_run_records_the_same_actions_and_does_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/version.json");
        let runner = Runner::new().echo(Echo::Silent);
        runner.write(&file, b"{\"v\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"v\":1}");
        runner.remove(&dir.path().join("sub")).unwrap();
        assert!(!dir.path().join("sub").exists());
        let dry = Runner::new().recording();
        dry.write(&file, b"{\"v\":1}").unwrap();
        dry.remove(&dir.path().join("sub")).unwrap();
        assert_eq!(runner.recorded(), dry.recorded());
    }

    #[test]
    fn a_wait_gives_up_at_its_timeout_with_the_last_answer() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let runner = Runner::new().echo(Echo::Silent);
        let failed = runner
            .wait(
                "nothing answers",
                &Probe::tcp(format!("127.0.0.1:{port}")),
                Duration::from_millis(600),
            )
            .unwrap_err();
        assert!(failed.attempts >= 2, "{failed:?}");
        assert!(failed.elapsed >= Duration::from_millis(600), "{failed:?}");
        assert!(!failed.cancelled);
        assert!(failed.last.contains("cannot connect"), "{failed:?}");
        assert_eq!(
            runner.recorded().actions().len(),
            1,
            "one wait, however many tries"
        );
    }

    #[test]
    fn a_wait_on_a_container_that_stopped_stops_at_once_with_its_exit() {
        let fake = FakeExecutor::new().on(
            ["docker", "container", "inspect"],
            crate::cmd::Answer::ok(
                r#"{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137,"Pid":0}"#,
            ),
        );
        let fake = Arc::new(fake);
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
        let probe = Probe::container(
            "app_smoke_r1",
            ContainerReady::Probe(Box::new(Probe::http(8000, "/", None))),
        );
        let failed = runner
            .wait("the app is ready", &probe, Duration::from_secs(30))
            .unwrap_err();
        assert!(failed.cannot_pass && !failed.cancelled, "{failed:?}");
        assert_eq!(failed.attempts, 1, "a stopped container is asked once");
        assert_eq!(
            failed.last,
            "container app_smoke_r1 stopped (exited: killed for lack of memory (OOM), exit code 137)"
        );
        assert_eq!(
            runner.recorded().actions().len(),
            1,
            "the engine queries of a wait are not recorded"
        );
        assert_eq!(fake.seen().len(), 1, "{:?}", fake.seen());
        assert_eq!(
            probe.to_string(),
            "container app_smoke_r1 running and HTTP GET http://127.0.0.1:8000/ answering 2xx"
        );
    }

    #[test]
    fn a_container_probe_reads_health_logs_and_the_network_while_it_runs() {
        let running = |health: &str| {
            crate::cmd::Answer::ok(format!(
                r#"{{"Status":"running","Running":true,"ExitCode":0,"Pid":42,"Health":{{"Status":"{health}","Log":[{{"ExitCode":1,"Output":"no\n"}}]}}}}"#
            ))
        };
        let fake = FakeExecutor::new()
            .on(["docker", "container", "inspect"], running("starting"))
            .on(
                ["docker", "logs"],
                crate::cmd::Answer::ok("booting\nready for connections\n"),
            )
            .failing_probe(
                "127.0.0.1:3307",
                "cannot connect to 127.0.0.1:3307: refused",
            );
        let runner = Runner::new()
            .echo(Echo::Silent)
            .with_executor(Arc::new(fake));
        let ask = |ready| runner.probe(&Probe::container("db", ready));
        assert_eq!(
            ask(ContainerReady::Healthy),
            Err("health status starting, last check exited 1: no".to_string())
        );
        assert_eq!(
            ask(ContainerReady::LogLine("ready for connections".into())),
            Ok("log line \"ready for connections\" seen".to_string())
        );
        assert_eq!(
            ask(ContainerReady::LogLine("never".into())),
            Err("no log line containing \"never\" yet".to_string())
        );
        assert_eq!(
            ask(ContainerReady::Probe(Box::new(Probe::tcp(
                "127.0.0.1:3307"
            )))),
            Err("cannot connect to 127.0.0.1:3307: refused".to_string())
        );
        let healthy =
            FakeExecutor::new().on(["docker", "container", "inspect"], running("healthy"));
        let runner = Runner::new()
            .echo(Echo::Silent)
            .with_executor(Arc::new(healthy));
        let waited = runner
            .wait(
                "db is healthy",
                &Probe::container("db", ContainerReady::Healthy),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(
            (waited.answer.as_str(), waited.attempts),
            ("health status healthy", 1)
        );
    }

    #[test]
    fn a_swap_replaces_the_folder_whole_and_a_dry_run_only_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let (staging, target) = (dir.path().join(".dist.new"), dir.path().join("dist"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("app"), "new").unwrap();
        let dry = Runner::new().recording();
        dry.swap(&staging, &target).unwrap();
        assert!(staging.join("app").exists() && !target.exists());
        let want = Plan::new().swap(&staging, &target);
        assert_eq!(dry.recorded(), want);
        // No target yet: the staging folder is renamed into place.
        let runner = Runner::new().echo(Echo::Silent);
        runner.swap(&staging, &target).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("app")).unwrap(), "new");
        assert_eq!(runner.recorded(), want);
        // An existing target is replaced whole, and nothing is left beside it.
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("other"), "x").unwrap();
        runner.swap(&staging, &target).unwrap();
        assert!(target.join("other").exists() && !target.join("app").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A missing staging folder fails and leaves the target as it was.
        assert!(runner.swap(&staging, &target).is_err());
        assert!(target.join("other").exists());
    }

    #[test]
    fn read_output_with_reads_for_real_and_answers_the_placeholder_in_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let count = |p: &Path| Ok(std::fs::read_dir(p)?.count());
        assert_eq!(
            Runner::new()
                .read_output_with(dir.path(), 7, count)
                .unwrap(),
            0
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            Runner::new()
                .recording()
                .read_output_with(&missing, 7, count)
                .unwrap(),
            7
        );
    }

    #[test]
    fn a_fake_executor_answers_probes() {
        let runner = Runner::new()
            .echo(Echo::Silent)
            .with_executor(Arc::new(FakeExecutor::new()));
        let probe = Probe::http(9, "/health", None);
        assert!(runner.probe(&probe).is_ok());
        assert!(runner.wait("up", &probe, Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn read_output_reads_the_file_but_a_dry_run_answers_its_dry_answer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metadata.json");
        std::fs::write(&file, r#"{"digest":"sha256:aa"}"#).unwrap();
        let real = Runner::new().echo(Echo::Silent);
        assert_eq!(
            real.read_output(&file, "{}").unwrap(),
            r#"{"digest":"sha256:aa"}"#
        );
        let missing = dir.path().join("missing.json");
        assert!(real.read_output(&missing, "{}").is_err());
        let dry = Runner::new().echo(Echo::Silent).dry_run(true);
        assert_eq!(dry.read_output(&file, "{}").unwrap(), "{}");
        // A fake standing in for the programs answers the dry answer for a file they
        // would have written.
        let fake = Runner::new()
            .echo(Echo::Silent)
            .with_executor(Arc::new(FakeExecutor::like_dry_run()));
        assert_eq!(fake.read_output(&missing, "[]").unwrap(), "[]");
        assert_eq!(
            fake.read_output(&file, "[]").unwrap(),
            r#"{"digest":"sha256:aa"}"#
        );
    }
}
