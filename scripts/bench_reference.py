#!/usr/bin/env python3
"""Reference llama.cpp numbers for `cargo bench --bench local`: the same GGUF file, thread
count, prompt length and decode length, through llama-cpp-python (its own llama.cpp build).

usage: bench_reference.py MODEL.gguf THREADS REPEATS PROMPT_TOKENS DECODE_TOKENS
Prints one JSON line: {"name", "load_ms", "prompt_tps", "decode_tps"}. Exits 1 with a
message on stderr when llama_cpp is not importable.
"""
import json
import statistics
import sys
import time

try:
    import llama_cpp
except ImportError:
    sys.exit("llama-cpp-python is not installed (pip install llama-cpp-python)")

path, threads, repeats, prompt_tokens, decode_tokens = sys.argv[1:6]
threads, repeats = int(threads), int(repeats)
prompt_tokens, decode_tokens = int(prompt_tokens), int(decode_tokens)

t0 = time.perf_counter()
llm = llama_cpp.Llama(model_path=path, n_ctx=8192, n_batch=512, n_threads=threads,
                      n_threads_batch=threads, verbose=False, logits_all=False)
load_ms = (time.perf_counter() - t0) * 1e3

sentence = ("The release pipeline runs continuous integration, a smoke test, a deploy "
            "and a verification gate. ")
prompt = llm.tokenize((sentence * (prompt_tokens // 20)).encode(), add_bos=True, special=True)
short = llm.tokenize(b"Write a long story about a release.", add_bos=True, special=True)

pp, tg = [], []
for _ in range(repeats):
    llm.reset()
    llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
    t = time.perf_counter()
    llm.eval(prompt)
    pp.append(len(prompt) / (time.perf_counter() - t))

    llm.reset()
    llm.eval(short)
    n = 0
    t = time.perf_counter()
    while n < decode_tokens:
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
        n += 1
    tg.append(n / (time.perf_counter() - t))

print(json.dumps({
    "name": f"llama-cpp-python {llama_cpp.__version__}",
    "load_ms": load_ms,
    "prompt_tps": statistics.median(pp),
    "decode_tps": statistics.median(tg),
}))
