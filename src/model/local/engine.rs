//! The inference worker: one OS thread per GGUF file owns the llama.cpp model, its context
//! and the llguidance parser factory, and serves generation jobs from a channel one at a
//! time. Callers on the async runtime await a oneshot reply, so inference never blocks a
//! tokio worker, and every role and concurrent step of a run shares one loaded model.
//!
//! The KV cache keeps the last conversation: a request that extends it (the executor's
//! tool loop, a replanner re-ask) only evaluates the new tokens.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use tokio::sync::oneshot;

use super::format::chatml;

/// Largest context the worker allocates (the models' training contexts are larger; the
/// shipped workflows' prompts stay far below this).
const MAX_CONTEXT: u32 = 8192;
/// Tokens evaluated per `decode` call while reading a prompt.
const BATCH: usize = 512;

/// One generation job.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// For benchmarks: keep sampling past end-of-generation tokens.
    pub ignore_eos: bool,
    pub max_tokens: u32,
    /// For benchmarks: evaluate the whole prompt even when the cache holds a prefix of it.
    pub reuse_cache: bool,
    /// JSON Schema the output must satisfy (already bounded), or free text.
    pub schema: Option<Value>,
    pub seed: u32,
    /// 0 samples greedily.
    pub temperature: f32,
    pub top_p: f32,
    /// (role, content) turns for the chat template.
    pub turns: Vec<(String, String)>,
}

/// What a job produced, with its timings.
#[derive(Clone, Debug, Default)]
pub struct GenOutput {
    pub decode_ms: f64,
    pub output_tokens: u64,
    /// Prompt tokens evaluated now (the rest came from the cache).
    pub prompt_evaluated: u64,
    pub prompt_ms: f64,
    pub prompt_tokens: u64,
    pub text: String,
    /// Generation stopped at `max_tokens`, not at the end of the reply.
    pub truncated: bool,
}

/// Facts about a loaded model.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// `gguf` when the file's own chat template is used, else the fallback's name.
    pub chat_template: String,
    pub context: u32,
    pub load_ms: f64,
    pub path: PathBuf,
    pub threads: i32,
}

struct Job {
    reply: oneshot::Sender<Result<GenOutput, String>>,
    request: GenRequest,
}

/// A handle on a worker thread that owns one loaded model.
pub struct Engine {
    pub info: EngineInfo,
    jobs: mpsc::Sender<Job>,
}

impl Engine {
    /// Starts a worker and waits until the model is loaded (or failed to load).
    pub fn start(path: &Path, threads: i32) -> Result<Engine, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<EngineInfo, String>>();
        let owned = path.to_path_buf();
        std::thread::Builder::new()
            .name("pe-local-model".into())
            .spawn(move || worker(&owned, threads, &ready_tx, &inbox))
            .map_err(|e| format!("cannot start the inference thread: {e}"))?;
        let info = ready_rx
            .recv()
            .map_err(|_| "the inference thread stopped while loading".to_string())??;
        Ok(Engine { info, jobs })
    }

    /// Generates on the worker; awaiting never blocks the runtime.
    pub async fn generate(&self, request: GenRequest) -> Result<GenOutput, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { reply, request })
            .map_err(|_| "the inference thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the inference thread dropped the job".to_string())?
    }

    /// Generates from synchronous code (benchmarks).
    pub fn generate_blocking(&self, request: GenRequest) -> Result<GenOutput, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { reply, request })
            .map_err(|_| "the inference thread has stopped".to_string())?;
        answer
            .blocking_recv()
            .map_err(|_| "the inference thread dropped the job".to_string())?
    }
}

/// The llama.cpp backend, initialised once per process with its logging silenced (it
/// would otherwise write hundreds of lines to stderr, which carries `pe`'s progress).
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            if std::env::var_os("PE_LOCAL_LOG").is_none() {
                llama_cpp_2::send_logs_to_tracing(
                    llama_cpp_2::LogOptions::default().with_logs_enabled(false),
                );
            }
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Everything the worker owns while it serves jobs.
struct Loaded<'m> {
    cached: Vec<LlamaToken>,
    ctx: LlamaContext<'m>,
    factory: ParserFactory,
    model: &'m LlamaModel,
    template: Option<LlamaChatTemplate>,
}

