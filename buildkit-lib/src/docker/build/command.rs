//! The build as a command line ([`Build::command`], golden-tested, in a fixed argument
//! order), without running anything. Its plan is its run recorded
//! ([`Step::plan`](crate::plan::Step::plan)).

use super::{Build, Output, Provenance};
use crate::cmd::Cmd;
use crate::docker::cache::CacheKind;
use crate::plan::Plan;

impl Build {
    /// The `docker buildx build` command line, in a fixed argument order.
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
            cmd = cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.labels {
            cmd = cmd.arg("--label").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.build_contexts {
            cmd = cmd.arg("--build-context").arg(format!("{k}={v}"));
        }
        for secret in &self.secrets {
            cmd = cmd.arg("--secret").arg(secret.to_arg());
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

/// Transitional, crate-private: the plan the hand-written plans of steps not yet moved to
/// [`Step`](crate::plan::Step) (fan-out, packaging, the reproducibility check) show for a
/// build they run. It goes when they move: a build's plan is
/// [`Step::plan`](crate::plan::Step::plan), its run recorded.
impl Build {
    /// The engine's image store query (a multi-platform `--load`), the build command, a
    /// note on BuildKit's record and the image inspection of a `--load`.
    pub(crate) fn transitional_plan(&self) -> Plan {
        let mut plan = Plan::new();
        if self.output == Output::Load && self.platforms.len() > 1 {
            plan = plan
                .query(super::run::image_store_cmd())
                .note("refused unless the engine keeps images in the containerd image store");
        }
        if self
            .cache_from
            .iter()
            .chain(&self.cache_to)
            .any(|c| c.kind() == CacheKind::Gha)
        {
            plan = plan.note(
                "the GitHub Actions cache service (v1 or v2) is read from the environment; \
                 a v2 cache is refused on a builder too old for it",
            );
        }
        plan = plan.run(self.command());
        plan = plan.note(if self.read_record {
            "then BuildKit's record of the build: `docker buildx version`, and on buildx 0.21 \
             or later `docker buildx history inspect <buildx.build.ref>` (on a failure: \
             `history ls` and the failed records it lists)"
        } else {
            "on a failure, BuildKit's record of the build: `docker buildx version`, and on \
             buildx 0.21 or later `docker buildx history ls` and the failed records it lists"
        });
        if self.output == Output::Load && self.read_size {
            if let Some(tag) = self.tags.first() {
                plan = plan.query(crate::docker::image::inspect_cmd(tag));
            }
        }
        plan
    }
}
