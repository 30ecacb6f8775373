//! Header values: the "usable value" rule (spec pipeline.md §0) and Python-like
//! conversions (`str()`, `float()`, `int()`) used by every instrument rule.

use crate::pyfmt::{parse_float, parse_int, py_repr};
use crate::types::Value;

/// A value is usable when it is exactly zero (0, 0.0, false), or otherwise
/// truthy, not FITS-undefined, and its trimmed lower-cased text is not
/// `nan`/`-nan`. Empty strings, missing keywords and NaN are not usable.
pub fn usable(v: &Value) -> bool {
    match v {
        Value::Undefined => false,
        Value::Logical(_) => true, // false == 0 counts as zero
        Value::Int(_) => true,
        Value::Float(f) => !f.is_nan(),
        Value::Text(s) => {
            if s.is_empty() {
                return false;
            }
            let t = s.trim().to_ascii_lowercase();
            t != "nan" && t != "-nan"
        }
    }
}

/// Python `str(value)` of the parsed value.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => py_repr(*f),
        Value::Logical(b) => if *b { "True".into() } else { "False".into() },
        Value::Undefined => String::new(),
    }
}

/// Python `float(value)`.
pub fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Text(s) => parse_float(s),
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Logical(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Undefined => None,
    }
}

/// Python `int(value)`: floats truncate toward zero, text must be an integer.
pub fn to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Text(s) => parse_int(s),
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        Value::Logical(b) => Some(*b as i64),
        _ => None,
    }
}

/// Python `value == 0` (also true for `False`).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Int(0) | Value::Logical(false) => true,
        Value::Float(f) => *f == 0.0,
        _ => false,
    }
}

/// Python equality of a header value with a number (`val == 1`); text never
/// equals a number.
pub fn eq_num(v: &Value, n: f64) -> bool {
    match v {
        Value::Int(i) => *i as f64 == n,
        Value::Float(f) => *f == n,
        Value::Logical(b) => (*b as i64) as f64 == n,
        _ => false,
    }
}

/// Python truthiness.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Text(s) => !s.is_empty(),
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Logical(b) => *b,
        Value::Undefined => false,
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i as i64)
    }
}
impl From<u64> for Value {
    fn from(i: u64) -> Self {
        Value::Int(i as i64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Logical(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes the string `null`, as the reference writes it.
    fn from(o: Option<T>) -> Self {
        match o {
            Some(v) => v.into(),
            None => Value::Text("null".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_rule() {
        assert!(usable(&Value::Int(0)));
        assert!(usable(&Value::Float(0.0)));
        assert!(usable(&Value::Logical(false)));
        assert!(usable(&Value::Text("x".into())));
        assert!(usable(&Value::Text("0".into())));
        assert!(!usable(&Value::Text("".into())));
        assert!(!usable(&Value::Text(" NaN ".into())));
        assert!(!usable(&Value::Text("-nan".into())));
        assert!(!usable(&Value::Float(f64::NAN)));
        assert!(!usable(&Value::Undefined));
        assert!(usable(&Value::Float(f64::INFINITY)));
    }

    #[test]
    fn conversions() {
        assert_eq!(to_text(&Value::Float(100.0)), "100.0");
        assert_eq!(to_text(&Value::Logical(true)), "True");
        assert_eq!(to_f64(&Value::Text(" 2.5".into())), Some(2.5));
        assert_eq!(to_i64(&Value::Float(-2.7)), Some(-2));
        assert_eq!(to_i64(&Value::Text("2.7".into())), None);
        assert!(eq_num(&Value::Logical(true), 1.0));
        assert!(!eq_num(&Value::Text("1".into()), 1.0));
    }
}
