//! DEIMOS (spec instruments.md §2): key map OFNAME→OUTFILE, prefixes DE and
//! DF (flexure-compensation camera frames), KOAIMTYP, FCS date/time and the
//! FCS KOAID association, camera/filter/MJD, observing mode, detector
//! sections, saturation over the CCDs, wavelengths, scales and resolution,
//! the level-1 RTI row; the 2×4 CCD mosaic preview at level 0.
//!
//! Reference defects fixed (#33): an FCS frame's DATE-OBS/UTC are repaired
//! from DATE *before* its KOAID is built; the observing mode of a dispersed
//! frame is longslit/mos whatever the grating slot (not only GRATEPOS 3/4);
//! set_fcskoaid is complete (the science frame records the KOAID of its FCS
//! image; an FCS image not yet archived is a warning, FCSKOAID empty);
//! the level-1 row is queued as a follow-up only for first-time runs.
//! Design change (issue 3): the mosaic preview is made at level 0 again.

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::preview::{MosaicSpec, mosaic};
use koa_sdk::pyfmt::round_tens;
use koa_sdk::types::{Context, Followup, HduKind, Preview};
use koa_sdk::value::{to_f64, usable};
use koa_sdk::{Header, Instrument, KeyMap, Koaid, koaid, program, drp};

pub struct Deimos;

/// Grating → (wave Å, dispersion Å/pix, length Å).
pub fn grating(name: &str) -> Option<(f64, f64, f64)> {
    Some(match name {
        "600ZD" => (7500.0, 0.65, 5300.0),
        "830G" => (8640.0, 0.47, 3840.0),
        "900ZD" => (5500.0, 0.44, 3530.0),
        "1200G" => (7760.0, 0.33, 2630.0),
        "1200B" => (4500.0, 0.33, 2630.0),
        _ => return None,
    })
}

/// Filter → (blue, centre, red) Å.
pub fn filter(name: &str) -> Option<(i64, i64, i64)> {
    Some(match name {
        "B" => (4200, 4400, 4600),
        "V" => (5150, 5450, 5750),
        "R" => (6100, 6500, 6900),
        "I" => (7600, 8400, 9200),
        "Z" => (8600, 9100, 9600),
        "GG400" => (4000, 7250, 10500),
        "GG455" => (4550, 7525, 10500),
        "GG495" => (4950, 7725, 10500),
        "OG550" => (5500, 8000, 10500),
        "NG8560" => (8400, 8550, 8700),
        "NG8580" => (8550, 8600, 8650),
        _ => return None,
    })
}

fn is_fcs(h: &Header) -> bool {
    h.text("OUTDIR").is_some_and(|o| o.contains("/fcs"))
}

/// FCS frames: DATE-OBS and UTC from DATE (`YYYY-MM-DDTHH:MM:SS`).
fn set_fcs_date_time(job: &mut Job) -> StepResult {
    if !is_fcs(&job.hdr) {
        return Ok(true);
    }
    let Some(date) = job.hdr.text("DATE").filter(|d| d.contains('T')) else { return Ok(true) };
    let (d, t) = date.split_once('T').unwrap_or_default();
    let (d, t) = (d.to_string(), format!("{}.00", t.trim()));
    if job.hdr.raw_text("DATE-OBS").as_deref() != Some(d.as_str()) {
        job.hdr.set("DATE-OBS", d, "KOA: Created from DATE keyword value");
    }
    if job.hdr.raw_text("UTC").as_deref() != Some(t.as_str()) {
        job.hdr.set("UTC", t, "KOA: Created from DATE keyword value");
    }
    Ok(true)
}

