//! Companion services of a smoke test: containers (a database, a cache) started before
//! the app, each waited for until it is ready, whose addresses the app is given.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cmd::Secret;

use super::{EnvValue, Ready};

/// A container the app under test needs, such as its database. It runs on the host
/// network; when it has a [`port`](Service::port), the app's environment gets
/// `<NAME>_HOST=127.0.0.1` and `<NAME>_PORT=<port>` (the name upper-cased, `-` as `_`)
/// unless the smoke test sets those itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Service {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) env: BTreeMap<String, EnvValue>,
    pub(super) args: Vec<String>,
    pub(super) port: Option<u16>,
    pub(super) ready: Ready,
    pub(super) timeout: Duration,
}

impl Service {
    /// A service called `name` (letters, digits, `-` and `_`) running `image`; ready on a
    /// TCP connect to its port ([`Ready::Auto`] for a service), within 60 s.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            image: image.into(),
            env: BTreeMap::new(),
            args: Vec::new(),
            port: None,
            ready: Ready::Auto,
            timeout: Duration::from_secs(60),
        }
    }

    /// The port the service listens on at `127.0.0.1` (checked free before it starts).
    pub fn port(mut self, port: u16) -> Service {
        self.port = Some(port);
        self
    }

    /// Sets an environment variable in the service's container.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Service {
        self.env.insert(key.into(), EnvValue::Plain(value.into()));
        self
    }

    /// Sets a secret environment variable: `docker run` gets `--env NAME`, and the value
    /// reaches only the docker client's environment, never its command line.
    pub fn secret_env(mut self, key: impl Into<String>, value: Secret) -> Service {
        self.env.insert(key.into(), EnvValue::Secret(value));
        self
    }

    /// Replaces the image's `CMD`.
    pub fn args<I, S>(mut self, args: I) -> Service
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// How readiness is told: [`Ready::Auto`] (the default) is a TCP connect to the
    /// service's [`port`](Service::port); [`Ready::LogLine`] a line of its output, such as
    /// `ready for connections`.
    pub fn ready(mut self, ready: Ready) -> Service {
        self.ready = ready;
        self
    }

    /// How long the service has to become ready.
    pub fn timeout(mut self, limit: Duration) -> Service {
        self.timeout = limit;
        self
    }

    /// The prefix of the variables that carry its address to the app (`DB` for `db`).
    pub(super) fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        let valid = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            anyhow::bail!(
                "smoke test service name `{}` is not usable: use letters, digits, `-` and `_`",
                self.name
            );
        }
        if self.ready == Ready::Auto && self.port.is_none() {
            anyhow::bail!(
                "smoke test service `{}` waits for a TCP connect but has no port: set \
                 `Service::port`, or wait for a log line (`Ready::LogLine`)",
                self.name
            );
        }
        Ok(())
    }
}

/// What a companion service did before the app was probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceReport {
    /// The service's name.
    pub(crate) name: String,
    /// Its container (removed by now).
    pub(crate) container: String,
    /// The check that decided readiness.
    pub(crate) check: Ready,
    /// From `docker run` to ready.
    pub(crate) time_to_ready: Duration,
}
