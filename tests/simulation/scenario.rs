//! A random run: the plan (a DAG of 1–12 steps), the workflow's policies and budgets, what
//! each attempt of each step does, what the replanner decides, how long everything takes,
//! how plans are approved, and where the process is killed. Everything that happens during
//! a run is a pure function of the scenario, so a resumed process — which has lost all
//! memory — sees the same world, and a failing case replays exactly.

use proptest::prelude::*;

/// What one attempt of a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tool works and the model reports success.
    Succeed,
    /// The tool works, then the model reports the step failed.
    ModelFails,
    /// The tool fails (`on_error: fail_step`).
    ToolError,
    /// The tool never answers: the step timeout cuts the attempt.
    Hang,
}

impl Outcome {
    pub fn fails(self) -> bool {
        self != Outcome::Succeed
    }
}

/// What the replanner answers (the k-th call gets `decisions[k % len]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecisionSpec {
    Abort,
    Continue,
    Finish,
    /// New steps replacing the ones that have not run: `picks[j]` chooses step j's
    /// dependency among the succeeded steps and the new steps before it (none when 0).
    Revise {
        picks: Vec<usize>,
    },
    /// An invalid reply first (re-asked), then this.
    Garbled(Box<DecisionSpec>),
}

impl DecisionSpec {
    pub fn valid(&self) -> &DecisionSpec {
        match self {
            DecisionSpec::Garbled(d) => d.valid(),
            d => d,
        }
    }
}

/// `on_step_failure.then`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    Abort,
    Replan,
    Skip,
}

/// `replan.when`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    AfterEachStep,
    AfterPlan,
    Never,
    OnFailure,
    OnFailureAndAfterPlan,
}

impl When {
    pub fn yaml(self) -> &'static str {
        match self {
            When::AfterEachStep => "after_each_step",
            When::AfterPlan => "after_plan",
            When::Never => "never",
            When::OnFailure => "on_failure",
            When::OnFailureAndAfterPlan => "[on_failure, after_plan]",
        }
    }

    pub fn replanner_on(self) -> bool {
        self != When::Never
    }

    pub fn each_step(self) -> bool {
        self == When::AfterEachStep
    }

    pub fn after_plan(self) -> bool {
        matches!(self, When::AfterPlan | When::OnFailureAndAfterPlan)
    }
}

/// How plans that need approval are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// `plan.approve: false`: nobody is asked.
    NotAsked,
    Approve,
    Reject,
    /// Approve the plan without its last step.
    Edit,
    /// Nobody can answer: the run waits; then `pe resume --approve` (true) or `--reject`.
    Defer(bool),
    /// `pe exec --plan-only`, then `pe resume --approve` (true) or `--reject`
    /// (`plan.approve: false`).
    PlanOnly(bool),
}

impl Approval {
    /// Whether the workflow says `plan.approve: true`.
    pub fn workflow_asks(self) -> bool {
        !matches!(self, Approval::NotAsked | Approval::PlanOnly(_))
    }
}

/// Where a process dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// The store refuses the event with this sequence number and every later one (a write
    /// failure, or a `kill -9` right after the previous event was committed).
    AtEvent(u64),
    /// The process vanishes this long (virtual time) after it started: whatever was in
    /// flight is lost.
    AtTime(u64),
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub approval: Approval,
    pub concurrency: u32,
    pub decisions: Vec<DecisionSpec>,
    /// Steps of the first plan (`s0`, `s1`, …) with the indexes of their dependencies.
    pub deps: Vec<Vec<usize>>,
    /// The plan is fixed in the workflow (else the planner writes it).
    pub fixed: bool,
    /// The planner's first plan is invalid (re-asked).
    pub garbled_plan: bool,
    pub kills: Vec<Kill>,
    /// Virtual milliseconds, picked per model turn and tool call.
    pub latencies: Vec<u64>,
    pub max_llm_calls: Option<u64>,
    pub max_replans: u32,
    pub max_tokens: Option<u64>,
    /// Output tokens each model answer reports (cut at the call's cap).
    pub output_tokens: u64,
    /// Outcomes, picked per (step, attempt).
    pub outcomes: Vec<Outcome>,
    pub parallel: bool,
    pub retries: u32,
    pub then: Then,
    pub when: When,
}

/// The step timeout (virtual time): longer than any latency, so only `Hang` reaches it.
pub const STEP_TIMEOUT_MS: u64 = 5_000;
/// `max_tokens` of every role: small, so token budgets bite.
pub const ROLE_MAX_TOKENS: u64 = 60;

/// FNV-1a: a stable hash to pick from the tables (the same in every process).
pub fn pick(parts: &[&str], n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % n.max(1) as u64) as usize
}

impl Scenario {
    pub fn step_ids(&self) -> Vec<String> {
        (0..self.deps.len()).map(|i| format!("s{i}")).collect()
    }

    pub fn outcome(&self, step: &str, attempt: u32) -> Outcome {
        self.outcomes[pick(&[step, &attempt.to_string()], self.outcomes.len())]
    }

    pub fn latency(&self, parts: &[&str]) -> u64 {
        self.latencies[pick(parts, self.latencies.len())]
    }

    pub fn decision(&self, k: usize) -> DecisionSpec {
        if self.decisions.is_empty() {
            DecisionSpec::Continue
        } else {
            self.decisions[k % self.decisions.len()].clone()
        }
    }

