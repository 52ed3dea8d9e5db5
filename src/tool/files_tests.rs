use std::os::unix::fs::symlink;

use super::*;

/// A workflow directory with a file, links inside and links leading out of it.
struct Fixture {
    outside: tempfile::TempDir,
    root: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("sub")).unwrap();
    fs::create_dir_all(r.join(".git")).unwrap();
    fs::write(r.join("sub/a.txt"), "alpha").unwrap();
    fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    symlink(outside.path(), r.join("out_dir")).unwrap();
    symlink(outside.path().join("secret.txt"), r.join("out_file")).unwrap();
    symlink(r.join("sub"), r.join("in_dir")).unwrap();
    symlink(r.join("nowhere"), r.join("dangling")).unwrap();
    Fixture { outside, root }
}

#[test]
fn confines_paths_to_the_workflow_directory() {
    let f = fixture();
    let root = f.root.path().canonicalize().unwrap();
    let ok = |rel: &str| Ok::<PathBuf, String>(root.join(rel));
    let refused = |what: &str| Err::<PathBuf, String>(what.to_string());
    let cases = [
        ("sub/a.txt", Access::Read, ok("sub/a.txt")),
        ("./sub/a.txt", Access::Read, ok("sub/a.txt")),
        ("in_dir/a.txt", Access::Read, ok("sub/a.txt")),
        (".", Access::Read, ok("")),
        ("new/deep/f.txt", Access::Write, ok("new/deep/f.txt")),
        ("in_dir/b.txt", Access::Write, ok("sub/b.txt")),
        ("sub/a.txt", Access::Write, ok("sub/a.txt")),
        (
            "../x",
            Access::Read,
            refused(
                "`../x` is refused: `..` may not appear in a path; paths stay inside the workflow's directory",
            ),
        ),
        (
            "sub/../../x",
            Access::Write,
            refused(
                "`sub/../../x` is refused: `..` may not appear in a path; paths stay inside the workflow's directory",
            ),
        ),
        (
            "/etc/passwd",
            Access::Read,
            refused(
                "`/etc/passwd` is refused: absolute paths are not allowed; use a path relative to the workflow's directory",
            ),
        ),
        (
            "out_dir/secret.txt",
            Access::Read,
            refused(
                "`out_dir/secret.txt` is refused: it leads outside the workflow's directory (through a symbolic link)",
            ),
        ),
        (
            "out_file",
            Access::Read,
            refused(
                "`out_file` is refused: it leads outside the workflow's directory (through a symbolic link)",
            ),
        ),
        (
            "out_dir/new.txt",
            Access::Write,
            refused(
                "`out_dir/new.txt` is refused: it leads outside the workflow's directory (through a symbolic link)",
            ),
        ),
        (
            "out_file",
            Access::Write,
            refused(
                "`out_file` is refused: it leads outside the workflow's directory (through a symbolic link)",
            ),
        ),
        (
            "dangling",
            Access::Write,
            refused("`dangling` is a symbolic link whose target does not exist"),
        ),
        (
            "dangling",
            Access::Read,
            refused("`dangling` is a symbolic link whose target does not exist"),
        ),
        (
            "sub/.pe/runs.db",
            Access::Write,
            refused("`sub/.pe/runs.db` is refused: .pe is protected"),
        ),
        (
            "a/b/.git/hooks/pre-commit",
            Access::Write,
            refused("`a/b/.git/hooks/pre-commit` is refused: .git is protected"),
        ),
        (
            "sub/.git",
            Access::Write,
            refused("`sub/.git` is refused: .git is protected"),
        ),
        ("sub/.github/x.yml", Access::Write, ok("sub/.github/x.yml")),
        (
            "missing.txt",
            Access::Read,
            refused("`missing.txt` does not exist"),
        ),
        (
            ".git/config",
            Access::Write,
            refused("`.git/config` is refused: .git is protected"),
        ),
        (
            ".pe/runs.db",
            Access::Write,
            refused("`.pe/runs.db` is refused: .pe is protected"),
        ),
        (
            "",
            Access::Read,
            refused("the path is empty; use `.` for the workflow's directory"),
        ),
    ];
    for (path, access, want) in cases {
        let got = resolve(f.root.path(), path, access).map_err(|e| e.to_string());
        // `root.join("")` ends with a slash; compare as paths.
        let got = got.map(|p| p.components().collect::<PathBuf>());
        let want = want.map(|p| p.components().collect::<PathBuf>());
        assert_eq!(got, want, "{path} ({access:?})");
    }
}

