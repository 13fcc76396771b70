//! [`PyInstaller`]: the packaging command, from a `.spec` file or an entry script.
//!
//! It always runs with `--clean --noconfirm` and writes into explicit `--distpath` and
//! `--workpath` directories, so the same arguments serve a mounted container, a
//! `docker create`d one and a Dockerfile `RUN` step.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cmd::Cmd;

/// What PyInstaller builds from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Entry {
    /// A `.spec` file (it decides one-file or one-folder itself).
    Spec(PathBuf),
    /// An entry script; the bundle kind and name come from [`PyInstaller`].
    Script(PathBuf),
}

/// One executable file or one folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bundle {
    /// `--onefile`: a single self-extracting executable.
    OneFile,
    /// `--onedir`: a folder with the executable and its libraries.
    OneDir,
}

/// A PyInstaller run. Paths are as the program sees them (inside the container).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PyInstaller {
    /// What to build from.
    pub(crate) entry: Entry,
    /// One file or one folder (entry scripts only).
    pub(crate) bundle: Bundle,
    /// The executable's name (entry scripts only; default: the script's stem).
    pub(crate) name: Option<String>,
    /// Extra import paths (`--paths`, entry scripts only).
    pub(crate) paths: Vec<PathBuf>,
    /// Further arguments, added before the entry.
    pub(crate) extra_args: Vec<String>,
}

impl PyInstaller {}

/// Where the generated `.spec` of an entry-script build goes (never the source tree).
pub(crate) const SPEC_DIR: &str = "/tmp/pyinstaller-spec";

impl PyInstaller {
    /// Builds from a `.spec` file.
    pub fn spec(path: impl Into<PathBuf>) -> PyInstaller {
        PyInstaller {
            entry: Entry::Spec(path.into()),
            bundle: Bundle::OneFile,
            name: None,
            paths: Vec::new(),
            extra_args: Vec::new(),
        }
    }

    /// Builds from an entry script, one-file by default.
    pub fn script(path: impl Into<PathBuf>) -> PyInstaller {
        PyInstaller {
            entry: Entry::Script(path.into()),
            ..PyInstaller::spec("")
        }
    }

    /// Builds one folder (`--onedir`: the executable beside its libraries) instead of
    /// one self-extracting executable (`--onefile`, the default); entry scripts only.
    pub fn one_dir(self) -> PyInstaller {
        PyInstaller {
            bundle: Bundle::OneDir,
            ..self
        }
    }

    /// Names the executable (entry scripts only).
    pub fn name(self, name: impl Into<String>) -> PyInstaller {
        PyInstaller {
            name: Some(name.into()),
            ..self
        }
    }

    /// A further PyInstaller argument (`--log-level=WARN`, `--exclude-module=tkinter`),
    /// added before the entry; call again for more.
    pub fn extra_arg(mut self, extra_arg: impl Into<String>) -> PyInstaller {
        self.extra_args.push(extra_arg.into());
        self
    }

    /// Adds an import path (entry scripts only).
    pub fn path(mut self, dir: impl Into<PathBuf>) -> PyInstaller {
        self.paths.push(dir.into());
        self
    }

    /// The arguments after the output directories: `--clean --noconfirm`, the bundle
    /// options of an entry script, the extra arguments, then the entry.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--clean".into(), "--noconfirm".into()];
        match &self.entry {
            Entry::Spec(spec) => {
                args.extend(self.extra_args.iter().cloned());
                args.push(spec.display().to_string());
            }
            Entry::Script(script) => {
                args.push(
                    match self.bundle {
                        Bundle::OneFile => "--onefile",
                        Bundle::OneDir => "--onedir",
                    }
                    .into(),
                );
                if let Some(name) = &self.name {
                    args.extend(["--name".into(), name.clone()]);
                }
                for dir in &self.paths {
                    args.extend(["--paths".into(), dir.display().to_string()]);
                }
                args.extend(["--specpath".into(), SPEC_DIR.into()]);
                args.extend(self.extra_args.iter().cloned());
                args.push(script.display().to_string());
            }
        }
        args
    }

    /// `pyinstaller --distpath DIST --workpath WORK <args>`.
    pub(crate) fn command(&self, distpath: &str, workpath: &str) -> Cmd {
        Cmd::new("pyinstaller")
            .args(["--distpath", distpath, "--workpath", workpath])
            .args(self.args())
    }

    /// The arguments as one build-arg value for a Dockerfile `RUN pyinstaller $ARGS`,
    /// which the shell splits on spaces: arguments with spaces or shell characters are
    /// refused rather than mangled.
    pub(crate) fn build_arg_value(&self) -> Result<String> {
        let args = self.args();
        for arg in &args {
            let plain = !arg.is_empty()
                && arg.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b',' | b'+' | b'@'
                        )
                });
            if !plain {
                bail!(
                    "PyInstaller argument {arg:?} cannot pass through a build arg (it holds \
                     spaces or shell characters); rename the file, or use the mounted mode or \
                     `Mode::IsolatedCopyOut`"
                );
            }
        }
        Ok(args.join(" "))
    }
}

