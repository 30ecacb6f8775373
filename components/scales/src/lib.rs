//! SCALES (spec scales.md, to be merged into instruments.md as §14): key map
//! UTC→UT and PROGNAME→PROGNAM, prefixes SS/SI/SD by CAMERA with the `_qramp`
//! suffix for a 2-D primary, the DQA list of §3, KOAIMTYP from IMTYPE,
//! ELAPTIME from EXPTIME, the filter tables for wavelengths and resolution,
//! pixel scales, statistics of the CDS image of a read cube, and a preview of
//! the primary (last read − first read for a cube), zscale + square root, row 0
//! at the top, at most 1024 pixels a side, quality 85. No DRP products.
//!
//! Reference defects (scales.md §9) fixed here:
//! * S2: PROGNAME maps to `PROGNAM` and then `PROGNAME`: PROGNAM wins when both
//!   are usable, and a file carrying only the archived PROGNAME is no longer
//!   assigned from the schedule.
//! * S4: the CDS difference is taken by the host in floating point
//!   ([`PlanePick::minus`]), so unsigned 16-bit reads cannot wrap.
//! * S6: a primary HDU without data gets no `_qramp` suffix instead of crashing
//!   the KOAID step.
//! * S8: INSTRUME is compared case-insensitively (`scales`, the keyword table's
//!   example, is accepted and written back as `SCALES`).
//! * S9: OFNAME is reduced to its file name (the keyword table's example is a
//!   full path, which file validation would reject).
//! * S11: the engineering accounts `scaeng`/`scadev` are recognised from OUTDIR
//!   (entries of the SDK's shared list in `program::is_engineering`).
//! * S13: IMTYPE, MODSLNAM and every FILTER token are trimmed; a FILTER token
//!   given twice (`K+K`) counts once. Names stay case-sensitive: they are the
//!   filter wheels' named positions as the instrument reports them.
//! * S14: IMAGEMN/IMAGESD/IMAGEMD of a read cube are those of the CDS image
//!   (last read − first read), not of every read together.
//!
//! Kept as specified: S1 (set_ut cannot repair a missing UT, as for KCWI), S7
//! (ELAPTIME is written although the keyword table has no row for it), S12
//! (row 0 at the top of the preview). S5 cannot happen (the shared thumbnail
//! renderer does the zscale fallbacks). Fixed outside this crate: S3 (a
//! product belongs to the `_qramp` sibling whose suffix follows the KOAID:
//! `runtime/src/tables`), S10 (a `scales` service in examples/services.toml;
//! no DRP products is FILE_NOT_FOUND for a DRP row, not a crash). S15 and S16
//! belong to older versions of the reference module.
//!
//! A primary without data gets no statistics and the step succeeds (the
//! reference raised, a non-critical CODE_ERROR warning about nothing).
//!
//! A cube of a single read has no CDS image: its statistics and preview are
//! of that read (the reference's statistics are the same; its JPEG is black).

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::{self, instr_token};
use koa_sdk::types::{Context, PlanePick, Preview, Scaling};
use koa_sdk::{Header, Instrument, KeyMap, Koaid, drp, program};

pub struct Scales;

/// KOAID prefix by CAMERA (lower-cased, exact).
pub const PREFIXES: [(&str, &str); 3] = [("ifs", "SS"), ("im", "SI"), ("dichroic", "SD")];

/// KOAID suffix of a ramp-fitted ("quick ramp") 2-D file.
pub const QRAMP: &str = "_qramp";

/// IMTYPE values (lower-cased) that are KOAIMTYP as they are.
pub const KOAIMTYPS: [&str; 6] = ["object", "bias", "dark", "flatlamp", "flatlens", "wavecal"];

/// (WAVEBLUE, WAVECNTR, WAVERED) in microns.
pub type Band = (f64, f64, f64);

/// Imager filters (§4.4), values as the reference rounds them.
pub const IMAGER_BANDS: &[(&str, Band)] = &[
    ("Y", (0.97, 1.02, 1.07)),
    ("J", (1.17, 1.25, 1.33)),
    ("H", (1.49, 1.64, 1.78)),
    ("CH4s", (1.53, 1.59, 1.66)),
    ("Kp", (1.95, 2.12, 2.29)),
    ("Ks", (1.99, 2.15, 2.3)),
    ("K", (2.03, 2.19, 2.36)),
    ("Lp", (3.43, 3.78, 4.13)),
    ("Ms", (4.55, 4.67, 4.79)),
    ("PaBeta", (1.28, 1.29, 1.3)),
    ("FeII", (1.63, 1.65, 1.66)),
    ("BrGam", (2.15, 2.17, 2.19)),
    ("Kcont", (2.26, 2.27, 2.29)),
];

