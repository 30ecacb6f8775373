//! The metadata table `<KOAID>.metadata.table` (IPAC ASCII, spec pipeline.md
//! §13): one column per keyword-table row, values from the written lev-0
//! primary header (else extra metadata), each value run through the null,
//! type, width and range rules, printed as Python prints it.
//!
//! Reference defects #31 and #2 fixed: a blank InputFormat validates against
//! the column's datatype (a value that fails becomes null with
//! `MD_FORMAT_ERROR`, or fails the step when nulls are not allowed); a
//! truncated double is written as truncated; discrete checks compare text; a
//! `time` without fractional seconds is valid.

use std::collections::BTreeMap;

use koa_pyfmt::{parse_float, py_repr};
use regex::Regex;

use super::keywords::{KeywordDef, KeywordTable};
use crate::fits::{Card, HValue};

/// A metadata warning (status code + text), replayed as job warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaWarning {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct MetaError(pub String);

/// What the metadata step writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub text: String,
    pub warnings: Vec<MetaWarning>,
    /// Final text of each column (for the daemon's reports).
    pub values: BTreeMap<String, String>,
}

/// Python's view of a value for the metadata pipeline.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl V {
    fn py_str(&self) -> String {
        match self {
            V::Null => "null".into(),
            V::Text(s) => s.clone(),
            V::Int(i) => i.to_string(),
            V::Float(f) => py_repr(*f),
            V::Bool(b) => if *b { "True".into() } else { "False".into() },
        }
    }
}

fn from_header(v: &HValue) -> V {
    match v {
        HValue::Undefined => V::Null,
        HValue::Text(s) => V::Text(s.clone()),
        HValue::Int(i) => V::Int(*i),
        HValue::Float(f) => V::Float(*f),
        HValue::Logical(b) => V::Bool(*b),
    }
}

/// Angle in degrees: a number or sexagesimal `d:m:s` / `d m s` text.
pub fn angle_degrees(v: &str) -> Option<f64> {
    let t = v.trim();
    if let Some(f) = parse_float(t) {
        return f.is_finite().then_some(f);
    }
    let parts: Vec<&str> = t.split([':', ' ']).filter(|p| !p.is_empty()).collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let neg = parts[0].trim_start().starts_with('-');
    let d: f64 = parts[0].parse().ok()?;
    let m: f64 = parts[1].parse().ok()?;
    let s: f64 = parts.get(2).map(|s| s.parse()).unwrap_or(Ok(0.0)).ok()?;
    if !(0.0..60.0).contains(&m) || !(0.0..60.0).contains(&s) {
        return None;
    }
    let mag = d.abs() + m / 60.0 + s / 3600.0;
    Some(if neg { -mag } else { mag })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn is_time(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return false;
    }
    let two = |p: &str, max: u32| p.len() == 2 && p.parse::<u32>().is_ok_and(|v| v <= max);
    let (sec, frac) = parts[2].split_once('.').unwrap_or((parts[2], "0"));
    two(parts[0], 23) && two(parts[1], 59) && two(sec, 59) && !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit())
}

fn py_int(v: &V) -> Option<i64> {
    match v {
        V::Int(i) => Some(*i),
        V::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        V::Bool(b) => Some(*b as i64),
        V::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn py_float(v: &V) -> Option<f64> {
    match v {
        V::Int(i) => Some(*i as f64),
        V::Float(f) => Some(*f),
        V::Bool(b) => Some(*b as i64 as f64),
        V::Text(s) => parse_float(s),
        V::Null => None,
    }
}

/// Whether a value passes the format check of `kind`.
fn valid_as(kind: &str, v: &V) -> bool {
    let s = v.py_str();
    match kind {
        "date" => is_date(&s),
        "time" => is_time(&s),
        "angle" => angle_degrees(&s).is_some(),
        "integer" => py_int(v).is_some(),
        "double" => py_float(v).is_some(),
        "datetime" => chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S").is_ok(),
        _ => true,
    }
}

/// Cut a double's text to `width`, keeping an exponent intact.
fn truncate_double(s: &str, width: usize) -> String {
    match s.find(['e', 'E']) {
        Some(i) => {
            let exp = &s[i..];
            let keep = width.saturating_sub(exp.len()).min(i);
            format!("{}{}", &s[..keep], exp)
        }
        None => s.chars().take(width).collect(),
    }
}

struct Ctx<'a> {
    warnings: &'a mut Vec<MetaWarning>,
}

impl Ctx<'_> {
    fn warn(&mut self, code: &'static str, message: String) {
        self.warnings.push(MetaWarning { code, message });
    }
}

