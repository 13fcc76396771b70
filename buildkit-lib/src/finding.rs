//! One finding type for every check that points at a line: hadolint's lint and BuildKit's
//! build checks both answer with [`Finding`]s graded by one [`Level`].
//!
//! Before this module each checker had its own finding and level types and the pipeline
//! a third pair for its report; they carried the same facts (tool, rule, file, line,
//! message). A finding is now made once, by the checker, and goes unchanged into
//! `report.json` and into a GitHub Actions annotation ([`Finding::annotation`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How serious a finding is, least serious first (so `>=` reads "at least as serious").
/// The names are hadolint's; BuildKit's build checks are warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// Style suggestions.
    Style,
    /// Information (reports written before 0.2 said `notice`).
    #[serde(alias = "notice")]
    Info,
    /// Likely problems.
    Warning,
    /// Errors.
    Error,
}

impl Level {
    /// The level's name: `style`, `info`, `warning` or `error`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Style => "style",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The GitHub Actions workflow command that annotates at this level: style and
    /// information are notices.
    pub(crate) fn workflow_command(self) -> &'static str {
        match self {
            Level::Style | Level::Info => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Level> {
        Ok(match s {
            "style" => Level::Style,
            "info" => Level::Info,
            "warning" => Level::Warning,
            "error" => Level::Error,
            other => {
                anyhow::bail!("unknown level `{other}` (expected error, warning, info or style)")
            }
        })
    }
}

/// One finding of a check (hadolint, BuildKit's build checks), with its file and line:
/// what the checker returns, what `report.json` lists, and in GitHub Actions an
/// annotation on that line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// The tool that found it (`hadolint`, `buildkit`).
    pub(crate) tool: String,
    /// The rule (`DL3008`, `FromAsCasing`).
    pub rule: String,
    /// How serious it is.
    pub level: Level,
    /// The file, as the check was given it.
    pub file: String,
    /// The first line (1-based), when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u32>,
    /// The last line (1-based), when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) end_line: Option<u32>,
    /// What the tool says.
    pub message: String,
    /// The rule's documentation, when the tool gives it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) url: Option<String>,
}

impl Finding {
    /// A finding of `tool`'s `rule` at `level` in `file`, at `line` (1-based) when known.
    pub fn new(
        tool: impl Into<String>,
        rule: impl Into<String>,
        level: Level,
        file: impl Into<String>,
        line: Option<u32>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            tool: tool.into(),
            rule: rule.into(),
            level,
            file: file.into(),
            line,
            end_line: None,
            message: message.into(),
            url: None,
        }
    }

    /// The GitHub Actions workflow command that annotates it (`::warning file=...,
    /// line=...,title=...::message`), `file` made relative to `workspace` when it is
    /// inside it (GitHub places annotations by repository path).
    pub fn annotation(&self, workspace: Option<&Path>) -> String {
        use crate::pipeline::report::{escape_data, escape_property};
        let path = Path::new(&self.file);
        let file = workspace
            .and_then(|w| path.strip_prefix(w).ok())
            .unwrap_or(path)
            .display()
            .to_string();
        let mut properties = vec![format!("file={}", escape_property(&file))];
        if let Some(line) = self.line {
            properties.push(format!("line={line}"));
            if let Some(end) = self.end_line.filter(|e| *e > line) {
                properties.push(format!("endLine={end}"));
            }
        }
        properties.push(format!(
            "title={}",
            escape_property(&format!("{} {}", self.tool, self.rule))
        ));
        let mut message = self.message.clone();
        if let Some(url) = &self.url {
            message.push_str(&format!(" ({url})"));
        }
        format!(
            "::{} {}::{}",
            self.level.workflow_command(),
            properties.join(","),
            escape_data(&message)
        )
    }
}

impl fmt::Display for Finding {
    /// `file:line rule level: message (url)`, the line and the url when known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, " {} {}: {}", self.rule, self.level, self.message)?;
        if let Some(url) = &self.url {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_parse_and_map_to_workflow_commands() {
        assert!(Level::Style < Level::Info && Level::Info < Level::Warning);
        assert!(Level::Warning < Level::Error);
        for level in [Level::Style, Level::Info, Level::Warning, Level::Error] {
            assert_eq!(level.to_string().parse::<Level>().unwrap(), level);
        }
        assert!("fatal".parse::<Level>().is_err());
        assert_eq!(Level::Style.workflow_command(), "notice");
        assert_eq!(Level::Info.workflow_command(), "notice");
        assert_eq!(Level::Warning.workflow_command(), "warning");
        assert_eq!(Level::Error.workflow_command(), "error");
        // Reports written with the old three-level names still load.
        let old: Level = serde_json::from_str("\"notice\"").unwrap();
        assert_eq!(old, Level::Info);
    }

    #[test]
    fn a_finding_displays_with_and_without_a_line() {
        let f = Finding::new(
            "hadolint",
            "DL3008",
            Level::Warning,
            "Dockerfile",
            Some(4),
            "Pin",
        );
        assert_eq!(f.to_string(), "Dockerfile:4 DL3008 warning: Pin");
        let mut g = Finding::new("buildkit", "X", Level::Warning, "a/Dockerfile", None, "m");
        g.url = Some("https://docs/x".into());
        assert_eq!(g.to_string(), "a/Dockerfile X warning: m (https://docs/x)");
        assert_eq!(
            g.annotation(Some(Path::new("a"))),
            "::warning file=Dockerfile,title=buildkit X::m (https://docs/x)"
        );
    }
}
