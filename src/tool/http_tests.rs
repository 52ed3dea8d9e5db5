use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::tool::truncate::marker;

fn runner(spec: Value, limit: usize) -> HttpRunner {
    let spec: HttpSpec = serde_json::from_value(spec).unwrap();
    HttpRunner::new("t".into(), spec, HttpRunner::client(), limit)
}

fn context() -> ToolContext {
    ToolContext {
        idempotency_key: None,
        inputs: json!({"service": "api"}),
        workflow_dir: std::env::temp_dir(),
        ..ToolContext::default()
    }
}

async fn run(runner: &HttpRunner, args: Value) -> Result<ToolOutput, String> {
    runner
        .call(&args, &context())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn renders_url_and_headers_and_returns_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/status/api"))
        .and(query_param("v", "1.4.3"))
        .and(header("x-service", "api"))
        .respond_with(ResponseTemplate::new(200).set_body_string("green"))
        .expect(1)
        .mount(&server)
        .await;
    let status = runner(
        json!({
            "url": format!("{}/status/{{{{ inputs.service }}}}?v={{{{ args.version }}}}", server.uri()),
            "headers": {"X-Service": "{{ inputs.service }}"},
        }),
        1000,
    );
    let out = run(&status, json!({"version": "1.4.3"})).await.unwrap();
    assert_eq!(
        out,
        ToolOutput {
            content: "green".into(),
            truncated: false
        }
    );
}

#[tokio::test]
async fn json_bodies_keep_model_values_as_strings() {
    let server = MockServer::start().await;
    let hostile = r#"1.0", "admin": true, "x": ""#;
    Mock::given(method("POST"))
        .and(path("/deploy"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"version": hostile, "replicas": 3, "tags": ["api"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let deploy = runner(
        json!({
            "method": "post",
            "url": format!("{}/deploy", server.uri()),
            "body": {"version": "{{ args.version }}", "replicas": 3, "tags": ["{{ inputs.service }}"]},
        }),
        1000,
    );
    assert_eq!(
        run(&deploy, json!({"version": hostile}))
            .await
            .unwrap()
            .content,
        "ok"
    );
}

#[tokio::test]
async fn string_bodies_are_sent_as_text() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(header("content-type", "text/plain; charset=utf-8"))
        .and(body_string("note for api: hi"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let note = runner(
        json!({"method": "PUT", "url": server.uri(), "body": "note for {{ inputs.service }}: {{ args.text }}"}),
        1000,
    );
    assert_eq!(run(&note, json!({"text": "hi"})).await.unwrap().content, "");
}

#[tokio::test]
async fn error_statuses_fail_with_the_start_of_the_body() {
    let server = MockServer::start().await;
    Mock::given(path("/boom"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database is down"))
        .mount(&server)
        .await;
    Mock::given(path("/huge-error"))
        .respond_with(ResponseTemplate::new(404).set_body_string("x".repeat(5000)))
        .mount(&server)
        .await;
    let boom = runner(json!({"url": format!("{}/boom", server.uri())}), 1000);
    assert_eq!(
        run(&boom, json!({})).await,
        Err("`t`: HTTP 500 Internal Server Error: database is down".into())
    );
    let huge = runner(
        json!({"url": format!("{}/huge-error", server.uri())}),
        100_000,
    );
    let want = format!(
        "`t`: HTTP 404 Not Found: {}{}",
        "x".repeat(ERROR_BODY_BYTES),
        marker(5000 - 1024)
    );
    assert_eq!(run(&huge, json!({})).await, Err(want));
}

#[tokio::test]
async fn large_bodies_are_truncated() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("é".repeat(100_000)))
        .mount(&server)
        .await;
    let big = runner(json!({"url": server.uri()}), 101);
    let out = run(&big, json!({})).await.unwrap();
    assert_eq!(
        out.content,
        format!("{}{}", "é".repeat(50), marker(200_000 - 100))
    );
    assert!(out.truncated);
}

#[tokio::test]
async fn model_values_are_one_path_segment_or_one_query_value() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let status = runner(
        json!({"url": format!("{}/status/{{{{ args.name }}}}?q={{{{ args.q }}}}", server.uri())}),
        1000,
    );
    let args = json!({"name": "a b/../c?x=1", "q": "v&admin=1#frag"});
    assert_eq!(run(&status, args).await.unwrap().content, "ok");
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.path(), "/status/a%20b%2F..%2Fc%3Fx%3D1");
    assert_eq!(got[0].url.query(), Some("q=v%26admin%3D1%23frag"));
    let pairs: Vec<(String, String)> = got[0].url.query_pairs().into_owned().collect();
    assert_eq!(pairs, [("q".to_string(), "v&admin=1#frag".to_string())]);
}

#[tokio::test]
async fn bad_requests_fail_before_sending() {
    let cases = [
        (
            json!({"url": "{{ args.url }}"}),
            json!({"url": "http://evil.example/"}),
            "`t`: invalid URL `http%3A%2F%2Fevil.example%2F`: relative URL without a base",
        ),
        (
            json!({"url": "http://{{ args.host }}/x"}),
            json!({"host": "evil.example"}),
            "`t`: the URL's scheme, host or port comes from the arguments: take it from the workflow (or `inputs`) and pass arguments in the path or query",
        ),
        (
            json!({"url": "http://127.0.0.1:{{ args.port }}/x"}),
            json!({"port": 22}),
            "`t`: the URL's scheme, host or port comes from the arguments: take it from the workflow (or `inputs`) and pass arguments in the path or query",
        ),
        (
            json!({"url": "http://{{ args.host | safe }}/x"}),
            json!({"host": "evil.example"}),
            "`t`: the URL's scheme, host or port comes from the arguments: take it from the workflow (or `inputs`) and pass arguments in the path or query",
        ),
        (
            json!({"url": "http://127.0.0.1:9/status/{{ args.name }}/log"}),
            json!({"name": ".."}),
            "`t`: an argument changes the URL's structure: `http://127.0.0.1:9/log` does not have the scheme, host, port and path segments the template gives (a value of `.` or `..` as a path segment?)",
        ),
        (
            json!({"url": "file:///etc/passwd"}),
            json!({}),
            "`t`: unsupported URL scheme: file",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "method": "GE T"}),
            json!({}),
            "`t`: invalid HTTP method: GE T",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "headers": {"X-A": "{{ args.v }}"}}),
            json!({"v": "a\nb"}),
            "`t`: invalid value for header x-a: failed to parse header value",
        ),
    ];
    for (spec, args, want) in cases {
        assert_eq!(
            run(&runner(spec, 100), args).await.map(|o| o.content),
            Err(want.to_string())
        );
    }
}
