//! The server of an `mcp:` entry in a `pe test` case that does not let it run (`live`):
//! nothing is started, and the entry offers exactly the tools the case stubs, each
//! accepting any arguments object (the real server's schemas are not known offline).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    McpConnector, McpError, McpSession, McpToolInfo, ServerDiagnostics, ServerIdentity, Target,
};

/// Lists the stubbed names (their names on the server).
pub(crate) struct StubConnector {
    pub(crate) names: Vec<String>,
}

struct StubSession {
    names: Vec<String>,
}

#[async_trait::async_trait]
impl McpConnector for StubConnector {
    async fn connect(
        &self,
        _entry: &str,
        _target: &Target,
        _limit: Duration,
    ) -> Result<Arc<dyn McpSession>, McpError> {
        Ok(Arc::new(StubSession {
            names: self.names.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl McpSession for StubSession {
    async fn list_tools(&self) -> Result<Vec<McpToolInfo>, McpError> {
        Ok(self
            .names
            .iter()
            .map(|name| McpToolInfo {
                description: format!("`{name}` (stubbed in this test)"),
                input_schema: json!({"type": "object"}),
                name: name.clone(),
            })
            .collect())
    }

    async fn call_tool(&self, name: &str, _arguments: &Value) -> Result<Value, McpError> {
        // Stubs replace the runners of these tools; reaching here means a stub is missing.
        Ok(
            json!({"content": [{"type": "text", "text": format!("`{name}` is not stubbed")}], "isError": true}),
        )
    }

    fn diagnostics(&self) -> ServerDiagnostics {
        ServerDiagnostics {
            exit: None,
            stderr: String::new(),
        }
    }

    fn identity(&self) -> ServerIdentity {
        ServerIdentity {
            name: "stub".into(),
            version: String::new(),
        }
    }

    async fn close(&self) -> ServerDiagnostics {
        self.diagnostics()
    }
}
