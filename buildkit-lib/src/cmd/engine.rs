//! The runner's engine handle: the Docker engine's address, the Engine API on its socket,
//! and the answers of the engine and its tools kept for the run.
//!
//! An answer that does not change while the engine runs (the image store, the buildx and
//! engine versions) is asked once per engine by a runner and its clones, and kept here; a
//! recording runner (a step's plan) keeps its own, so a dry run's placeholders never reach a
//! real run. `GET` on the engine's unix socket takes a millisecond where a `docker`
//! process takes tens.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use super::{Cmd, CommandError, Failure, Runner};

/// A run's handle on its Docker engine: how the embedding project starts it, and the
/// answers kept for the run (shared by a runner's clones).
#[derive(Debug, Clone, Default)]
pub(super) struct EngineHandle {
    help: Option<String>,
    answers: Arc<Mutex<HashMap<String, String>>>,
}

impl EngineHandle {
    /// The same handle with an empty answer cache of its own (a recording runner's).
    pub(super) fn with_fresh_answers(&self) -> EngineHandle {
        EngineHandle {
            help: self.help.clone(),
            answers: Arc::default(),
        }
    }

    /// The embedding project's way to start the engine, if it said.
    pub(super) fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    fn known(&self, key: &str) -> Option<String> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn keep(&self, key: &str, answer: String) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), answer);
    }
}

impl Runner {
    /// How the embedding project starts its Docker engine (such as "run `cargo xtask
    /// engine up`"), named in every error about an engine that does not answer. Without
    /// it, the errors say only to start one or to point `DOCKER_HOST` at one.
    pub fn engine_help(mut self, how: impl Into<String>) -> Runner {
        self.engine.help = Some(how.into());
        self
    }

    /// The embedding project's way to start its engine, if it set one.
    pub(crate) fn get_engine_help(&self) -> Option<&str> {
        self.engine.help()
    }

    /// An engine answer this runner (or a clone) already got for `key`.
    pub(crate) fn known_answer(&self, key: &str) -> Option<bool> {
        self.known_text(key).map(|v| v == "true")
    }

    /// Keeps an engine answer for this runner and its clones.
    pub(crate) fn keep_answer(&self, key: &str, answer: bool) {
        self.keep_text(key, answer.to_string());
    }

    /// An engine or tool answer in words (a version) this runner (or a clone) already got
    /// for `key`.
    pub(crate) fn known_text(&self, key: &str) -> Option<String> {
        self.engine.known(key)
    }

    /// Keeps an engine or tool answer in words for this runner and its clones.
    pub(crate) fn keep_text(&self, key: &str, answer: impl Into<String>) {
        self.engine.keep(key, answer.into());
    }

    /// The engine's unix socket path, when `DOCKER_HOST` as this runner passes it names
    /// one (`unix:///run/docker.sock` gives `/run/docker.sock`).
    pub(crate) fn engine_socket(&self) -> Option<String> {
        let host = self.effective_env(&Cmd::new("docker"), "DOCKER_HOST")?;
        host.strip_prefix("unix://").map(str::to_string)
    }

    /// An Engine API `GET` on the engine's unix socket: a millisecond where a `docker`
    /// process takes tens. `None` when the engine is not on a unix socket (use the CLI).
    /// Like a read-only command it runs in a dry run too, is recorded (as `GET SOCKET
    /// PATH`) and logged, and fails with a [`CommandError`]: an engine that does not
    /// answer is [`Failure::EngineUnreachable`]. Answers of any status are returned.
    pub(crate) fn engine_get(&self, path: &str) -> Option<Result<(u16, String), CommandError>> {
        // A fake engine, or a dry run that asks nothing: the `docker` command path
        // records (and, with a fake, answers) the query.
        if self.executor.is_some() || (self.dry_run && !self.dry_run_queries) {
            return None;
        }
        let socket = self.engine_socket()?;
        let shown = Cmd::new("GET").arg(&socket).arg(path).read_only();
        self.record(&shown);
        if let Some(mut log) = self.open_log() {
            let _ = writeln!(log, "$ {shown}");
        }
        Some(super::socket::unix_get(&socket, path).map_err(|why| {
            let unreachable = why.contains("No such file")
                || why.contains("Connection refused")
                || why.contains("os error 2)")
                || why.contains("os error 111)");
            let failure = if unreachable {
                Failure::EngineUnreachable {
                    host: format!("unix://{socket}"),
                    help: self.engine.help().map(str::to_string),
                }
            } else {
                Failure::Spawn(why.clone())
            };
            self.error(&shown, failure, vec![why])
        }))
    }
}
