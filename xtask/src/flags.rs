//! A small command-line parser: subcommand, `--flag`, `--key value`, and usage errors.
//!
//! Hand-written on purpose: a parser crate would cost every contributor compile time for
//! a handful of flags.

use std::collections::BTreeMap;

/// A usage error: the xtask prints it with the usage text and exits 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The flags of one subcommand, parsed against what it accepts.
#[derive(Debug, Default)]
pub struct Flags {
    switches: BTreeMap<String, bool>,
    values: BTreeMap<String, String>,
    /// Positional arguments, in order.
    pub positional: Vec<String>,
}

impl Flags {
    /// Parses `args` for `command`, which accepts the boolean `switches` and the
    /// `valued` flags (each followed by a value, or given as `--flag=value`).
    pub fn parse(
        command: &str,
        args: &[String],
        switches: &[&str],
        valued: &[&str],
    ) -> Result<Flags, UsageError> {
        let mut flags = Flags::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if switches.contains(&name) && inline.is_none() {
                    flags.switches.insert(name.to_string(), true);
                } else if valued.contains(&name) {
                    let value = match inline {
                        Some(v) => v,
                        None => iter.next().cloned().ok_or_else(|| {
                            UsageError(format!("`cargo xtask {command} --{name}` needs a value"))
                        })?,
                    };
                    flags.values.insert(name.to_string(), value);
                } else {
                    return Err(UsageError(format!(
                        "unknown flag `--{name}` for `cargo xtask {command}` (see `cargo xtask {command} --help`)"
                    )));
                }
            } else if arg.starts_with('-') && arg.len() > 1 {
                return Err(UsageError(format!(
                    "unknown flag `{arg}` for `cargo xtask {command}` (see `cargo xtask {command} --help`)"
                )));
            } else {
                flags.positional.push(arg.clone());
            }
        }
        Ok(flags)
    }

    /// Whether a switch was given.
    pub fn on(&self, name: &str) -> bool {
        self.switches.get(name).copied().unwrap_or(false)
    }

    /// The value of a valued flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Fails when positional arguments were given to a command that takes none.
    pub fn no_positional(&self, command: &str) -> Result<(), UsageError> {
        match self.positional.first() {
            Some(extra) => Err(UsageError(format!(
                "unexpected argument `{extra}` for `cargo xtask {command}` (see `cargo xtask {command} --help`)"
            ))),
            None => Ok(()),
        }
    }
}
