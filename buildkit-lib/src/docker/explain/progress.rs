//! Reading `--progress=rawjson`: BuildKit's status stream, merged by vertex, and the same
//! progress rendered as the human text `--progress=plain` prints.
//!
//! buildx writes one JSON object per status update (buildx 0.29 one per line, 0.13
//! indented over many lines), and its own messages (a local cache that could not be
//! imported, the final error with the Dockerfile excerpt) as plain text in between. The
//! reader takes bytes as they come, cut anywhere, and gives back text for the log.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A text line or JSON object larger than this is let through as text: a stream that is
/// not rawjson must not be held back.
const MAX_PENDING: usize = 1 << 20;

/// One BuildKit vertex (one node of the build graph: an instruction, a context transfer,
/// an export), merged from every update the stream carried for its digest.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Vertex {
    /// The vertex digest, unique in the build.
    pub digest: String,
    /// Its name as BuildKit shows it (`[builder 5/6] COPY src/ /opt/app/lib/`); build
    /// args are expanded in it.
    pub name: String,
    /// The digests of the vertexes it depends on.
    pub inputs: Vec<String>,
    /// True when BuildKit took its result from the cache.
    pub cached: bool,
    /// When it started (RFC 3339, as BuildKit wrote it).
    pub started: Option<String>,
    /// When it completed.
    pub completed: Option<String>,
    /// Its error, when it failed.
    pub error: Option<String>,
}

impl Vertex {
    /// Seconds from start to completion, when both are known.
    pub fn seconds(&self) -> Option<f64> {
        let start = rfc3339_seconds(self.started.as_deref()?)?;
        let end = rfc3339_seconds(self.completed.as_deref()?)?;
        Some((end - start).max(0.0))
    }
}

/// A streaming reader of `docker buildx build --progress=rawjson` output.
///
/// [`ProgressReader::push`] takes the bytes as read (objects may be cut anywhere) and
/// returns the text `--progress=plain` would have shown for them; [`ProgressReader::finish`]
/// flushes the rest. What was read stays available: [`ProgressReader::vertexes`] in the
/// order BuildKit first named them, and the plain-text lines buildx wrote between objects.
#[derive(Debug, Default)]
pub struct ProgressReader {
    pending: Vec<u8>,
    vertexes: Vec<Vertex>,
    index: HashMap<String, usize>,
    shown: HashMap<String, Shown>,
    next_number: usize,
    text_lines: Vec<String>,
    warnings: Vec<String>,
    printed: bool,
    /// The vertex the last line shown belongs to.
    current: Option<String>,
}

/// What the plain rendering already said about a vertex.
#[derive(Debug, Default)]
struct Shown {
    number: usize,
    announced: bool,
    finished: bool,
    statuses_done: Vec<String>,
    partial_log: Vec<u8>,
}

impl ProgressReader {
    /// A reader that has read nothing.
    pub fn new() -> ProgressReader {
        ProgressReader::default()
    }

