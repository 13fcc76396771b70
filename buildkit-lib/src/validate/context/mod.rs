//! Build context audit: which files the engine receives, how big they are, and which of
//! them look like secrets.
//!
//! [`audit`] is the entry point (what it reports is documented for users there). The walk
//! lives in `walk`, the secret finder in `secrets`.

mod secrets;
mod walk;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::dockerignore::IgnoreRules;
use crate::units::human_bytes;

use secrets::find_secrets;
pub(crate) use secrets::SecretFinding;
#[cfg(test)]
use secrets::SecretKind;
use walk::largest_dirs;
pub(crate) use walk::sent;
pub(crate) use walk::{ContextFile, DirUsage};

/// Files at least this big are listed as large by default (10 MiB).
const LARGE_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// How many of the largest files and directories are kept by default.
const TOP: usize = 10;

/// The build context as the engine will receive it: its size and files here; the largest
/// files and folders and the likely secrets in its `Display` and [`warnings`](ContextAudit::warnings).
///
/// By default files of 10 MiB or more are listed as large and the 10 largest files and
/// directories are kept; [`large_file_bytes`](ContextAudit::large_file_bytes) and
/// [`top`](ContextAudit::top) change that without walking again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ContextAudit {
    /// The context directory.
    pub(crate) root: PathBuf,
    /// The ignore file used, if any.
    pub(crate) ignore_file: Option<PathBuf>,
    /// The rules read from it.
    pub(crate) rules: IgnoreRules,
    /// Every file, symlink and special file sent, sorted by path.
    pub(crate) files: Vec<ContextFile>,
    /// Every directory sent (including excluded ones that hold a re-included file),
    /// sorted by path.
    pub(crate) dirs: Vec<String>,
    /// The bytes of every file sent.
    pub total_bytes: u64,
    /// The largest files, biggest first.
    pub(crate) largest_files: Vec<ContextFile>,
    /// The directories holding the most bytes (cumulative), biggest first.
    pub(crate) largest_dirs: Vec<DirUsage>,
    /// Files at or above `large_file_bytes`, biggest first.
    pub(crate) large_files: Vec<ContextFile>,
    /// The threshold used for `large_files`.
    pub(crate) large_file_bytes: u64,
    /// How many of the largest files and directories are kept.
    pub(crate) top: usize,
    /// Likely secrets that would be sent, by path.
    pub(crate) secrets: Vec<SecretFinding>,
    /// How long the walk took.
    pub(crate) elapsed: Duration,
}

impl ContextAudit {
    /// Lists files at least `bytes` big in the [`warnings`](ContextAudit::warnings)
    /// (default 10 MiB).
    pub fn large_file_bytes(mut self, bytes: u64) -> ContextAudit {
        self.large_file_bytes = bytes;
        self.rank();
        self
    }

    /// Keeps the `n` largest files and directories for the `Display` (default 10).
    pub fn top(mut self, n: usize) -> ContextAudit {
        self.top = n;
        self.rank();
        self
    }

    /// The largest files and directories, and the large files, from the files sent.
    fn rank(&mut self) {
        let mut by_size: Vec<&ContextFile> = self.files.iter().collect();
        by_size.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
        self.largest_files = by_size
            .iter()
            .take(self.top)
            .map(|f| (*f).clone())
            .collect();
        self.large_files = by_size
            .iter()
            .take_while(|f| f.bytes >= self.large_file_bytes)
            .map(|f| (*f).clone())
            .collect();
        self.largest_dirs = largest_dirs(&self.files, self.top);
    }

    /// The paths of the files sent, sorted (as many as files are sent: directories are
    /// in [`dir_paths`](ContextAudit::dir_paths)).
    pub fn file_paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
    }

    /// The paths of the directories sent, sorted: with the files, the context the engine
    /// receives (an excluded directory that holds a re-included file is sent too).
    pub fn dir_paths(&self) -> Vec<&str> {
        self.dirs.iter().map(String::as_str).collect()
    }

    /// One line per problem worth a look: large files and likely secrets.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.large_files {
            out.push(format!(
                "large file in the build context: {} ({}, limit {})",
                f.path,
                human_bytes(f.bytes),
                human_bytes(self.large_file_bytes)
            ));
        }
        for s in &self.secrets {
            out.push(format!(
                "{} in the build context: {} (add `{}` to .dockerignore)",
                s.kind.describe(),
                s.path,
                s.fix
            ));
        }
        out
    }
}

