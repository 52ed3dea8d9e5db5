//! The one file that speaks `rmcp`: connects over stdio (to a process [`ServerProcess`]
//! spawned) or streamable HTTP, initializes, lists and calls tools, and turns the SDK's
//! types and errors into ours. Nothing else in pe names an `rmcp` type.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, JsonObject,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError, serve_client};
use serde_json::Value;

use super::process::ServerProcess;
use super::{
    MAX_MESSAGE_BYTES, McpConnector, McpError, McpSession, McpToolInfo, ServerDiagnostics,
    ServerIdentity, Target,
};

/// How long pe waits, after a request failed on a broken pipe, for the server's exit to
/// be known (so the error can say how it exited).
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Connects with the official SDK.
#[derive(Default)]
pub(crate) struct RmcpConnector;

type Service = RunningService<RoleClient, ClientConfig>;

struct RmcpSession {
    entry: String,
    identity: ServerIdentity,
    /// The stdio server's process (`None` for HTTP). Behind a lock so `close` can kill it.
    process: Mutex<Option<ServerProcess>>,
    server: String,
    service: Mutex<Option<Arc<Service>>>,
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("pe", env!("CARGO_PKG_VERSION")),
    )
}

#[async_trait::async_trait]
impl McpConnector for RmcpConnector {
    async fn connect(
        &self,
        entry: &str,
        target: &Target,
        limit: Duration,
    ) -> Result<Arc<dyn McpSession>, McpError> {
        let server = target.describe();
        let timed_out = |stderr: String| McpError::StartupTimeout {
            after: crate::duration::Duration(limit).to_string(),
            entry: entry.to_string(),
            server: server.clone(),
            stderr,
        };
        let startup = |reason: String, stderr: String| McpError::Startup {
            entry: entry.to_string(),
            reason,
            server: server.clone(),
            stderr,
        };
        let (service, process) = match target {
            Target::Stdio { argv, cwd, env } => {
                let (process, pipes) =
                    ServerProcess::spawn(argv, cwd, env).map_err(|reason| McpError::Spawn {
                        entry: entry.to_string(),
                        reason,
                        server: server.clone(),
                    })?;
                let transport = AsyncRwTransport::new_client(pipes.stdout, pipes.stdin)
                    .with_max_line_length(MAX_MESSAGE_BYTES);
                let handshake =
                    tokio::time::timeout(limit, serve_client(client_config(), transport)).await;
                match handshake {
                    Err(_) => return Err(timed_out(process.stderr.text())),
                    Ok(Ok(service)) => (service, Some(process)),
                    Ok(Err(e)) => {
                        let reason = match process.exit_within(EXIT_GRACE).await {
                            Some(exit) => format!("the process {exit}"),
                            None => plain(&e),
                        };
                        return Err(startup(reason, process.stderr.text()));
                    }
                }
            }
            Target::Http { headers, url } => {
                let mut custom = HashMap::new();
                for (name, value) in headers {
                    let bad = |what: &str| {
                        startup(format!("header {name}: not a valid {what}"), String::new())
                    };
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
                    let value = HeaderValue::from_str(value).map_err(|_| bad("value"))?;
                    custom.insert(name, value);
                }
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(custom)
                    .max_json_response_size(MAX_MESSAGE_BYTES)
                    .max_sse_event_size(MAX_MESSAGE_BYTES);
                let transport = StreamableHttpClientTransport::from_config(config);
                let service = tokio::time::timeout(limit, serve_client(client_config(), transport))
                    .await
                    .map_err(|_| timed_out(String::new()))?
                    .map_err(|e| startup(plain(&e), String::new()))?;
                (service, None)
            }
        };
        let identity = service
            .peer_info()
            .and_then(|info| info.server_info.clone())
            .map(|i| ServerIdentity {
                name: i.name,
                version: i.version,
            })
            .unwrap_or_default();
        Ok(Arc::new(RmcpSession {
            entry: entry.to_string(),
            identity,
            process: Mutex::new(process),
            server,
            service: Mutex::new(Some(Arc::new(service))),
        }))
    }
}

impl RmcpSession {
    fn service(&self) -> Option<Arc<Service>> {
        self.service
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn stderr(&self) -> String {
        self.process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|p| p.stderr.text())
            .unwrap_or_default()
    }

