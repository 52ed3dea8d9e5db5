//! The planner: asks for a structured plan, validates it, and re-asks with the problems
//! (at most `plan.max_attempts` calls). A plan that never validates fails the run; it is
//! never turned into a one-step plan. A fixed `plan.steps` skips the planner.

use serde_json::json;

use crate::engine::Stop;
use crate::engine::call::{CallError, call_model};
use crate::engine::context::Ctx;
use crate::engine::direct;
use crate::engine::replan::Problem;
use crate::engine::reply::json_object;
use crate::engine::validate::{Rules, parse_steps, plan_schema_for, validate};
use crate::model::{Message, ModelRequest, ResponseFormat};
use crate::run::event::EndCause;
use crate::spec::{Role, StepSpec};
use crate::tool::carried;

/// A plan ready to run.
pub struct Plan {
    /// Planner calls it took (0 for a fixed plan).
    pub attempts: u32,
    /// `fixed` or `planner`.
    pub source: &'static str,
    pub steps: Vec<StepSpec>,
}

/// The fixed plan (descriptions rendered with the inputs) or the planner's.
pub async fn make_plan(ctx: &Ctx) -> Result<Plan, Stop> {
    if let Some(fixed) = &ctx.workflow.file.plan.steps {
        return fixed_plan(ctx, fixed);
    }
    let spec = &ctx.workflow.file.plan;
    let tools: Vec<&str> = ctx.tool_defs.iter().map(|t| t.name.as_str()).collect();
    let check = ctx.args_check();
    let rules = Rules {
        args: Some(&check),
        kept: &[],
        max_steps: spec.max_steps,
        step_args: spec.step_args,
        tools: &tools,
    };
    let schema = plan_schema_for(&ctx.plan_tools(), spec.max_steps);
    let template_shows_feedback = ctx
        .workflow
        .file
        .prompts
        .planner
        .as_deref()
        .is_none_or(|t| crate::template::variables(t).is_ok_and(|v| v.contains("feedback")));
    let attempts = spec.max_attempts.max(1);
    let mut feedback = String::new();
    let mut problem = Problem::None;
    for attempt in 1..=attempts {
        let vars = ctx.vars(minijinja::context! {
            feedback => feedback.as_str(),
            max_steps => spec.max_steps,
            step_args => crate::engine::context::template_value(spec.step_args),
        });
        let prompt = ctx.prompts.render(Role::Planner, &vars).map_err(|e| {
            Stop::failed(
                EndCause::Fatal,
                format!("cannot render the planner prompt: {e}"),
            )
        })?;
        let mut messages = vec![Message::user(prompt)];
        if !feedback.is_empty() && !template_shows_feedback {
            messages.push(Message::user(format!(
                "Your previous plan was rejected: {feedback}\nReply with a corrected plan."
            )));
        }
        let mut request = ModelRequest {
            messages,
            response_format: ResponseFormat::Json {
                name: "plan".into(),
                schema: schema.clone(),
            },
            ..ModelRequest::default()
        };
        let reply = match call_model(ctx, Role::Planner, None, &mut request).await {
            Ok(r) if r.truncated => {
                Err("the reply was cut off at the output token limit".to_string())
            }
            Ok(r) => json_object(&r.text)
                .and_then(|v| parse_steps(v.get("steps")))
                .and_then(|mut steps| {
                    direct::link(&mut steps);
                    validate(&steps, &rules).map(|()| steps)
                }),
            Err(CallError::Model(e)) if !e.is_fatal() => {
                // The model could not be asked: no feedback to give, ask again.
                problem = Problem::Model(e.to_string());
                continue;
            }
            Err(e) => return Err(Stop::from_call(e)),
        };
        match reply {
            Ok(steps) => {
                return Ok(Plan {
                    attempts: attempt,
                    source: "planner",
                    steps,
                });
            }
            Err(mut p) => {
                // Fed back in the next prompt and kept in the run's end: bounded.
                carried::cut(&mut p, carried::MAX_FEEDBACK_BYTES);
                feedback = p.clone();
                problem = Problem::Reply(p);
            }
        }
    }
    Err(match problem {
        Problem::Model(e) => Stop::failed(
            EndCause::ModelFailed,
            format!("the planner's model failed: {e}"),
        ),
        Problem::Reply(p) => Stop::failed(
            EndCause::PlanInvalid,
            format!(
                "the planner gave no valid plan in {attempts} attempt{}; last problem: {p}",
                if attempts == 1 { "" } else { "s" },
            ),
        ),
        Problem::None => Stop::failed(EndCause::PlanInvalid, "the planner was not asked".into()),
    })
}

fn fixed_plan(ctx: &Ctx, fixed: &[StepSpec]) -> Result<Plan, Stop> {
    let vars = json!({"inputs": ctx.tool_ctx.inputs});
    let render = |text: &str| {
        crate::template::render(text, &vars).map_err(|e| {
            Stop::failed(
                EndCause::Fatal,
                format!("cannot render the fixed plan: {e}"),
            )
        })
    };
    let steps = fixed
        .iter()
        .map(|s| {
            Ok(StepSpec {
                description: render(&s.description)?,
                expected: s.expected.as_deref().map(render).transpose()?,
                ..s.clone()
            })
        })
        .collect::<Result<Vec<_>, Stop>>()?;
    let mut steps = steps;
    direct::link(&mut steps);
    Ok(Plan {
        attempts: 0,
        source: "fixed",
        steps,
    })
}
