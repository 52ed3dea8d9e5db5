//! MCP servers under record and replay. Recording wraps the real connector and keeps each
//! server's tool listing as an `mcp_tools` exchange; replay starts nothing and offers the
//! recorded listing. Tool calls themselves are recorded and replayed like any tool's (the
//! toolbox wraps MCP tools' runners with the same decorators when their server connects).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::run::cassette::{Exchange, Recording, Replay};
use crate::tool::mcp::{
    McpConnector, McpError, McpSession, McpToolInfo, ServerDiagnostics, ServerIdentity, Target,
};

/// Records what the wrapped connector's servers list.
pub(crate) struct RecordingConnector {
    pub(crate) inner: Arc<dyn McpConnector>,
    pub(crate) recording: Arc<Recording>,
}

struct RecordingSession {
    entry: String,
    inner: Arc<dyn McpSession>,
    recording: Arc<Recording>,
}

#[async_trait::async_trait]
impl McpConnector for RecordingConnector {
    async fn connect(
        &self,
        entry: &str,
        target: &Target,
        limit: Duration,
    ) -> Result<Arc<dyn McpSession>, McpError> {
        let inner = self.inner.connect(entry, target, limit).await?;
        Ok(Arc::new(RecordingSession {
            entry: entry.to_string(),
            inner,
            recording: Arc::clone(&self.recording),
        }))
    }
}

#[async_trait::async_trait]
impl McpSession for RecordingSession {
    async fn list_tools(&self) -> Result<Vec<McpToolInfo>, McpError> {
        let tools = self.inner.list_tools().await?;
        self.recording.push(Exchange::McpTools {
            tool: self.entry.clone(),
            tools: tools.clone(),
        });
        Ok(tools)
    }

    async fn call_tool(&self, name: &str, arguments: &Value) -> Result<Value, McpError> {
        self.inner.call_tool(name, arguments).await
    }

    fn diagnostics(&self) -> ServerDiagnostics {
        self.inner.diagnostics()
    }

    fn identity(&self) -> ServerIdentity {
        self.inner.identity()
    }

    async fn close(&self) -> ServerDiagnostics {
        self.inner.close().await
    }
}

/// Offers the recorded listing; starts nothing.
pub(crate) struct ReplayConnector {
    pub(crate) replay: Arc<Replay>,
}

struct ReplaySession {
    tools: Vec<McpToolInfo>,
}

#[async_trait::async_trait]
impl McpConnector for ReplayConnector {
    async fn connect(
        &self,
        entry: &str,
        target: &Target,
        _limit: Duration,
    ) -> Result<Arc<dyn McpSession>, McpError> {
        match self.replay.mcp_tools(entry) {
            Ok(tools) => Ok(Arc::new(ReplaySession { tools })),
            Err(drift) => {
                self.replay.note_drift(&drift);
                Err(McpError::Startup {
                    entry: entry.to_string(),
                    reason: format!("replay: {drift}"),
                    server: target.describe(),
                    stderr: String::new(),
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl McpSession for ReplaySession {
    async fn list_tools(&self) -> Result<Vec<McpToolInfo>, McpError> {
        Ok(self.tools.clone())
    }

    async fn call_tool(&self, _name: &str, _arguments: &Value) -> Result<Value, McpError> {
        // Replay answers calls through the tools' replay runners; nothing reaches here.
        Ok(serde_json::json!({"content": [], "isError": true}))
    }

    fn diagnostics(&self) -> ServerDiagnostics {
        ServerDiagnostics {
            exit: None,
            stderr: String::new(),
        }
    }

    fn identity(&self) -> ServerIdentity {
        ServerIdentity {
            name: "replay".into(),
            version: String::new(),
        }
    }

    async fn close(&self) -> ServerDiagnostics {
        self.diagnostics()
    }
}