/// One column's text (spec §13.3 steps 1–9).
fn render(def: &KeywordDef, raw: Option<V>, unreadable: bool, cx: &mut Ctx) -> Result<String, MetaError> {
    let kw = &def.keyword;
    // 1–2: unreadable / undefined / NaN spellings → null
    let mut v = if unreadable {
        cx.warn("MD_HEADER_KEYWORD_UNREADABLE", format!("{kw}: value could not be read"));
        V::Null
    } else {
        raw.unwrap_or(V::Null)
    };
    match &v {
        V::Text(s) if s == "NaN" || s == "-NaN" || s == "#### Error ###" || s == "null" => v = V::Null,
        V::Float(f) if f.is_nan() => v = V::Null,
        _ => {}
    }
    // 3: EQUINOX null → 0
    if kw == "EQUINOX" && v == V::Null {
        v = V::Int(0);
    }
    // 4: nulls
    let empty = matches!(&v, V::Text(s) if s.is_empty());
    if v == V::Null || empty {
        if !def.nulls_allowed {
            return Err(MetaError(format!("{kw} is null but nulls are not allowed")));
        }
        return Ok(if empty { String::new() } else { "null".into() });
    }
    // 5: logicals in char columns
    if def.datatype == "char" {
        if let V::Bool(b) = v {
            v = V::Text(if b { "T" } else { "F" }.into());
        }
    }
    // 6: format validation
    if def.validate {
        let kind = def.input_format.clone().unwrap_or_else(|| def.datatype.clone());
        if !valid_as(&kind, &v) {
            let msg = format!("{kw} val '{}' is not type {kind}", v.py_str());
            if def.input_format.is_some() {
                return Err(MetaError(msg));
            }
            cx.warn("MD_FORMAT_ERROR", msg);
            if !def.nulls_allowed {
                return Err(MetaError(format!("{kw}: invalid value and nulls are not allowed")));
            }
            return Ok("null".into());
        }
    }
    // 7: width
    let text = v.py_str();
    let mut truncated = None;
    if text.chars().count() > def.width {
        if def.datatype == "double" {
            truncated = Some(truncate_double(&text, def.width));
        } else {
            cx.warn(
                "MD_TRUNCATE",
                format!(
                    "char length of {} > col size of {} ({kw}={text}).  TRUNCATING.",
                    text.chars().count(),
                    def.width
                ),
            );
            v = V::Text(text.chars().take(def.width).collect());
        }
    }
    // 8: conversion
    let (out, numeric) = match def.datatype.as_str() {
        "integer" => match py_int(&v) {
            Some(i) => (i.to_string(), Some(i as f64)),
            None => return convert_failure(def, &v, cx),
        },
        "double" => match py_float(&v) {
            Some(f) => (truncated.clone().unwrap_or_else(|| py_repr(f)), Some(f)),
            None => return convert_failure(def, &v, cx),
        },
        _ => (v.py_str(), None),
    };
    // 9: value checks
    if def.check {
        check_values(def, &v, numeric, cx);
    }
    Ok(out)
}

fn convert_failure(def: &KeywordDef, v: &V, cx: &mut Ctx) -> Result<String, MetaError> {
    let msg = format!("{} val '{}' is not type {}", def.keyword, v.py_str(), def.datatype);
    cx.warn("MD_FORMAT_ERROR", msg);
    if def.nulls_allowed { Ok("null".into()) } else { Err(MetaError(format!("{}: invalid value and nulls are not allowed", def.keyword))) }
}

