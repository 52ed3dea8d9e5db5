//! `http` tools: one templated request per call.
//!
//! Method, URL, headers and body are rendered after parsing, field by field; a JSON body is
//! rendered string by string ([`template::render_value`]), so a model-chosen value stays a
//! JSON string and cannot change the body's structure. Every value substituted into the URL
//! is percent-encoded ([`template::render_url`]): it is one path segment or one query
//! value. What encoding cannot stop — a value of `..` or `.` as a whole path segment, or a
//! template that takes the host from an argument — is refused: the scheme, user, host, port
//! and number of path segments must be the same whatever the arguments are. The response body is streamed into a
//! bounded [`Capture`]: a huge response costs time (bounded by the tool's timeout), never
//! memory.

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::truncate::Capture;
use super::{ToolContext, ToolError, ToolOutput, ToolRunner, template_context};
use crate::spec::HttpSpec;
use crate::template;

/// Error bodies are quoted up to this many bytes in the failure message.
const ERROR_BODY_BYTES: usize = 1024;

/// Longest wait for the next bytes of a response (the tool's timeout bounds the whole call).
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// An `http` tool, ready to run.
pub struct HttpRunner {
    /// The client shared by all HTTP tools of a toolbox (one connection pool), or why it
    /// could not be built.
    client: Result<reqwest::Client, String>,
    max_output_bytes: usize,
    spec: HttpSpec,
    tool: String,
}

impl HttpRunner {
    pub fn new(
        tool: String,
        spec: HttpSpec,
        client: Result<reqwest::Client, String>,
        max_output_bytes: usize,
    ) -> HttpRunner {
        HttpRunner {
            client,
            max_output_bytes,
            spec,
            tool,
        }
    }

    /// The client every HTTP tool of a toolbox shares. The tool's own timeout is applied
    /// around the whole call by the toolbox; a server that stops sending fails sooner.
    pub fn client() -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .user_agent(concat!("pe/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    }

    fn failed(&self, what: &str, detail: impl std::fmt::Display) -> ToolError {
        ToolError::failed(format!("`{}`: {what}: {detail}", self.tool))
    }

    fn request(&self, vars: &Value) -> Result<reqwest::RequestBuilder, ToolError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| self.failed("cannot create an HTTP client", e))?;
        let render = |field: &str, text: &str| {
            template::render(text, vars)
                .map_err(|e| self.failed(&format!("cannot render {field}"), e))
        };
        let method = render("method", &self.spec.method)?;
        let method = reqwest::Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| self.failed("invalid HTTP method", &method))?;
        let url = self.url(vars)?;
        let mut request = client.request(method, url);
        for (name, value) in &self.spec.headers {
            let value = render(&format!("header {name}"), value)?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| self.failed("invalid header name", e))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|e| self.failed(&format!("invalid value for header {name}"), e))?;
            request = request.header(name, value);
        }
        let has_content_type = self
            .spec
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
        match &self.spec.body {
            None => {}
            Some(Value::String(text)) => {
                let body = render("body", text)?;
                if !has_content_type {
                    request = request.header(CONTENT_TYPE, "text/plain; charset=utf-8");
                }
                request = request.body(body);
            }
            Some(json) => {
                let body = template::render_value(json, vars)
                    .map_err(|e| self.failed("cannot render body", e))?;
                let bytes =
                    serde_json::to_vec(&body).map_err(|e| self.failed("cannot encode body", e))?;
                if !has_content_type {
                    request = request.header(CONTENT_TYPE, "application/json");
                }
                request = request.body(bytes);
            }
        }
        Ok(request)
    }
}

impl HttpRunner {
    /// The URL, every substituted value encoded, refused when its shape depends on the
    /// arguments (see the module documentation).
    fn url(&self, vars: &Value) -> Result<reqwest::Url, ToolError> {
        let parse = |vars: &Value| -> Result<reqwest::Url, ToolError> {
            let text = template::render_url(&self.spec.url, vars)
                .map_err(|e| self.failed("cannot render url", e))?;
            reqwest::Url::parse(&text).map_err(|e| self.failed(&format!("invalid URL `{text}`"), e))
        };
        let url = parse(vars)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.failed("unsupported URL scheme", url.scheme()));
        }
        // Two renderings with different stand-in arguments: what differs between them
        // depends on the arguments.
        let first = parse(&stand_in(vars, 1))?;
        let second = parse(&stand_in(vars, 2))?;
        if shape(&first).0 != shape(&second).0 {
            return Err(self.failed(
                "the URL's scheme, host or port comes from the arguments",
                "take it from the workflow (or `inputs`) and pass arguments in the path or query",
            ));
        }
        if shape(&url) != shape(&first) {
            return Err(self.failed(
                "an argument changes the URL's structure",
                format!(
                    "`{url}` does not have the scheme, host, port and path segments the template gives (a value of `.` or `..` as a path segment?)"
                ),
            ));
        }
        Ok(url)
    }
}

/// What arguments may not change: scheme, user, host, port; and the number of path segments.
fn shape(url: &reqwest::Url) -> ((String, String, Option<String>, Option<u16>), usize) {
    let origin = (
        url.scheme().to_string(),
        url.username().to_string(),
        url.host_str().map(str::to_string),
        url.port_or_known_default(),
    );
    (origin, url.path_segments().map_or(0, Iterator::count))
}

/// `vars` with every argument replaced by a stand-in of the same kind: non-empty strings by
/// `a`/`b` (`seed` 1 or 2), non-zero numbers by `seed`; empty strings, zero, booleans and
/// null stay (so `{% if args.x %}` takes the same branch). `inputs` stay as they are.
fn stand_in(vars: &Value, seed: u8) -> Value {
    fn replace(value: &Value, seed: u8) -> Value {
        match value {
            Value::String(s) if !s.is_empty() => {
                Value::String(if seed == 1 { "a" } else { "b" }.to_string())
            }
            Value::Number(n) if n.as_f64() != Some(0.0) => Value::from(seed),
            Value::Array(items) => Value::Array(items.iter().map(|v| replace(v, seed)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), replace(v, seed)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut vars = vars.clone();
    if let Some(args) = vars.get_mut("args") {
        *args = replace(args, seed);
    }
    vars
}

#[async_trait::async_trait]
impl ToolRunner for HttpRunner {
    /// Output is the response body, cut to `max_output_bytes`. A status of 400 or more fails
    /// with the status and the start of the body (APIs explain errors there).
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let vars = template_context(args, ctx);
        let mut request = self.request(&vars)?;
        if let Some(key) = &ctx.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.failed("request failed", describe(&e)))?;
        let status = response.status();
        let limit = if status.as_u16() >= 400 {
            ERROR_BODY_BYTES.min(self.max_output_bytes)
        } else {
            self.max_output_bytes
        };
        let mut body = Capture::new(limit);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.push(&chunk),
                Ok(None) => break,
                Err(e) => return Err(self.failed("reading the response failed", describe(&e))),
            }
        }
        if status.as_u16() >= 400 {
            let text = body.into_output().content;
            let detail = if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            };
            return Err(ToolError::failed(format!(
                "`{}`: HTTP {status}{detail}",
                self.tool
            )));
        }
        Ok(body.into_output())
    }
}

/// reqwest's top-level message ("error sending request") hides the cause; show the chain.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
