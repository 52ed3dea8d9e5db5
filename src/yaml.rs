//! Parses YAML into a `serde_json::Value` while remembering where every node came from.
//!
//! We drive `saphyr-parser`'s event stream ourselves instead of using a DOM crate so that we
//! control the things the format cares about: duplicate keys are errors (not last-one-wins),
//! scalars resolve by the YAML 1.2 core schema (`yes` stays a string), and every node, keyed by
//! its JSON pointer, keeps the span of its value and of its key. The schema validator and the
//! analyzer then report problems by pointer and we turn pointers back into spans here.
//!
//! The file may come from someone else (a pull request checked in CI), so what one file can
//! cost is bounded: aliases (and anchors) may copy at most [`MAX_ALIAS_NODES`] nodes in all (a ten-line
//! "billion laughs" file would otherwise expand to gigabytes), and values may nest at most
//! [`MAX_DEPTH`] levels deep, aliases included. Passing either stops the parse at once with a
//! located `pe::yaml-limit` diagnostic.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as YamlSpan, Tag};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, DiagnosticSink, Kind};
use crate::source::{Source, Span};

mod spans;

use spans::SpanTree;

/// Nodes that aliases may copy into a document, all aliases together, counting the copy
/// each anchor keeps. Workflows use aliases to share a few settings; a file that needs more
/// is an attack, not a workflow.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// How deeply values may nest (mappings and sequences, aliases included). Deeper values
/// would overflow the stack of every recursive consumer (schema validation, rendering).
pub const MAX_DEPTH: usize = 128;

/// Where a node sits in the source.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeSpans {
    /// The mapping key that introduced this node, if any.
    pub key: Option<Span>,
    /// The node itself (for collections: from its first to its last character).
    pub value: Span,
}

/// A parsed YAML document: its value and where each of its nodes is.
#[derive(Debug, Default)]
pub struct Document {
    spans: SpanTree,
    pub value: Value,
}

