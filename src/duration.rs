//! Durations as the workflow file writes them: `250ms`, `90s`, `2m`, `1h`, `1.5h`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern the JSON Schema uses for durations; kept beside the parser it mirrors.
pub const PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Occurs when the text is not a number followed by a unit.
    #[error("`{text}` is not a duration: write a number and a unit, like `90s`, `2m` or `1h`")]
    Malformed { text: String },
    /// Occurs when the number is zero; a zero timeout would fail every call.
    #[error("`{text}` is zero; a duration must be positive")]
    Zero { text: String },
    /// Occurs when the value would not fit (more than about 500 million years).
    #[error("`{text}` is too long")]
    TooLong { text: String },
}

impl Duration {
    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let malformed = || DurationError::Malformed {
            text: text.to_string(),
        };
        let unit_at = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(malformed)?;
        let (number, unit) = text.split_at(unit_at);
        let multiplier = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(malformed()),
        };
        let valid_number = !number.is_empty()
            && !number.starts_with('.')
            && !number.ends_with('.')
            && number.matches('.').count() <= 1;
        if !valid_number {
            return Err(malformed());
        }
        let value: f64 = number.parse().map_err(|_| malformed())?;
        let secs = value * multiplier;
        if secs == 0.0 {
            return Err(DurationError::Zero {
                text: text.to_string(),
            });
        }
        std::time::Duration::try_from_secs_f64(secs)
            .map(Duration)
            .map_err(|_| DurationError::TooLong {
                text: text.to_string(),
            })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("250ms", Std::from_millis(250)),
            ("90s", Std::from_secs(90)),
            ("2m", Std::from_secs(120)),
            ("1h", Std::from_secs(3600)),
            ("1.5h", Std::from_secs(5400)),
        ];
        for (text, want) in cases {
            assert_eq!(Duration::parse(text), Ok(Duration(want)), "{text}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "", "90", "s", "2 m", "1d", "-1s", ".5s", "1.s", "1..2s", "2mm",
        ] {
            assert!(
                matches!(Duration::parse(text), Err(DurationError::Malformed { .. })),
                "{text}"
            );
        }
        assert!(matches!(
            Duration::parse("0s"),
            Err(DurationError::Zero { .. })
        ));
    }

    #[test]
    fn pattern_agrees_with_parser() {
        let re = regex_lite::Regex::new(PATTERN).unwrap();
        for text in ["250ms", "90s", "1.5h", "90", "1d", ".5s", "2 m", "0s"] {
            let parsed = !matches!(Duration::parse(text), Err(DurationError::Malformed { .. }));
            assert_eq!(re.is_match(text), parsed, "{text}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Duration::parse("120s").unwrap().to_string(), "2m");
        assert_eq!(Duration::parse("1500ms").unwrap().to_string(), "1500ms");
    }
}
