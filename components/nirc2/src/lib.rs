//! NIRC2 (spec instruments.md §10): key map OFNAME→FILENAME, prefix N2 with
//! the `_unp` suffix (and RTUI off) for unprocessed cubes, KOAIMTYP from
//! IMTYPE or the shutter/lamp/dome state, wavelengths, detector mode, WCS,
//! linearity and signal-to-noise.
//!
//! Reference defects fixed: #42 (SIG2NOIS uses the column centre NAXIS1/2,
//! not NAXIS2/2) and #30 via `koa_sdk::coords` (a `-00:mm:ss` DEC keeps its
//! sign); a missing OUTDIR in set_instr no longer crashes.

use koa_sdk::common::{self, is_at_domeflat};
use koa_sdk::coords::{dec_degrees, ra_degrees};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::pyfmt::round_to;
use koa_sdk::types::{Context, Preview, Value};
use koa_sdk::value::{to_f64, usable};
use koa_sdk::{Header, Instrument, KeyMap, Koaid, koaid, program, drp};

/// DRP product files: `<KOAID><suffix>` in the DRP folder.
const DRP_SUFFIXES: &[&str] = &["_drp.fits.gz", "_drp.jpg"];

pub struct Nirc2;

/// Whether the file is an unprocessed image cube (`_unp`).
pub fn is_cube(hdr: &Header) -> bool {
    match hdr.raw("LEV0TYPE").filter(|v| usable(v)) {
        None => hdr.len() > 1,
        Some(v) => koa_sdk::value::to_text(v).to_lowercase() == "unprocessed",
    }
}