    /// The workflow file this scenario runs.
    pub fn workflow_yaml(&self) -> String {
        let then = match self.then {
            Then::Abort => "abort",
            Then::Replan => "replan",
            Then::Skip => "skip",
        };
        let mut budget = Vec::new();
        if let Some(n) = self.max_llm_calls {
            budget.push(format!("max_llm_calls: {n}"));
        }
        if let Some(n) = self.max_tokens {
            budget.push(format!("max_tokens: {n}"));
        }
        let steps = if self.fixed {
            format!("\n  steps:\n{}", self.plan_yaml("    "))
        } else {
            String::new()
        };
        format!(
            r#"version: 1
name: sim
task: Simulate a run.
models:
  default: {{model: sim/model, max_tokens: {ROLE_MAX_TOKENS}}}
providers:
  sim: {{kind: scripted, path: unused.yaml}}
tools:
  work:
    description: Do one step's work.
    parameters:
      type: object
      properties: {{step: {{type: string}}, attempt: {{type: integer}}}}
      required: [step, attempt]
    mock: replaced by the simulation
    on_error: fail_step
prompts:
  executor: 'Step {{{{ step.id }}}} attempt {{{{ step.attempt }}}}'
plan:
  max_steps: 40
  max_attempts: 2
  parallel: {parallel}
  max_concurrency: {concurrency}
  approve: {approve}{steps}
execute:
  max_iterations: 3
  step_timeout: {STEP_TIMEOUT_MS}ms
replan:
  when: {when}
  on_step_failure: {{retries: {retries}, then: {then}}}
  max_replans: {max_replans}
budget: {{{budget}}}
"#,
            parallel = self.parallel,
            concurrency = self.concurrency,
            approve = self.approval.workflow_asks(),
            when = self.when.yaml(),
            retries = self.retries,
            max_replans = self.max_replans,
            budget = budget.join(", "),
        )
    }

    /// The first plan as YAML list items.
    pub fn plan_yaml(&self, indent: &str) -> String {
        self.deps
            .iter()
            .enumerate()
            .map(|(i, deps)| {
                let deps: Vec<String> = deps.iter().map(|d| format!("s{d}")).collect();
                format!(
                    "{indent}- {{id: s{i}, description: Step {i}, depends_on: [{}]}}\n",
                    deps.join(", ")
                )
            })
            .collect()
    }
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        6 => Just(Outcome::Succeed),
        2 => Just(Outcome::ModelFails),
        2 => Just(Outcome::ToolError),
        1 => Just(Outcome::Hang),
    ]
}

fn decision() -> impl Strategy<Value = DecisionSpec> {
    let plain = prop_oneof![
        3 => Just(DecisionSpec::Continue),
        1 => Just(DecisionSpec::Finish),
        1 => Just(DecisionSpec::Abort),
        3 => prop::collection::vec(0usize..6, 1..4).prop_map(|picks| DecisionSpec::Revise { picks }),
    ];
    (plain, prop::bool::weighted(0.1)).prop_map(|(d, garbled)| {
        if garbled {
            DecisionSpec::Garbled(Box::new(d))
        } else {
            d
        }
    })
}

fn deps() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..=12).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                prop::collection::vec(0..i.max(1), 0..=i.min(3)).prop_map(move |mut d| {
                    if i == 0 {
                        d.clear();
                    }
                    d.sort_unstable();
                    d.dedup();
                    d
                })
            })
            .collect::<Vec<_>>()
    })
}

fn approval() -> impl Strategy<Value = Approval> {
    prop_oneof![
        10 => Just(Approval::NotAsked),
        2 => Just(Approval::Approve),
        1 => Just(Approval::Reject),
        1 => Just(Approval::Edit),
        1 => any::<bool>().prop_map(Approval::Defer),
        1 => any::<bool>().prop_map(Approval::PlanOnly),
    ]
}

fn kill() -> impl Strategy<Value = Kill> {
    prop_oneof![
        (2u64..80).prop_map(Kill::AtEvent),
        (0u64..4_000).prop_map(Kill::AtTime),
    ]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        4 => Just(When::OnFailure),
        1 => Just(When::AfterEachStep),
        1 => Just(When::AfterPlan),
        1 => Just(When::OnFailureAndAfterPlan),
        1 => Just(When::Never),
    ]
}

fn then() -> impl Strategy<Value = Then> {
    prop_oneof![Just(Then::Replan), Just(Then::Skip), Just(Then::Abort)]
}

impl Arbitrary for Scenario {
    type Parameters = ();
    type Strategy = BoxedStrategy<Scenario>;

    fn arbitrary_with(_: ()) -> Self::Strategy {
        let shape = (
            deps(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            1u32..=4,
            approval(),
        );
        let policy = (0u32..=2, then(), when(), 0u32..=3);
        let world = (
            prop::collection::vec(outcome(), 1..12),
            prop::collection::vec(decision(), 0..4),
            prop::collection::vec(prop_oneof![Just(0u64), 1u64..300], 1..8),
            prop::collection::vec(kill(), 0..=2),
        );
        let budget = (
            prop::option::weighted(0.3, 3u64..60),
            prop::option::weighted(0.3, 300u64..4_000),
            1u64..=ROLE_MAX_TOKENS,
        );
        (shape, policy, world, budget)
            .prop_map(
                |(
                    (deps, fixed, garbled_plan, parallel, concurrency, approval),
                    (retries, then, when, max_replans),
                    (outcomes, decisions, latencies, kills),
                    (max_llm_calls, max_tokens, output_tokens),
                )| Scenario {
                    approval,
                    concurrency,
                    decisions,
                    deps,
                    fixed,
                    garbled_plan: garbled_plan && !fixed,
                    kills,
                    latencies,
                    max_llm_calls,
                    max_replans,
                    max_tokens,
                    output_tokens,
                    outcomes,
                    parallel,
                    retries,
                    then,
                    when,
                },
            )
            .boxed()
    }
}
