//! UTC timestamps without a date crate, and the build time (`SOURCE_DATE_EPOCH`).
//!
//! `version.json` wants `YYYY-MM-DDTHH:MM:SS.ffffff`, OCI labels and reports want RFC 3339,
//! the CHANGELOG wants `YYYY-MM-DD`: all three are a few lines of civil-calendar arithmetic
//! on [`SystemTime`], always in UTC so two machines stamp the same text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

/// The environment variable of the reproducible-builds convention: seconds since
/// 1970-01-01 UTC to use as the build time instead of the clock.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC (microseconds, no zone suffix), the `build_date`
/// format of `version.json` (as `date -u +%Y-%m-%dT%H:%M:%S.%6N` prints it).
pub(crate) fn utc_timestamp_micros(when: SystemTime) -> String {
    let (secs, micros) = unix_parts(when);
    let (date, hms) = split(secs);
    format!("{date}T{hms}.{micros:06}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC: RFC 3339 for OCI `created` labels and reports.
pub fn rfc3339(when: SystemTime) -> String {
    let (secs, _) = unix_parts(when);
    let (date, hms) = split(secs);
    format!("{date}T{hms}Z")
}

/// `YYYY-MM-DD` in UTC, for CHANGELOG headings.
pub(crate) fn utc_date(when: SystemTime) -> String {
    let (secs, _) = unix_parts(when);
    split(secs).0
}

/// Whole seconds since 1970-01-01 UTC (negative before it, rounded down).
#[cfg(test)]
pub(crate) fn unix_seconds(when: SystemTime) -> i64 {
    unix_parts(when).0
}

/// The build time: the process's `SOURCE_DATE_EPOCH` when set (and not empty), else now.
/// A malformed value is an error, as the reproducible-builds convention asks.
pub fn build_time() -> Result<SystemTime> {
    build_time_from(source_date_epoch().as_deref())
}

/// The build time given the value of `SOURCE_DATE_EPOCH` (`None` or empty: not set, so
/// now). Takes the value instead of reading the environment so callers and tests decide.
pub fn build_time_from(source_date_epoch: Option<&str>) -> Result<SystemTime> {
    match parse_epoch(source_date_epoch)? {
        Some(secs) => Ok(UNIX_EPOCH + Duration::from_secs(secs)),
        None => Ok(SystemTime::now()),
    }
}

/// The process's `SOURCE_DATE_EPOCH`, if set.
pub fn source_date_epoch() -> Option<String> {
    std::env::var(SOURCE_DATE_EPOCH).ok()
}

fn parse_epoch(value: Option<&str>) -> Result<Option<u64>> {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(secs) => Ok(Some(secs)),
        Err(_) => bail!(
            "{SOURCE_DATE_EPOCH} is {text:?}, not a whole number of seconds since 1970-01-01 \
             (set it to e.g. `git log -1 --format=%ct`, or unset it)"
        ),
    }
}

/// Seconds (rounded down) and microseconds since the epoch; works before 1970 too.
fn unix_parts(when: SystemTime) -> (i64, u32) {
    let nanos: i128 = match when.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let micros = (nanos.rem_euclid(1_000_000_000) / 1_000) as u32;
    (secs, micros)
}

/// `("YYYY-MM-DD", "HH:MM:SS")` for seconds since the epoch.
fn split(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        ),
    )
}

