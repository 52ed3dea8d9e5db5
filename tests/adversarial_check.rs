//! Adversarial: workflow files written by someone else (a pull request checked by `pe check`
//! in CI). YAML bombs stop at once with a located error (finding 3), and no file up to
//! 1 MB — whatever its shape — makes `pe check` take more than a few seconds (under a second
//! for the release build: `benches/check.rs`) or 100 MB.

mod adversarial_support;

use adversarial_support::shapes::{billion_laughs, hostile_shapes};
use adversarial_support::{Case, Measured, excerpt, measure, pe};
use serde_json::{Value, json};

/// `pe check --format json FILE` on `text`, measured; returns the run and its document.
fn check(text: &str) -> (Measured, Value) {
    let case = Case::new(text);
    let run = measure(pe(
        case.dir.path(),
        &["check", "--format", "json", "workflow.yaml"],
    ));
    let doc = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", excerpt(&run.stdout)));
    (run, doc)
}

/// `(code, line, column)` of each reported diagnostic.
fn located(doc: &Value) -> Vec<(String, u64, u64)> {
    doc["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn yaml_bombs_stop_at_once_with_a_located_error() {
    for levels in [7, 8, 12] {
        let (run, doc) = check(&billion_laughs(levels));
        run.within_bounds(&format!("a bomb of {levels} levels"));
        assert!(
            run.cpu.unwrap_or(run.elapsed).as_millis() < 2_000,
            "{run:?}"
        );
        assert_eq!(run.code, Some(3));
        // Anchors x-0..x-3 keep 12,344 values and aliases copy 12,330 by the end of x-3's
        // line; x-4 copies x-3 (11,111 values): its seventh copy passes 100,000.
        assert_eq!(located(&doc), [("pe::yaml-limit".to_string(), 8, 41)]);
        assert_eq!(
            doc["files"][0]["diagnostics"][0]["message"],
            json!("aliases and anchors copy more than 100000 values in this file")
        );
    }
    // Aliases of aliases that nest instead of multiplying.
    let mut deep = String::from("version: 1\nname: deep\ntask: t\nx-0: &a0 [1]\n");
    for i in 1..=200 {
        deep.push_str(&format!("x-{i}: &a{i} [*a{}]\n", i - 1));
    }
    let (run, doc) = check(&deep);
    run.within_bounds("nested aliases");
    assert_eq!(located(&doc), [("pe::yaml-limit".to_string(), 130, 15)]);
}

#[test]
fn any_file_up_to_1_mb_is_checked_within_bounds() {
    for (shape, text) in hostile_shapes() {
        assert!(text.len() <= 1_200_000, "{shape}: {} bytes", text.len());
        let (run, doc) = check(&text);
        run.within_bounds(shape);
        assert!(
            matches!(run.code, Some(0 | 3)),
            "{shape}: {:?}\n{}",
            run.code,
            excerpt(&run.stderr)
        );
        let shown = doc["files"][0]["diagnostics"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(shown <= 100, "{shape}: {shown} diagnostics");
        assert!(
            run.stdout.len() < 200_000,
            "{shape}: {} bytes of output",
            run.stdout.len()
        );
        eprintln!(
            "{shape}: {:.2} s of CPU, {} MB, {shown} diagnostics shown, {} omitted",
            run.cpu.unwrap_or(run.elapsed).as_secs_f64(),
            run.peak_rss_bytes / (1024 * 1024),
            doc["files"][0]["omitted"]
        );
    }
}

#[test]
fn human_output_stays_short_for_a_file_of_a_hundred_thousand_problems() {
    let text = format!(
        "version: 1\nname: shape\ntask: t\n{}",
        (0..100_000)
            .map(|i| format!("k{i}: 1\n"))
            .collect::<String>()
    );
    let case = Case::new(&text);
    let run = measure(pe(case.dir.path(), &["check", "workflow.yaml"]));
    run.within_bounds("human output");
    assert_eq!(run.code, Some(3));
    assert!(run.stderr.len() < 100_000, "{} bytes", run.stderr.len());
    assert!(
        run.stderr
            .ends_with("workflow.yaml: 100000 problems (the first 100 are shown)\n"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(300)..]
    );
}
