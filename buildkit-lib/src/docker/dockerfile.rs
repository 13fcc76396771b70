//! Reading a Dockerfile's build stages (`FROM image AS name`) and instructions, for
//! pre-flight checks and for explaining which instruction BuildKit rebuilt.
//!
//! Only as much of the Dockerfile grammar as finding stages needs: parser directives
//! (`# escape=`), comments, line continuations, here-documents and `FROM` flags. Stage
//! names are case-insensitive, as BuildKit treats them.

use std::path::Path;

use anyhow::Context;

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerfileStage {
    /// Position of the stage, from 0 (usable as `--target`-like `COPY --from=0`).
    pub(crate) index: usize,
    /// The stage name after `AS`, lower-cased; `None` for an unnamed stage.
    pub(crate) name: Option<String>,
    /// The base image as written (`${PYTHON_IMAGE}`, `scratch`, another stage's name).
    pub(crate) base: String,
    /// `--platform=...` of the `FROM`, when given.
    pub(crate) platform: Option<String>,
    /// 1-based line number of the `FROM`.
    pub(crate) line: usize,
    /// The build args the stage declares (`ARG NAME[=default]`), with their lines.
    pub(crate) args: Vec<(String, usize)>,
    /// The lines of the stage's `RUN` instructions.
    pub(crate) runs: Vec<usize>,
    /// The stage's instructions after its `FROM`, in order.
    pub(crate) instructions: Vec<DockerfileInstruction>,
}

impl DockerfileStage {
    /// True when a `RUN` of this stage runs before the stage declares `arg`: build args
    /// reach `RUN` steps only once declared in the stage (`SOURCE_DATE_EPOCH` included).
    pub(crate) fn runs_without_arg(&self, arg: &str) -> bool {
        let declared = self
            .args
            .iter()
            .filter(|(name, _)| name == arg)
            .map(|(_, line)| *line)
            .min();
        self.runs
            .iter()
            .any(|run| declared.is_none_or(|d| d > *run))
    }
}

/// Reads the stages of the Dockerfile at `path`.
pub fn read_stages(path: &Path) -> anyhow::Result<Vec<DockerfileStage>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read Dockerfile {}", path.display()))?;
    Ok(stages(&text))
}

/// One instruction of a Dockerfile: its keyword, its text as one logical line, and where
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerfileInstruction {
    /// The keyword, upper-cased (`RUN`, `COPY`, `FROM`, ...).
    pub(crate) keyword: String,
    /// The whole instruction, keyword included, continuation lines joined with single
    /// spaces (comments inside dropped) and runs of white space collapsed; a
    /// here-document's body follows on its own lines.
    pub(crate) text: String,
    /// 1-based line number of its first line.
    pub(crate) line: usize,
}

impl DockerfileInstruction {
    /// The instruction after its keyword (flags included).
    pub(crate) fn args(&self) -> &str {
        self.text
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest.lines().next().unwrap_or("").trim())
    }
}

/// Every instruction of a Dockerfile's text, in order, `FROM`s included.
pub fn instructions(text: &str) -> Vec<DockerfileInstruction> {
    let escape = escape_char(text);
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let first_line = index + 1;
        // Join continuation lines; comment lines inside a continuation are dropped.
        let mut logical = String::new();
        let mut current = raw.trim_end().to_string();
        loop {
            match current.strip_suffix(escape) {
                Some(head) => {
                    logical.push_str(head);
                    logical.push(' ');
                    let mut next = None;
                    for (_, l) in lines.by_ref() {
                        let t = l.trim_start();
                        if t.starts_with('#') {
                            continue;
                        }
                        next = Some(l.trim_end().to_string());
                        break;
                    }
                    match next {
                        Some(n) => current = n,
                        None => break,
                    }
                }
                None => {
                    logical.push_str(&current);
                    break;
                }
            }
        }
        let mut text = logical.split_whitespace().collect::<Vec<_>>().join(" ");
        // Here-document bodies (`RUN <<EOF ... EOF`) belong to the instruction.
        for terminator in heredoc_terminators(&logical) {
            for (_, l) in lines.by_ref() {
                text.push('\n');
                text.push_str(l);
                if l.trim() == terminator {
                    break;
                }
            }
        }
        let Some(keyword) = text.split_whitespace().next() else {
            continue;
        };
        out.push(DockerfileInstruction {
            keyword: keyword.to_ascii_uppercase(),
            text: text.clone(),
            line: first_line,
        });
    }
    out
}

/// The stages of a Dockerfile's text, in order.
pub fn stages(text: &str) -> Vec<DockerfileStage> {
    let mut out: Vec<DockerfileStage> = Vec::new();
    for instruction in instructions(text) {
        let first_line = instruction.line;
        let logical = instruction.text.lines().next().unwrap_or("");
        let mut words = logical.split_whitespace();
        words.next();
        if instruction.keyword != "FROM" {
            let Some(stage) = out.last_mut() else {
                continue;
            };
            if instruction.keyword == "RUN" {
                stage.runs.push(first_line);
            } else if instruction.keyword == "ARG" {
                for word in words {
                    let name = word.split('=').next().unwrap_or(word);
                    stage.args.push((name.to_string(), first_line));
                }
            }
            stage.instructions.push(instruction);
            continue;
        }
        let mut platform = None;
        let mut rest: Vec<&str> = Vec::new();
        for w in words {
            if rest.is_empty() && w.starts_with("--") {
                if let Some(p) = w.strip_prefix("--platform=") {
                    platform = Some(p.to_string());
                }
                continue;
            }
            rest.push(w);
        }
        let Some(base) = rest.first() else {
            continue;
        };
        let name = match rest.as_slice() {
            [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("AS") => {
                Some(name.to_ascii_lowercase())
            }
            _ => None,
        };
        out.push(DockerfileStage {
            index: out.len(),
            name,
            base: base.to_string(),
            platform,
            line: first_line,
            args: Vec::new(),
            runs: Vec::new(),
            instructions: Vec::new(),
        });
    }
    out
}

/// The escape character from a `# escape=` parser directive (default `\`).
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let t = line.trim();
        let Some(comment) = t.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("escape") {
            if let Some(c) = value.trim().chars().next() {
                return c;
            }
        } else if !key.eq_ignore_ascii_case("syntax") && !key.eq_ignore_ascii_case("check") {
            break;
        }
    }
    '\\'
}

