//! Wall-clock times: milliseconds since the Unix epoch on the wire, RFC 3339 in reports.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the epoch (std's clock; the shim reads the clock its own way).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats ms since the epoch as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-25T15:15:31.123Z`.
///
/// Written digit by digit, not with `format!`: a report has two times per socket, and the
/// formatting machinery made them a third of the reporter's cost of a short connection
/// (~6,300 of ~21,000 instructions under callgrind; docs/benchmarks.md).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut b = [0u8; 24];
    let mut at = 0;
    let mut put = |v: u64, width: usize, then: u8| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        at += width;
        if then != 0 {
            b[at] = then;
            at += 1;
        }
    };
    if !(0..=9999).contains(&y) {
        // Outside what four digits hold (never a real clock): the general form.
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            ms % 1000
        );
    }
    put(y as u64, 4, b'-');
    put(u64::from(m), 2, b'-');
    put(u64::from(d), 2, b'T');
    put(rem / 3600, 2, b':');
    put(rem % 3600 / 60, 2, b':');
    put(rem % 60, 2, b'.');
    put(ms % 1000, 3, b'Z');
    b.iter().map(|&c| char::from(c)).collect()
}

/// Reads back a time [`rfc3339`] wrote (`2026-11-25T15:15:31.123Z`), as ms since the epoch;
/// `None` for any other text (a report's times are only ever in this form).
pub fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = t.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y as i64, m as u32, d as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs * 1000 + ms)
}

/// Howard Hinnant's civil-to-days algorithm (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit form is `format!`'s, for any instant a clock can give (and beyond).
    fn reference(ms: u64) -> String {
        let secs = ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            ms % 1000
        )
    }

    proptest::proptest! {
        #[test]
        fn digits_are_formats(ms in 0u64..400_000_000_000_000) {
            proptest::prop_assert_eq!(rfc3339(ms), reference(ms));
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_619_731_005), "2026-11-25T15:15:31.005Z");
    }

    #[test]
    fn parses_what_it_formats_and_nothing_else() {
        for ms in [
            0,
            951_782_400_123,
            1_795_619_731_005,
            4_102_444_799_999,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{ms}");
        }
        for bad in [
            "",
            "2026-11-25T15:15:31Z",
            "2026-11-25 15:15:31.005Z",
            "2026-13-25T15:15:31.005Z",
            "2026-11-25T15:15:31.0a5Z",
            "+026-11-25T15:15:31.005Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
