//! Parses YAML into a `serde_json::Value` while remembering where every node came from.
//!
//! We drive `saphyr-parser`'s event stream ourselves instead of using a DOM crate so that we
//! control the things the format cares about: duplicate keys are errors (not last-one-wins),
//! scalars resolve by the YAML 1.2 core schema (`yes` stays a string), and every node, keyed by
//! its JSON pointer, keeps the span of its value and of its key. The schema validator and the
//! analyzer then report problems by pointer and we turn pointers back into spans here.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as YamlSpan, Tag};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Kind};
use crate::source::{Source, Span};

/// Where a node sits in the source.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeSpans {
    /// The mapping key that introduced this node, if any.
    pub key: Option<Span>,
    /// The node itself (for collections: from its first to its last character).
    pub value: Span,
}

/// A parsed YAML document: its value and a pointer → span index.
#[derive(Debug, Default)]
pub struct Document {
    spans: HashMap<String, NodeSpans>,
    pub value: Value,
}

impl Document {
    /// Spans of the node at a JSON pointer (`""` is the root).
    pub fn spans(&self, pointer: &str) -> Option<NodeSpans> {
        self.spans.get(pointer).copied()
    }

    /// The best span to underline for a node: its value, falling back to the nearest
    /// ancestor that exists (a missing key is reported on its parent).
    pub fn value_span(&self, pointer: &str) -> Span {
        self.nearest(pointer).value
    }

    /// The key span of a node when it has one (where "unknown key" or "missing key in this
    /// mapping" should point), else its value span.
    pub fn key_span(&self, pointer: &str) -> Span {
        let spans = self.nearest(pointer);
        spans.key.unwrap_or(spans.value)
    }

