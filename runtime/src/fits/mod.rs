//! The FITS layer: a card-preserving, damage-tolerant reader of the HDU
//! structure (headers parsed here, data located by offset), the lev-0 writer
//! that copies every original byte except edited cards, pixel access through
//! cfitsio (`pixels`), table decoding for the extension tables (`table`).
//!
//! Tolerated with a warning (as the reference tolerates them): a missing END
//! card (`MISSING_END`), a short final block (`SHORT_PADDING`), trailing
//! bytes after the last HDU (`TRAILING_BYTES`), duplicated keywords with
//! different values (`DUPLICATE_KEYWORD`). Fatal: zero-byte files
//! (`EMPTY_FILE`), files that are not FITS (`UNREADABLE_FITS`), HDUs whose
//! data run past the end of the file (`CORRUPTED_HDU`).

pub mod card;
pub mod checksum;
pub mod pixels;
pub mod table;
pub mod write;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use card::{BLOCK, CARD, Card, HValue};

/// What kind of HDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HduKind {
    Primary,
    Image,
    CompressedImage,
    AsciiTable,
    BinaryTable,
    Other,
}

/// A problem found while reading (code + message).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

/// One header-data unit.
#[derive(Clone, Debug)]
pub struct Hdu {
    pub index: usize,
    pub kind: HduKind,
    pub cards: Vec<Card>,
    /// Byte offsets in the file.
    pub header_start: u64,
    pub data_start: u64,
    /// Declared data size (without padding).
    pub data_len: u64,
    /// BITPIX and NAXISn of the (decompressed) image; for tables NAXIS1/NAXIS2.
    pub bitpix: i32,
    pub shape: Vec<u64>,
    pub name: Option<String>,
    /// The header had no END card.
    pub missing_end: bool,
    /// The header was edited (rewrite it instead of copying its blocks).
    pub edited: bool,
    /// Ones'-complement sum of the data, computed when the HDU carries
    /// CHECKSUM/DATASUM (to verify them and to re-seal an edited header).
    pub data_sum: Option<u32>,
}

impl Hdu {
    /// First card with this keyword (case-insensitive).
    pub fn card(&self, key: &str) -> Option<&Card> {
        self.cards.iter().find(|c| !c.commentary && c.key.eq_ignore_ascii_case(key))
    }

    pub fn value(&self, key: &str) -> Option<&HValue> {
        self.card(key).map(|c| &c.value)
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.value(key)? {
            HValue::Int(i) => Some(*i),
            HValue::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    pub fn text(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            HValue::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Whether the HDU holds an image array.
    pub fn has_image(&self) -> bool {
        matches!(self.kind, HduKind::Primary | HduKind::Image | HduKind::CompressedImage)
            && !self.shape.is_empty()
            && self.shape.iter().all(|n| *n > 0)
    }

    /// Number of pixels of an image HDU.
    pub fn npix(&self) -> u64 {
        if self.has_image() { self.shape.iter().fold(1u64, |a, &n| a.saturating_mul(n)) } else { 0 }
    }

    /// Set a card (first occurrence updated in place, else appended).
    pub fn set(&mut self, key: &str, value: HValue, comment: &str) {
        self.edited = true;
        match self.cards.iter_mut().find(|c| !c.commentary && c.key.eq_ignore_ascii_case(key)) {
            Some(c) => {
                c.value = value;
                c.comment = comment.to_string();
                c.raw = None;
                c.unparsable = false;
            }
            None => self.cards.push(Card::new(key, value, comment)),
        }
    }

    /// Remove every card with this keyword.
    pub fn remove(&mut self, key: &str) {
        let before = self.cards.len();
        self.cards.retain(|c| c.commentary || !c.key.eq_ignore_ascii_case(key));
        if self.cards.len() != before {
            self.edited = true;
        }
    }
}

/// A FITS file as read: its HDUs and what was wrong with it.
#[derive(Clone, Debug)]
pub struct FitsFile {
    pub path: PathBuf,
    pub size: u64,
    pub hdus: Vec<Hdu>,
    /// Tolerated problems (warnings).
    pub warnings: Vec<Problem>,
    /// HDUs that could not be read (their data run past the end of file).
    pub corrupted: Vec<Problem>,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("file not found: {0}")]
    NotFound(PathBuf),
    #[error("not a regular file: {0}")]
    NotAFile(PathBuf),
    #[error("file is empty: {0}")]
    Empty(PathBuf),
    #[error("not a FITS file: {0}")]
    NotFits(String),
    #[error("I/O error reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl LoadError {
    /// The status code the pipeline records.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::NotFound(_) | LoadError::NotAFile(_) => "FITS_NOT_FOUND",
            LoadError::Empty(_) => "EMPTY_FILE",
            LoadError::NotFits(_) => "UNREADABLE_FITS",
            LoadError::Io { .. } => "FITS_FILE_TYPE_ERROR",
        }
    }

