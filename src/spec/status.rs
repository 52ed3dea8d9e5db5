//! Run and step statuses (SPEC §2): the names users, tests and the journal rely on.

use serde::{Deserialize, Serialize};

/// Terminal statuses of a run (SPEC §2).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Aborted,
    AwaitingApproval,
    BudgetExhausted,
    Completed,
    Failed,
    Rejected,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Aborted => "aborted",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::BudgetExhausted => "budget_exhausted",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Rejected => "rejected",
        }
    }

    /// Process exit code (SPEC §4).
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::Completed => 0,
            RunStatus::Aborted | RunStatus::Failed => 1,
            RunStatus::BudgetExhausted => 4,
            RunStatus::AwaitingApproval | RunStatus::Rejected => 5,
        }
    }
}

/// Step states (SPEC §2).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Failed,
    Pending,
    Running,
    Skipped,
    Succeeded,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Failed => "failed",
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Skipped => "skipped",
            StepStatus::Succeeded => "succeeded",
        }
    }
}
