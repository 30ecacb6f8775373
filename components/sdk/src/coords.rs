//! Sexagesimal coordinates shared by the WCS rules (KCWI, NIRC2, LRIS, and
//! `convert_ra_dec_to_degrees` of the reference). The arithmetic is the
//! reference's, operation for operation, so the degrees print as Python
//! prints them: `(h + m/60 + s/3600)·15` for RA, `d + m/60 + s/3600` for DEC,
//! the sign applied last. Reference defect #30 fixed: the sign of
//! `-00:mm:ss` is kept, and sexagesimal text rounds its seconds without ever
//! printing 60.

use crate::value::to_f64;
use crate::types::Value;

/// `d:m:s` (or `d m s`) → (negative, d, m, s) with the sign taken from the text.
fn split(text: &str) -> Option<(bool, f64, f64, f64)> {
    let t = text.trim();
    let neg = t.starts_with('-');
    let parts: Vec<&str> = t.split([':', ' ']).filter(|p| !p.is_empty()).collect();
    if parts.len() != 3 {
        return None;
    }
    let d: f64 = parts[0].trim_start_matches(['+', '-']).parse().ok()?;
    let m: f64 = parts[1].parse().ok()?;
    let s: f64 = parts[2].parse().ok()?;
    Some((neg, d, m, s))
}

/// `d + m/60 + s/3600` with the text's sign (the reference's sum).
fn sexagesimal_value(text: &str) -> Option<f64> {
    let (neg, d, m, s) = split(text)?;
    let v = d + m / 60.0 + s / 3600.0;
    Some(if neg { -v } else { v })
}

fn is_sexagesimal(v: &Value) -> Option<&str> {
    match v {
        Value::Text(t) if t.contains(':') || t.trim().contains(' ') => Some(t.as_str()),
        _ => None,
    }
}

/// RA `h:m:s` text → degrees, `(h + m/60 + s/3600)·15`; numbers pass through unchanged.
pub fn ra_degrees(v: &Value) -> Option<f64> {
    match is_sexagesimal(v) {
        // the sign applied after ·15 or before gives the same number
        Some(t) => sexagesimal_value(t).map(|h| h * 15.0),
        None => to_f64(v),
    }
}

/// DEC `d:m:s` text → degrees, negative when the text starts with `-`
/// (including `-00:30:00`); numbers pass through unchanged.
pub fn dec_degrees(v: &Value) -> Option<f64> {
    match is_sexagesimal(v) {
        Some(t) => sexagesimal_value(t),
        None => to_f64(v),
    }
}

/// astropy's hour-angle → degree factor, 15·(π/180)/(π/180) as its unit
/// scales divide: one ulp below 15.
pub const SKYCOORD_DEG_PER_HOUR: f64 = 14.999999999999998;

/// RA as `SkyCoord(f'{ra} {dec}', unit=(hourangle, deg)).ra.degree` (LRIS):
/// the value, sexagesimal or decimal, is in hours, times astropy's factor.
pub fn ra_degrees_skycoord(v: &Value) -> Option<f64> {
    let hours = match is_sexagesimal(v) {
        Some(t) => sexagesimal_value(t)?,
        None => to_f64(v)?,
    };
    Some(hours * SKYCOORD_DEG_PER_HOUR)
}

/// Degrees → `HH:MM:SS.ss` (RA) or `±DD:MM:SS.s` (DEC) with zero-padded,
/// carried seconds (never `60`).
pub fn sexagesimal(deg: f64, ra: bool) -> String {
    let neg = deg < 0.0;
    let v = if ra { deg.rem_euclid(360.0) / 15.0 } else { deg.abs() };
    let decimals = if ra { 2 } else { 1 };
    let scale = 10f64.powi(decimals);
    let total = (v * 3600.0 * scale).round() as i64;
    let units = 3600 * scale as i64;
    let (d, rem) = (total / units, total % units);
    let (m, rem) = (rem / (60 * scale as i64), rem % (60 * scale as i64));
    let s = rem as f64 / scale;
    let sec = format!("{:0width$.prec$}", s, width = 3 + decimals as usize, prec = decimals as usize);
    if ra {
        format!("{:02}:{:02}:{sec}", d % 24, m)
    } else {
        format!("{}{:02}:{:02}:{sec}", if neg { "-" } else { "+" }, d, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_keep_the_sign_of_minus_zero() {
        assert_eq!(dec_degrees(&Value::Text("-00:30:00".into())), Some(-0.5));
        assert_eq!(dec_degrees(&Value::Text("+45:12:00.0".into())), Some(45.2));
        assert_eq!(dec_degrees(&Value::Text("-12 30 00".into())), Some(-12.5));
        assert_eq!(ra_degrees(&Value::Text("02:13:45.00".into())), Some(33.43750000000001), "as Python sums it");
        assert_eq!(ra_degrees(&Value::Float(33.4375)), Some(33.4375));
        assert_eq!(dec_degrees(&Value::Text("junk".into())), None);
    }

    #[test]
    fn degrees_print_as_the_reference_prints_them() {
        // (h + m/60 + s/3600)·15 and d + m/60 + s/3600, as common.py sums;
        // whole arc-seconds first ((h·3600 + m·60 + s)/240) print
        // 155.12687499999998, 359.9999583333334, 15.512666666666666,
        // -12.582416666666665 and 45.20925
        let py = |x: Option<f64>| x.map(crate::pyfmt::py_repr).unwrap_or_default();
        let ra = |t: &str| py(ra_degrees(&Value::Text(t.into())));
        let dec = |t: &str| py(dec_degrees(&Value::Text(t.into())));
        assert_eq!(ra("10:20:30.45"), "155.126875");
        assert_eq!(ra("23:59:59.99"), "359.9999583333333");
        assert_eq!(ra("01:02:03.04"), "15.512666666666668");
        assert_eq!(dec("-12:34:56.7"), "-12.582416666666667");
        assert_eq!(dec("+45:12:33.3"), "45.209250000000004");
        // astropy (LRIS): hours times 14.999999999999998
        assert_eq!(py(ra_degrees_skycoord(&Value::Text("01:00:00".into()))), "14.999999999999998");
        assert_eq!(py(ra_degrees_skycoord(&Value::Text("10:20:30.45".into()))), "155.12687499999998");
    }

    #[test]
    fn sexagesimal_never_prints_sixty() {
        assert_eq!(sexagesimal(33.4375, true), "02:13:45.00");
        assert_eq!(sexagesimal(-0.5, false), "-00:30:00.0");
        // 59.999… seconds carry into the minutes
        assert_eq!(sexagesimal(10.0 + 59.0 / 60.0 + 59.99999 / 3600.0, false), "+11:00:00.0");
    }
}