    /// INVALID (bad input) rather than ERROR (our problem).
    pub fn is_invalid(&self) -> bool {
        matches!(self, LoadError::Empty(_) | LoadError::NotFits(_))
    }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Read header blocks from `start`: the cards, the offset after the header
/// and whether END was missing.
fn read_header(f: &mut File, start: u64, size: u64) -> std::io::Result<(Vec<Card>, u64, bool)> {
    f.seek(SeekFrom::Start(start))?;
    let mut cards = Vec::new();
    let mut block = vec![0u8; BLOCK];
    let mut pos = start;
    loop {
        if pos >= size {
            return Ok((card::join_continues(cards), size, true));
        }
        let want = (size - pos).min(BLOCK as u64) as usize;
        f.read_exact(&mut block[..want])?;
        let chunk = &block[..want];
        // A block that is not header text ends a header that lacks END.
        let first_card = &chunk[..chunk.len().min(CARD)];
        if pos > start && !card::is_card_image(first_card) {
            return Ok((card::join_continues(cards), pos, true));
        }
        // Inside a header block every card is kept, whatever its bytes
        // (astropy reads them all); only END or a block that is not header
        // text ends the header.
        for img in chunk.chunks(CARD) {
            if img.len() < CARD {
                break;
            }
            let c = card::parse_card(img);
            if c.key == "END" && !c.commentary {
                return Ok((card::join_continues(cards), pos + BLOCK as u64, false));
            }
            cards.push(c);
        }
        pos += want as u64;
    }
}

fn int_of(cards: &[Card], key: &str) -> Option<i64> {
    cards.iter().find(|c| !c.commentary && c.key == key).and_then(|c| match &c.value {
        HValue::Int(i) => Some(*i),
        HValue::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    })
}

fn text_of(cards: &[Card], key: &str) -> Option<String> {
    cards.iter().find(|c| !c.commentary && c.key == key).and_then(|c| match &c.value {
        HValue::Text(s) => Some(s.trim().to_string()),
        _ => None,
    })
}

fn logical_of(cards: &[Card], key: &str) -> bool {
    cards.iter().any(|c| !c.commentary && c.key == key && c.value == HValue::Logical(true))
}

/// The most a tile-compressed image may declare once decompressed (64 GiB):
/// beyond it the header is absurd, whatever the file holds.
const MAX_DECOMPRESSED: u64 = 1 << 36;

/// Why an HDU's structure cannot be used.
struct Malformed {
    code: &'static str,
    message: String,
}

impl From<String> for Malformed {
    fn from(message: String) -> Malformed {
        Malformed { code: "CORRUPTED_HDU", message }
    }
}

impl From<&str> for Malformed {
    fn from(message: &str) -> Malformed {
        message.to_string().into()
    }
}

/// Declared sizes that overflow or are absurd.
fn bad_size(message: String) -> Malformed {
    Malformed { code: "BAD_DATA_SIZE", message }
}

/// Product of axis lengths, None on overflow.
fn checked_product(axes: &[u64]) -> Option<u64> {
    axes.iter().try_fold(1u64, |a, &n| a.checked_mul(n))
}

/// Structure of an HDU from its cards: kind, bitpix, shape, data size. All
/// size arithmetic is checked: a size that overflows 64 bits is
/// `BAD_DATA_SIZE`, never a wrapped (small) number.
fn structure(index: usize, cards: &[Card]) -> Result<(HduKind, i32, Vec<u64>, u64), Malformed> {
    let kind = if index == 0 {
        HduKind::Primary
    } else {
        match text_of(cards, "XTENSION").as_deref() {
            Some("IMAGE") => HduKind::Image,
            Some("BINTABLE") if logical_of(cards, "ZIMAGE") => HduKind::CompressedImage,
            Some("BINTABLE") | Some("A3DTABLE") => HduKind::BinaryTable,
            Some("TABLE") => HduKind::AsciiTable,
            _ => HduKind::Other,
        }
    };
    let bitpix = int_of(cards, "BITPIX").ok_or("BITPIX missing or not an integer")?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(format!("BITPIX {bitpix} is not valid").into());
    }
    let naxis = int_of(cards, "NAXIS").ok_or("NAXIS missing or not an integer")?;
    if !(0..=999).contains(&naxis) {
        return Err(format!("NAXIS {naxis} is not valid").into());
    }
    let mut axes = Vec::new();
    for i in 1..=naxis {
        let n = int_of(cards, &format!("NAXIS{i}")).ok_or(format!("NAXIS{i} missing"))?;
        if n < 0 {
            return Err(format!("NAXIS{i} = {n} is negative").into());
        }
        axes.push(n as u64);
    }
    let pcount = int_of(cards, "PCOUNT").unwrap_or(0).max(0) as u64;
    let gcount = int_of(cards, "GCOUNT").unwrap_or(1).max(1) as u64;
    let counted: &[u64] = if naxis == 0 {
        &[0]
    } else if index == 0 && axes.first() == Some(&0) && logical_of(cards, "GROUPS") {
        &axes[1..]
    } else {
        &axes
    };
    let bytes = checked_product(counted)
        .and_then(|e| e.checked_add(pcount))
        .and_then(|e| e.checked_mul(gcount))
        .and_then(|e| e.checked_mul(bitpix.unsigned_abs() as u64 / 8))
        .and_then(|b| b.checked_add(BLOCK as u64))
        .map(|b| b - BLOCK as u64)
        .ok_or_else(|| bad_size(format!("HDU {index}: NAXISn {axes:?}, BITPIX {bitpix}, PCOUNT {pcount}, GCOUNT {gcount} overflow 64 bits")))?;
    let (bitpix, shape) = if kind == HduKind::CompressedImage {
        let zb = int_of(cards, "ZBITPIX").unwrap_or(bitpix);
        if ![8, 16, 32, 64, -32, -64].contains(&zb) {
            return Err(format!("ZBITPIX {zb} is not valid").into());
        }
        let zn = int_of(cards, "ZNAXIS").unwrap_or(0);
        if !(0..=999).contains(&zn) {
            return Err(format!("ZNAXIS {zn} is not valid").into());
        }
        let shape: Vec<u64> = (1..=zn).map(|i| int_of(cards, &format!("ZNAXIS{i}")).unwrap_or(0).max(0) as u64).collect();
        let decompressed = checked_product(&shape).and_then(|n| n.checked_mul(zb.unsigned_abs() as u64 / 8));
        if decompressed.is_none_or(|b| b > MAX_DECOMPRESSED) {
            return Err(bad_size(format!("HDU {index}: compressed image of {shape:?} pixels (ZBITPIX {zb}) is beyond {MAX_DECOMPRESSED} bytes")));
        }
        (zb as i32, shape)
    } else {
        (bitpix as i32, axes)
    };
    Ok((kind, bitpix, shape, bytes))
}

