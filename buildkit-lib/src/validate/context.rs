//! Build context audit: which files the engine receives, how big they are, and which of
//! them look like secrets.
//!
//! [`IgnoreRules`] reproduces Docker's `.dockerignore` handling exactly (the reader of
//! moby/patternmatcher's `ignorefile`, its pattern compiler, and the walk of BuildKit's
//! fsutil with its parent-match inheritance and directory pruning); [`audit`] walks a
//! context directory with them and returns a [`ContextAudit`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::units::human_bytes;

/// The name of the ignore file at the root of a build context.
pub const DOCKERIGNORE: &str = ".dockerignore";

// ---------------------------------------------------------------------------------------
// Patterns

/// One pattern of a `.dockerignore` file, normalised the way Docker does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The pattern the matcher uses: cleaned like Go's `filepath.Clean`, without the
    /// leading `/` and without the `!`.
    pub pattern: String,
    /// A `!` line: re-includes what earlier lines excluded.
    pub exception: bool,
    /// The 1-based line of the ignore file it came from (0 when not read from a file).
    pub line: usize,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `foo/**`: the path starts with `foo/`.
    Prefix(String),
    /// `**/foo` (only literals after it): the path ends with `/foo` or is `foo`.
    Suffix(String),
    /// Anything else, matched like the regular expression patternmatcher builds.
    Glob(Vec<Tok>),
}

/// A piece of the regular expression patternmatcher compiles a pattern to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: `[^/]`
    One,
    /// `*`: `[^/]*`
    Star,
    /// `**/` (or `**` before more pattern): `(.*/)?`
    Dirs,
    /// `**` at the end: `.*`
    Tail,
    /// `[...]`, ranges inclusive; a negated class matches `/` too (it is a regex class).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl IgnorePattern {
    /// Compiles one pattern the way `patternmatcher.New` does (`line` is for reports).
    fn compile(raw: &str, line: usize) -> Result<Option<IgnorePattern>> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let mut pattern = go_clean(trimmed);
        let mut exception = false;
        if let Some(rest) = pattern.strip_prefix('!') {
            if rest.is_empty() {
                bail!("illegal exclusion pattern: \"!\" (line {line})");
            }
            exception = true;
            pattern = rest.to_string();
        }
        let kind = compile_kind(&pattern)
            .with_context(|| format!("bad .dockerignore pattern `{raw}` (line {line})"))?;
        Ok(Some(IgnorePattern {
            pattern,
            exception,
            line,
            kind,
        }))
    }

    /// Whether this pattern matches `path` itself (a `/`-separated relative path), without
    /// looking at parent directories.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.pattern,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Glob(toks) => match_toks(toks, path),
        }
    }

    /// The pattern as written in a `.dockerignore` line (with `!` for an exception).
    pub fn as_line(&self) -> String {
        if self.exception {
            format!("!{}", self.pattern)
        } else {
            self.pattern.clone()
        }
    }

    /// fsutil's `patternWithoutTrailingGlob`: the pattern without a trailing `/**` or `/*`.
    fn without_trailing_glob(&self) -> &str {
        let p = self.pattern.as_str();
        let p = p.strip_suffix("/**").unwrap_or(p);
        p.strip_suffix("/*").unwrap_or(p)
    }
}

/// patternmatcher's `compile`: decides the match type and builds the regex pieces.
fn compile_kind(pattern: &str) -> Result<Kind> {
    #[derive(PartialEq, Clone, Copy)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut detected = Detected::Exact;
    let mut pos = 0;
    let mut iteration = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::Tail);
                        detected = Detected::Glob;
                    }
                } else {
                    toks.push(Tok::Dirs);
                    detected = Detected::Glob;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Glob;
            }
            '?' => {
                toks.push(Tok::One);
                detected = Detected::Glob;
            }
            '\\' => {
                if pos < chars.len() {
                    toks.push(Tok::Lit(chars[pos]));
                    pos += 1;
                    detected = Detected::Glob;
                } else {
                    toks.push(Tok::Lit('\\'));
                }
            }
            '[' => {
                let (class, next) = parse_class(&chars, pos)?;
                toks.push(class);
                pos = next;
                detected = Detected::Glob;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                detected = Detected::Glob;
            }
            c => toks.push(Tok::Lit(c)),
        }
        iteration += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Glob => Kind::Glob(toks),
    })
}

