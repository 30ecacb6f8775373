//! KCWI (spec instruments.md §6): key map UTC→UT, prefixes KB/KR/KF/KS by
//! CAMERA, KOAIMTYP, elapsed time, slicer/grating table (wavelengths,
//! resolution, slit size, pixel scales), FPC WCS, histogram-equalised JPEG,
//! and the DRP products of levels 1 and 2.
//!
//! Reference defects fixed (#36): the FPC test of set_wcs is
//! case-insensitive like every other CAMERA test; a `-00:mm:ss` DEC keeps its
//! sign (`koa_sdk::coords`); a mask with CWAVE ≤ 0 leaves the wavelengths
//! unset instead of crashing (SPECRES is still set, as it is for every known
//! grating and slicer).

use std::path::{Path, PathBuf};

use koa_sdk::common;
use koa_sdk::coords::{dec_degrees, ra_degrees};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::pyfmt::{round_int, round_to};
use koa_sdk::drp::{self, Listing, default_rel, product};
use koa_sdk::types::{Card, Context, DrpProduct, DrpRequest, Preview, Scaling};
use koa_sdk::value::{to_f64, to_text, usable};
use koa_sdk::{Header, Instrument, KeyMap, program};

pub struct Kcwi;

/// The DRP's redux cubes of a KOAID (either may exist).
fn cubes(datadir: &Path, koaid: &str) -> Vec<PathBuf> {
    ["_icubed.fits", "_icubes.fits"].iter().map(|s| datadir.join("redux").join(format!("{koaid}{s}"))).collect()
}

/// FRAMENO of a primary header (integer, real or text).
fn frameno(cards: &[Card]) -> Option<i64> {
    cards.iter().find(|c| c.key == "FRAMENO").and_then(|c| koa_sdk::value::to_i64(&c.value))
}

/// KCWI products (instruments.md §6): the cubes, the arc/bars/bias/ql plots
/// of earlier frames, and at level 2 the processing table, the configured
/// DRP configuration, the frame's own sky/scat/std plots and the logs. The
/// stage file lies in the DRP output folder.
pub fn drp_products(level: u8, stage_file: &str, koaid: &str, listing: &Listing) -> Result<Vec<DrpProduct>, String> {
    let none = || format!("no redux/{koaid}_icubed.fits or _icubes.fits");
    let datadir = Path::new(stage_file).parent().ok_or_else(none)?;
    let found: Vec<PathBuf> = cubes(datadir, koaid).into_iter().filter(|p| listing.is_file(p)).collect();
    let n = found.first().and_then(|c| listing.header(c)).and_then(frameno).ok_or_else(none)?;
    let mut out: Vec<DrpProduct> = found.iter().map(|src| product(src, default_rel(src))).collect();
    let plots = |kinds: &[&str], keep: &dyn Fn(i64) -> bool| -> Vec<DrpProduct> {
        listing
            .files_in(&datadir.join("plots"))
            .into_iter()
            .filter(|p| {
                let name = drp::name(p);
                let parts: Vec<&str> = name.split('_').collect();
                parts.len() >= 2 && kinds.contains(&parts[0]) && parts[1].parse::<i64>().is_ok_and(keep)
            })
            .map(|src| product(&src, default_rel(&src)))
            .collect()
    };
    out.extend(plots(&["arc", "bars", "bias", "ql"], &|f| f < n));
    if level >= 2 {
        let table = datadir.join("kcwi.proc");
        if listing.is_file(&table) {
            out.push(product(&table, default_rel(&table)));
        }
        out.extend(listing.config_files().iter().map(|c| product(c, drp::name(c))));
        out.extend(plots(&["sky", "scat", "std"], &|f| f == n));
        out.extend(listing.files_in(&datadir.join("logs")).iter().map(|src| product(src, default_rel(src))));
    }
    Ok(out)
}

/// Grating: (wavelength coverage Å, R for large, medium, small slicer).
pub fn grating(name: &str) -> Option<(f64, [i64; 3])> {
    Some(match name {
        "bl" => (2000.0, [900, 1800, 3600]),
        "bm" => (850.0, [2000, 4000, 8000]),
        "bh3" => (500.0, [4500, 9000, 18000]),
        "bh2" => (405.0, [4500, 9000, 18000]),
        "bh1" => (400.0, [4500, 9000, 18000]),
        "rl" => (275.0, [10500, 7000, 3500]),
        "rm1" => (145.0, [4050, 2700, 1350]),
        "rm2" => (190.0, [4700, 2800, 1900]),
        "rh1" => (60.0, [1800, 1200, 600]),
        "rh2" => (75.0, [2025, 1350, 675]),
        "rh3" => (90.0, [2400, 1600, 800]),
        "rh4" => (80.0, [2775, 1850, 925]),
        _ => return None,
    })
}

/// Slicer: (index into the R table, slit width arcsec).
pub fn slicer(name: &str) -> Option<(usize, f64)> {
    match name {
        "large" => Some((0, 1.35)),
        "medium" => Some((1, 0.69)),
        "small" => Some((2, 0.35)),
        _ => None,
    }
}

