//! The pre-flight checks: what buildx would refuse late, or what would leak a secret,
//! refused before anything runs, with an error that names the field and the fix.

use anyhow::bail;

use super::{Build, Output, Provenance, SecretSource};
use crate::cmd::{Cmd, Runner};
use crate::docker::cache::CacheKind;
use crate::docker::dockerfile;
use crate::docker::reference::ImageRef;

/// Name words that make a build arg look like a secret.
const SECRET_WORDS: [&str; 4] = ["TOKEN", "PASSWORD", "SECRET", "KEY"];

impl Build {
    /// The pre-flight checks, with this process's environment: the Dockerfile exists,
    /// the target stage is in it, tags are valid references, no build arg looks like a
    /// secret, secret sources exist, caches have what they need.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        self.check_with_env(&|k| std::env::var(k).ok())
    }

    /// [`Build::check`] with the environment the runner gives its commands.
    pub(super) fn check_for(&self, runner: &Runner) -> anyhow::Result<()> {
        let probe = Cmd::new("docker");
        self.check_with_env(&|k| runner.effective_env(&probe, k))
    }

    /// For a missing Dockerfile given by a relative path, the end of the error: that the
    /// path is taken from the current directory (named), not from the context, and the
    /// context's file of that name when there is one. Empty for an absolute path.
    fn relative_dockerfile_hint(&self, dockerfile: &std::path::Path) -> String {
        if dockerfile.is_absolute() {
            return String::new();
        }
        let cwd = match std::env::current_dir() {
            Ok(dir) => format!(" (`{}`)", dir.display()),
            Err(_) => String::new(),
        };
        let mut hint = format!(
            "; a relative path is taken from the current directory{cwd}, as with docker's \
             `-f`, not from the context"
        );
        if let Some(given) = &self.dockerfile {
            let in_context = self.context.join(given);
            if in_context.is_file() {
                hint.push_str(&format!("; did you mean `{}`?", in_context.display()));
            }
        }
        hint
    }

    pub(super) fn check_with_env(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        self.check_skipped_cache_checks()?;
        let context = self.context.to_string_lossy();
        let remote = context.contains("://") || context.starts_with("git@") || context == "-";
        if !remote && !self.context.is_dir() {
            bail!(
                "build context `{}` is not a directory; set `context` to the directory the \
                 Dockerfile's COPY paths are relative to",
                self.context.display()
            );
        }
        if self.rewrite_timestamp
            && !matches!(
                self.output,
                Output::Push | Output::PushByDigest(_) | Output::OciLayout(_)
            )
        {
            bail!(
                "`rewrite_timestamp` needs an export that writes the image's blobs itself \
                 (Output::Push, Output::PushByDigest or Output::OciLayout); with {:?} the \
                 layers are unpacked into an image store, which refuses it (\"exporter \
                 option rewrite-timestamp conflicts with unpack\")",
                self.output
            );
        }
        let dockerfile = self.dockerfile_path();
        if !remote && !dockerfile.is_file() {
            bail!(
                "Dockerfile `{}` does not exist; set `dockerfile` to its path (the default \
                 is `Dockerfile` in the context){}",
                dockerfile.display(),
                self.relative_dockerfile_hint(&dockerfile)
            );
        }
        if let (Some(target), false) = (&self.target, remote) {
            let stages = dockerfile::read_stages(&dockerfile)?;
            let wanted = target.to_ascii_lowercase();
            if !stages
                .iter()
                .any(|s| s.name.as_deref() == Some(wanted.as_str()))
            {
                bail!(
                    "target stage `{target}` is not in Dockerfile `{}`; its stages are: {}",
                    dockerfile.display(),
                    dockerfile::stage_list(&stages)
                );
            }
        }
        for tag in &self.tags {
            match ImageRef::parse(tag) {
                Err(e) => bail!("invalid tag `{tag}`: {}", e.problem),
                Ok(r) if r.digest.is_some() => bail!(
                    "invalid tag `{tag}`: a tag names an image to create and cannot carry a \
                     digest; drop the `@...` part"
                ),
                Ok(_) => {}
            }
        }
        for name in self.build_args.keys() {
            let upper = name.to_ascii_uppercase();
            if let Some(word) = SECRET_WORDS.iter().find(|w| upper.contains(*w)) {
                bail!(
                    "build arg `{name}` looks like a secret (its name contains `{word}`), and \
                     build args are readable in the image history; pass it as a build secret \
                     instead (`Build::secret_env(\"{id}\", \"{name}\")`, read with \
                     `RUN --mount=type=secret,id={id}`)",
                    id = name.to_ascii_lowercase()
                );
            }
        }
        if self.provenance == Provenance::Max {
            for (name, value) in &self.build_args {
                if let Some(why) = looks_like_secret_value(value) {
                    bail!(
                        "build arg `{name}` has a value that looks like a secret ({why}), and \
                         `mode=max` provenance records every build arg's value in the image's \
                         attestation, readable by anyone who can pull it; pass it as a build \
                         secret (`Build::secret_env`) or use `attest(\"type=provenance,mode=min\")`"
                    );
                }
            }
        }
        for secret in &self.secrets {
            if secret.id.is_empty() || secret.id.contains([',', '=']) {
                bail!(
                    "build secret id `{}` is not usable: it must be non-empty, without `,` or `=`",
                    secret.id
                );
            }
            match &secret.source {
                SecretSource::File(path) if !path.is_file() => bail!(
                    "build secret `{}` reads file `{}`, which does not exist",
                    secret.id,
                    path.display()
                ),
                SecretSource::Env(var) if env(var).is_none() => bail!(
                    "build secret `{}` reads the environment variable `{var}`, which is not set",
                    secret.id
                ),
                _ => {}
            }
        }
        if self
            .cache_from
            .iter()
            .any(|c| c.kind() == CacheKind::Inline)
        {
            bail!(
                "an inline cache cannot be a cache source: import it with \
                 `Cache::registry` naming the image that carries it"
            );
        }
        for cache in self.cache_from.iter().chain(&self.cache_to) {
            cache.check()?;
            let _checked = cache.resolve(env)?;
        }
        if let Output::PushByDigest(name) = &self.output {
            match ImageRef::parse(name) {
                Err(e) => bail!(
                    "invalid repository `{name}` to push by digest: {}",
                    e.problem
                ),
                Ok(r) if r.tag.is_some() || r.digest.is_some() => bail!(
                    "`{name}` names a tag or digest; a push by digest takes the repository \
                     alone (`{}`)",
                    r.name()
                ),
                Ok(_) => {}
            }
        }
        if self.output == Output::Push && self.tags.is_empty() {
            bail!("a pushed build needs at least one tag naming the registry and repository");
        }
        Ok(())
    }
}

/// Why a build arg's value looks like a secret, if it does: a known token or key
/// prefix, a PEM block, or a long random-looking string (mixed case and digits, no
/// separators; hex strings such as commit hashes and digests do not count).
pub(crate) fn looks_like_secret_value(value: &str) -> Option<&'static str> {
    const PREFIXES: [(&str, &str); 9] = [
        ("ghp_", "a GitHub token"),
        ("gho_", "a GitHub token"),
        ("ghs_", "a GitHub token"),
        ("github_pat_", "a GitHub token"),
        ("glpat-", "a GitLab token"),
        ("xoxb-", "a Slack token"),
        ("xoxp-", "a Slack token"),
        ("sk_live_", "a Stripe key"),
        ("AKIA", "an AWS access key id"),
    ];
    let v = value.trim();
    if let Some((_, what)) = PREFIXES.iter().find(|(p, _)| v.starts_with(p)) {
        return Some(what);
    }
    if v.contains("-----BEGIN") {
        return Some("a PEM block");
    }
    let token_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '-'));
    let hex = v.chars().all(|c| c.is_ascii_hexdigit());
    let (upper, lower, digit) = (
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    );
    (v.len() >= 24 && token_chars && !hex && upper && lower && digit)
        .then_some("a long random-looking string")
}