/// IFS filters (§4.4).
pub const IFS_BANDS: &[(&str, Band)] = &[
    ("K", (2.0, 2.2, 2.4)),
    ("KL", (2.0, 3.0, 4.0)),
    ("KLM", (2.0, 3.5, 5.0)),
    ("L", (2.9, 3.53, 4.15)),
    ("Ls", (3.1, 3.3, 3.5)),
    ("M", (4.5, 4.85, 5.2)),
    ("KLpol", (2.0, 3.0, 4.0)),
];

/// Filter table by CAMERA (upper-cased); other cameras have none.
pub const BANDS: [(&str, &[(&str, Band)]); 2] = [("IM", IMAGER_BANDS), ("IFS", IFS_BANDS)];

/// IFS low-resolution mode: SPECRES by filter (§4.5).
pub const LOWRES: &[(&str, i64)] = &[("K", 150), ("KL", 50), ("KLM", 35), ("L", 80), ("Ls", 200), ("M", 200), ("KLpol", 20)];

/// IFS medium-resolution mode: SPECRES by filter (§4.5).
pub const MEDRES: &[(&str, i64)] = &[("K", 6000), ("L", 2500), ("M", 7000)];

/// Resolution table by MODSLNAM (upper-cased).
pub const RESOLUTIONS: [(&str, &[(&str, i64)]); 2] = [("LOWRES", LOWRES), ("MEDRES", MEDRES)];

/// DISPSCAL = SPATSCAL (arcsec per pixel / spaxel) by CAMERA (upper-cased).
pub const PIXEL_SCALES: [(&str, f64); 2] = [("IM", 0.006), ("IFS", 0.02)];

/// Largest preview side (Pillow `thumbnail((1024, 1024))`).
pub const PREVIEW_BOX: u32 = 1024;

/// JPEG quality of the preview.
pub const PREVIEW_QUALITY: u8 = 85;

const UT_KEYS: &[&str] = &["UT"];
const PROGNAME_KEYS: &[&str] = &["PROGNAM", "PROGNAME"];

/// The prefix of a CAMERA value (exact after lower-casing: `IMAGER`, ` IFS` have none).
pub fn prefix_of(camera: &str) -> Option<&'static str> {
    let c = camera.to_lowercase();
    PREFIXES.iter().find(|(k, _)| *k == c.as_str()).map(|(_, p)| *p)
}

/// The primary's array shape (fastest axis first), empty without data.
fn primary_shape(hdr: &Header) -> Vec<u64> {
    if !hdr.has_array(0) {
        return Vec::new();
    }
    hdr.hdu(0).map(|h| h.shape.clone()).unwrap_or_default()
}

/// Whether the primary holds a 2-D image (a ramp-fitted file); false
/// without data (S6).
pub fn is_qramp(hdr: &Header) -> bool {
    primary_shape(hdr).len() == 2
}

/// The image of a cube of `reads` reads that statistics and preview use:
/// the last read minus the first (CDS); the read itself when there is one.
pub fn cds_pick(reads: u64) -> PlanePick {
    if reads >= 2 {
        PlanePick { plane: u32::try_from(reads - 1).unwrap_or(u32::MAX), minus: Some(0) }
    } else {
        PlanePick { plane: 0, minus: None }
    }
}

/// Base `set_instr` with INSTRUME compared case-insensitively (S8): a value
/// starting with `scales` in another case is first written as `SCALES`.
fn set_instr(job: &mut Job) -> StepResult {
    let instr = job.ctx.instrument.to_uppercase();
    let v = job.hdr.text("INSTRUME").unwrap_or_default();
    if !v.starts_with(instr.as_str()) && v.to_uppercase().starts_with(instr.as_str()) {
        job.hdr.set("INSTRUME", instr.as_str(), "KOA: Instrument");
    }
    koaid::set_instr(job)
}

/// Base `set_ofName` on the file-name part of OFNAME (S9: the keyword
/// table's example OFNAME is a full path, which file validation would reject
/// as MISMATCHED_FILENAME and the 32-wide metadata column would truncate).
fn set_ofname(job: &mut Job) -> StepResult {
    if let Some(path) = job.hdr.text("OFNAME").filter(|v| v.contains('/')) {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        if name.is_empty() {
            return common::no_ofname(job, "SET_OFNAME_NAME", "OFNAME names a folder, not a file");
        }
        job.hdr.set("OFNAME", name, "KOA: Original file name");
    }
    common::set_ofname(job)
}