fn camera(job: &Job) -> String {
    job.hdr.lower("CAMERA")
}

/// KOAIMTYP: FPC/SVC cameras, zero exposure → bias, else IMTYPE.
pub fn koaimtyp(hdr: &Header) -> String {
    match hdr.lower("CAMERA").as_str() {
        "fpc" => return "fpc".into(),
        "svc" => return "svc".into(),
        _ => {}
    }
    if hdr.f64("XPOSURE") == Some(0.0) {
        return "bias".into();
    }
    match hdr.text("IMTYPE").filter(|t| !t.trim().is_empty()) {
        Some(t) => t.to_lowercase(),
        None => "undefined".into(),
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, &t, "no IMTYPE")
}

fn set_telescope(job: &mut Job) -> StepResult {
    if !job.hdr.raw("TELESCOP").is_some_and(usable) {
        job.hdr.set("TELESCOP", "Keck II", "KOA: Telescope name");
    }
    Ok(true)
}

fn set_elaptime(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let v = ["ELAPTIME", "EXPTIME", "XPOSURE"]
        .iter()
        .find_map(|k| h.raw(k).filter(|v| usable(v)).and_then(to_f64))
        .or_else(|| h.raw_f64("ITIME").zip(h.raw_f64("COADDS")).map(|(i, c)| round_to(i * c, 4)));
    let Some(v) = v else {
        job.warn("SET_ELAPTIME_ERROR", "no ELAPTIME, EXPTIME, XPOSURE or ITIME×COADDS");
        return Ok(false);
    };
    job.hdr.set("ELAPTIME", v, "KOA: Total integration time");
    Ok(true)
}

/// Binning factor: a number, or the first field of `a,b`.
fn binning(hdr: &Header) -> Option<f64> {
    let v = hdr.get("BINNING")?;
    to_f64(v).or_else(|| to_text(v).split(',').next()?.trim().parse::<i64>().ok().map(|n| n as f64))
}

fn set_slitdims(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let Some(ifunam) = h.text("IFUNAM") else {
        job.warn("SET_SLITDIMS_ERROR", "IFUNAM missing");
        return Ok(false);
    };
    let cam = camera(job);
    let side = if cam == "red" { "R" } else { "B" };
    let cwave = h.f64(&format!("{side}CWAVE")).unwrap_or(0.0);
    let grat = h.lower(&format!("{side}GRATNAM"));
    let nas = h.lower(&format!("{side}NASNAM"));
    let sl = slicer(&ifunam.to_lowercase());
    let (mut blue, mut cntr, mut red, mut specres) = (None::<i64>, None::<i64>, None::<i64>, None::<i64>);
    let (mut width, mut length, mut disp) = (None, None, None);
    let mut warning = None;
    if let Some((_, w)) = sl {
        width = Some(w);
        length = Some(20.4);
    }
    if let (Some((i, _)), Some((waves, rs))) = (sl, grating(&grat)) {
        specres = Some(rs[i]);
        if cwave > 0.0 {
            let c = round_int(cwave);
            let (mut b, mut r) = (round_int(c as f64 - waves / 2.0), round_int(c as f64 + waves / 2.0));
            if nas == "mask" {
                let diff = ((r - b) / 3 + 99) / 100 * 100;
                b = c - diff;
                r = c + diff;
            }
            (blue, cntr, red) = (Some(b), Some(c), Some(r));
        } else if nas == "mask" {
            warning = Some(format!("{side}CWAVE {cwave} with a mask: wavelengths unknown"));
        }
    }
    let scale = match cam.as_str() {
        "fpc" => Some(0.0075),
        "blue" | "red" => Some(0.147),
        _ => None,
    };
    if let (Some(s), Some(b)) = (scale, binning(h)) {
        // the raw product, as the reference writes it (0.147·3 = 0.44099999999999995)
        disp = Some(s * b);
    }
    if cam == "fpc" {
        (blue, cntr, red) = (Some(3700), Some(6850), Some(10000));
    }
    if let Some(w) = warning {
        job.warn("SET_SLITDIMS_ERROR", w);
    }
    let hdr = &mut job.hdr;
    hdr.set("WAVEBLUE", blue, "KOA: Blue end wavelength");
    hdr.set("WAVECNTR", cntr, "KOA: Central wavelength");
    hdr.set("WAVERED", red, "KOA: Red end wavelength");
    hdr.set("SPECRES", specres, "KOA: Nominal spectral resolution");
    hdr.set("SPATSCAL", disp, "KOA: CCD pixel scale, spatial");
    hdr.set("DISPSCAL", disp, "KOA: CCD pixel scale, dispersion");
    hdr.set("SLITWIDT", width, "KOA: Slit width on sky");
    hdr.set("SLITLEN", length, "KOA: Slit length on sky");
    Ok(true)
}

