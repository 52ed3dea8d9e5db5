//! Any byte string given to the loader and checker yields diagnostics or a workflow, never a
//! panic. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run check` (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = pe::source::Source::new("fuzz.yaml".into(), "fuzz.yaml".into(), text.to_string());
    let checked = pe::check::check_source(&source);
    for d in &checked.diagnostics {
        // Every span must lie inside the text and render.
        assert!(d.span.end() <= text.len());
        let _ = pe::render::diagnostic::render(&source, d, false);
    }
});
