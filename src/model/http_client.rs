//! The HTTP side of every real provider: one endpoint with its URL, headers, key, timeout,
//! response-size limit and retry policy, and the loop that posts a JSON request until it
//! gets a usable answer.
//!
//! Keys travel in headers only (never in URLs), are marked sensitive so `Debug` output hides
//! them, and are scrubbed from anything the server sends back before it becomes an error
//! message. A retry here re-sends one request; nothing the engine did is repeated. Response
//! bodies are read up to the provider's `max_response_bytes` and no further, so a server
//! cannot make pe hold an answer of any size.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::model::retry::{AttemptObserver, RetryNote, RetryPolicy, retry_after, retryable_status};

/// The largest response body read from a provider when its entry sets no
/// `max_response_bytes`: 4 MiB, far above any chat completion (128k output tokens are about
/// 0.5 MB of text) and small enough that a hostile or broken server cannot exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a provider gave no usable answer. Each names the provider, the URL it was asked at
/// (without credentials or query), and what the server said, if anything.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ProviderError {
    /// Occurs when every attempt got an answer that is not a usable completion (not JSON,
    /// cut off, no `choices`) and no attempt was left.
    #[error(
        "provider `{provider}` at {url} gave no usable answer for model `{model}` in {}: {problem}",
        attempts_text(*.attempts)
    )]
    Malformed {
        attempts: u32,
        model: String,
        problem: String,
        provider: String,
        url: String,
    },
    /// Occurs when the server answers with a status retrying cannot fix (400, 401, 403,
    /// 404, 422, …), or refuses a structured-output mode pe was told to use; the run stops.
    #[error("provider `{provider}` at {url} rejected the request for model `{model}` with HTTP {status}: {message}{}",
        .hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Rejected {
        hint: Option<String>,
        message: String,
        model: String,
        provider: String,
        /// The status with its reason phrase, e.g. `401 Unauthorized`.
        status: String,
        url: String,
    },
    /// Occurs when every attempt ended without an answer within the provider's `timeout`.
    #[error(
        "provider `{provider}` at {url} did not answer within {after} (the provider's `timeout`) in {}",
        attempts_text(*.attempts)
    )]
    TimedOut {
        after: String,
        attempts: u32,
        provider: String,
        url: String,
    },
    /// Occurs when an answer is larger than the provider's `max_response_bytes`; it is not
    /// read further, and not asked for again.
    #[error(
        "provider `{provider}` at {url} sent an answer larger than {limit} bytes for model `{model}` (the provider's `max_response_bytes`); it was not read"
    )]
    TooLarge {
        limit: u64,
        model: String,
        provider: String,
        url: String,
    },
    /// Occurs when the connection broke after it was made (the server closed it, or cut a
    /// body off) on every attempt.
    #[error(
        "the connection to provider `{provider}` at {url} failed in {}: {cause}",
        attempts_text(*.attempts)
    )]
    Transport {
        attempts: u32,
        cause: String,
        provider: String,
        url: String,
    },
    /// Occurs when the server kept answering with a status a retry could fix (408, 409,
    /// 429, 5xx) until no attempt was left.
    #[error(
        "provider `{provider}` at {url} answered HTTP {status} for model `{model}` in {}: {message}",
        attempts_text(*.attempts)
    )]
    Unavailable {
        attempts: u32,
        message: String,
        model: String,
        provider: String,
        /// The status with its reason phrase, e.g. `503 Service Unavailable`.
        status: String,
        url: String,
    },
    /// Occurs when no attempt could connect (connection refused, unknown host, TLS).
    #[error(
        "provider `{provider}` at {url} could not be reached in {}: {cause}",
        attempts_text(*.attempts)
    )]
    Unreachable {
        attempts: u32,
        cause: String,
        provider: String,
        url: String,
    },
    /// Occurs when a server that does not constrain replies itself (the schema in the
    /// prompt, or `json_object`) never replied with JSON valid against the schema.
    #[error(
        "model `{model}` of provider `{provider}` at {url} gave no JSON matching the `{format}` schema in {attempts} requests ({mode}): {problem}"
    )]
    Unstructured {
        attempts: u32,
        format: String,
        /// The structured-output mode used (`json_object` or `prompt`).
        mode: &'static str,
        model: String,
        problem: String,
        provider: String,
        url: String,
    },
}