/// Round to 8 significant digits (`%.7e`).
fn sig8(x: f64) -> f64 {
    format!("{x:.7e}").parse().unwrap_or(x)
}

fn set_wcs(job: &mut Job) -> StepResult {
    if camera(job) != "fpc" {
        return Ok(true);
    }
    let h = &job.hdr;
    let parantel = h.f64("PARANTEL").or_else(|| h.f64("PARANG"));
    let mode: String = h.lower("ROTMODE").chars().take(4).collect();
    let rot = h.f64("ROTPOSN");
    let pa1 = match mode.as_str() {
        "posi" => rot,
        "vert" => rot.zip(parantel).map(|(r, p)| r + p),
        "stat" => rot.zip(parantel).zip(h.f64("EL")).map(|((r, p), e)| r + p - e),
        _ => {
            job.warn("SET_WCS_ERROR", mode);
            return Ok(false);
        }
    };
    let (Some(pa1), Some(bin)) = (pa1, binning(h)) else {
        job.warn("SET_WCS_ERROR", "ROTPOSN/PARANTEL/BINNING missing");
        return Ok(false);
    };
    let binning_text = h.text("BINNING").unwrap_or_default();
    let pix = 0.0075 * bin;
    let theta = -(pa1 - 0.7) * std::f64::consts::PI / 180.0;
    let (c, s) = (theta.cos(), theta.sin());
    let crpix = |k: &str| h.raw_f64(k).map(|n| round_to((n + 1.0) / 2.0, 2));
    let (crpix1, crpix2) = (crpix("NAXIS1"), crpix("NAXIS2"));
    let (ra, dec) = (h.get("RA").and_then(ra_degrees), h.get("DEC").and_then(dec_degrees));
    let sys = if h.f64("EQUINOX") == Some(2000.0) { "FK5" } else { "FK4" };
    let hdr = &mut job.hdr;
    hdr.set("BINNING", binning_text, "Binning: serial/axis1, parallel/axis2");
    hdr.set("CD1_1", sig8(-pix * c / 3600.0), "KOA: WCS coordinate transformation matrix");
    hdr.set("CD1_2", sig8(-pix * s / 3600.0), "KOA: WCS coordinate transformation matrix");
    hdr.set("CD2_1", sig8(-pix * s / 3600.0), "KOA: WCS coordinate transformation matrix");
    hdr.set("CD2_2", sig8(pix * c / 3600.0), "KOA: WCS coordinate transformation matrix");
    hdr.set("CRPIX1", crpix1, "KOA: Reference pixel");
    hdr.set("CRPIX2", crpix2, "KOA: Reference pixel");
    hdr.set("CRVAL1", ra, "KOA: Reference pixel value");
    hdr.set("CRVAL2", dec, "KOA: Reference pixel value");
    hdr.set("RADECSYS", sys, "KOA: WCS coordinate system");
    hdr.set("CTYPE1", "RA---TAN", "KOA: WCS type of the horizontal coordinate");
    hdr.set("CTYPE2", "DEC--TAN", "KOA: WCS type of the vertical coordinate");
    Ok(true)
}

impl Instrument for Kcwi {
    const KEYMAP: KeyMap = &[("UTC", &["UT"])];

    fn drp_scan(ctx: &Context, stage_file: &str, koaid: &str) -> DrpRequest {
        let Some(datadir) = Path::new(stage_file).parent() else { return DrpRequest { folders: vec![], headers: vec![] } };
        let mut folders = vec![drp::folder(datadir.join("redux"), false), drp::folder(datadir.join("plots"), false)];
        if ctx.level >= 2 {
            folders.push(drp::folder(datadir, false));
            folders.push(drp::folder(datadir.join("logs"), false));
        }
        DrpRequest { folders, headers: cubes(datadir, koaid).iter().map(|p| p.display().to_string()).collect() }
    }

    fn drp_select(ctx: &Context, stage_file: &str, koaid: &str, listing: &Listing) -> Result<Vec<DrpProduct>, String> {
        drp_products(ctx.level, stage_file, koaid, listing)
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        if instr_token(job) != "kcwi" {
            return Ok(None);
        }
        Ok(match camera(job).as_str() {
            "blue" => Some("KB".into()),
            "red" => Some("KR".into()),
            "fpc" => Some("KF".into()),
            "svc" => Some("KS".into()),
            _ => None,
        })
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            opt("set_telescope", set_telescope),
            crit("set_ofName", common::set_ofname),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_frameno", common::set_frameno),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_elaptime", set_elaptime),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_image_stats", common::set_image_stats),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            opt("set_npixsat", |j| common::set_npixsat(j, Some(65535.0), &[0])),
            opt("set_slitdims", set_slitdims),
            opt("set_wcs", set_wcs),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
        ]
    }

    /// Histogram-equalised primary data, full size, origin lower, quality 92.
    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        koa_sdk::preview::single(0, hdr, Scaling::HistogramEqualize, 92, "").into_iter().collect()
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Kcwi);

#[cfg(test)]
mod tests;
