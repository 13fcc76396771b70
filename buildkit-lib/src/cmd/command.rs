//! The [`Cmd`] value: what to run, described as data.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::secret::{Secret, MASK};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    Plain(String),
    Secret(Secret),
}

impl Arg {
    fn shown(&self) -> &str {
        match self {
            Arg::Plain(s) => s,
            Arg::Secret(_) => MASK,
        }
    }
    fn real(&self) -> &str {
        match self {
            Arg::Plain(s) => s,
            Arg::Secret(s) => s.expose(),
        }
    }
}

/// One external command: program, arguments, working directory and environment.
///
/// It is a value: build it, print it, compare it in a test, then hand it to a
/// [`Runner`](super::Runner). Arguments are passed to the program as they are, never
/// through a shell. Its `Display` is the shell-escaped command line with every secret
/// shown as `***`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    program: String,
    args: Vec<Arg>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, Option<Arg>>,
    timeout: Option<Duration>,
    read_only: bool,
    stdin: Option<Vec<u8>>,
    /// Exit codes besides 0 that count as success.
    accepted: Vec<i32>,
    /// What a dry run answers in place of running it.
    dry_answer: String,
}

impl Cmd {
    /// A command running `program` (a name looked up on `PATH`, or a path).
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            timeout: None,
            read_only: false,
            stdin: None,
            accepted: Vec::new(),
            dry_answer: String::new(),
        }
    }

    /// Appends one argument: a word (`&str`, `String`) or a path (`&Path`, `PathBuf`),
    /// passed as text (a path that is not UTF-8 is converted lossily).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        let arg = arg.as_ref();
        let text = match arg.to_str() {
            Some(text) => text.to_string(),
            None => arg.to_string_lossy().into_owned(),
        };
        self.args.push(Arg::Plain(text));
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Plain(a.into())));
        self
    }

    /// Appends an argument whose value is secret: the program gets it, displays show `***`.
    pub fn secret_arg(mut self, secret: Secret) -> Cmd {
        self.args.push(Arg::Secret(secret));
        self
    }

    /// Appends a path argument ([`Cmd::arg`] takes paths too).
    pub(crate) fn arg_path(self, path: impl AsRef<Path>) -> Cmd {
        self.arg(path.as_ref())
    }

    /// Runs the program in `dir`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.insert(key.into(), Some(Arg::Plain(value.into())));
        self
    }

    /// Sets an environment variable whose value is secret.
    pub fn secret_env(mut self, key: impl Into<String>, value: Secret) -> Cmd {
        self.env.insert(key.into(), Some(Arg::Secret(value)));
        self
    }

    /// Removes an environment variable from what the program inherits.
    pub fn env_remove(mut self, key: impl Into<String>) -> Cmd {
        self.env.insert(key.into(), None);
        self
    }

    /// Stops the program (and its children) when it runs longer than `limit`.
    pub fn timeout(mut self, limit: Duration) -> Cmd {
        self.timeout = Some(limit);
        self
    }

    /// Marks the command as a query that changes nothing (`git rev-parse`, `docker
    /// version`): a dry run still runs it, so plans show real values.
    pub fn read_only(mut self) -> Cmd {
        self.read_only = true;
        self
    }

    /// What a dry run answers for this query in place of running it (empty unless set):
    /// a placeholder such as `<container>` or `sha256:<digest>` that the step reads like a
    /// real answer, so that its plan goes on to show the commands that use it.
    pub fn dry_answer(mut self, answer: impl Into<String>) -> Cmd {
        self.dry_answer = answer.into();
        self
    }

    /// The answer a dry run gives, [`Cmd::dry_answer`].
    pub(crate) fn get_dry_answer(&self) -> &str {
        &self.dry_answer
    }

    /// Feeds `bytes` to the program's standard input (otherwise it reads from null).
    /// Never displayed, so it is the way to hand over a password (`--password-stdin`).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Counts an exit with `code` as success too, for programs whose exit code is an
    /// answer rather than a failure (`docker buildx build --call=check` exits 1 when it
    /// has findings): the runner returns the output, and
    /// `Captured::exit_code` says which code it was.
    pub(crate) fn accept_exit(mut self, code: i32) -> Cmd {
        if code != 0 && !self.accepted.contains(&code) {
            self.accepted.push(code);
        }
        self
    }

    /// Whether an exit with `code` counts as success.
    pub(crate) fn accepts_exit(&self, code: i32) -> bool {
        code == 0 || self.accepted.contains(&code)
    }

    pub(crate) fn get_stdin(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// The program as given.
    pub(crate) fn get_program(&self) -> &str {
        &self.program
    }

    /// The arguments as displayed (secrets masked).
    pub(crate) fn get_args(&self) -> Vec<String> {
        self.args.iter().map(|a| a.shown().to_string()).collect()
    }

    /// Program and arguments as displayed (secrets masked): what reports record.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.get_args())
            .collect()
    }

    /// Every secret value the command carries (arguments and environment).
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.args
            .iter()
            .chain(self.env.values().flatten())
            .filter_map(|a| match a {
                Arg::Secret(s) => Some(s),
                Arg::Plain(_) => None,
            })
    }

    /// The real arguments, secrets included, for spawning only.
    pub(crate) fn real_args(&self) -> Vec<String> {
        self.args.iter().map(|a| a.real().to_string()).collect()
    }

    /// The working directory, if set.
    pub(crate) fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// The value the command sets for `key`: `Some(None)` when it removes the variable,
    /// `None` when it leaves it as inherited. Secret values read as `***`.
    pub(crate) fn get_env(&self, key: &str) -> Option<Option<&str>> {
        self.env.get(key).map(|v| v.as_ref().map(|a| a.shown()))
    }

    /// The variables set or removed, real values included, for spawning only.
    pub(crate) fn real_env(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref().map(|a| a.real())))
    }

    /// The value of `key` the program will see: set here, or inherited from this process.
    pub(crate) fn effective_env(&self, key: &str) -> Option<String> {
        match self.env.get(key) {
            Some(Some(v)) => Some(v.real().to_string()),
            Some(None) => None,
            None => std::env::var(key).ok(),
        }
    }

    /// The timeout, if set.
    pub(crate) fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether a dry run still runs this command.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_escape(&self.program))?;
        for arg in &self.args {
            f.write_str(" ")?;
            f.write_str(&shell_escape(arg.shown()))?;
        }
        Ok(())
    }
}

