//! Renders diagnostics: with miette (source line, caret, label, help) for people, or as one
//! JSON document for tools and editors.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::source::Source;

/// A diagnostic bound to its source, in the shape miette renders.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
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
    let report = Report {
        diagnostic,
        source: NamedSource::new(source.name.clone(), source.text.clone()).with_language("yaml"),
    };
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, &report);
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
