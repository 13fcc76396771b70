//! [`PythonTest`]: a project's own test command (pytest or a script), run in the tool
//! environment or inside a built image.
//!
//! In the tool environment the command runs with the venv activated; in an image it runs
//! in a throw-away container (`docker run --rm --network none`) named and labelled for
//! this run and removed on Ctrl-C. Either way its output goes to the step log.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::venv::{ToolEnv, Tools};
use crate::cmd::{Cmd, Runner};
use crate::plan::Step;
use crate::session::Session;

/// Where the test command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum TestPlace {
    /// On the host, with the tool environment activated (its `bin/` first on `PATH`).
    ToolEnv,
    /// In a container of this image, with no network.
    Image(String),
}

/// A project's test command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PythonTest {
    /// Program and arguments (`["pytest", "-q"]`, `["python", "tests/run.py"]`).
    pub(crate) argv: Vec<String>,
    /// Where it runs.
    pub(crate) place: TestPlace,
    /// Working directory: on the host for [`TestPlace::ToolEnv`], in the container for
    /// [`TestPlace::Image`].
    pub(crate) workdir: Option<PathBuf>,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, String)>,
    /// The tool environment [`TestPlace::ToolEnv`] runs in.
    pub(crate) tools: ToolEnv,
}

impl PythonTest {
    /// The tool environment a [`PythonTest::in_tool_env`] test runs in (default
    /// `ToolEnv::under("target")`, cached under `target/buildkit/tools`).
    pub fn tools(mut self, tools: ToolEnv) -> PythonTest {
        self.tools = tools;
        self
    }
}

impl PythonTest {
    /// Runs `argv` in the tool environment.
    pub fn in_tool_env<I, S>(argv: I) -> PythonTest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PythonTest {
            argv: argv.into_iter().map(Into::into).collect(),
            place: TestPlace::ToolEnv,
            workdir: None,
            env: Vec::new(),
            tools: ToolEnv::under("target"),
        }
    }

    /// Runs `argv` in a container of `image`.
    pub fn in_image<I, S>(image: impl Into<String>, argv: I) -> PythonTest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PythonTest {
            place: TestPlace::Image(image.into()),
            ..PythonTest::in_tool_env(argv)
        }
    }

    /// Sets the working directory.
    pub fn workdir(self, dir: impl Into<PathBuf>) -> PythonTest {
        PythonTest {
            workdir: Some(dir.into()),
            ..self
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> PythonTest {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command in the tool environment (`tools`), activated against `runner`'s `PATH`.
    pub(crate) fn host_command(&self, runner: &Runner, tools: &Tools) -> Cmd {
        let mut cmd = Cmd::new(self.argv.first().cloned().unwrap_or_default())
            .args(self.argv.iter().skip(1).cloned());
        for (k, v) in &self.env {
            cmd = cmd.env(k, v);
        }
        if let Some(dir) = &self.workdir {
            cmd = cmd.cwd(dir);
        }
        tools.activate(runner, cmd)
    }

    /// The `docker run` command for [`TestPlace::Image`], in container `name`.
    pub(crate) fn container_command(&self, session: &Session, name: &str, image: &str) -> Cmd {
        let mut cmd = Cmd::new("docker")
            .args(["run", "--rm", "--name", name])
            .args(session.label_args())
            .args(["--network", "none"]);
        if let Some(dir) = &self.workdir {
            cmd = cmd.arg("--workdir").arg_path(dir);
        }
        for (k, v) in &self.env {
            cmd = cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg(image).args(self.argv.iter().cloned())
    }
}

impl Step for PythonTest {
    type Output = ();

    /// Runs the tests; their output goes to the runner's step log. In an image, the
    /// container is named and labelled for the runner's session ([`Runner::session`]),
    /// which must be set.
    fn run(&self, runner: &Runner) -> Result<()> {
        anyhow::ensure!(!self.argv.is_empty(), "the test step has no command to run");
        match &self.place {
            TestPlace::ToolEnv => {
                let tools = self
                    .tools
                    .ensure(runner)
                    .context("cannot prepare the test tools")?;
                runner
                    .run(&self.host_command(runner, &tools))
                    .context("tests failed")?;
            }
            TestPlace::Image(image) => {
                let session = runner.require_session("the test step in an image")?;
                let name = session.container_name("test");
                let _guard = runner.on_cancel(remove_container(runner, &name));
                runner
                    .run(&self.container_command(session, &name, image))
                    .with_context(|| format!("tests failed in image {image}"))?;
            }
        }
        Ok(())
    }
}

/// `docker rm -f NAME`, aimed at the engine `runner` uses (named in the command, so the
/// line shown and logged says which engine).
pub(crate) fn remove_container(runner: &Runner, name: &str) -> Cmd {
    let cmd = Cmd::new("docker").args(["rm", "-f", name]);
    match runner.effective_env(&cmd, "DOCKER_HOST") {
        Some(host) => cmd.env("DOCKER_HOST", host),
        None => cmd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_container_command() {
        let session = Session {
            project: "deskapp".into(),
            run_id: "r1".into(),
        };
        let step = PythonTest::in_image("deskapp:runtime", ["python", "-m", "unittest"])
            .workdir("/app")
            .env("QT_QPA_PLATFORM", "offscreen");
        assert_eq!(
            step.container_command(&session, "deskapp_test_r1", "deskapp:runtime")
                .to_string(),
            "docker run --rm --name deskapp_test_r1 --label dev.buildkit-lib.project=deskapp \
             --label dev.buildkit-lib.run=r1 --network none --workdir /app \
             --env QT_QPA_PLATFORM=offscreen deskapp:runtime python -m unittest"
        );
    }
}
