//! Decoding of ASCII and binary table HDUs into display strings, as Python
//! prints the values astropy returns (`str()` of numpy scalars and arrays),
//! for the extension tables of spec pipeline.md §15. Variable-length (P/Q)
//! columns are read from the heap.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use koa_pyfmt::py_repr;

use super::{Hdu, HduKind};

/// One table column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub tform: String,
}

/// A decoded table: columns and rows of display strings.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("HDU {0} is not a table")]
    NotATable(usize),
    #[error("column {col}: unsupported TFORM {tform:?}")]
    BadForm { col: usize, tform: String },
    #[error("reading table data: {0}")]
    Io(#[from] std::io::Error),
}

/// `str(numpy.float32(x))`: shortest float32 digits, Python notation rules.
pub fn py_repr_f32(x: f32) -> String {
    if !x.is_finite() || x == 0.0 {
        return py_repr(x as f64);
    }
    // shortest round-trip digits for f32, then Python's layout rules
    let s = format!("{x:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = mant.strip_prefix('-').map_or(("", mant), |m| ("-", m));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        // the f64 nearest to the short decimal prints with the same digits
        py_repr(format!("{sign}{mant}e{exp}").parse().unwrap_or(0.0))
    } else {
        let mut out = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()));
        out
    }
}

/// numpy array element formatting (floats print `1.` for 1.0).
fn array_str(items: Vec<String>) -> String {
    format!("[{}]", items.join(" "))
}

fn np_float_elem(s: String) -> String {
    s.strip_suffix(".0").map(|t| format!("{t}.")).unwrap_or(s)
}

/// (repeat, type letter, rest) of a binary TFORM like `20A`, `1E`, `1PJ(5)`.
fn parse_bform(tform: &str) -> Option<(usize, char, String)> {
    let t = tform.trim();
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &t[digits.len()..];
    let ty = rest.chars().next()?;
    let repeat = if digits.is_empty() { 1 } else { digits.parse().ok()? };
    Some((repeat, ty.to_ascii_uppercase(), rest[1..].to_string()))
}

fn elem_size(ty: char) -> Option<usize> {
    Some(match ty {
        'L' | 'B' | 'A' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' => 8,
        'M' => 16,
        _ => return None,
    })
}

/// Display strings of `n` elements of type `ty` at `bytes`.
fn decode(ty: char, n: usize, bytes: &[u8], scale: (f64, f64)) -> String {
    let scaled = scale != (1.0, 0.0);
    let ints = |vals: Vec<i64>| -> Vec<String> {
        vals.into_iter()
            .map(|v| if scaled { py_repr(v as f64 * scale.0 + scale.1) } else { v.to_string() })
            .collect()
    };
    let items: Vec<String> = match ty {
        'A' => {
            let s: String = bytes[..n.min(bytes.len())].iter().take_while(|b| **b != 0).map(|b| *b as char).collect();
            return s.trim_end().to_string();
        }
        'L' => bytes[..n].iter().map(|b| if *b == b'T' { "True".into() } else { "False".into() }).collect(),
        'B' => ints(bytes[..n].iter().map(|b| *b as i64).collect()),
        'I' => ints(bytes.chunks(2).take(n).map(|c| i16::from_be_bytes([c[0], c[1]]) as i64).collect()),
        'J' => ints(bytes.chunks(4).take(n).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()),
        'K' => ints(bytes.chunks(8).take(n).map(|c| i64::from_be_bytes(c.try_into().unwrap_or([0; 8]))).collect()),
        'E' => bytes
            .chunks(4)
            .take(n)
            .map(|c| {
                let v = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                if scaled { py_repr(v as f64 * scale.0 + scale.1) } else { py_repr_f32(v) }
            })
            .collect(),
        'D' => bytes
            .chunks(8)
            .take(n)
            .map(|c| py_repr(f64::from_be_bytes(c.try_into().unwrap_or([0; 8])) * scale.0 + scale.1))
            .collect(),
        'C' => bytes
            .chunks(8)
            .take(n)
            .map(|c| {
                let re = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                let im = f32::from_be_bytes([c[4], c[5], c[6], c[7]]);
                format!("({}{}{}j)", py_repr_f32(re), if im < 0.0 { "" } else { "+" }, py_repr_f32(im))
            })
            .collect(),
        'M' => bytes
            .chunks(16)
            .take(n)
            .map(|c| {
                let re = f64::from_be_bytes(c[..8].try_into().unwrap_or([0; 8]));
                let im = f64::from_be_bytes(c[8..].try_into().unwrap_or([0; 8]));
                format!("({}{}{}j)", py_repr(re), if im < 0.0 { "" } else { "+" }, py_repr(im))
            })
            .collect(),
        _ => vec![],
    };
    if n == 1 {
        items.into_iter().next().unwrap_or_default()
    } else if matches!(ty, 'E' | 'D') {
        array_str(items.into_iter().map(np_float_elem).collect())
    } else {
        array_str(items)
    }
}

fn card_f64(hdu: &Hdu, key: &str, dflt: f64) -> f64 {
    match hdu.value(key) {
        Some(super::HValue::Float(f)) => *f,
        Some(super::HValue::Int(i)) => *i as f64,
        _ => dflt,
    }
}

