//! Help for an undefined template variable that names something declared elsewhere:
//! `{{ service }}` where `service` is an input means `{{ inputs.service }}`.

use serde_json::Value;

use crate::diagnostic::suggestion;

/// The help line for an undefined root variable `root` in a template where `allowed` are
/// defined; `inputs` are the declared inputs and `params` the tool's parameters schema (for
/// tool templates).
pub(super) fn undefined_root_help(
    root: &str,
    allowed: &[&str],
    inputs: &[&str],
    params: Option<&Value>,
) -> String {
    let is_param = params
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key(root));
    if allowed.contains(&"args") && is_param {
        return format!("`{root}` is a tool parameter: write `{{{{ args.{root} }}}}`");
    }
    if allowed.contains(&"inputs") && inputs.contains(&root) {
        return format!("`{root}` is an input: write `{{{{ inputs.{root} }}}}`");
    }
    format!(
        "{}; variables here: {}",
        suggestion(root, allowed),
        allowed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_declared_name_gets_its_full_path() {
        let params = json!({"properties": {"version": {"type": "string"}}});
        assert_eq!(
            undefined_root_help("service", &["inputs"], &["service"], None),
            "`service` is an input: write `{{ inputs.service }}`"
        );
        assert_eq!(
            undefined_root_help("version", &["args", "inputs"], &[], Some(&params)),
            "`version` is a tool parameter: write `{{ args.version }}`"
        );
        assert_eq!(
            undefined_root_help("servce", &["inputs"], &["service"], None),
            "expected one of: `inputs`; variables here: inputs"
        );
        assert_eq!(
            undefined_root_help("input", &["inputs", "task"], &[], None),
            "did you mean `inputs`?; variables here: inputs, task"
        );
    }
}
