//! Shared helpers of the `pe exec` tests: a workflow and its scripted replies in a temporary
//! directory, run through the binary with the run store inside that directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

pub struct Case {
    pub dir: tempfile::TempDir,
}

/// What one `pe exec --json` returned.
pub struct Run {
    pub code: i32,
    pub doc: Value,
    pub stderr: String,
}

impl Run {
    pub fn status(&self) -> &str {
        self.doc["status"].as_str().unwrap_or("")
    }

    pub fn reason(&self) -> &str {
        self.doc["reason"].as_str().unwrap_or("")
    }

    /// `(id, status)` of every step, in plan order.
    pub fn steps(&self) -> Vec<(String, String)> {
        self.doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn step(&self, id: &str) -> &Value {
        self.doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
    }
}

/// `[("a", "succeeded"), ...]` as owned pairs, for comparing with [`Run::steps`].
pub fn steps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

impl Case {
    /// A workflow (`workflow.yaml`, whose models default to `scripted/replies.yaml`) and
    /// its replies.
    pub fn new(workflow: &str, replies: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("workflow.yaml"), workflow).unwrap();
        std::fs::write(dir.path().join("replies.yaml"), replies).unwrap();
        Case { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join(".pe")
    }

    pub fn pe(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("pe").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("PE_HOME")
            .env("NO_COLOR", "1");
        cmd
    }

    /// `pe exec workflow.yaml --json ARGS...`.
    pub fn exec(&self, args: &[&str]) -> Run {
        let out = self
            .pe()
            .arg("exec")
            .arg("workflow.yaml")
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        parse(out)
    }

    /// `pe exec workflow.yaml ARGS...` without `--json`.
    pub fn exec_raw(&self, args: &[&str]) -> Output {
        self.pe()
            .arg("exec")
            .arg("workflow.yaml")
            .args(args)
            .output()
            .unwrap()
    }

    /// The latest run's journal (`pe show latest --json`), one value per event.
    pub fn events(&self) -> Vec<Value> {
        let out = self
            .pe()
            .args(["show", "latest", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Events of one type from the latest run.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// How many model calls each role made in the latest run, as `role:n` strings in order.
    pub fn llm_roles(&self) -> Vec<String> {
        self.events_of("llm_call")
            .iter()
            .map(|e| e["role"].as_str().unwrap().to_string())
            .collect()
    }
}

fn parse(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        doc,
        stderr,
    }
}

/// A path in the source tree's fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exec")
        .join(name)
}
