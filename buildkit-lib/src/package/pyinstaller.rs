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
#[non_exhaustive]
pub enum Bundle {
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

    /// Sets one-file or one-folder (entry scripts only).
    pub fn bundle(self, bundle: Bundle) -> PyInstaller {
        PyInstaller { bundle, ..self }
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
                     `Export::CopyOut`"
                );
            }
        }
        Ok(args.join(" "))
    }
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
            .bundle(Bundle::OneDir)
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
             `Export::CopyOut`"
        );
    }
}