/// KOAIMTYP of an IMTYPE value: trimmed (S13), lower-cased, one of
/// [`KOAIMTYPS`], else `undefined`.
pub fn koaimtyp(imtype: &str) -> &'static str {
    let v = imtype.trim().to_lowercase();
    KOAIMTYPS.iter().copied().find(|t| *t == v.as_str()).unwrap_or("undefined")
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let imtype = job.hdr.text("IMTYPE");
    let t = koaimtyp(imtype.as_deref().unwrap_or("undefined"));
    if t == "undefined" {
        job.warn("KOAIMTYP_UDF", format!("IMTYPE {imtype:?} gives no image type"));
    }
    job.hdr.set("KOAIMTYP", t, "KOA: Image type from IMTYPE");
    Ok(true)
}

/// ELAPTIME kept when usable, else EXPTIME as it is (type kept).
fn set_elaptime(job: &mut Job) -> StepResult {
    if job.hdr.get("ELAPTIME").is_some() {
        return Ok(true);
    }
    let Some(v) = job.hdr.get("EXPTIME").cloned() else {
        job.warn("SET_ELAPTIME_ERROR", "no usable ELAPTIME or EXPTIME");
        return Ok(false);
    };
    job.hdr.set("ELAPTIME", v, "KOA: Total integration time set from EXPTIME");
    Ok(true)
}

/// FILTER split on `+`, each token trimmed, empty ones dropped (S13).
pub fn filter_tokens(filter: &str) -> Vec<&str> {
    filter.split('+').map(str::trim).filter(|t| !t.is_empty()).collect()
}

/// The value of the one table entry the tokens name; none when they name no
/// entry or several different ones (a repeated token counts once, S13).
pub fn unique_match<T: Copy>(tokens: &[&str], table: &[(&str, T)]) -> Option<T> {
    let mut hits: Vec<usize> = tokens.iter().filter_map(|t| table.iter().position(|(k, _)| k == t)).collect();
    hits.sort_unstable();
    hits.dedup();
    match hits.as_slice() {
        [i] => Some(table[*i].1),
        _ => None,
    }
}

/// (blue, centre, red) for a CAMERA and FILTER (§4.4).
pub fn bands(camera: &str, filter: &str) -> Option<Band> {
    let cam = camera.to_uppercase();
    let table = BANDS.iter().find(|(c, _)| *c == cam.as_str())?.1;
    unique_match(&filter_tokens(filter), table)
}

/// SPECRES for a CAMERA, MODSLNAM and FILTER (§4.5; IFS only).
pub fn resolution(camera: &str, mode: &str, filter: &str) -> Option<i64> {
    if camera.to_uppercase() != "IFS" {
        return None;
    }
    let mode = mode.trim().to_uppercase();
    let table = RESOLUTIONS.iter().find(|(m, _)| *m == mode.as_str())?.1;
    unique_match(&filter_tokens(filter), table)
}

/// DISPSCAL/SPATSCAL for a CAMERA (§4.6).
pub fn pixel_scale(camera: &str) -> Option<f64> {
    let cam = camera.to_uppercase();
    PIXEL_SCALES.iter().find(|(c, _)| *c == cam.as_str()).map(|(_, s)| *s)
}

fn text(job: &Job, key: &str) -> String {
    job.hdr.text(key).unwrap_or_default()
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let (cam, filter) = (text(job, "CAMERA"), text(job, "FILTER"));
    match bands(&cam, &filter) {
        Some((blue, cntr, red)) => {
            job.hdr.set("WAVEBLUE", blue, "KOA: Approximate blue end wavelength (microns)");
            job.hdr.set("WAVECNTR", cntr, "KOA: Approximate central wavelength (microns)");
            job.hdr.set("WAVERED", red, "KOA: Approximate red end wavelength (microns)");
        }
        None => job.log(&format!("CAMERA {cam:?} FILTER {filter:?} names no single filter; no wavelengths")),
    }
    Ok(true)
}

fn set_resolution(job: &mut Job) -> StepResult {
    let (cam, mode, filter) = (text(job, "CAMERA"), text(job, "MODSLNAM"), text(job, "FILTER"));
    match resolution(&cam, &mode, &filter) {
        Some(r) => {
            job.hdr.set("SPECRES", r, "KOA: Approximate spectral resolution");
        }
        None => job.log(&format!("CAMERA {cam:?} MODSLNAM {mode:?} FILTER {filter:?}: no spectral resolution")),
    }
    Ok(true)
}

fn set_pixelscale(job: &mut Job) -> StepResult {
    if let Some(s) = pixel_scale(&text(job, "CAMERA")) {
        job.hdr.set("DISPSCAL", s, "KOA: CCD pixel scale, dispersion");
        job.hdr.set("SPATSCAL", s, "KOA: CCD pixel scale, spatial");
    }
    Ok(true)
}

