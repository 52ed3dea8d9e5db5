//! The HTTP side of every real provider: one endpoint with its headers, key, timeout and
//! retry policy, and the loop that posts a JSON request until it gets a usable answer.
//!
//! Keys travel in headers only (never in URLs), are marked sensitive so `Debug` output hides
//! them, and are scrubbed from anything the server sends back before it becomes an error
//! message. A retry here re-sends one request; nothing the engine did is repeated.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::model::retry::{AttemptObserver, RetryNote, RetryPolicy, retry_after, retryable_status};

/// Why a provider gave no usable answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ProviderError {
    /// Occurs when every attempt failed with a problem retrying could fix (timeouts,
    /// connection errors, 408/409/429/5xx, malformed bodies) and no attempt was left.
    #[error(
        "{provider} gave no usable answer for model `{model}` after {attempts} attempt{}: {last}",
        if *.attempts == 1 { "" } else { "s" }
    )]
    GaveUp {
        attempts: u32,
        last: String,
        model: String,
        provider: String,
    },
    /// Occurs when the server answers with a status retrying cannot fix (400, 401, 403,
    /// 404, 422, …); the run stops at once.
    #[error("{provider} rejected the request for model `{model}` with HTTP {status}: {message}{}",
        .hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Rejected {
        hint: Option<String>,
        message: String,
        model: String,
        provider: String,
        /// The status with its reason phrase, e.g. `401 Unauthorized`.
        status: String,
    },
    /// Occurs when a server without native structured output (schema given in the prompt)
    /// never replied with JSON valid against the schema.
    #[error(
        "model `{model}` of {provider} gave no JSON matching the `{format}` schema in {attempts} attempts: {problem}"
    )]
    Unstructured {
        attempts: u32,
        format: String,
        model: String,
        problem: String,
        provider: String,
    },
}

impl ProviderError {
    /// Whether asking again (a planner re-ask, a step retry) cannot help: the server refused
    /// the request itself (bad key, unknown model, malformed request).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ProviderError::Rejected { .. })
    }
}

/// A status the server refused, kept apart from the error so a caller can react to it (the
/// OpenAI client falls back to prompt-side JSON on a 400 about `response_format`).
#[derive(Debug)]
pub enum PostError {
    Rejected { status: u16, message: String },
    Failed(ProviderError),
}

/// One provider endpoint serving one model.
pub struct Endpoint {
    client: reqwest::Client,
    headers: HeaderMap,
    /// The environment variable the key came from, for the hint on 401/403.
    key_var: Option<String>,
    /// The model name as the provider knows it.
    pub model: String,
    policy: RetryPolicy,
    /// The provider name as written (`openai`, or a key of `providers:`).
    pub provider: String,
    /// Values scrubbed from server messages (the key).
    secrets: Vec<String>,
    timeout: Duration,
}

/// Shows everything but the key (the auth header is marked sensitive; `secrets` is left out).
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("headers", &self.headers)
            .field("key_var", &self.key_var)
            .field("model", &self.model)
            .field("policy", &self.policy)
            .field("provider", &self.provider)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What an endpoint needs to be built.
