//! Registries: pushing with retries, and `buildx imagetools` (inspect an image in a
//! registry, merge per-platform images into one multi-platform index).
//!
//! What is retried, and what never is, is documented for users on [`Push`].

use std::time::Duration;

use anyhow::Context;

#[cfg(doc)]
use super::build::Build;
use crate::cmd::{Cmd, CommandError, Failure, Runner};
use crate::plan::Step;

/// How often and how patiently to retry a push: `attempts` in all, waiting `first_delay`
/// before the first retry, doubled after each failure up to 30 s (see [`Push::retry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Attempts in all (1 means no retry).
    pub(crate) attempts: u32,
    /// Wait before the first retry; doubled after each failure.
    pub(crate) initial_delay: Duration,
    /// The longest wait between attempts.
    pub(crate) max_delay: Duration,
}

impl Retry {
    /// `attempts` in all (1 means no retry), waiting `first_delay` before the first
    /// retry, doubled after each failure up to 30 s (or `first_delay`, if longer).
    pub(crate) fn new(attempts: u32, first_delay: Duration) -> Retry {
        let max_delay = Retry::default().max_delay.max(first_delay);
        Retry {
            attempts,
            initial_delay: first_delay,
            max_delay,
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `n` (1-based): `initial_delay * 2^(n-1)`, capped.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Runs a push-like `attempt` until it succeeds or the attempts are used up, retrying
    /// only transient registry or network failures (`transient_failure`): connection
    /// refused or reset, timeouts, TLS handshake timeouts, HTTP 5xx and 429. Anything else
    /// (an error that is not a command's, a missing program, an engine that is down, an
    /// interrupt, `unauthorized`, `name unknown`, `manifest invalid`, ...) is returned at
    /// once. Each retry is noted through `runner` with its reason.
    pub(crate) fn run<T>(
        &self,
        runner: &Runner,
        what: &str,
        attempt: impl FnMut() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.run_classified(runner, what, transient_failure_of, attempt)
    }

    /// [`run`](Self::run) with another rule for which failures are worth a retry:
    /// `transient` returns the reason to log, or `None` to give up at once.
    pub(crate) fn run_classified<T>(
        &self,
        runner: &Runner,
        what: &str,
        transient: impl Fn(&anyhow::Error) -> Option<String>,
        mut attempt: impl FnMut() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let attempts = self.attempts.max(1);
        let mut n = 1;
        loop {
            let e = match attempt() {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match transient(&e) {
                Some(reason) if n < attempts => {
                    let wait = self.delay(n);
                    runner.note(&format!(
                        "{what} failed (attempt {n} of {attempts}): {reason}; retrying in {}s",
                        wait.as_secs_f64()
                    ));
                    std::thread::sleep(wait);
                    n += 1;
                }
                _ => return Err(e.context(format!("{what} failed after {n} attempt(s)"))),
            }
        }
    }
}

/// Words of registries and Go's network stack for failures that may pass when tried again.
const TRANSIENT: &[&str] = &[
    "connection refused",
    "connection reset",
    "broken pipe",
    "i/o timeout",
    "tls handshake timeout",
    "timeout awaiting response headers",
    "context deadline exceeded",
    "client.timeout exceeded",
    "request canceled while waiting for connection",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
    "server misbehaving",
    "unexpected eof",
    "too many requests",
    "toomanyrequests",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
];

/// Words of registries for failures another try cannot fix (they win over [`TRANSIENT`]).
const PERMANENT: &[&str] = &[
    "unauthorized",
    "authentication required",
    "denied",
    "forbidden",
    "name unknown",
    "manifest unknown",
    "manifest invalid",
    "blob unknown",
    "tag invalid",
    "name invalid",
    "no such host",
];

/// The output line saying why a registry command failed, when the failure is transient: a
/// network error (connection refused or reset, timeouts, `TLS handshake timeout`,
/// `i/o timeout`), an HTTP 5xx or 429 from the registry. `None` when nothing transient
/// is there, or when a permanent reason (`unauthorized`, `denied`, `name unknown`,
/// `manifest invalid`, `no such host`, ...) is.
pub(crate) fn transient_failure(lines: &[String]) -> Option<String> {
    let lower: Vec<String> = lines.iter().map(|l| l.to_ascii_lowercase()).collect();
    if lower
        .iter()
        .any(|l| PERMANENT.iter().any(|p| l.contains(p)))
    {
        return None;
    }
    lines
        .iter()
        .zip(&lower)
        .rev()
        .find(|(_, l)| TRANSIENT.iter().any(|t| l.contains(t)) || http_5xx_or_429(l))
        .map(|(line, _)| line.trim().to_string())
}

/// `unexpected status: 503`, `status code 502`, `response status code 500: ...` in a
/// registry error.
fn http_5xx_or_429(lower: &str) -> bool {
    ["status: ", "status code ", "status code: "]
        .iter()
        .any(|key| {
            lower.split(key).skip(1).any(|rest| {
                let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
                code.len() == 3 && (code.starts_with('5') || code == "429")
            })
        })
}

/// Whether a `docker buildx build --push` got as far as the push: its final error is the
/// export's (`failed to push`, `> exporting to image:`), not a build step's.
pub(crate) fn failed_in_push(lines: &[String]) -> bool {
    let Some(last_error) = lines.iter().rev().find(|l| l.starts_with("ERROR: ")) else {
        return false;
    };
    last_error.contains("failed to push")
        || lines.iter().any(|l| l.trim() == "> exporting to image:")
}

/// The transient reason of a failed push-like command (its output, or its timeout).
fn transient_failure_of(e: &anyhow::Error) -> Option<String> {
    let c = e.chain().find_map(|c| c.downcast_ref::<CommandError>())?;
    match &c.failure {
        Failure::Timeout(_) => c.to_string().lines().next().map(str::to_string),
        Failure::Exit(_) => transient_failure(&c.tail),
        _ => None,
    }
}

/// The transient reason of a failed `build --push`, only when the build itself succeeded
/// and the push failed.
pub(crate) fn transient_push_of_build(e: &anyhow::Error) -> Option<String> {
    let c = e.chain().find_map(|c| c.downcast_ref::<CommandError>())?;
    match &c.failure {
        Failure::Exit(_) if failed_in_push(&c.tail) => transient_failure(&c.tail),
        _ => None,
    }
}

/// `docker push IMAGE`.
pub(crate) fn push_cmd(image: &str) -> Cmd {
    Cmd::new("docker").args(["push", image])
}

/// `docker push IMAGE`: pushes a local image, retrying transient registry and network
/// failures as [`Push::retry`] says (a build that pushes retries with
/// [`Build::retry_push`]).
///
/// # Retries
///
/// Only pushes are retried (uploading the same content again is harmless); a build step
/// is never retried for a registry hiccup. Each retry is logged with its reason.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// use buildkit_lib::docker::Push;
/// use buildkit_lib::plan::Step;
/// use buildkit_lib::Runner;
///
/// let push = Push::new("127.0.0.1:5000/app:1").retry(3, Duration::from_secs(2));
/// let plan = push.plan(&Runner::new()).unwrap().to_string();
/// assert_eq!(plan, "$ docker push 127.0.0.1:5000/app:1\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Push {
    /// The local image pushed.
    image: String,
    /// How often and how patiently to retry.
    retry: Retry,
}

impl Push {
    /// A push of the local image `image`, with the default retries (5 attempts in all,
    /// waiting 2 s before the first retry, doubled after each failure up to 30 s).
    pub fn new(image: impl Into<String>) -> Push {
        Push {
            image: image.into(),
            retry: Retry::default(),
        }
    }

    /// Retries transient registry and network failures: `attempts` in all (1 means no
    /// retry), waiting `first_delay` before the first retry, doubled after each failure
    /// up to 30 s (default: 5 attempts, 2 s).
    pub fn retry(self, attempts: u32, first_delay: Duration) -> Push {
        self.with_retry(Retry::new(attempts, first_delay))
    }

    /// The retries as a value (a fan-out's, for its pushes).
    pub(crate) fn with_retry(mut self, retry: Retry) -> Push {
        self.retry = retry;
        self
    }
}

impl Step for Push {
    type Output = ();

    /// Pushes, retrying only transient failures (connection refused or reset, timeouts,
    /// HTTP 5xx and 429), each retry noted with its reason. Its plan is this body
    /// recorded: the push.
    fn run(&self, runner: &Runner) -> anyhow::Result<()> {
        let image = &self.image;
        self.retry.run(runner, &format!("push of {image}"), || {
            runner
                .run(&push_cmd(image))
                .map(|_| ())
                .with_context(|| format!("cannot push {image}"))
        })
    }
}

/// `docker buildx imagetools inspect --raw REFERENCE`.
pub(crate) fn inspect_raw_cmd(reference: &str) -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .read_only()
}

/// `docker buildx imagetools create`: one multi-platform index from per-platform images.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct ImagetoolsCreate {
    /// References the index is pushed as (`--tag`).
    pub(crate) tags: Vec<String>,
    /// The per-platform images (or indexes) to merge.
    pub(crate) sources: Vec<String>,
    /// Add to the existing index of the first tag instead of replacing it (`--append`).
    pub(crate) append: bool,
    /// How often and how patiently to retry the push of the index.
    pub(crate) retry: Retry,
}