    /// Reads `bytes` (the next piece of the stream) and returns the human text for every
    /// object and text line now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        self.drain(&mut out, false);
        out.into_bytes()
    }

    /// Ends the stream: whatever is left is let through as text, partial log lines are
    /// shown, and the warnings BuildKit sent are listed.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = String::new();
        self.drain(&mut out, true);
        let digests: Vec<String> = self.vertexes.iter().map(|v| v.digest.clone()).collect();
        for digest in digests {
            self.flush_log(&digest, &mut out);
        }
        if !self.warnings.is_empty() {
            let n = self.warnings.len();
            let _ = writeln!(out, "\n{n} warning{} found:", if n == 1 { "" } else { "s" });
            for w in &self.warnings {
                let _ = writeln!(out, " - {w}");
            }
            self.warnings.clear();
        }
        out.into_bytes()
    }

    /// Every vertex read so far, in the order BuildKit first named them.
    pub fn vertexes(&self) -> &[Vertex] {
        &self.vertexes
    }

    /// The plain-text lines buildx wrote between the JSON objects (its warnings, such as a
    /// local cache it could not import, and its final error), without line ends.
    pub fn text_lines(&self) -> &[String] {
        &self.text_lines
    }

    /// The status lines of vertex `digest` that completed, in order (`exporting manifest
    /// list sha256:...`, `naming to docker.io/library/app:1`), as the plain text shows them.
    pub fn statuses(&self, digest: &str) -> &[String] {
        self.shown
            .get(digest)
            .map(|s| s.statuses_done.as_slice())
            .unwrap_or_default()
    }

    /// Reads a whole recorded stream at once: the reader and the human text.
    #[cfg(test)]
    pub fn read_all(bytes: &[u8]) -> (ProgressReader, String) {
        let mut reader = ProgressReader::new();
        let mut text = reader.push(bytes);
        text.extend(reader.finish());
        (reader, String::from_utf8_lossy(&text).into_owned())
    }

    fn drain(&mut self, out: &mut String, at_end: bool) {
        loop {
            let start = self
                .pending
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.pending.len());
            if start == self.pending.len() {
                if at_end || start > 0 {
                    self.pending.clear();
                }
                return;
            }
            if self.pending[start] == b'{' {
                match object_end(&self.pending[start..]) {
                    Some(len) => {
                        let object: Vec<u8> = self.pending[start..start + len].to_vec();
                        self.pending.drain(..start + len);
                        match serde_json::from_slice::<RawStatus>(&object) {
                            Ok(status) if status.is_status() => self.apply(status, out),
                            _ => self.text(&String::from_utf8_lossy(&object), out),
                        }
                        continue;
                    }
                    None if !at_end && self.pending.len() - start < MAX_PENDING => return,
                    None => {}
                }
            }
            // A text line (or what cannot be an object), with its indentation: buildx
            // indents the Dockerfile lines it quotes in an error (`   1 | >>> FROM ...`).
            let start = self.pending[..start]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            match self.pending[start..].iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let line = String::from_utf8_lossy(&self.pending[start..start + end])
                        .trim_end_matches('\r')
                        .to_string();
                    self.pending.drain(..start + end + 1);
                    self.text(&line, out);
                }
                None if at_end || self.pending.len() - start >= MAX_PENDING => {
                    let line = String::from_utf8_lossy(&self.pending[start..]).into_owned();
                    self.pending.clear();
                    self.text(&line, out);
                    return;
                }
                None => return,
            }
        }
    }

    fn text(&mut self, line: &str, out: &mut String) {
        self.current = None;
        out.push_str(line);
        out.push('\n');
        self.printed = true;
        self.text_lines.push(line.to_string());
    }

    fn apply(&mut self, status: RawStatus, out: &mut String) {
        // An object may carry several updates of one vertex: the last one is its state.
        let mut touched: Vec<String> = Vec::new();
        for raw in status.vertexes.unwrap_or_default() {
            let at = match self.index.get(&raw.digest) {
                Some(&i) => i,
                None => {
                    self.vertexes.push(Vertex {
                        digest: raw.digest.clone(),
                        ..Vertex::default()
                    });
                    self.index
                        .insert(raw.digest.clone(), self.vertexes.len() - 1);
                    self.vertexes.len() - 1
                }
            };
            let v = &mut self.vertexes[at];
            if !raw.name.is_empty() {
                v.name = raw.name;
            }
            if let Some(inputs) = raw.inputs.filter(|i| !i.is_empty()) {
                v.inputs = inputs;
            }
            v.cached = raw.cached;
            v.started = raw.started;
            v.completed = raw.completed;
            v.error = raw.error.filter(|e| !e.is_empty());
            if !touched.contains(&raw.digest) {
                touched.push(raw.digest);
            }
        }
        // Names of what runs first, then what happened inside, then how each ended (a
        // vertex that started and ended in this update is named with its end): the order
        // `--progress=plain` prints them in.
        for digest in &touched {
            let running = self.index.get(digest).is_some_and(|&i| {
                let v = &self.vertexes[i];
                v.started.is_some() && v.completed.is_none()
            });
            let named = self.shown.get(digest).is_some_and(|s| s.announced);
            if running && !named {
                let _ = self.announce(digest, out);
            }
        }
        for s in status.statuses.unwrap_or_default() {
            if s.completed.is_none() {
                continue;
            }
            let Some(number) = self.announce(&s.vertex, out) else {
                continue;
            };
            let shown = self.shown.entry(s.vertex.clone()).or_default();
            if shown.statuses_done.contains(&s.id) {
                continue;
            }
            shown.statuses_done.push(s.id.clone());
            let amount = if s.current > 0 {
                format!(
                    " {}",
                    crate::units::human_bytes(s.current as u64).replace(' ', "")
                )
            } else {
                match (
                    s.started.as_deref().and_then(rfc3339_seconds),
                    s.completed.as_deref().and_then(rfc3339_seconds),
                ) {
                    (Some(a), Some(b)) if b - a >= 0.05 => format!(" {:.1}s", b - a),
                    _ => String::new(),
                }
            };
            let _ = writeln!(out, "#{number} {}{amount} done", s.id);
        }
        for log in status.logs.unwrap_or_default() {
            let Some(data) = base64_decode(&log.data) else {
                continue;
            };
            if self.announce(&log.vertex, out).is_none() {
                continue;
            }
            let started = self
                .index
                .get(&log.vertex)
                .and_then(|&i| self.vertexes[i].started.as_deref())
                .and_then(rfc3339_seconds);
            let at = log.timestamp.as_deref().and_then(rfc3339_seconds);
            let offset = match (started, at) {
                (Some(s), Some(t)) => (t - s).max(0.0),
                _ => 0.0,
            };
            let shown = self.shown.entry(log.vertex.clone()).or_default();
            shown.partial_log.extend_from_slice(&data);
            let number = shown.number;
            while let Some(end) = shown.partial_log.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = shown.partial_log.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                let _ = writeln!(out, "#{number} {offset:.3} {}", line.trim_end_matches('\r'));
            }
        }
        for w in status.warnings.unwrap_or_default() {
            if let Some(short) = base64_decode(&w.short) {
                self.warnings
                    .push(String::from_utf8_lossy(&short).trim().to_string());
            }
        }
        for digest in touched {
            self.render_vertex(&digest, out);
        }
    }

    /// Gives the vertex its `#N` and prints its name, once; `None` for an unknown vertex.
    fn announce(&mut self, digest: &str, out: &mut String) -> Option<usize> {
        let name = self.vertexes.get(*self.index.get(digest)?)?.name.clone();
        let shown = self.shown.entry(digest.to_string()).or_default();
        if !shown.announced {
            self.next_number += 1;
            shown.number = self.next_number;
            shown.announced = true;
        } else if self.current.as_deref() == Some(digest) {
            return Some(shown.number);
        }
        // Named again when other output came in between, as `--progress=plain` does: each
        // line reads with the vertex it belongs to.
        if self.printed {
            out.push('\n');
        }
        let _ = writeln!(out, "#{} {name}", shown.number);
        self.printed = true;
        self.current = Some(digest.to_string());
        Some(shown.number)
    }

    fn render_vertex(&mut self, digest: &str, out: &mut String) {
        let Some(&i) = self.index.get(digest) else {
            return;
        };
        let v = self.vertexes[i].clone();
        if v.started.is_none() && !v.cached {
            return;
        }
        let finished = self.shown.get(digest).is_some_and(|s| s.finished);
        if v.completed.is_none() {
            if let Some(s) = self.shown.get_mut(digest) {
                // Started again (BuildKit restarts some vertexes): its end is still to come.
                s.finished = false;
            }
            return;
        }
        if finished {
            return;
        }
        let _ = self.announce(digest, out);
        self.flush_log(digest, out);
        let Some(shown) = self.shown.get_mut(digest) else {
            return;
        };
        shown.finished = true;
        let number = shown.number;
        if let Some(error) = &v.error {
            let _ = writeln!(out, "#{number} ERROR: {error}");
        } else if v.cached {
            let _ = writeln!(out, "#{number} CACHED");
        } else {
            let _ = writeln!(out, "#{number} DONE {:.1}s", v.seconds().unwrap_or(0.0));
        }
    }

    fn flush_log(&mut self, digest: &str, out: &mut String) {
        if self
            .shown
            .get(digest)
            .is_some_and(|s| !s.partial_log.is_empty())
        {
            let _ = self.announce(digest, out);
        }
        if let Some(shown) = self.shown.get_mut(digest) {
            if !shown.partial_log.is_empty() {
                let rest = String::from_utf8_lossy(&shown.partial_log).into_owned();
                shown.partial_log.clear();
                let _ = writeln!(out, "#{} {rest}", shown.number);
            }
        }
    }
}

