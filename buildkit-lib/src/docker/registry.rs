//! Registries: pushing with retries, and `buildx imagetools` (inspect an image in a
//! registry, merge per-platform images into one multi-platform index).
//!
//! Only pushes are retried (uploading the same content again is harmless); a build step
//! is never retried for a registry hiccup. Each retry is logged with its reason.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::build::{Build, BuildResult, Output};
use crate::cmd::{Cmd, CommandError, Failure, Runner};

/// How often and how patiently to retry a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1 means no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled after each failure.
    pub initial_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
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
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Runs `attempt` until it succeeds or the attempts are used up. Failures that another
    /// try cannot fix (program missing, engine down, interrupted) are returned at once.
    pub fn run<T>(
        &self,
        runner: &Runner,
        what: &str,
        mut attempt: impl FnMut() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let attempts = self.attempts.max(1);
        let mut n = 1;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(e) if n < attempts && retryable(&e) => {
                    let wait = self.delay(n);
                    let reason = e
                        .chain()
                        .find_map(|c| c.downcast_ref::<CommandError>())
                        .and_then(|c| c.tail.last().cloned())
                        .unwrap_or_else(|| e.to_string());
                    runner.note(&format!(
                        "{what} failed (attempt {n} of {attempts}): {reason}; retrying in {}s",
                        wait.as_secs_f64()
                    ));
                    std::thread::sleep(wait);
                    n += 1;
                }
                Err(e) => {
                    return Err(e.context(format!("{what} failed after {n} attempt(s)")));
                }
            }
        }
    }
}

fn retryable(e: &anyhow::Error) -> bool {
    match e.chain().find_map(|c| c.downcast_ref::<CommandError>()) {
        Some(c) => matches!(c.failure, Failure::Exit(_) | Failure::Timeout(_)),
        None => false,
    }
}

/// `docker push IMAGE`.
pub fn push_cmd(image: &str) -> Cmd {
    Cmd::new("docker").args(["push", image])
}

/// Pushes a local image, retrying as `retry` says.
pub fn push(runner: &Runner, image: &str, retry: &Retry) -> anyhow::Result<()> {
    retry.run(runner, &format!("push of {image}"), || {
        runner
            .run(&push_cmd(image))
            .map(|_| ())
            .with_context(|| format!("cannot push {image}"))
    })
}

/// Runs a build whose output is [`Output::Push`], retrying it as `retry` says: once built,
/// a retry is a cached rebuild plus the upload. Bad input (the build's checks) is never
/// retried.
pub fn build_and_push(
    runner: &Runner,
    build: &Build,
    retry: &Retry,
) -> anyhow::Result<BuildResult> {
    anyhow::ensure!(
        build.output == Output::Push,
        "build_and_push needs `output: Output::Push` (it retries pushes only)"
    );
    let what = format!(
        "push of {}",
        build
            .tags
            .first()
            .map(String::as_str)
            .unwrap_or("the image")
    );
    retry.run(runner, &what, || build.run(runner))
}

/// `docker buildx imagetools inspect --raw REFERENCE`.
pub fn inspect_raw_cmd(reference: &str) -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .read_only()
}

/// The raw manifest or index of an image in a registry, as JSON.
pub fn inspect_raw(runner: &Runner, reference: &str) -> anyhow::Result<Value> {
    let out = runner
        .capture(&inspect_raw_cmd(reference))
        .with_context(|| format!("cannot inspect {reference} in its registry"))?;
    serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("the manifest of {reference} is not JSON"))
}

/// `docker buildx imagetools create`: one multi-platform index from per-platform images.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImagetoolsCreate {
    /// References the index is pushed as (`--tag`).
    pub tags: Vec<String>,
    /// The per-platform images (or indexes) to merge.
    pub sources: Vec<String>,
    /// Add to the existing index of the first tag instead of replacing it (`--append`).
    pub append: bool,
    /// The builder to use (`--builder`).
    pub builder: Option<String>,
}

impl ImagetoolsCreate {
    /// The command line.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "imagetools", "create"]);
        if let Some(b) = &self.builder {
            cmd = cmd.args(["--builder", b]);
        }
        if self.append {
            cmd = cmd.arg("--append");
        }
        for tag in &self.tags {
            cmd = cmd.args(["--tag", tag]);
        }
        cmd.args(self.sources.iter().cloned())
    }

    /// Creates and pushes the index, retrying as `retry` says.
    pub fn run(&self, runner: &Runner, retry: &Retry) -> anyhow::Result<()> {
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
        retry.run(runner, &what, || {
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

    #[test]
    fn only_command_exits_are_retried() {
        let runner = Runner::new().echo(crate::cmd::Echo::Silent);
        let r = Retry {
            attempts: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let mut calls = 0;
        let e = r
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
}
