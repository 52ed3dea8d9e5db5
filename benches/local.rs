//! `cargo bench --bench local`: speed of the embedded `local` provider on each installed
//! catalog model — model load time, prompt tokens/s, decode tokens/s, and decode under a
//! JSON Schema (llguidance) against the same decode unconstrained — next to a reference
//! llama.cpp build on the same file and thread count (llama-cpp-python, when importable:
//! `scripts/bench_reference.py`).
//!
//! Each figure is the median of `PE_BENCH_REPEATS` runs (default 3). Threads follow
//! `PE_LOCAL_THREADS` (default: every core), and the reference gets the same number.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use pe::model::local::engine::{Engine, GenRequest, default_threads};
use pe::model::local::format::{Limits, bounded};
use serde_json::json;

const PROMPT_TOKENS_TARGET: usize = 512;
const DECODE_TOKENS: u32 = 128;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn long_prompt() -> String {
    let sentence = "The release pipeline runs continuous integration, a smoke test, a deploy and a verification gate. ";
    // About 20 tokens per sentence.
    sentence.repeat(PROMPT_TOKENS_TARGET / 20)
}

fn request(text: &str, max_tokens: u32) -> GenRequest {
    GenRequest {
        ignore_eos: false,
        max_tokens,
        reuse_cache: false,
        schema: None,
        seed: 0,
        temperature: 0.0,
        top_p: 1.0,
        turns: vec![("user".into(), text.into())],
    }
}

struct Figures {
    /// Decode under the JSON Schema.
    constrained_tps: f64,
    /// Decode of a long free text.
    decode_tps: f64,
    /// Free decode from the same prompt for as many tokens as the constrained reply had:
    /// the baseline the schema's cost is measured against.
    free_same_tps: f64,
    load_ms: f64,
    prompt_tps: f64,
}

fn bench_model(path: &Path, threads: i32, repeats: usize) -> Result<Figures, String> {
    let t0 = Instant::now();
    let engine = Engine::start(path, threads)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let mut prompt_tps = Vec::new();
    let mut decode_tps = Vec::new();
    let mut constrained_tps = Vec::new();
    let mut free_same = Vec::new();
    // Warm-up (first decode allocates buffers).
    engine.generate_blocking(request("Hello", 8))?;
    for _ in 0..repeats {
        let out = engine.generate_blocking(request(&long_prompt(), 1))?;
        prompt_tps.push(out.prompt_evaluated as f64 / (out.prompt_ms / 1e3));

        let mut free = request("Write a long story about a release.", DECODE_TOKENS);
        free.ignore_eos = true;
        let out = engine.generate_blocking(free)?;
        decode_tps.push(out.output_tokens as f64 / (out.decode_ms / 1e3));

        // Constrained decoding: the same prompt under a JSON Schema the model fills in.
        let schema = bounded(
            &json!({"type": "object", "properties": {"steps": {"type": "array", "items": {
                "type": "object", "properties": {"id": {"type": "string"}, "description": {"type": "string"}},
                "required": ["id", "description"]}}}, "required": ["steps"]}),
            Limits {
                max_items: 8,
                max_string: 120,
            },
        );
        let mut constrained = request(
            "Plan a release as JSON: {\"steps\": [{\"id\": ..., \"description\": ...}]}",
            DECODE_TOKENS,
        );
        constrained.schema = Some(schema);
        let out = engine.generate_blocking(constrained)?;
        constrained_tps.push(out.output_tokens as f64 / (out.decode_ms / 1e3));

        // The baseline: the same prompt, as many tokens, no schema.
        let mut baseline = request(
            "Plan a release as JSON: {\"steps\": [{\"id\": ..., \"description\": ...}]}",
            u32::try_from(out.output_tokens.max(1)).unwrap_or(DECODE_TOKENS),
        );
        baseline.ignore_eos = true;
        let base = engine.generate_blocking(baseline)?;
        free_same.push(base.output_tokens as f64 / (base.decode_ms / 1e3));
    }
    Ok(Figures {
        constrained_tps: median(constrained_tps),
        decode_tps: median(decode_tps),
        free_same_tps: median(free_same),
        load_ms,
        prompt_tps: median(prompt_tps),
    })
}

/// Runs the reference (llama-cpp-python) on the same file and threads; its JSON line, or
/// why there is none.
fn reference(path: &Path, threads: i32, repeats: usize) -> Result<serde_json::Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_reference.py");
    let out = Command::new(std::env::var("PE_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(&script)
        .arg(path)
        .arg(threads.to_string())
        .arg(repeats.to_string())
        .arg(PROMPT_TOKENS_TARGET.to_string())
        .arg(DECODE_TOKENS.to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).map_err(|_| {
        let err = String::from_utf8_lossy(&out.stderr);
        format!(
            "reference unavailable: {}",
            err.lines().last().unwrap_or("no output")
        )
    })
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let threads = default_threads();
    let repeats = std::env::var("PE_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize);
    println!("local provider benchmark: {threads} threads, median of {repeats}");
    let mut any = false;
    for entry in pe::models_cache::CATALOG {
        let path = pe::models_cache::models_dir().join(format!("{}.gguf", entry.name));
        if !path.is_file() {
            println!(
                "{}: SKIPPED (not installed; `pe model pull {}`)",
                entry.name, entry.name
            );
            continue;
        }
        any = true;
        match bench_model(&path, threads, repeats) {
            Ok(f) => {
                println!("{}:", entry.name);
                println!("  load time            {:>9.1} ms", f.load_ms);
                println!("  prompt               {:>9.1} tok/s", f.prompt_tps);
                println!("  decode (free)        {:>9.1} tok/s", f.decode_tps);
                println!("  decode (JSON Schema) {:>9.1} tok/s", f.constrained_tps);
                let cost = 100.0 * (1.0 - f.constrained_tps / f.free_same_tps);
                println!(
                    "  same prompt and length, no schema {:>9.1} tok/s: the schema costs {cost:.1}%",
                    f.free_same_tps
                );
                match reference(&path, threads, repeats) {
                    Ok(r) => {
                        let pp = r["prompt_tps"].as_f64().unwrap_or(f64::NAN);
                        let tg = r["decode_tps"].as_f64().unwrap_or(f64::NAN);
                        let load = r["load_ms"].as_f64().unwrap_or(f64::NAN);
                        println!(
                            "  reference {}: load {load:.1} ms, prompt {pp:.1} tok/s, decode {tg:.1} tok/s",
                            r["name"].as_str().unwrap_or("llama.cpp")
                        );
                        println!(
                            "  local/reference: prompt {:+.1}%, decode {:+.1}%",
                            100.0 * (f.prompt_tps / pp - 1.0),
                            100.0 * (f.decode_tps / tg - 1.0)
                        );
                    }
                    Err(e) => println!("  {e}"),
                }
            }
            Err(e) => println!("{}: FAILED: {e}", entry.name),
        }
    }
    if !any {
        println!("no model installed: nothing measured");
    }
}
