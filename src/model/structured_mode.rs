//! Which form of structured output an OpenAI-compatible server gets, and what pe learns
//! about a server during a run.
//!
//! Servers differ: OpenAI, vLLM, llama.cpp's `llama-server`, LM Studio and Ollama accept
//! `response_format: {type: json_schema}`; llama-cpp-python refuses it (HTTP 500, "Input
//! should be 'text' or 'json_object'") but accepts `{type: json_object, schema}` and then
//! constrains the reply to the schema with a grammar; some servers accept neither. In `auto`
//! mode (the default) a provider starts at `json_schema` and moves one rung down the
//! [`Mode`] ladder on the first refusal — any status whose message names `response_format`,
//! `json_schema` or `json_object` — for the rest of the run, and says so once through the
//! observer (journaled as `structured_output_fallback`).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::spec::StructuredOutput;

/// A form of structured output, best first: the order `auto` walks down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// `response_format: {type: json_schema, json_schema: {name, schema, strict}}`.
    JsonSchema = 0,
    /// `response_format: {type: json_object, schema}`, plus the schema in the prompt and
    /// the reply checked here.
    JsonObject = 1,
    /// The schema in the prompt and the reply checked here; no `response_format`.
    Prompt = 2,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::JsonSchema => "json_schema",
            Mode::JsonObject => "json_object",
            Mode::Prompt => "prompt",
        }
    }

    /// The next rung down, if any.
    pub fn next(self) -> Option<Mode> {
        match self {
            Mode::JsonSchema => Some(Mode::JsonObject),
            Mode::JsonObject => Some(Mode::Prompt),
            Mode::Prompt => None,
        }
    }

    fn from_u8(n: u8) -> Mode {
        match n {
            0 => Mode::JsonSchema,
            1 => Mode::JsonObject,
            _ => Mode::Prompt,
        }
    }
}

/// What pe learned about one server during a run, shared by every role and model that
/// uses the same provider entry, so each lesson is learned (and reported) once.
#[derive(Debug)]
pub struct ServerState {
    /// Whether the mode may still move down on a refusal.
    auto: bool,
    /// Send the output cap as `max_completion_tokens` instead of `max_tokens`.
    pub completion_tokens: AtomicBool,
    /// The server answered a `json_schema` request: `auto` will not move down any more.
    confirmed: AtomicBool,
    mode: AtomicU8,
    /// The server refused `tool_choice`: send tools without it.
    pub no_tool_choice: AtomicBool,
}

impl ServerState {
    /// The state at the start of a run for a provider's `structured_output` setting;
    /// `completion_tokens` for servers known to want `max_completion_tokens`.
    pub fn new(setting: StructuredOutput, completion_tokens: bool) -> ServerState {
        let mode = match setting {
            StructuredOutput::Auto | StructuredOutput::JsonSchema => Mode::JsonSchema,
            StructuredOutput::JsonObject => Mode::JsonObject,
            StructuredOutput::Prompt => Mode::Prompt,
        };
        ServerState {
            auto: setting == StructuredOutput::Auto,
            completion_tokens: AtomicBool::new(completion_tokens),
            confirmed: AtomicBool::new(false),
            mode: AtomicU8::new(mode as u8),
            no_tool_choice: AtomicBool::new(false),
        }
    }

    /// The mode to use now.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Acquire))
    }

    /// Whether a refusal of `mode` moves the provider down the ladder: `auto` only, and
    /// only before the server answered a `json_schema` request (a refusal after that is
    /// about one schema, not the form, and is reported as it is).
    pub fn can_fall_back(&self, mode: Mode) -> bool {
        self.auto && !self.is_confirmed() && mode.next().is_some()
    }

    /// Whether the server answered a `json_schema` request in this run.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }

    /// Moves down from `from` after a refusal. `Some(to)` for exactly one caller (the one
    /// that reports the switch) when several requests were refused at once; `None` for the
    /// others, which simply use the mode now in force.
    pub fn fall_back(&self, from: Mode) -> Option<Mode> {
        let to = from.next()?;
        self.mode
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| to)
    }

    /// The server answered a request in `json_schema` mode: it accepts that form, so one
    /// structured call is one request from now on.
    pub fn confirm_json_schema(&self) {
        self.confirmed.store(true, Ordering::Release);
    }

    /// The most requests one structured call can make: the re-ask bound once the mode is,
    /// or may still become, one whose reply pe checks.
    pub fn max_requests(&self, checked_attempts: u32) -> u32 {
        let settled = !self.auto || self.is_confirmed();
        if self.mode() == Mode::JsonSchema && settled {
            1
        } else {
            checked_attempts
        }
    }
}

/// Whether an error message refuses the structured-output form that was sent: it names
/// `response_format` (or `response format`), `json_schema` or `json_object`. Servers say so
/// with 400 (OpenAI, vLLM), 422 or 500 (llama-cpp-python's validation error), so the
/// message decides, not the status.
pub fn refuses_response_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "response_format",
        "response format",
        "json_schema",
        "json_object",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Whether an error message refuses `tool_choice`.
pub fn refuses_tool_choice(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("tool_choice") || m.contains("tool choice")
}

/// Whether a 400 asks for `max_completion_tokens` instead of `max_tokens` (OpenAI's newer
/// models, and gateways in front of them).
pub fn wants_completion_tokens(message: &str) -> bool {
    message.contains("max_completion_tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_walks_down_once_per_rung_and_explicit_modes_stay() {
        let auto = ServerState::new(StructuredOutput::Auto, false);
        assert_eq!(auto.mode(), Mode::JsonSchema);
        assert!(auto.can_fall_back(Mode::JsonSchema));
        // Two requests refused at once: one reports the switch.
        assert_eq!(auto.fall_back(Mode::JsonSchema), Some(Mode::JsonObject));
        assert_eq!(auto.fall_back(Mode::JsonSchema), None);
        assert_eq!(auto.mode(), Mode::JsonObject);
        assert_eq!(auto.fall_back(Mode::JsonObject), Some(Mode::Prompt));
        assert!(!auto.can_fall_back(Mode::Prompt));
        assert_eq!(auto.fall_back(Mode::Prompt), None);
        assert_eq!(auto.max_requests(3), 3);
        // A server that answered `json_schema` once needs no re-ask reservation.
        let accepted = ServerState::new(StructuredOutput::Auto, false);
        assert_eq!(accepted.max_requests(3), 3);
        accepted.confirm_json_schema();
        assert_eq!(accepted.max_requests(3), 1);
        assert!(!accepted.can_fall_back(Mode::JsonSchema));

        let fixed = ServerState::new(StructuredOutput::JsonSchema, false);
        assert!(!fixed.can_fall_back(Mode::JsonSchema));
        assert_eq!(fixed.max_requests(3), 1);
        assert_eq!(
            ServerState::new(StructuredOutput::JsonObject, false).mode(),
            Mode::JsonObject
        );
        assert_eq!(
            ServerState::new(StructuredOutput::Prompt, false).max_requests(3),
            3
        );
    }

    #[test]
    fn refusals_are_recognised_by_what_they_name_not_by_status() {
        let refusals = [
            // llama-cpp-python 0.3.36, HTTP 500.
            "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
            "response_format is not supported by this server",
            "Invalid value for 'Response Format'",
            "unknown type json_schema",
        ];
        for m in refusals {
            assert!(refuses_response_format(m), "{m}");
        }
        for m in ["model not found", "context length exceeded", "overloaded"] {
            assert!(!refuses_response_format(m), "{m}");
        }
        assert!(refuses_tool_choice(
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set"
        ));
        assert!(!refuses_tool_choice("tools are not supported"));
    }
}
