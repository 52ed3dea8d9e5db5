//! Builtin tools: `calculator`, `current_time` and the confined file tools.
//!
//! Small things every agent needs and that should not require a script or a shell. File
//! access blocks, so it runs on tokio's blocking pool, never on the async workers.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::truncate::truncate_text;
use super::{ToolContext, ToolError, ToolOutput, ToolRunner, calculator, files};
use crate::workflow::Builtin;

/// A builtin tool, ready to run.
pub struct BuiltinRunner {
    builtin: Builtin,
    max_output_bytes: usize,
}

impl BuiltinRunner {
    pub fn new(builtin: Builtin, max_output_bytes: usize) -> BuiltinRunner {
        BuiltinRunner {
            builtin,
            max_output_bytes,
        }
    }
}

#[async_trait::async_trait]
impl ToolRunner for BuiltinRunner {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let limit = self.max_output_bytes;
        match self.builtin {
            Builtin::Calculator => {
                let expression = string_arg(args, "calculator", "expression")?;
                let result = calculator::calculate(&expression).map_err(|e| {
                    ToolError::failed(format!("cannot calculate `{expression}`: {e}"))
                })?;
                Ok(truncate_text(&result, limit))
            }
            Builtin::CurrentTime => Ok(truncate_text(&rfc3339(SystemTime::now()), limit)),
            Builtin::ListFiles => {
                let path = string_arg(args, "list_files", "path")?;
                blocking(ctx, move |root| files::list_files(&root, &path, limit)).await
            }
            Builtin::ReadFile => {
                let path = string_arg(args, "read_file", "path")?;
                blocking(ctx, move |root| files::read_file(&root, &path, limit)).await
            }
            Builtin::WriteFile => {
                let path = string_arg(args, "write_file", "path")?;
                let content = string_arg(args, "write_file", "content")?;
                blocking(ctx, move |root| {
                    files::write_file(&root, &path, &content)
                        .map(|text| truncate_text(&text, limit))
                })
                .await
            }
        }
    }
}

/// The workflow may declare its own schema for a builtin; the builtin still needs its own
/// argument by name.
fn string_arg(args: &Value, builtin: &str, name: &str) -> Result<String, ToolError> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ToolError::failed(format!("{builtin} needs a string argument `{name}`")))
}

async fn blocking<F>(ctx: &ToolContext, work: F) -> Result<ToolOutput, ToolError>
where
    F: FnOnce(PathBuf) -> Result<ToolOutput, ToolError> + Send + 'static,
{
    let root = ctx.root();
    tokio::task::spawn_blocking(move || work(root))
        .await
        .unwrap_or_else(|e| {
            Err(ToolError::failed(format!(
                "the file operation did not finish: {e}"
            )))
        })
}

/// `2026-11-05T14:03:07Z`: RFC 3339 in UTC, to the second.
///
/// Formatted here rather than with `jiff` or `time`: UTC from the Unix epoch is a dozen
/// lines of well-known arithmetic (Howard Hinnant's `civil_from_days`), and pe needs no
/// time zones or parsing.
pub fn rfc3339(now: SystemTime) -> String {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let (days, seconds_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"), // leap day of a century leap year
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_798_761_599, "2026-12-31T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                rfc3339(UNIX_EPOCH + Duration::from_secs(secs)),
                want,
                "{secs}"
            );
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[tokio::test]
    async fn runs_each_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ToolContext {
            idempotency_key: None,
            inputs: json!({}),
            workflow_dir: dir.path().to_path_buf(),
            ..ToolContext::default()
        };
        let run = |builtin, args: Value| {
            let ctx = ctx.clone();
            async move {
                BuiltinRunner::new(builtin, 1000)
                    .call(&args, &ctx)
                    .await
                    .map(|o| o.content)
            }
        };
        let calc = run(
            Builtin::Calculator,
            json!({"expression": "(4.31 - 2.96) / 2.96 * 100"}),
        );
        assert_eq!(calc.await, Ok("45.6081081081".to_string()));
        let wrote = run(
            Builtin::WriteFile,
            json!({"path": "out/a.txt", "content": "héllo"}),
        );
        assert_eq!(wrote.await, Ok("wrote 6 bytes to out/a.txt".to_string()));
        assert_eq!(
            run(Builtin::ReadFile, json!({"path": "out/a.txt"})).await,
            Ok("héllo".to_string())
        );
        assert_eq!(
            run(Builtin::ListFiles, json!({"path": "."})).await,
            Ok("out/".to_string())
        );
        let now = run(Builtin::CurrentTime, json!({})).await.unwrap();
        let shape = regex_lite::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap();
        assert!(shape.is_match(&now), "{now}");
        let bad = run(Builtin::Calculator, json!({"expression": "1/0"})).await;
        assert_eq!(
            bad,
            Err(ToolError::failed(
                "cannot calculate `1/0`: division by zero"
            ))
        );
        let missing = run(Builtin::ReadFile, json!({"file": "x"})).await;
        assert_eq!(
            missing,
            Err(ToolError::failed(
                "read_file needs a string argument `path`"
            ))
        );
    }
}
