//! The `scripted` provider: deterministic replies from a file, for tests, demos and
//! `pe test`. No network, no randomness.
//!
//! The file has one list per role (`planner`, `executor`, `replanner`, `synthesizer`). Each
//! reply is exactly one of `text`, `json`, `tool_calls` or `error`. For every call, the reply
//! used is the first one of the role's list that is not used up and whose `when` (if any) is
//! a substring of the prompt — the whole conversation, messages joined by newlines, so a
//! second executor turn can match on a tool's output. A used reply is consumed unless it says
//! `repeat: true`. Matching on prompt content keeps concurrent steps deterministic: each
//! step's replies name the step in `when`, so the order in which steps ask does not matter.
//! A reply with `delay` arrives that long after the call (simulated model latency; the
//! wait is a timer, never a blocked thread, so concurrent calls overlap).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{
    Model, ModelError, ModelRequest, ModelResponse, ToolCall, Usage, estimate_tokens,
};
use crate::source::Source;
use crate::spec::{Role, ScriptedReplies, ScriptedReply};

/// Replies for every role, with what has been used so far.
#[derive(Debug)]
pub struct ScriptedModel {
    /// The replies file, for messages (or `inline` for replies given in a test case).
    label: String,
    next_call_id: AtomicU64,
    reference: String,
    roles: Mutex<RoleReplies>,
}

#[derive(Debug, Default)]
struct RoleReplies {
    executor: Queue,
    planner: Queue,
    replanner: Queue,
    synthesizer: Queue,
}

impl RoleReplies {
    fn queue(&mut self, role: Role) -> &mut Queue {
        match role {
            Role::Executor => &mut self.executor,
            Role::Planner => &mut self.planner,
            Role::Replanner => &mut self.replanner,
            Role::Synthesizer => &mut self.synthesizer,
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    replies: Vec<ScriptedReply>,
    used: Vec<bool>,
}

impl Queue {
    fn new(replies: Vec<ScriptedReply>) -> Queue {
        Queue {
            used: vec![false; replies.len()],
            replies,
        }
    }

    /// Index of the reply a prompt gets, without using it.
    fn pick(&self, prompt: &str) -> Option<usize> {
        (0..self.replies.len()).find(|&i| {
            !self.used[i]
                && self.replies[i]
                    .when
                    .as_deref()
                    .is_none_or(|needle| prompt.contains(needle))
        })
    }
}

/// Why a replies file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptedLoadError {
    /// Occurs when the replies file cannot be read.
    #[error("cannot read scripted replies {path}: {reason}")]
    Read { path: String, reason: String },
    /// Occurs when a reply in memory (a test's inline `replies`) is not exactly one of
    /// `text`, `json`, `tool_calls`, `error`.
    #[error("invalid scripted replies {path}: {reason}")]
    Invalid { path: String, reason: String },
    /// Occurs when a replies file does not follow `schemas/replies.schema.json`: every
    /// problem, located in the file.
    #[error("{} is not a valid replies file ({} problem{})", .file.name, .diagnostics.len(), if .diagnostics.len() == 1 { "" } else { "s" })]
    Located {
        diagnostics: Vec<crate::diagnostic::Diagnostic>,
        file: Box<Source>,
    },
}

impl ScriptedModel {
    /// Loads a replies file (YAML or JSON), checked against the replies schema.
    pub fn load(path: &Path, reference: String) -> Result<ScriptedModel, ScriptedLoadError> {
        let shown = path.display().to_string();
        let source = Source::read(path).map_err(|e| ScriptedLoadError::Read {
            path: shown.clone(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_string(),
                _ => e.to_string(),
            },
        })?;
        let replies =
            crate::model::scripted_replies::check_replies(&source).map_err(|diagnostics| {
                ScriptedLoadError::Located {
                    diagnostics,
                    file: Box::new(source),
                }
            })?;
        Self::from_replies(replies, shown, reference)
    }

    /// Replies given in memory (a `tests:` case's inline `replies`).
    pub fn from_replies(
        replies: ScriptedReplies,
        label: String,
        reference: String,
    ) -> Result<ScriptedModel, ScriptedLoadError> {
        for role in Role::ALL {
            for (i, reply) in role_list(&replies, role).iter().enumerate() {
                let kinds = [
                    reply.text.is_some(),
                    reply.json.is_some(),
                    reply.tool_calls.is_some(),
                    reply.error.is_some(),
                ];
                let n = kinds.iter().filter(|k| **k).count();
                if n != 1 {
                    return Err(ScriptedLoadError::Invalid {
                        path: label,
                        reason: format!(
                            "{}[{i}] must have exactly one of `text`, `json`, `tool_calls`, `error` (it has {n})",
                            role.as_str()
                        ),
                    });
                }
            }
        }
        let roles = RoleReplies {
            executor: Queue::new(replies.executor),
            planner: Queue::new(replies.planner),
            replanner: Queue::new(replies.replanner),
            synthesizer: Queue::new(replies.synthesizer),
        };
        Ok(ScriptedModel {
            label,
            next_call_id: AtomicU64::new(1),
            reference,
            roles: Mutex::new(roles),
        })
    }

