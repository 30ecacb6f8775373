//! Sample-frame generator (project code, used by the demo, the tests and the
//! benchmarks): realistic raw frames written as FITS files, and the raw NIRES
//! input of the reference's gold case synthesised from its metadata table.

pub mod demo;
pub mod frames;
pub mod gold;

use std::io::Write;
use std::path::Path;

use crate::fits::card::{BLOCK, Card, HValue};

/// Pixel data of one HDU (written big-endian).
#[derive(Clone, Debug)]
pub enum Data {
    None,
    F32(Vec<f32>),
    I16(Vec<i16>),
    /// uint16 stored as BITPIX 16 with BZERO 32768.
    U16(Vec<u16>),
    I32(Vec<i32>),
    /// Raw bytes (tables).
    Bytes(Vec<u8>),
}

/// One HDU to write: its cards (without END) and data.
#[derive(Clone, Debug)]
pub struct FrameHdu {
    pub cards: Vec<Card>,
    pub data: Data,
}

/// A file to write.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub hdus: Vec<FrameHdu>,
}

/// A card with a value and comment.
pub fn card(key: &str, value: HValue, comment: &str) -> Card {
    Card::new(key, value, comment)
}

pub fn text(key: &str, v: &str) -> Card {
    card(key, HValue::Text(v.into()), "")
}

pub fn int(key: &str, v: i64) -> Card {
    card(key, HValue::Int(v), "")
}

/// A real-valued card written with every significant digit (instrument
/// software writes free-format reals wider than astropy's 20 characters).
pub fn float(key: &str, v: f64) -> Card {
    let mut c = card(key, HValue::Float(v), "");
    let repr = koa_pyfmt::py_repr(v).replace('e', "E");
    let mut img = format!("{key:<8}= {repr:>20}").into_bytes();
    img.resize(80, b' ');
    c.raw = Some(img);
    c
}

pub fn logical(key: &str, v: bool) -> Card {
    card(key, HValue::Logical(v), "")
}

/// Mandatory cards of an image HDU.
pub fn image_cards(primary: bool, bitpix: i64, shape: &[u64]) -> Vec<Card> {
    let mut c = vec![if primary {
        card("SIMPLE", HValue::Logical(true), "conforms to FITS standard")
    } else {
        card("XTENSION", HValue::Text("IMAGE".into()), "Image extension")
    }];
    c.push(card("BITPIX", HValue::Int(bitpix), "array data type"));
    c.push(card("NAXIS", HValue::Int(shape.len() as i64), "number of array dimensions"));
    for (i, n) in shape.iter().enumerate() {
        c.push(int(&format!("NAXIS{}", i + 1), *n as i64));
    }
    if primary {
        c.push(logical("EXTEND", true));
    } else {
        c.push(int("PCOUNT", 0));
        c.push(int("GCOUNT", 1));
    }
    c
}

fn pad(w: &mut impl Write, written: usize, fill: u8) -> std::io::Result<()> {
    let rem = written % BLOCK;
    if rem != 0 {
        w.write_all(&vec![fill; BLOCK - rem])?;
    }
    Ok(())
}

impl Frame {
    /// Serialise to FITS bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to memory");
        out
    }

    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        for h in &self.hdus {
            let mut header = Vec::new();
            for c in &h.cards {
                header.extend(c.image());
            }
            let mut end = b"END".to_vec();
            end.resize(80, b' ');
            header.extend(end);
            w.write_all(&header)?;
            pad(w, header.len(), b' ')?;
            let n = match &h.data {
                Data::None => 0,
                Data::F32(v) => {
                    let b: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
                    w.write_all(&b)?;
                    b.len()
                }
                Data::I16(v) => {
                    let b: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
                    w.write_all(&b)?;
                    b.len()
                }
                Data::U16(v) => {
                    let b: Vec<u8> = v.iter().flat_map(|x| ((*x as i32 - 32768) as i16).to_be_bytes()).collect();
                    w.write_all(&b)?;
                    b.len()
                }
                Data::I32(v) => {
                    let b: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
                    w.write_all(&b)?;
                    b.len()
                }
                Data::Bytes(b) => {
                    w.write_all(b)?;
                    b.len()
                }
            };
            pad(w, n, 0)?;
        }
        Ok(())
    }

    /// Write to a file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        self.write_to(&mut f)?;
        f.flush()
    }
}
