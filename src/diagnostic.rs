//! Problems found in a workflow file, each tied to a span of its source.
//!
//! `pe check` collects every diagnostic before it reports (one pass fixes all), so the
//! loader, the schema validator and the analyzer all push into a [`Diagnostics`] list
//! instead of returning early.

use crate::source::Span;

/// What kind of problem a diagnostic reports. The code is stable: scripts match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A builtin tool's declared `parameters` that do not match what the builtin takes.
    BuiltinArguments,
    /// A fixed plan step's `args` that do not fit its tool, or `args` without a `tool`.
    StepArguments,
    /// A `depends_on` chain that loops back on itself.
    DependencyCycle,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// The same step id twice in a fixed plan.
    DuplicateStepId,
    /// A duration that is not a number followed by `ms`, `s`, `m` or `h`.
    InvalidDuration,
    /// A schema (input, tool parameters, output) that is itself not valid JSON Schema.
    InvalidJsonSchema,
    /// A model reference that is not `provider/model`.
    InvalidModelRef,
    /// A key the format does not define.
    UnknownKey,
    /// A model names a provider that is neither built in nor declared.
    UnknownProvider,
    /// A `kind:` of provider that does not exist.
    UnknownProviderKind,
    /// A step refers to a step id that does not exist.
    UnknownStep,
    /// A step or test refers to a tool that is not declared.
    UnknownTool,
    /// A builtin tool name that does not exist.
    UnknownBuiltin,
    /// A template applies a filter (`{{ x | nope }}`) that does not exist.
    UnknownFilter,
    /// A template uses a test (`{% if x is nope %}`) that does not exist.
    UnknownTest,
    /// A template uses a variable that is not defined where it renders.
    UndefinedVariable,
    /// A required key is absent.
    MissingKey,
    /// A number outside its allowed range.
    OutOfRange,
    /// Any other structural mismatch with the schema (wrong type, pattern, enum).
    Schema,
    /// A template that does not parse.
    TemplateSyntax,
    /// A `tests:` case that would call a real model or run a tool for real.
    TestNotHermetic,
    /// A tool that declares no kind, or more than one.
    ToolKind,
    /// A tool key that does not apply to the tool's kind (`include` without `mcp`,
    /// `parameters` on an `mcp` or `workflow` entry).
    ToolOption,
    /// Workflow tools that call each other in a loop, across files.
    WorkflowCycle,
    /// A workflow tool whose file cannot be read or is not a valid workflow.
    WorkflowTool,
    /// A YAML file passes a loader limit (aliases copy too much, values nest too deep).
    YamlLimit,
    /// The YAML itself is malformed.
    YamlSyntax,
    /// YAML features the format does not accept (several documents, complex keys, tags).
    YamlUnsupported,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::BuiltinArguments => "pe::builtin-arguments",
            Kind::StepArguments => "pe::step-arguments",
            Kind::DependencyCycle => "pe::dependency-cycle",
            Kind::DuplicateKey => "pe::duplicate-key",
            Kind::DuplicateStepId => "pe::duplicate-step-id",
            Kind::InvalidDuration => "pe::invalid-duration",
            Kind::InvalidJsonSchema => "pe::invalid-json-schema",
            Kind::InvalidModelRef => "pe::invalid-model-ref",
            Kind::MissingKey => "pe::missing-key",
            Kind::OutOfRange => "pe::out-of-range",
            Kind::Schema => "pe::schema",
            Kind::TemplateSyntax => "pe::template-syntax",
            Kind::TestNotHermetic => "pe::test-not-hermetic",
            Kind::ToolKind => "pe::tool-kind",
            Kind::ToolOption => "pe::tool-option",
            Kind::UndefinedVariable => "pe::undefined-variable",
            Kind::UnknownBuiltin => "pe::unknown-builtin",
            Kind::UnknownFilter => "pe::unknown-filter",
            Kind::UnknownKey => "pe::unknown-key",
            Kind::UnknownProvider => "pe::unknown-provider",
            Kind::UnknownProviderKind => "pe::unknown-provider-kind",
            Kind::UnknownStep => "pe::unknown-step",
            Kind::UnknownTest => "pe::unknown-test",
            Kind::UnknownTool => "pe::unknown-tool",
            Kind::WorkflowCycle => "pe::workflow-cycle",
            Kind::WorkflowTool => "pe::workflow-tool",
            Kind::YamlLimit => "pe::yaml-limit",
            Kind::YamlSyntax => "pe::yaml-syntax",
            Kind::YamlUnsupported => "pe::yaml-unsupported",
        }
    }
}