impl ImagetoolsCreate {
    /// An index with no tags or sources yet: add them with [`ImagetoolsCreate::tag`] and
    /// [`ImagetoolsCreate::source`].
    pub fn new() -> ImagetoolsCreate {
        ImagetoolsCreate::default()
    }

    /// References the index is pushed as (`--tag`).
    ///
    /// Adds one; call again for more.
    pub fn tag(mut self, tag: impl Into<String>) -> ImagetoolsCreate {
        self.tags.push(tag.into());
        self
    }

    /// The per-platform images (or indexes) to merge.
    ///
    /// Adds one; call again for more.
    pub fn source(mut self, source: impl Into<String>) -> ImagetoolsCreate {
        self.sources.push(source.into());
        self
    }

    /// Add to the existing index of the first tag instead of replacing it (`--append`).
    pub fn append(mut self, on: bool) -> ImagetoolsCreate {
        self.append = on;
        self
    }

    /// Retries the push of the index as [`Push::retry`] does: `attempts` in all, waiting
    /// `first_delay` before the first retry, doubled up to 30 s (default: 5 attempts, 2 s).
    pub fn retry(self, attempts: u32, first_delay: Duration) -> ImagetoolsCreate {
        self.with_retry(Retry::new(attempts, first_delay))
    }

    /// The retries as a value (a fan-out's, for its merge).
    pub(crate) fn with_retry(mut self, retry: Retry) -> ImagetoolsCreate {
        self.retry = retry;
        self
    }
}

