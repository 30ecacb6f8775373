//! FITS header cards: parsing 80-character card images into typed values the
//! way astropy types them (integer, real, logical, string with trailing blanks
//! removed, undefined), CONTINUE long strings, and formatting edited cards
//! back into card images (astropy's float formatting, CONTINUE for long text).

use koa_pyfmt::py_repr;

pub const CARD: usize = 80;
pub const BLOCK: usize = 2880;

/// A header value as typed by the reader.
#[derive(Clone, Debug, PartialEq)]
pub enum HValue {
    Text(String),
    Int(i64),
    Float(f64),
    Logical(bool),
    Undefined,
}

impl HValue {
    /// Python `str()` of the value.
    pub fn py_str(&self) -> String {
        match self {
            HValue::Text(s) => s.clone(),
            HValue::Int(i) => i.to_string(),
            HValue::Float(f) => py_repr(*f),
            HValue::Logical(b) => if *b { "True".into() } else { "False".into() },
            HValue::Undefined => String::new(),
        }
    }
}

/// One logical header card (a long string may span CONTINUE card images).
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub key: String,
    pub value: HValue,
    pub comment: String,
    /// Commentary card (COMMENT, HISTORY, blank keyword, or no value indicator).
    pub commentary: bool,
    /// The value text could not be parsed (kept as text).
    pub unparsable: bool,
    /// Original card images (multiples of 80 bytes) when unchanged.
    pub raw: Option<Vec<u8>>,
}

impl Card {
    pub fn new(key: &str, value: HValue, comment: &str) -> Card {
        Card {
            key: key.to_string(),
            value,
            comment: comment.to_string(),
            commentary: false,
            unparsable: false,
            raw: None,
        }
    }

    /// The card images to write: the original bytes, or a fresh formatting.
    pub fn image(&self) -> Vec<u8> {
        match &self.raw {
            Some(r) => r.clone(),
            None => format_card(self),
        }
    }
}

/// Keywords whose cards never carry a value.
pub fn is_commentary_key(key: &str) -> bool {
    matches!(key, "COMMENT" | "HISTORY" | "")
}

fn printable(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// Whether 80 bytes look like a header card: a keyword field of the FITS
/// keyword characters (letters, digits, `-`, `_`, blanks) and no control
/// bytes. Bytes above 0x7e are allowed (astropy reads such cards too); see
/// [`is_ascii_card`].
pub fn is_card_image(bytes: &[u8]) -> bool {
    bytes.len() == CARD
        && bytes[..8].iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_'))
        && bytes[8..].iter().all(|b| !b.is_ascii_control())
}

/// Whether a card image is printable ASCII only (the standard's rule).
pub fn is_ascii_card(bytes: &[u8]) -> bool {
    printable(bytes)
}

/// Parse the value field of a card (text after `= `): value, comment, parsed-ok.
pub fn parse_value(field: &str) -> (HValue, String, bool) {
    let t = field.trim_start();
    if let Some(rest) = t.strip_prefix('\'') {
        // string: '' is an escaped quote
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if let Some((_, '\'')) = chars.peek() {
                    out.push('\'');
                    chars.next();
                    continue;
                }
                end = Some(i + 1);
                break;
            }
            out.push(c);
        }
        let (ok, after) = match end {
            Some(e) => (true, &rest[e..]),
            None => (false, ""),
        };
        let comment = after.trim_start().strip_prefix('/').map(|c| c.trim().to_string()).unwrap_or_default();
        let value = out.trim_end().to_string();
        return (HValue::Text(value), comment, ok);
    }
    let (val, comment) = match t.find('/') {
        Some(i) => (&t[..i], t[i + 1..].trim().to_string()),
        None => (t, String::new()),
    };
    let v = val.trim();
    if v.is_empty() {
        return (HValue::Undefined, comment, true);
    }
    match v {
        "T" => return (HValue::Logical(true), comment, true),
        "F" => return (HValue::Logical(false), comment, true),
        _ => {}
    }
    let is_int = {
        let d = v.strip_prefix(['+', '-']).unwrap_or(v);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    };
    if is_int {
        return match v.parse::<i64>() {
            Ok(i) => (HValue::Int(i), comment, true),
            // beyond 64 bits: keep the digits
            Err(_) => (HValue::Text(v.trim_start_matches('+').to_string()), comment, true),
        };
    }
    if let Some(f) = parse_real(v) {
        return (HValue::Float(f), comment, true);
    }
    (HValue::Text(v.to_string()), comment, false)
}

