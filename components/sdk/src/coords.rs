//! Sexagesimal coordinates shared by the WCS rules (KCWI, NIRC2, LRIS, and
//! `convert_ra_dec_to_degrees` of the reference). Reference defect #30 fixed:
//! the sign of `-00:mm:ss` is kept, and sexagesimal text rounds its seconds
//! without ever printing 60.

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

/// RA `h:m:s` text → degrees (15 · hours); numbers pass through unchanged.
pub fn ra_degrees(v: &Value) -> Option<f64> {
    match v {
        Value::Text(t) if t.contains(':') || t.trim().contains(' ') => {
            let (neg, h, m, s) = split(t)?;
            // whole arc-seconds first keeps exact inputs exact (02:13:45 → 33.4375)
            let deg = (h * 3600.0 + m * 60.0 + s) / 240.0;
            Some(if neg { -deg } else { deg })
        }
        other => to_f64(other),
    }
}

/// DEC `d:m:s` text → degrees, negative when the text starts with `-`
/// (including `-00:30:00`); numbers pass through unchanged.
pub fn dec_degrees(v: &Value) -> Option<f64> {
    match v {
        Value::Text(t) if t.contains(':') || t.trim().contains(' ') => {
            let (neg, d, m, s) = split(t)?;
            let deg = (d * 3600.0 + m * 60.0 + s) / 3600.0;
            Some(if neg { -deg } else { deg })
        }
        other => to_f64(other),
    }
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
        assert_eq!(ra_degrees(&Value::Text("02:13:45.00".into())), Some(33.4375));
        assert_eq!(ra_degrees(&Value::Float(33.4375)), Some(33.4375));
        assert_eq!(dec_degrees(&Value::Text("junk".into())), None);
    }

    #[test]
    fn sexagesimal_never_prints_sixty() {
        assert_eq!(sexagesimal(33.4375, true), "02:13:45.00");
        assert_eq!(sexagesimal(-0.5, false), "-00:30:00.0");
        // 59.999… seconds carry into the minutes
        assert_eq!(sexagesimal(10.0 + 59.0 / 60.0 + 59.99999 / 3600.0, false), "+11:00:00.0");
    }
}