fn worker(
    path: &Path,
    threads: i32,
    ready: &mpsc::Sender<Result<EngineInfo, String>>,
    inbox: &mpsc::Receiver<Job>,
) {
    let t0 = Instant::now();
    let model = match load_model(path) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut loaded = match prepare(&model, threads) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let info = EngineInfo {
        chat_template: if loaded.template.is_some() {
            "gguf".into()
        } else {
            "chatml (fallback)".into()
        },
        context: loaded.ctx.n_ctx(),
        load_ms: t0.elapsed().as_secs_f64() * 1e3,
        path: path.to_path_buf(),
        threads,
    };
    if ready.send(Ok(info)).is_err() {
        return;
    }
    while let Ok(job) = inbox.recv() {
        if job.reply.is_closed() {
            continue;
        }
        let result = loaded.generate(&job.request, &job.reply);
        let _ = job.reply.send(result);
    }
}

fn load_model(path: &Path) -> Result<LlamaModel, String> {
    let backend = backend()?;
    LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| format!("llama.cpp cannot load it ({e}); is it a GGUF file?"))
}

fn prepare(model: &LlamaModel, threads: i32) -> Result<Loaded<'_>, String> {
    let backend = backend()?;
    let n_ctx = model.n_ctx_train().clamp(512, MAX_CONTEXT);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = model
        .new_context(backend, params)
        .map_err(|e| format!("cannot create an inference context: {e}"))?;
    let tok_env = LlamaSampler::llguidance_tok_env(model);
    let mut factory = ParserFactory::new_simple(&tok_env)
        .map_err(|e| format!("cannot set up constrained decoding: {e}"))?;
    factory.quiet();
    let template = model.chat_template(None).ok();
    Ok(Loaded {
        cached: Vec::new(),
        ctx,
        factory,
        model,
        template,
    })
}