/// PyInstaller's own last error line in the tail of a failed run's output (a `docker
/// run` of it, or the build whose `RUN` ran it): `Spec file "x.spec" not found!`,
/// `ERROR: ...`, or the last line of a Python traceback (`ModuleNotFoundError: ...`, a
/// hook's exception). The prefixes buildx and PyInstaller put before a line (`#8 1.077`,
/// `296 ERROR:`) are dropped, and buildx's own `ERROR:` lines about the failed step are
/// skipped. `None` when PyInstaller said nothing recognisable (it never ran, say).
pub(crate) fn error_line(tail: &[String]) -> Option<String> {
    tail.iter()
        .rev()
        .map(|line| strip_prefixes(line))
        .find(|line| is_error_line(line))
        .map(str::to_string)
}

/// `line` without buildx's step number and time and PyInstaller's milliseconds
/// (`#8 1.077 296 ERROR: x` is `ERROR: x`).
fn strip_prefixes(line: &str) -> &str {
    let mut rest = line.trim();
    loop {
        let (token, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let digits = token.strip_prefix('#').unwrap_or(token);
        let numeric = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !numeric || after.is_empty() {
            return rest;
        }
        rest = after.trim_start();
    }
}

/// Whether a line (prefixes dropped) is PyInstaller saying why it stopped.
fn is_error_line(line: &str) -> bool {
    if line.starts_with("Spec file ") && line.ends_with("not found!") {
        return true;
    }
    if let Some(message) = line
        .strip_prefix("ERROR: ")
        .or_else(|| line.strip_prefix("CRITICAL: "))
    {
        // buildx's own words about the step that failed, not PyInstaller's.
        let buildx = message.starts_with("failed to ")
            || message.starts_with("process \"")
            || message.contains("did not complete successfully");
        return !buildx && !message.is_empty();
    }
    // The last line of a traceback: `ModuleNotFoundError: ...`,
    // `PyInstaller.exceptions.ImportErrorWhenRunningHook: ...`, `SystemExit: ...`.
    let Some((name, message)) = line.split_once(": ") else {
        return false;
    };
    let identifier = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    let last = name.rsplit('.').next().unwrap_or(name);
    identifier
        && !message.is_empty()
        && (last.contains("Error") || last.contains("Exception") || last == "SystemExit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_pyinstaller_command_lines() {
        assert_eq!(
            PyInstaller::spec("deskapp.spec")
                .command("/out", "/tmp/build")
                .to_string(),
            "pyinstaller --distpath /out --workpath /tmp/build --clean --noconfirm deskapp.spec"
        );
        let script = PyInstaller::script("src/deskapp/__main__.py")
            .one_dir()
            .name("deskapp")
            .path("src");
        assert_eq!(
            script.command("/out", "/tmp/build").to_string(),
            "pyinstaller --distpath /out --workpath /tmp/build --clean --noconfirm --onedir \
             --name deskapp --paths src --specpath /tmp/pyinstaller-spec src/deskapp/__main__.py"
        );
        assert_eq!(
            PyInstaller::spec("deskapp.spec").build_arg_value().unwrap(),
            "--clean --noconfirm deskapp.spec"
        );
        assert_eq!(
            PyInstaller::spec("my app.spec")
                .build_arg_value()
                .unwrap_err()
                .to_string(),
            "PyInstaller argument \"my app.spec\" cannot pass through a build arg (it holds \
             spaces or shell characters); rename the file, or use the mounted mode or \
             `Mode::IsolatedCopyOut`"
        );
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_error_line_is_pyinstallers_own() {
        // A mounted run: PyInstaller's log, then its words.
        let mounted = lines(
            "81 INFO: PyInstaller: 6.11.1, contrib hooks: 2026.10\n\
             84 INFO: Removing temporary files and cleaning cache in /tmp/pyinstaller\n\
             Spec file \"nope.spec\" not found!",
        );
        assert_eq!(
            error_line(&mounted).as_deref(),
            Some("Spec file \"nope.spec\" not found!")
        );
        // An isolated build: buildx's step lines, its box, the Dockerfile excerpt and its
        // own ERROR lines come after PyInstaller's.
        let isolated = lines(
            "#8 1.075 296 INFO: Removing temporary files\n\
             #8 1.077 Spec file \"nope.spec\" not found!\n\
             #8 ERROR: process \"/bin/sh -c pyinstaller ${PYINSTALLER_ARGS}\" did not complete \
             successfully: exit code: 1\n\
             ------\n\
             \x20> [package 3/3] RUN pyinstaller --clean --noconfirm nope.spec:\n\
             1.077 Spec file \"nope.spec\" not found!\n\
             ------\n\
             Dockerfile:47\n\
             --------------------\n\
             \x20 47 | >>> RUN pyinstaller --distpath /out ${PYINSTALLER_ARGS}\n\
             --------------------\n\
             ERROR: failed to build: failed to solve: process \"/bin/sh -c pyinstaller\" did \
             not complete successfully: exit code: 1",
        );
        assert_eq!(
            error_line(&isolated).as_deref(),
            Some("Spec file \"nope.spec\" not found!")
        );
        // A traceback's last line (an import in the spec, a hook that failed).
        let traceback = lines(
            "Traceback (most recent call last):\n\
             \x20 File \"/src/deskapp.spec\", line 1, in <module>\n\
             ModuleNotFoundError: No module named 'nosuchmod'",
        );
        assert_eq!(
            error_line(&traceback).as_deref(),
            Some("ModuleNotFoundError: No module named 'nosuchmod'")
        );
        let hook = lines(
            "#9 12.5 PyInstaller.exceptions.ImportErrorWhenRunningHook: Failed to import \
             module x required by hook for module y\n#9 ERROR: process \"/bin/sh\" did not \
             complete successfully: exit code: 1",
        );
        assert_eq!(
            error_line(&hook).as_deref(),
            Some(
                "PyInstaller.exceptions.ImportErrorWhenRunningHook: Failed to import module x \
                 required by hook for module y"
            )
        );
        // PyInstaller's logged error (milliseconds, level) and its `ERROR:` exits.
        assert_eq!(
            error_line(&lines(
                "120 INFO: x\n4242 ERROR: Script file 'app.py' does not exist."
            ))
            .as_deref(),
            Some("ERROR: Script file 'app.py' does not exist.")
        );
        // Nothing of PyInstaller's: docker's own failure, buildx's lines alone.
        assert_eq!(
            error_line(&lines(
                "docker: Error response from daemon: No such image: x:runtime\n\
                 ERROR: failed to solve: process \"/bin/sh -c x\" did not complete successfully"
            )),
            None
        );
        assert_eq!(error_line(&[]), None);
    }

    #[test]
    fn extra_arguments_come_before_the_entry_in_the_order_given() {
        assert_eq!(
            PyInstaller::spec("deskapp.spec")
                .extra_arg("--log-level")
                .extra_arg("WARN")
                .command("/out", "/tmp/build")
                .to_string(),
            "pyinstaller --distpath /out --workpath /tmp/build --clean --noconfirm \
             --log-level WARN deskapp.spec"
        );
        assert_eq!(
            PyInstaller::script("main.py")
                .extra_arg("--strip")
                .command("/out", "/tmp/build")
                .to_string(),
            "pyinstaller --distpath /out --workpath /tmp/build --clean --noconfirm --onefile \
             --specpath /tmp/pyinstaller-spec --strip main.py"
        );
    }
}
