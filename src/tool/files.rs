//! The file builtins (`read_file`, `write_file`, `list_files`) and the confinement they share:
//! a model-chosen path may only reach inside the workflow's directory.
//!
//! A path is refused when it is absolute or has a `..` component, and after resolution when
//! its canonical form (symbolic links followed) is not under the canonical workflow
//! directory, so a link inside the directory cannot lead out of it. Writes also refuse any
//! `.git` or `.pe` directory at any depth (history and run stores are not the model's to
//! edit). Files are opened with `O_NOFOLLOW`, so a link created after the check is not
//! followed, and a regular file with more than one hard link is refused: its other names
//! may be outside the directory, and nothing tells where they are.
//!
//! These functions block; the builtin runner calls them on tokio's blocking pool.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::ToolError;
use super::ToolOutput;
use super::truncate::{Capture, truncate_text};

/// Directories the model may not write into, wherever they are (a run store can live in a
/// subdirectory, and so can a nested repository).
const PROTECTED: [&str; 2] = [".git", ".pe"];

/// What a resolved path is for: a write may name a file (and directories) that do not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Resolves `requested` inside `root`, refusing anything that would leave it.
pub fn resolve(root: &Path, requested: &str, access: Access) -> Result<PathBuf, ToolError> {
    if requested.is_empty() {
        return Err(ToolError::failed(
            "the path is empty; use `.` for the workflow's directory",
        ));
    }
    let relative = Path::new(requested);
    for component in relative.components() {
        match component {
            Component::CurDir | Component::Normal(_) => {}
            Component::ParentDir => {
                return Err(ToolError::failed(format!(
                    "`{requested}` is refused: `..` may not appear in a path; paths stay inside the workflow's directory"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ToolError::failed(format!(
                    "`{requested}` is refused: absolute paths are not allowed; use a path relative to the workflow's directory"
                )));
            }
        }
    }
    let root = root.canonicalize().map_err(|e| {
        ToolError::failed(format!(
            "the workflow's directory {} is not usable: {e}",
            root.display()
        ))
    })?;
    let joined = root.join(relative);
    let resolved = match access {
        Access::Read => joined
            .canonicalize()
            .map_err(|e| resolve_error(&joined, requested, &e))?,
        Access::Write => resolve_for_write(&root, &joined, requested)?,
    };
    let Ok(inside) = resolved.strip_prefix(&root) else {
        return Err(ToolError::failed(format!(
            "`{requested}` is refused: it leads outside the workflow's directory (through a symbolic link)"
        )));
    };
    if access == Access::Write
        && let Some(protected) = inside.components().find_map(|c| match c {
            Component::Normal(name) => PROTECTED.iter().find(|p| name == **p),
            _ => None,
        })
    {
        return Err(ToolError::failed(format!(
            "`{requested}` is refused: {protected} is protected"
        )));
    }
    Ok(resolved)
}

/// The canonical path a write would create or replace. The nearest existing ancestor is
/// canonicalized (it may be a link); what does not exist yet cannot be a link.
fn resolve_for_write(root: &Path, joined: &Path, requested: &str) -> Result<PathBuf, ToolError> {
    if fs::symlink_metadata(joined).is_ok() {
        // It exists (maybe as a link): canonicalize it; a dangling link is refused since it
        // could point anywhere once created.
        return joined
            .canonicalize()
            .map_err(|e| resolve_error(joined, requested, &e));
    }
    // `root` exists, so some ancestor does.
    let existing = joined
        .ancestors()
        .find(|a| fs::symlink_metadata(a).is_ok())
        .unwrap_or(root);
    let missing = joined.strip_prefix(existing).unwrap_or(Path::new(""));
    let existing = existing
        .canonicalize()
        .map_err(|e| io_error(requested, &e))?;
    Ok(existing.join(missing))
}

/// A failed resolution; "does not exist" is only said of a path that does not: a dangling
/// link exists, it only leads nowhere.
fn resolve_error(joined: &Path, requested: &str, error: &std::io::Error) -> ToolError {
    let dangling = error.kind() == ErrorKind::NotFound
        && fs::symlink_metadata(joined).is_ok_and(|m| m.file_type().is_symlink());
    if dangling {
        return ToolError::failed(format!(
            "`{requested}` is a symbolic link whose target does not exist"
        ));
    }
    io_error(requested, error)
}

/// Refuses a regular file with several hard links: the other names may be outside the
/// workflow's directory, so reading or writing it could reach outside.
fn refuse_hard_links(file: &fs::File, requested: &str) -> Result<(), ToolError> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|e| io_error(requested, &e))?;
    if meta.is_file() && meta.nlink() > 1 {
        return Err(ToolError::failed(format!(
            "`{requested}` is refused: it has {} hard links, and the others may be outside the workflow's directory",
            meta.nlink()
        )));
    }
    Ok(())
}

fn io_error(requested: &str, error: &std::io::Error) -> ToolError {
    ToolError::failed(match error.kind() {
        ErrorKind::NotFound => format!("`{requested}` does not exist"),
        ErrorKind::PermissionDenied => format!("`{requested}`: permission denied"),
        _ => format!("`{requested}`: {error}"),
    })
}

/// The start of a file, at most `limit` bytes (cut on a character boundary, with the marker).
pub fn read_file(root: &Path, requested: &str, limit: usize) -> Result<ToolOutput, ToolError> {
    let path = resolve(root, requested, Access::Read)?;
    let meta = fs::metadata(&path).map_err(|e| io_error(requested, &e))?;
    if meta.is_dir() {
        return Err(ToolError::failed(format!(
            "`{requested}` is a directory; use list_files"
        )));
    }
    if !meta.is_file() {
        return Err(ToolError::failed(format!(
            "`{requested}` is not a regular file"
        )));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| io_error(requested, &e))?;
    refuse_hard_links(&file, requested)?;
    let mut head = Vec::new();
    // Read only what is kept (one byte more than the limit detects growth since `metadata`).
    file.take(limit as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|e| io_error(requested, &e))?;
    let mut capture = Capture::new(limit);
    capture.push(&head);
    capture.skip(meta.len().saturating_sub(head.len() as u64));
    Ok(capture.into_output())
}

/// Writes `content`, creating parent directories inside the root.
pub fn write_file(root: &Path, requested: &str, content: &str) -> Result<String, ToolError> {
    let path = resolve(root, requested, Access::Write)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error(requested, &e))?;
    }
    // Opened without truncating: a file with other hard links must be refused before a
    // byte of it changes.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.kind() {
            ErrorKind::IsADirectory => ToolError::failed(format!("`{requested}` is a directory")),
            _ => io_error(requested, &e),
        })?;
    refuse_hard_links(&file, requested)?;
    file.set_len(0).map_err(|e| io_error(requested, &e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| io_error(requested, &e))?;
    Ok(format!("wrote {} bytes to {requested}", content.len()))
}

/// The entries of a directory, one per line, sorted, directories marked with a trailing `/`.
pub fn list_files(root: &Path, requested: &str, limit: usize) -> Result<ToolOutput, ToolError> {
    let path = resolve(root, requested, Access::Read)?;
    let entries = fs::read_dir(&path).map_err(|e| match e.kind() {
        ErrorKind::NotADirectory => {
            ToolError::failed(format!("`{requested}` is not a directory; use read_file"))
        }
        _ => io_error(requested, &e),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let mut name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                name.push('/');
            }
            name
        })
        .collect();
    if names.is_empty() {
        return Ok(ToolOutput {
            content: "(empty directory)".to_string(),
            truncated: false,
        });
    }
    names.sort();
    Ok(truncate_text(&names.join("\n"), limit))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