    /// The exit of the process, waiting briefly for it to be known.
    async fn exit(&self) -> Option<String> {
        let pending = {
            let process = self.process.lock().unwrap_or_else(|p| p.into_inner());
            match process.as_ref() {
                Some(p) => p.exit().map(Ok).unwrap_or(Err(())),
                None => return None,
            }
        };
        match pending {
            Ok(exit) => Some(exit),
            Err(()) => {
                tokio::time::sleep(EXIT_GRACE).await;
                let process = self.process.lock().unwrap_or_else(|p| p.into_inner());
                process.as_ref().and_then(ServerProcess::exit)
            }
        }
    }

    /// A failed request as an [`McpError`]: the server's own refusal, its exit, or the
    /// transport's error.
    async fn failed(&self, error: ServiceError) -> McpError {
        if let ServiceError::McpError(data) = &error {
            return McpError::Refused {
                entry: self.entry.clone(),
                message: format!("{} (code {})", data.message, data.code.0),
            };
        }
        let closed = matches!(
            error,
            ServiceError::TransportClosed | ServiceError::TransportSend(_)
        );
        if closed && let Some(exit) = self.exit().await {
            return McpError::Exited {
                entry: self.entry.clone(),
                exit,
                server: self.server.clone(),
                stderr: self.stderr(),
            };
        }
        McpError::Transport {
            entry: self.entry.clone(),
            reason: plain(&error),
            server: self.server.clone(),
            stderr: self.stderr(),
        }
    }

    fn closed(&self) -> McpError {
        McpError::Transport {
            entry: self.entry.clone(),
            reason: "the connection was closed".into(),
            server: self.server.clone(),
            stderr: self.stderr(),
        }
    }
}

#[async_trait::async_trait]
impl McpSession for RmcpSession {
    async fn list_tools(&self) -> Result<Vec<McpToolInfo>, McpError> {
        let service = self.service().ok_or_else(|| self.closed())?;
        let tools = match service.list_all_tools().await {
            Ok(tools) => tools,
            Err(e) => return Err(self.failed(e).await),
        };
        Ok(tools
            .into_iter()
            .map(|t| McpToolInfo {
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
                name: t.name.to_string(),
            })
            .collect())
    }

    async fn call_tool(&self, name: &str, arguments: &Value) -> Result<Value, McpError> {
        let service = self.service().ok_or_else(|| self.closed())?;
        let mut params = CallToolRequestParams::new(name.to_string());
        params.arguments = match arguments {
            Value::Object(map) => Some(map.clone().into_iter().collect::<JsonObject>()),
            _ => None,
        };
        match service.call_tool(params).await {
            Ok(result) => serde_json::to_value(&result).map_err(|e| McpError::Transport {
                entry: self.entry.clone(),
                reason: format!("the result cannot be read: {e}"),
                server: self.server.clone(),
                stderr: String::new(),
            }),
            Err(e) => Err(self.failed(e).await),
        }
    }

    fn diagnostics(&self) -> ServerDiagnostics {
        let process = self.process.lock().unwrap_or_else(|p| p.into_inner());
        ServerDiagnostics {
            exit: process.as_ref().and_then(ServerProcess::exit),
            stderr: process
                .as_ref()
                .map(|p| p.stderr.text())
                .unwrap_or_default(),
        }
    }

    fn identity(&self) -> ServerIdentity {
        self.identity.clone()
    }

    async fn close(&self) -> ServerDiagnostics {
        let service = self
            .service
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(service) = service {
            // Other holders (a call cut off by a timeout) drop theirs soon; cancelling
            // through the token ends the session for all of them.
            service.cancellation_token().cancel();
        }
        let diagnostics = self.diagnostics();
        if let Some(mut process) = self
            .process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            process.kill();
        }
        diagnostics
    }
}

/// An SDK error for people: without the Rust type names the SDK puts in brackets
/// (`Transport [rmcp::transport::…<…>] error: Broken pipe` → `Transport error: Broken pipe`).
fn plain(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(" [") {
        let Some(len) = rest[start..].find(']') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        if !inner.contains("::") {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod plain_tests {
    #[test]
    fn sdk_type_names_are_left_out_of_errors() {
        assert_eq!(
            super::plain(
                &"Send message error Transport [rmcp::transport::async_rw::AsyncRwTransport<rmcp::service::client::RoleClient, tokio::process::ChildStdout>] error: Broken pipe (os error 32), when send initialize request"
            ),
            "Send message error Transport error: Broken pipe (os error 32), when send initialize request"
        );
        assert_eq!(super::plain(&"a [b] c"), "a [b] c");
        assert_eq!(super::plain(&"unclosed [x::y"), "unclosed [x::y");
    }
}
