//! A `tools/call` result as the model sees it. The result is read as the protocol's JSON
//! (`content`, `structuredContent`, `isError`), not as SDK types, so it does not change
//! when the SDK does.
//!
//! Text blocks are the output, in order, separated by blank lines. Binary blocks (images,
//! audio, blob resources) are named with their type and size, never sent to a model as
//! base64. `structuredContent` is added as JSON unless a text block already carries the
//! same value (servers are asked to do both) or it only wraps the text in a one-field object.

use serde_json::Value;

/// What a call returned: the text for the model, and whether the server marked it an error.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CallText {
    pub(crate) is_error: bool,
    pub(crate) text: String,
}

/// Reads a `tools/call` result.
pub(crate) fn read_result(result: &Value) -> CallText {
    let mut parts: Vec<String> = Vec::new();
    if let Some(blocks) = result.get("content").and_then(Value::as_array) {
        parts.extend(blocks.iter().map(block_text));
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        let repeated = parts
            .iter()
            .any(|p| serde_json::from_str::<Value>(p).ok().as_ref() == Some(structured))
            || wraps_text(structured, &parts.join("\n\n"));
        if !repeated {
            parts.push(structured.to_string());
        }
    }
    CallText {
        is_error: result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        text: parts.join("\n\n"),
    }
}

/// Whether `structured` only wraps the text blocks in an object of one field, as servers
/// whose tools return a plain value do (`{"result": 5}` beside the text `5`, the filesystem
/// server's `{"content": "..."}`): the model need not read the same value twice.
fn wraps_text(structured: &Value, text: &str) -> bool {
    let Some(object) = structured.as_object().filter(|o| o.len() == 1) else {
        return false;
    };
    object.values().all(|value| match value {
        Value::String(s) => s.trim() == text.trim(),
        Value::Number(n) => n.to_string() == text.trim(),
        Value::Bool(b) => b.to_string() == text.trim(),
        Value::Array(_) | Value::Object(_) | Value::Null => false,
    })
}

fn block_text(block: &Value) -> String {
    let str_of = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
    let size = |key: &str| {
        // Base64: four characters carry three bytes.
        block
            .get(key)
            .and_then(Value::as_str)
            .map_or(0, |d| d.len() / 4 * 3)
    };
    match str_of("type") {
        "text" => str_of("text").to_string(),
        kind @ ("image" | "audio") => {
            format!("[{kind} {}, {} bytes]", str_of("mimeType"), size("data"))
        }
        "resource" => {
            let resource = block.get("resource").cloned().unwrap_or(Value::Null);
            let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("?");
            match resource.get("text").and_then(Value::as_str) {
                Some(text) => format!("[resource {uri}]\n{text}"),
                None => {
                    let bytes = resource
                        .get("blob")
                        .and_then(Value::as_str)
                        .map_or(0, |d| d.len() / 4 * 3);
                    let mime = resource
                        .get("mimeType")
                        .and_then(Value::as_str)
                        .unwrap_or("application/octet-stream");
                    format!("[resource {uri}: {mime}, {bytes} bytes]")
                }
            }
        }
        "resource_link" => {
            let name = str_of("name");
            if name.is_empty() {
                format!("[resource link {}]", str_of("uri"))
            } else {
                format!("[resource link {} ({name})]", str_of("uri"))
            }
        }
        other => format!("[{other} content]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_read_as_text_for_the_model() {
        let cases = [
            (
                json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
                CallText {
                    is_error: false,
                    text: "a\n\nb".into(),
                },
            ),
            (
                json!({"content": [{"type": "image", "mimeType": "image/png", "data": "AAAA"}], "isError": false}),
                CallText {
                    is_error: false,
                    text: "[image image/png, 3 bytes]".into(),
                },
            ),
            (
                json!({"content": [{"type": "text", "text": "{\"n\": 1}"}], "structuredContent": {"n": 1}}),
                CallText {
                    is_error: false,
                    text: "{\"n\": 1}".into(),
                },
            ),
            (
                json!({"content": [{"type": "text", "text": "5"}], "structuredContent": {"result": 5}}),
                CallText {
                    is_error: false,
                    text: "5".into(),
                },
            ),
            (
                json!({"content": [{"type": "text", "text": "a\n"}], "structuredContent": {"content": "a\n"}}),
                CallText {
                    is_error: false,
                    text: "a\n".into(),
                },
            ),
            (
                json!({"content": [{"type": "text", "text": "5"}], "structuredContent": {"result": 5, "unit": "kg"}}),
                CallText {
                    is_error: false,
                    text: "5\n\n{\"result\":5,\"unit\":\"kg\"}".into(),
                },
            ),
            (
                json!({"content": [], "structuredContent": {"n": 1}}),
                CallText {
                    is_error: false,
                    text: "{\"n\":1}".into(),
                },
            ),
            (
                json!({"content": [{"type": "text", "text": "no such file"}], "isError": true}),
                CallText {
                    is_error: true,
                    text: "no such file".into(),
                },
            ),
            (
                json!({"content": [{"type": "resource", "resource": {"uri": "file:///a", "text": "hi"}},
                                   {"type": "resource_link", "uri": "file:///b", "name": "b"}]}),
                CallText {
                    is_error: false,
                    text: "[resource file:///a]\nhi\n\n[resource link file:///b (b)]".into(),
                },
            ),
        ];
        for (result, want) in cases {
            assert_eq!(read_result(&result), want, "{result}");
        }
    }
}