/// The proleptic Gregorian date `(year, month, day)` of a day number (days since
/// 1970-01-01), after Howard Hinnant's `civil_from_days`: 400-year eras starting in March,
/// so the leap day is the last day of the shifted year.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number (days since 1970-01-01) of a proleptic Gregorian date; the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads an RFC 3339 time as Go prints it (`2026-12-06T19:52:11.141210094Z`,
/// `2026-12-06T20:52:11+01:00`): `None` when it is not one. Times before 1970 are `None`
/// (no build record is that old).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // The zone: `Z`, or `+HH:MM` / `-HH:MM` after the time.
    let (clock, offset_secs) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        (clock, sign * (h * 3600 + m * 60))
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, fraction),
        None => (clock, ""),
    };
    let mut parts = hms.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    if h > 23 || m > 59 || s > 60 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{:0<9}", &fraction[..fraction.len().min(9)])
            .parse()
            .ok()?
    };
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_go_prints_it() {
        let t = parse_rfc3339("2026-12-06T19:52:11.141210094Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_796_586_731, 141_210_094)
        );
        assert_eq!(rfc3339(t), "2026-12-06T19:52:11Z");
        let offset = parse_rfc3339("2026-12-06T20:52:11.5+01:00").unwrap();
        assert_eq!(
            offset.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_796_586_731, 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-06T19:52:11Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_586_731))
        );
        for bad in [
            "",
            "2026-12-06",
            "2026-13-06T00:00:00Z",
            "2026-12-06T19:52:11",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn formats_the_epoch_and_a_known_instant() {
        assert_eq!(
            utc_timestamp_micros(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000"
        );
        // date -u -d @1700000000 => 2023-11-14 22:13:20
        let t = at(1_700_000_000, 123_456);
        assert_eq!(utc_timestamp_micros(t), "2023-11-14T22:13:20.123456");
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(utc_date(t), "2023-11-14");
        assert_eq!(unix_seconds(t), 1_700_000_000);
    }

    #[test]
    fn truncates_to_microseconds() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999_999);
        assert_eq!(utc_timestamp_micros(t), "1970-01-01T00:00:01.999999");
    }

    #[test]
    fn leap_years() {
        // 2024 is a leap year: Feb 29 exists, and Mar 1 follows it.
        let feb29 = days_from_civil(2024, 2, 29);
        assert_eq!(civil_from_days(feb29), (2024, 2, 29));
        assert_eq!(civil_from_days(feb29 + 1), (2024, 3, 1));
        // 2023 is not: Feb 28 is followed by Mar 1.
        assert_eq!(
            civil_from_days(days_from_civil(2023, 2, 28) + 1),
            (2023, 3, 1)
        );
        // 1900 is not (divisible by 100), 2000 is (divisible by 400).
        assert_eq!(
            civil_from_days(days_from_civil(1900, 2, 28) + 1),
            (1900, 3, 1)
        );
        assert_eq!(
            civil_from_days(days_from_civil(2000, 2, 28) + 1),
            (2000, 2, 29)
        );
        // 2024-02-29T12:00:00Z = 1709208000
        assert_eq!(rfc3339(at(1_709_208_000, 0)), "2024-02-29T12:00:00Z");
        // The last second of a leap year, then New Year.
        assert_eq!(rfc3339(at(1_735_689_599, 0)), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339(at(1_735_689_600, 0)), "2025-01-01T00:00:00Z");
        assert_eq!(
            days_from_civil(2025, 1, 1) - days_from_civil(2024, 1, 1),
            366
        );
        assert_eq!(
            days_from_civil(2024, 1, 1) - days_from_civil(2023, 1, 1),
            365
        );
    }

    #[test]
    fn day_numbers_round_trip_over_centuries() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut previous = civil_from_days(-200_000);
        for day in -199_999..200_000 {
            let date = civil_from_days(day);
            assert_eq!(days_from_civil(date.0, date.1, date.2), day);
            assert!(date > previous, "{date:?} follows {previous:?}");
            previous = date;
        }
    }

    #[test]
    fn before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(utc_timestamp_micros(t), "1969-12-31T23:59:59.999999");
        assert_eq!(unix_seconds(t), -1);
    }

    #[test]
    fn source_date_epoch_is_the_build_time_when_set() {
        let t = build_time_from(Some("1700000000")).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let now = SystemTime::now();
        for unset in [None, Some("")] {
            let t = build_time_from(unset).unwrap();
            assert!(t >= now && t <= SystemTime::now() + Duration::from_secs(5));
        }
        assert_eq!(
            parse_epoch(Some("1700000000")).unwrap(),
            Some(1_700_000_000)
        );
        assert_eq!(parse_epoch(None).unwrap(), None);
    }

    #[test]
    fn malformed_source_date_epoch_is_an_error() {
        for bad in ["yesterday", "-5", "1.5"] {
            let err = build_time_from(Some(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "SOURCE_DATE_EPOCH is {bad:?}, not a whole number of seconds since \
                     1970-01-01 (set it to e.g. `git log -1 --format=%ct`, or unset it)"
                )
            );
            assert!(parse_epoch(Some(bad)).is_err());
        }
    }
}
