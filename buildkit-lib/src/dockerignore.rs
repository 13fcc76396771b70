//! `.dockerignore` exactly as Docker reads it.
//!
//! [`IgnoreRules`] reproduces moby/patternmatcher's `ignorefile` reader and pattern
//! compiler (with a port of Go's `path.Clean`), and answers what BuildKit's fsutil walk
//! asks of them: is this path excluded, given its parent's answer, and may a whole
//! excluded directory be skipped. `ignore_file_for` picks the file BuildKit uses. The
//! context audit and the build fingerprints walk contexts with these rules.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The name of the ignore file at the root of a build context.
pub const DOCKERIGNORE: &str = ".dockerignore";

// ---------------------------------------------------------------------------------------
// Patterns

/// One pattern of a `.dockerignore` file, normalised the way Docker does it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IgnorePattern {
    /// The pattern the matcher uses: cleaned like Go's `filepath.Clean`, without the
    /// leading `/` and without the `!`.
    pub(crate) pattern: String,
    /// A `!` line: re-includes what earlier lines excluded.
    pub(crate) exception: bool,
    /// The 1-based line of the ignore file it came from (0 when not read from a file).
    pub(crate) line: usize,
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
    pub(crate) fn matches(&self, path: &str) -> bool {
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
    pub(crate) fn as_line(&self) -> String {
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
pub(crate) fn go_clean(path: &str) -> String {
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
    pub(crate) fn parse(text: &str) -> Result<IgnoreRules> {
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
    pub(crate) fn read(path: &Path) -> Result<IgnoreRules> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        IgnoreRules::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Compiles patterns as given (like `patternmatcher.New`: trimmed, cleaned, `!` for an
    /// exception), without the ignore file's reading rules.
    #[cfg(test)]
    pub(crate) fn from_patterns<I, S>(patterns: I) -> Result<IgnoreRules>
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
    pub(crate) fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// True when nothing is excluded.
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// These rules with one more pattern at the end (it wins over every earlier line).
    pub(crate) fn with_pattern(&self, pattern: &str) -> Result<IgnoreRules> {
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
    pub(crate) fn is_excluded(&self, path: &str) -> bool {
        let path = go_clean(path);
        if path == "." {
            return false;
        }
        self.matches_using_parent(&path, &[], &mut Vec::new()).0
    }

    /// The pattern that decided `path`'s fate (the last one that matched it among those
    /// evaluated), if any.
    #[cfg(test)]
    pub(crate) fn deciding_pattern(&self, path: &str) -> Option<&IgnorePattern> {
        let path = go_clean(path);
        self.matches_using_parent(&path, &[], &mut Vec::new())
            .1
            .map(|i| &self.patterns[i])
    }

    /// patternmatcher's `MatchesUsingParentResults`: `parent` holds, per pattern, whether it
    /// matched the parent directory (empty for a top-level path or when unknown, in which
    /// case the parent directories are checked one by one); `info` receives this path's
    /// results for its children. Returns whether it is excluded and the deciding pattern.
    pub(crate) fn matches_using_parent(
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
    pub(crate) fn can_skip_dir(&self, dir: &str) -> bool {
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

/// The ignore file BuildKit uses for `context` and `dockerfile`: `<Dockerfile>.dockerignore`
/// when it exists, else the context's `.dockerignore`, else none.
pub(crate) fn ignore_file_for(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
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
}
