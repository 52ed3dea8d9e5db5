use std::time::{Duration as StdDuration, Instant};

use serde_json::json;

use super::*;
use crate::duration::Duration;
use crate::spec::OnError;
use crate::workflow::{Builtin, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TOOL_TIMEOUT};

fn tool(name: &str, kind: ToolKind, parameters: Value) -> Tool {
    Tool {
        description: format!("the {name} tool"),
        kind,
        max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        name: name.to_string(),
        on_error: OnError::Continue,
        parameters,
        paths: Vec::new(),
        timeout: Duration(DEFAULT_TOOL_TIMEOUT),
    }
}

fn command(argv: &[&str]) -> ToolKind {
    ToolKind::Command {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: None,
        env: IndexMap::new(),
        inherit_env: Vec::new(),
    }
}

fn toolbox(tools: Vec<Tool>) -> Toolbox {
    Toolbox::new(&tools.into_iter().map(|t| (t.name.clone(), t)).collect())
}

fn context(dir: &std::path::Path) -> ToolContext {
    ToolContext {
        idempotency_key: None,
        inputs: json!({}),
        workflow_dir: dir.to_path_buf(),
        ..ToolContext::default()
    }
}

fn touch_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "count": {"type": "integer"}
        },
        "required": ["name"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn invalid_arguments_are_all_reported_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tools = toolbox(vec![tool(
        "touch",
        command(&["touch", "{{ args.name }}"]),
        touch_schema(),
    )]);
    let ctx = context(dir.path());
    let cases = [
        (
            json!({"name": 1, "count": "x"}),
            r#"/name: 1 is not of type "string"; /count: "x" is not of type "integer""#,
        ),
        (json!({}), r#""name" is a required property"#),
        (
            json!({"name": "../../etc"}),
            r#"/name: "../../etc" does not match "^[a-z]+$""#,
        ),
        (
            json!({"name": "ok", "extra": true}),
            r#"Additional properties are not allowed ('extra' was unexpected)"#,
        ),
        (json!("name"), r#""name" is not of type "object""#),
    ];
    for (args, want) in cases {
        let err = tools.call("touch", &args, &ctx).await.unwrap_err();
        let want = ToolError::InvalidArguments {
            tool: "touch".into(),
            problems: want.into(),
        };
        assert_eq!(err, want, "{args}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the tool must not have run"
    );
    assert_eq!(tools.call_counts()["touch"], 0);
    tools
        .call("touch", &json!({"name": "made"}), &ctx)
        .await
        .unwrap();
    assert!(dir.path().join("made").exists());
    assert_eq!(tools.call_counts()["touch"], 1);
}

#[tokio::test]
async fn unknown_tools_name_the_available_ones() {
    let tools = toolbox(vec![
        tool("a", ToolKind::Mock(MockSpec::Fixed("x".into())), json!({})),
        tool("b", ToolKind::Mock(MockSpec::Fixed("y".into())), json!({})),
    ]);
    let err = tools
        .call("c", &json!({}), &context(&std::env::temp_dir()))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown tool `c`; available: a, b");
    let none = toolbox(vec![])
        .call("c", &json!({}), &context(&std::env::temp_dir()))
        .await
        .unwrap_err();
    assert_eq!(none.to_string(), "unknown tool `c`; available: none");
}

#[tokio::test]
async fn builtins_without_declared_properties_use_their_own_schema() {
    let tools = toolbox(vec![
        tool("calc", ToolKind::Builtin(Builtin::Calculator), json!({})),
        tool(
            "now",
            ToolKind::Builtin(Builtin::CurrentTime),
            json!({"type": "object"}),
        ),
        tool(
            "echo",
            ToolKind::Mock(MockSpec::Fixed("{{ args.x }}".into())),
            json!({"type": "object"}),
        ),
    ]);
    let definitions = tools.definitions();
    let names: Vec<&str> = definitions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["calc", "now", "echo"]);
    assert_eq!(definitions[0].parameters, Builtin::Calculator.parameters());
    assert_eq!(definitions[0].description, "the calc tool");
    assert_eq!(definitions[1].parameters, Builtin::CurrentTime.parameters());
    assert_eq!(definitions[2].parameters, json!({"type": "object"}));
    let ctx = context(&std::env::temp_dir());
    let out = tools
        .call("calc", &json!({"expression": "2 ^ 10"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.content, "1024");
    let err = tools
        .call("calc", &json!({"expr": "1"}), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
    assert_eq!(tools.get("calc").map(|t| t.name.as_str()), Some("calc"));
    assert!(tools.get("nope").is_none());
}

#[tokio::test]
async fn stubs_replace_behaviour_but_keep_the_interface() {
    let dir = tempfile::tempdir().unwrap();
    let declared = toolbox(vec![tool(
        "touch",
        command(&["touch", "{{ args.name }}"]),
        touch_schema(),
    )]);
    let stubs: IndexMap<String, MockSpec> = [
        (
            "touch".to_string(),
            MockSpec::Fixed("stubbed {{ args.name }}".into()),
        ),
        ("not_a_tool".to_string(), MockSpec::Fixed("ignored".into())),
    ]
    .into_iter()
    .collect();
    let tools = declared.with_stubs(&stubs, |_| false);
    let ctx = context(dir.path());
    let out = tools
        .call("touch", &json!({"name": "abc"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.content, "stubbed abc");
    assert!(!dir.path().join("abc").exists());
    assert!(
        tools
            .call("touch", &json!({"name": 5}), &ctx)
            .await
            .is_err()
    );
    assert_eq!(tools.definitions().len(), 1);
    assert_eq!(
        tools.call_counts(),
        IndexMap::from([("touch".to_string(), 1)])
    );
}

#[tokio::test]
async fn failed_calls_count_too() {
    let failing = MockSpec::Cases(serde_json::from_value(json!({"error": "always"})).unwrap());
    let tools = toolbox(vec![tool("f", ToolKind::Mock(failing), json!({}))]);
    let ctx = context(&std::env::temp_dir());
    for _ in 0..3 {
        assert_eq!(
            tools.call("f", &json!({}), &ctx).await,
            Err(ToolError::failed("always"))
        );
    }
    assert_eq!(tools.call_counts()["f"], 3);
}

#[tokio::test]
async fn timeouts_apply_to_every_kind() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(StdDuration::from_secs(30)))
        .mount(&server)
        .await;
    let http = crate::spec::HttpSpec {
        body: None,
        headers: IndexMap::new(),
        method: "GET".into(),
        url: server.uri(),
    };
    let mut slow_command = tool("slow_command", command(&["sleep", "30"]), json!({}));
    let mut slow_http = tool("slow_http", ToolKind::Http(http), json!({}));
    for t in [&mut slow_command, &mut slow_http] {
        t.timeout = Duration(StdDuration::from_millis(300));
    }
    let tools = toolbox(vec![slow_command, slow_http]);
    let ctx = context(&std::env::temp_dir());
    for name in ["slow_command", "slow_http"] {
        let started = Instant::now();
        let err = tools.call(name, &json!({}), &ctx).await.unwrap_err();
        assert_eq!(err.to_string(), format!("`{name}` timed out after 300ms"));
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

/// A tool that never answers, with no timeout of its own, ends at the default timeout (on a
/// paused clock: the runtime jumps to the timer once nothing else can happen).
#[tokio::test(start_paused = true)]
async fn a_tool_without_a_timeout_ends_at_the_default() {
    struct Hang;
    #[async_trait::async_trait]
    impl ToolRunner for Hang {
        async fn call(&self, _: &Value, _: &ToolContext) -> Result<ToolOutput, ToolError> {
            std::future::pending().await
        }
    }
    let tools = toolbox(vec![tool("hang", command(&["true"]), json!({}))])
        .map_runners(|_, _| Arc::new(Hang) as Arc<dyn ToolRunner>);
    let started = tokio::time::Instant::now();
    let err = tools
        .call("hang", &json!({}), &context(&std::env::temp_dir()))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "`hang` timed out after 10m");
    assert_eq!(started.elapsed(), DEFAULT_TOOL_TIMEOUT);
}

#[tokio::test]
async fn a_schema_that_does_not_compile_fails_every_call() {
    let tools = toolbox(vec![tool(
        "bad",
        ToolKind::Mock(MockSpec::Fixed("x".into())),
        json!({"type": "nonsense"}),
    )]);
    let err = tools
        .call("bad", &json!({}), &context(&std::env::temp_dir()))
        .await
        .unwrap_err();
    match err {
        ToolError::InvalidArguments { tool, problems } => {
            assert_eq!(tool, "bad");
            assert!(
                problems.starts_with("the tool's `parameters` schema does not compile: "),
                "{problems}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tools.call_counts()["bad"], 0);
}

#[test]
fn long_problems_are_clipped() {
    let tools = toolbox(vec![tool(
        "t",
        ToolKind::Mock(MockSpec::Fixed("x".into())),
        touch_schema(),
    )]);
    let entry = &tools.entries["t"];
    let long = "é".repeat(1000);
    let Err(ToolError::InvalidArguments { problems, .. }) =
        entry.validate("t", &json!({ "name": long }), &[])
    else {
        panic!("should be invalid");
    };
    assert!(
        problems.len() <= "/name: ".len() + MAX_PROBLEM_CHARS + "…".len(),
        "{}",
        problems.len()
    );
    assert!(problems.ends_with('…'));
}

#[test]
fn calls_can_be_spawned_and_the_toolbox_shared() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let tools = toolbox(vec![]);
    send_sync(&tools);
    let ctx = context(&std::env::temp_dir());
    send(tools.call("x", &Value::Null, &ctx));
}

#[test]
fn the_root_is_absolute_even_for_a_bare_file_name() {
    let cwd = std::env::current_dir().unwrap();
    let cases = [
        ("", cwd.join(".")),
        ("sub", cwd.join("sub")),
        ("/abs/dir", "/abs/dir".into()),
    ];
    for (dir, want) in cases {
        let ctx = context(std::path::Path::new(dir));
        assert_eq!(ctx.root(), want, "{dir:?}");
    }
}
