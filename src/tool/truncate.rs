//! Bounded capture of tool output: keep the first `limit` bytes, count the rest, and cut on
//! a UTF-8 character boundary with a marker saying how much was dropped.
//!
//! A tool can print gigabytes (`yes`, a chatty build, a huge HTTP body). Holding all of it
//! would let one call exhaust memory, and showing all of it would exhaust the model's
//! context, so readers stream into a [`Capture`] that never grows past its limit (plus a
//! small tail kept for error messages, where the last lines matter most).

use super::ToolOutput;

/// Bytes of the end of a stream kept for error messages (`exited with code 1; stderr: ...`).
pub const ERROR_TAIL_BYTES: usize = 2048;

/// The text appended to cut output. Kept in one place so every tool says it the same way.
pub fn marker(omitted: u64) -> String {
    format!("\n[... truncated {omitted} bytes ...]")
}

/// A byte stream captured with bounded memory: the head up to `limit`, the last
/// [`ERROR_TAIL_BYTES`] bytes, and the total length.
#[derive(Debug)]
pub struct Capture {
    head: Vec<u8>,
    limit: usize,
    tail: Vec<u8>,
    total: u64,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture {
            head: Vec::with_capacity(limit.min(64 * 1024)),
            limit,
            tail: Vec::new(),
            total: 0,
        }
    }

    /// Appends bytes; whatever does not fit in the head is only counted (and kept in the tail).
    pub fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        let room = self.limit - self.head.len();
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        if bytes.len() >= ERROR_TAIL_BYTES {
            self.tail.clear();
            self.tail
                .extend_from_slice(&bytes[bytes.len() - ERROR_TAIL_BYTES..]);
        } else {
            self.tail.extend_from_slice(bytes);
            // Compact only once the tail doubled, so pushing stays amortized O(1).
            if self.tail.len() > 2 * ERROR_TAIL_BYTES {
                self.tail.drain(..self.tail.len() - ERROR_TAIL_BYTES);
            }
        }
    }

    /// Counts bytes that were dropped before they reached this capture.
    pub fn skip(&mut self, count: u64) {
        self.total = self.total.saturating_add(count);
    }

    /// Total bytes pushed or skipped.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The head (as far as it was kept) and how many bytes it is missing.
    pub fn head(&self) -> (&[u8], u64) {
        (&self.head, self.total - self.head.len() as u64)
    }

    /// The captured text, cut to the limit on a character boundary, with the marker when
    /// anything was dropped. Invalid UTF-8 is replaced, never an error: tools print bytes.
    pub fn into_output(self) -> ToolOutput {
        let cut = self.total > self.head.len() as u64;
        let bytes = if cut {
            strip_partial_char(&self.head)
        } else {
            &self.head[..]
        };
        let (mut content, used) = decode_prefix(bytes, self.limit);
        let omitted = self.total - used as u64;
        if omitted > 0 {
            content.push_str(&marker(omitted));
        }
        ToolOutput {
            content,
            truncated: omitted > 0,
        }
    }

    /// The last `max` bytes of the stream as text, prefixed by a note when earlier bytes were
    /// left out. Used for failure messages, where the end of stderr usually says why.
    pub fn tail_text(&self, max: usize) -> String {
        let max = max.min(ERROR_TAIL_BYTES);
        let start = self.tail.len().saturating_sub(max);
        let mut bytes = &self.tail[start..];
        // Unless these bytes are the whole stream, the cut may have split a character:
        // skip its continuation bytes.
        let whole_stream = start == 0 && self.total == self.tail.len() as u64;
        if !whole_stream {
            while let [first, rest @ ..] = bytes {
                if (first & 0b1100_0000) != 0b1000_0000 {
                    break;
                }
                bytes = rest;
            }
        }
        let text = String::from_utf8_lossy(bytes);
        let omitted = self.total - bytes.len() as u64;
        let text = text.trim_end();
        if omitted > 0 {
            format!("[... {omitted} earlier bytes left out ...]\n{text}")
        } else {
            text.to_string()
        }
    }
}

/// Cuts already-complete text (mock results, builtin output) to `limit` bytes with the marker.
pub fn truncate_text(text: &str, limit: usize) -> ToolOutput {
    let mut capture = Capture::new(limit);
    capture.push(text.as_bytes());
    capture.into_output()
}