    fn nearest(&self, pointer: &str) -> NodeSpans {
        let mut p = pointer;
        loop {
            if let Some(s) = self.spans.get(p) {
                return *s;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.spans.get("").copied().unwrap_or_default(),
            }
        }
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Parses `source`. Problems are pushed into `diags`; the returned document holds whatever
/// could be built (an empty document after a syntax error, since nothing after it is trustworthy).
pub fn parse(source: &Source, diags: &mut Vec<Diagnostic>) -> Document {
    let mut builder = Builder {
        anchors: HashMap::new(),
        diags,
        doc: Document::default(),
        events: Parser::new_from_str(&source.text),
        source,
    };
    match builder.document() {
        Ok(()) => builder.doc,
        Err(e) => {
            let offset = source.offset_of(e.marker().line(), e.marker().col());
            builder.diags.push(
                Diagnostic::new(
                    Kind::YamlSyntax,
                    Span::new(offset, 0),
                    "the file is not valid YAML",
                )
                .label(e.info().to_string())
                .help(yaml_help(e.info())),
            );
            Document::default()
        }
    }
}

fn yaml_help(info: &str) -> String {
    if info.contains("tab") {
        "YAML indentation must use spaces, not tabs".to_string()
    } else if info.contains("recursion limit") {
        "`[...]` and `{...}` nest at most 255 deep; no workflow needs this: flatten the structure, or quote the value if it is text".to_string()
    } else if info.contains("mapping values are not allowed") {
        "check the indentation, or quote a value that contains `: `".to_string()
    } else {
        "check the indentation and quoting around this position".to_string()
    }
}

struct Builder<'s, 'd> {
    anchors: HashMap<usize, Value>,
    diags: &'d mut Vec<Diagnostic>,
    doc: Document,
    events: Parser<'s, saphyr_parser::StrInput<'s>>,
    source: &'s Source,
}

type Next<'s> = Result<(Event<'s>, YamlSpan), ScanError>;

impl<'s> Builder<'s, '_> {
    fn next(&mut self) -> Next<'s> {
        match self.events.next() {
            Some(r) => r,
            None => Ok((Event::StreamEnd, YamlSpan::default())),
        }
    }

    fn span(&self, s: YamlSpan) -> Span {
        let start = self.source.offset_of(s.start.line(), s.start.col());
        let end = self.source.offset_of(s.end.line(), s.end.col());
        Span::new(start, end.saturating_sub(start))
    }

    fn document(&mut self) -> Result<(), ScanError> {
        let mut documents = 0;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(()),
                Event::DocumentStart(_) => {
                    documents += 1;
                    let (event, span2) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    let (value, vspan) = self.node(event, span2, String::new(), None)?;
                    if documents == 1 {
                        self.doc.value = value;
                    } else {
                        self.diags.push(
                            Diagnostic::new(
                                Kind::YamlUnsupported,
                                Span::new(vspan.offset, 0),
                                "a workflow file holds exactly one YAML document",
                            )
                            .label("second document starts here")
                            .help("remove the `---` separator and what follows, or move it to its own file"),
                        );
                    }
                    let _ = span;
                }
                _ => {}
            }
        }
    }

    /// Builds the node that starts with `event`, recording its span under `pointer`.
    fn node(
        &mut self,
        event: Event<'s>,
        span: YamlSpan,
        pointer: String,
        key: Option<Span>,
    ) -> Result<(Value, Span), ScanError> {
        let start = self.span(span);
        let (value, whole, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(&text, style, tag.as_deref(), start);
                (value, start, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                self.reject_tag(tag.as_deref(), start);
                let mut items = Vec::new();
                let mut end = start.end();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        end = end.max(self.span(sp).end());
                        break;
                    }
                    let child = format!("{pointer}/{}", items.len());
                    let (v, vspan) = self.node(ev, sp, child, None)?;
                    end = end.max(vspan.end());
                    items.push(v);
                }
                (
                    Value::Array(items),
                    Span::new(start.offset, end - start.offset),
                    anchor,
                )
            }
            Event::MappingStart(anchor, tag) => {
                self.reject_tag(tag.as_deref(), start);
                let (map, end) = self.mapping(&pointer)?;
                let end = end.max(start.end());
                (
                    Value::Object(map),
                    Span::new(start.offset, end - start.offset),
                    anchor,
                )
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                (value, start, 0)
            }
            _ => (Value::Null, start, 0),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        self.doc
            .spans
            .insert(pointer, NodeSpans { key, value: whole });
        Ok((value, whole))
    }

    /// Reads a mapping's entries up to its end; returns them and the end offset of the last one.
    fn mapping(&mut self, pointer: &str) -> Result<(Map<String, Value>, usize), ScanError> {
        let mut map = Map::new();
        let mut key_spans: HashMap<String, Span> = HashMap::new();
        let mut end = 0;
        loop {
            let (ev, sp) = self.next()?;
            let key_span = self.span(sp);
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, ..) => text.into_owned(),
                other => {
                    // A complex key: consume it, report, and skip its value.
                    let (_, whole) = self.node(other, sp, format!("{pointer}/?"), None)?;
                    self.diags.push(
                        Diagnostic::new(
                            Kind::YamlUnsupported,
                            whole,
                            "mapping keys must be plain strings",
                        )
                        .label("complex key"),
                    );
                    let (ev, sp) = self.next()?;
                    self.node(ev, sp, format!("{pointer}/?"), None)?;
                    continue;
                }
            };
            let child = format!("{pointer}/{}", escape_pointer(&key));
            let (ev, sp) = self.next()?;
            if let Some(first) = key_spans.get(&key) {
                let (line, col) = self.source.line_col(first.offset);
                self.diags.push(
                    Diagnostic::new(
                        Kind::DuplicateKey,
                        key_span,
                        format!("duplicate key `{key}`"),
                    )
                    .label("defined again here")
                    .help(format!(
                        "`{key}` is first defined at line {line}, column {col}; remove one of them"
                    )),
                );
                // Keep the first definition and its spans; still walk the duplicate.
                let shadow = format!("{pointer}/\u{0}dup");
                let (_, vspan) = self.node(ev, sp, shadow.clone(), Some(key_span))?;
                self.doc.spans.remove(&shadow);
                end = end.max(vspan.end());
                continue;
            }
            let (value, vspan) = self.node(ev, sp, child, Some(key_span))?;
            end = end.max(vspan.end()).max(key_span.end());
            key_spans.insert(key.clone(), key_span);
            map.insert(key, value);
        }
        Ok((map, end))
    }

    fn reject_tag(&mut self, tag: Option<&Tag>, span: Span) {
        if let Some(tag) = tag {
            self.diags.push(
                Diagnostic::new(
                    Kind::YamlUnsupported,
                    span,
                    format!("unsupported YAML tag `{tag}`"),
                )
                .label("tag")
                .help("remove the tag; workflow files use plain YAML values"),
            );
        }
    }

    fn scalar(&mut self, text: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Value {
        if let Some(tag) = tag {
            if tag.is_yaml_core_schema() {
                return match tag.suffix.as_str() {
                    "str" => Value::String(text.to_string()),
                    "int" | "float" | "bool" | "null" => {
                        let v = resolve_plain(text);
                        let ok = matches!(
                            (tag.suffix.as_str(), &v),
                            ("int", Value::Number(_))
                                | ("float", Value::Number(_))
                                | ("bool", Value::Bool(_))
                                | ("null", Value::Null)
                        );
                        if !ok {
                            self.diags.push(
                                Diagnostic::new(
                                    Kind::YamlSyntax,
                                    span,
                                    format!("`{text}` is not a valid !!{}", tag.suffix),
                                )
                                .label("does not match its tag"),
                            );
                        }
                        v
                    }
                    _ => {
                        self.reject_tag(Some(tag), span);
                        Value::String(text.to_string())
                    }
                };
            }
            self.reject_tag(Some(tag), span);
            return Value::String(text.to_string());
        }
        match style {
            ScalarStyle::Plain => resolve_plain(text),
            _ => Value::String(text.to_string()),
        }
    }
}