impl Loaded<'_> {
    fn render(&self, turns: &[(String, String)]) -> String {
        let from_gguf = self.template.as_ref().and_then(|t| {
            let messages: Option<Vec<LlamaChatMessage>> = turns
                .iter()
                .map(|(r, c)| LlamaChatMessage::new(r.clone(), c.replace('\0', "")).ok())
                .collect();
            self.model.apply_chat_template(t, &messages?, true).ok()
        });
        from_gguf.unwrap_or_else(|| chatml(turns))
    }

    fn sampler(&self, request: &GenRequest) -> Result<LlamaSampler, String> {
        let mut chain = Vec::new();
        if let Some(schema) = &request.schema {
            let grammar = TopLevelGrammar::from_json_schema(schema.clone());
            let parser = self.factory.create_parser(grammar).map_err(|e| {
                format!("the JSON Schema cannot be used for constrained decoding: {e}")
            })?;
            chain.push(LlamaSampler::from(Matcher::new(Ok(parser))));
        }
        // A mild penalty on recently generated tokens: a tiny model otherwise repeats a
        // step id or a sentence until a bound stops it. Tokens the schema forces (the JSON
        // punctuation) have a single candidate, so the penalty cannot disturb them.
        chain.push(LlamaSampler::penalties(
            self.model.n_vocab(),
            64,
            1.15,
            0.0,
            0.0,
        ));
        if request.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.push(LlamaSampler::top_k(40));
            chain.push(LlamaSampler::top_p(request.top_p, 1));
            chain.push(LlamaSampler::temp(request.temperature));
            chain.push(LlamaSampler::dist(request.seed));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }

    /// Evaluates `tokens` after the longest prefix the cache already holds; returns how
    /// many were evaluated and the batch index of the last one's logits.
    fn feed_prompt(&mut self, tokens: &[LlamaToken], reuse: bool) -> Result<usize, String> {
        let mut common = if reuse {
            self.cached
                .iter()
                .zip(tokens)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            0
        };
        // The last prompt token is always evaluated: its logits start the reply.
        common = common.min(tokens.len().saturating_sub(1));
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(0), u32::try_from(common).ok(), None)
            .unwrap_or(false);
        if !removed {
            self.ctx.clear_kv_cache();
            common = 0;
        }
        self.cached.truncate(common);
        let rest = &tokens[common..];
        let mut batch = LlamaBatch::new(BATCH, 1);
        for (chunk_index, chunk) in rest.chunks(BATCH).enumerate() {
            batch.clear();
            let last_chunk = (chunk_index + 1) * BATCH >= rest.len();
            for (i, token) in chunk.iter().enumerate() {
                let pos = i32::try_from(common + chunk_index * BATCH + i)
                    .map_err(|_| "prompt position overflow".to_string())?;
                let logits = last_chunk && i + 1 == chunk.len();
                batch
                    .add(*token, pos, &[0], logits)
                    .map_err(|e| format!("cannot batch the prompt: {e}"))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("prompt evaluation failed: {e}"))?;
        }
        self.cached.extend_from_slice(rest);
        Ok(rest.len())
    }

    fn generate(
        &mut self,
        request: &GenRequest,
        reply: &oneshot::Sender<Result<GenOutput, String>>,
    ) -> Result<GenOutput, String> {
        let prompt = self.render(&request.turns);
        // `add_special` adds a BOS token only for models configured to want one.
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.is_empty() || tokens.len() + 16 > n_ctx {
            return Err(format!(
                "the prompt has {} tokens; the local model's context holds {n_ctx}",
                tokens.len()
            ));
        }
        let max_tokens = (request.max_tokens as usize).min(n_ctx - tokens.len());
        let mut sampler = self.sampler(request)?;
        let t_prompt = Instant::now();
        let evaluated = self.feed_prompt(&tokens, request.reuse_cache)?;
        let prompt_ms = t_prompt.elapsed().as_secs_f64() * 1e3;

        let t_decode = Instant::now();
        let vocab = self.model.vocab();
        let mut text: Vec<u8> = Vec::new();
        let mut produced = 0usize;
        let mut finished = false;
        let mut batch = LlamaBatch::new(1, 1);
        let mut logits_at = -1;
        while produced < max_tokens {
            if reply.is_closed() {
                break;
            }
            let token = sampler.sample(&self.ctx, logits_at);
            produced += 1;
            if vocab.is_eog(token) && !request.ignore_eos {
                finished = true;
                break;
            }
            text.extend(vocab.token_to_piece(token, false, None));
            batch.clear();
            let pos = i32::try_from(self.cached.len())
                .map_err(|_| "generation position overflow".to_string())?;
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| format!("cannot batch a token: {e}"))?;
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("decoding failed: {e}"))?;
            self.cached.push(token);
            logits_at = 0;
        }
        if std::env::var_os("PE_LOCAL_DEBUG").is_some() {
            eprintln!(
                "--- local model prompt ---\n{prompt}\n--- reply ---\n{}\n---",
                String::from_utf8_lossy(&text)
            );
        }
        Ok(GenOutput {
            decode_ms: t_decode.elapsed().as_secs_f64() * 1e3,
            output_tokens: produced as u64,
            prompt_evaluated: evaluated as u64,
            prompt_ms,
            prompt_tokens: tokens.len() as u64,
            text: String::from_utf8_lossy(&text).into_owned(),
            truncated: !finished && !request.ignore_eos,
        })
    }
}

/// The number of threads inference uses: `PE_LOCAL_THREADS`, else every available core.
pub fn default_threads() -> i32 {
    std::env::var("PE_LOCAL_THREADS")
        .ok()
        .and_then(|t| t.parse::<i32>().ok())
        .filter(|t| *t > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .and_then(|n| i32::try_from(n.get()).ok())
                .unwrap_or(1)
        })
}

/// Shared engines, one per GGUF file: a model loads once per process.
pub fn shared(path: &Path) -> Result<Arc<Engine>, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static ENGINES: OnceLock<Mutex<HashMap<PathBuf, Arc<Engine>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let engines = ENGINES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = engines.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = map.get(&key) {
        return Ok(Arc::clone(e));
    }
    let engine = Arc::new(Engine::start(&key, default_threads())?);
    map.insert(key, Arc::clone(&engine));
    Ok(engine)
}