/// A FITS real: digits with an optional point and E/D exponent.
fn parse_real(v: &str) -> Option<f64> {
    let d = v.strip_prefix(['+', '-']).unwrap_or(v);
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut exp = false;
    let bytes = d.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_point && !exp => seen_point = true,
            b'E' | b'e' | b'D' | b'd' if seen_digit && !exp => {
                exp = true;
                if i + 1 < bytes.len() && (bytes[i + 1] == b'+' || bytes[i + 1] == b'-') {
                    i += 1;
                }
                if i + 1 >= bytes.len() {
                    return None;
                }
            }
            _ => return None,
        }
        i += 1;
    }
    if !seen_digit {
        return None;
    }
    v.replace(['D', 'd'], "E").parse().ok()
}

/// Parse one 80-byte card image.
pub fn parse_card(image: &[u8]) -> Card {
    let text: String = image.iter().map(|&b| if (0x20..=0x7e).contains(&b) { b as char } else { '?' }).collect();
    let head = text.get(..8).unwrap_or(&text);
    let mut key = head.trim_end().to_string();
    let mut card = Card {
        key: String::new(),
        value: HValue::Undefined,
        comment: String::new(),
        commentary: false,
        unparsable: false,
        raw: Some(image.to_vec()),
    };
    // HIERARCH keywords: "HIERARCH A B C = value"
    if key == "HIERARCH" {
        if let Some(eq) = text.find('=') {
            key = text[8..eq].trim().to_string();
            let (v, c, ok) = parse_value(&text[eq + 1..]);
            card.key = key;
            card.value = v;
            card.comment = c;
            card.unparsable = !ok;
            return card;
        }
    }
    let key_upper = key.to_ascii_uppercase();
    card.key = key_upper.clone();
    if is_commentary_key(&key_upper) || key_upper == "CONTINUE" || text.get(8..10) != Some("= ") {
        card.commentary = !key_upper.eq("CONTINUE");
        card.comment = text.get(8..).unwrap_or("").trim_end().to_string();
        if key_upper == "END" {
            card.commentary = false;
        }
        return card;
    }
    let (v, c, ok) = parse_value(&text[10..]);
    card.value = v;
    card.comment = c;
    card.unparsable = !ok;
    card
}

/// Join CONTINUE cards into the string value before them (astropy's long
/// string convention: a value ending in `&` continues on the next card).
pub fn join_continues(cards: Vec<Card>) -> Vec<Card> {
    let mut out: Vec<Card> = Vec::with_capacity(cards.len());
    for c in cards {
        if c.key == "CONTINUE" {
            if let Some(prev) = out.last_mut() {
                if let HValue::Text(s) = &prev.value {
                    if s.ends_with('&') {
                        let (v, comment, _) = parse_value(&c.comment);
                        if let HValue::Text(more) = v {
                            let mut joined = s[..s.len() - 1].to_string();
                            joined.push_str(&more);
                            prev.value = HValue::Text(joined);
                            if !comment.is_empty() {
                                if !prev.comment.is_empty() {
                                    prev.comment.push(' ');
                                }
                                prev.comment.push_str(&comment);
                            }
                            if let (Some(raw), Some(craw)) = (prev.raw.as_mut(), c.raw.as_ref()) {
                                raw.extend_from_slice(craw);
                            }
                            continue;
                        }
                    }
                }
            }
        }
        out.push(c);
    }
    out
}

/// astropy's `_format_float`: `str(value)` with an upper-case E, at most 20 characters.
pub fn format_float(f: f64) -> String {
    let mut s = py_repr(f).replace('e', "E");
    if s.len() > 20 {
        match s.find('E') {
            None => s.truncate(20),
            Some(idx) => {
                let exp = s[idx..].to_string();
                s = format!("{}{}", &s[..20 - exp.len()], exp);
            }
        }
    }
    s
}

fn pad80(mut s: String) -> Vec<u8> {
    let mut bytes: Vec<u8> = std::mem::take(&mut s).into_bytes();
    bytes.retain(|b| (0x20..=0x7e).contains(b));
    bytes.truncate(CARD);
    bytes.resize(CARD, b' ');
    bytes
}

fn ascii(s: &str) -> String {
    s.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).collect()
}

/// Format a card (possibly several images for a long string).
pub fn format_card(card: &Card) -> Vec<u8> {
    let key = ascii(&card.key).to_ascii_uppercase();
    let comment = ascii(&card.comment);
    if card.commentary {
        let mut out = Vec::new();
        let text: Vec<char> = comment.chars().collect();
        if text.is_empty() {
            return pad80(format!("{key:<8}"));
        }
        for chunk in text.chunks(72) {
            let s: String = chunk.iter().collect();
            out.extend(pad80(format!("{key:<8}{s}")));
        }
        return out;
    }
    let prefix = if key.len() > 8 || key.contains(' ') {
        format!("HIERARCH {key} = ")
    } else {
        format!("{key:<8}= ")
    };
    let value = match &card.value {
        HValue::Text(s) => {
            let s = ascii(s);
            let escaped = s.replace('\'', "''");
            let room = CARD - prefix.len() - 2;
            if escaped.len() <= room {
                format!("'{:<8}'", escaped)
            } else {
                return format_long_string(&prefix, &escaped, &comment);
            }
        }
        HValue::Int(i) => format!("{i:>20}"),
        HValue::Float(f) => format!("{:>20}", format_float(*f)),
        HValue::Logical(b) => format!("{:>20}", if *b { "T" } else { "F" }),
        HValue::Undefined => " ".repeat(20),
    };
    let mut line = format!("{prefix}{value}");
    if !comment.is_empty() && line.len() + 3 < CARD {
        line.push_str(" / ");
        line.push_str(&comment);
    }
    pad80(line)
}