/// KOAIMTYP (spec §2).
pub fn koaimtyp(h: &Header) -> &'static str {
    if is_fcs(h) {
        return "fcscal";
    }
    let l = |k: &str| h.lower(k);
    let (hatch, lamps) = (l("HATCHPOS"), l("LAMPS"));
    let gpos = h.raw("GRATEPOS").and_then(to_f64);
    match l("OBSTYPE").as_str() {
        "bias" => return "bias",
        "dark" => return "dark",
        _ => {}
    }
    if l("SLMSKNAM").starts_with("goh") {
        "focus"
    } else if hatch == "closed" && lamps.contains("qz") {
        "flatlamp"
    } else if hatch == "open" && (l("FLIMAGIN") == "on" || l("FLSPECTR") == "on") {
        "flatlamp"
    } else if hatch == "closed" && !lamps.contains("off") && !lamps.contains("qz") && matches!(gpos, Some(p) if p == 3.0 || p == 4.0) {
        "arclamp"
    } else if hatch == "open" {
        "object"
    } else if h.text("OUTDIR").is_some_and(|o| o.contains("fcs")) {
        "fcscal"
    } else {
        "undefined"
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

/// FCSKOAID: the KOAID of the FCS image this frame names (FCSIMGFI).
fn set_fcskoaid(job: &mut Job) -> StepResult {
    let f = job.hdr.text("FCSIMGFI").unwrap_or_default().trim().to_string();
    let mut value = String::new();
    if !f.is_empty() {
        let path = if f.starts_with("/sdata") { format!("/s{f}") } else { f.clone() };
        match job.host.koaid_for_file(&path) {
            Ok(Some(k)) => value = if k.ends_with(".fits") { k } else { format!("{k}.fits") },
            Ok(None) => job.warn("FCSKOAID_NOT_FOUND", format!("FCS image {path} is not archived (yet)")),
            Err(e) => job.warn("FCSKOAID_LOOKUP_ERROR", koa_sdk::host::service_error_text(&e)),
        }
    }
    job.hdr.set("FCSKOAID", value, "KOA: associated fcs file");
    Ok(true)
}

/// OBSMODE (defect #33: not only for GRATEPOS 3/4).
pub fn obsmode(h: &Header) -> &'static str {
    let g = h.lower("GRATENAM");
    if g.is_empty() || g == "unknown" || g == "none" {
        return "unknown";
    }
    if g == "mirror" {
        return "imaging";
    }
    let p = h.raw("GRATEPOS").and_then(to_f64).unwrap_or(0.0) as i64;
    if h.lower(&format!("G{p}TLTNAM")) == "zeroth_order" {
        return "imaging";
    }
    let mask = h.text("SLMSKNAM").unwrap_or_default();
    if mask.starts_with("LVM") || mask.starts_with("Long") { "longslit" } else { "mos" }
}

fn mode(job: &Job) -> String {
    job.hdr.text("OBSMODE").unwrap_or_default()
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let w: Option<(i64, i64, i64)> = match mode(job).as_str() {
        "imaging" => filter(h.text("FILTER").unwrap_or_default().trim()),
        "longslit" | "mos" => {
            let p = h.raw("GRATEPOS").and_then(to_f64).unwrap_or(0.0) as i64;
            match (grating(h.text("GRATENAM").unwrap_or_default().trim()), h.f64(&format!("G{p}TLTWAV"))) {
                (Some((_, _, len)), Some(c)) => {
                    let c = round_tens(c, 1);
                    Some((round_tens(c - len / 2.0, 1) as i64, c as i64, round_tens(c + len / 2.0, 1) as i64))
                }
                _ => None,
            }
        }
        _ => None,
    };
    job.hdr.set("WAVEBLUE", w.map(|w| w.0), "KOA: Blue end wavelength");
    job.hdr.set("WAVECNTR", w.map(|w| w.1), "KOA: Center wavelength");
    job.hdr.set("WAVERED", w.map(|w| w.2), "KOA: Red end wavelength");
    Ok(true)
}

fn set_dispscal(job: &mut Job) -> StepResult {
    let g = grating(job.hdr.text("GRATENAM").unwrap_or_default().trim());
    let (v, suffix) = match (mode(job).as_str(), g) {
        ("imaging", _) => (Some(0.1185), " (arcsec/pix)"),
        ("longslit" | "mos", Some((_, d, _))) => (Some(d), " (A/pix)"),
        _ => (None, ""),
    };
    job.hdr.set("DISPSCAL", v, &format!("KOA: CCD dispersion pixel scale{suffix}"));
    Ok(true)
}

fn set_specres(job: &mut Job) -> StepResult {
    let v = grating(job.hdr.text("GRATENAM").unwrap_or_default().trim()).map(|(w, d, _)| round_tens(w * 0.1185 / d, 1));
    job.hdr.set("SPECRES", v, "KOA: nominal spectral resolution");
    Ok(true)
}

fn set_detsec(job: &mut Job) -> StepResult {
    for i in 1..=16usize {
        let v = (i < job.hdr.len()).then(|| job.hdr.raw_text_ext(i, "DETSEC")).flatten();
        job.hdr.set(&format!("DETSEC{i:02}"), v, &format!("KOA: Mosaic detector section for HDU{i:02}"));
    }
    Ok(true)
}

