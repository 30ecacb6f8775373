//! Grey JPEG strips and their joining: a picture rendered as horizontal
//! strips (by separate component instances, in parallel) becomes one
//! baseline JPEG, byte for byte the one a single encoder would write with
//! a restart marker after every row of 8×8 blocks.
//!
//! Why this is exact: with a restart interval of one block row, every block
//! row is entropy-coded on its own (DC prediction restarts, the bit buffer
//! is flushed), so a strip cut at a multiple of 8 rows holds exactly the
//! coded rows of the whole picture; joining only renumbers the restart
//! markers (RST0…RST7 cycle) and writes the total height into the frame
//! header.

use crate::Grey;

/// A grey JPEG with a restart marker after every row of 8×8 blocks.
pub fn encode_strip(img: &Grey, quality: u8) -> Result<Vec<u8>, String> {
    crate::encoder::encode(img, quality, true)
}

/// What joining needs to know of one strip.
struct Parsed<'a> {
    /// Everything before the entropy-coded data (SOI … SOS header).
    head: &'a [u8],
    /// Offset of the frame height in `head`.
    height_at: usize,
    height: u16,
    width: u16,
    restart: u16,
    /// Entropy-coded data (restart markers included), without EOI.
    scan: &'a [u8],
}

fn parse(b: &[u8]) -> Result<Parsed<'_>, String> {
    let bad = |what: &str| Err(format!("JPEG strip: {what}"));
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return bad("no SOI");
    }
    let (mut i, mut sof, mut restart) = (2usize, None, 0u16);
    loop {
        if i + 4 > b.len() || b[i] != 0xFF {
            return bad("truncated header");
        }
        let marker = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if i + 2 + len > b.len() {
            return bad("truncated segment");
        }
        match marker {
            // baseline frame: length, precision, height, width, components
            0xC0 => sof = Some(i + 5),
            0xC1..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => return bad("not a baseline frame"),
            0xDD if len >= 4 => restart = u16::from_be_bytes([b[i + 4], b[i + 5]]),
            0xDA => {
                let start = i + 2 + len;
                let Some(sof) = sof else { return bad("no frame header") };
                let end = b.len().checked_sub(2).filter(|&e| e >= start && b[e] == 0xFF && b[e + 1] == 0xD9);
                let Some(end) = end else { return bad("no EOI after the scan") };
                return Ok(Parsed {
                    head: &b[..start],
                    height_at: sof,
                    height: u16::from_be_bytes([b[sof], b[sof + 1]]),
                    width: u16::from_be_bytes([b[sof + 2], b[sof + 3]]),
                    restart,
                    scan: &b[start..end],
                });
            }
            _ => {}
        }
        i += 2 + len;
    }
}

/// Join strips (top to bottom) of one picture into one JPEG. Every strip
/// but the last must be a multiple of 8 rows high, and all must come from
/// [`encode_strip`] with the same width and quality.
pub fn join(strips: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let parts: Vec<Parsed> = strips.iter().map(|s| parse(s)).collect::<Result<_, _>>()?;
    let Some(first) = parts.first() else { return Err("no JPEG strips to join".into()) };
    let mcus = first.width.div_ceil(8);
    let mut total: u32 = 0;
    for (k, p) in parts.iter().enumerate() {
        if p.restart != mcus {
            return Err(format!("JPEG strip {k}: restart interval {} is not one block row ({mcus})", p.restart));
        }
        // the same tables and frame: the heads differ only in the height
        let same = p.head.len() == first.head.len()
            && p.head[..p.height_at] == first.head[..first.height_at]
            && p.head[p.height_at + 2..] == first.head[first.height_at + 2..];
        if !same {
            return Err(format!("JPEG strip {k}: encoded with other settings than strip 0"));
        }
        if k + 1 < parts.len() && p.height % 8 != 0 {
            return Err(format!("JPEG strip {k}: {} rows is not a multiple of 8", p.height));
        }
        total += p.height as u32;
    }
    let total = u16::try_from(total).map_err(|_| format!("{total} rows is too tall for a JPEG"))?;
    let mut out = Vec::with_capacity(strips.iter().map(|s| s.len()).sum());
    out.extend_from_slice(first.head);
    out[first.height_at..first.height_at + 2].copy_from_slice(&total.to_be_bytes());
    // restart intervals (block rows) coded before the current strip
    let mut offset: u32 = 0;
    for p in &parts {
        if offset > 0 {
            out.extend_from_slice(&[0xFF, 0xD0 + ((offset - 1) % 8) as u8]);
        }
        let s = p.scan;
        let mut i = 0;
        while let Some(at) = s[i..].iter().position(|&x| x == 0xFF) {
            let at = i + at;
            out.extend_from_slice(&s[i..=at]);
            i = at + 1;
            // a marker in entropy-coded data is 0xFF followed by a non-zero byte
            if let Some(&m @ 0xD0..=0xD7) = s.get(i) {
                out.push(0xD0 + ((m - 0xD0) as u32 + offset).rem_euclid(8) as u8);
                i += 1;
            }
        }
        out.extend_from_slice(&s[i..]);
        offset += (p.height as u32).div_ceil(8);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}
