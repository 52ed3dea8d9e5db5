//! The published JSON Schema and the Rust types must describe the same format: for every
//! file-facing struct the schema object has exactly the struct's fields, and every enum the
//! same variants. A field added on one side only fails here.
//!
//! Field names come from serde itself: a probe deserializer records the `fields` list that
//! `#[derive(Deserialize)]` passes to `deserialize_struct` and the variants passed to
//! `deserialize_enum`.

use std::collections::BTreeSet;
use std::fmt;

use pe::spec::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

#[derive(Debug)]
struct Probed(Vec<&'static str>);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probed")
    }
}
impl std::error::Error for Probed {}
impl de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed(Vec::new())
    }
}

struct Probe;

impl<'de> Deserializer<'de> for Probe {
    type Error = Probed;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Vec::new()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(fields.to_vec()))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(variants.to_vec()))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn names_of<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
    match T::deserialize(Probe) {
        Err(Probed(names)) => names.into_iter().map(String::from).collect(),
        Ok(_) => panic!("probe cannot produce a value"),
    }
}

fn schema() -> Value {
    serde_json::from_str(pe::schema::WORKFLOW_SCHEMA).expect("schema is JSON")
}

fn at<'a>(schema: &'a Value, pointer: &str) -> &'a Value {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("schema has no {pointer}"))
}

fn properties(schema: &Value, pointer: &str) -> BTreeSet<String> {
    let node = at(schema, pointer);
    assert_eq!(
        node["additionalProperties"],
        Value::Bool(false),
        "{pointer} must deny unknown keys"
    );
    node["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect()
}

fn enum_values(schema: &Value, pointer: &str) -> BTreeSet<String> {
    at(schema, pointer)["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

#[test]
fn structs_match_schema_objects() {
    let s = schema();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("", names_of::<WorkflowFile>()),
        ("/$defs/provider", names_of::<ProviderSpec>()),
        ("/properties/models", names_of::<ModelsSpec>()),
        ("/$defs/model_settings", names_of::<ModelSettings>()),
        ("/$defs/price", names_of::<Price>()),
        ("/$defs/tool", names_of::<ToolSpec>()),
        ("/$defs/tool/properties/http", names_of::<HttpSpec>()),
        ("/$defs/mock_cases", names_of::<MockCases>()),
        ("/$defs/mock_case", names_of::<MockCase>()),
        ("/properties/prompts", names_of::<PromptsSpec>()),
        ("/properties/plan", names_of::<PlanSpec>()),
        ("/$defs/step", names_of::<StepSpec>()),
        ("/properties/execute", names_of::<ExecuteSpec>()),
        ("/properties/replan", names_of::<ReplanSpec>()),
        (
            "/properties/replan/properties/on_step_failure",
            names_of::<StepFailurePolicy>(),
        ),
        ("/properties/budget", names_of::<BudgetSpec>()),
        ("/$defs/role_budget", names_of::<RoleBudget>()),
        ("/properties/output", names_of::<OutputSpec>()),
        ("/$defs/test_case", names_of::<TestCase>()),
        (
            "/$defs/test_case/properties/expect",
            names_of::<Expectation>(),
        ),
        ("/$defs/scripted_replies", names_of::<ScriptedReplies>()),
        ("/$defs/scripted_reply", names_of::<ScriptedReply>()),
        (
            "/$defs/scripted_reply/properties/tool_calls/items",
            names_of::<ScriptedToolCall>(),
        ),
        (
            "/$defs/scripted_reply/properties/usage",
            names_of::<ScriptedUsage>(),
        ),
    ];
    for (pointer, fields) in cases {
        assert!(!fields.is_empty(), "{pointer}: probe found no fields");
        assert_eq!(
            properties(&s, pointer),
            fields,
            "schema {pointer} and its Rust struct differ"
        );
    }
    // Per-role maps use the role names.
    let roles = names_of::<Role>();
    assert_eq!(
        properties(&s, "/properties/budget/properties/per_role"),
        roles
    );
    assert_eq!(
        names_of::<ModelsSpec>(),
        roles
            .iter()
            .cloned()
            .chain(["default".to_string()])
            .collect()
    );
}

#[test]
fn enums_match_schema_enums() {
    let s = schema();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "/$defs/provider/properties/kind",
            names_of::<ProviderKind>(),
        ),
        ("/$defs/tool/properties/on_error", names_of::<OnError>()),
        (
            "/properties/execute/properties/context",
            names_of::<ContextMode>(),
        ),
        ("/$defs/replan_trigger", names_of::<ReplanTrigger>()),
        (
            "/properties/replan/properties/on_step_failure/properties/then",
            names_of::<FailureAction>(),
        ),
        ("/$defs/run_status", names_of::<RunStatus>()),
        ("/$defs/step_status", names_of::<StepStatus>()),
    ];
    for (pointer, variants) in cases {
        assert_eq!(
            enum_values(&s, pointer),
            variants,
            "schema {pointer} and its Rust enum differ"
        );
    }
    let builtins: BTreeSet<String> = pe::workflow::Builtin::NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(enum_values(&s, "/$defs/tool/properties/builtin"), builtins);
    let kinds: BTreeSet<String> = ProviderKind::NAMES.iter().map(|s| s.to_string()).collect();
    assert_eq!(enum_values(&s, "/$defs/provider/properties/kind"), kinds);
}

#[test]
fn duration_pattern_is_the_parsers() {
    assert_eq!(
        at(&schema(), "/$defs/duration/pattern"),
        pe::duration::PATTERN
    );
}

/// `schemas/replies.schema.json` is the workflow schema's `scripted_replies` published on its
/// own (for editors): the same roles and the same reply definition, word for word.
#[test]
fn replies_schema_is_the_workflow_schemas_replies_definition() {
    let workflow = schema();
    let replies: Value = serde_json::from_str(pe::schema::REPLIES_SCHEMA).expect("JSON");
    assert_eq!(
        replies["properties"],
        workflow["$defs"]["scripted_replies"]["properties"]
    );
    assert_eq!(replies["additionalProperties"], Value::Bool(false));
    for def in ["scripted_reply", "duration"] {
        assert_eq!(
            replies["$defs"][def], workflow["$defs"][def],
            "$defs/{def} differs between the two schemas"
        );
    }
}
