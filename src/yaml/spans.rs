//! Where every node of a document came from, found by JSON pointer.
//!
//! A tree, not a map from pointer strings: a pointer string is as long as the node is deep,
//! so indexing every node by its pointer costs memory in proportion to nodes × depth (a
//! 1 MB file of deeply nested lists once took 400 MB). Here each node costs a fixed 28
//! bytes; its children are a contiguous run of ids (a mapping's sorted by key, so a lookup
//! is a binary search), and a pointer is resolved by walking down from the root.

use crate::source::Span;

use super::NodeSpans;

/// No key span (`key_len` of a node without one).
const NO_KEY: u32 = u32::MAX;

/// One node: its spans (offsets clamped to `u32`) and where its children are.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Start of this node's children in `list` (a sequence) or `keyed` (a mapping).
    first: u32,
    count: u32,
    key_len: u32,
    key_offset: u32,
    map: bool,
    value_len: u32,
    value_offset: u32,
}

/// The spans of a whole document.
#[derive(Debug, Default)]
pub struct SpanTree {
    /// A mapping's children: `(key, node)`, each mapping's run sorted by key.
    keyed: Vec<(Box<str>, u32)>,
    /// A sequence's children, in order.
    list: Vec<u32>,
    nodes: Vec<Node>,
    root: Option<u32>,
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX - 1)
}

impl SpanTree {
    /// Adds a node without children; returns its id.
    pub fn leaf(&mut self, key: Option<Span>, value: Span) -> u32 {
        let id = clamp(self.nodes.len());
        self.nodes.push(Node {
            first: 0,
            count: 0,
            key_len: key.map_or(NO_KEY, |k| clamp(k.len)),
            key_offset: key.map_or(0, |k| clamp(k.offset)),
            map: false,
            value_len: clamp(value.len),
            value_offset: clamp(value.offset),
        });
        id
    }

    /// Sets a node's spans once they are known (a collection's end comes after its children).
    pub fn set(&mut self, id: u32, key: Option<Span>, value: Span) {
        if let Some(node) = self.nodes.get_mut(id as usize) {
            node.key_len = key.map_or(NO_KEY, |k| clamp(k.len));
            node.key_offset = key.map_or(0, |k| clamp(k.offset));
            node.value_len = clamp(value.len);
            node.value_offset = clamp(value.offset);
        }
    }

    /// Makes `children` the items of sequence `id`.
    pub fn sequence(&mut self, id: u32, children: &[u32]) {
        let first = clamp(self.list.len());
        self.list.extend_from_slice(children);
        if let Some(node) = self.nodes.get_mut(id as usize) {
            (node.first, node.count, node.map) = (first, clamp(children.len()), false);
        }
    }

    /// Makes `children` the entries of mapping `id`.
    pub fn mapping(&mut self, id: u32, mut children: Vec<(Box<str>, u32)>) {
        children.sort_by(|a, b| a.0.cmp(&b.0));
        let first = clamp(self.keyed.len());
        let count = clamp(children.len());
        self.keyed.extend(children);
        if let Some(node) = self.nodes.get_mut(id as usize) {
            (node.first, node.count, node.map) = (first, count, true);
        }
    }

    pub fn set_root(&mut self, id: u32) {
        self.root = Some(id);
    }

    /// The spans of the node at `pointer`, or of its deepest ancestor that exists (and
    /// whether that is the node itself).
    pub fn nearest(&self, pointer: &str) -> (NodeSpans, bool) {
        let Some(mut at) = self.root else {
            return (NodeSpans::default(), false);
        };
        let mut exact = true;
        if !pointer.is_empty() {
            for raw in pointer.strip_prefix('/').unwrap_or(pointer).split('/') {
                match self.child(at, raw) {
                    Some(next) => at = next,
                    None => {
                        exact = false;
                        break;
                    }
                }
            }
        }
        (self.spans_of(at), exact)
    }

    fn child(&self, id: u32, raw: &str) -> Option<u32> {
        let node = self.nodes.get(id as usize)?;
        let (first, count) = (node.first as usize, node.count as usize);
        if node.map {
            let segment = unescape(raw);
            let run = self.keyed.get(first..first + count)?;
            let i = run
                .binary_search_by(|(key, _)| key.as_ref().cmp(segment.as_str()))
                .ok()?;
            Some(run[i].1)
        } else {
            let index: usize = raw.parse().ok()?;
            if index >= count {
                return None;
            }
            self.list.get(first + index).copied()
        }
    }

    fn spans_of(&self, id: u32) -> NodeSpans {
        let Some(node) = self.nodes.get(id as usize) else {
            return NodeSpans::default();
        };
        NodeSpans {
            key: (node.key_len != NO_KEY)
                .then(|| Span::new(node.key_offset as usize, node.key_len as usize)),
            value: Span::new(node.value_offset as usize, node.value_len as usize),
        }
    }
}

/// A pointer segment as the key it names (RFC 6901: `~1` is `/`, `~0` is `~`).
fn unescape(segment: &str) -> String {
    if segment.contains('~') {
        segment.replace("~1", "/").replace("~0", "~")
    } else {
        segment.to_string()
    }
}