/// astropy's CONTINUE convention for strings longer than one card.
fn format_long_string(prefix: &str, escaped: &str, comment: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let chars: Vec<char> = escaped.chars().collect();
    let first = CARD - prefix.len() - 3; // quotes + '&'
    let mut pos = 0;
    let mut head = true;
    while pos < chars.len() {
        let room = if head { first } else { CARD - 10 - 3 };
        let mut end = (pos + room).min(chars.len());
        // never split an escaped quote pair
        if end < chars.len() && chars[end - 1] == '\'' && chars[end] == '\'' {
            end -= 1;
        }
        let piece: String = chars[pos..end].iter().collect();
        // the last piece continues too when a comment card follows
        let last = end >= chars.len() && comment.is_empty();
        let text = if last { format!("'{piece}'") } else { format!("'{piece}&'") };
        let line = if head { format!("{prefix}{text}") } else { format!("CONTINUE  {text}") };
        out.extend(pad80(line));
        head = false;
        pos = end;
    }
    if !comment.is_empty() {
        out.extend(pad80(format!("CONTINUE  '' / {comment}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> Vec<u8> {
        let mut b = s.as_bytes().to_vec();
        b.resize(80, b' ');
        b
    }

    #[test]
    fn parses_typed_values_like_astropy() {
        let c = parse_card(&img("AIRMASS =     1.41291034446565 / air mass"));
        assert_eq!(c.value, HValue::Float(1.41291034446565));
        assert_eq!(c.comment, "air mass");
        assert_eq!(parse_card(&img("NAXIS1  =                 2048")).value, HValue::Int(2048));
        assert_eq!(parse_card(&img("EXTEND  =                    T")).value, HValue::Logical(true));
        assert_eq!(parse_card(&img("CHNAME9 = ' TD9 T23 Camera front' / x")).value, HValue::Text(" TD9 T23 Camera front".into()));
        assert_eq!(parse_card(&img("OBJECT  = 'it''s   '")).value, HValue::Text("it's".into()));
        assert_eq!(parse_card(&img("CD1_1   = -4.16500198582894E-05")).value, HValue::Float(-4.16500198582894e-05));
        assert_eq!(parse_card(&img("X       = 1.0D2")).value, HValue::Float(100.0));
        assert_eq!(parse_card(&img("BLANKV  =          / undefined")).value, HValue::Undefined);
        let c = parse_card(&img("COMMENT = this is a comment"));
        assert!(c.commentary);
        assert_eq!(c.comment, "= this is a comment");
        let c = parse_card(&img("BAD     = abc def"));
        assert!(c.unparsable);
        let c = parse_card(&img("HIERARCH ESO DET CHIP = 'x' / c"));
        assert_eq!((c.key.as_str(), c.value.clone()), ("ESO DET CHIP", HValue::Text("x".into())));
    }

    #[test]
    fn formats_round_trip() {
        for v in [
            HValue::Float(2713.67),
            HValue::Float(1e-05),
            HValue::Float(-4.1650019858289e-05),
            HValue::Int(-32),
            HValue::Logical(false),
            HValue::Text("null".into()),
            HValue::Text("O'Brien".into()),
        ] {
            let c = Card::new("KEY", v.clone(), "a comment");
            let img = format_card(&c);
            assert_eq!(img.len(), 80);
            let back = parse_card(&img);
            assert_eq!(back.value, v);
            assert_eq!(back.comment, "a comment");
        }
        assert_eq!(format_float(100.0), "100.0");
        // astropy keeps at most 20 characters, cutting the mantissa
        assert_eq!(format_float(-4.16500198582894e-05), "-4.1650019858289E-05");
        assert_eq!(format_float(1e-05), "1E-05");
        assert_eq!(format_float(0.1234567890123456789), "0.12345678901234568");
    }

    #[test]
    fn long_strings_use_continue() {
        let long = "x".repeat(150);
        let c = Card::new("PROGTITL", HValue::Text(long.clone()), "title");
        let bytes = format_card(&c);
        assert_eq!(bytes.len() % 80, 0);
        assert!(bytes.len() >= 240);
        let cards: Vec<Card> = bytes.chunks(80).map(parse_card).collect();
        let joined = join_continues(cards);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].value, HValue::Text(long));
        assert_eq!(joined[0].comment, "title");
    }
}