fn attempts_text(n: u32) -> String {
    format!("{n} attempt{}", if n == 1 { "" } else { "s" })
}

impl ProviderError {
    /// Whether asking again (a planner re-ask, a step retry) cannot help: the server refused
    /// the request itself (bad key, unknown model, malformed request).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ProviderError::Rejected { .. })
    }
}

/// How a post ended without an answer: a status the server refused (kept apart from the
/// error so a caller can react to it — fall back to another structured-output mode, send
/// `max_completion_tokens`), or a failure.
#[derive(Debug)]
pub enum PostError {
    Refused { status: u16, message: String },
    Failed(ProviderError),
}

/// One provider endpoint serving one model.
pub struct Endpoint {
    client: reqwest::Client,
    headers: HeaderMap,
    /// The environment variable the key came from, for the hint on 401/403.
    key_var: Option<String>,
    max_response_bytes: u64,
    /// The model name as the provider knows it.
    pub model: String,
    policy: RetryPolicy,
    /// The provider name as written (`openai`, or a key of `providers:`).
    pub provider: String,
    /// Values scrubbed from server messages (the key).
    secrets: Vec<String>,
    timeout: Duration,
    /// Where requests are posted.
    url: String,
}

/// Shows everything but the key (the auth header is marked sensitive; `secrets` is left out).
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("headers", &self.headers)
            .field("key_var", &self.key_var)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("model", &self.model)
            .field("policy", &self.policy)
            .field("provider", &self.provider)
            .field("timeout", &self.timeout)
            .field("url", &self.shown_url())
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
    /// Response bodies larger than this are refused unread.
    pub max_response_bytes: u64,
    pub model: String,
    pub policy: RetryPolicy,
    pub provider: String,
    pub timeout: Duration,
    /// The URL requests are posted to (e.g. `…/v1/chat/completions`).
    pub url: String,
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
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)));
        let https = reqwest::Url::parse(&config.url).map_or(true, |u| u.scheme() == "https");
        if !https {
            // Loading the system's trust roots (reading and parsing every certificate under
            // /etc/ssl) was most of pe's start-up against a local `http://` server; such an
            // endpoint gets none, so an `https` redirect from it fails verification.
            builder = builder.tls_certs_only(Vec::new());
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))?;
        Ok(Endpoint {
            client,
            headers,
            key_var: config.key_var,
            max_response_bytes: config.max_response_bytes,
            model: config.model,
            policy: config.policy,
            provider: config.provider,
            secrets,
            timeout: config.timeout,
            url: config.url,
        })
    }

    /// The URL as errors show it: no user, password, query or fragment (where a key could
    /// hide).
    pub fn shown_url(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => self.scrub(&self.url),
        }
    }

    /// Posts `body` and decodes the answer, retrying what can be retried. `decode` turning a
    /// 2xx body down counts as a malformed body (retried). A failed status whose message
    /// `refuses` recognises (a server naming a request field it does not support) is never
    /// retried: it comes back as [`PostError::Refused`], whatever the status.
    pub async fn post<T>(
        &self,
        body: &Value,
        observer: &dyn AttemptObserver,
        refuses: &(dyn Fn(&str) -> bool + Sync),
        decode: impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, PostError> {
        let attempts = self.policy.max_retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(body, refuses, &decode).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Refused { status, message }) => {
                    return Err(PostError::Refused { status, message });
                }
                Err(Attempt::TooLarge) => {
                    return Err(PostError::Failed(ProviderError::TooLarge {
                        limit: self.max_response_bytes,
                        model: self.model.clone(),
                        provider: self.provider.clone(),
                        url: self.shown_url(),
                    }));
                }
                Err(Attempt::Retry(failure)) => failure,
            };
            if attempt >= attempts {
                return Err(PostError::Failed(self.gave_up(failure, attempts)));
            }
            let delay = self.policy.delay(attempt, failure.wait);
            observer.retrying(&RetryNote {
                attempt,
                delay,
                error: failure.text(self.timeout),
                status: failure.status,
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt<T>(
        &self,
        body: &Value,
        refuses: &(dyn Fn(&str) -> bool + Sync),
        decode: &impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, Attempt> {
        let sent = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await;
        let response = sent.map_err(|e| Attempt::Retry(self.transport(&e, None)))?;
        let status = response.status();
        let wait = retry_after(response.headers(), SystemTime::now());
        let bytes = self.read_capped(response).await.map_err(|e| match e {
            Read::TooLarge => Attempt::TooLarge,
            Read::Failed(e) => Attempt::Retry(self.transport(&e, Some(status.as_u16()))),
        })?;
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            let message = self.scrub(&server_message(&text));
            let code = status.as_u16();
            if !retryable_status(code) || refuses(&message) {
                return Err(Attempt::Refused {
                    status: code,
                    message,
                });
            }
            return Err(Attempt::Retry(Failure {
                kind: FailureKind::Status(message),
                status: Some(code),
                wait,
            }));
        }
        let malformed = |problem: String| {
            Attempt::Retry(Failure {
                kind: FailureKind::Malformed(self.scrub(&problem)),
                status: Some(status.as_u16()),
                wait: None,
            })
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        decode(value).map_err(malformed)
    }

    /// The body, unless it is larger than `max_response_bytes` (judged from
    /// `Content-Length` when given, else while reading: at most the limit plus one chunk is
    /// ever held).
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Read> {
        let limit = self.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(Read::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Read::Failed)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(Read::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The error for a status [`Endpoint::post`] reported as refused.
    pub fn rejected(&self, status: u16, message: String) -> ProviderError {
        let hint = match status {
            401 | 403 => Some(match &self.key_var {
                Some(var) => format!("check the API key in {var}"),
                None => "the server wants an API key: set `api_key_env` on the provider".into(),
            }),
            404 => Some("check the model name and the provider's base_url".into()),
            _ => None,
        };
        self.rejected_with(status, message, hint)
    }

    /// A refusal with a hint of the caller's.
    pub fn rejected_with(
        &self,
        status: u16,
        message: String,
        hint: Option<String>,
    ) -> ProviderError {
        ProviderError::Rejected {
            hint,
            message,
            model: self.model.clone(),
            provider: self.provider.clone(),
            status: status_text(status),
            url: self.shown_url(),
        }
    }

    /// The error after the last attempt, named after what went wrong in it.
    fn gave_up(&self, last: Failure, attempts: u32) -> ProviderError {
        let provider = self.provider.clone();
        let url = self.shown_url();
        match last.kind {
            FailureKind::Connect(cause) => ProviderError::Unreachable {
                attempts,
                cause,
                provider,
                url,
            },
            FailureKind::Timeout => ProviderError::TimedOut {
                after: crate::duration::Duration(self.timeout).to_string(),
                attempts,
                provider,
                url,
            },
            FailureKind::Transport(cause) => ProviderError::Transport {
                attempts,
                cause,
                provider,
                url,
            },
            FailureKind::Status(message) => ProviderError::Unavailable {
                attempts,
                message,
                model: self.model.clone(),
                provider,
                status: last.status.map(status_text).unwrap_or_default(),
                url,
            },
            FailureKind::Malformed(problem) => ProviderError::Malformed {
                attempts,
                model: self.model.clone(),
                problem,
                provider,
                url,
            },
        }
    }

    /// A transport error, classified, in words without the URL (reqwest puts it in its
    /// messages).
    fn transport(&self, e: &reqwest::Error, status: Option<u16>) -> Failure {
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else if e.is_connect() {
            FailureKind::Connect(self.scrub(&describe(e)))
        } else {
            FailureKind::Transport(self.scrub(&describe(e)))
        };
        Failure {
            kind,
            status,
            wait: None,
        }
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
    Refused { status: u16, message: String },
    Retry(Failure),
    TooLarge,
}

enum Read {
    Failed(reqwest::Error),
    TooLarge,
}

/// One failed attempt worth retrying.
struct Failure {
    kind: FailureKind,
    /// The HTTP status, when the server answered.
    status: Option<u16>,
    /// The wait the server asked for.
    wait: Option<Duration>,
}

enum FailureKind {
    Connect(String),
    Malformed(String),
    Status(String),
    Timeout,
    Transport(String),
}

impl Failure {
    /// What went wrong, as `llm_retry` events and the progress view show it.
    fn text(&self, timeout: Duration) -> String {
        match &self.kind {
            FailureKind::Connect(cause) | FailureKind::Transport(cause) => cause.clone(),
            FailureKind::Malformed(problem) => format!("malformed response body: {problem}"),
            FailureKind::Status(message) => format!(
                "HTTP {}: {message}",
                self.status.map(status_text).unwrap_or_default()
            ),
            FailureKind::Timeout => format!(
                "no answer within {} (the provider's timeout)",
                crate::duration::Duration(timeout)
            ),
        }
    }
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

/// `base` with `path` appended to its path, its query (if any) kept after it:
/// `http://h/v1?x=1` + `chat/completions` is `http://h/v1/chat/completions?x=1`.
pub fn join_path(base: &str, path: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let mut url = format!("{}/{path}", head.trim_end_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
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

/// The message of an error body: `error.message` (OpenAI, Anthropic, llama-cpp-python),
/// `error` as a string (Ollama), `message`, `detail` (FastAPI: a string, or a list of
/// validation errors), else the body itself, on one line and at most 500 characters.
pub fn server_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let pick = |v: &Value| v.as_str().map(str::to_string);
        v.pointer("/error/message")
            .and_then(pick)
            .or_else(|| v.get("error").and_then(pick))
            .or_else(|| v.get("message").and_then(pick))
            .or_else(|| v.get("detail").and_then(pick))
            .or_else(|| v.get("detail").map(Value::to_string))
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
            (
                r#"{"detail": [{"loc": ["body", "response_format", "type"], "msg": "bad"}]}"#,
                r#"[{"loc":["body","response_format","type"],"msg":"bad"}]"#,
            ),
            ("upstream\n  timed out", "upstream timed out"),
            ("", "(empty response body)"),
        ];
        for (body, want) in cases {
            assert_eq!(server_message(body), want);
        }
        assert_eq!(status_text(401), "401 Unauthorized");
        assert_eq!(status_text(599), "599");
    }

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(EndpointConfig {
            auth: Some(("authorization", "Bearer sk-secret-value-1234".into())),
            headers: vec![("x-team".into(), "core".into())],
            key_var: Some("OPENAI_API_KEY".into()),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            model: "m".into(),
            policy: RetryPolicy::new(None),
            provider: "openai".into(),
            timeout: Duration::from_secs(1),
            url: url.into(),
        })
        .unwrap()
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let shown = format!("{:?}", endpoint("http://127.0.0.1:1/v1/chat/completions"));
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("\"x-team\": \"core\""), "{shown}");
    }

    /// A body sent without `Content-Length` (chunked) is cut off at the limit while it is
    /// read: the server streams 8 MiB, pe holds at most the limit plus one chunk.
    #[tokio::test]
    async fn a_streamed_body_past_the_limit_is_refused_while_reading() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..128 {
                let size = format!("{:x}\r\n", chunk.len());
                let sent = async {
                    socket.write_all(size.as_bytes()).await?;
                    socket.write_all(&chunk).await?;
                    socket.write_all(b"\r\n").await
                };
                if sent.await.is_err() {
                    return;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        let mut endpoint = endpoint(&format!("http://{addr}/v1/chat/completions"));
        endpoint.max_response_bytes = 1024 * 1024;
        let result = endpoint
            .post(
                &serde_json::json!({}),
                &crate::model::retry::Unobserved,
                &|_| false,
                Ok,
            )
            .await;
        let Err(PostError::Failed(e)) = result else {
            panic!("{result:?}");
        };
        assert_eq!(
            e,
            ProviderError::TooLarge {
                limit: 1024 * 1024,
                model: "m".into(),
                provider: "openai".into(),
                url: format!("http://{addr}/v1/chat/completions"),
            }
        );
        server.abort();
    }

    #[test]
    fn paths_are_joined_before_the_query() {
        let cases = [
            ("http://h:1/v1", "http://h:1/v1/chat/completions"),
            ("http://h:1/v1/", "http://h:1/v1/chat/completions"),
            (
                "https://x.example/openai/deployments/d?api-version=2024-10-21",
                "https://x.example/openai/deployments/d/chat/completions?api-version=2024-10-21",
            ),
        ];
        for (base, want) in cases {
            assert_eq!(join_path(base, "chat/completions"), want);
        }
        assert_eq!(
            crate::model::anthropic::url("https://a.example/v1/?beta=1"),
            "https://a.example/v1/messages?beta=1"
        );
    }

    #[test]
    fn urls_in_errors_lose_credentials_and_queries() {
        let cases = [
            (
                "http://user:pw@gw.example:8080/v1/chat/completions?key=abc#x",
                "http://gw.example:8080/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(endpoint(url).shown_url(), want);
        }
    }
}