/// Parses a character class starting after its `[`; returns it and the position after
/// its `]`.
fn parse_class(chars: &[char], mut pos: usize) -> Result<(Tok, usize)> {
    let mut negated = false;
    if chars.get(pos) == Some(&'^') {
        negated = true;
        pos += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(pos) else {
            bail!("syntax error in pattern: missing `]`");
        };
        if c == ']' && !first {
            return Ok((Tok::Class { negated, ranges }, pos + 1));
        }
        first = false;
        let (lo, next) = class_char(chars, pos)?;
        pos = next;
        let mut hi = lo;
        if chars.get(pos) == Some(&'-') && chars.get(pos + 1).is_some_and(|&n| n != ']') {
            let (h, next) = class_char(chars, pos + 1)?;
            if h < lo {
                bail!("syntax error in pattern: bad range `{lo}-{h}`");
            }
            hi = h;
            pos = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], pos: usize) -> Result<(char, usize)> {
    match chars.get(pos) {
        Some('\\') => match chars.get(pos + 1) {
            Some(&c) => Ok((c, pos + 2)),
            None => bail!("syntax error in pattern: trailing `\\`"),
        },
        Some(&c) => Ok((c, pos + 1)),
        None => bail!("syntax error in pattern: missing `]`"),
    }
}

fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
    inside != negated
}

/// Anchored match of the regex pieces against `s` (backtracking; paths are short).
fn match_toks(toks: &[Tok], s: &str) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match tok {
        Tok::Lit(c) => s
            .strip_prefix(*c)
            .is_some_and(|after| match_toks(rest, after)),
        Tok::One => match s.chars().next() {
            Some(c) if c != '/' => match_toks(rest, &s[c.len_utf8()..]),
            _ => false,
        },
        Tok::Class { negated, ranges } => match s.chars().next() {
            Some(c) if class_matches(*negated, ranges, c) => match_toks(rest, &s[c.len_utf8()..]),
            _ => false,
        },
        Tok::Star => {
            let mut at = 0;
            loop {
                if match_toks(rest, &s[at..]) {
                    return true;
                }
                match s[at..].chars().next() {
                    Some(c) if c != '/' => at += c.len_utf8(),
                    _ => return false,
                }
            }
        }
        Tok::Dirs => {
            match_toks(rest, s)
                || s.match_indices('/')
                    .any(|(i, _)| match_toks(rest, &s[i + 1..]))
        }
        Tok::Tail => {
            rest.is_empty()
                || s.char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(s.len()))
                    .any(|i| match_toks(rest, &s[i..]))
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|&p| p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

// ---------------------------------------------------------------------------------------
// Rules

/// The compiled patterns of one `.dockerignore` file, in order (the last match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    patterns: Vec<IgnorePattern>,
    exceptions: bool,
    only_prefix_exceptions: bool,
}