impl Document {
    /// Spans of the node at a JSON pointer (`""` is the root).
    pub fn spans(&self, pointer: &str) -> Option<NodeSpans> {
        let (spans, exact) = self.spans.nearest(pointer);
        exact.then_some(spans)
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
        self.spans.nearest(pointer).0
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Parses `source`. Problems are pushed into `diags`; the returned document holds whatever
/// could be built (an empty document after a syntax error, since nothing after it is trustworthy).
pub fn parse(source: &Source, diags: &mut dyn DiagnosticSink) -> Document {
    let mut builder = Builder {
        aliased: 0,
        anchors: HashMap::new(),
        depth: 0,
        diags,
        doc: Document::default(),
        events: Parser::new_from_str(&source.text),
        source,
    };
    match builder.document() {
        Ok(()) => builder.doc,
        // The diagnostic is pushed where the limit was passed; nothing built is kept.
        Err(Stop::Limit) => Document::default(),
        Err(Stop::Scan(e)) => {
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
    /// Nodes copied by aliases so far.
    aliased: usize,
    /// Anchored values with their size in nodes and their height (levels of nesting).
    anchors: HashMap<usize, Anchored>,
    /// Nesting level of the node being built (the document's root is at 1).
    depth: usize,
    diags: &'d mut dyn DiagnosticSink,
    doc: Document,
    events: Parser<'s, saphyr_parser::StrInput<'s>>,
    source: &'s Source,
}

/// Why building stopped early.
enum Stop {
    /// A limit was passed; its diagnostic is already pushed.
    Limit,
    /// The YAML is malformed.
    Scan(ScanError),
}

impl From<ScanError> for Stop {
    fn from(e: ScanError) -> Stop {
        Stop::Scan(e)
    }
}

/// A value an anchor names, with what copying it costs.
struct Anchored {
    height: usize,
    nodes: usize,
    value: Value,
}

/// A node as built: its value, span, id in the span tree, size in nodes and height.
struct Built {
    height: usize,
    id: u32,
    nodes: usize,
    span: Span,
    value: Value,
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

    /// Pushes the diagnostic of a passed limit and stops the parse.
    fn limit(&mut self, span: Span, message: String, label: &str, help: &str) -> Stop {
        self.diags.push(
            Diagnostic::new(Kind::YamlLimit, span, message)
                .label(label)
                .help(help),
        );
        Stop::Limit
    }

    fn document(&mut self) -> Result<(), Stop> {
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
                    let built = self.node(event, span2, None)?;
                    let vspan = built.span;
                    if documents == 1 {
                        self.doc.spans.set_root(built.id);
                        self.doc.value = built.value;
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

    /// Builds the node that starts with `event` (introduced by the mapping key at `key`),
    /// recording its spans.
    fn node(&mut self, event: Event<'s>, span: YamlSpan, key: Option<Span>) -> Result<Built, Stop> {
        let start = self.span(span);
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.depth >= MAX_DEPTH
        {
            return Err(self.limit(
                Span::new(start.offset, 1),
                format!("values nest more than {MAX_DEPTH} levels deep"),
                "too deep",
                "flatten the structure; no workflow key needs this much nesting",
            ));
        }
        self.depth += 1;
        let built = self.node_at_depth(event, start, key);
        self.depth -= 1;
        built
    }

    fn node_at_depth(
        &mut self,
        event: Event<'s>,
        start: Span,
        key: Option<Span>,
    ) -> Result<Built, Stop> {
        let id = self.doc.spans.leaf(key, start);
        let (mut built, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(&text, style, tag.as_deref(), start);
                (Built::leaf(value, start), anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                self.reject_tag(tag.as_deref(), start);
                let mut items = Vec::new();
                let mut ids = Vec::new();
                let mut end = start.end();
                let (mut nodes, mut height) = (1, 1);
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        end = end.max(self.span(sp).end());
                        break;
                    }
                    let item = self.node(ev, sp, None)?;
                    end = end.max(item.span.end());
                    nodes += item.nodes;
                    height = height.max(item.height + 1);
                    ids.push(item.id);
                    items.push(item.value);
                }
                self.doc.spans.sequence(id, &ids);
                // A vector starts with room for four values (288 bytes): without this, a
                // file of many one-item lists costs four times what it holds.
                items.shrink_to_fit();
                let span = Span::new(start.offset, end - start.offset);
                let built = Built {
                    height,
                    id,
                    nodes,
                    span,
                    value: Value::Array(items),
                };
                (built, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.reject_tag(tag.as_deref(), start);
                let mut built = self.mapping(id)?;
                let end = built.span.end().max(start.end());
                built.span = Span::new(start.offset, end - start.offset);
                (built, anchor)
            }
            Event::Alias(id) => (self.alias(id, start)?, 0),
            _ => (Built::leaf(Value::Null, start), 0),
        };
        built.id = id;
        if anchor != 0 {
            // An anchor keeps a copy of its value, which counts like an alias's: anchors
            // nested in anchors would otherwise copy each level again (a 1 MB file of
            // 120-deep chains took 470 MB).
            self.copied(built.nodes, start)?;
            let anchored = Anchored {
                height: built.height,
                nodes: built.nodes,
                value: built.value.clone(),
            };
            self.anchors.insert(anchor, anchored);
        }
        self.doc.spans.set(id, key, built.span);
        Ok(built)
    }

    /// Counts `nodes` copied (by an alias, or kept for an anchor) against
    /// [`MAX_ALIAS_NODES`].
    fn copied(&mut self, nodes: usize, at: Span) -> Result<(), Stop> {
        self.aliased = self.aliased.saturating_add(nodes);
        if self.aliased > MAX_ALIAS_NODES {
            return Err(self.limit(
                at,
                format!("aliases and anchors copy more than {MAX_ALIAS_NODES} values in this file"),
                "the limit is passed here",
                "aliases of aliases multiply (an \"alias bomb\"); write the values out or share fewer",
            ));
        }
        Ok(())
    }

    /// A copy of an anchored value, within the alias and depth limits.
    fn alias(&mut self, id: usize, at: Span) -> Result<Built, Stop> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Ok(Built::leaf(Value::Null, at));
        };
        let (nodes, height) = (anchored.nodes, anchored.height);
        // The alias itself sits at `depth`; its value's root takes that level.
        if self.depth + height - 1 > MAX_DEPTH {
            return Err(self.limit(
                at,
                format!("this alias makes values nest more than {MAX_DEPTH} levels deep"),
                "too deep once expanded",
                "aliases of aliases nest their values; flatten the structure",
            ));
        }
        self.copied(nodes, at)?;
        let Some(anchored) = self.anchors.get(&id) else {
            return Ok(Built::leaf(Value::Null, at));
        };
        let value = anchored.value.clone();
        Ok(Built {
            height,
            id: 0,
            nodes,
            span: at,
            value,
        })
    }

    /// Reads the entries of mapping `id` up to its end; its span ends with the last entry.
    fn mapping(&mut self, id: u32) -> Result<Built, Stop> {
        let mut map = Map::new();
        let mut children: Vec<(Box<str>, u32)> = Vec::new();
        let mut key_spans: HashMap<String, Span> = HashMap::new();
        let mut end = 0;
        let (mut nodes, mut height) = (1, 1);
        loop {
            let (ev, sp) = self.next()?;
            let key_span = self.span(sp);
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, ..) => text.into_owned(),
                other => {
                    // A complex key: consume it, report, and skip its value.
                    let whole = self.node(other, sp, None)?.span;
                    self.diags.push(
                        Diagnostic::new(
                            Kind::YamlUnsupported,
                            whole,
                            "mapping keys must be plain strings",
                        )
                        .label("complex key"),
                    );
                    let (ev, sp) = self.next()?;
                    self.node(ev, sp, None)?;
                    continue;
                }
            };
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
                // Keep the first definition and its spans; still walk the duplicate (its
                // spans are recorded but unreachable).
                let vspan = self.node(ev, sp, Some(key_span))?.span;
                end = end.max(vspan.end());
                continue;
            }
            let entry = self.node(ev, sp, Some(key_span))?;
            children.push((key.as_str().into(), entry.id));
            end = end.max(entry.span.end()).max(key_span.end());
            nodes += entry.nodes;
            height = height.max(entry.height + 1);
            key_spans.insert(key.clone(), key_span);
            map.insert(key, entry.value);
        }
        self.doc.spans.mapping(id, children);
        Ok(Built {
            height,
            id,
            nodes,
            span: Span::new(0, end),
            value: Value::Object(map),
        })
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

impl Built {
    fn leaf(value: Value, span: Span) -> Built {
        Built {
            height: 1,
            id: 0,
            nodes: 1,
            span,
            value,
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
    fn an_alias_bomb_stops_at_the_alias_that_passes_the_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let t0 = std::time::Instant::now();
        let (doc, diags, src) = load(&text);
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].kind, Kind::YamlLimit);
        assert_eq!(
            diags[0].message,
            "aliases and anchors copy more than 100000 values in this file"
        );
        // Anchors a0..a3 keep 12,344 nodes and aliases copy 12,330 by the end of a3's line;
        // a4 copies a3 (11,111 nodes): its seventh copy passes 100,000.
        assert_eq!(src.line_col(diags[0].span.offset), (5, 40));
        assert_eq!(src.slice(diags[0].span), "*a3");
        assert_eq!(doc.value, Value::Null);
    }

    #[test]
    fn nesting_is_limited_with_aliases_counted() {
        let deep = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        let (_, diags, _) = load(&deep(MAX_DEPTH - 1));
        assert!(diags.is_empty(), "{diags:?}");
        let (_, diags, src) = load(&deep(MAX_DEPTH));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].kind, Kind::YamlLimit);
        assert_eq!(src.line_col(diags[0].span.offset), (1, 4 + MAX_DEPTH - 1));
        // Each alias is small, but each nests the one before one level deeper.
        let mut text = String::from("a0: &a0 [1]\n");
        for i in 1..=MAX_DEPTH {
            text.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let (_, diags, src) = load(&text);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            diags[0].message,
            "this alias makes values nest more than 128 levels deep"
        );
        // `aK` is K + 2 levels high and its alias in `a(K+1)` starts at level 3 (root
        // mapping, sequence, alias): a125's alias, in a126 on line 127, would reach 129.
        assert_eq!(src.line_col(diags[0].span.offset), (127, 14));
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let (doc, diags, _) = load("a: &x {k: 1}\nb: *x\n");
        assert!(diags.is_empty());
        assert_eq!(doc.value["b"]["k"], 1);
    }
}
