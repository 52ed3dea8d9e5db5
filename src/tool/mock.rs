//! `mock` tools and `pe test` stubs: results chosen by the arguments, no side effects.
//!
//! A fixed text, or cases tried in order: the first whose `when` matches the arguments and
//! whose `times` is not used up wins, so "fail once, then succeed" is two cases. Use counts
//! live behind a mutex because concurrent steps share one toolbox: two parallel calls must
//! not both consume a `times: 1` case.

use std::sync::Mutex;

use serde_json::Value;

use super::truncate::truncate_text;
use super::{ToolContext, ToolError, ToolOutput, ToolRunner, template_context};
use crate::spec::{MockCase, MockSpec};
use crate::template;

/// A mock tool, ready to answer.
pub struct MockRunner {
    max_output_bytes: usize,
    spec: MockSpec,
    tool: String,
    /// How often each case of `spec` has been used, by index.
    uses: Mutex<Vec<u32>>,
}

impl MockRunner {
    pub fn new(tool: String, spec: MockSpec, max_output_bytes: usize) -> MockRunner {
        let cases = match &spec {
            MockSpec::Cases(cases) => cases.cases.len(),
            MockSpec::Fixed(_) => 0,
        };
        MockRunner {
            max_output_bytes,
            spec,
            tool,
            uses: Mutex::new(vec![0; cases]),
        }
    }

    /// The first case that applies, counted as used in the same critical section.
    fn take_case(&self, cases: &[MockCase], args: &Value, vars: &Value) -> Option<usize> {
        // A panic elsewhere while holding the lock leaves the counts valid: keep using them.
        let mut uses = self
            .uses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = cases.iter().enumerate().position(|(i, case)| {
            let left = case
                .times
                .is_none_or(|times| uses.get(i).copied().unwrap_or(0) < times);
            left && matches_when(case, args, vars)
        })?;
        if let Some(count) = uses.get_mut(index) {
            *count = count.saturating_add(1);
        }
        Some(index)
    }

    fn render(&self, what: &str, text: &str, vars: &Value) -> Result<String, ToolError> {
        template::render(text, vars).map_err(|e| {
            ToolError::failed(format!(
                "`{}`: cannot render the mock {what}: {e}",
                self.tool
            ))
        })
    }

    /// A string result is a template; any other JSON has its strings rendered and is shown
    /// as compact JSON; no result is an empty output.
    fn result(&self, result: Option<&Value>, vars: &Value) -> Result<String, ToolError> {
        match result {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(text)) => self.render("result", text, vars),
            Some(json) => {
                let rendered = template::render_value(json, vars).map_err(|e| {
                    ToolError::failed(format!(
                        "`{}`: cannot render the mock result: {e}",
                        self.tool
                    ))
                })?;
                Ok(rendered.to_string())
            }
        }
    }
}

#[async_trait::async_trait]
impl ToolRunner for MockRunner {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let vars = template_context(args, ctx);
        let text = match &self.spec {
            MockSpec::Fixed(text) => self.render("result", text, &vars)?,
            MockSpec::Cases(spec) => {
                let (error, result) = match self.take_case(&spec.cases, args, &vars) {
                    Some(index) => (&spec.cases[index].error, spec.cases[index].result.as_ref()),
                    None => (&spec.error, spec.result.as_ref()),
                };
                if let Some(error) = error {
                    return Err(ToolError::failed(self.render("error", error, &vars)?));
                }
                self.result(result, &vars)?
            }
        };
        Ok(truncate_text(&text, self.max_output_bytes))
    }
}

/// A string value with template syntax is rendered first (over `args` and `inputs`), so a
/// case can match "the country the task named": `when: {first: '{{ inputs.country }}'}`. One
/// that does not render never matches.
fn matches_when(case: &MockCase, args: &Value, vars: &Value) -> bool {
    case.when.iter().all(|(key, want)| match args.get(key) {
        Some(got) => match want {
            Value::String(text) if template::is_templated(text) => {
                template::render(text, vars).is_ok_and(|w| same(&Value::String(w), got))
            }
            _ => same(want, got),
        },
        // `when: {x: null}` also matches a call that leaves `x` out.
        None => want.is_null(),
    })
}

