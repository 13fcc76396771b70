//! A bounded window over the end of a command's output, for error messages.

/// Keeps the last bytes of a stream (at most a fixed number), however much passes through,
/// and yields its last lines. Memory stays bounded by the capacity.
#[derive(Debug, Clone)]
pub struct Tail {
    buf: Vec<u8>,
    cap: usize,
    dropped: bool,
}

impl Tail {
    /// The number of lines an error shows.
    pub const LINES: usize = 20;

    /// A tail keeping at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            buf: Vec::new(),
            cap: cap.max(1),
            dropped: false,
        }
    }

    /// Appends a chunk of output.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.cap {
            self.dropped |= chunk.len() > self.cap || !self.buf.is_empty();
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - self.cap..]);
            return;
        }
        self.buf.extend_from_slice(chunk);
        // Drain only when twice over the cap, so the cost is amortised over many pushes.
        if self.buf.len() > 2 * self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
            self.dropped = true;
        }
    }

    /// The last `n` lines (without line endings), lossily decoded. A first line that may
    /// have been cut by the window is dropped unless it is all there is.
    pub(crate) fn lines(&self, n: usize) -> Vec<String> {
        let start = self.buf.len().saturating_sub(self.cap);
        let window = &self.buf[start..];
        let text = String::from_utf8_lossy(window);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            return Vec::new();
        }
        let mut lines: Vec<&str> = text.split('\n').collect();
        if (start > 0 || self.dropped) && lines.len() > 1 {
            lines.remove(0);
        }
        let skip = lines.len().saturating_sub(n);
        lines[skip..]
            .iter()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn keeps_last_lines_within_capacity() {
        let mut t = Tail::new(64);
        for i in 0..1000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(t.lines(2), vec!["line 998", "line 999"]);
        assert!(t.buf.len() <= 128 + 16);
        let mut big = Tail::new(8);
        big.push(b"aaaaaaaaaaaaaaaa\nbcd");
        assert_eq!(big.lines(5), vec!["bcd"]);
    }
}