/// Duplicated keywords with different values in one header (one pass).
fn duplicates(hdu: &Hdu) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<&str, &HValue> = std::collections::HashMap::new();
    let mut reported: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for c in hdu.cards.iter().filter(|c| !c.commentary && c.key != "CONTINUE") {
        match seen.get(c.key.as_str()) {
            Some(first) if *first != &c.value && reported.insert(&c.key) => {
                out.push(Problem {
                    code: "DUPLICATE_KEYWORD",
                    message: format!(
                        "HDU {}: {} appears more than once with different values ({:?} and {:?}); using the first, {:?}",
                        hdu.index,
                        c.key,
                        first.py_str(),
                        c.value.py_str(),
                        first.py_str()
                    ),
                });
            }
            Some(_) => {}
            None => {
                seen.insert(&c.key, &c.value);
            }
        }
    }
    out
}

/// Cards holding bytes that are not printable ASCII: kept byte for byte,
/// reported once per HDU.
fn non_ascii(index: usize, cards: &[Card]) -> Option<Problem> {
    let odd: Vec<&str> = cards
        .iter()
        .filter(|c| c.raw.as_deref().is_some_and(|r| !r.chunks(CARD).all(card::is_ascii_card)))
        .map(|c| c.key.as_str())
        .collect();
    let first = odd.first()?;
    Some(Problem {
        code: "NONASCII_HEADER",
        message: format!("HDU {index}: {} card(s) hold bytes that are not printable ASCII (first: {first:?}); kept as they are", odd.len()),
    })
}