/// The terminators of here-documents opened on an instruction line (`<<EOF`, `<<-"EOF"`).
fn heredoc_terminators(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("<<") {
        let after = &rest[i + 2..];
        let after = after.strip_prefix('-').unwrap_or(after);
        let word: String = after
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() && word.chars().next().is_some_and(|c| !c.is_ascii_digit()) {
            out.push(word);
        }
        rest = after;
    }
    out
}

/// Names of the stages, in order (`#2` for an unnamed stage at index 2), for messages.
pub(crate) fn stage_list(stages: &[DockerfileStage]) -> String {
    stages
        .iter()
        .map(|s| match &s.name {
            Some(n) => n.clone(),
            None => format!("#{} (unnamed)", s.index),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_named_and_unnamed_stages() {
        let text = "# syntax=docker/dockerfile:1\n\
                    ARG PYTHON_IMAGE=python:3.12-slim\n\
                    FROM ${PYTHON_IMAGE} AS Builder\n\
                    RUN echo from here is not a stage \\\n\
                    # a comment inside a continuation\n\
                    \x20   FROM nothing\n\
                    from --platform=$BUILDPLATFORM \\\n\
                    \x20   busybox \\\n\
                    \x20   as tools\n\
                    RUN <<EOF\n\
                    FROM not-a-stage AS nope\n\
                    EOF\n\
                    FROM scratch\n\
                    COPY --from=builder / /\n";
        let s = stages(text);
        let names: Vec<_> = s.iter().map(|s| s.name.clone()).collect();
        assert_eq!(
            names,
            vec![Some("builder".to_string()), Some("tools".to_string()), None]
        );
        assert_eq!(s[0].base, "${PYTHON_IMAGE}");
        assert_eq!(s[0].line, 3);
        assert_eq!(s[1].platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(s[1].base, "busybox");
        assert_eq!(s[1].line, 7);
        assert_eq!(s[2].index, 2);
        assert_eq!(stage_list(&s), "builder, tools, #2 (unnamed)");
    }

    #[test]
    fn honours_the_escape_directive() {
        let text = "# escape=`\nFROM a `\n  AS first\nFROM b AS second\n";
        let names: Vec<_> = stages(text).into_iter().filter_map(|s| s.name).collect();
        assert_eq!(names, vec!["first", "second"]);
    }

    #[test]
    fn run_steps_see_a_build_arg_only_after_the_stage_declares_it() {
        let text = "ARG SOURCE_DATE_EPOCH\nFROM a AS one\nRUN useradd app\nFROM b AS two\n\
                    ARG SOURCE_DATE_EPOCH=0\nRUN useradd app\nFROM c\nRUN true\n\
                    ARG SOURCE_DATE_EPOCH\nFROM d\nCOPY x /x\n";
        let stages = stages(text);
        let hidden: Vec<bool> = stages
            .iter()
            .map(|s| s.runs_without_arg("SOURCE_DATE_EPOCH"))
            .collect();
        // A global ARG does not reach a stage; a declaration after the RUN comes too late.
        assert_eq!(hidden, [true, false, true, false]);
        assert_eq!(stages[1].args, [("SOURCE_DATE_EPOCH".to_string(), 5)]);
        assert_eq!(stages[1].runs, [6]);
    }

    #[test]
    fn instructions_keep_their_first_line_and_joined_text() {
        let text = "ARG BASE=busybox\n\
                    FROM ${BASE} AS one\n\
                    # a comment\n\
                    RUN echo a \\\n\
                    \x20   && echo   b\n\
                    copy src/ /app/\n\
                    RUN <<EOF\n\
                    echo here\n\
                    EOF\n\
                    ENV A=1\n";
        let all = instructions(text);
        let shown: Vec<(&str, &str, usize)> = all
            .iter()
            .map(|i| (i.keyword.as_str(), i.text.as_str(), i.line))
            .collect();
        assert_eq!(
            shown,
            [
                ("ARG", "ARG BASE=busybox", 1),
                ("FROM", "FROM ${BASE} AS one", 2),
                ("RUN", "RUN echo a && echo b", 4),
                ("COPY", "copy src/ /app/", 6),
                ("RUN", "RUN <<EOF\necho here\nEOF", 7),
                ("ENV", "ENV A=1", 10),
            ]
        );
        assert_eq!(all[3].args(), "src/ /app/");
        let stage = &stages(text)[0];
        assert_eq!(stage.instructions.len(), 4);
        assert_eq!(stage.instructions[0].line, 4);
    }
}
