//! Property tests: the loader and checker never panic, whatever they are given, and every
//! diagnostic span lies inside the file. (`cargo fuzz` runs the same property coverage-guided;
//! this runs in every `cargo test`.)

use pe::check::check_source;
use pe::source::Source;
use proptest::prelude::*;

fn check_text(text: &str) {
    let source = Source::new("p.yaml".into(), "p.yaml".into(), text.to_string());
    let checked = check_source(&source);
    for d in &checked.diagnostics {
        assert!(
            d.span.end() <= text.len(),
            "span {:?} outside {} bytes",
            d.span,
            text.len()
        );
        assert!(text.is_char_boundary(d.span.offset) && text.is_char_boundary(d.span.end()));
        let rendered = pe::render::diagnostic::render(&source, d, false);
        assert!(rendered.contains(d.kind.code()));
    }
    assert_eq!(checked.workflow.is_some(), checked.diagnostics.is_empty());
}

const SEED: &str = include_str!("../workflows/release-checklist.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_text(&text);
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-z_]{1,8}: ?(\\{\\{ ?[a-z.]{0,10} ?\\}?\\}?|[0-9]{1,3}|\\[|\\]|'|\"|-|\\t|é|)\n( {0,6})){0,30}") {
        check_text(&text);
    }

    /// Deleting or duplicating a slice of a real workflow: every truncation and splice.
    #[test]
    fn mutated_real_workflow_never_panics(start in 0usize..SEED.len(), len in 0usize..400, dup in any::<bool>()) {
        let start = (0..=start).rev().find(|&i| SEED.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(SEED.len());
        let end = (end..=SEED.len()).find(|&i| SEED.is_char_boundary(i)).unwrap_or(SEED.len());
        let text = if dup {
            format!("{}{}", &SEED[..end], &SEED[start..])
        } else {
            format!("{}{}", &SEED[..start], &SEED[end..])
        };
        check_text(&text);
    }
}
