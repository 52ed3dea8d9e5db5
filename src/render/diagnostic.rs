//! Renders diagnostics: with miette (source line, caret, label, help) for people, or as one
//! JSON document for tools and editors.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteSpanContents};
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::source::{Source, Span};

/// A diagnostic bound to its source, in the shape miette renders.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Shown,
}

/// The text miette shows (long lines cut, see [`clip_long_lines`]), which still reports the
/// line and column of the original file in the `file:line:col` header.
struct Shown {
    /// Characters cut from the start of the span's line (a `…` stands in for them).
    cut: usize,
    name: String,
    /// 0-based line of the span.
    span_line: usize,
    text: String,
}

impl miette::SourceCode for Shown {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let mut column = inner.column();
        if inner.line() == self.span_line && column > 0 && self.cut > 0 {
            // miette counts the column in bytes: the `…` that replaced the cut is 3.
            column = column.saturating_sub('…'.len_utf8()) + self.cut;
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let d = self.diagnostic;
        let label = (!d.label.is_empty()).then(|| d.label.clone());
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(label, (d.span.offset, d.span.len)),
        )))
    }
}

/// Renders one diagnostic as text. `color` is for terminals; tests and pipes get none.
pub fn render(source: &Source, diagnostic: &Diagnostic, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let (text, span, cut) = clip_long_lines(&source.text, diagnostic.span);
    let clipped = Diagnostic {
        span,
        ..diagnostic.clone()
    };
    let report = Report {
        diagnostic: &clipped,
        source: Shown {
            cut,
            name: source.name.clone(),
            span_line: source.line_col(diagnostic.span.offset).0 - 1,
            text,
        },
    };
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, &report);
    out
}

/// How many characters of a source line a rendered diagnostic shows.
const MAX_LINE_CHARS: usize = 160;

/// The text miette shows for `span`: the source, except that the span's line and the lines
/// around it are cut to [`MAX_LINE_CHARS`] (the span's line to a window around the span),
/// so a 100 kB line prints as one screen line. Line numbers stay the same; the span is moved
/// to where it lands in the cut text; the third value is how many characters were cut from
/// the start of the span's line.
fn clip_long_lines(text: &str, span: Span) -> (String, Span, usize) {
    let offset = span.offset.min(text.len());
    let line_start = |at: usize| text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = |at: usize| text[at..].find('\n').map_or(text.len(), |i| at + i);
    let start = line_start(offset);
    let end = line_end(offset);
    let before = if start == 0 { 0 } else { line_start(start - 1) };
    let after = if end == text.len() {
        end
    } else {
        line_end(end + 1)
    };
    let long = |a: usize, b: usize| text[a..b].chars().count() > MAX_LINE_CHARS;
    let context_long = (before < start && long(before, start - 1))
        || long(start, end)
        || (after > end && long(end + 1, after));
    if !context_long {
        return (text.to_string(), span, 0);
    }
    let mut out = String::with_capacity(before + 3 * MAX_LINE_CHARS + (text.len() - after));
    out.push_str(&text[..before]);
    if before < start {
        out.push_str(&head(&text[before..start - 1]));
        out.push('\n');
    }
    // The span's line: a window that starts a third of the width before the span.
    let lead = text[start..offset].chars().count();
    let skip = lead.saturating_sub(MAX_LINE_CHARS / 3);
    let window_start = start
        + text[start..]
            .chars()
            .take(skip)
            .map(char::len_utf8)
            .sum::<usize>();
    let window_end = window_start
        + text[window_start..end]
            .chars()
            .take(MAX_LINE_CHARS)
            .map(char::len_utf8)
            .sum::<usize>();
    if skip > 0 {
        out.push('…');
    }
    let new_offset = out.len() + (offset - window_start);
    out.push_str(&text[window_start..window_end]);
    if window_end < end {
        out.push('…');
    }
    let new_len = span.len.min(window_end.saturating_sub(offset));
    if after > end {
        out.push('\n');
        out.push_str(&head(&text[end + 1..after]));
    }
    out.push_str(&text[after..]);
    (out, Span::new(new_offset, new_len), skip)
}

/// The start of a line, cut to [`MAX_LINE_CHARS`] with `…`.
fn head(line: &str) -> String {
    if line.chars().count() <= MAX_LINE_CHARS {
        return line.to_string();
    }
    let mut out: String = line.chars().take(MAX_LINE_CHARS).collect();
    out.push('…');
    out
}

/// One diagnostic in `--format json`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub code: &'static str,
    pub column: usize,
    pub end_column: usize,
    pub end_line: usize,
    pub file: &'a str,
    pub help: Option<&'a str>,
    pub label: &'a str,
    pub line: usize,
    pub message: &'a str,
    pub severity: &'static str,
}

pub fn to_json<'a>(source: &'a Source, d: &'a Diagnostic) -> JsonDiagnostic<'a> {
    let (line, column) = source.line_col(d.span.offset);
    let (end_line, end_column) = source.line_col(d.span.end());
    JsonDiagnostic {
        code: d.kind.code(),
        column,
        end_column,
        end_line,
        file: &source.name,
        help: d.help.as_deref().filter(|h| !h.is_empty()),
        label: &d.label,
        line,
        message: &d.message,
        severity: "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_left_alone() {
        let text = "a: 1\nb: 2\n";
        assert_eq!(
            clip_long_lines(text, Span::new(5, 1)),
            (text.to_string(), Span::new(5, 1), 0)
        );
    }

    #[test]
    fn a_long_line_becomes_a_window_around_the_span_and_neighbours_are_cut() {
        let long = "x".repeat(1000);
        let text = format!("a: 1\n{long}\nb: [{long}\nc: 3\n");
        let at = text.find("[").unwrap() + 500;
        let (clipped, span, cut) = clip_long_lines(&text, Span::new(at, 1));
        assert_eq!(cut, 503 - MAX_LINE_CHARS / 3);
        let lines: Vec<&str> = clipped.lines().collect();
        assert_eq!(lines.len(), 4, "line numbers are kept");
        assert_eq!(lines[0], "a: 1");
        assert_eq!(lines[1], format!("{}…", "x".repeat(MAX_LINE_CHARS)));
        assert_eq!(lines[2].chars().count(), MAX_LINE_CHARS + 2);
        assert!(lines[2].starts_with('…') && lines[2].ends_with('…'));
        assert_eq!(lines[3], "c: 3");
        // The span points at the same character, MAX_LINE_CHARS / 3 into the window.
        let line2_start = lines[0].len() + lines[1].len() + 2;
        assert_eq!(
            clipped[line2_start..span.offset].chars().count(),
            1 + MAX_LINE_CHARS / 3
        );
        assert_eq!(span.len, 1);
    }
}
