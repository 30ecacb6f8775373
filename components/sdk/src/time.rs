//! Date and time-of-day parsing shared by the KOAID, SEMESTER, weather and
//! twilight rules. Times come from the header or the context, never a clock.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A parsed `HH:MM:SS[.f]` time of day.
#[derive(Clone, Debug, PartialEq)]
pub struct Utc {
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Fractional digits as written (at most 6 kept), "" when absent.
    pub fraction: String,
}

impl Utc {
    /// Microseconds of the fraction (`.07` → 70000).
    pub fn micros(&self) -> u32 {
        let mut f = self.fraction.clone();
        while f.len() < 6 {
            f.push('0');
        }
        f.parse().unwrap_or(0)
    }

    pub fn seconds_of_day(&self) -> u32 {
        self.hour * 3600 + self.minute * 60 + self.second
    }

    pub fn time(&self) -> NaiveTime {
        NaiveTime::from_hms_micro_opt(self.hour, self.minute, self.second, self.micros())
            .unwrap_or_default()
    }

    /// Hours as a float (hour + minute/60).
    pub fn hours(&self) -> f64 {
        self.hour as f64 + self.minute as f64 / 60.0
    }
}

/// Parse `HH:MM:SS` with an optional fraction (1–9 digits, 6 kept).
/// Hours 0–23, minutes 0–59, seconds 0–59 (reference defects #2 and #3 fixed:
/// a missing fraction is accepted, out-of-range fields and extra parts are
/// rejected instead of raising).
pub fn parse_utc(text: &str) -> Option<Utc> {
    let t = text.trim();
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let two = |s: &str| -> Option<u32> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let hour = two(parts[0])?;
    let minute = two(parts[1])?;
    let (sec, fraction) = match parts[2].split_once('.') {
        Some((s, f)) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (s, f[..f.len().min(6)].to_string())
        }
        None => (parts[2], String::new()),
    };
    let second = two(sec)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(Utc { hour, minute, second, fraction })
}

/// Whether text starts with `YYYY-MM-DD`.
pub fn starts_with_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Parse exactly `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 || !starts_with_iso_date(text) {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Parse an ISO timestamp `YYYY-MM-DD[T ]HH:MM:SS[.f]` as written in the context.
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim().trim_end_matches('Z');
    let (d, tm) = t.split_at_checked(10)?;
    let date = parse_date(d)?;
    let tm = tm.strip_prefix('T').or_else(|| tm.strip_prefix(' '))?;
    let utc = parse_utc(tm)?;
    Some(date.and_time(utc.time()))
}

/// Frame time from DATE-OBS and a UTC text.
pub fn frame_time(date_obs: &str, utc: &str) -> Option<NaiveDateTime> {
    let date = parse_date(date_obs.get(..10)?)?;
    let utc = parse_utc(utc)?;
    Some(date.and_time(utc.time()))
}

/// `YYYY-MM-DD` of the day before (the HST date of a UT night).
pub fn day_before(utdate: &str) -> Option<String> {
    Some((parse_date(utdate)? - Duration::days(1)).format("%Y-%m-%d").to_string())
}

/// ISO UTC with microseconds and a Z, for service windows.
pub fn iso_z(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `HH:MM:SS.xx` of epoch seconds + nanoseconds (hundredths from the
/// zero-padded nanoseconds — reference defect #45 fixed).
pub fn hms_hundredths(secs: i64, nanos: u32) -> String {
    let t = chrono::DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()).unwrap_or_default();
    format!("{:02}:{:02}:{:02}.{:02}", t.hour(), t.minute(), t.second(), nanos / 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_parsing() {
        let u = parse_utc("03:29:31.36").unwrap();
        assert_eq!((u.hour, u.minute, u.second, u.micros()), (3, 29, 31, 360000));
        assert_eq!(parse_utc("12:00:00").unwrap().fraction, "");
        assert!(parse_utc("24:00:00.0").is_none());
        assert!(parse_utc("23:60:00.0").is_none());
        assert!(parse_utc("23:59:60.0").is_none());
        assert!(parse_utc("1:2:3").is_none());
        assert!(parse_utc("12:00:00:00").is_none());
        assert!(parse_utc("ab:cd:ef").is_none());
        assert_eq!(parse_utc(" 10:40:09.09 ").unwrap().micros(), 90000);
    }

    #[test]
    fn dates() {
        assert!(starts_with_iso_date("2019-06-15T03:00"));
        assert!(!starts_with_iso_date("15/06/19"));
        assert_eq!(day_before("2019-03-01").unwrap(), "2019-02-28");
        assert_eq!(
            parse_timestamp("2019-06-15T03:29:31.360000").unwrap(),
            NaiveDate::from_ymd_opt(2019, 6, 15).unwrap().and_hms_micro_opt(3, 29, 31, 360000).unwrap()
        );
        assert_eq!(hms_hundredths(0, 70_000_000), "00:00:00.07");
    }
}