/// Read and decode a table HDU.
pub fn read_table(f: &mut File, hdu: &Hdu) -> Result<Table, TableError> {
    if !matches!(hdu.kind, HduKind::AsciiTable | HduKind::BinaryTable) {
        return Err(TableError::NotATable(hdu.index));
    }
    let row_len = hdu.int("NAXIS1").unwrap_or(0).max(0) as usize;
    let nrows = hdu.int("NAXIS2").unwrap_or(0).max(0) as usize;
    let ncols = hdu.int("TFIELDS").unwrap_or(0).max(0) as usize;
    let columns: Vec<Column> = (1..=ncols)
        .map(|i| Column {
            name: hdu.text(&format!("TTYPE{i}")).map(|s| s.trim().to_string()).unwrap_or_default(),
            tform: hdu.text(&format!("TFORM{i}")).map(|s| s.trim().to_string()).unwrap_or_default(),
        })
        .collect();
    let scales: Vec<(f64, f64)> =
        (1..=ncols).map(|i| (card_f64(hdu, &format!("TSCAL{i}"), 1.0), card_f64(hdu, &format!("TZERO{i}"), 0.0))).collect();
    f.seek(SeekFrom::Start(hdu.data_start))?;
    let mut data = vec![0u8; row_len * nrows];
    f.read_exact(&mut data)?;
    let heap_start = hdu.data_start + hdu.int("THEAP").map(|t| t as u64).unwrap_or((row_len * nrows) as u64);
    let mut rows = Vec::with_capacity(nrows);
    if hdu.kind == HduKind::AsciiTable {
        let starts: Vec<usize> =
            (1..=ncols).map(|i| hdu.int(&format!("TBCOL{i}")).unwrap_or(1).max(1) as usize - 1).collect();
        for r in 0..nrows {
            let row = &data[r * row_len..(r + 1) * row_len];
            let mut out = Vec::with_capacity(ncols);
            for (i, c) in columns.iter().enumerate() {
                let ty = c.tform.chars().next().unwrap_or('A').to_ascii_uppercase();
                let w: usize = c.tform[1..].split('.').next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let end = (starts[i] + w).min(row.len());
                let text: String = row[starts[i].min(end)..end].iter().map(|b| *b as char).collect();
                let t = text.trim();
                out.push(match ty {
                    'I' => t.parse::<i64>().map(|v| v.to_string()).unwrap_or_else(|_| t.to_string()),
                    'F' | 'E' | 'D' => t
                        .replace(['D', 'd'], "E")
                        .parse::<f64>()
                        .map(py_repr)
                        .unwrap_or_else(|_| t.to_string()),
                    _ => text.trim_end().to_string(),
                });
            }
            rows.push(out);
        }
        return Ok(Table { columns, rows });
    }
    // binary table: column offsets
    let mut layout = Vec::with_capacity(ncols);
    let mut off = 0usize;
    for (i, c) in columns.iter().enumerate() {
        let (repeat, ty, rest) =
            parse_bform(&c.tform).ok_or_else(|| TableError::BadForm { col: i + 1, tform: c.tform.clone() })?;
        let size = match ty {
            'X' => repeat.div_ceil(8),
            'P' => 8 * repeat.min(1),
            'Q' => 16 * repeat.min(1),
            t => repeat * elem_size(t).ok_or_else(|| TableError::BadForm { col: i + 1, tform: c.tform.clone() })?,
        };
        layout.push((off, repeat, ty, rest));
        off += size;
    }
    for r in 0..nrows {
        let row = &data[r * row_len..(r + 1) * row_len];
        let mut out = Vec::with_capacity(ncols);
        for (i, (off, repeat, ty, rest)) in layout.iter().enumerate() {
            let cell = &row[(*off).min(row.len())..];
            let s = match ty {
                'X' => {
                    let bits: Vec<String> = (0..*repeat)
                        .map(|b| if cell[b / 8] & (0x80 >> (b % 8)) != 0 { "True".into() } else { "False".into() })
                        .collect();
                    if *repeat == 1 { bits[0].clone() } else { array_str(bits) }
                }
                'P' | 'Q' => {
                    let (n, heap_off) = if *ty == 'P' {
                        (
                            u32::from_be_bytes(cell[..4].try_into().unwrap_or([0; 4])) as usize,
                            u32::from_be_bytes(cell[4..8].try_into().unwrap_or([0; 4])) as u64,
                        )
                    } else {
                        (
                            u64::from_be_bytes(cell[..8].try_into().unwrap_or([0; 8])) as usize,
                            u64::from_be_bytes(cell[8..16].try_into().unwrap_or([0; 8])),
                        )
                    };
                    let ety = rest.chars().next().unwrap_or('B').to_ascii_uppercase();
                    let esz = elem_size(ety).unwrap_or(1);
                    let mut buf = vec![0u8; n * esz];
                    f.seek(SeekFrom::Start(heap_start + heap_off))?;
                    if f.read_exact(&mut buf).is_err() {
                        buf.clear();
                    }
                    if ety == 'A' { decode('A', n, &buf, (1.0, 0.0)) } else { decode(ety, n.max(2), &buf, (1.0, 0.0)) }
                }
                t => decode(*t, *repeat, cell, scales[i]),
            };
            out.push(s);
        }
        rows.push(out);
    }
    Ok(Table { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_repr() {
        assert_eq!(py_repr_f32(0.1), "0.1");
        assert_eq!(py_repr_f32(1.5), "1.5");
        assert_eq!(py_repr_f32(100.0), "100.0");
        assert_eq!(py_repr_f32(1e20), "1e+20");
        assert_eq!(py_repr_f32(3.4028235e38), "3.4028235e+38");
        assert_eq!(py_repr_f32(-2.5e-5), "-2.5e-05");
    }

    #[test]
    fn tforms() {
        assert_eq!(parse_bform("20A"), Some((20, 'A', String::new())));
        assert_eq!(parse_bform("E"), Some((1, 'E', String::new())));
        assert_eq!(parse_bform("1PJ(5)"), Some((1, 'P', "J(5)".into())));
    }
}
