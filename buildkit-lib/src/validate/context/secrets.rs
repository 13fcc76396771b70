//! Files in a build context that look like secrets: env files, keys, credentials, a
//! `.git` folder. Each finding names the `.dockerignore` line that would keep it out.

use crate::dockerignore::IgnoreRules;

use super::walk::ContextFile;

/// A family of files that should not reach a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SecretKind {
    /// `.env`, `.env.*` (not `.env.example` and the like).
    EnvFile,
    /// `*.pem`, `*.key`.
    PrivateKey,
    /// `*.p12`, `*.pfx`, `*.jks`, `*.keystore`.
    KeyStore,
    /// `id_rsa`, `id_dsa`, `id_ecdsa`, `id_ed25519` (not their `.pub`).
    SshKey,
    /// A `.git` directory: history, remotes with tokens, hooks.
    GitDir,
    /// `.npmrc` (registry tokens).
    NpmRc,
    /// `.pypirc` (PyPI tokens).
    PyPiRc,
    /// `.netrc` (passwords for hosts).
    Netrc,
    /// `.git-credentials`.
    GitCredentials,
    /// `.aws/credentials`.
    AwsCredentials,
    /// `.docker/config.json` (registry auth).
    DockerConfig,
}

impl SecretKind {
    /// A short description for reports.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            SecretKind::EnvFile => "environment file",
            SecretKind::PrivateKey => "private key or certificate",
            SecretKind::KeyStore => "key store",
            SecretKind::SshKey => "SSH private key",
            SecretKind::GitDir => "git repository",
            SecretKind::NpmRc => "npm credentials",
            SecretKind::PyPiRc => "PyPI credentials",
            SecretKind::Netrc => "netrc credentials",
            SecretKind::GitCredentials => "git credentials",
            SecretKind::AwsCredentials => "AWS credentials",
            SecretKind::DockerConfig => "Docker registry credentials",
        }
    }
}

/// A likely secret that would enter the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct SecretFinding {
    /// The file (or, for a `.git` directory, the directory) relative to the context.
    pub(crate) path: String,
    /// What it looks like.
    pub(crate) kind: SecretKind,
    /// Files it stands for (1, or the files of a `.git` directory).
    pub(crate) files: usize,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// A `.dockerignore` line that excludes it when appended (checked with the matcher).
    pub(crate) fix: String,
}

/// Classifies a sent file; the second value is the `.dockerignore` line to suggest.
fn classify(path: &str) -> Option<(SecretKind, String)> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let harmless_env = [".example", ".sample", ".template", ".dist"]
        .iter()
        .any(|s| lower.ends_with(s));
    if lower.starts_with(".env") && !harmless_env {
        return Some((SecretKind::EnvFile, "**/.env*".into()));
    }
    for key in ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"] {
        if lower.starts_with(key) && !lower.ends_with(".pub") {
            return Some((SecretKind::SshKey, format!("**/{key}*")));
        }
    }
    match ext {
        "pem" | "key" => return Some((SecretKind::PrivateKey, format!("**/*.{ext}"))),
        "p12" | "pfx" | "jks" | "keystore" => {
            return Some((SecretKind::KeyStore, format!("**/*.{ext}")))
        }
        _ => {}
    }
    let (kind, line) = match name {
        ".npmrc" => (SecretKind::NpmRc, "**/.npmrc"),
        ".pypirc" => (SecretKind::PyPiRc, "**/.pypirc"),
        ".netrc" => (SecretKind::Netrc, "**/.netrc"),
        ".git-credentials" => (SecretKind::GitCredentials, "**/.git-credentials"),
        "credentials" if path == ".aws/credentials" || path.ends_with("/.aws/credentials") => {
            (SecretKind::AwsCredentials, "**/.aws")
        }
        "config.json"
            if path == ".docker/config.json" || path.ends_with("/.docker/config.json") =>
        {
            (SecretKind::DockerConfig, "**/.docker")
        }
        _ => return None,
    };
    Some((kind, line.to_string()))
}

/// The `.git` directory an entry lives in, if any.
fn git_dir_of(path: &str) -> Option<&str> {
    let mut at = 0;
    for part in path.split('/') {
        let end = at + part.len();
        if part == ".git" && end < path.len() {
            return Some(&path[..end]);
        }
        at = end + 1;
    }
    None
}

pub(super) fn find_secrets(rules: &IgnoreRules, files: &[ContextFile]) -> Vec<SecretFinding> {
    let mut found: Vec<SecretFinding> = Vec::new();
    let mut git: Vec<SecretFinding> = Vec::new();
    for file in files {
        if let Some(dir) = git_dir_of(&file.path) {
            match git.iter_mut().find(|g| g.path == dir) {
                Some(g) => {
                    g.files += 1;
                    g.bytes += file.bytes;
                }
                None => git.push(SecretFinding {
                    path: dir.to_string(),
                    kind: SecretKind::GitDir,
                    files: 1,
                    bytes: file.bytes,
                    fix: if dir == ".git" { ".git" } else { "**/.git" }.to_string(),
                }),
            }
            continue;
        }
        if let Some((kind, fix)) = classify(&file.path) {
            found.push(SecretFinding {
                path: file.path.clone(),
                kind,
                files: 1,
                bytes: file.bytes,
                fix,
            });
        }
    }
    found.extend(git);
    for finding in &mut found {
        let works = rules
            .with_pattern(&finding.fix)
            .is_ok_and(|r| r.is_excluded(&finding.path));
        if !works {
            finding.fix = finding.path.clone();
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}
