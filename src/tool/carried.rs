//! Bounds on what the engine carries from one model call into the next prompt and the
//! journal: replies, step results and errors, re-ask feedback. Like tool output, text past a
//! bound is cut on a character boundary with the [`marker`] saying how much was dropped, so
//! one huge reply cannot balloon later prompts, memory or the journal.
//!
//! The bounds live here, in one place; the engine calls [`reply`] on every model response,
//! [`cut`] on every step result and error, and [`excerpt`] where a re-ask quotes a
//! rejected reply.

use serde_json::Value;

use super::truncate::{floor_char_boundary, marker};
use crate::model::ModelResponse;

/// Longest model reply the engine reads (text, and each tool call's arguments as JSON):
/// larger ones are cut before they are parsed, journaled or carried into a prompt.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// Longest step result or error carried into later prompts (executor context, replanner,
/// synthesizer) and the journal: the same as a tool's default `max_output_bytes`.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Longest quote of a rejected reply sent back with a re-ask (the reply itself never is).
pub const MAX_REJECTED_QUOTE_BYTES: usize = 2 * 1024;

/// Longest problem text of a re-ask (the validator lists at most a few problems already).
pub const MAX_FEEDBACK_BYTES: usize = 4 * 1024;

/// Cuts `text` to `limit` bytes (on a character boundary) and appends the marker; returns
/// whether it was cut.
pub fn cut(text: &mut String, limit: usize) -> bool {
    if text.len() <= limit {
        return false;
    }
    let end = floor_char_boundary(text, limit);
    let omitted = (text.len() - end) as u64;
    text.truncate(end);
    text.push_str(&marker(omitted));
    true
}

/// The start of `text` for a re-ask, at most [`MAX_REJECTED_QUOTE_BYTES`], with the marker.
pub fn excerpt(text: &str) -> String {
    let end = floor_char_boundary(text, MAX_REJECTED_QUOTE_BYTES);
    let mut out = text[..end].to_string();
    if end < text.len() {
        out.push_str(&marker((text.len() - end) as u64));
    }
    out
}

/// A model response within [`MAX_REPLY_BYTES`]: its text cut with the marker, and a tool
/// call whose arguments are larger replaced by a string saying so (the toolbox then refuses
/// the call as invalid arguments, and the model sees why).
pub fn reply(mut response: ModelResponse) -> ModelResponse {
    cut(&mut response.text, MAX_REPLY_BYTES);
    for call in &mut response.tool_calls {
        let size = serde_json::to_string(&call.arguments).map_or(0, |s| s.len());
        if size > MAX_REPLY_BYTES {
            call.arguments = Value::String(format!(
                "[arguments of {size} bytes left out: more than the {MAX_REPLY_BYTES}-byte limit of a reply]"
            ));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;
    use serde_json::json;

    #[test]
    fn cuts_mark_what_was_dropped() {
        let mut short = "ok".to_string();
        assert!(!cut(&mut short, 10));
        assert_eq!(short, "ok");
        let mut long = "é".repeat(10);
        assert!(cut(&mut long, 5));
        assert_eq!(long, "éé\n[... truncated 16 bytes ...]");
        assert_eq!(excerpt("small"), "small");
        let quoted = excerpt(&"x".repeat(MAX_REJECTED_QUOTE_BYTES + 7));
        assert_eq!(
            quoted,
            format!(
                "{}\n[... truncated 7 bytes ...]",
                "x".repeat(MAX_REJECTED_QUOTE_BYTES)
            )
        );
    }

    #[test]
    fn huge_replies_are_bounded() {
        let huge = "y".repeat(MAX_REPLY_BYTES * 3);
        let response = reply(ModelResponse {
            text: huge.clone(),
            tool_calls: vec![
                ToolCall {
                    arguments: json!({"content": huge}),
                    id: "c1".into(),
                    name: "write".into(),
                },
                ToolCall {
                    arguments: json!({"path": "a"}),
                    id: "c2".into(),
                    name: "write".into(),
                },
            ],
            ..ModelResponse::default()
        });
        assert_eq!(
            response.text,
            format!(
                "{}\n[... truncated {} bytes ...]",
                "y".repeat(MAX_REPLY_BYTES),
                MAX_REPLY_BYTES * 2
            )
        );
        assert_eq!(
            response.tool_calls[0].arguments,
            json!(
                "[arguments of 786446 bytes left out: more than the 262144-byte limit of a reply]"
            )
        );
        assert_eq!(response.tool_calls[1].arguments, json!({"path": "a"}));
    }
}
