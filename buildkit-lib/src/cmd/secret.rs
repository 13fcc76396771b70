//! Secret values: shown as `***` wherever the library prints, logs or reports them.
//!
//! A [`Secret`] never displays its value. Every secret built is also registered in a
//! process-wide list so that command output that happens to echo it (a tool printing
//! its environment, say) is redacted in the terminal, the logs and the errors too.
//!
//! Output is redacted line by line as it streams, so a multi-line secret (a PEM key, a
//! two-line token file) is registered whole *and* line by line: each of its lines is
//! masked wherever it appears, even when a tool prints only part of the value.

use std::fmt;
use std::sync::{Mutex, OnceLock};

/// The text shown in place of a secret value.
pub const MASK: &str = "***";

/// Pieces of a secret shorter than this are not masked on their own: masking `a` or `}`
/// everywhere would hide more than it saves. A whole secret is always masked.
const MIN_PIECE: usize = 4;

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

fn registry() -> &'static Mutex<Vec<Vec<u8>>> {
    static SECRETS: OnceLock<Mutex<Vec<Vec<u8>>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds a value to the process-wide list of values redacted from output: the whole value
/// (without surrounding blank space) and, when it spans several lines, each line of it
/// (so every line of a PEM key is masked in line-wise output). Values of fewer than four
/// bytes are ignored, and so are lines that short.
pub fn register_secret(value: &str) {
    register_secret_bytes(value.as_bytes());
}

/// [`register_secret`] for a value that may not be UTF-8 (a secret file's bytes).
pub(crate) fn register_secret_bytes(value: &[u8]) {
    let mut pieces: Vec<&[u8]> = vec![value.trim_ascii()];
    if value.contains(&b'\n') || value.contains(&b'\r') {
        pieces.extend(
            value
                .split(|&b| b == b'\n' || b == b'\r')
                .map(<[u8]>::trim_ascii),
        );
    }
    let mut list = registry().lock().unwrap_or_else(|e| e.into_inner());
    for piece in pieces {
        if piece.len() < MIN_PIECE || list.iter().any(|v| v == piece) {
            continue;
        }
        list.push(piece.to_vec());
    }
    // Longest first, so a secret containing another is masked whole.
    list.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// True when at least one secret is registered (output then needs line-wise redaction).
pub(crate) fn any_registered() -> bool {
    !registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
}

/// The length of the longest registered value: output held back at a chunk boundary
/// must keep this many bytes minus one, so a value split across reads is still whole.
pub(crate) fn longest() -> usize {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first()
        .map_or(0, Vec::len)
}

/// Replaces every registered secret value in `text` by `***`.
pub fn redact(text: &str) -> String {
    let clean = redact_bytes(text.as_bytes());
    String::from_utf8_lossy(&clean).into_owned()
}

/// Byte-level [`redact`], for output that may not be UTF-8.
pub(crate) fn redact_bytes(bytes: &[u8]) -> Vec<u8> {
    let list = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = bytes.to_vec();
    for needle in list.iter() {
        if needle.is_empty() || out.len() < needle.len() || !contains(&out, needle) {
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
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

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let pem = "-----BEGIN TEST KEY-----\nQm9ndXMga2V5IGxpbmUgb25l\r\nbGluZSB0d28gb2YgdGhlIGtleQ==\n-----END TEST KEY-----\n";
        let _ = Secret::new(pem);
        // Each line alone, as line-wise streaming sees it.
        assert_eq!(
            redact("got: bGluZSB0d28gb2YgdGhlIGtleQ== ok"),
            "got: *** ok"
        );
        assert_eq!(redact("Qm9ndXMga2V5IGxpbmUgb25l"), "***");
        // The whole value at once.
        assert_eq!(redact(&format!("[{}]", pem.trim())), "[***]");
    }

    #[test]
    fn spaces_and_regex_characters_are_plain_text() {
        let _ = Secret::new("p@ss w0rd.*+?(x)[y]$^|\\");
        assert_eq!(redact("pw=p@ss w0rd.*+?(x)[y]$^|\\!"), "pw=***!");
        assert_eq!(redact("p@ss w0rdX"), "p@ss w0rdX");
    }

    #[test]
    fn non_utf8_file_secrets_are_masked_byte_exact() {
        register_secret_bytes(b"\xffbinary-secret\xfe");
        assert_eq!(
            redact_bytes(b"a \xffbinary-secret\xfe b"),
            b"a *** b".to_vec()
        );
        assert!(longest() >= 15);
    }
}
