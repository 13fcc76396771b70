//! Secret values: shown as `***` wherever the library prints, logs or reports them.
//!
//! A [`Secret`] never displays its value. The values a [`Runner`](super::Runner) hands to
//! its commands (secret arguments and environment values, build secrets) are added to
//! that runner's masks, shared by its clones, so that command output that happens to echo
//! them (a tool printing its environment, say) is masked in the terminal, the logs, the
//! errors and the reports too. Nothing is kept process-wide: two runners in one host
//! program mask what each was given.
//!
//! Output is masked line by line as it streams, so a multi-line secret (a PEM key, a
//! two-line token file) is registered whole *and* line by line: each of its lines is
//! masked wherever it appears, even when a tool prints only part of the value.

use std::fmt;
use std::sync::{Arc, Mutex};

/// The text shown in place of a secret value.
pub const MASK: &str = "***";

/// Pieces of a secret shorter than this are not masked on their own: masking `a` or `}`
/// everywhere would hide more than it saves. A whole secret is always masked.
const MIN_PIECE: usize = 4;

/// A value that must never be shown: a token, a password, a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value. It is masked in the output of every runner that hands it to a
    /// command.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
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

/// The values one runner (and its clones) masks in everything it shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Masks(Arc<Mutex<Vec<Vec<u8>>>>);

impl Masks {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a value: whole (without surrounding blank space) and, when it spans several
    /// lines, each line of it. Pieces of fewer than four bytes are ignored.
    pub(crate) fn register(&self, value: &[u8]) {
        let mut pieces: Vec<&[u8]> = vec![value.trim_ascii()];
        if value.contains(&b'\n') || value.contains(&b'\r') {
            pieces.extend(
                value
                    .split(|&b| b == b'\n' || b == b'\r')
                    .map(<[u8]>::trim_ascii),
            );
        }
        let mut list = self.list();
        for piece in pieces {
            if piece.len() < MIN_PIECE || list.iter().any(|v| v == piece) {
                continue;
            }
            list.push(piece.to_vec());
        }
        // Longest first, so a secret containing another is masked whole.
        list.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// True when there is anything to mask (output then needs line-wise masking).
    pub(crate) fn any(&self) -> bool {
        !self.list().is_empty()
    }

    /// The length of the longest value: output held back at a chunk boundary must keep
    /// this many bytes minus one, so a value split across reads is still whole.
    pub(crate) fn longest(&self) -> usize {
        self.list().first().map_or(0, Vec::len)
    }

    /// `text` with every value replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes())).into_owned()
    }

    /// Byte-level [`Masks::redact`], for output that may not be UTF-8.
    pub(crate) fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let list = self.list();
        let mut out = bytes.to_vec();
        for needle in list.iter() {
            if needle.is_empty() {
                continue;
            }
            let Some(mut at) = find(&out, needle, 0) else {
                continue;
            };
            // Every occurrence, left to right, none overlapping: the text between them
            // copied whole, each occurrence replaced.
            let mut replaced = Vec::with_capacity(out.len());
            let mut start = 0;
            loop {
                replaced.extend_from_slice(&out[start..at]);
                replaced.extend_from_slice(MASK.as_bytes());
                start = at + needle.len();
                match find(&out, needle, start) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            replaced.extend_from_slice(&out[start..]);
            out = replaced;
        }
        out
    }
}

/// Where `needle` first occurs in `haystack` at or after `from`. Output and records are
/// nearly always UTF-8, and the standard library's string search is compiled optimized
/// even in a debug build (a byte-window scan of a 590 KB record takes 19 ms there, the
/// string search under 2 ms); bytes that are not UTF-8 are scanned window by window.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = haystack.get(from..)?;
    if rest.len() < needle.len() {
        return None;
    }
    let found = match (std::str::from_utf8(rest), std::str::from_utf8(needle)) {
        (Ok(text), Ok(value)) => text.find(value),
        _ => rest.windows(needle.len()).position(|w| w == needle),
    };
    found.map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_displays_its_value() {
        let s = Secret::new("hunter2-token-value");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2-token-value");
        let masks = Masks::default();
        masks.register(s.expose().as_bytes());
        assert_eq!(
            masks.redact("token=hunter2-token-value; again hunter2-token-value"),
            "token=***; again ***"
        );
        assert_eq!(
            masks.redact_bytes(b"x hunter2-token-value y"),
            b"x *** y".to_vec()
        );
        // Another runner's masks know nothing of it.
        assert_eq!(
            Masks::default().redact("hunter2-token-value"),
            "hunter2-token-value"
        );
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let pem = "-----BEGIN TEST KEY-----\nQm9ndXMga2V5IGxpbmUgb25l\r\nbGluZSB0d28gb2YgdGhlIGtleQ==\n-----END TEST KEY-----\n";
        let masks = Masks::default();
        masks.register(pem.as_bytes());
        // Each line alone, as line-wise streaming sees it.
        assert_eq!(
            masks.redact("got: bGluZSB0d28gb2YgdGhlIGtleQ== ok"),
            "got: *** ok"
        );
        assert_eq!(masks.redact("Qm9ndXMga2V5IGxpbmUgb25l"), "***");
        // The whole value at once.
        assert_eq!(masks.redact(&format!("[{}]", pem.trim())), "[***]");
    }

    /// The search masks what a byte-by-byte scan masks: every occurrence, left to right,
    /// none overlapping, in UTF-8 text and in bytes that are not, with values that repeat
    /// themselves (`abab` in `ababab`), over every string of a small alphabet.
    #[test]
    fn masking_equals_a_byte_by_byte_scan() {
        fn naive(text: &[u8], needle: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if text[i..].starts_with(needle) {
                    out.extend_from_slice(MASK.as_bytes());
                    i += needle.len();
                } else {
                    out.push(text[i]);
                    i += 1;
                }
            }
            out
        }
        let alphabet: [&[u8]; 4] = [b"ab", b"a", b"\xff", "é".as_bytes()];
        for needle in [&b"abab"[..], b"aaaa", b"ab\xffa", "aéab".as_bytes()] {
            let masks = Masks::default();
            masks.register(needle);
            // Every text of up to 7 pieces of the alphabet.
            let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
            for _ in 0..7 {
                let longer: Vec<Vec<u8>> = texts
                    .iter()
                    .flat_map(|t| alphabet.iter().map(move |p| [t.as_slice(), p].concat()))
                    .collect();
                for text in &longer {
                    assert_eq!(
                        masks.redact_bytes(text),
                        naive(text, needle),
                        "{:?} in {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(text)
                    );
                }
                texts = longer;
            }
        }
    }

    #[test]
    fn spaces_and_regex_characters_are_plain_text() {
        let masks = Masks::default();
        masks.register(b"p@ss w0rd.*+?(x)[y]$^|\\");
        assert_eq!(masks.redact("pw=p@ss w0rd.*+?(x)[y]$^|\\!"), "pw=***!");
        assert_eq!(masks.redact("p@ss w0rdX"), "p@ss w0rdX");
    }

    #[test]
    fn non_utf8_file_secrets_are_masked_byte_exact() {
        let masks = Masks::default();
        masks.register(b"\xffbinary-secret\xfe");
        assert_eq!(
            masks.redact_bytes(b"a \xffbinary-secret\xfe b"),
            b"a *** b".to_vec()
        );
        assert_eq!(masks.longest(), 15);
    }
}
