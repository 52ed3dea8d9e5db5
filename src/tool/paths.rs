//! Typed path arguments (`paths:` on a tool): each named argument is a path inside the
//! workflow's directory, resolved and confined exactly like the file builtins' paths
//! ([`files::resolve`] for a write: no `..`, no absolute path, no symbolic link leading out,
//! no `.git` or `.pe` at any depth; the path need not exist yet) before the tool sees it.
//!
//! The tool then gets the resolved absolute path: it starts with `/`, so a program can never
//! read it as an option (`-rf`), and it means the same whatever the tool's `cwd`. A refused
//! path never reaches the tool; the model is told why, like for any invalid argument.
//!
//! This is a decorator around the kind's runner, inside record/replay: cassettes keep the
//! model's own (relative) arguments, so they replay on any machine.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::files::{Access, resolve};
use super::{ToolContext, ToolError, ToolOutput, ToolRunner};

/// A runner whose path arguments are confined before `inner` runs.
pub struct ConfinedPaths {
    pub inner: Arc<dyn ToolRunner>,
    /// Names of the arguments that are paths.
    pub paths: Vec<String>,
    pub tool: String,
}

#[async_trait::async_trait]
impl ToolRunner for ConfinedPaths {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let requested: Vec<(String, String)> = self
            .paths
            .iter()
            .filter_map(|name| {
                let value = args.get(name)?.as_str()?;
                Some((name.clone(), value.to_string()))
            })
            .collect();
        if requested.is_empty() {
            return self.inner.call(args, ctx).await;
        }
        let root = ctx.root();
        let tool = self.tool.clone();
        let resolved = tokio::task::spawn_blocking(move || confine(&tool, &root, requested))
            .await
            .unwrap_or_else(|e| {
                Err(ToolError::failed(format!(
                    "resolving the path arguments did not finish: {e}"
                )))
            })?;
        let mut args = args.clone();
        if let Value::Object(map) = &mut args {
            for (name, path) in resolved {
                map.insert(name, Value::String(path));
            }
        }
        self.inner.call(&args, ctx).await
    }
}

/// Resolves each `(argument, path)`; the first refusal is the call's error.
fn confine(
    tool: &str,
    root: &std::path::Path,
    requested: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, ToolError> {
    requested
        .into_iter()
        .map(|(name, value)| {
            let invalid = |problem: String| ToolError::InvalidArguments {
                tool: tool.to_string(),
                problems: format!("/{name}: {problem}"),
            };
            let path: PathBuf =
                resolve(root, &value, Access::Write).map_err(|e| invalid(e.to_string()))?;
            let text = path
                .into_os_string()
                .into_string()
                .map_err(|_| invalid(format!("`{value}` does not resolve to a UTF-8 path")))?;
            Ok((name, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Echoes its arguments back, so a test sees what the tool got.
    struct Echo;

    #[async_trait::async_trait]
    impl ToolRunner for Echo {
        async fn call(&self, args: &Value, _: &ToolContext) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput {
                content: args.to_string(),
                truncated: false,
            })
        }
    }

    #[tokio::test]
    async fn path_arguments_become_confined_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/.pe")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let runner = ConfinedPaths {
            inner: Arc::new(Echo),
            paths: vec!["path".into()],
            tool: "mk".into(),
        };
        let ctx = ToolContext {
            inputs: json!({}),
            workflow_dir: dir.path().to_path_buf(),
            ..ToolContext::default()
        };
        let call = |path: &str| {
            let args = json!({"path": path, "mode": "-rf"});
            let runner = &runner;
            let ctx = &ctx;
            async move {
                runner
                    .call(&args, ctx)
                    .await
                    .map(|o| o.content)
                    .map_err(|e| e.to_string())
            }
        };
        let got = |path: &str| {
            json!({"path": root.join(path).display().to_string(), "mode": "-rf"}).to_string()
        };
        assert_eq!(call("a/b").await, Ok(got("a/b")));
        assert_eq!(call("-rf").await, Ok(got("-rf")));
        let refusals = [
            (
                "../../x",
                "`../../x` is refused: `..` may not appear in a path; paths stay inside the workflow's directory",
            ),
            (
                "/etc",
                "`/etc` is refused: absolute paths are not allowed; use a path relative to the workflow's directory",
            ),
            (
                "out/x",
                "`out/x` is refused: it leads outside the workflow's directory (through a symbolic link)",
            ),
            (
                "sub/.pe/runs.db",
                "`sub/.pe/runs.db` is refused: .pe is protected",
            ),
        ];
        for (path, why) in refusals {
            assert_eq!(
                call(path).await,
                Err(format!("invalid arguments for `mk`: /path: {why}")),
                "{path}"
            );
        }
    }
}
