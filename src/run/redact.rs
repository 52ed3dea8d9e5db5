//! Keeps secrets out of the record and away from models: the values of API-key environment
//! variables are replaced by `[redacted]` in every event before it is folded, journaled or
//! shown, and in every request before a model receives it
//! ([`crate::model::redacting::RedactingModel`]).
//!
//! Only the exact values are found: a tool that prints a key reversed or base64-encoded
//! defeats it. That is why command tools never get the keys in their environment unless a
//! workflow names them in `inherit_env`.

use serde_json::Value;

use crate::run::event::Event;

/// Environment variables whose values are secrets even when no provider names them.
const KNOWN_KEY_VARS: [&str; 2] = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];

/// Values shorter than this are not treated as secrets (replacing `1` everywhere would
/// destroy the record and protect nothing).
const MIN_SECRET_LEN: usize = 8;

/// The secrets of one run.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets from the well-known key variables and the `api_key_env` of each provider.
    pub fn from_env<'a>(key_vars: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut secrets: Vec<String> = KNOWN_KEY_VARS
            .into_iter()
            .chain(key_vars)
            .filter_map(|name| std::env::var(name).ok())
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort();
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn new(secrets: Vec<String>) -> Redactor {
        Redactor {
            secrets: secrets
                .into_iter()
                .filter(|v| v.len() >= MIN_SECRET_LEN)
                .collect(),
        }
    }

    /// The event with every secret replaced (the event itself when there are none).
    pub fn event(&self, event: Event) -> Event {
        if self.secrets.is_empty() {
            return event;
        }
        let Ok(mut value) = serde_json::to_value(&event) else {
            return event;
        };
        if !self.value(&mut value) {
            return event;
        }
        serde_json::from_value(value).unwrap_or(event)
    }

    /// Whether there is no secret to hide (then nothing needs to be redacted).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replaces secrets inside a string; returns whether anything changed.
    pub fn string(&self, s: &mut String) -> bool {
        match self.text(s) {
            Some(r) => {
                *s = r;
                true
            }
            None => false,
        }
    }

    /// Replaces secrets inside a JSON value; returns whether anything changed.
    pub fn value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => self.string(s),
            // Every element is visited: no short-circuit.
            Value::Array(items) => {
                let mut changed = false;
                for v in items {
                    changed |= self.value(v);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                for v in map.values_mut() {
                    changed |= self.value(v);
                }
                changed
            }
            _ => false,
        }
    }

    fn text(&self, s: &str) -> Option<String> {
        if !self
            .secrets
            .iter()
            .any(|secret| s.contains(secret.as_str()))
        {
            return None;
        }
        let mut out = s.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "[redacted]");
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::event::EventKind;

    #[test]
    fn secrets_are_replaced_everywhere_in_an_event() {
        let r = Redactor::new(vec!["sk-secret-123".into(), "short".into()]);
        let e = Event {
            at: "t".into(),
            kind: EventKind::PlanApproved {
                by: "user sk-secret-123 short".into(),
                steps: None,
            },
            seq: 1,
        };
        let out = r.event(e);
        assert_eq!(
            out.kind,
            EventKind::PlanApproved {
                by: "user [redacted] short".into(),
                steps: None,
            }
        );
    }
}
