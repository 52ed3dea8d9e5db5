//! When and how long to wait before asking a provider again: exponential backoff with
//! jitter, `Retry-After` honoured (capped), a bounded number of attempts, and which
//! failures are worth another attempt at all.
//!
//! A retry re-sends one HTTP request. It happens inside one model call, before any reply
//! reaches the engine, so it can never run a step or a tool twice.

use std::time::{Duration, SystemTime};

/// Retries of a failed request when the provider entry sets no `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The first backoff delay; doubled on each retry.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(500);

/// No backoff delay grows past this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A server's `Retry-After` is honoured up to this; a longer wait is cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Overrides the base delay (in milliseconds). Tests set it small so fault injection runs
/// fast; users have no reason to.
pub const BASE_DELAY_ENV: &str = "PE_RETRY_BASE_MS";

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    /// Retries after the first attempt (attempts = `max_retries + 1`).
    pub max_retries: u32,
}

impl RetryPolicy {
    /// The policy of a provider entry (`max_retries`), with the base delay from
    /// [`BASE_DELAY_ENV`] when set.
    pub fn new(max_retries: Option<u32>) -> RetryPolicy {
        let base_delay = std::env::var(BASE_DELAY_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_BASE_DELAY, Duration::from_millis);
        RetryPolicy {
            base_delay,
            max_retries: max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): the server's
    /// `Retry-After` when it sent one (capped), else `base · 2^(retry-1)` (capped) scaled by a
    /// random factor in [0.5, 1) so that concurrent callers do not retry in lockstep.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(MAX_RETRY_AFTER);
        }
        let exponent = retry.saturating_sub(1).min(20);
        let backoff = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(MAX_BACKOFF);
        backoff.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Whether an HTTP status is worth another attempt: request timeout, conflict, rate limit
/// and server errors. Other client errors (400, 401, 403, 404, 422, …) would fail the same
/// way again.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..=599).contains(&status)
}

/// The wait a response asks for: `retry-after-ms` (OpenAI), else `Retry-After` in seconds or
/// as an HTTP date. `None` when absent or unreadable.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(capped_secs(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| capped_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// A server-given wait in seconds as a duration, cut to [`MAX_RETRY_AFTER`] before it is
/// converted: `Duration::from_secs_f64` panics on values past `u64::MAX` seconds, and a
/// server can send any number (`retry-after-ms: 1e23`).
fn capped_secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64()))
}

/// One failed attempt that will be retried, as the engine journals it (`llm_retry`).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryNote {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// How long the client waits before the next attempt.
    pub delay: Duration,
    /// What went wrong, without secrets.
    pub error: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
}

/// A provider moved to another structured-output mode after the server refused one, for
/// the rest of the run (journaled as `structured_output_fallback`).
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackNote {
    /// The mode the server refused (`json_schema`, `json_object`).
    pub from: &'static str,
    /// The provider name as written (`openai`, or a key of `providers:`).
    pub provider: String,
    /// The server's message, without secrets.
    pub reason: String,
    /// The HTTP status of the refusal.
    pub status: u16,
    /// The mode used from now on (`json_object`, `prompt`).
    pub to: &'static str,
}

/// Hears about the attempts inside one model call, as they happen.
pub trait AttemptObserver: Send + Sync {
    fn retrying(&self, note: &RetryNote);

    /// The provider switched structured-output mode (once per provider and rung, by the
    /// call that was refused first).
    fn structured_output_fell_back(&self, note: &FallbackNote) {
        let _ = note;
    }

    /// The server answered one request of this call with a completion that used `usage`
    /// tokens (`estimated` when the server reported none). HTTP providers report every
    /// such request — each re-ask of a prompt-mode structured answer too, also when the
    /// call fails in the end — so budgets and the journal count every token; failed
    /// attempts without a completion (connection errors, 5xx) are `retrying` notes and not
    /// reported here. A provider that reports nothing leaves the engine to count the call's
    /// response usage once.
    fn spent(&self, usage: crate::model::Usage, estimated: bool) {
        let _ = (usage, estimated);
    }
}

/// An observer that ignores everything (callers that do not journal).
pub struct Unobserved;

impl AttemptObserver for Unobserved {
    fn retrying(&self, _: &RetryNote) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: Headers) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    type Headers = &'static [(&'static str, &'static str)];

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let cases: [(Headers, Option<Duration>); 7] = [
            (&[("retry-after", "2")], Some(Duration::from_secs(2))),
            (&[("retry-after", "0")], Some(Duration::ZERO)),
            (&[("retry-after", "1.5")], Some(Duration::from_millis(1500))),
            (
                &[("retry-after", "Wed, 21 Oct 2026 07:28:07 GMT")],
                Some(Duration::from_secs(7)),
            ),
            (
                &[("retry-after", "Wed, 21 Oct 2026 07:27:00 GMT")],
                Some(Duration::ZERO),
            ),
            (
                &[("retry-after-ms", "250"), ("retry-after", "9")],
                Some(Duration::from_millis(250)),
            ),
            (&[("retry-after", "soon")], None),
        ];
        for (h, want) in cases {
            assert_eq!(retry_after(&headers(h), now), want, "{h:?}");
        }
    }

    /// Issue 10, finding 6: `retry-after-ms: 1e23` made `Duration::from_secs_f64` panic.
    /// Every delay a server gives is cut to `MAX_RETRY_AFTER`, in every header form.
    #[test]
    fn huge_server_delays_are_capped_and_never_panic() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let cases: [Headers; 6] = [
            &[("retry-after-ms", "1e23")],
            &[("retry-after-ms", "18446744073709551616000")],
            &[("retry-after-ms", "1.7976931348623157e308")],
            &[("retry-after", "1e300")],
            &[("retry-after", "86400")],
            &[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")],
        ];
        for h in cases {
            assert_eq!(
                retry_after(&headers(h), now),
                Some(MAX_RETRY_AFTER),
                "{h:?}"
            );
        }
        let refused: [Headers; 3] = [
            &[("retry-after-ms", "inf")],
            &[("retry-after-ms", "NaN")],
            &[("retry-after", "-5")],
        ];
        for h in refused {
            assert_eq!(retry_after(&headers(h), now), None, "{h:?}");
        }
    }

    #[test]
    fn delays_grow_with_jitter_and_respect_caps() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_retries: 3,
        };
        for retry in 1..=4u32 {
            let full = Duration::from_millis(100 * (1 << (retry - 1)));
            let d = p.delay(retry, None);
            assert!(d >= full / 2 && d < full, "retry {retry}: {d:?}");
        }
        assert!(p.delay(30, None) < MAX_BACKOFF);
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
        assert_eq!(p.delay(1, Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn only_statuses_a_retry_can_fix_are_retried() {
        let retried: Vec<u16> = [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 529]
            .into_iter()
            .filter(|s| retryable_status(*s))
            .collect();
        assert_eq!(retried, [408, 409, 429, 500, 502, 503, 529]);
    }
}
