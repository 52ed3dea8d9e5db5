//! A real OpenAI-compatible server for the tests: llama-cpp-python's
//! `python -m llama_cpp.server` (installed by `scripts/llama-server.sh`) on 127.0.0.1 with
//! the embedded model's GGUF, and a recording proxy in front of it that keeps every
//! exchange (request, status, answer) so a test can check the protocol from the outside.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The llama-cpp-python version `scripts/llama-server.sh` installs.
pub const VERSION: &str = "0.3.36";

/// Set by `.ci/run`: a missing server fails the test instead of skipping it.
pub const REQUIRED_ENV: &str = "PE_REAL_SERVER_REQUIRED";

/// The Python with `llama_cpp.server` installed: `PE_LLAMA_SERVER_PYTHON`, else the
/// script's cache under `~/.cache/pe/servers`.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PE_LLAMA_SERVER_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("PE_SERVER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| Path::new(&c).join("pe/servers")))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/pe/servers")))?;
    let prefix = format!("llama-cpp-python-{VERSION}-py");
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .find(|dir| dir.join(".installed").is_file())
        .map(|dir| dir.join("bin/python"))
}

/// The server and model, or `None` after printing why the test is skipped; panics instead
/// when [`REQUIRED_ENV`] is set (CI never skips).
pub fn prerequisites(test: &str) -> Option<(PathBuf, PathBuf)> {
    let model = pe::models_cache::models_dir().join("smollm2-135m.gguf");
    let problem = match python() {
        None => format!(
            "llama-cpp-python {VERSION} is not installed; run `bash scripts/llama-server.sh`"
        ),
        Some(_) if !model.is_file() => format!(
            "{} is absent; run `pe model pull smollm2-135m`",
            model.display()
        ),
        Some(python) => return Some((python, model)),
    };
    if std::env::var_os(REQUIRED_ENV).is_some() {
        panic!("{test}: {problem} ({REQUIRED_ENV} is set, so this test may not be skipped)");
    }
    eprintln!("SKIPPED {test}: {problem}");
    None
}

/// A running server; stopped (its whole process group) when dropped.
pub struct Server {
    child: Child,
    pub log: PathBuf,
    pub url: String,
}

impl Server {
    /// Starts the server on a free port with `extra` arguments and waits until it answers
    /// (at most two minutes).
    pub async fn start(python: &Path, model: &Path, log_dir: &Path, extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = log_dir.join(format!("llama-server-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(python);
            command
                .args(["-m", "llama_cpp.server", "--model"])
                .arg(model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--n_ctx", "4096", "--verbose", "false"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0);
            // SAFETY: prctl only sets a flag of the child: it is killed when the test
            // process dies without running `Drop` (a killed `cargo test`).
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            command.spawn().unwrap()
        };
        let server = Server {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = client
                .get(format!("{}/v1/models", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start; its log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = libc::pid_t::try_from(self.child.id()).unwrap_or(0);
        if pgid > 0 {
            // SAFETY: signals the process group this test started. SIGKILL: uvicorn
            // answers SIGTERM by finishing the generation in progress first.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// One request through the proxy and what the server answered.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Whether the answer reached the client: false when the client gave up first (its
    /// timeout), though the server went on and answered.
    pub delivered: bool,
    pub path: String,
    pub request: Value,
    pub response: Value,
    pub status: u16,
}

/// A recording HTTP/1.1 proxy on 127.0.0.1 in front of `upstream` (requests with a
/// `Content-Length` body; answers are passed on whole). A JSON request without a `seed` is
/// forwarded with [`SEED`] added: the server samples (temperature 0.2 by default) from a
/// random seed otherwise, and whether a 135M model calls a tool in a given run would be
/// luck. What pe sent is recorded as it was sent.
pub struct Proxy {
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    task: tokio::task::JoinHandle<()>,
    pub url: String,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&exchanges);
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(900))
                .build()
                .unwrap();
            while let Ok((socket, _)) = listener.accept().await {
                let (client, upstream, log) = (client.clone(), upstream.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    let _ = relay(socket, &client, &upstream, &log).await;
                });
            }
        });
        Proxy {
            exchanges,
            task,
            url,
        }
    }

    /// Everything recorded so far, and a fresh start.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sampling seed the proxy gives requests that carry none.
pub const SEED: u64 = 7;

fn seeded(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) if !map.contains_key("seed") => {
            map.insert("seed".into(), Value::from(SEED));
            serde_json::to_vec(&map).unwrap_or_else(|_| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

/// Serves one connection: request after request (keep-alive) until the client closes it.
async fn relay(
    socket: tokio::net::TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    log: &Mutex<Vec<Exchange>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("GET").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            if header == "\r\n" || header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let url = format!("{upstream}{path}");
        let answer = async {
            let r = client
                .request(method, url)
                .header("content-type", "application/json")
                .body(seeded(&body))
                .send()
                .await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.bytes().await?.to_vec()))
        };
        tokio::pin!(answer);
        // Watch the client while the server works: it closes the connection when it gives up.
        let mut gone = false;
        let mut watching = true;
        let answer = loop {
            tokio::select! {
                a = &mut answer => break a,
                read = reader.fill_buf(), if watching => {
                    watching = false;
                    gone = read.map_or(true, |b| b.is_empty());
                }
            }
        };
        let (status, bytes) =
            answer.unwrap_or_else(|e| (599, format!("{{\"error\": \"proxy: {e}\"}}").into_bytes()));
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            bytes.len()
        );
        let written = if gone {
            false
        } else {
            write.write_all(head.as_bytes()).await.is_ok()
                && write.write_all(&bytes).await.is_ok()
                && write.flush().await.is_ok()
        };
        log.lock().unwrap().push(Exchange {
            delivered: written,
            path,
            request: serde_json::from_slice(&body).unwrap_or(Value::Null),
            response: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            status,
        });
        if !written {
            return Ok(());
        }
    }
}