/// Equality as a test author means it: numbers compare by value (`1` matches `1.0`), and a
/// number written unquoted in YAML (`version: 1.4`) matches the same text passed as a
/// string (`"1.4"`); everything else compares exactly, recursively.
fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        (Value::Number(a), Value::String(b)) => a.to_string() == *b,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        _ => want == got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MockCases;
    use serde_json::json;

    fn ctx() -> ToolContext {
        ToolContext {
            idempotency_key: None,
            inputs: json!({"service": "api"}),
            workflow_dir: std::env::temp_dir(),
            ..ToolContext::default()
        }
    }

    fn runner(spec: Value) -> MockRunner {
        let spec: MockSpec = serde_json::from_value(spec).unwrap();
        MockRunner::new("t".into(), spec, 1000)
    }

    async fn call(runner: &MockRunner, args: Value) -> Result<String, String> {
        runner
            .call(&args, &ctx())
            .await
            .map(|o| o.content)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn when_values_compare_like_a_test_author_means() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(1.4), json!("1.4"), true),
            (json!("1.4.3"), json!("1.4.3"), true),
            (json!("1.4.3"), json!("1.4.4"), false),
            (json!(1.4), json!("1.40"), false),
            (json!("1"), json!(1), false),
            (json!(true), json!(true), true),
            (json!(true), json!("true"), false),
            (json!([1, "a"]), json!([1.0, "a"]), true),
            (json!({"a": 2}), json!({"a": 2.0}), true),
            (json!({"a": 2}), json!({"a": 2, "b": 3}), false),
        ];
        for (want, got, expected) in cases {
            assert_eq!(same(&want, &got), expected, "{want} vs {got}");
        }
    }

    #[tokio::test]
    async fn fixed_results_are_templates() {
        let mock = runner(json!("deployed {{ inputs.service }} {{ args.version }}"));
        assert_eq!(
            call(&mock, json!({"version": "1.4.3"})).await,
            Ok("deployed api 1.4.3".into())
        );
        assert!(
            call(&mock, json!({}))
                .await
                .unwrap_err()
                .contains("cannot render the mock result")
        );
    }

    #[tokio::test]
    async fn first_matching_case_wins_and_times_are_used_up() {
        let mock = runner(json!({
            "cases": [
                {"when": {"version": "1.4.3"}, "times": 1, "error": "flaky {{ args.version }}"},
                {"when": {"version": "1.4.3"}, "result": {"ok": true, "v": "{{ args.version }}"}},
                {"when": {"version": "2.0.0"}, "result": 42},
            ],
            "result": "default for {{ args.version }}",
        }));
        let v143 = json!({"version": "1.4.3"});
        assert_eq!(call(&mock, v143.clone()).await, Err("flaky 1.4.3".into()));
        assert_eq!(
            call(&mock, v143.clone()).await,
            Ok(r#"{"ok":true,"v":"1.4.3"}"#.into())
        );
        assert_eq!(
            call(&mock, v143).await,
            Ok(r#"{"ok":true,"v":"1.4.3"}"#.into())
        );
        assert_eq!(
            call(&mock, json!({"version": "2.0.0"})).await,
            Ok("42".into())
        );
        assert_eq!(
            call(&mock, json!({"version": "9"})).await,
            Ok("default for 9".into())
        );
    }

    #[tokio::test]
    async fn no_match_uses_the_top_level_error_then_result_then_empty() {
        let with_error =
            runner(json!({"cases": [], "error": "no such version", "result": "unused"}));
        assert_eq!(
            call(&with_error, json!({})).await,
            Err("no such version".into())
        );
        let empty = MockRunner::new("t".into(), MockSpec::Cases(MockCases::default()), 1000);
        assert_eq!(call(&empty, json!({})).await, Ok(String::new()));
    }

    #[tokio::test]
    async fn times_hold_under_concurrent_calls() {
        let mock = std::sync::Arc::new(runner(json!({
            "cases": [{"times": 3, "result": "hit"}],
            "result": "miss",
        })));
        let calls = (0..20).map(|_| {
            let mock = mock.clone();
            tokio::spawn(async move { call(&mock, json!({})).await })
        });
        let results = futures::future::join_all(calls).await;
        let hits = results
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(s)) if s == "hit"))
            .count();
        assert_eq!(hits, 3);
    }

    #[tokio::test]
    async fn long_results_are_truncated() {
        let spec = MockSpec::Fixed("x".repeat(50));
        let mock = MockRunner::new("t".into(), spec, 10);
        let out = mock.call(&json!({}), &ctx()).await.unwrap();
        assert!(out.truncated);
        assert_eq!(
            out.content,
            format!("{}{}", "x".repeat(10), super::super::truncate::marker(40))
        );
    }
}
