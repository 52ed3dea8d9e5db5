//! The synthesizer: turns the step results into the run's output. With `output.schema` the
//! answer must be JSON valid against it; an invalid answer is sent back with every problem
//! for repair, at most `output.max_repairs` times, and the run fails if it never validates.

use serde_json::{Value, json};

use crate::engine::Stop;
use crate::engine::call::{CallError, call_model};
use crate::engine::context::Ctx;
use crate::engine::replan::Problem;
use crate::engine::replan::results;
use crate::engine::reply::json_value;
use crate::model::{Message, ModelRequest, ResponseFormat};
use crate::run::event::EndCause;
use crate::spec::Role;
use crate::tool::carried;

/// Asks for the final answer, or renders it from `output.template`.
pub async fn synthesize(ctx: &Ctx) -> Result<Value, Stop> {
    let output = &ctx.workflow.file.output;
    if let Some(template) = &output.template {
        return rendered(ctx, template);
    }
    let schema_text = output
        .schema
        .as_ref()
        .map(|s| serde_json::to_string_pretty(s).unwrap_or_default());
    let results = ctx.recorder.with_state(results);
    let vars = ctx.vars(crate::engine::context::template_value(
        json!({"output_schema": schema_text, "results": results}),
    ));
    let prompt = ctx.prompts.render(Role::Synthesizer, &vars).map_err(|e| {
        Stop::failed(
            EndCause::Fatal,
            format!("cannot render the synthesizer prompt: {e}"),
        )
    })?;
    let validator = match &output.schema {
        Some(schema) => Some(jsonschema::draft202012::new(schema).map_err(|e| {
            Stop::failed(
                EndCause::Fatal,
                format!("output.schema does not compile: {e}"),
            )
        })?),
        None => None,
    };
    let mut request = ModelRequest {
        messages: vec![Message::user(prompt)],
        response_format: match &output.schema {
            Some(schema) => ResponseFormat::Json {
                name: "output".into(),
                schema: schema.clone(),
            },
            None => ResponseFormat::Text,
        },
        ..ModelRequest::default()
    };
    let mut problem = Problem::None;
    for _ in 0..=output.max_repairs {
        let response = match call_model(ctx, Role::Synthesizer, None, &mut request).await {
            Ok(r) => r,
            Err(CallError::Model(e)) if !e.is_fatal() => {
                let mut message = e.to_string();
                carried::cut(&mut message, carried::MAX_FEEDBACK_BYTES);
                problem = Problem::Model(message);
                continue;
            }
            Err(e) => return Err(Stop::from_call(e)),
        };
        let Some(validator) = &validator else {
            if response.truncated {
                // Asking again would be cut off the same way.
                return Err(Stop::failed(
                    EndCause::SynthesisInvalid,
                    format!(
                        "the final answer was cut off at the output cap ({} tokens): raise the synthesizer's max_tokens",
                        request.max_output_tokens.unwrap_or(0)
                    ),
                ));
            }
            return Ok(Value::String(response.text.trim().to_string()));
        };
        let checked = json_value(&response.text)
            .and_then(|value| crate::schema::problems(validator, &value).map(|()| value));
        match checked {
            Ok(value) => return Ok(value),
            Err(p) => {
                // A quote of the rejected reply, never the whole of it: re-asks must not
                // grow with what the model sent.
                let mut p = p;
                carried::cut(&mut p, carried::MAX_FEEDBACK_BYTES);
                request.messages.push(Message::assistant(
                    carried::excerpt(&response.text),
                    Vec::new(),
                ));
                request.messages.push(Message::user(format!(
                    "Your answer does not match the required JSON Schema: {p}\nReply with the corrected JSON only."
                )));
                problem = Problem::Reply(p);
            }
        }
    }
    Err(match problem {
        Problem::Model(e) => Stop::failed(
            EndCause::ModelFailed,
            format!("the synthesizer's model failed: {e}"),
        ),
        Problem::Reply(p) => Stop::failed(
            EndCause::SynthesisInvalid,
            format!(
                "the final answer does not match output.schema after {} repair{}: {p}",
                output.max_repairs,
                if output.max_repairs == 1 { "" } else { "s" }
            ),
        ),
        Problem::None => Stop::failed(EndCause::SynthesisInvalid, "no final answer".into()),
    })
}

/// The answer `output.template` renders from `inputs` and `steps` (each step by id, in plan
/// order: `status`, `description`, `tool`, and `result` or `error`). With `output.schema` the
/// rendered text must be JSON valid against it; no model is asked to repair it.
fn rendered(ctx: &Ctx, template: &str) -> Result<Value, Stop> {
    let steps = crate::engine::direct::steps_var(ctx, None);
    let vars = json!({"inputs": ctx.tool_ctx.inputs, "steps": steps});
    let mut text = crate::template::render(template, &vars).map_err(|e| {
        Stop::failed(
            EndCause::SynthesisInvalid,
            format!("output.template does not render: {e}"),
        )
    })?;
    carried::cut(&mut text, carried::MAX_RESULT_BYTES);
    let Some(schema) = &ctx.workflow.file.output.schema else {
        return Ok(Value::String(text.trim().to_string()));
    };
    let validator = jsonschema::draft202012::new(schema).map_err(|e| {
        Stop::failed(
            EndCause::Fatal,
            format!("output.schema does not compile: {e}"),
        )
    })?;
    json_value(&text)
        .and_then(|value| crate::schema::problems(&validator, &value).map(|()| value))
        .map_err(|p| {
            Stop::failed(
                EndCause::SynthesisInvalid,
                format!("output.template's answer does not match output.schema: {p}"),
            )
        })
}
