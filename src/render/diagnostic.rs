//! Renders diagnostics: with miette (source line, caret, label, help) for people, or as one
//! JSON document for tools and editors.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::source::Source;

/// Lines longer than this are not drawn with a caret: a 1 MB line would be printed whole
/// for every diagnostic on it. Such a diagnostic is printed compactly, with its position.
const MAX_DRAWN_LINE: usize = 400;

/// A diagnostic bound to its source, in the shape miette renders.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Borrowed<'a>,
}

/// The workflow's text as miette reads it, borrowed (rendering a diagnostic must not copy
/// the whole file), with its name.
struct Borrowed<'a> {
    name: &'a str,
    text: &'a str,
}

impl SourceCode for Borrowed<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.to_string(),
                inner.data(),
                *inner.span(),
                inner.line(),
                inner.column(),
                inner.line_count(),
            )
            .with_language("yaml"),
        ))
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
    if touches_a_long_line(source, diagnostic) {
        return compact(source, diagnostic);
    }
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let report = Report {
        diagnostic,
        source: Borrowed {
            name: &source.name,
            text: &source.text,
        },
    };
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, &report);
    out
}

/// Whether the lines miette would draw for `d` (its own and one on each side) include one
/// longer than [`MAX_DRAWN_LINE`].
fn touches_a_long_line(source: &Source, d: &Diagnostic) -> bool {
    let text = source.text.as_str();
    let start = d.span.offset.min(text.len());
    let end = d.span.end().min(text.len()).max(start);
    // From the start of the line before to the end of the line after.
    let mut from = text[..start].rfind('\n').unwrap_or(0);
    from = text[..from].rfind('\n').map_or(0, |i| i + 1);
    let mut to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    if to < text.len() {
        to = text[to + 1..].find('\n').map_or(text.len(), |i| to + 1 + i);
    }
    if to - from <= MAX_DRAWN_LINE {
        return false;
    }
    text[from..to]
        .split('\n')
        .any(|line| line.len() > MAX_DRAWN_LINE)
}

/// `code`, the message, the position, a short quote of the spot, label and help, without
/// drawing the line.
fn compact(source: &Source, d: &Diagnostic) -> String {
    let (line, column) = source.line_col(d.span.offset);
    let text = source.text.as_str();
    let start = d.span.offset.min(text.len());
    let end = (start + d.span.len.min(60)).min(text.len());
    let quote: String = text
        .get(start..end)
        .unwrap_or("")
        .chars()
        .take_while(|c| *c != '\n')
        .collect();
    let mut out = format!(
        "{}\n\n  × {}\n   at {}:{line}:{column} (a line too long to show): `{quote}`\n",
        d.kind.code(),
        d.message,
        source.name
    );
    if !d.label.is_empty() {
        out.push_str(&format!("   {}\n", d.label));
    }
    if let Some(help) = d.help.as_deref().filter(|h| !h.is_empty()) {
        out.push_str(&format!("  help: {help}\n"));
    }
    out.push('\n');
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
