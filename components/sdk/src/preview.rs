//! Builders for preview plans (what the thumbnail component renders): the base
//! renderer of spec pipeline.md §16.2 and helpers for instrument layouts.

use crate::header::Header;
use crate::types::{Overscan, Preview, Region, Rotation, Scaling, Tile};

/// (columns, rows) of an image HDU, when it has a 2-D (or deeper) array.
pub fn image_size(hdr: &Header, ext: usize) -> Option<(u32, u32)> {
    let h = hdr.hdu(ext)?;
    if !hdr.has_array(ext) || h.shape.len() < 2 {
        return None;
    }
    Some((h.shape[0] as u32, h.shape[1] as u32))
}

/// The whole of an HDU as one tile at the canvas origin.
pub fn whole_tile(ext: u32, cols: u32, rows: u32) -> Tile {
    Tile {
        hdu: ext,
        crop: Region { x0: 0, y0: 0, nx: cols, ny: rows },
        limits_box: None,
        bias: None,
        flip_x: false,
        flip_y: false,
        x: 0,
        y: 0,
        plane: None,
    }
}

/// A single-HDU preview: full size, row 0 at the bottom.
pub fn single(ext: usize, hdr: &Header, scaling: Scaling, quality: u8, suffix: &str) -> Option<Preview> {
    let (cols, rows) = image_size(hdr, ext)?;
    Some(Preview {
        suffix: suffix.to_string(),
        tiles: vec![whole_tile(ext as u32, cols, rows)],
        per_tile_limits: false,
        nonnegative: false,
        scaling,
        rotate: Rotation::None,
        origin_lower: true,
        bin: 1,
        width: None,
        height: None,
        quality,
        prefer_sibling: false,
    })
}

/// The base renderer: primary data, zscale + asinh, one output pixel per data
/// pixel, row 0 at the bottom, JPEG quality 92, file `<KOAID>.jpg`.
pub fn base(hdr: &Header) -> Vec<Preview> {
    single(0, hdr, Scaling::ZscaleAsinh, 92, "").into_iter().collect()
}

/// Layout of a CCD mosaic (DEIMOS, LRIS blue): pre/post-scan sizes in binned
/// pixels, whether a second row of CCDs exists (y above `row_split`), the
/// output binning.
pub struct MosaicSpec {
    pub precol: u32,
    pub postpix: u32,
    pub preline: u32,
    pub postline: u32,
    /// DETSEC y beyond this puts a CCD in the second row (DEIMOS 4096).
    pub row_split: Option<i64>,
    pub bin: u32,
    /// A HDU without DETSEC aborts the preview (LRIS blue) instead of being
    /// left out (DEIMOS).
    pub require_detsec: bool,
}

impl MosaicSpec {
    /// Pre/post-scan widths from PRECOL, POSTPIX, PRELINE and POSTLINE
    /// divided by the BINNING factors.
    pub fn from_header(hdr: &Header, row_split: Option<i64>, bin: u32, require_detsec: bool) -> Self {
        let (bx, by) = hdr.binning();
        let g = |k: &str| hdr.raw_f64(k).unwrap_or(0.0) as u32;
        MosaicSpec {
            precol: g("PRECOL") / bx,
            postpix: g("POSTPIX") / bx,
            preline: g("PRELINE") / by,
            postline: g("POSTLINE") / by,
            row_split,
            bin,
            require_detsec,
        }
    }
}

/// `x1:x2,y1:y2` of a DETSEC text (`[x1:x2,y1:y2]`).
pub fn parse_detsec(text: &str) -> Option<(i64, i64, i64, i64)> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    let (xs, ys) = t.split_once(',')?;
    let (x1, x2) = xs.split_once(':')?;
    let (y1, y2) = ys.split_once(':')?;
    Some((x1.trim().parse().ok()?, x2.trim().parse().ok()?, y1.trim().parse().ok()?, y2.trim().parse().ok()?))
}

/// The mosaic preview (spec instruments.md DEIMOS JPEG, LRIS blue): CCD
/// extensions ordered by DETSEC into one or two rows, per-row bias from the
/// post-scan columns, zscale limits per CCD on the 10 %-inset box combined
/// (vmin ≥ 0), pre/post-scan trimmed, mirrored where DETSEC runs backwards;
/// two rows are stacked and turned 90° clockwise. `Err` names the reason
/// when a DETSEC does not parse (the preview is then skipped with a warning).
pub fn mosaic(hdr: &Header, spec: &MosaicSpec, suffix: &str) -> Result<Option<Preview>, String> {
    let mut ccds: Vec<(usize, (i64, i64, i64, i64), (u32, u32))> = Vec::new();
    for ext in 1..hdr.len() {
        let Some(size) = image_size(hdr, ext) else { continue };
        let Some(det) = hdr.raw_text_ext(ext, "DETSEC") else {
            if spec.require_detsec {
                return Err(format!("HDU {ext} has no DETSEC"));
            }
            continue;
        };
        let sec = parse_detsec(&det).ok_or_else(|| format!("DETSEC {det:?} of HDU {ext} does not parse"))?;
        ccds.push((ext, sec, size));
    }
    if ccds.is_empty() {
        return Ok(None);
    }
    let row_of = |s: &(i64, i64, i64, i64)| match spec.row_split {
        Some(split) if s.2 > split || s.3 > split => 1u32,
        _ => 0,
    };
    ccds.sort_by_key(|(_, s, _)| (row_of(s), s.0));
    let two_rows = ccds.iter().any(|(_, s, _)| row_of(s) == 1) && ccds.iter().any(|(_, s, _)| row_of(s) == 0);
    let mut tiles = Vec::new();
    let mut x_in_row = [0u32; 2];
    let row_height = ccds.iter().map(|(_, _, (_, rows))| rows.saturating_sub(spec.preline + spec.postline).max(1)).max().unwrap_or(0);
    for (ext, s, (cols, rows)) in ccds {
        let keep = cols.saturating_sub(spec.precol + spec.postpix).max(1);
        let r = row_of(&s) as usize;
        let (fx, fy) = (cols as f64 * 0.1, rows as f64 * 0.1);
        let lx0 = (spec.precol as f64 + fx) as u32;
        let lx1 = ((cols as f64 - spec.postpix as f64 - fx) as u32).max(lx0 + 1);
        let ly0 = (spec.preline as f64 + fy) as u32;
        let ly1 = ((rows as f64 - spec.postline as f64 - fy) as u32).max(ly0 + 1);
        let bias = (spec.postpix >= 3).then(|| Overscan { x0: cols - spec.postpix + 1, nx: spec.postpix - 2 });
        tiles.push(Tile {
            hdu: ext as u32,
            crop: Region { x0: spec.precol.min(cols - 1), y0: 0, nx: keep, ny: rows },
            limits_box: Some(Region { x0: lx0, y0: ly0, nx: lx1 - lx0, ny: ly1 - ly0 }),
            bias,
            flip_x: s.0 > s.1,
            flip_y: s.2 > s.3,
            x: x_in_row[r],
            y: if two_rows { r as u32 * row_height } else { 0 },
            plane: None,
        });
        x_in_row[r] += keep;
    }
    Ok(Some(Preview {
        suffix: suffix.to_string(),
        tiles,
        per_tile_limits: true,
        nonnegative: true,
        scaling: Scaling::ZscaleAsinh,
        rotate: if two_rows { Rotation::Cw90 } else { Rotation::None },
        origin_lower: true,
        bin: spec.bin,
        width: None,
        height: None,
        quality: 92,
        prefer_sibling: false,
    }))
}