/// Statistics of the primary: a read cube's CDS image (S14), any other
/// array as a whole; none without data.
fn set_image_stats(job: &mut Job) -> StepResult {
    let shape = primary_shape(&job.hdr);
    if shape.is_empty() {
        job.log("primary HDU has no image data; no statistics");
        return Ok(true);
    }
    if shape.len() != 3 {
        return common::set_image_stats_of(job, 0);
    }
    let s = job.host.plane_stats(0, cds_pick(shape[2])).map_err(Fail)?;
    let [mn, sd, md] = common::stat_values(s.mean, s.std, s.median);
    job.hdr.set("IMAGEMN", mn, "KOA: Image data mean");
    job.hdr.set("IMAGESD", sd, "KOA: Image data standard deviation");
    job.hdr.set("IMAGEMD", md, "KOA: Image data median");
    Ok(true)
}

/// Pillow's `Image.thumbnail((1024, 1024))` output size, `None` when the
/// image already fits: the long side becomes 1024, the other the floor or the
/// ceiling of its scaled size, whichever keeps the aspect ratio closer (the
/// floor on a tie), at least 1.
pub fn thumbnail_size(width: u32, height: u32) -> Option<(u32, u32)> {
    if (width <= PREVIEW_BOX && height <= PREVIEW_BOX) || width == 0 || height == 0 {
        return None;
    }
    let side = PREVIEW_BOX as f64;
    let aspect = width as f64 / height as f64;
    // the box is square: its own aspect ratio is 1
    if 1.0 >= aspect {
        let x = round_aspect(side * aspect, |n| (aspect - n / side).abs());
        Some((x, PREVIEW_BOX))
    } else {
        let y = round_aspect(side / aspect, |n| if n == 0.0 { 0.0 } else { (aspect - side / n).abs() });
        Some((PREVIEW_BOX, y))
    }
}

/// Floor or ceiling of `v`, the one with the smaller `key` (floor on a tie), at least 1.
fn round_aspect(v: f64, key: impl Fn(f64) -> f64) -> u32 {
    let (lo, hi) = (v.floor(), v.ceil());
    let best = if key(hi) < key(lo) { hi } else { lo };
    best.max(1.0) as u32
}

/// The preview (§6): a 2-D primary as it is, a read cube as last read − first
/// read; zscale + square root, row 0 at the top (S12 kept), quality 85,
/// shrunk to fit 1024×1024. No data: no preview. Other ranks cannot be
/// previewed (MAKE_JPG_ERROR).
pub fn preview_of(hdr: &Header) -> Result<Vec<Preview>, String> {
    let shape = primary_shape(hdr);
    let plane = match shape.len() {
        0 => return Ok(Vec::new()),
        2 => None,
        3 => Some(cds_pick(shape[2])),
        n => return Err(format!("primary data has {n} axes {shape:?}; a SCALES preview needs a 2-D image or a 3-D read cube")),
    };
    let Some(mut p) = koa_sdk::preview::single(0, hdr, Scaling::ZscaleSqrt, PREVIEW_QUALITY, "") else {
        return Ok(Vec::new());
    };
    p.origin_lower = false;
    if let Some(t) = p.tiles.first_mut() {
        t.plane = plane;
    }
    if let Some((w, h)) = thumbnail_size(shape[0] as u32, shape[1] as u32) {
        p.width = Some(w);
        p.height = Some(h);
    }
    Ok(vec![p])
}

impl Instrument for Scales {
    const KEYMAP: KeyMap = &[("UTC", UT_KEYS), ("PROGNAME", PROGNAME_KEYS)];
    /// No DRP products at either level (§5).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::None };

    fn set_instr(job: &mut Job) -> StepResult {
        set_instr(job)
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        if instr_token(job) != "scales" {
            return Ok(None);
        }
        Ok(prefix_of(&text(job, "CAMERA")).map(str::to_string))
    }

    /// Base KOAID, `_qramp` appended for a 2-D primary when the KOAID was
    /// made here (a KOAID already in the header is kept as it is).
    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        let Some(mut k) = koaid::make_koaid(job, Self::set_instr, Self::prefix)? else { return Ok(None) };
        if !k.preexisting && is_qramp(&job.hdr) {
            k.id.push_str(QRAMP);
        }
        Ok(Some(k))
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_semester", program::set_semester),
            crit("set_ofName", set_ofname),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_elaptime", set_elaptime),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_wavelengths", set_wavelengths),
            opt("set_resolution", set_resolution),
            opt("set_pixelscale", set_pixelscale),
            opt("set_image_stats", set_image_stats),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
        ]
    }

    fn preview_plan(ctx: &Context, hdr: &Header) -> Vec<Preview> {
        Self::preview_plan_checked(ctx, hdr).unwrap_or_default()
    }

    fn preview_plan_checked(_ctx: &Context, hdr: &Header) -> Result<Vec<Preview>, String> {
        preview_of(hdr)
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Scales);

#[cfg(test)]
mod tests;
