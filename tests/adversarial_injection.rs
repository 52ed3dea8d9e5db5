//! Adversarial: injection attempts in every argument position. The model passes shell
//! syntax, option-looking values, `..`, query and fragment syntax and JSON to a command's
//! argv, its environment, a typed path argument, an HTTP URL's path and query, a header,
//! a JSON body and a text body. Every value must arrive as one piece of data in the place
//! the template put it (finding 2: URL values are encoded, never URL syntax).

mod adversarial_support;

use adversarial_support::{Case, excerpt};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHELL: &str = "a; rm -rf / $(id) `id` | cat > x && --force";
const URLISH: &str = "a b/../c?x=1&admin=true#frag";

fn workflow(server: &str) -> String {
    format!(
        r#"version: 1
name: injection
task: Send the values.
models: {{default: scripted/replies.json}}
tools:
  argv:
    description: Print its arguments.
    parameters: {{type: object, properties: {{v: {{type: string}}}}}}
    command: [printf, '[%s]', '{{{{ args.v }}}}', fixed]
  envvar:
    description: Print a variable.
    parameters: {{type: object, properties: {{v: {{type: string}}}}}}
    command: [sh, -c, 'printf "[%s]" "$V"']
    env: {{V: '{{{{ args.v }}}}'}}
  get:
    description: Look an item up.
    parameters: {{type: object, properties: {{v: {{type: string}}}}}}
    http:
      url: '{server}/items/{{{{ args.v }}}}?q={{{{ args.v }}}}&fixed=1'
      headers: {{X-Value: '{{{{ args.v }}}}'}}
  post_json:
    description: Post JSON.
    parameters: {{type: object, properties: {{v: {{type: string}}}}}}
    http: {{method: POST, url: '{server}/json', body: {{name: '{{{{ args.v }}}}', role: user}}}}
  post_text:
    description: Post text.
    parameters: {{type: object, properties: {{v: {{type: string}}}}}}
    http: {{method: POST, url: '{server}/text', body: 'note: {{{{ args.v }}}}'}}
execute: {{max_iterations: 20}}
replan: {{when: never}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_argument_position_keeps_model_values_as_data() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let case = Case::new(&workflow(&server.uri()));
    let json_attack = r#"x", "role": "admin", "y": ""#;
    let calls: Vec<(&str, Value)> = vec![
        ("argv", json!({"v": SHELL})),
        ("argv", json!({"v": "-n"})),
        ("envvar", json!({"v": SHELL})),
        ("get", json!({"v": URLISH})),
        ("get", json!({"v": ".."})),
        ("get", json!({"v": "a\r\nX-Injected: 1"})),
        ("post_json", json!({"v": json_attack})),
        ("post_text", json!({"v": "a\r\n\r\nGET /admin HTTP/1.1"})),
    ];
    let mut executor: Vec<Value> = calls
        .iter()
        .map(|(tool, args)| json!({"tool_calls": [{"name": tool, "arguments": args}]}))
        .collect();
    executor.push(json!({"json": {"status": "succeeded", "result": "done"}}));
    let replies = json!({
        "planner": [{"json": {"steps": [{"id": "attack", "description": "Attack"}]}}],
        "executor": executor,
        "synthesizer": [{"text": "done"}],
    });
    case.write("replies.json", &replies.to_string());
    let run = tokio::task::block_in_place(|| case.exec(&[], &[]));
    run.within_bounds("injection run");
    assert_eq!(run.code, Some(0), "{}", excerpt(&run.stderr));

    let results: Vec<(String, String)> = case
        .events_of("tool_call")
        .iter()
        .map(|e| {
            let text = e["output"].as_str().or(e["error"].as_str()).unwrap_or("");
            (
                e["outcome"].as_str().unwrap_or("").to_string(),
                text.to_string(),
            )
        })
        .collect();
    let want: Vec<(&str, String)> = vec![
        ("ok", format!("[{SHELL}][fixed]")),
        ("ok", "[-n][fixed]".to_string()),
        ("ok", format!("[{SHELL}]")),
        ("ok", "ok".to_string()),
        (
            "error",
            format!(
                "`get`: an argument changes the URL's structure: `{}/?q=..&fixed=1` does not have the scheme, host, port and path segments the template gives (a value of `.` or `..` as a path segment?)",
                server.uri()
            ),
        ),
        (
            "error",
            "`get`: invalid value for header x-value: failed to parse header value".to_string(),
        ),
        ("ok", "ok".to_string()),
        ("ok", "ok".to_string()),
    ];
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|(o, t)| (o.as_str(), t.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = want.iter().map(|(o, t)| (*o, t.as_str())).collect();
    assert_eq!(got, want);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let get = &requests[0];
    assert_eq!(
        get.url.path(),
        "/items/a%20b%2F..%2Fc%3Fx%3D1%26admin%3Dtrue%23frag"
    );
    let query: Vec<(String, String)> = get.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("q".to_string(), URLISH.to_string()),
            ("fixed".to_string(), "1".to_string())
        ]
    );
    assert_eq!(get.url.fragment(), None);
    assert_eq!(get.headers["x-value"], URLISH);
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(body, json!({"name": json_attack, "role": "user"}));
    assert_eq!(
        String::from_utf8_lossy(&requests[2].body),
        "note: a\r\n\r\nGET /admin HTTP/1.1"
    );
    assert_eq!(requests[2].url.path(), "/text");
}

/// A typed path argument (`paths:`) reaches the program as an absolute path inside the
/// workflow's directory: `-rf` is a file name, `../outside` never runs.
#[test]
fn typed_path_arguments_are_confined_and_never_options() {
    let case = Case::new(
        "version: 1
name: typed-paths
task: Touch files.
models: {default: scripted/replies.json}
tools:
  touch:
    description: Create a file.
    parameters: {type: object, properties: {file: {type: string}}, required: [file]}
    paths: [file]
    command: [touch, '{{ args.file }}']
execute: {max_iterations: 10}
replan: {when: never}
",
    );
    let calls = [
        json!({"file": "-rf"}),
        json!({"file": "../outside"}),
        json!({"file": "/tmp/pe-typed-abs"}),
    ];
    let mut executor: Vec<Value> = calls
        .iter()
        .map(|args| json!({"tool_calls": [{"name": "touch", "arguments": args}]}))
        .collect();
    executor.push(json!({"json": {"status": "succeeded", "result": "done"}}));
    let replies = json!({
        "planner": [{"json": {"steps": [{"id": "attack", "description": "Attack"}]}}],
        "executor": executor,
        "synthesizer": [{"text": "done"}],
    });
    case.write("replies.json", &replies.to_string());
    let run = case.exec(&[], &[]);
    run.within_bounds("typed path run");
    assert_eq!(run.code, Some(0), "{}", excerpt(&run.stderr));
    let root = case.dir.path().canonicalize().unwrap();
    assert!(
        root.join("-rf").is_file(),
        "`-rf` must be a file name, not options"
    );
    assert!(!root.parent().unwrap().join("outside").exists());
    assert!(!std::path::Path::new("/tmp/pe-typed-abs").exists());
    let results: Vec<(String, String)> = case
        .events_of("tool_call")
        .iter()
        .map(|e| {
            let text = e["output"].as_str().or(e["error"].as_str()).unwrap_or("");
            (
                e["outcome"].as_str().unwrap_or("").to_string(),
                text.to_string(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("ok".to_string(), String::new()),
            (
                "rejected".to_string(),
                "invalid arguments for `touch`: /file: `../outside` is refused: `..` may not appear in a path; paths stay inside the workflow's directory".to_string()
            ),
            (
                "rejected".to_string(),
                "invalid arguments for `touch`: /file: `/tmp/pe-typed-abs` is refused: absolute paths are not allowed; use a path relative to the workflow's directory".to_string()
            ),
        ]
    );
}