/// Drops an incomplete UTF-8 sequence at the end of a cut buffer, so the cut never shows up
/// as a replacement character.
fn strip_partial_char(bytes: &[u8]) -> &[u8] {
    // A character is at most 4 bytes: look back over at most 3 continuation bytes.
    for back in 1..=bytes.len().min(4) {
        let at = bytes.len() - back;
        let byte = bytes[at];
        if (byte & 0b1100_0000) == 0b1000_0000 {
            continue;
        }
        let width = match byte {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return bytes,
        };
        return if width > back { &bytes[..at] } else { bytes };
    }
    bytes
}

/// Decodes at most `limit` bytes of text from the start of `bytes` (invalid sequences become
/// U+FFFD), never splitting a character. Returns the text and how many input bytes it covers.
fn decode_prefix(bytes: &[u8], limit: usize) -> (String, usize) {
    let mut out = String::with_capacity(bytes.len().min(limit));
    let mut used = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let room = limit - out.len();
        if valid.len() > room {
            let end = floor_char_boundary(valid, room);
            out.push_str(&valid[..end]);
            return (out, used + end);
        }
        out.push_str(valid);
        used += valid.len();
        let invalid = chunk.invalid();
        if !invalid.is_empty() {
            if limit - out.len() < char::REPLACEMENT_CHARACTER.len_utf8() {
                return (out, used);
            }
            out.push(char::REPLACEMENT_CHARACTER);
            used += invalid.len();
        }
    }
    (out, used)
}

/// The largest index `<= at` that starts a character of `text`.
pub fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_char_boundaries_with_the_marker() {
        // (input, limit, expected content, truncated)
        let cases: [(&str, usize, &str, bool); 7] = [
            ("hello", 10, "hello", false),
            ("hello", 5, "hello", false),
            ("hello world", 5, "hello\n[... truncated 6 bytes ...]", true),
            // "é" is 2 bytes: a limit of 2 would split the second one.
            ("aéé", 2, "a\n[... truncated 4 bytes ...]", true),
            ("aéé", 3, "aé\n[... truncated 2 bytes ...]", true),
            // A 4-byte emoji never half-kept.
            ("😀😀", 6, "😀\n[... truncated 4 bytes ...]", true),
            ("", 0, "", false),
        ];
        for (input, limit, want, truncated) in cases {
            let out = truncate_text(input, limit);
            assert_eq!(out.content, want, "{input:?} at {limit}");
            assert_eq!(out.truncated, truncated, "{input:?} at {limit}");
        }
    }

    #[test]
    fn streaming_pushes_keep_memory_bounded_and_count_everything() {
        let mut capture = Capture::new(100);
        let chunk = [b'x'; 1000];
        for _ in 0..10_000 {
            capture.push(&chunk);
        }
        assert_eq!(capture.head.len(), 100);
        assert!(capture.tail.len() <= 2 * ERROR_TAIL_BYTES);
        assert_eq!(capture.total(), 10_000_000);
        let out = capture.into_output();
        assert_eq!(
            out.content,
            format!("{}{}", "x".repeat(100), marker(9_999_900))
        );
    }

    #[test]
    fn a_split_multibyte_char_in_a_stream_is_dropped_not_garbled() {
        let mut capture = Capture::new(4);
        capture.push("ab".as_bytes());
        capture.push("€z".as_bytes()); // € is 3 bytes: only 2 fit
        let out = capture.into_output();
        assert_eq!(out.content, format!("ab{}", marker(4)));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_an_error() {
        let mut capture = Capture::new(100);
        capture.push(b"ok \xff done");
        assert_eq!(capture.into_output().content, "ok \u{FFFD} done");
    }

    #[test]
    fn tail_keeps_the_end_and_says_what_was_left_out() {
        let mut capture = Capture::new(10);
        for i in 0..1000 {
            capture.push(format!("line {i}\n").as_bytes());
        }
        let tail = capture.tail_text(20);
        assert!(tail.ends_with("line 998\nline 999"), "{tail}");
        let (lead, rest) = tail.split_once('\n').unwrap();
        assert_eq!(
            lead,
            format!("[... {} earlier bytes left out ...]", capture.total() - 20)
        );
        assert_eq!(rest.len(), 19); // 20 bytes minus the trailing newline trimmed
        let mut short = Capture::new(10);
        short.push(b"boom\n");
        assert_eq!(short.tail_text(100), "boom");
    }

    #[test]
    fn tail_never_starts_inside_a_character() {
        let mut capture = Capture::new(0);
        capture.push("ééééé".as_bytes()); // 10 bytes
        assert_eq!(
            capture.tail_text(5),
            "[... 6 earlier bytes left out ...]\néé"
        );
    }
}
