//! The buildx drivers (`Driver`, named as buildx names them in
//! [`BuilderCreate::driver`](crate::docker::BuilderCreate::driver)) and the TLS files of a `remote` driver's builder
//! (`RemoteTls`): the values a builder is made of, kept apart from the commands that
//! create one.

use std::path::PathBuf;

/// A buildx driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Driver {
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
    /// Every driver, in the order errors list them.
    pub(crate) const ALL: [Driver; 4] = [
        Driver::Docker,
        Driver::DockerContainer,
        Driver::Remote,
        Driver::Kubernetes,
    ];

    /// The name buildx uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Driver::Docker => "docker",
            Driver::DockerContainer => "docker-container",
            Driver::Remote => "remote",
            Driver::Kubernetes => "kubernetes",
        }
    }

    /// The driver buildx names `name`.
    pub(crate) fn parse(name: &str) -> Option<Driver> {
        Driver::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// The TLS files a `remote` builder uses to reach a BuildKit daemon on `tcp://`
/// (`--driver-opt cacert=...,cert=...,key=...,servername=...`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RemoteTls {
    /// The CA certificate that signed the daemon's certificate.
    pub(crate) cacert: PathBuf,
    /// The client certificate.
    pub(crate) cert: PathBuf,
    /// The client certificate's key.
    pub(crate) key: PathBuf,
    /// The name in the daemon's certificate, when it differs from the endpoint's host.
    pub(crate) servername: Option<String>,
}

impl RemoteTls {
    /// The CA certificate `cacert` that signed the daemon's certificate, and the client
    /// certificate `cert` with its key `key`.
    pub(crate) fn new(
        cacert: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> RemoteTls {
        RemoteTls {
            cacert: cacert.into(),
            cert: cert.into(),
            key: key.into(),
            servername: None,
        }
    }
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
