//! Ollama, through its OpenAI-compatible `/v1` endpoint (the OpenAI client is reused; no
//! key). The host comes from the provider's `base_url`, else `OLLAMA_HOST`, else
//! `http://127.0.0.1:11434`, written the way Ollama's own CLI accepts it: `host:port`
//! without a scheme is fine, and a host without a port gets 11434.

/// Where Ollama listens when nothing says otherwise.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";

/// Ollama's default port, added to a host written without scheme and port.
const DEFAULT_PORT: u16 = 11434;

/// The `/v1` base URL for an Ollama host as users write it.
pub fn base_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    let with_scheme = if host.contains("://") {
        host.to_string()
    } else {
        let authority = host.split('/').next().unwrap_or(host);
        // `[::1]:11434`, `localhost:11434` have a port; `localhost`, `[::1]` do not.
        let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        });
        if has_port {
            format!("http://{host}")
        } else {
            let (authority, path) = host.split_at(authority.len());
            format!("http://{authority}:{DEFAULT_PORT}{path}")
        }
    };
    if with_scheme.ends_with("/v1") {
        with_scheme
    } else {
        format!("{with_scheme}/v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_accepted_the_way_ollama_accepts_them() {
        let cases = [
            ("", "http://127.0.0.1:11434/v1"),
            ("127.0.0.1:9999", "http://127.0.0.1:9999/v1"),
            ("gpu-box", "http://gpu-box:11434/v1"),
            ("[::1]", "http://[::1]:11434/v1"),
            ("[::1]:8000", "http://[::1]:8000/v1"),
            ("http://gpu-box:11434/", "http://gpu-box:11434/v1"),
            (
                "https://ollama.example.com",
                "https://ollama.example.com/v1",
            ),
            ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ];
        for (host, want) in cases {
            assert_eq!(base_url(host), want, "{host}");
        }
    }
}
