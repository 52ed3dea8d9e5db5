//! Models: the [`Model`] trait the engine talks to, and its implementations (`scripted`
//! now; OpenAI-compatible, Anthropic, Ollama and the embedded local model behind the same
//! trait). The engine knows only the trait.
