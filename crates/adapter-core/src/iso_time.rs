//! ISO-8601 UTC timestamps (the CCAI Platform's `2026-11-21T16:00:00.000Z`) to and from Unix
//! milliseconds, without a date crate: only the UTC forms the platform sends are accepted.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`) into Unix milliseconds. Fractions beyond
/// milliseconds are truncated; anything else (another offset, a missing zone) is `None`.
pub fn parse_utc_ms(text: &str) -> Option<i64> {
    if text.len() > 40 || !text.is_ascii() {
        return None;
    }
    let body = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once('T')?;
    let mut date_parts = date.split('-');
    let (year, month, day) = (
        date_parts
            .next()
            .filter(|y| y.len() == 4)
            .and_then(number)?,
        date_parts
            .next()
            .filter(|m| m.len() == 2)
            .and_then(number)?,
        date_parts
            .next()
            .filter(|d| d.len() == 2)
            .and_then(number)?,
    );
    if date_parts.next().is_some() || !(1..=12).contains(&month) {
        return None;
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let mut clock_parts = clock.split(':');
    let mut two = || clock_parts.next().filter(|p| p.len() == 2).and_then(number);
    let (hour, minute, second) = (two()?, two()?, two()?);
    if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return None
        }
        Some(f) => {
            let padded = format!("{f:0<3}");
            number(&padded[..3])?
        }
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_utc_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_timestamps_parse_to_unix_ms() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:00.001Z", Some(1)),
            ("2026-11-21T16:00:00.000Z", Some(1_795_276_800_000)),
            ("2026-11-21T16:00:00.5Z", Some(1_795_276_800_500)),
            ("2026-11-21T16:00:00.123456Z", Some(1_795_276_800_123)),
            ("2026-11-21T16:00:00+00:00", Some(1_795_276_800_000)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-21T24:00:00Z", None),
            ("2026-11-21T16:00:00", None),
            ("2026-11-21T16:00:00+02:00", None),
            ("2026-11-21 16:00:00Z", None),
            ("2026-11-21T16:00:00.Z", None),
            ("2026-1-21T16:00:00Z", None),
            ("+026-11-21T16:00:00Z", None),
            ("", None),
            ("yesterday", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_utc_ms(text), want, "{text}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            1,
            1_795_276_800_123,
            1_709_164_800_000,
            4_102_444_799_999,
        ] {
            assert_eq!(parse_utc_ms(&format_utc_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_utc_ms(1_795_276_800_000), "2026-11-21T16:00:00.000Z");
    }
}