impl IgnoreRules {
    /// Reads `.dockerignore` text the way Docker does: a UTF-8 BOM is dropped, a line
    /// starting with `#` (in its first column) is a comment, lines are trimmed, empty ones
    /// skipped, each pattern is cleaned like `filepath.Clean`, and a leading `/` is removed
    /// (`!` kept in front).
    pub fn parse(text: &str) -> Result<IgnoreRules> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = go_clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if invert {
                cleaned.insert(0, '!');
            }
            lines.push((cleaned, index + 1));
        }
        IgnoreRules::compile(lines)
    }

    /// Reads and parses an ignore file.
    pub fn read(path: &Path) -> Result<IgnoreRules> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        IgnoreRules::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Compiles patterns as given (like `patternmatcher.New`: trimmed, cleaned, `!` for an
    /// exception), without the ignore file's reading rules.
    pub fn from_patterns<I, S>(patterns: I) -> Result<IgnoreRules>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        IgnoreRules::compile(
            patterns
                .into_iter()
                .map(|p| (p.as_ref().to_string(), 0))
                .collect(),
        )
    }

    fn compile(lines: Vec<(String, usize)>) -> Result<IgnoreRules> {
        let mut patterns = Vec::new();
        for (raw, line) in lines {
            if let Some(p) = IgnorePattern::compile(&raw, line)? {
                patterns.push(p);
            }
        }
        let exceptions = patterns.iter().any(|p| p.exception);
        let only_prefix_exceptions = patterns.iter().filter(|p| p.exception).all(|p| {
            !p.without_trailing_glob()
                .contains(['*', '[', ']', '?', '^', '\\'])
        });
        Ok(IgnoreRules {
            patterns,
            exceptions,
            only_prefix_exceptions,
        })
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// True when nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// These rules with one more pattern at the end (it wins over every earlier line).
    pub fn with_pattern(&self, pattern: &str) -> Result<IgnoreRules> {
        let mut lines: Vec<(String, usize)> = self
            .patterns
            .iter()
            .map(|p| (p.as_line(), p.line))
            .collect();
        lines.push((pattern.to_string(), 0));
        IgnoreRules::compile(lines)
    }

    /// Whether `path` (relative, `/`-separated) is excluded, a parent directory matching a
    /// pattern counting as a match (patternmatcher's `MatchesOrParentMatches`).
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = go_clean(path);
        if path == "." {
            return false;
        }
        self.matches_using_parent(&path, &[], &mut Vec::new()).0
    }

    /// The pattern that decided `path`'s fate (the last one that matched it among those
    /// evaluated), if any.
    pub fn deciding_pattern(&self, path: &str) -> Option<&IgnorePattern> {
        let path = go_clean(path);
        self.matches_using_parent(&path, &[], &mut Vec::new())
            .1
            .map(|i| &self.patterns[i])
    }

    /// patternmatcher's `MatchesUsingParentResults`: `parent` holds, per pattern, whether it
    /// matched the parent directory (empty for a top-level path or when unknown, in which
    /// case the parent directories are checked one by one); `info` receives this path's
    /// results for its children. Returns whether it is excluded and the deciding pattern.
    fn matches_using_parent(
        &self,
        path: &str,
        parent: &[bool],
        info: &mut Vec<bool>,
    ) -> (bool, Option<usize>) {
        info.clear();
        info.resize(self.patterns.len(), false);
        let mut matched = false;
        let mut decided = None;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = !parent.is_empty() && parent[i];
            if !hit {
                // Skip an inclusion once excluded, and an exception while not excluded.
                if pattern.exception != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && parent.is_empty() {
                    hit = path
                        .match_indices('/')
                        .any(|(at, _)| pattern.matches(&path[..at]));
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exception;
                decided = Some(i);
            }
        }
        (matched, decided)
    }

    /// fsutil's shortcut: an excluded directory is not entered when no exception could
    /// re-include anything beneath it.
    fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.only_prefix_exceptions {
            return false;
        }
        if !self.exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        !self
            .patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }
}

// ---------------------------------------------------------------------------------------
// Audit

/// What to audit and what to flag.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The Dockerfile (as passed to `-f`): a `<Dockerfile>.dockerignore` beside it takes
    /// precedence over the context's `.dockerignore`, as in BuildKit.
    pub dockerfile: Option<PathBuf>,
    /// Files at least this big are listed in [`ContextAudit::large_files`].
    pub large_file_bytes: u64,
    /// How many of the largest files and directories to keep.
    pub top: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            dockerfile: None,
            large_file_bytes: 10 * 1024 * 1024,
            top: 10,
        }
    }
}