fn check_values(def: &KeywordDef, v: &V, numeric: Option<f64>, cx: &mut Ctx) {
    let kw = &def.keyword;
    let shown = v.py_str();
    if def.input_format.as_deref() == Some("angle") && def.min.is_some() {
        let Some(a) = angle_degrees(&shown) else { return };
        if let Some(min) = def.min.as_deref().and_then(angle_degrees) {
            if a < min {
                cx.warn("MD_RANGE_ERROR", format!("{kw} val {shown} < minVal {}", def.min.as_deref().unwrap_or("")));
            }
        }
        if let Some(max) = def.max.as_deref().and_then(angle_degrees) {
            if a > max {
                cx.warn("MD_RANGE_ERROR", format!("{kw} val {shown} > maxVal {}", def.max.as_deref().unwrap_or("")));
            }
        }
        return;
    }
    if let Some(x) = numeric {
        if let Some(min) = def.min.as_deref().and_then(parse_float).filter(|m| !m.is_nan()) {
            if x < min {
                cx.warn("MD_RANGE_ERROR", format!("{kw} val {shown} < minVal {}", def.min.as_deref().unwrap_or("")));
            }
        }
        if let Some(max) = def.max.as_deref().and_then(parse_float).filter(|m| !m.is_nan()) {
            if x > max {
                cx.warn("MD_RANGE_ERROR", format!("{kw} val {shown} > maxVal {}", def.max.as_deref().unwrap_or("")));
            }
        }
    }
    if let Some(d) = &def.discrete {
        let allowed: Vec<String> = match serde_json::from_str::<Vec<serde_json::Value>>(d) {
            Ok(list) => list
                .into_iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
            Err(_) => d.split(',').map(str::to_string).collect(),
        };
        let allowed: Vec<String> = allowed.iter().map(|s| s.trim().to_lowercase()).collect();
        if !allowed.contains(&shown.trim().to_lowercase()) {
            cx.warn("MD_DISCRETE_VAL_ERROR", format!("{kw} val \"{shown}\" not in {allowed:?}"));
        }
    }
}

/// Header keywords that never need a table entry.
const ALWAYS_SKIP: [&str; 5] = ["SIMPLE", "COMMENT", "PROGTL1", "PROGTL2", "PROGTL3"];