#[test]
fn write_never_follows_a_link_out() {
    let f = fixture();
    let err = write_file(f.root.path(), "out_file", "pwned").unwrap_err();
    assert!(err.to_string().contains("leads outside"), "{err}");
    assert_eq!(
        fs::read_to_string(f.outside.path().join("secret.txt")).unwrap(),
        "secret"
    );
    assert!(write_file(f.root.path(), "out_dir/x.txt", "pwned").is_err());
    assert!(!f.outside.path().join("x.txt").exists());
}

#[test]
fn hard_links_are_refused_for_reads_and_writes() {
    let f = fixture();
    let outside = f.outside.path().join("secret.txt");
    fs::hard_link(&outside, f.root.path().join("linked.txt")).unwrap();
    let want = "`linked.txt` is refused: it has 2 hard links, and the others may be outside the workflow's directory";
    let err = read_file(f.root.path(), "linked.txt", 100).unwrap_err();
    assert_eq!(err.to_string(), want);
    let err = write_file(f.root.path(), "linked.txt", "pwned").unwrap_err();
    assert_eq!(err.to_string(), want);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "secret");
}

#[test]
fn writes_create_parents_and_report_the_size() {
    let f = fixture();
    assert_eq!(
        write_file(f.root.path(), "a/b/c.txt", "héllo").unwrap(),
        "wrote 6 bytes to a/b/c.txt"
    );
    assert_eq!(
        fs::read_to_string(f.root.path().join("a/b/c.txt")).unwrap(),
        "héllo"
    );
    assert_eq!(
        write_file(f.root.path(), "a/b/c.txt", "x").unwrap(),
        "wrote 1 bytes to a/b/c.txt"
    );
    assert_eq!(
        fs::read_to_string(f.root.path().join("a/b/c.txt")).unwrap(),
        "x"
    );
    let err = write_file(f.root.path(), "sub", "x").unwrap_err();
    assert_eq!(err.to_string(), "`sub` is a directory");
}

#[test]
fn reads_are_truncated_on_a_char_boundary() {
    let f = fixture();
    fs::write(f.root.path().join("big.txt"), "é".repeat(1000)).unwrap();
    let out = read_file(f.root.path(), "big.txt", 11).unwrap();
    assert_eq!(
        out.content,
        format!("{}{}", "é".repeat(5), super::super::truncate::marker(1990))
    );
    assert!(out.truncated);
    assert_eq!(
        read_file(f.root.path(), "sub/a.txt", 100).unwrap().content,
        "alpha"
    );
    let err = read_file(f.root.path(), "sub", 100).unwrap_err();
    assert_eq!(err.to_string(), "`sub` is a directory; use list_files");
}

#[test]
fn lists_sorted_with_directories_marked() {
    let f = fixture();
    let out = list_files(f.root.path(), ".", 1000).unwrap();
    assert_eq!(
        out.content,
        ".git/\ndangling\nin_dir/\nout_dir/\nout_file\nsub/"
    );
    assert_eq!(
        list_files(f.root.path(), "sub", 1000).unwrap().content,
        "a.txt"
    );
    fs::create_dir(f.root.path().join("empty")).unwrap();
    assert_eq!(
        list_files(f.root.path(), "empty", 1000).unwrap().content,
        "(empty directory)"
    );
    assert!(list_files(f.root.path(), "out_dir", 1000).is_err());
    let err = list_files(f.root.path(), "sub/a.txt", 1000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`sub/a.txt` is not a directory; use read_file"
    );
}
