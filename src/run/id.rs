//! Run ids and timestamps. Ids sort by start time (`20261103-120501-042-7f3a`: UTC date,
//! time, milliseconds, then 16 random-ish bits so two runs started in the same millisecond
//! differ), so `pe runs` and `ls` agree on the order without a separate index.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new run id for a run starting now.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (date, time) = civil(now.as_secs());
    // Low bits of the clock mixed with the process id: unique enough for runs of one store
    // (the store refuses a duplicate id rather than merging two runs).
    let noise = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!(
        "{}-{}-{:03}-{noise:04x}",
        date.replace('-', ""),
        time.replace(':', ""),
        now.subsec_millis()
    )
}

/// The current time as RFC 3339 UTC with milliseconds: `2026-11-03T12:05:01.042Z`.
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (date, time) = civil(now.as_secs());
    format!("{date}T{time}.{:03}Z", now.subsec_millis())
}

/// Milliseconds since the epoch for an RFC 3339 UTC timestamp written by [`now_rfc3339`].
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if b.get(19) == Some(&b'.') {
        num(20..23).unwrap_or(0)
    } else {
        0
    };
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// (`YYYY-MM-DD`, `HH:MM:SS`) for seconds since the epoch (Howard Hinnant's algorithm).
fn civil(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil(0), ("1970-01-01".into(), "00:00:00".into()));
        assert_eq!(
            civil(1_793_707_501),
            ("2026-11-03".into(), "12:05:01".into())
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-03T12:05:01.042Z"),
            Some(1_793_707_501_042)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00.000Z"),
            Some(951_782_400_000)
        );
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_run_id();
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), "20261103-120501-042-7f3a".len());
    }
}
