//! Workflow files in the shapes that cost `pe check` most: YAML bombs, and about 1 MB of
//! deep nesting, huge lists, floods of unknown or duplicate keys, a 1 MB line, templates
//! full of unknown names, a huge plan, too many tools, tests or schema values. Shared by
//! `tests/adversarial_check.rs` and `benches/check.rs`.

#![allow(dead_code)]

const MB: usize = 1_000_000;

/// The ten-line file of the finding: seven levels of aliases, ten copies each (10^7 values).
pub fn billion_laughs(levels: usize) -> String {
    let mut text = String::from(
        "version: 1\nname: laughs\ntask: t\nx-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("x-{i}: &a{i} [{refs}]\n"));
    }
    text
}

/// Files of about 1 MB in the shapes that cost the checker most.
pub fn hostile_shapes() -> Vec<(&'static str, String)> {
    let head = "version: 1\nname: shape\ntask: t\n";
    let fill = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<String>();
    vec![
        (
            "a list of 500,000 numbers",
            format!("{head}x-big: [{}]\n", vec!["0"; MB / 2 - 20].join(",")),
        ),
        (
            "60,000 small mappings",
            format!(
                "{head}x-items:\n{}",
                fill(MB / 16, &|i| format!("  - {{a: {i}}}\n"))
            ),
        ),
        (
            "4,000 lists nested 120 deep",
            format!(
                "{head}x-d:\n{}",
                fill(MB / 245, &|_| format!(
                    "  - {}{}\n",
                    "[".repeat(120),
                    "]".repeat(120)
                ))
            ),
        ),
        (
            "110,000 unknown keys",
            format!("{head}{}", fill(MB / 9, &|i| format!("k{i}: 1\n"))),
        ),
        (
            "125,000 duplicate keys",
            format!("{head}{}", fill(MB / 8, &|_| "task: t\n".to_string())),
        ),
        (
            "one line of 1 MB",
            format!(
                "version: 1\nname: shape\ntask: '{}{{{{ nope }}}}'\n",
                "a".repeat(MB - 60)
            ),
        ),
        (
            "80,000 undefined variables in one template",
            format!(
                "version: 1\nname: shape\ntask: '{}'\n",
                fill(MB / 12, &|i| format!("{{{{ v{i} }}}}"))
            ),
        ),
        (
            "40,000 unknown filters in one template",
            format!(
                "version: 1\nname: shape\ninputs: {{x: {{type: string, default: a}}}}\ntask: '{}'\n",
                fill(MB / 24, &|i| format!("{{{{ inputs.x | f{i} }}}}"))
            ),
        ),
        (
            "a fixed plan of 20,000 steps in one cycle",
            format!(
                "{head}plan:\n  steps:\n{}",
                fill(MB / 50, &|i| format!(
                    "    - {{id: s{i}, description: d, depends_on: [s{}]}}\n",
                    (i + 1) % (MB / 50)
                ))
            ),
        ),
        (
            "5,500 tools with templates",
            format!(
                "{head}inputs: {{x: {{type: string, default: a}}}}\ntools:\n{}",
                fill(MB / 170, &|i| format!(
                    "  t{i}:\n    description: Tool {i}.\n    parameters: {{type: object, properties: {{v: {{type: string}}}}}}\n    command: [echo, '{{{{ args.v | upper }}}}', '{{{{ inputs.x }}}}']\n"
                ))
            ),
        ),
        (
            "550 tools with valid templates and schemas",
            format!(
                "{head}inputs: {{x: {{type: string, default: a}}}}\ntools:\n{}",
                fill(550, &|i| format!(
                    "  t{i}:\n    description: Tool {i}.\n    parameters: {{type: object, properties: {{{}}}}}\n    command: [echo, '{{{{ args.p0 | upper }}}}', '{{{{ inputs.x }}}}']\n",
                    (0..40)
                        .map(|j| format!("p{j}: {{type: string, pattern: '^[a-z]+$'}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            ),
        ),
        (
            "an input schema of 23,000 properties",
            format!(
                "{head}inputs:\n  x:\n    type: object\n    properties:\n{}",
                fill(MB / 50, &|i| format!(
                    "      p{i}: {{type: string, pattern: '^a+$', default: aaa}}\n"
                ))
            ),
        ),
        (
            "15,000 tests",
            format!(
                "{head}tests:\n{}",
                fill(MB / 64, &|i| format!(
                    "  - {{name: t{i}, tools: {{nope{i}: x}}, expect: {{status: completed}}}}\n"
                ))
            ),
        ),
        (
            "760 chains of 120 nested anchors",
            format!(
                "{head}x-d:\n{}",
                fill(760, &|n| format!(
                    "  - {}{}\n",
                    (0..120).map(|i| format!("&a{n}_{i} [")).collect::<String>(),
                    "]".repeat(120)
                ))
            ),
        ),
        (
            "aliases at the limit",
            format!(
                "{head}x-a: &a [1,2,3,4,5,6,7,8,9]\nx-b: [{}]\n",
                vec!["*a"; 9_900].join(",")
            ),
        ),
    ]
}