/// One located problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub help: Option<String>,
    pub kind: Kind,
    /// Short text shown under the caret.
    pub label: String,
    /// The headline: what is wrong, in a sentence.
    pub message: String,
    pub span: Span,
}

impl Diagnostic {
    pub fn new(kind: Kind, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            help: None,
            kind,
            label: String::new(),
            message: message.into(),
            span,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The same diagnostic at another place.
    pub fn span_at(mut self, span: Span) -> Self {
        self.span = span;
        self
    }
}

/// Where problems are collected: a `Vec` keeps them all; [`Bounded`] keeps the first ones
/// in file order and counts the rest, so a file with a hundred thousand problems does not
/// hold a hundred thousand diagnostics in memory.
pub trait DiagnosticSink {
    fn push(&mut self, diagnostic: Diagnostic);

    /// How many problems were pushed so far (kept or not).
    fn pushed(&self) -> usize;

    /// Whether a problem of `kind` was pushed and kept.
    fn has(&self, kind: Kind) -> bool;
}

impl DiagnosticSink for Vec<Diagnostic> {
    fn push(&mut self, diagnostic: Diagnostic) {
        Vec::push(self, diagnostic);
    }

    fn pushed(&self) -> usize {
        self.len()
    }

    fn has(&self, kind: Kind) -> bool {
        self.iter().any(|d| d.kind == kind)
    }
}

/// The first `limit` diagnostics in file order (sorted by position, duplicates dropped),
/// and a count of the others. Kept ones are compacted whenever four times the limit pile up.
#[derive(Debug)]
pub(crate) struct Bounded {
    dropped: usize,
    kept: Vec<Diagnostic>,
    limit: usize,
    pushed: usize,
    /// Kinds ever pushed (so a syntax error is known even when it was not kept).
    seen: Vec<Kind>,
}

impl Bounded {
    pub(crate) fn new(limit: usize) -> Bounded {
        Bounded {
            dropped: 0,
            kept: Vec::new(),
            limit,
            pushed: 0,
            seen: Vec::new(),
        }
    }

    fn compact(&mut self) {
        self.kept.sort_by_key(|d| (d.span.offset, d.kind));
        self.kept.dedup();
        if self.kept.len() > self.limit {
            self.dropped += self.kept.len() - self.limit;
            self.kept.truncate(self.limit);
        }
    }

    /// The kept diagnostics in file order and how many more there were.
    pub(crate) fn finish(mut self) -> (Vec<Diagnostic>, usize) {
        self.compact();
        (self.kept, self.dropped)
    }
}

impl DiagnosticSink for Bounded {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.pushed += 1;
        if !self.seen.contains(&diagnostic.kind) {
            self.seen.push(diagnostic.kind);
        }
        self.kept.push(diagnostic);
        if self.kept.len() >= 4 * self.limit.max(1) {
            self.compact();
        }
    }

    fn pushed(&self) -> usize {
        self.pushed
    }

    fn has(&self, kind: Kind) -> bool {
        self.seen.contains(&kind)
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // An edit distance up to a third of the word: catches `max_step`, `opneai`, `versoin`
    // without claiming `max_iterations` was meant to be `max_steps`.
    let length = word.chars().count();
    // No long word is a typo of a name; comparing one would cost length × candidates.
    if length > 64 {
        return None;
    }
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip the far ones unmeasured.
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `did you mean ...?` help text, or `one of: ...` when nothing is close.
pub fn suggestion(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => "nothing is defined here".to_string(),
        None => format!(
            "expected one of: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_the_first_in_file_order_and_counts_the_rest() {
        let mut sink = Bounded::new(3);
        for offset in (0..1000).rev() {
            sink.push(Diagnostic::new(Kind::UnknownKey, Span::new(offset, 1), "x"));
        }
        sink.push(Diagnostic::new(Kind::UnknownKey, Span::new(0, 1), "x"));
        assert_eq!(sink.pushed(), 1001);
        assert!(sink.has(Kind::UnknownKey) && !sink.has(Kind::YamlSyntax));
        let (kept, dropped) = sink.finish();
        let offsets: Vec<usize> = kept.iter().map(|d| d.span.offset).collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert_eq!(dropped, 997);
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("max_step", ["max_steps", "parallel"]),
            Some("max_steps")
        );
        assert_eq!(did_you_mean("zzz", ["max_steps", "parallel"]), None);
        assert_eq!(suggestion("zzz", &["a", "b"]), "expected one of: `a`, `b`");
    }
}