/// Read a FITS file's structure and headers.
pub fn load(path: &Path) -> Result<FitsFile, LoadError> {
    let io = |e: std::io::Error| LoadError::Io { path: path.to_path_buf(), source: e };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::NotFound(path.into())),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(LoadError::NotAFile(path.into()));
    }
    let size = meta.len();
    if size == 0 {
        return Err(LoadError::Empty(path.into()));
    }
    let mut f = File::open(path).map_err(io)?;
    let mut head = [0u8; CARD];
    let n = f.read(&mut head).map_err(io)?;
    if n < 30 || !head.starts_with(b"SIMPLE  =") {
        return Err(LoadError::NotFits("the file does not start with a SIMPLE card".into()));
    }
    let mut file = FitsFile { path: path.to_path_buf(), size, hdus: Vec::new(), warnings: Vec::new(), corrupted: Vec::new() };
    let mut pos = 0u64;
    while pos < size {
        let (cards, header_end, missing_end) = read_header(&mut f, pos, size).map_err(io)?;
        let index = file.hdus.len();
        if index > 0 && !cards.first().is_some_and(|c| c.key == "XTENSION") {
            file.warnings.push(Problem {
                code: "TRAILING_BYTES",
                message: format!("{} bytes after the last HDU ignored", size - pos),
            });
            break;
        }
        if index == 0 && cards.first().map(|c| c.value.clone()) != Some(HValue::Logical(true)) {
            file.warnings.push(Problem { code: "NONSTANDARD_FITS", message: "SIMPLE is not T".into() });
        }
        file.warnings.extend(non_ascii(index, &cards));
        let (kind, bitpix, shape, data_len) = match structure(index, &cards) {
            Ok(s) => s,
            Err(m) if m.code == "BAD_DATA_SIZE" => {
                file.corrupted.push(Problem { code: m.code, message: m.message });
                break;
            }
            Err(m) => {
                if index == 0 {
                    return Err(LoadError::NotFits(format!("primary header: {}", m.message)));
                }
                file.corrupted.push(Problem { code: m.code, message: format!("HDU {index}: {}", m.message) });
                break;
            }
        };
        let name = text_of(&cards, "EXTNAME").filter(|s| !s.is_empty());
        if missing_end {
            file.warnings.push(Problem { code: "MISSING_END", message: format!("HDU {index} header has no END card") });
        }
        let hdu = Hdu {
            index,
            kind,
            cards,
            header_start: pos,
            data_start: header_end,
            data_len,
            bitpix,
            shape,
            name,
            missing_end,
            edited: false,
            data_sum: None,
        };
        file.warnings.extend(duplicates(&hdu));
        let data_end = header_end.saturating_add(data_len);
        let mut hdu = hdu;
        if data_end <= size && (hdu.card("CHECKSUM").is_some() || hdu.card("DATASUM").is_some()) {
            let (problems, sum) = verify_checksums(&mut f, &hdu, size).map_err(io)?;
            hdu.data_sum = Some(sum);
            file.warnings.extend(problems);
        }
        file.hdus.push(hdu);
        if data_end > size {
            file.corrupted.push(Problem {
                code: "CORRUPTED_HDU",
                message: format!("HDU {index}: data need {data_len} bytes but only {} remain", size.saturating_sub(header_end)),
            });
            break;
        }
        let padded = round_up(data_end);
        if padded > size {
            file.warnings.push(Problem {
                code: "SHORT_PADDING",
                message: format!("HDU {index}: last block is {} bytes short", padded - size),
            });
            break;
        }
        pos = padded;
    }
    Ok(file)
}

