//! PostgreSQL's binary date/time formats rendered as PostgreSQL's text output (ISO style).
//!
//! `timestamptz` and `timetz` values are rendered in UTC (`+00`), whatever the session's
//! `TimeZone`: the binary format carries the instant, not the session's zone.

const USECS_PER_DAY: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

/// (year, month, day) of a day number counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn date_parts(days_since_2000: i64) -> (String, bool) {
    let (y, m, d) = civil_from_days(days_since_2000 + PG_EPOCH_DAYS);
    // Year 0 is 1 BC.
    let (year, bc) = if y <= 0 { (1 - y, true) } else { (y, false) };
    (format!("{year:04}-{m:02}-{d:02}"), bc)
}

/// `HH:MM:SS[.ffffff]` with trailing fractional zeros trimmed, from microseconds.
fn time_of_day(usecs: i64) -> String {
    let secs = usecs / 1_000_000;
    let frac = usecs % 1_000_000;
    let mut s = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    push_fraction(&mut s, frac);
    s
}

fn push_fraction(s: &mut String, frac: i64) {
    if frac != 0 {
        let digits = format!("{frac:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}

/// A `date` (days since 2000-01-01).
pub(crate) fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (text, bc) = date_parts(i64::from(days));
            if bc {
                format!("{text} BC")
            } else {
                text
            }
        }
    }
}

/// A `time` (microseconds since midnight).
pub(crate) fn time(usecs: i64) -> String {
    time_of_day(usecs)
}

/// A `timetz`: microseconds since midnight and the zone's offset in seconds west of UTC.
pub(crate) fn timetz(usecs: i64, zone_west: i32) -> String {
    let mut s = time_of_day(usecs);
    let east = -i64::from(zone_west);
    let sign = if east < 0 { '-' } else { '+' };
    let abs = east.abs();
    s.push_str(&format!("{sign}{:02}", abs / 3600));
    if abs % 3600 != 0 {
        s.push_str(&format!(":{:02}", (abs / 60) % 60));
        if abs % 60 != 0 {
            s.push_str(&format!(":{:02}", abs % 60));
        }
    }
    s
}

/// A `timestamp` (microseconds since 2000-01-01 00:00:00); `utc_suffix` adds `+00` for
/// `timestamptz`.
pub(crate) fn timestamp(usecs: i64, utc_suffix: bool) -> String {
    match usecs {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let days = usecs.div_euclid(USECS_PER_DAY);
    let rest = usecs.rem_euclid(USECS_PER_DAY);
    let (text, bc) = date_parts(days);
    let mut s = format!("{text} {}", time_of_day(rest));
    if utc_suffix {
        s.push_str("+00");
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// An `interval` in PostgreSQL's default (`postgres`) style: `1 year 2 mons 3 days 04:05:06`.
pub(crate) fn interval(usecs: i64, days: i32, months: i32) -> String {
    let mut s = String::new();
    let mut is_before = false;
    let mut is_zero = true;
    let years = months / 12;
    let mons = months % 12;
    for (value, unit) in [(years, "year"), (mons, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        s.push_str(&format!(
            "{}{}{} {}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            value,
            unit,
            if value != 1 { "s" } else { "" }
        ));
        is_before = value < 0;
        is_zero = false;
    }
    if usecs != 0 || is_zero {
        let minus = usecs < 0;
        let abs = usecs.unsigned_abs();
        let secs = abs / 1_000_000;
        s.push_str(&format!(
            "{}{}{:02}:{:02}:{:02}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        ));
        push_fraction(&mut s, (abs % 1_000_000) as i64);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_render_like_postgres() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(9190), "2025-02-28");
        assert_eq!(date(-730_485), "0001-01-01 BC");
        assert_eq!(date(-730_119), "0001-01-01");
        assert_eq!(time(3_723_000_500), "01:02:03.0005");
        assert_eq!(timetz(0, -19800), "00:00:00+05:30");
        assert_eq!(
            timestamp(86_400_000_000 + 1, true),
            "2000-01-02 00:00:00.000001+00"
        );
        assert_eq!(timestamp(-1, false), "1999-12-31 23:59:59.999999");
        assert_eq!(
            interval(14_706_000_000, 3, 14),
            "1 year 2 mons 3 days 04:05:06"
        );
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(-1_000_000, 0, -12), "-1 years -00:00:01");
        assert_eq!(interval(0, 1, 0), "1 day");
    }
}
