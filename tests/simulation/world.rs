//! The world a simulated run lives in: a model that plays every role and a tool that does
//! every step's work, both answering from the scenario alone (and, for the replanner, from
//! the journal: the k-th decision is the scenario's k-th, in whichever process asks); an
//! approver; and an in-memory journal that can refuse writes from a given event on, as a
//! store that fails or a process killed right after a commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pe::engine::approval::{Approver, PlanProposal, Review};
use pe::engine::{EventSink, SinkFailed};
use pe::model::{Model, ModelError, ModelRequest, ModelResponse, ToolCall, Usage, estimate_tokens};
use pe::run::event::EventKind;
use pe::run::{Event, RunState};
use pe::spec::Role;
use pe::tool::{ToolContext, ToolError, ToolOutput, ToolRunner};
use serde_json::{Value, json};

use crate::scenario::{Approval, DecisionSpec, Outcome, Scenario};

/// The journal every process of one simulated run appends to.
pub type Journal = Arc<Mutex<Vec<Event>>>;

/// One tool execution, as the world saw it (the ground truth of side effects).
#[derive(Clone, Debug)]
pub struct Execution {
    pub attempt: u32,
    /// Events in the journal when the tool ran.
    pub journal_len: usize,
    pub key: Option<String>,
    pub step: String,
}

pub struct SimModel {
    pub journal: Journal,
    pub scenario: Arc<Scenario>,
}

impl SimModel {
    fn delay(&self, parts: &[&str]) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(Duration::from_millis(self.scenario.latency(parts)))
    }

    fn plan(&self) -> Value {
        let steps: Vec<Value> = self
            .scenario
            .deps
            .iter()
            .enumerate()
            .map(|(i, deps)| {
                json!({
                    "id": format!("s{i}"),
                    "description": format!("Step {i}"),
                    "depends_on": deps.iter().map(|d| format!("s{d}")).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "steps": steps })
    }

    fn decision(&self, reask: bool) -> String {
        let events = self.journal.lock().unwrap().clone();
        let k = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Replanned { .. }))
            .count();
        let spec = self.scenario.decision(k);
        if matches!(spec, DecisionSpec::Garbled(_)) && !reask {
            return "I think we should keep going".into();
        }
        let value = match spec.valid() {
            DecisionSpec::Abort => json!({"decision": "abort", "reason": "the replanner gave up"}),
            DecisionSpec::Continue => json!({"decision": "continue"}),
            DecisionSpec::Finish => json!({"decision": "finish", "reason": "enough"}),
            DecisionSpec::Revise { picks } => {
                let state = RunState::from_events(&events);
                let mut candidates = state.succeeded_ids();
                let mut steps = Vec::new();
                for (j, pick) in picks.iter().enumerate() {
                    let id = format!("r{k}_{j}");
                    let deps: Vec<String> = match pick {
                        0 => vec![],
                        p => candidates
                            .get(p % candidates.len().max(1))
                            .cloned()
                            .into_iter()
                            .collect(),
                    };
                    steps.push(json!({"id": id, "description": format!("Revised {k}.{j}"), "depends_on": deps}));
                    candidates.push(id);
                }
                json!({"decision": "revise", "reason": "try another way", "steps": steps})
            }
            DecisionSpec::Garbled(_) => unreachable!("valid() unwraps"),
        };
        value.to_string()
    }
}

/// `Step s3 attempt 2` → ("s3", 2).
fn step_and_attempt(prompt: &str) -> (String, u32) {
    let mut words = prompt.split_whitespace();
    let _ = words.next();
    let step = words.next().unwrap_or_default().to_string();
    let _ = words.next();
    let attempt = words.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    (step, attempt)
}

