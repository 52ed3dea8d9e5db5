//! The environment of a process pe starts for a tool: a minimal set of pe's own variables
//! (what programs need to find each other, a home, a locale, a time zone and a temporary
//! directory), the variables the workflow names in `inherit_env`, and nothing else — never
//! pe's whole environment, where the provider keys are.

use std::ffi::OsString;

/// Variables of pe's environment every process gets when they are set. Variables starting
/// with `LC_` are passed too.
pub const MINIMAL_ENV: [&str; 10] = [
    "HOME", "LANG", "LANGUAGE", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER",
];

/// The part of pe's environment a process gets: [`MINIMAL_ENV`], `LC_*` and `names`.
pub fn inherited(names: &[String]) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(key, _)| {
            key.to_str().is_some_and(|key| {
                MINIMAL_ENV.contains(&key)
                    || key.starts_with("LC_")
                    || names.iter().any(|name| name == key)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_minimal_set_and_named_variables_are_inherited() {
        // PATH is set wherever tests run; CARGO_PKG_NAME is set by cargo for tests and is
        // not in the minimal set.
        let keys = |names: &[String]| -> Vec<String> {
            inherited(names)
                .into_iter()
                .filter_map(|(k, _)| k.into_string().ok())
                .collect()
        };
        let plain = keys(&[]);
        assert!(plain.iter().any(|k| k == "PATH"), "{plain:?}");
        assert!(!plain.iter().any(|k| k == "CARGO_PKG_NAME"), "{plain:?}");
        let named = keys(&["CARGO_PKG_NAME".to_string()]);
        assert!(named.iter().any(|k| k == "CARGO_PKG_NAME"), "{named:?}");
    }
}