impl ImagetoolsCreate {
    /// The command line.
    pub(crate) fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "imagetools", "create"]);
        if self.append {
            cmd = cmd.arg("--append");
        }
        for tag in &self.tags {
            cmd = cmd.args(["--tag", tag]);
        }
        cmd.args(self.sources.iter().cloned())
    }
}

impl Step for ImagetoolsCreate {
    type Output = ();

    /// Creates and pushes the index, retrying as [`ImagetoolsCreate::retry`] says: one
    /// `docker buildx imagetools create`.
    fn run(&self, runner: &Runner) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.tags.is_empty(),
            "imagetools create needs at least one tag"
        );
        anyhow::ensure!(
            !self.sources.is_empty(),
            "imagetools create needs at least one source image"
        );
        for tag in &self.tags {
            super::reference::ImageRef::parse(tag)
                .map_err(|e| anyhow::anyhow!("invalid tag `{tag}`: {}", e.problem))?;
        }
        let what = format!("index {}", self.tags[0]);
        self.retry.run(runner, &what, || {
            runner
                .run(&self.command())
                .map(|_| ())
                .with_context(|| format!("cannot create {what}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_inspect_command_lines() {
        assert_eq!(
            push_cmd("127.0.0.1:5000/webapp:0.9.2").to_string(),
            "docker push 127.0.0.1:5000/webapp:0.9.2"
        );
        assert_eq!(
            inspect_raw_cmd("127.0.0.1:5000/webapp:0.9.2").to_string(),
            "docker buildx imagetools inspect --raw 127.0.0.1:5000/webapp:0.9.2"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let r = Retry {
            attempts: 6,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
        };
        let waits: Vec<u128> = (1..=5).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000]);
        assert_eq!(r.delay(40), Duration::from_secs(3));
    }

    fn failing(tail: &[&str]) -> anyhow::Error {
        anyhow::Error::new(CommandError {
            command: "docker push r/x:1".into(),
            program: "docker".into(),
            failure: Failure::Exit(1),
            tail: tail.iter().map(|l| l.to_string()).collect(),
            log: None,
        })
        .context("cannot push r/x:1")
    }

    fn quick(attempts: u32) -> Retry {
        Retry {
            attempts,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        }
    }

    #[test]
    fn transient_and_permanent_registry_failures() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for transient in [
            "dial tcp 127.0.0.1:5000: connect: connection refused",
            "read tcp 10.0.0.2:51234->1.2.3.4:443: read: connection reset by peer",
            "net/http: TLS handshake timeout",
            "dial tcp 1.2.3.4:443: i/o timeout",
            "received unexpected HTTP status: 503 Service Unavailable",
            "unexpected status code 502",
            "unexpected status: 429 Too Many Requests",
            "toomanyrequests: You have reached your pull rate limit",
            "context deadline exceeded",
        ] {
            assert_eq!(
                transient_failure(&lines(&["pushing layers", transient])).as_deref(),
                Some(transient),
                "{transient}"
            );
        }
        for permanent in [
            "unauthorized: authentication required",
            "denied: requested access to the resource is denied",
            "name unknown: repository name not known to registry",
            "manifest invalid: manifest invalid",
            "dial tcp: lookup reg.example on 10.0.0.1:53: no such host",
            "unexpected status: 404 Not Found",
            "ERROR: failed to solve: process \"/bin/sh -c false\" did not complete successfully: exit code: 1",
        ] {
            assert_eq!(transient_failure(&lines(&[permanent])), None, "{permanent}");
        }
        // Permanent words win over transient ones.
        assert_eq!(
            transient_failure(&lines(&["connection reset", "unauthorized"])),
            None
        );
    }

    #[test]
    fn a_push_phase_failure_is_told_from_a_build_failure() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pushed = lines(&[
            "#5 ERROR: failed to push 127.0.0.1:5999/x:1: failed to do request: Head \"https://127.0.0.1:5999/v2/x/blobs/sha256:1b\": dial tcp 127.0.0.1:5999: connect: connection refused",
            "------",
            " > exporting to image:",
            "------",
            "ERROR: failed to solve: failed to push 127.0.0.1:5999/x:1: failed to do request: Head \"https://127.0.0.1:5999/v2/x/blobs/sha256:1b\": dial tcp 127.0.0.1:5999: connect: connection refused",
        ]);
        assert!(failed_in_push(&pushed));
        let base = lines(&[
            "   1 | >>> FROM python:3.12-slim",
            "ERROR: failed to solve: python:3.12-slim: failed to resolve source metadata for docker.io/library/python:3.12-slim: failed to do request: Head \"https://registry-1.docker.io/v2/library/python/manifests/3.12-slim\": dial tcp 1.2.3.4:443: connect: connection refused",
        ]);
        assert!(!failed_in_push(&base));
        let e = |tail: &[String]| {
            anyhow::Error::new(CommandError {
                command: "docker buildx build --push .".into(),
                program: "docker".into(),
                failure: Failure::Exit(1),
                tail: tail.to_vec(),
                log: None,
            })
        };
        assert!(transient_push_of_build(&e(&pushed)).is_some());
        assert_eq!(transient_push_of_build(&e(&base)), None);
        assert!(transient_failure_of(&e(&base)).is_some());
    }

    #[test]
    fn transient_failures_are_retried_with_the_reason_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("push.log");
        let runner = Runner::new().echo(crate::cmd::Echo::Silent).log_to(&log);
        let mut calls = 0;
        let e = quick(3)
            .run(&runner, "push of r/x:1", || -> anyhow::Result<()> {
                calls += 1;
                Err(failing(&[
                    "Get \"https://r/v2/\": net/http: TLS handshake timeout",
                ]))
            })
            .unwrap_err();
        assert_eq!(calls, 3);
        assert!(format!("{e:#}").starts_with("push of r/x:1 failed after 3 attempt(s): "));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "push of r/x:1 failed (attempt 1 of 3): Get \"https://r/v2/\": net/http: TLS \
             handshake timeout; retrying in 0.001s\n\
             push of r/x:1 failed (attempt 2 of 3): Get \"https://r/v2/\": net/http: TLS \
             handshake timeout; retrying in 0.001s\n"
        );
        let mut calls = 0;
        quick(5)
            .run(&runner, "thing", || -> anyhow::Result<()> {
                calls += 1;
                Err(failing(&["unauthorized: authentication required"]))
            })
            .unwrap_err();
        assert_eq!(calls, 1);
    }

    #[test]
    fn only_command_exits_are_retried() {
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        let mut calls = 0;
        let e = quick(3)
            .run(&runner, "thing", || -> anyhow::Result<()> {
                calls += 1;
                anyhow::bail!("not a command error")
            })
            .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(
            format!("{e:#}"),
            "thing failed after 1 attempt(s): not a command error"
        );
    }

    #[test]
    fn an_index_creation_is_tried_as_often_as_its_retry_says() {
        use crate::cmd::{Answer, Echo, FakeExecutor};
        use std::sync::Arc;
        let tries = |retry: Option<u32>| {
            let fake = Arc::new(FakeExecutor::new().on(
                ["docker", "buildx", "imagetools", "create"],
                Answer::fail(
                    1,
                    "ERROR: dial tcp 127.0.0.1:5000: connect: connection refused\n",
                ),
            ));
            let runner = Runner::new().echo(Echo::Silent).with_executor(fake.clone());
            let mut create = ImagetoolsCreate::new()
                .tag("127.0.0.1:5000/desk:1.0")
                .source("127.0.0.1:5000/desk@sha256:aaaa");
            if let Some(attempts) = retry {
                create = create.retry(attempts, Duration::ZERO);
            }
            let err = create.run(&runner).unwrap_err();
            assert!(format!("{err:#}").contains("connection refused"), "{err:#}");
            fake.seen().len()
        };
        assert_eq!(tries(Some(3)), 3);
        assert_eq!(tries(Some(1)), 1);
    }
}