/// Build the metadata table.
/// `header`: primary cards of the written lev-0 file; `extra`: extra metadata;
/// `keyskips`: instrument keywords exempt from the DEV existence warnings.
pub fn build(
    table: &KeywordTable,
    header: &[Card],
    extra: &[(String, HValue)],
    keyskips: &[String],
    dev: bool,
) -> Result<Metadata, MetaError> {
    let mut warnings = Vec::new();
    let mut cx = Ctx { warnings: &mut warnings };
    let first = |key: &str| header.iter().find(|c| !c.commentary && c.key == key);
    let mut cells = Vec::with_capacity(table.defs.len());
    let mut values = BTreeMap::new();
    for def in &table.defs {
        let (raw, unreadable) = match first(&def.keyword) {
            Some(c) => (Some(from_header(&c.value)), c.unparsable),
            None => (extra.iter().find(|(k, _)| *k == def.keyword).map(|(_, v)| from_header(v)), false),
        };
        if dev && raw.is_none() && !def.nulls_allowed && def.keyword != "PROGTITL" && def.keyword != "PROPINT" {
            cx.warn("MD_HEADER_KEYWORD_MISSING", format!("{} is in the keyword table but not in the header", def.keyword));
        }
        let text = render(def, raw, unreadable, &mut cx)?;
        values.insert(def.keyword.clone(), text.clone());
        cells.push(text);
    }
    if dev {
        let skips: Vec<Regex> = ALWAYS_SKIP
            .iter()
            .map(|s| s.to_string())
            .chain(keyskips.iter().cloned())
            .filter_map(|s| Regex::new(&s).ok())
            .collect();
        for c in header.iter().filter(|c| !c.commentary && !c.key.is_empty()) {
            let known = table.defs.iter().any(|d| d.keyword == c.key);
            if !known && !skips.iter().any(|r| r.is_match(&c.key)) {
                cx.warn("MD_KEYWORD_FORMAT_UNDEFINED", c.key.clone());
            }
        }
    }
    let widths: Vec<usize> = table.defs.iter().map(|d| d.width.max(d.keyword.chars().count())).collect();
    let mut text = String::new();
    let row = |text: &mut String, f: &dyn Fn(&KeywordDef) -> String| {
        for (d, w) in table.defs.iter().zip(&widths) {
            text.push('|');
            text.push_str(&format!("{:<w$}", f(d), w = w));
        }
        text.push_str("|\n");
    };
    row(&mut text, &|d| d.keyword.clone());
    row(&mut text, &|d| d.datatype.clone());
    row(&mut text, &|_| String::new());
    row(&mut text, &|d| if d.nulls_allowed { "null".into() } else { String::new() });
    for (cell, w) in cells.iter().zip(&widths) {
        text.push(' ');
        text.push_str(&format!("{:<w$}", cell, w = w));
    }
    text.push('\n');
    Ok(Metadata { text, warnings, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table(rows: &str) -> KeywordTable {
        let head = "FITSKeyword\tDBKeyword\tSource\tMetadataDatatype\tUnits\tDBDatatype\tMetadataWidth\tNullsAllowed\tValidateFormat\tCheckValues\tInputFormat\tOutputFormat\tSpecialIngest\tMinValue\tMaxValue\tDiscreteValues\tMetadata\r\n";
        let koaid = "KOAID\tKOAID\tKOA\tchar\t\t\t32\tN\tY\tY\t\t\t\t\t\t\tY\r\n";
        KeywordTable::parse(&format!("{head}{koaid}{rows}"), "NIRES", Path::new("t")).unwrap()
    }

    fn card(k: &str, v: HValue) -> Card {
        Card::new(k, v, "")
    }

    #[test]
    fn layout_and_python_values() {
        let t = table(
            "AIRMASS\tA\tDCS\tdouble\t\t\t24\tY\tY\tN\t\t\t\t\t\t\tY\r\nEXTEND\tE\tX\tchar\t\t\t8\tY\tY\tN\t\t\t\t\t\t\tY\r\nNAXIS1\tN\tX\tinteger\t\t\t16\tY\tY\tN\t\t\t\t\t\t\tY\r\nGONE\tG\tX\tchar\t\t\t4\tY\tY\tN\t\t\t\t\t\t\tY\r\n",
        );
        let h = vec![
            card("KOAID", HValue::Text("NR.20190615.12571.36.fits".into())),
            card("AIRMASS", HValue::Float(1.0)),
            card("EXTEND", HValue::Logical(true)),
            card("NAXIS1", HValue::Int(2048)),
        ];
        let m = build(&t, &h, &[], &[], false).unwrap();
        let lines: Vec<&str> = m.text.lines().collect();
        assert_eq!(lines[0], "|KOAID                           |AIRMASS                 |EXTEND  |NAXIS1          |GONE|");
        assert_eq!(lines[1], "|char                            |double                  |char    |integer         |char|");
        assert_eq!(lines[3], "|                                |null                    |null    |null            |null|");
        assert_eq!(lines[4], " NR.20190615.12571.36.fits        1.0                      T        2048             null");
        assert_eq!(lines[4].len() + 1, lines[0].len());
    }

    /// Reference defect #32: the existence check named the wrong keyword.
    /// Each DEV warning names the keyword it is about.
    #[test]
    fn existence_warnings_name_their_keyword() {
        let t = table("WANTED\tW\tX\tchar\t\t\t8\tN\tY\tN\t\t\t\t\t\t\tY\r\nOTHER\tO\tX\tchar\t\t\t8\tY\tY\tN\t\t\t\t\t\t\tY\r\n");
        let h = vec![
            card("KOAID", HValue::Text("X.fits".into())),
            card("OTHER", HValue::Text("o".into())),
            card("STRANGER", HValue::Text("s".into())),
        ];
        let mut cx_warnings = Vec::new();
        // WANTED is required: build fails, but first the DEV check names it
        let err = build(&t, &h, &[], &[], true).err().expect("WANTED is required");
        assert!(err.to_string().contains("WANTED"), "{err}");
        let t = table("WANTED\tW\tX\tchar\t\t\t8\tY\tY\tN\t\t\t\t\t\t\tY\r\nOTHER\tO\tX\tchar\t\t\t8\tY\tY\tN\t\t\t\t\t\t\tY\r\n");
        let m = build(&t, &h, &[], &[], true).unwrap();
        for w in &m.warnings {
            cx_warnings.push((w.code, w.message.clone()));
        }
        assert_eq!(cx_warnings, vec![("MD_KEYWORD_FORMAT_UNDEFINED", "STRANGER".to_string())], "only the header keyword the table lacks, by name");
    }

    #[test]
    fn nulls_not_allowed_fail_the_step() {
        let t = table("NEED\tN\tX\tchar\t\t\t8\tN\tY\tN\t\t\t\t\t\t\tY\r\n");
        let h = vec![card("KOAID", HValue::Text("X.fits".into()))];
        assert!(build(&t, &h, &[], &[], false).is_err());
    }

    #[test]
    fn truncation_and_checks() {
        let t = table(
            "LONG\tL\tX\tchar\t\t\t4\tY\tY\tN\t\t\t\t\t\t\tY\r\nD\tD\tX\tdouble\t\t\t10\tY\tY\tN\t\t\t\t\t\t\tY\r\nR\tR\tX\tinteger\t\t\t8\tY\tY\tY\t\t\t\t0\t10\t\tY\r\nC\tC\tX\tchar\t\t\t8\tY\tY\tY\t\t\t\t\t\t[\"a\", \"b\"]\tY\r\nU\tU\tX\tchar\t\t\t12\tY\tY\tN\ttime\t\t\t\t\t\tY\r\n",
        );
        let h = vec![
            card("KOAID", HValue::Text("X.fits".into())),
            card("LONG", HValue::Text("abcdefgh".into())),
            card("D", HValue::Float(-4.16500198582894e-05)),
            card("R", HValue::Int(11)),
            card("C", HValue::Text("c".into())),
            card("U", HValue::Text("12:00:00".into())),
        ];
        let m = build(&t, &h, &[], &[], false).unwrap();
        assert_eq!(m.values["LONG"], "abcd");
        assert_eq!(m.values["D"], "-4.165e-05", "truncated doubles stay truncated (defect #31)");
        let codes: Vec<_> = m.warnings.iter().map(|w| w.code).collect();
        assert_eq!(codes, vec!["MD_TRUNCATE", "MD_RANGE_ERROR", "MD_DISCRETE_VAL_ERROR"]);
        assert_eq!(m.values["U"], "12:00:00", "time without fraction is valid (defect #2)");
    }

    #[test]
    fn blank_input_format_validates_by_datatype() {
        let t = table("N\tN\tX\tinteger\t\t\t8\tY\tY\tN\t\t\t\t\t\t\tY\r\n");
        let h = vec![card("KOAID", HValue::Text("X.fits".into())), card("N", HValue::Text("abc".into()))];
        let m = build(&t, &h, &[], &[], false).unwrap();
        assert_eq!(m.values["N"], "null");
        assert_eq!(m.warnings[0].code, "MD_FORMAT_ERROR");
    }

    #[test]
    fn angles() {
        assert_eq!(angle_degrees("45.5"), Some(45.5));
        assert_eq!(angle_degrees("-00:30:00"), Some(-0.5));
        assert_eq!(angle_degrees("10 30 00"), Some(10.5));
        assert_eq!(angle_degrees("x"), None);
    }
}