impl fmt::Display for ContextAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ignore = match &self.ignore_file {
            Some(p) => format!(
                "{} ({} patterns)",
                p.file_name().unwrap_or_default().to_string_lossy(),
                self.rules.patterns().len()
            ),
            None => "no .dockerignore".to_string(),
        };
        writeln!(
            f,
            "build context {}: {} files, {} directories, {} ({ignore}; walked in {} ms)",
            self.root.display(),
            self.files.len(),
            self.dirs.len(),
            human_bytes(self.total_bytes),
            self.elapsed.as_millis()
        )?;
        if !self.largest_dirs.is_empty() {
            writeln!(f, "largest directories:")?;
            for d in &self.largest_dirs {
                writeln!(
                    f,
                    "  {:>10}  {} ({} files)",
                    human_bytes(d.bytes),
                    d.path,
                    d.files
                )?;
            }
        }
        if !self.largest_files.is_empty() {
            writeln!(f, "largest files:")?;
            for file in &self.largest_files {
                writeln!(f, "  {:>10}  {}", human_bytes(file.bytes), file.path)?;
            }
        }
        for w in self.warnings() {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Walks `context` with its ignore rules and reports what the engine would receive.
///
/// `dockerfile` is the Dockerfile as passed to `-f`, if any: a `<Dockerfile>.dockerignore`
/// beside it takes precedence over the context's `.dockerignore`, as in BuildKit.
///
/// [`audit`] walks a context directory with its `.dockerignore` rules (read by the
/// crate's `.dockerignore` matcher, exactly as BuildKit does) and returns a
/// [`ContextAudit`]: the files and folders sent, the largest ones, and likely secrets with
/// the line that would exclude each.
///
/// A function, not a [`Step`](crate::plan::Step): it only reads files and has no effect
/// (no command, no write, no engine), so its plan would be empty and a dry run would do
/// the whole audit anyway. A pipeline step that wants it calls it in its body.
pub fn audit(context: &Path, dockerfile: Option<&Path>) -> Result<ContextAudit> {
    let started = Instant::now();
    let (ignore_file, rules, files, dirs) = sent(context, dockerfile)?;
    let total_bytes = files.iter().map(|f| f.bytes).sum();
    let secrets = find_secrets(&rules, &files);
    let mut audit = ContextAudit {
        root: context.to_path_buf(),
        ignore_file,
        rules,
        files,
        dirs,
        total_bytes,
        largest_files: Vec::new(),
        largest_dirs: Vec::new(),
        large_files: Vec::new(),
        large_file_bytes: LARGE_FILE_BYTES,
        top: TOP,
        secrets,
        elapsed: Duration::ZERO,
    };
    audit.rank();
    audit.elapsed = started.elapsed();
    Ok(audit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file name that is not UTF-8 is shown with U+FFFD but kept byte-exact, so the walk
    /// (and whatever reads the file afterwards) opens the real file.
    #[test]
    fn non_utf8_file_names_are_kept_byte_exact() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let raw: &[u8] = b"caf\xe9-\xff.txt";
        let name = std::ffi::OsStr::from_bytes(raw);
        std::fs::create_dir(dir.path().join("media")).unwrap();
        std::fs::write(dir.path().join("media").join(name), b"latin-1 name").unwrap();
        std::fs::write(dir.path().join("ok.txt"), b"x").unwrap();
        let audit = audit(dir.path(), None).unwrap();
        let file = audit
            .files
            .iter()
            .find(|f| f.path.starts_with("media/"))
            .expect("the non-UTF-8 file is listed");
        let mut expected = b"media/".to_vec();
        expected.extend_from_slice(raw);
        assert_eq!(file.os_path.as_os_str().as_bytes(), expected.as_slice());
        assert_eq!(file.path, "media/caf\u{fffd}-\u{fffd}.txt");
        assert_eq!(file.bytes, 12);
        assert_eq!(
            std::fs::read(dir.path().join(&file.os_path)).unwrap(),
            b"latin-1 name"
        );
    }

    #[test]
    fn audit_lists_files_dirs_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |p: &str, n: usize| {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![b'x'; n]).unwrap();
        };
        write("app.py", 10);
        write(".env", 3);
        write(".env.example", 3);
        write("certs/server.pem", 5);
        write("cache/big.bin", 2000);
        write("cache/keep/k.txt", 1);
        write(".git/HEAD", 4);
        write(".git/objects/ab", 6);
        write("home/.aws/credentials", 7);
        write("home/id_rsa.pub", 2);
        // `*.pub` would match the root only: `**/` reaches into `home/`.
        let ignore = "cache\n!cache/keep\n**/*.pub\n";
        std::fs::write(root.join(".dockerignore"), ignore).unwrap();
        let audit = audit(root, None).unwrap().large_file_bytes(1000).top(2);
        assert_eq!(
            audit.file_paths(),
            vec![
                ".dockerignore",
                ".env",
                ".env.example",
                ".git/HEAD",
                ".git/objects/ab",
                "app.py",
                "cache/keep/k.txt",
                "certs/server.pem",
                "home/.aws/credentials",
            ]
        );
        assert_eq!(
            audit.dirs,
            vec![
                ".git",
                ".git/objects",
                "cache",
                "cache/keep",
                "certs",
                "home",
                "home/.aws"
            ]
        );
        assert_eq!(
            audit.total_bytes,
            10 + 3 + 3 + 5 + 1 + 4 + 6 + 7 + ignore.len() as u64
        );
        assert!(audit.large_files.is_empty());
        assert_eq!(audit.largest_files[0].path, ".dockerignore");
        assert_eq!(audit.largest_dirs[0].path, ".git");
        assert_eq!(audit.largest_dirs[0].files, 2);
        let secrets: Vec<(&str, SecretKind, &str)> = audit
            .secrets
            .iter()
            .map(|s| (s.path.as_str(), s.kind, s.fix.as_str()))
            .collect();
        assert_eq!(
            secrets,
            vec![
                (".env", SecretKind::EnvFile, "**/.env*"),
                (".git", SecretKind::GitDir, ".git"),
                ("certs/server.pem", SecretKind::PrivateKey, "**/*.pem"),
                (
                    "home/.aws/credentials",
                    SecretKind::AwsCredentials,
                    "**/.aws"
                ),
            ]
        );
        assert_eq!(audit.secrets[1].files, 2);
        assert_eq!(
            audit.warnings()[0],
            "environment file in the build context: .env (add `**/.env*` to .dockerignore)"
        );
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("b.txt"), "b").unwrap();
        std::fs::write(root.join(".dockerignore"), "a.txt\n").unwrap();
        std::fs::write(root.join("app.Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("app.Dockerfile.dockerignore"), "b.txt\n").unwrap();
        let dockerfile = root.join("app.Dockerfile");
        let audit = audit(root, Some(&dockerfile)).unwrap();
        assert!(audit.file_paths().contains(&"a.txt"));
        assert!(!audit.file_paths().contains(&"b.txt"));
        assert_eq!(
            audit.ignore_file.as_deref(),
            Some(root.join("app.Dockerfile.dockerignore").as_path())
        );
    }

    #[test]
    fn missing_context_is_an_error() {
        let err = audit(Path::new("/nonexistent/ctx"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "build context /nonexistent/ctx is not a directory (give the folder passed to `docker build`)"
        );
    }

    #[test]
    fn top_keeps_that_many_of_the_largest_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, n) in [("a/big.bin", 900), ("b/mid.bin", 500), ("c/small.bin", 100)] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![b'x'; n]).unwrap();
        }
        let files = |a: &ContextAudit| {
            a.largest_files
                .iter()
                .map(|f| f.path.clone())
                .collect::<Vec<_>>()
        };
        let dirs = |a: &ContextAudit| {
            a.largest_dirs
                .iter()
                .map(|d| d.path.clone())
                .collect::<Vec<_>>()
        };
        let all = audit(root, None).unwrap();
        assert_eq!(files(&all), ["a/big.bin", "b/mid.bin", "c/small.bin"]);
        let two = all.clone().top(2);
        assert_eq!(files(&two), ["a/big.bin", "b/mid.bin"]);
        assert_eq!(dirs(&two), ["a", "b"]);
        let none = all.clone().top(0);
        assert!(files(&none).is_empty() && dirs(&none).is_empty());
        assert_eq!(
            none.file_paths().len(),
            3,
            "top limits the lists, not the audit"
        );
        // Back up from none: the lists come from the files, not from the last ranking.
        assert_eq!(files(&none.top(2)), ["a/big.bin", "b/mid.bin"]);
    }
}