/// Level 0, first run: queue the level-1 RTI row (its JPEG is made from the published lev0 file).
fn run_lev1(job: &mut Job) -> StepResult {
    if job.ctx.level == 0 && !job.ctx.reprocess {
        job.followups.push(Followup::QueueLevel((1, "RTI".into())));
    }
    Ok(true)
}

impl Instrument for Deimos {
    const KEYMAP: KeyMap = &[("OFNAME", &["OUTFILE"])];
    /// Level 1 comes from the RTI row (the mosaic JPEG); PypeIt level 2.
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::PypeIt };
    const KEYSKIPS: &'static [&'static str] = &[
        "EXPOSURE", "MPPMODE", "NAXIS1", "NAXIS2", "NUMAMPS", "OBSNUM", "PREPIX", "SFRAMENO", "SHUTSTAT", "SOBJECT", "SOBSTYPE", "SOUTDIR",
        "SOUTFILE", "STTIME", "SYNOPFMT", "SYNOPSIS", "TODISK", "VOFFSET0", "VOFFSET1", "WINDOW", "YFLIP",
    ];

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        if is_fcs(&job.hdr) {
            return Ok(Some("DF".into()));
        }
        Ok((instr_token(job) == "deimos").then(|| "DE".to_string()))
    }

    /// Defect #33: the FCS date/time repair runs before the KOAID is made.
    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        if job.hdr.raw_text("KOAID").is_none() {
            set_fcs_date_time(job)?;
        }
        koaid::make_koaid(job, Self::set_instr, Self::prefix)
    }

    fn has_target_info(job: &mut Job) -> bool {
        (0..job.hdr.len()).any(|i| job.hdr.hdu(i).is_some_and(|h| !matches!(h.kind, HduKind::Primary | HduKind::Image | HduKind::CompressedImage)))
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_fcs_date_time", set_fcs_date_time),
            crit("set_ut", common::set_ut),
            crit("set_koaimtyp", set_koaimtyp),
            opt("set_fcskoaid", set_fcskoaid),
            crit("set_ofName", common::set_ofname_outfile),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            crit("set_camera", |j| {
                if !j.hdr.raw("CAMERA").is_some_and(usable) {
                    j.hdr.set("CAMERA", "DEIMOS", "KOA: Camera name");
                }
                Ok(true)
            }),
            crit("set_filter", |j| {
                if let Some(f) = j.hdr.raw("DWFILNAM").filter(|v| usable(v)).cloned() {
                    j.hdr.set("FILTER", f, "KOA: Filter name");
                }
                Ok(true)
            }),
            opt("set_mjd", |j| {
                if let Some(m) = j.hdr.raw("MJD-OBS").filter(|v| usable(v)).and_then(to_f64) {
                    j.hdr.set("MJD", m, "KOA: Modified julian day");
                }
                Ok(true)
            }),
            opt("set_obsmode", |j| {
                let m = obsmode(&j.hdr);
                Ok(j.hdr.set("OBSMODE", m, "KOA: Observing mode") || true)
            }),
            opt("set_nexten", |j| {
                let n = j.hdr.len() as i64 - 1;
                Ok(j.hdr.set("NEXTEN", n, "KOA: Number of image extensions") || true)
            }),
            opt("set_detsec", set_detsec),
            opt("set_npixsat", |j| {
                let exts = common::image_extensions(j);
                common::set_npixsat(j, Some(65535.0), &exts)
            }),
            opt("set_wavelengths", set_wavelengths),
            opt("set_spatscal", |j| Ok(j.hdr.set("SPATSCAL", 0.1185, "KOA: CCD spatial pixel scale") || true)),
            opt("set_dispscal", set_dispscal),
            opt("set_specres", set_specres),
            crit("set_propint", program::set_propint),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
            opt("run_lev1", run_lev1),
        ]
    }

    /// FCS frames: the base renderer. Science frames: the 2×4 CCD mosaic at half size.
    fn preview_plan(ctx: &Context, hdr: &Header) -> Vec<Preview> {
        Self::preview_plan_checked(ctx, hdr).unwrap_or_default()
    }

    fn preview_plan_checked(_ctx: &Context, hdr: &Header) -> Result<Vec<Preview>, String> {
        if is_fcs(hdr) {
            return Ok(koa_sdk::preview::base(hdr));
        }
        let spec = MosaicSpec::from_header(hdr, Some(4096), 2, false);
        // an unparsable DETSEC aborts the preview (MAKE_JPG_ERROR); a missing one skips the HDU
        Ok(mosaic(hdr, &spec, "")?.into_iter().collect())
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Deimos);

#[cfg(test)]
mod tests;