    /// The reply for a request: picked, and used up unless it repeats.
    fn take(&self, request: &ModelRequest) -> Result<ScriptedReply, ModelError> {
        let role = request.role.unwrap_or(Role::Executor);
        let prompt = request.prompt_text();
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        let queue = roles.queue(role);
        match queue.pick(&prompt) {
            Some(i) => {
                if !queue.replies[i].repeat {
                    queue.used[i] = true;
                }
                Ok(queue.replies[i].clone())
            }
            None => Err(ModelError::NoReplyLeft {
                file: self.label.clone(),
                matched_when: queue.used.iter().any(|u| !u),
                role: role.as_str(),
            }),
        }
    }

    fn peek(&self, request: &ModelRequest) -> Option<ScriptedReply> {
        let role = request.role.unwrap_or(Role::Executor);
        let prompt = request.prompt_text();
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        let queue = roles.queue(role);
        queue.pick(&prompt).map(|i| queue.replies[i].clone())
    }

    fn usage_of(reply: &ScriptedReply, request: &ModelRequest, output: &str) -> Usage {
        match reply.usage {
            Some(u) => Usage {
                cached_input_tokens: u.cached_input_tokens.min(u.input_tokens),
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            },
            None if reply.error.is_some() => Usage::default(),
            None => Usage {
                input_tokens: estimate_tokens(&request.prompt_text()),
                output_tokens: estimate_tokens(output),
                ..Usage::default()
            },
        }
    }
}

fn role_list(replies: &ScriptedReplies, role: Role) -> &[ScriptedReply] {
    match role {
        Role::Executor => &replies.executor,
        Role::Planner => &replies.planner,
        Role::Replanner => &replies.replanner,
        Role::Synthesizer => &replies.synthesizer,
    }
}

/// The text a reply produces (JSON serialized; tool calls as their JSON, for token counts).
fn reply_text(reply: &ScriptedReply) -> String {
    if let Some(t) = &reply.text {
        t.clone()
    } else if let Some(j) = &reply.json {
        j.to_string()
    } else if let Some(calls) = &reply.tool_calls {
        serde_json::to_string(calls).unwrap_or_default()
    } else {
        String::new()
    }
}

#[async_trait::async_trait]
impl Model for ScriptedModel {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn estimate(&self, request: &ModelRequest) -> Usage {
        let mut usage = match self.peek(request) {
            Some(reply) => Self::usage_of(&reply, request, &reply_text(&reply)),
            None => Usage::default(),
        };
        // The reply is cut at the cap (see `complete`), so it never uses more.
        if let Some(cap) = request.max_output_tokens {
            usage.output_tokens = usage.output_tokens.min(cap);
        }
        usage
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let reply = self.take(request)?;
        // The lock is released by now, so concurrent calls wait out their delays together.
        if let Some(delay) = reply.delay {
            tokio::time::sleep(delay.0).await;
        }
        if let Some(message) = &reply.error {
            return Err(ModelError::Provider {
                message: message.clone(),
                model: self.reference.clone(),
            });
        }
        let output = reply_text(&reply);
        let mut usage = Self::usage_of(&reply, request, &output);
        let mut response = ModelResponse::default();
        if let Some(calls) = &reply.tool_calls {
            response.tool_calls = calls
                .iter()
                .map(|c| ToolCall {
                    // A call written without arguments passes an empty object, as providers do.
                    arguments: if c.arguments.is_null() {
                        serde_json::json!({})
                    } else {
                        c.arguments.clone()
                    },
                    id: format!("call_{}", self.next_call_id.fetch_add(1, Ordering::Relaxed)),
                    name: c.name.clone(),
                })
                .collect();
        } else {
            response.text = output;
        }
        if let Some(cap) = request.max_output_tokens
            && usage.output_tokens > cap
        {
            // A real provider stops generating at the cap; do the same.
            usage.output_tokens = cap;
            response.truncated = true;
            response.tool_calls.clear();
            let keep = usize::try_from(cap.saturating_mul(4)).unwrap_or(usize::MAX);
            response.text = response.text.chars().take(keep).collect();
        }
        response.usage = usage;
        Ok(response)
    }
}

/// Where a scripted model's replies file is: `path` of a declared provider, else the model
/// name, relative to `base`.
pub fn replies_path(base: &Path, provider_path: Option<&str>, model: &str) -> PathBuf {
    let p = Path::new(provider_path.unwrap_or(model));
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Message;
    use serde_json::json;

    fn model(yaml_json: serde_json::Value) -> ScriptedModel {
        let replies: ScriptedReplies = serde_json::from_value(yaml_json).unwrap();
        ScriptedModel::from_replies(replies, "test.yaml".into(), "scripted/test.yaml".into())
            .unwrap()
    }

    fn ask(role: Role, prompt: &str) -> ModelRequest {
        ModelRequest {
            messages: vec![Message::user(prompt)],
            role: Some(role),
            ..ModelRequest::default()
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn replies_are_used_in_order_and_matched_on_the_prompt() {
        let m = model(json!({"executor": [
            {"when": "step b", "text": "B"},
            {"text": "first"},
            {"text": "second"},
        ]}));
        block(async {
            let r = m.complete(&ask(Role::Executor, "step a")).await.unwrap();
            assert_eq!(r.text, "first");
            let r = m.complete(&ask(Role::Executor, "step b")).await.unwrap();
            assert_eq!(r.text, "B");
            let r = m.complete(&ask(Role::Executor, "step b")).await.unwrap();
            assert_eq!(r.text, "second");
            let e = m.complete(&ask(Role::Executor, "x")).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                "the scripted replies in test.yaml have no executor reply left"
            );
        });
    }

    #[test]
    fn repeat_replies_are_never_used_up_and_json_is_text() {
        let m = model(json!({"planner": [{"json": {"steps": []}, "repeat": true}]}));
        block(async {
            for _ in 0..3 {
                let r = m.complete(&ask(Role::Planner, "p")).await.unwrap();
                assert_eq!(r.text, r#"{"steps":[]}"#);
            }
        });
    }

    #[test]
    fn tool_calls_get_ids_and_declared_usage_is_reported_and_estimated_exactly() {
        let m = model(json!({"executor": [{
            "tool_calls": [{"name": "run_ci", "arguments": {"version": "1.4.2"}}],
            "usage": {"input_tokens": 10, "output_tokens": 5}
        }]}));
        let req = ask(Role::Executor, "p");
        assert_eq!(
            m.estimate(&req),
            Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            }
        );
        let r = block(m.complete(&req)).unwrap();
        assert_eq!(r.tool_calls[0].id, "call_1");
        assert_eq!(r.tool_calls[0].arguments, json!({"version": "1.4.2"}));
        assert_eq!(r.usage.total(), 15);
    }

    #[test]
    fn a_delay_is_waited_out_and_concurrent_delays_overlap() {
        let m = model(json!({"executor": [
            {"when": "a", "text": "A", "delay": "200ms"},
            {"when": "b", "text": "B", "delay": "200ms"},
            {"text": "now"},
        ]}));
        // The paused clock advances only when every task waits on a timer: the elapsed
        // virtual time is exactly the delay, whatever the machine's load.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (ra, rb) = (ask(Role::Executor, "a"), ask(Role::Executor, "b"));
            let t0 = tokio::time::Instant::now();
            let (a, b) = tokio::join!(m.complete(&ra), m.complete(&rb));
            assert_eq!((a.unwrap().text, b.unwrap().text), ("A".into(), "B".into()));
            assert_eq!(t0.elapsed(), std::time::Duration::from_millis(200));
            let t1 = tokio::time::Instant::now();
            assert_eq!(
                m.complete(&ask(Role::Executor, "c")).await.unwrap().text,
                "now"
            );
            assert_eq!(t1.elapsed(), std::time::Duration::ZERO);
        });
    }

    #[test]
    fn error_replies_are_provider_errors_and_bad_replies_are_refused() {
        let m = model(json!({"synthesizer": [{"error": "rate limited"}]}));
        let e = block(m.complete(&ask(Role::Synthesizer, "p"))).unwrap_err();
        assert_eq!(e.to_string(), "scripted/test.yaml failed: rate limited");
        let replies: ScriptedReplies =
            serde_json::from_value(json!({"planner": [{"text": "a", "json": 1}]})).unwrap();
        let e = ScriptedModel::from_replies(replies, "r.yaml".into(), "s/r".into()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid scripted replies r.yaml: planner[0] must have exactly one of `text`, `json`, `tool_calls`, `error` (it has 2)"
        );
    }
}