/// What kind of entry the engine receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A symbolic link (sent as a link, never followed).
    Symlink,
    /// A socket, device or pipe.
    Other,
}

/// One non-directory entry of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the context root, `/`-separated, for display and matching (a
    /// name that is not UTF-8 shows U+FFFD for its bad bytes).
    pub path: String,
    /// The same path byte for byte, as the file system has it (names need not be UTF-8).
    pub os_path: std::path::PathBuf,
    /// Size in bytes (a symlink counts the length of its target).
    pub bytes: u64,
    /// File, symlink or other.
    pub kind: EntryKind,
    /// The walk's `lstat` of it, so fingerprints need not stat it again.
    pub(crate) stat: Option<crate::files::FileStat>,
}

/// A directory and everything the context holds beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirUsage {
    /// Path relative to the context root.
    pub path: String,
    /// Bytes of all files beneath it.
    pub bytes: u64,
    /// Number of files beneath it.
    pub files: usize,
}

/// A family of files that should not reach a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretKind {
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
    pub fn describe(self) -> &'static str {
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
pub struct SecretFinding {
    /// The file (or, for a `.git` directory, the directory) relative to the context.
    pub path: String,
    /// What it looks like.
    pub kind: SecretKind,
    /// Files it stands for (1, or the files of a `.git` directory).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// A `.dockerignore` line that excludes it when appended (checked with the matcher).
    pub fix: String,
}

/// The build context as the engine will receive it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ContextAudit {
    /// The context directory.
    pub root: PathBuf,
    /// The ignore file used, if any.
    pub ignore_file: Option<PathBuf>,
    /// The rules read from it.
    pub rules: IgnoreRules,
    /// Every file, symlink and special file sent, sorted by path.
    pub files: Vec<ContextFile>,
    /// Every directory sent (including excluded ones that hold a re-included file),
    /// sorted by path.
    pub dirs: Vec<String>,
    /// Sum of [`ContextFile::bytes`].
    pub total_bytes: u64,
    /// The largest files, biggest first.
    pub largest_files: Vec<ContextFile>,
    /// The directories holding the most bytes (cumulative), biggest first.
    pub largest_dirs: Vec<DirUsage>,
    /// Files at or above [`AuditOptions::large_file_bytes`], biggest first.
    pub large_files: Vec<ContextFile>,
    /// The threshold used for `large_files`.
    pub large_file_bytes: u64,
    /// Likely secrets that would be sent, by path.
    pub secrets: Vec<SecretFinding>,
    /// How long the walk took.
    pub elapsed: Duration,
}