pub struct EndpointConfig {
    /// Authentication header and value (`authorization: Bearer …`, `x-api-key: …`).
    pub auth: Option<(&'static str, String)>,
    /// Extra headers: the provider's fixed ones, then the workflow's.
    pub headers: Vec<(String, String)>,
    pub key_var: Option<String>,
    pub model: String,
    pub policy: RetryPolicy,
    pub provider: String,
    pub timeout: Duration,
}

impl Endpoint {
    /// Builds the client; `Err` names a header that is not valid HTTP.
    pub fn new(config: EndpointConfig) -> Result<Endpoint, String> {
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        if let Some((name, value)) = config.auth {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                "the API key contains characters not allowed in a header".to_string()
            })?;
            v.set_sensitive(true);
            headers.insert(name, v);
            let key = value.strip_prefix("Bearer ").unwrap_or(&value);
            if key.len() >= 4 {
                secrets.push(key.to_string());
            }
        }
        for (name, value) in &config.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not valid in HTTP"))?;
            headers.insert(n, v);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))?;
        Ok(Endpoint {
            client,
            headers,
            key_var: config.key_var,
            model: config.model,
            policy: config.policy,
            provider: config.provider,
            secrets,
            timeout: config.timeout,
        })
    }

    /// Posts `body` to `url` and decodes the answer, retrying what can be retried. `decode`
    /// turning a 2xx body down counts as a malformed body (retried).
    pub async fn post<T>(
        &self,
        url: &str,
        body: &Value,
        observer: &dyn AttemptObserver,
        decode: impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, PostError> {
        let attempts = self.policy.max_retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let (status, wait, problem) = match self.attempt(url, body, &decode).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Rejected { status, message }) => {
                    return Err(PostError::Rejected { status, message });
                }
                Err(Attempt::Retry {
                    status,
                    wait,
                    problem,
                }) => (status, wait, problem),
            };
            if attempt >= attempts {
                return Err(PostError::Failed(ProviderError::GaveUp {
                    attempts,
                    last: problem,
                    model: self.model.clone(),
                    provider: self.provider.clone(),
                }));
            }
            let delay = self.policy.delay(attempt, wait);
            observer.retrying(&RetryNote {
                attempt,
                delay,
                error: problem,
                status,
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt<T>(
        &self,
        url: &str,
        body: &Value,
        decode: &impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, Attempt> {
        let sent = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await;
        let response = sent.map_err(|e| Attempt::Retry {
            status: None,
            wait: None,
            problem: self.transport(&e),
        })?;
        let status = response.status();
        let wait = retry_after(response.headers(), SystemTime::now());
        let text = response.text().await.map_err(|e| Attempt::Retry {
            status: Some(status.as_u16()),
            wait: None,
            problem: self.transport(&e),
        })?;
        if !status.is_success() {
            let message = self.scrub(&server_message(&text));
            let shown = format!("HTTP {}: {message}", status_text(status.as_u16()));
            return Err(if retryable_status(status.as_u16()) {
                Attempt::Retry {
                    status: Some(status.as_u16()),
                    wait,
                    problem: shown,
                }
            } else {
                Attempt::Rejected {
                    status: status.as_u16(),
                    message,
                }
            });
        }
        let malformed = |problem: String| Attempt::Retry {
            status: Some(status.as_u16()),
            wait: None,
            problem: format!("malformed response body: {}", self.scrub(&problem)),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        decode(value).map_err(malformed)
    }

    /// The error for a status [`Endpoint::post`] reported as rejected.
    pub fn rejected(&self, status: u16, message: String) -> ProviderError {
        let hint = match status {
            401 | 403 => Some(match &self.key_var {
                Some(var) => format!("check the API key in {var}"),
                None => "the server wants an API key: set `api_key_env` on the provider".into(),
            }),
            404 => Some("check the model name and the provider's base_url".into()),
            _ => None,
        };
        ProviderError::Rejected {
            hint,
            message,
            model: self.model.clone(),
            provider: self.provider.clone(),
            status: status_text(status),
        }
    }

    /// A transport error in words, without the URL (reqwest puts it in its messages).
    fn transport(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!(
                "no answer within {} (the provider's timeout)",
                crate::duration::Duration(self.timeout)
            );
        }
        self.scrub(&describe(e))
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "[redacted]");
        }
        out
    }
}

enum Attempt {
    Rejected {
        status: u16,
        message: String,
    },
    Retry {
        status: Option<u16>,
        wait: Option<Duration>,
        problem: String,
    },
}

/// A reqwest error and its causes, URL removed.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the response body was cut off".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        let part = s.to_string();
        if part != last {
            text.push_str(": ");
            text.push_str(&part);
            last = part;
        }
        source = s.source();
    }
    text
}

/// `401 Unauthorized`, or the bare number for unknown codes.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The message of an error body: `error.message` (OpenAI, Anthropic), `error` as a string
/// (Ollama), `message`, else the body itself, on one line and at most 500 characters.
pub fn server_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let pick = |v: &Value| v.as_str().map(str::to_string);
        v.pointer("/error/message")
            .and_then(pick)
            .or_else(|| v.get("error").and_then(pick))
            .or_else(|| v.get("message").and_then(pick))
            .or_else(|| v.get("detail").and_then(pick))
    });
    let text = from_json.unwrap_or_else(|| body.to_string());
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty response body)".into();
    }
    let mut out: String = one_line.chars().take(500).collect();
    if one_line.chars().count() > 500 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_come_from_every_error_shape() {
        let cases = [
            (
                r#"{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}"#,
                "Incorrect API key",
            ),
            (r#"{"error": "model 'x' not found"}"#, "model 'x' not found"),
            (r#"{"detail": "Not Found"}"#, "Not Found"),
            ("upstream\n  timed out", "upstream timed out"),
            ("", "(empty response body)"),
        ];
        for (body, want) in cases {
            assert_eq!(server_message(body), want);
        }
        assert_eq!(status_text(401), "401 Unauthorized");
        assert_eq!(status_text(599), "599");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let endpoint = Endpoint::new(EndpointConfig {
            auth: Some(("authorization", "Bearer sk-secret-value-1234".into())),
            headers: vec![("x-team".into(), "core".into())],
            key_var: Some("OPENAI_API_KEY".into()),
            model: "m".into(),
            policy: RetryPolicy::new(None),
            provider: "openai".into(),
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("\"x-team\": \"core\""), "{shown}");
    }
}
