//! The build as a command line ([`Build::command`], golden-tested, in a fixed argument
//! order), without running anything. Its plan is its run recorded
//! ([`Step::plan`](crate::plan::Step::plan)).

use super::{Build, Output, Provenance};
use crate::cmd::Cmd;

impl Build {
    /// The `docker buildx build` command line, in a fixed argument order. A build arg whose
    /// value looks like a secret is passed in the command's environment, by name only on
    /// the command line.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["buildx", "build"]);
        if let Some(builder) = &self.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        if self.explains() {
            cmd = cmd.arg("--progress=rawjson");
        } else if let Some(progress) = &self.progress {
            cmd = cmd.arg(format!("--progress={progress}"));
        }
        if let Some(file) = &self.dockerfile {
            cmd = cmd.arg("--file").arg_path(file);
        }
        if let Some(target) = &self.target {
            cmd = cmd.args(["--target", target]);
        }
        if !self.platforms.is_empty() {
            cmd = cmd.arg("--platform").arg(self.platforms.join(","));
        }
        for tag in &self.tags {
            cmd = cmd.args(["--tag", tag]);
        }
        for (k, v) in &self.build_args {
            cmd = build_arg(cmd, k, v);
        }
        for (k, v) in &self.labels {
            cmd = cmd.arg("--label").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.build_contexts {
            cmd = cmd.arg("--build-context").arg(format!("{k}={v}"));
        }
        for secret in &self.secrets {
            cmd = cmd.arg("--secret").arg(secret.to_arg());
            if let super::SecretSource::Value(value) = &secret.source {
                cmd = cmd.secret_env(secret.value_env(), value.clone());
            }
        }
        if let Some(network) = &self.network {
            cmd = cmd.arg(format!("--network={network}"));
        }
        if self.pull {
            cmd = cmd.arg("--pull");
        }
        if self.no_cache {
            cmd = cmd.arg("--no-cache");
        }
        if let Some(value) = self.provenance_arg() {
            cmd = cmd.arg(format!("--provenance={value}"));
        }
        if self.sbom {
            cmd = cmd.arg("--sbom=true");
        }
        for attest in &self.attest {
            cmd = cmd.args(["--attest", attest]);
        }
        for cache in &self.cache_from {
            cmd = cmd.arg("--cache-from").arg(cache.to_from_arg());
        }
        for cache in &self.cache_to {
            cmd = cmd.arg("--cache-to").arg(cache.to_to_arg());
        }
        let rewrite = if self.rewrite_timestamp {
            ",rewrite-timestamp=true"
        } else {
            ""
        };
        cmd = match &self.output {
            Output::Default => cmd,
            Output::Load => cmd.arg("--load"),
            Output::Push if self.rewrite_timestamp => cmd
                .arg("--output")
                .arg(format!("type=image,push=true{rewrite}")),
            Output::Push => cmd.arg("--push"),
            Output::OciLayout(dir) => cmd.arg("--output").arg(format!(
                "type=oci,dest={},tar=false{rewrite}",
                dir.display()
            )),
            Output::Local(dir) => cmd
                .arg("--output")
                .arg(format!("type=local,dest={}", dir.display())),
            Output::Tar(file) => cmd
                .arg("--output")
                .arg(format!("type=tar,dest={}", file.display())),
            Output::PushByDigest(name) => cmd.arg("--output").arg(format!(
                "type=image,name={name},push-by-digest=true,name-canonical=true,push=true{rewrite}"
            )),
        };
        if let Some(file) = &self.metadata_file {
            cmd = cmd.arg("--metadata-file").arg_path(file);
        }
        cmd.args(self.extra_args.iter().cloned())
            .arg_path(&self.context)
    }

    /// The value of `--provenance`, when the build sets one.
    pub(crate) fn provenance_arg(&self) -> Option<&'static str> {
        match self.provenance {
            Provenance::Default => None,
            Provenance::Off => Some("false"),
            Provenance::Min => Some("mode=min"),
            Provenance::Max => Some("mode=max"),
        }
    }
}

/// `cmd` with `--build-arg NAME=value`; for a value that looks like a secret, `--build-arg
/// NAME` with the value in the command's environment, where buildx reads it: never on a
/// command line, which is echoed, logged, kept in the report and shown by `ps`.
pub(crate) fn build_arg(cmd: Cmd, name: &str, value: &str) -> Cmd {
    if super::looks_like_secret_value(value).is_some() {
        cmd.arg("--build-arg")
            .arg(name)
            .secret_env(name, crate::cmd::Secret::new(value))
    } else {
        cmd.arg("--build-arg").arg(format!("{name}={value}"))
    }
}