impl ContextAudit {
    /// Number of non-directory entries sent.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The paths of the files sent, sorted.
    pub fn file_paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
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

/// The ignore file BuildKit uses for `context` and `dockerfile`: `<Dockerfile>.dockerignore`
/// when it exists, else the context's `.dockerignore`, else none.
pub fn ignore_file_for(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile {
        let mut specific = df.as_os_str().to_owned();
        specific.push(".dockerignore");
        let specific = PathBuf::from(specific);
        if specific.is_file() {
            return Some(specific);
        }
    }
    let root = context.join(DOCKERIGNORE);
    root.is_file().then_some(root)
}

struct OpenDir {
    depth: usize,
    path: String,
    info: Vec<bool>,
    sent: bool,
}

/// Walks `context` with its ignore rules and reports what the engine would receive.
pub fn audit(context: &Path, options: &AuditOptions) -> Result<ContextAudit> {
    let started = Instant::now();
    let (ignore_file, rules, files, dirs) = sent(context, options.dockerfile.as_deref())?;
    let total_bytes = files.iter().map(|f| f.bytes).sum();

    let mut by_size: Vec<&ContextFile> = files.iter().collect();
    by_size.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    let largest_files = by_size
        .iter()
        .take(options.top)
        .map(|f| (*f).clone())
        .collect();
    let large_files = by_size
        .iter()
        .take_while(|f| f.bytes >= options.large_file_bytes)
        .map(|f| (*f).clone())
        .collect();
    let largest_dirs = largest_dirs(&files, options.top);
    let secrets = find_secrets(&rules, &files);
    Ok(ContextAudit {
        root: context.to_path_buf(),
        ignore_file,
        rules,
        files,
        dirs,
        total_bytes,
        largest_files,
        largest_dirs,
        large_files,
        large_file_bytes: options.large_file_bytes,
        secrets,
        elapsed: started.elapsed(),
    })
}

/// What the engine receives from `context` (built with `dockerfile`): the ignore file
/// used, its rules, the files and the directories, each sorted by path. The fingerprint
/// of a build context is made from this alone (no sizes ranking, no secret search).
#[allow(clippy::type_complexity)]
pub(crate) fn sent(
    context: &Path,
    dockerfile: Option<&Path>,
) -> Result<(Option<PathBuf>, IgnoreRules, Vec<ContextFile>, Vec<String>)> {
    if !context.is_dir() {
        bail!(
            "build context {} is not a directory (give the folder passed to `docker build`)",
            context.display()
        );
    }
    let ignore_file = ignore_file_for(context, dockerfile);
    let rules = match &ignore_file {
        Some(path) => IgnoreRules::read(path)?,
        None => IgnoreRules::default(),
    };
    let (mut files, mut dirs) = walk(context, &rules)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    dirs.sort_unstable();
    Ok((ignore_file, rules, files, dirs))
}

/// The walk of fsutil's filtered file system: every entry is matched with its parent's
/// results, an excluded directory is pruned when no exception can reach beneath it, and an
/// excluded directory holding a re-included entry is sent as well.
fn walk(context: &Path, rules: &IgnoreRules) -> Result<(Vec<ContextFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut open: Vec<OpenDir> = Vec::new();
    let mut info = Vec::new();
    let mut entries = walkdir::WalkDir::new(context).min_depth(1).into_iter();
    while let Some(entry) = entries.next() {
        let entry = entry.with_context(|| format!("cannot walk {}", context.display()))?;
        let depth = entry.depth();
        while open.last().is_some_and(|d| d.depth >= depth) {
            open.pop();
        }
        let rel = entry
            .path()
            .strip_prefix(context)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let is_dir = entry.file_type().is_dir();
        let excluded = !rules.is_empty() && {
            let parent = open.last().map(|d| d.info.as_slice()).unwrap_or(&[]);
            rules.matches_using_parent(&rel, parent, &mut info).0
        };
        if excluded {
            if is_dir {
                if rules.can_skip_dir(&rel) {
                    entries.skip_current_dir();
                } else {
                    open.push(OpenDir {
                        depth,
                        path: rel,
                        info: std::mem::take(&mut info),
                        sent: false,
                    });
                }
            }
            continue;
        }
        for dir in open.iter_mut().filter(|d| !d.sent) {
            dir.sent = true;
            dirs.push(dir.path.clone());
        }
        if is_dir {
            dirs.push(rel.clone());
            open.push(OpenDir {
                depth,
                path: rel,
                info: std::mem::take(&mut info),
                sent: true,
            });
            continue;
        }
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let ft = entry.file_type();
        let kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        files.push(ContextFile {
            path: rel,
            os_path: entry
                .path()
                .strip_prefix(context)
                .unwrap_or(entry.path())
                .to_path_buf(),
            bytes: meta.len(),
            kind,
            stat: Some(crate::files::FileStat::of(&meta)),
        });
    }
    Ok((files, dirs))
}

fn largest_dirs(files: &[ContextFile], top: usize) -> Vec<DirUsage> {
    let mut usage: HashMap<&str, (u64, usize)> = HashMap::new();
    for file in files {
        let mut path = file.path.as_str();
        while let Some(slash) = path.rfind('/') {
            path = &file.path[..slash];
            let slot = usage.entry(path).or_default();
            slot.0 += file.bytes;
            slot.1 += 1;
        }
    }
    let mut dirs: Vec<DirUsage> = usage
        .into_iter()
        .map(|(path, (bytes, files))| DirUsage {
            path: path.to_string(),
            bytes,
            files,
        })
        .collect();
    dirs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    dirs.truncate(top);
    dirs
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

fn find_secrets(rules: &IgnoreRules, files: &[ContextFile]) -> Vec<SecretFinding> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], path: &str) -> bool {
        IgnoreRules::from_patterns(patterns)
            .unwrap()
            .is_excluded(path)
    }

    #[test]
    fn clean_matches_go() {
        assert_eq!(go_clean("a//b/./c/.."), "a/b");
        assert_eq!(go_clean("/../x/"), "/x");
        assert_eq!(go_clean("../../a"), "../../a");
        assert_eq!(go_clean("a/.."), ".");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_clean("/"), "/");
    }

    #[test]
    fn reads_the_file_like_docker() {
        let rules = IgnoreRules::parse(
            "\u{feff}# comment\n  # not a comment\n\n  /abs/path/  \n!  keep.txt\nsub/../x\n/\n",
        )
        .unwrap();
        let lines: Vec<(String, usize)> = rules
            .patterns()
            .iter()
            .map(|p| (p.as_line(), p.line))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("# not a comment".to_string(), 2),
                ("abs/path".to_string(), 4),
                ("!keep.txt".to_string(), 5),
                ("x".to_string(), 6),
                ("/".to_string(), 7),
            ]
        );
        let err = IgnoreRules::parse("a\n!\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "illegal exclusion pattern: \"!\" (line 2)"
        );
        let err = IgnoreRules::parse("[abc\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "bad .dockerignore pattern `[abc` (line 1): syntax error in pattern: missing `]`"
        );
    }

    #[test]
    fn docker_docs_examples() {
        // `*/temp*`: one level down only.
        assert!(excluded(&["*/temp*"], "somedir/temporary.txt"));
        assert!(excluded(&["*/temp*"], "somedir/temp"));
        assert!(!excluded(&["*/temp*"], "temp.txt"));
        assert!(!excluded(&["*/temp*"], "a/b/temp.txt"));
        // `*/*/temp*`: two levels down.
        assert!(excluded(&["*/*/temp*"], "a/b/temporary.txt"));
        assert!(!excluded(&["*/*/temp*"], "a/temporary.txt"));
        // `temp?`: one character.
        assert!(excluded(&["temp?"], "tempa"));
        assert!(!excluded(&["temp?"], "tempab"));
        assert!(!excluded(&["temp?"], "temp"));
        // `**/*.go` anywhere, including the root.
        assert!(excluded(&["**/*.go"], "main.go"));
        assert!(excluded(&["**/*.go"], "a/b/c.go"));
        // Exceptions: the last match wins.
        assert!(excluded(&["*.md", "!README.md"], "CHANGES.md"));
        assert!(!excluded(&["*.md", "!README.md"], "README.md"));
        let three = ["*.md", "!README*.md", "README-secret.md"];
        assert!(excluded(&three, "README-secret.md"));
        assert!(!excluded(&three, "README-public.md"));
        let three = ["*.md", "README-secret.md", "!README*.md"];
        assert!(!excluded(&three, "README-secret.md"));
    }

    #[test]
    fn directories_and_parents() {
        // A matching directory excludes everything beneath it.
        assert!(excluded(&["build"], "build/x/y.txt"));
        assert!(!excluded(&["build"], "src/build"));
        assert!(!excluded(&["build"], "builder"));
        // A trailing slash is cleaned away; a leading one was removed by the reader.
        assert!(IgnoreRules::parse("/node_modules/\n")
            .unwrap()
            .is_excluded("node_modules/a/b.js"));
        // `**` alone, as prefix, as suffix, in the middle.
        assert!(excluded(&["**"], "anything/at/all"));
        assert!(excluded(&["docs/**"], "docs/a/b"));
        assert!(!excluded(&["docs/**"], "docs"));
        assert!(excluded(&["**/__pycache__"], "__pycache__"));
        assert!(excluded(&["**/__pycache__"], "a/b/__pycache__/m.pyc"));
        assert!(excluded(&["a/**/z"], "a/z"));
        assert!(excluded(&["a/**/z"], "a/b/c/z"));
        assert!(!excluded(&["a/**/z"], "a/bz"));
        // patternmatcher quirk: `**` not followed by `/` still means `(.*/)?`.
        assert!(excluded(&["a**b"], "a/x/b"));
        assert!(!excluded(&["a**b"], "axb"));
        // `foo**` is a plain prefix match.
        assert!(excluded(&["foo**"], "foobar/x"));
        // Classes, ranges, negation, escapes.
        assert!(excluded(&["file[0-9].txt"], "file7.txt"));
        assert!(!excluded(&["file[0-9].txt"], "filex.txt"));
        assert!(excluded(&["file[^0-9].txt"], "filex.txt"));
        assert!(excluded(&["[]]x"], "]x"));
        assert!(excluded(&["a\\*b"], "a*b"));
        assert!(!excluded(&["a\\*b"], "axb"));
        // Regex metacharacters are literal.
        assert!(excluded(&["a.(b)+c"], "a.(b)+c"));
        assert!(!excluded(&["*.py"], "xpy"));
        // An excluded directory re-included by an exception, and excluded again below.
        let rules = ["data", "!data/keep", "data/keep/tmp"];
        assert!(excluded(&rules, "data/x"));
        assert!(!excluded(&rules, "data/keep/a.txt"));
        assert!(excluded(&rules, "data/keep/tmp/z"));
        // The context root itself is never excluded.
        assert!(!excluded(&["**"], "."));
    }

    #[test]
    fn deciding_pattern_names_the_line() {
        let rules = IgnoreRules::parse("*.log\n!keep.log\n").unwrap();
        assert_eq!(rules.deciding_pattern("a.log").map(|p| p.line), Some(1));
        assert_eq!(rules.deciding_pattern("keep.log").map(|p| p.line), Some(2));
        assert_eq!(rules.deciding_pattern("a.txt"), None);
    }

    #[test]
    fn pruning_is_only_for_prefix_exceptions() {
        let rules = IgnoreRules::from_patterns(["a", "!a/b/**"]).unwrap();
        assert!(!rules.can_skip_dir("a"));
        assert!(rules.can_skip_dir("c"));
        let rules = IgnoreRules::from_patterns(["a", "!**/keep"]).unwrap();
        assert!(!rules.can_skip_dir("c"));
        let rules = IgnoreRules::from_patterns(["a"]).unwrap();
        assert!(rules.can_skip_dir("a"));
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
        let audit = audit(
            root,
            &AuditOptions {
                large_file_bytes: 1000,
                top: 2,
                ..AuditOptions::default()
            },
        )
        .unwrap();
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
        let options = AuditOptions {
            dockerfile: Some(root.join("app.Dockerfile")),
            ..AuditOptions::default()
        };
        let audit = audit(root, &options).unwrap();
        assert!(audit.file_paths().contains(&"a.txt"));
        assert!(!audit.file_paths().contains(&"b.txt"));
        assert_eq!(
            audit.ignore_file.as_deref(),
            Some(root.join("app.Dockerfile.dockerignore").as_path())
        );
    }

    #[test]
    fn missing_context_is_an_error() {
        let err = audit(Path::new("/nonexistent/ctx"), &AuditOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "build context /nonexistent/ctx is not a directory (give the folder passed to `docker build`)"
        );
    }
}
