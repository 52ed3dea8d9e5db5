//! A workflow file read once into memory, with the tables needed to turn the YAML parser's
//! character positions into byte offsets (for miette) and 1-based line/column pairs (for people).

use std::path::{Path, PathBuf};

/// A byte range in a [`Source`]. Empty spans point between two characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub len: usize,
    pub offset: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Span { len, offset }
    }

    pub fn end(self) -> usize {
        self.offset + self.len
    }
}

/// One file's text and where it came from.
#[derive(Debug)]
pub struct Source {
    /// The text is all ASCII, so a character column is a byte count: positions convert in
    /// constant time instead of by walking the line (a long flow-style line, like a plan in
    /// a replies file, has hundreds of nodes).
    ascii: bool,
    /// Byte offset at which every line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
    /// The name shown in diagnostics: the path as the user typed it.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// Reads `path`. Invalid UTF-8 is an error, not a lossy conversion: a workflow author
    /// must see exactly what the tool saw.
    pub fn read(path: &Path) -> std::io::Result<Source> {
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))?;
        Ok(Source::new(
            path.display().to_string(),
            path.to_path_buf(),
            text,
        ))
    }

    pub fn new(name: String, path: PathBuf, text: String) -> Source {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            ascii: text.is_ascii(),
            line_starts,
            name,
            path,
            text,
        }
    }

    /// The directory relative paths in the workflow are resolved against.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// Byte offset of a parser position given as 1-based line and 0-based character column.
    pub fn offset_of(&self, line: usize, char_col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        if self.ascii {
            return (start + char_col).min(self.text.len());
        }
        let rest = &self.text[start..];
        let width: usize = rest.chars().take(char_col).map(char::len_utf8).sum();
        (start + width).min(self.text.len())
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = if self.ascii {
            offset - start
        } else {
            self.text[start..offset].chars().count()
        };
        (line + 1, col + 1)
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.offset..span.end()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_line_cols_round_trip_with_multibyte_text() {
        let src = Source::new("t".into(), "t".into(), "a: é\nbé: c\n".into());
        let off = src.offset_of(2, 4);
        assert_eq!(src.slice(Span::new(off, 1)), "c");
        assert_eq!(src.line_col(off), (2, 5));
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.offset_of(99, 0), src.text.len());
    }

    #[test]
    fn ascii_text_takes_the_fast_path_with_the_same_answers() {
        let text = "a: [1, 2]\nbb: {c: d}\n";
        let fast = Source::new("t".into(), "t".into(), text.into());
        assert!(fast.ascii);
        let mut slow = Source::new("t".into(), "t".into(), text.into());
        slow.ascii = false;
        for line in 0..5 {
            for col in 0..30 {
                assert_eq!(
                    fast.offset_of(line, col),
                    slow.offset_of(line, col),
                    "{line}:{col}"
                );
            }
        }
    }
}