/// Quotes `word` for a POSIX shell when it needs it; plain words stay as they are.
pub(crate) fn shell_escape(word: &str) -> String {
    let plain = !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b',' | b'@' | b'+' | b'%'
                )
        });
    if plain || word == MASK {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_shell_escaped_with_secrets_masked() {
        let cmd = Cmd::new("docker")
            .args(["buildx", "build", "--label", "title=my app", "it's"])
            .arg("--build-arg")
            .secret_arg(Secret::new("TOKEN=abcdef123"))
            .arg("");
        assert_eq!(
            cmd.to_string(),
            r#"docker buildx build --label 'title=my app' 'it'\''s' --build-arg *** ''"#
        );
        assert_eq!(cmd.argv()[7], "***");
        assert_eq!(cmd.real_args()[6], "TOKEN=abcdef123");
    }

    #[test]
    fn env_is_recorded_and_secret_env_masked() {
        let cmd = Cmd::new("git")
            .env("A", "1")
            .secret_env("TOKEN", Secret::new("zzz-secret-1"))
            .env_remove("B");
        assert_eq!(cmd.get_env("A"), Some(Some("1")));
        assert_eq!(cmd.get_env("TOKEN"), Some(Some("***")));
        assert_eq!(cmd.get_env("B"), Some(None));
        assert_eq!(cmd.effective_env("TOKEN").as_deref(), Some("zzz-secret-1"));
    }

    #[test]
    fn an_accepted_exit_code_is_a_success_that_says_its_code_and_others_still_fail() {
        use std::sync::Arc;

        use crate::cmd::{Answer, Echo, FakeExecutor, Runner};
        let fake = Arc::new(FakeExecutor::new().on(["lint"], Answer::fail(1, "two findings\n")));
        let runner = Runner::new().echo(Echo::Silent).with_executor(fake);
        let accepted = Cmd::new("lint").accept_exit(1);
        let captured = runner.capture(&accepted).unwrap();
        assert_eq!(captured.exit_code, 1);
        assert_eq!(captured.stdout, "two findings\n");
        let err = runner.capture(&Cmd::new("lint")).unwrap_err();
        assert_eq!(err.exit_code(), Some(1));
        let other = runner
            .capture(&Cmd::new("lint").accept_exit(2))
            .unwrap_err();
        assert_eq!(other.exit_code(), Some(1));
        // Accepting 0 adds nothing: 0 is always a success.
        assert_eq!(Cmd::new("lint").accept_exit(0), Cmd::new("lint"));
    }

    #[test]
    fn a_runner_redacts_every_secret_it_was_given_and_nothing_else() {
        use crate::cmd::Runner;
        let runner = Runner::new();
        assert_eq!(runner.redact("token abc-123-xyz"), "token abc-123-xyz");
        runner.mask(&Secret::new("abc-123-xyz"));
        runner.mask(&Secret::new("p4ssw0rd-long"));
        assert_eq!(
            runner.redact("token abc-123-xyz, password p4ssw0rd-long, user ci"),
            "token ***, password ***, user ci"
        );
        // Clones share the masks: a step's runner redacts what the pipeline masked.
        assert_eq!(runner.clone().redact("x abc-123-xyz"), "x ***");
    }
}
