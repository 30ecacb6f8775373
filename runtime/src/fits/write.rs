//! The lev-0 writer: the original file with edited headers. Unedited header
//! blocks and every data byte are copied verbatim; an edited header is
//! re-serialised from its cards (original card images kept, changed cards
//! formatted anew). A missing END is added and a short final block padded.
//! The MD5 of the written bytes is computed while writing.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use md5::{Digest, Md5};

use super::{BLOCK, FitsFile, Hdu};

/// Header bytes of an HDU as they will be written. An HDU with a CHECKSUM
/// card (and a known data sum) is re-sealed so the checksum stays valid.
pub fn header_bytes(hdu: &Hdu) -> Vec<u8> {
    let seal = hdu.data_sum.filter(|_| hdu.card("CHECKSUM").is_some());
    let mut out = Vec::with_capacity(BLOCK);
    let mut checksum_at = None;
    for c in &hdu.cards {
        if seal.is_some() && !c.commentary && c.key == "CHECKSUM" && checksum_at.is_none() {
            let mut zero = c.clone();
            zero.value = super::HValue::Text("0000000000000000".into());
            zero.raw = None;
            checksum_at = Some(out.len() + 11);
            out.extend(zero.image());
            continue;
        }
        out.extend(c.image());
    }
    let mut end = b"END".to_vec();
    end.resize(80, b' ');
    out.extend(end);
    let pad = out.len().div_ceil(BLOCK) * BLOCK;
    out.resize(pad, b' ');
    if let (Some(at), Some(data_sum)) = (checksum_at, seal) {
        let sum = super::checksum::ones_sum(data_sum, &out);
        out[at..at + 16].copy_from_slice(super::checksum::encode(sum).as_bytes());
    }
    out
}

/// A writer that hashes what it writes.
struct Hashing<W: Write> {
    inner: W,
    md5: Md5,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Result of a write: size and MD5 of the new file.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub bytes: u64,
    pub md5: String,
    /// Where each HDU's data unit went: (offset, length with padding).
    pub data_units: Vec<(u64, u64)>,
}

fn copy_range(src: &mut File, start: u64, len: u64, out: &mut impl Write, buf: &mut [u8]) -> std::io::Result<u64> {
    src.seek(SeekFrom::Start(start))?;
    let mut left = len;
    let mut copied = 0;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
        copied += n as u64;
    }
    Ok(copied)
}

/// Write `file` (with its edited headers) to `dst`, fsync'ed.
pub fn write_fits(file: &FitsFile, dst: &Path) -> std::io::Result<Written> {
    let mut src = File::open(&file.path)?;
    let out = File::create(dst)?;
    let mut w = Hashing { inner: BufWriter::with_capacity(1 << 20, out), md5: Md5::new(), bytes: 0 };
    let mut buf = vec![0u8; 1 << 20];
    let mut data_units = Vec::with_capacity(file.hdus.len());
    for hdu in &file.hdus {
        if hdu.edited || hdu.missing_end {
            w.write_all(&header_bytes(hdu))?;
        } else {
            copy_range(&mut src, hdu.header_start, hdu.data_start - hdu.header_start, &mut w, &mut buf)?;
        }
        let padded = hdu.data_len.div_ceil(BLOCK as u64) * BLOCK as u64;
        data_units.push((w.bytes, padded));
        if hdu.data_len == 0 {
            continue;
        }
        let avail = file.size.saturating_sub(hdu.data_start).min(padded);
        let copied = copy_range(&mut src, hdu.data_start, avail, &mut w, &mut buf)?;
        // zero-fill a short final block (data always complete: loader checked)
        let zeros = vec![0u8; (padded - copied) as usize];
        w.write_all(&zeros)?;
    }
    w.flush()?;
    let Hashing { inner, md5, bytes } = w;
    let f = inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(Written { bytes, md5: hex::encode(md5.finalize()), data_units })
}

/// The invariant before publish: an independent parser (cfitsio) finds the
/// data units of `path` starting exactly where `expected` says they do —
/// the lev-0 file's data are the input's data units, byte for byte, because
/// the writer copied them there verbatim (`Written::data_units`), and the
/// input was cross-checked the same way when it was loaded. A header read
/// short or long moves a data start, and with it every later one. Lengths
/// are not compared: for a table whose heap gap is not counted in PCOUNT
/// (astropy's theap-gap.fits) cfitsio extends the data past the end of the
/// file, where the card layer follows the standard's PCOUNT.
pub fn check_data_units(path: &Path, expected: &[(u64, u64)]) -> Result<(), String> {
    let found = super::pixels::Reader::open(path).and_then(|mut r| r.data_units()).map_err(|e| e.to_string())?;
    if found.len() != expected.len() {
        return Err(format!("{} HDUs expected, cfitsio finds {}", expected.len(), found.len()));
    }
    for (i, ((start, len), (s, e))) in expected.iter().zip(&found).enumerate() {
        if *s != *start {
            return Err(format!("HDU {i}: data expected at {start}+{len}, cfitsio finds {s}+{}", e.saturating_sub(*s)));
        }
    }
    Ok(())
}

/// MD5 of a file, streamed.
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
