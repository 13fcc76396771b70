//! Secret values: shown as `***` wherever the library prints, logs or reports them.
//!
//! A [`Secret`] never displays its value. Every secret built is also registered in a
//! process-wide list so that command output that happens to echo it (a tool printing
//! its environment, say) is redacted in the terminal, the logs and the errors too.

use std::fmt;
use std::sync::{Mutex, OnceLock};

/// The text shown in place of a secret value.
pub const MASK: &str = "***";

/// A value that must never be shown: a token, a password, a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it for redaction of command output.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        register_secret(&value);
        Secret(value)
    }

    /// The real value, for handing to a child process only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds a value to the process-wide list of values redacted from output. Values shorter
/// than four characters are ignored: masking `a` everywhere would hide more than it saves.
pub fn register_secret(value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut list = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
        // Longest first, so a secret containing another is masked whole.
        list.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// True when at least one secret is registered (output then needs line-wise redaction).
pub(crate) fn any_registered() -> bool {
    !registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
}

/// Replaces every registered secret value in `text` by `***`.
pub fn redact(text: &str) -> String {
    let list = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for value in list.iter() {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), MASK);
        }
    }
    out
}

/// Byte-level [`redact`], for output that may not be UTF-8.
pub(crate) fn redact_bytes(bytes: &[u8]) -> Vec<u8> {
    let list = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = bytes.to_vec();
    for value in list.iter() {
        let needle = value.as_bytes();
        if needle.is_empty() || out.len() < needle.len() {
            continue;
        }
        let mut replaced = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(needle) {
                replaced.extend_from_slice(MASK.as_bytes());
                i += needle.len();
            } else {
                replaced.push(out[i]);
                i += 1;
            }
        }
        out = replaced;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_displays_its_value() {
        let s = Secret::new("hunter2-token-value");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2-token-value");
        assert_eq!(
            redact("token=hunter2-token-value; again hunter2-token-value"),
            "token=***; again ***"
        );
        assert_eq!(
            redact_bytes(b"x hunter2-token-value y"),
            b"x *** y".to_vec()
        );
    }
}
