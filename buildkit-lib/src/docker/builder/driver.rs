//! The buildx drivers ([`Driver`]) and the TLS files of a `remote` driver's builder
//! ([`RemoteTls`]): the values a builder is made of, kept apart from the commands that
//! create one.

use std::path::PathBuf;

/// A buildx driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Driver {
    /// The engine's built-in BuildKit (no extra container; the only one usable offline).
    Docker,
    /// BuildKit in a container (`moby/buildkit` image).
    #[default]
    DockerContainer,
    /// A BuildKit daemon already running elsewhere (endpoint `tcp://...` or `unix://...`).
    Remote,
    /// BuildKit pods in a Kubernetes cluster.
    Kubernetes,
}

impl Driver {
    /// The name buildx uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Docker => "docker",
            Driver::DockerContainer => "docker-container",
            Driver::Remote => "remote",
            Driver::Kubernetes => "kubernetes",
        }
    }
}

/// The TLS files a `remote` builder uses to reach a BuildKit daemon on `tcp://`
/// (`--driver-opt cacert=...,cert=...,key=...,servername=...`). buildx does not check
/// that the files exist when the builder is created; [`BuilderCreate::run`] does.
///
/// [`BuilderCreate::run`]: super::BuilderCreate::run
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteTls {
    /// The CA certificate that signed the daemon's certificate.
    pub cacert: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client certificate's key.
    pub key: PathBuf,
    /// The name in the daemon's certificate, when it differs from the endpoint's host.
    pub servername: Option<String>,
}

impl RemoteTls {
    pub(super) fn driver_opts(&self) -> [(String, Option<String>); 4] {
        let path = |p: &PathBuf| Some(p.display().to_string());
        [
            ("cacert".into(), path(&self.cacert)),
            ("cert".into(), path(&self.cert)),
            ("key".into(), path(&self.key)),
            ("servername".into(), self.servername.clone()),
        ]
    }
}