/// KOAIMTYP from IMTYPE, else from the instrument state.
pub fn koaimtyp(job: &Job) -> &'static str {
    let h = &job.hdr;
    match h.lower("IMTYPE").as_str() {
        "arclamp" => return "arclamp",
        "bias" => return "bias",
        "calib" | "calibration" => return "calib",
        "dark" => return "dark",
        "domeflat" => return "domeflat",
        "flatlamp" => return "flatlamp",
        "flatlampoff" => return "flatlampoff",
        "standard" | "object" => return "object",
        _ => {}
    }
    if h.lower("SHRNAME") == "closed" {
        return "dark";
    }
    let is_one = |k: &str| h.get(k).and_then(to_f64) == Some(1.0);
    match h.lower("OBSFNAME").as_str() {
        "telescope" => {
            if h.lower("FLIMAGIN") == "on" || h.lower("FLSPECTR") == "on" {
                return if is_at_domeflat(job) { "flatlamp" } else { "undefined" };
            }
            let moving = |k: &str| matches!(h.lower(k).as_str(), "tracking" | "slewing" | "in position");
            if moving("DOMESTAT") && moving("AXESTAT") {
                "object"
            } else if is_at_domeflat(job) {
                "flatlampoff"
            } else {
                "undefined"
            }
        }
        "telsim" => {
            if ["ARGONPWR", "XENONPWR", "KRYPTPWR", "NEONPWR"].iter().any(|k| is_one(k)) {
                "arclamp"
            } else if is_one("LAMPPWR") {
                "flatlamp"
            } else {
                "undefined"
            }
        }
        _ => "calib",
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(job);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_ofname(job: &mut Job) -> StepResult {
    let Some(f) = job.hdr.raw_text("FILENAME") else {
        return common::no_ofname(job, "SET_OFNAME_ERROR", "FILENAME missing");
    };
    job.hdr.set("OFNAME", f, "KOA: Original Filename");
    Ok(true)
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let get = |k: &str| job.hdr.raw_f64(k);
    let (Some(max), Some(mut min), Some(cen)) = (get("MAXWAVE"), get("MINWAVE"), get("CENWAVE")) else {
        job.warn("SET_WAVELENGTHS_ERROR", "MAXWAVE, MINWAVE and CENWAVE required");
        return Ok(false);
    };
    let (mut wmax, mut wmin, mut wcen) = (Some(max), Some(min), Some(cen));
    if min == 0.0 {
        if max == 5.0 {
            min = 0.9;
            wmin = Some(min);
        } else if max == 0.0 && cen == 0.0 {
            (wmax, wmin, wcen) = (None, None, None);
        } else {
            wmin = None;
        }
    }
    job.hdr.set("WAVERED", wmax, "KOA: Maximum Wavelength");
    job.hdr.set("WAVEBLUE", wmin, "KOA: Minimum Wavelength");
    job.hdr.set("WAVECNTR", wcen, "KOA: Center Wavelength");
    Ok(true)
}

fn set_detdisp(job: &mut Job) -> StepResult {
    let (mode, disp): (Option<&str>, &str) = match job.hdr.text("GRSNAME").filter(|g| !g.trim().is_empty()) {
        Some(g) => {
            let g = g.replace(' ', "");
            let mode = if ["lowres", "medres", "GR1", "GR2"].contains(&g.as_str()) { "spec" } else { "image" };
            let disp = match g.as_str() {
                "lowres" => "low",
                "medres" => "medium",
                _ => "unknown",
            };
            (Some(mode), disp)
        }
        None => (None, "unknown"),
    };
    job.hdr.set("DETMODE", mode, "KOA: Detector Mode");
    job.hdr.set("DISPERS", disp, "KOA: Dispersion");
    if job.hdr.raw("DETGAIN").is_none() {
        job.hdr.set("DETGAIN", 4i64, "KOA: Detector Gain");
    }
    if job.hdr.raw("DETRN").is_none() {
        job.hdr.set("DETRN", 39i64, "KOA: Detector Read Noise");
    }
    Ok(true)
}

/// (pixel scale arcsec/px, position-angle zero) per camera.
pub fn camera(name: &str) -> Option<(f64, f64)> {
    match name {
        "narrow" => Some((0.009952, 0.448)),
        "medium" => Some((0.019829, 0.7)),
        "wide" => Some((0.039686, 0.7)),
        _ => None,
    }
}

fn set_wcs(job: &mut Job) -> StepResult {
    if is_cube(&job.hdr) {
        return Ok(true);
    }
    let h = &job.hdr;
    let mut parantel = h.f64("PARANTEL");
    let pt = h.text("PARANTEL").unwrap_or_default();
    if pt.trim().is_empty() || pt.contains("error") {
        parantel = h.f64("PARANG");
    }
    let rotmode: String = h.lower("ROTMODE").chars().take(4).collect();
    let cam = h.lower("CAMNAME");
    let rotposn = h.f64("ROTPOSN");
    let el = h.f64("EL");
    let mut pa1 = None;
    if let (Some((p, _)), true) = (camera(&cam), ["posi", "vert", "stat"].contains(&rotmode.as_str())) {
        let _ = p;
        pa1 = match rotmode.as_str() {
            "posi" => rotposn,
            "vert" => rotposn.zip(parantel).map(|(r, pa)| r + pa),
            _ => rotposn.zip(parantel).zip(el).map(|((r, pa), e)| r + pa - e),
        };
    }
    let (mut cd, mut pix): ([Option<String>; 4], Option<String>) = (Default::default(), None);
    let (mut crval1, mut crval2) = (None, None);
    if let (Some(pa1), Some((p, pazero))) = (pa1, camera(&cam)) {
        let theta = -(pa1 - pazero) * std::f64::consts::PI / 180.0;
        let t = |x: f64| format!("{:.12}", round_to(x, 12));
        cd = [
            Some(t(-p * theta.cos() / 3600.0)),
            Some(t(-p * theta.sin() / 3600.0)),
            Some(t(-p * theta.sin() / 3600.0)),
            Some(t(p * theta.cos() / 3600.0)),
        ];
        pix = Some(format!("{p:.6}"));
        crval1 = h.get("RA").and_then(ra_degrees_any);
        crval2 = h.get("DEC").and_then(dec_degrees);
    }
    let naxis = |k: &str| h.raw_f64(k).map(|n| round_to((n + 1.0) / 2.0, 2));
    let (crpix1, crpix2) = (naxis("NAXIS1"), naxis("NAXIS2"));
    let radecsys = if h.f64("EQUINOX") == Some(2000.0) { "FK5" } else { "FK4" };
    let [cd11, cd12, cd21, cd22] = cd;
    let hdr = &mut job.hdr;
    hdr.set("PIXSCALE", pix.clone(), "KOA: Pixel scale");
    hdr.set("PIXSCAL1", pix.clone(), "KOA: Pixel scale, horizontal axis");
    hdr.set("PIXSCAL2", pix, "KOA: Pixel scale, vertical axis");
    hdr.set("CRPIX1", crpix1, "KOA: Reference pixel, horizontal axis");
    hdr.set("CRPIX2", crpix2, "KOA: Reference pixel, vertical axis");
    hdr.set("CRVAL1", crval1, "KOA: WCS value at the reference pixel, horizontal axis");
    hdr.set("CRVAL2", crval2, "KOA: WCS value at the reference pixel, vertical axis");
    hdr.set("CTYPE1", "RA---TAN", "KOA: WCS Type, horizontal coordinate");
    hdr.set("CTYPE2", "DEC--TAN", "KOA: WCS Type, vertical coordinate");
    hdr.set("WAT0_001", "system=image", "KOA: coordinate system");
    hdr.set("WAT1_001", "wtype=tan axtype=ra", "KOA: coordinate system");
    hdr.set("WAT2_001", "wtype=tan axtype=dec", "KOA: coordinate system");
    hdr.set("WCSDIM", 2i64, "KOA: Number of WCS dimensions");
    hdr.set("LTM1_1", 1.0, "KOA: CCD to image transformation");
    hdr.set("LTM2_2", 1.0, "KOA: CCD to image transformation");
    hdr.set("CD1_1", cd11, "KOA: Coordinate transformation matrix");
    hdr.set("CD1_2", cd12, "KOA: Coordinate transformation matrix");
    hdr.set("CD2_1", cd21, "KOA: Coordinate transformation matrix");
    hdr.set("CD2_2", cd22, "KOA: Coordinate transformation matrix");
    hdr.set("RADECSYS", radecsys, "KOA: The system of the coordinates");
    Ok(true)
}

fn ra_degrees_any(v: &Value) -> Option<f64> {
    ra_degrees(v)
}

fn set_elaptime(job: &mut Job) -> StepResult {
    common::set_elaptime_coadds(job, &["TRUITIME", "ITIME"], 5)
}

fn set_instr_status(job: &mut Job) -> StepResult {
    let v = match (job.hdr.text("PSINAME"), job.hdr.text("PSONAME")) {
        (Some(i), Some(o)) if !i.trim().is_empty() && !o.trim().is_empty() => {
            let blank = |s: &str| s.replace(' ', "") == "blank_center";
            if blank(&i) || blank(&o) { 0i64 } else { 1 }
        }
        _ => -1,
    };
    job.hdr.set("INSTSTAT", v, "KOA: Instrument Status");
    Ok(true)
}

fn coadds(job: &Job) -> Option<f64> {
    job.hdr.raw_f64("COADDS")
}

fn set_image_stats(job: &mut Job) -> StepResult {
    if is_cube(&job.hdr) { Ok(true) } else { common::set_image_stats(job) }
}

fn set_npixsat(job: &mut Job) -> StepResult {
    if is_cube(&job.hdr) {
        return Ok(true);
    }
    let sat = coadds(job).map(|c| c * 18000.0);
    common::set_npixsat(job, sat, &[0])
}

fn set_nlinear(job: &mut Job) -> StepResult {
    if is_cube(&job.hdr) || !job.hdr.has_array(0) {
        return Ok(true);
    }
    let Some(c) = coadds(job) else {
        job.warn("SET_NLINEAR_ERROR", "COADDS missing");
        return Ok(false);
    };
    let s = c * 5000.0;
    let n = job.host.count_at_least(0, None, s).map_err(Fail)?;
    job.hdr.set("NLINEAR", n, "KOA: Number of pixels above linearity");
    job.hdr.set("NONLIN", s as i64, "KOA: 3% nonlinearity level (80% full well)");
    Ok(true)
}

/// SIG2NOIS: the spread of row medians of a 20-column band at the column
/// centre (NAXIS1/2 — reference defect #42 used NAXIS2/2).
pub fn sig2nois(rows: &dyn koa_sdk::host::Rows) -> Result<Option<f64>, String> {
    let (cols, nrows) = rows.shape();
    let k = (cols / 2) as usize;
    if nrows < 21 || cols < 20 {
        return Ok(None);
    }
    let (lo, hi) = (k.saturating_sub(10), (k + 10).min(cols as usize));
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y = 10u32;
    while y < nrows - 10 {
        let n = 64.min(nrows - 10 - y);
        let data = rows.read_rows(y, n)?;
        for r in 0..n as usize {
            let mut band: Vec<f32> = data[r * cols as usize + lo..r * cols as usize + hi].iter().copied().filter(|v| v.is_finite()).collect();
            if band.is_empty() {
                continue;
            }
            band.sort_by(f32::total_cmp);
            let m = band.len();
            let med = if m % 2 == 1 { band[m / 2] as f64 } else { (band[m / 2 - 1] as f64 + band[m / 2] as f64) / 2.0 };
            min = min.min(med);
            max = max.max(med);
        }
        y += n;
    }
    if !min.is_finite() {
        return Ok(None);
    }
    Ok(Some((max - min).abs().sqrt().trunc()))
}

fn set_sig2nois(job: &mut Job) -> StepResult {
    if is_cube(&job.hdr) || !job.hdr.has_array(0) {
        return Ok(true);
    }
    let rows = job.host.open_image(0).map_err(Fail)?;
    let v = sig2nois(rows.as_ref()).map_err(Fail)?;
    job.hdr.set("SIG2NOIS", v, "KOA: S/N estimate near image spectral center");
    Ok(true)
}

fn set_isao(job: &mut Job) -> StepResult {
    job.hdr.set("ISAO", "yes", "KOA: AO status");
    Ok(true)
}

/// set_instr: INSTRUME present → accepted; else an OUTDIR with `nirc` names it.
fn set_instr(job: &mut Job) -> StepResult {
    if job.hdr.text("INSTRUME").is_some_and(|v| !v.trim().is_empty()) {
        return Ok(true);
    }
    if job.hdr.text("OUTDIR").is_some_and(|o| o.contains("nirc")) {
        job.hdr.set("INSTRUME", "NIRC2", "KOA: Instrument");
    }
    Ok(true)
}

impl Instrument for Nirc2 {
    const KEYMAP: KeyMap = &[("OFNAME", &["FILENAME"])];
    /// The `_drp` files (instruments.md §10).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::Suffixes(DRP_SUFFIXES), level2: drp::Rule::Suffixes(DRP_SUFFIXES) };

    fn set_instr(job: &mut Job) -> StepResult {
        set_instr(job)
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok((job.hdr.text("INSTRUME").as_deref() == Some("NIRC2")).then(|| "N2".to_string()))
    }

    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        let Some(mut k) = koaid::make_koaid(job, Self::set_instr, Self::prefix)? else { return Ok(None) };
        if !k.preexisting && is_cube(&job.hdr) {
            k.id.push_str("_unp");
        }
        Ok(Some(k))
    }

    fn rtui(_job: &Job, koaid: &str) -> bool {
        !koaid.ends_with("_unp")
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            crit("set_ofName", set_ofname),
            opt("set_wavelengths", set_wavelengths),
            opt("set_detdisp", set_detdisp),
            opt("set_wcs", set_wcs),
            opt("set_elaptime", set_elaptime),
            opt("set_instr_status", set_instr_status),
            opt("set_weather", common::set_weather),
            opt("set_image_stats", set_image_stats),
            opt("set_npixsat", set_npixsat),
            opt("set_nlinear", set_nlinear),
            opt("set_sig2nois", set_sig2nois),
            opt("set_isao", set_isao),
            opt("set_oa", common::set_oa),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
        ]
    }

    /// Base renderer; none for cubes.
    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        if is_cube(hdr) { Vec::new() } else { koa_sdk::preview::base(hdr) }
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Nirc2);

#[cfg(test)]
mod tests;
