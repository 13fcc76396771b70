//! Companion services of a smoke test: containers (a database, a cache) started before
//! the app, each waited for until it is ready, whose addresses the app is given.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{EnvValue, Network, Ready, Smoke};

/// A container the app under test needs, such as its database: a [`Smoke`] given to
/// [`Smoke::service`] under a name. It runs on the host network; when it has a port, the
/// app's environment gets `<NAME>_HOST=127.0.0.1` and `<NAME>_PORT=<port>` (the name
/// upper-cased, `-` as `_`) unless the smoke test sets those itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) env: BTreeMap<String, EnvValue>,
    pub(super) args: Vec<String>,
    pub(super) port: Option<u16>,
    pub(super) ready: Ready,
    pub(super) timeout: Duration,
    /// What the companion's [`Smoke`] sets that a service cannot have (a published port,
    /// services of its own): refused when the test runs.
    misuse: Option<&'static str>,
}

impl Service {
    /// The service called `name` that `companion` describes: its image, environment,
    /// `CMD`, port, readiness and timeout.
    pub(super) fn of(name: String, companion: Smoke) -> Service {
        let misuse = if companion.network != Network::Host {
            Some("publishes a port (`Smoke::publish`); a service runs on the host network")
        } else if !companion.services.is_empty() {
            Some("has services of its own; give them to the app's smoke test")
        } else {
            None
        };
        Service {
            name,
            image: companion.image,
            env: companion.env,
            args: companion.args,
            port: companion.port,
            ready: companion.ready,
            timeout: companion.timeout,
            misuse,
        }
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
        if let Some(misuse) = self.misuse {
            anyhow::bail!("smoke test service `{}` {misuse}", self.name);
        }
        if self.ready == Ready::Auto && self.port.is_none() {
            anyhow::bail!(
                "smoke test service `{}` waits for a TCP connect but has no port: set \
                 `Smoke::port` on it, or wait for a log line (`Ready::LogLine`)",
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