/// Resolves an untagged plain scalar by the YAML 1.2 core schema.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(d) = digits.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = digits.strip_prefix("0o") {
        (8, d)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    if matches!(t, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        // JSON has no infinities or NaN; such values stay strings and fail type checks.
        return false;
    }
    let mut seen_digit = false;
    for c in t.chars() {
        match c {
            '0'..='9' => seen_digit = true,
            '.' | 'e' | 'E' | '-' | '+' => {}
            _ => return false,
        }
    }
    seen_digit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Document, Vec<Diagnostic>, Source) {
        let src = Source::new("t.yaml".into(), "t.yaml".into(), text.into());
        let mut diags = Vec::new();
        let doc = parse(&src, &mut diags);
        (doc, diags, src)
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let (doc, diags, _) =
            load("a: yes\nb: 12\nc: 1.5\nd: true\ne: ~\nf: '12'\ng: 0x1f\nh: -3\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            doc.value,
            serde_json::json!({"a": "yes", "b": 12, "c": 1.5, "d": true, "e": null, "f": "12", "g": 31, "h": -3})
        );
    }

    #[test]
    fn records_key_and_value_spans_by_pointer() {
        let (doc, _, src) = load("plan:\n  max_steps: 7\n  steps:\n    - id: a/b\n");
        let s = doc.spans("/plan/max_steps").unwrap();
        assert_eq!(src.slice(s.key.unwrap()), "max_steps");
        assert_eq!(src.slice(s.value), "7");
        let s = doc.spans("/plan/steps/0/id").unwrap();
        assert_eq!(src.slice(s.value), "a/b");
        assert_eq!(src.line_col(doc.key_span("/plan/missing").offset), (1, 1));
        let whole = doc.spans("/plan").unwrap().value;
        assert_eq!(
            src.slice(whole).trim_end(),
            "max_steps: 7\n  steps:\n    - id: a/b"
        );
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_second_key() {
        let (doc, diags, src) = load("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].kind, Kind::DuplicateKey);
        assert_eq!(src.line_col(diags[0].span.offset), (3, 1));
        assert_eq!(doc.value["a"], 1);
    }

    #[test]
    fn tabs_and_bad_indentation_are_syntax_errors() {
        for text in [
            "a:\n\tb: 1\n",
            "a:\n  b: 1\n c: 2\n",
            "a: [1, 2\n",
            "a: 'open\n",
        ] {
            let (_, diags, _) = load(text);
            assert_eq!(diags.len(), 1, "{text:?}: {diags:?}");
            assert_eq!(diags[0].kind, Kind::YamlSyntax, "{text:?}");
        }
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let (doc, diags, _) = load("a: &x {k: 1}\nb: *x\n");
        assert!(diags.is_empty());
        assert_eq!(doc.value["b"]["k"], 1);
    }
}