/// The length of the JSON object at the start of `bytes` (which starts with `{`), or
/// `None` when it is not complete yet.
fn object_end(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// One object of the stream: BuildKit's `SolveStatus` as buildx encodes it.
#[derive(Debug, Deserialize)]
struct RawStatus {
    #[serde(default)]
    vertexes: Option<Vec<RawVertex>>,
    #[serde(default)]
    statuses: Option<Vec<RawVertexStatus>>,
    #[serde(default)]
    logs: Option<Vec<RawLog>>,
    #[serde(default)]
    warnings: Option<Vec<RawWarning>>,
}

impl RawStatus {
    /// Whether the object is a status at all (other JSON is shown as it is).
    fn is_status(&self) -> bool {
        self.vertexes.is_some()
            || self.statuses.is_some()
            || self.logs.is_some()
            || self.warnings.is_some()
    }
}

#[derive(Debug, Deserialize)]
struct RawVertex {
    digest: String,
    #[serde(default)]
    inputs: Option<Vec<String>>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    started: Option<String>,
    #[serde(default)]
    completed: Option<String>,
    #[serde(default)]
    cached: bool,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawVertexStatus {
    #[serde(default)]
    id: String,
    #[serde(default)]
    vertex: String,
    #[serde(default)]
    current: i64,
    #[serde(default)]
    started: Option<String>,
    #[serde(default)]
    completed: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawLog {
    #[serde(default)]
    vertex: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawWarning {
    #[serde(default)]
    short: String,
}

/// Seconds since 1970 of an RFC 3339 time (`2026-12-06T19:55:14.691716602Z`, or with an
/// offset), with its fraction.
pub(crate) fn rfc3339_seconds(text: &str) -> Option<f64> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut c = clock.splitn(3, ':');
    let hours: f64 = c.next()?.parse().ok()?;
    let minutes: f64 = c.next()?.parse().ok()?;
    let seconds: f64 = c.next()?.parse().ok()?;
    let offset_secs = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let (h, m) = offset[1..].split_once(':')?;
            let secs = h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0;
            if offset.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => 0.0,
    };
    let days = crate::time::days_from_civil(year, month, day) as f64;
    Some(days * 86_400.0 + hours * 3600.0 + minutes * 60.0 + seconds - offset_secs)
}

/// Standard base64 (with or without padding), as Go encodes `[]byte` in JSON.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_cut_anywhere_merge_by_digest() {
        let stream = concat!(
            "{\"vertexes\":[{\"digest\":\"sha256:a\",\"name\":\"[2/2] RUN echo {x}\"}]}\n",
            "{\n  \"vertexes\": [\n    {\"digest\":\"sha256:a\",\"name\":\"[2/2] RUN echo {x}\",",
            "\"inputs\":[\"sha256:b\"],\"started\":\"2026-01-01T00:00:01Z\"}\n  ]\n}\n",
            "WARNING: local cache import at /c not found\n",
            "{\"logs\":[{\"vertex\":\"sha256:a\",\"stream\":1,\"data\":\"aGVsbG8KcGFy\",",
            "\"timestamp\":\"2026-01-01T00:00:01.5Z\"}]}",
            "{\"vertexes\":[{\"digest\":\"sha256:a\",\"name\":\"[2/2] RUN echo {x}\",",
            "\"started\":\"2026-01-01T00:00:01Z\",\"completed\":\"2026-01-01T00:00:03.25Z\"}]}\n",
        );
        // Every split point gives the same result.
        let whole = ProgressReader::read_all(stream.as_bytes()).1;
        for cut in 1..stream.len() {
            let mut r = ProgressReader::new();
            let mut text = r.push(&stream.as_bytes()[..cut]);
            text.extend(r.push(&stream.as_bytes()[cut..]));
            text.extend(r.finish());
            assert_eq!(String::from_utf8(text).unwrap(), whole, "cut at {cut}");
        }
        assert_eq!(
            whole,
            "#1 [2/2] RUN echo {x}\nWARNING: local cache import at /c not found\n\
             \n#1 [2/2] RUN echo {x}\n#1 0.500 hello\n#1 par\n#1 DONE 2.2s\n"
        );
        let (r, _) = ProgressReader::read_all(stream.as_bytes());
        assert_eq!(r.vertexes().len(), 1);
        let v = &r.vertexes()[0];
        assert_eq!(v.inputs, ["sha256:b"]);
        assert_eq!(v.seconds(), Some(2.25));
        assert_eq!(
            r.text_lines(),
            ["WARNING: local cache import at /c not found"]
        );
    }

    #[test]
    fn text_that_is_not_json_passes_through() {
        let (r, text) =
            ProgressReader::read_all(b"#1 plain progress\n{not json}\n{\"other\": 1}\nlast");
        assert_eq!(
            text,
            "#1 plain progress\n{not json}\n{\"other\": 1}\nlast\n"
        );
        assert!(r.vertexes().is_empty());
    }

    #[test]
    fn times_and_base64_decode() {
        assert_eq!(rfc3339_seconds("1970-01-02T00:00:01.5Z"), Some(86_401.5));
        assert_eq!(rfc3339_seconds("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(base64_decode("not base64!").is_none());
    }
}
