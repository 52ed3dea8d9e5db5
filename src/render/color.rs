//! Whether stderr gets ANSI colours: decided once per process from `--color` and the
//! environment, and read by everything that paints (diagnostics, the progress view).
//!
//! `auto` follows the <https://no-color.org> convention: `NO_COLOR` set to anything but the
//! empty string turns colour off, as does `TERM=dumb` or a stderr that is not a terminal.
//! `always` and `never` override all of that.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::cli::ColorWhen;

static STDERR: OnceLock<bool> = OnceLock::new();

/// Decides colour for this process. The first call wins; later calls change nothing.
pub fn init(when: ColorWhen) {
    let _ = STDERR.set(decide(
        when,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
        std::io::stderr().is_terminal(),
    ));
}

/// Whether to colour stderr. Without [`init`] (library use, tests): never.
pub fn stderr() -> bool {
    STDERR.get().copied().unwrap_or(false)
}

/// The rule, without the environment.
fn decide(
    when: ColorWhen,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
    terminal: bool,
) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            let no_color = no_color.is_some_and(|v| !v.is_empty());
            let dumb = term.is_some_and(|t| t == "dumb");
            terminal && !no_color && !dumb
        }
    }
}

/// The SGR colours the progress view uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
}

/// `text` wrapped in the colour's escape codes when `on`, unchanged otherwise.
pub fn paint(text: &str, paint: Paint, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match paint {
        Paint::Bold => "1",
        Paint::Dim => "2",
        Paint::Green => "32",
        Paint::Red => "31",
        Paint::Yellow => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn auto_colours_a_terminal_unless_no_color_or_a_dumb_terminal() {
        let t = Some(OsStr::new("xterm-256color"));
        let cases = [
            (ColorWhen::Auto, None, t, true, true),
            (ColorWhen::Auto, None, t, false, false),
            (ColorWhen::Auto, Some(OsStr::new("1")), t, true, false),
            // An empty NO_COLOR does not count (no-color.org).
            (ColorWhen::Auto, Some(OsStr::new("")), t, true, true),
            (ColorWhen::Auto, None, Some(OsStr::new("dumb")), true, false),
            (ColorWhen::Always, Some(OsStr::new("1")), t, false, true),
            (ColorWhen::Never, None, t, true, false),
        ];
        for (when, no_color, term, terminal, want) in cases {
            assert_eq!(
                decide(when, no_color, term, terminal),
                want,
                "{when:?} NO_COLOR={no_color:?} TERM={term:?} terminal={terminal}"
            );
        }
    }

    #[test]
    fn paint_wraps_only_when_on() {
        assert_eq!(paint("✓", Paint::Green, true), "\x1b[32m✓\x1b[0m");
        assert_eq!(paint("✓", Paint::Green, false), "✓");
    }
}