#[async_trait::async_trait]
impl Model for SimModel {
    fn reference(&self) -> &str {
        "sim/model"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let role = request.role.unwrap_or(Role::Executor);
        let turns = request.messages.len().to_string();
        let mut response = ModelResponse::default();
        match role {
            Role::Planner => {
                let reask = request.prompt_text().contains("rejected");
                self.delay(&["planner", &turns]).await;
                response.text = if self.scenario.garbled_plan && !reask {
                    json!({"steps": [{"id": "x", "description": "x", "depends_on": ["nowhere"]}]})
                        .to_string()
                } else {
                    self.plan().to_string()
                };
            }
            Role::Executor => {
                let (step, attempt) = step_and_attempt(&request.messages[0].content);
                self.delay(&["executor", &step, &attempt.to_string(), &turns])
                    .await;
                if request.messages.len() == 1 {
                    response.tool_calls = vec![ToolCall {
                        arguments: json!({"step": step, "attempt": attempt}),
                        id: format!("call-{step}-{attempt}"),
                        name: "work".into(),
                    }];
                } else if self.scenario.outcome(&step, attempt) == Outcome::ModelFails {
                    response.text =
                        json!({"status": "failed", "result": "the model could not do it"})
                            .to_string();
                } else {
                    response.text =
                        json!({"status": "succeeded", "result": format!("{step} done")})
                            .to_string();
                }
            }
            Role::Replanner => {
                let reask = request.messages.len() > 1;
                self.delay(&["replanner", &turns]).await;
                response.text = self.decision(reask);
            }
            Role::Synthesizer => {
                self.delay(&["synthesizer"]).await;
                response.text = "the answer".into();
            }
        }
        let cap = request.max_output_tokens.unwrap_or(u64::MAX);
        response.usage = Usage {
            input_tokens: estimate_tokens(&request.prompt_text()),
            output_tokens: self.scenario.output_tokens.min(cap),
            ..Usage::default()
        };
        Ok(response)
    }
}

pub struct SimTool {
    pub executions: Arc<Mutex<Vec<Execution>>>,
    pub journal: Journal,
    pub scenario: Arc<Scenario>,
}

#[async_trait::async_trait]
impl ToolRunner for SimTool {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let step = args["step"].as_str().unwrap_or_default().to_string();
        let attempt = u32::try_from(args["attempt"].as_u64().unwrap_or(0)).unwrap_or(0);
        let journal_len = self.journal.lock().unwrap().len();
        self.executions.lock().unwrap().push(Execution {
            attempt,
            journal_len,
            key: ctx.idempotency_key.clone(),
            step: step.clone(),
        });
        let latency = self
            .scenario
            .latency(&["tool", &step, &attempt.to_string()]);
        tokio::time::sleep(Duration::from_millis(latency)).await;
        match self.scenario.outcome(&step, attempt) {
            Outcome::ToolError => Err(ToolError::failed(format!("{step} broke"))),
            Outcome::Hang => {
                std::future::pending::<()>().await;
                unreachable!("pending never resolves")
            }
            Outcome::Succeed | Outcome::ModelFails => Ok(ToolOutput {
                content: format!("{step} worked"),
                truncated: false,
            }),
        }
    }
}

/// Answers approval questions as the scenario says (in the process that asks).
pub struct SimApprover {
    pub approval: Approval,
}

#[async_trait::async_trait]
impl Approver for SimApprover {
    async fn review(&self, proposal: PlanProposal) -> Review {
        match self.approval {
            Approval::Approve | Approval::NotAsked | Approval::PlanOnly(_) => Review::Approve,
            Approval::Reject => Review::Reject(Some("not this plan".into())),
            Approval::Edit => {
                let mut steps = proposal.editable.clone();
                if steps.len() > 1 {
                    // The last step: nothing in the plan depends on it.
                    steps.pop();
                }
                Review::Edit(steps)
            }
            Approval::Defer(_) => Review::Defer,
        }
    }
}

/// `pe resume --reject`.
pub struct Rejector;

#[async_trait::async_trait]
impl Approver for Rejector {
    async fn review(&self, _: PlanProposal) -> Review {
        Review::Reject(Some("rejected on resume".into()))
    }
}

/// The run store of one process: appends to the shared journal until it is told to die
/// (or reaches the event it must refuse); from then on it refuses everything.
pub struct SimSink {
    pub dead: AtomicBool,
    pub fail_at: Option<u64>,
    pub journal: Journal,
}

impl EventSink for SimSink {
    fn record(&self, event: &Event) -> Result<(), SinkFailed> {
        if self.dead.load(Ordering::SeqCst) || self.fail_at.is_some_and(|n| event.seq >= n) {
            self.dead.store(true, Ordering::SeqCst);
            return Err(SinkFailed {
                reason: format!(
                    "cannot write event {}: disk I/O error (simulated)",
                    event.seq
                ),
            });
        }
        self.journal.lock().unwrap().push(event.clone());
        Ok(())
    }
}
