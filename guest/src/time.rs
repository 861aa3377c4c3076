//! Timestamps in the text of RDS logs and events, to epoch milliseconds.
//!
//! Hand-written rather than a date crate: the formats are fixed and few, and this runs once per
//! log entry on the hot path, inside a wasm guest where code size counts. The guest has no
//! clock; every function here is pure.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch milliseconds of a UTC civil time, or `None` when a component is out of range.
pub fn epoch_ms(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
        || millis > 999
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        ((days * 24 + hour as i64) * 60 + minute as i64) * 60_000
            + second as i64 * 1000
            + millis as i64,
    )
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Reads exactly `n` ASCII digits at `s[at..]`.
pub fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v: u32 = 0;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

/// Parses `YYYY-MM-DD?HH:MM:SS` at the start of `s` (any single separator byte between date and
/// time), returning the epoch ms of that second and the rest of the input.
pub fn parse_date_time(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let ms = epoch_ms(
        digits(b, 0, 4)? as i64,
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        digits(b, 11, 2)?,
        digits(b, 14, 2)?,
        digits(b, 17, 2)?,
        0,
    )?;
    Some((ms, &s[19..]))
}

/// Parses a `.fraction` at the start of `s`: returns the milliseconds (truncated, as CloudWatch
/// does), the number of fraction digits, and the rest.
pub fn parse_fraction(s: &str) -> (u32, usize, &str) {
    let b = s.as_bytes();
    if b.first() != Some(&b'.') {
        return (0, 0, s);
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10 + if i < n { (b[1 + i] - b'0') as u32 } else { 0 };
    }
    (ms, n, &s[1 + n..])
}

/// Parses a zone suffix: `Z`, `+HH:MM`, `-HHMM`, `+HH`. Returns the offset in ms to subtract.
pub fn parse_offset(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    match b.first()? {
        b'Z' | b'z' => Some((0, &s[1..])),
        sign @ (b'+' | b'-') => {
            let h = digits(b, 1, 2)? as i64;
            let (m, used) = if b.get(3) == Some(&b':') {
                (digits(b, 4, 2)? as i64, 6)
            } else if let Some(m) = digits(b, 3, 2) {
                (m as i64, 5)
            } else {
                (0, 3)
            };
            let off = (h * 60 + m) * 60_000;
            Some((if *sign == b'-' { -off } else { off }, &s[used..]))
        }
        _ => None,
    }
}

/// Parses a whole RFC 3339 / ISO 8601 timestamp such as `2018-09-27T22:36:43.292Z` or
/// `2023-05-19T14:02:23.123456+00:00`. Returns `None` unless the whole string is consumed.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (ms, rest) = parse_date_time(s.trim())?;
    let (frac, _, rest) = parse_fraction(rest);
    let (offset, rest) = parse_offset(rest)?;
    rest.is_empty().then_some(ms + frac as i64 - offset)
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form EventBridge uses.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_times_parse_back() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, -1, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&format_rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            format_rfc3339_ms(1_538_087_803_292),
            "2018-09-27T22:36:43.292Z"
        );
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }

    #[test]
    fn civil_dates_match_known_epochs() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            epoch_ms(2023, 11, 14, 22, 13, 20, 0),
            Some(1_700_000_000_000)
        );
        assert_eq!(epoch_ms(1969, 12, 31, 23, 59, 59, 0), Some(-1000));
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(epoch_ms(2023, 2, 29, 0, 0, 0, 0), None);
        assert_eq!(epoch_ms(2024, 2, 30, 0, 0, 0, 0), None);
        assert!(epoch_ms(2024, 2, 29, 0, 0, 0, 0).is_some());
        assert_eq!(epoch_ms(2023, 13, 1, 0, 0, 0, 0), None);
        assert_eq!(epoch_ms(2023, 1, 1, 24, 0, 0, 0), None);
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(
            parse_rfc3339("2018-09-27T22:36:43.292Z"),
            Some(1_538_087_803_292)
        );
        assert_eq!(
            parse_rfc3339("2018-09-27T22:36:43Z"),
            Some(1_538_087_803_000)
        );
        assert_eq!(
            parse_rfc3339("2018-09-28T00:36:43.292999+02:00"),
            Some(1_538_087_803_292)
        );
        assert_eq!(parse_rfc3339("2018-09-27T22:36:43.292Z trailing"), None);
        assert_eq!(parse_rfc3339("2018-09-27"), None);
        assert_eq!(parse_rfc3339(""), None);
    }

    #[test]
    fn fraction_is_truncated_to_millis() {
        assert_eq!(parse_fraction(".360484Z"), (360, 6, "Z"));
        assert_eq!(parse_fraction(".8 x"), (800, 1, " x"));
        assert_eq!(parse_fraction("Z"), (0, 0, "Z"));
    }
}