/// Verify DATASUM and CHECKSUM of an HDU; returns the problems and the data sum.
fn verify_checksums(f: &mut File, hdu: &Hdu, size: u64) -> std::io::Result<(Vec<Problem>, u32)> {
    let padded = round_up(hdu.data_len).min(size - hdu.data_start);
    let mut buf = vec![0u8; 1 << 20];
    let mut data_sum = 0u32;
    f.seek(SeekFrom::Start(hdu.data_start))?;
    let mut left = padded;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.read_exact(&mut buf[..n])?;
        data_sum = checksum::ones_sum(data_sum, &buf[..n]);
        left -= n as u64;
    }
    let mut header = vec![0u8; (hdu.data_start - hdu.header_start) as usize];
    f.seek(SeekFrom::Start(hdu.header_start))?;
    f.read_exact(&mut header)?;
    let mut problems = Vec::new();
    if let Some(declared) = hdu.text("DATASUM") {
        if declared.trim().parse::<u64>().ok() != Some(data_sum as u64) {
            problems.push(Problem {
                code: "CHECKSUM_MISMATCH",
                message: format!("HDU {}: DATASUM {declared} but the data sum to {data_sum}", hdu.index),
            });
        }
    }
    if hdu.card("CHECKSUM").is_some() && checksum::ones_sum(data_sum, &header) != 0xFFFF_FFFF {
        problems.push(Problem { code: "CHECKSUM_MISMATCH", message: format!("HDU {}: CHECKSUM does not verify", hdu.index) });
    }
    Ok((problems, data_sum))
}

impl FitsFile {
    /// Each HDU's data unit as this reader finds it: (offset, length with
    /// padding) — what [`write::check_data_units`] compares with cfitsio.
    pub fn data_units(&self) -> Vec<(u64, u64)> {
        self.hdus.iter().map(|h| (h.data_start, round_up(h.data_len))).collect()
    }

    /// Bytes of the file that belong to its HDUs (trailing bytes excluded).
    pub fn fits_len(&self) -> u64 {
        self.hdus.last().map(|h| (h.data_start.saturating_add(round_up(h.data_len))).min(self.size)).unwrap_or(self.size)
    }

    /// Whether writing a byte-exact copy needs repairs (END or padding added).
    pub fn needs_repair(&self) -> bool {
        self.warnings.iter().any(|w| matches!(w.code, "MISSING_END" | "SHORT_PADDING" | "TRAILING_BYTES"))
    }
}

#[cfg(test)]
mod tests;
