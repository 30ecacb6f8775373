//! koa-pyfmt — Python numeric semantics that archived values depend on (spec pipeline.md §0):
//! `repr(float)`, `round(x, n)` half-to-even on the exact binary value, and
//! floor modulo.

/// Python's `repr(float)` / `str(float)`: the shortest digit string that
/// round-trips; fixed notation for decimal exponents −4 ≤ e < 16 (always with
/// a fractional digit), otherwise scientific with a signed two-digit exponent.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-4.16500198582894e-5".
    let s = format!("{x:e}");
    let (mant, exp) = s.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

/// Python `round(x, n)` for n ≥ 0: correctly rounded, ties to even on the
/// exact binary value.
pub fn round_to(x: f64, n: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.n$}").parse().unwrap_or(x)
}

/// Python `round(x, -k)`: round to a multiple of 10^k, ties to even.
pub fn round_tens(x: f64, k: u32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let m = 10f64.powi(k as i32);
    let rem = x % m; // exact in IEEE arithmetic, sign of x
    let base = x - rem;
    let half = m / 2.0;
    let away = base + m * x.signum();
    if rem.abs() > half {
        away
    } else if rem.abs() < half {
        base
    } else {
        // tie: pick the even multiple
        if ((base / m).abs() % 2.0) == 0.0 { base } else { away }
    }
}

/// Python `round(x)` → int (ties to even).
pub fn round_int(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// Python `a % b` for floats: result has the sign of the divisor.
pub fn floor_mod(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && (r < 0.0) != (b < 0.0) { r + b } else { r }
}

/// Parse like Python `float(text)`: surrounding blanks allowed, `nan`/`inf` spelled out.
pub fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E' | b'_')) {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// Parse like Python `int(text)` (decimal integers only).
pub fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim().replace('_', "");
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        let cases = [
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (1e-05, "1e-05"),
            (-4.16500198582894e-05, "-4.16500198582894e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (58649.1455019061, "58649.1455019061"),
            (0.15, "0.15"),
            (-0.023006088939447, "-0.023006088939447"),
            (2700.0, "2700.0"),
            (0.5, "0.5"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (x, want) in cases {
            assert_eq!(py_repr(x), want, "repr({x:e})");
        }
    }

    #[test]
    fn round_is_half_even_on_exact_binary() {
        assert_eq!(round_to(0.125, 2), 0.12);
        assert_eq!(round_to(0.375, 2), 0.38);
        assert_eq!(round_to(2.675, 2), 2.67); // 2.67499999… in binary
        assert_eq!(round_to(2713.6749, 2), 2713.67);
        assert_eq!(round_tens(16955.0, 1), 16960.0);
        assert_eq!(round_tens(16945.0, 1), 16940.0);
        assert_eq!(round_tens(16944.9, 1), 16940.0);
        assert_eq!(round_tens(-25.0, 1), -20.0);
        assert_eq!(round_tens(-26.0, 1), -30.0);
        assert_eq!(round_int(2.5), 2);
        assert_eq!(round_int(3.5), 4);
        assert_eq!(round_int(-2.5), -2);
    }

    #[test]
    fn floor_mod_has_divisor_sign() {
        assert_eq!(floor_mod(-30.0, 360.0), 330.0);
        assert_eq!(floor_mod(390.0, 360.0), 30.0);
        assert_eq!(floor_mod(30.0, -360.0), -330.0);
    }

    #[test]
    fn parse_float_is_python_like() {
        assert_eq!(parse_float(" 1.5 "), Some(1.5));
        assert_eq!(parse_float("1E3"), Some(1000.0));
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("4.2"), None);
    }
}
