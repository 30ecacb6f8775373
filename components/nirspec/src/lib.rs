//! NIRSPEC / NIRSPAO (spec instruments.md §12): key map OFNAME→DATAFILE,
//! FRAMENO→FRAMENUM, prefixes NC (SCAM) / NS (SPEC), KOAIMTYP from OBSTYPE or
//! the calibration unit, AO flag, dispersion and slit values, filters and
//! their wavelength table, detector gain/read noise, saturation.
//!
//! Reference defects fixed (#39): slit length and width are compared as
//! numbers (the reference compared text, so `12x2.26` had length 2.26); the
//! AO low-resolution path maps the width for SPECRES and goes on (the
//! reference crashed; SLITWIDT stays the SLITNAME width); the mixed-case filter keys
//! (Br-Gamma, Yband-new, …) are reachable because the match is
//! case-insensitive; a missing INSTRUME or CAMERA/OUTDIR is an error, not a crash.

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::value::to_f64;
use koa_sdk::{Header, Instrument, KeyMap, program};

pub struct Nirspec;

/// NS / NC from CAMERA (or OUTDIR).
pub fn prefix_of(hdr: &Header) -> Option<&'static str> {
    let c = hdr.text("CAMERA").filter(|c| !c.trim().is_empty()).or_else(|| hdr.text("OUTDIR"))?.to_lowercase();
    if c.contains("scam") {
        Some("NC")
    } else if c.contains("spec") {
        Some("NS")
    } else {
        None
    }
}

fn is_ao(hdr: &Header) -> bool {
    hdr.text("INSTRUME").is_some_and(|i| i.trim() == "NIRSPAO")
}

/// KOAIMTYP (spec §12).
pub fn koaimtyp(hdr: &Header) -> &'static str {
    match hdr.lower("OBSTYPE").as_str() {
        "object" | "standard" | "telluric" => return "object",
        "bias" => return "bias",
        "dark" => return "dark",
        "domeflat" => return "domeflat",
        "domearc" => return "domearc",
        "arclamp" => return "arclamp",
        "flatlamp" => return "flatlamp",
        _ => {}
    }
    let l = |k: &str| hdr.lower(k);
    let (calm, calp) = (l("CALMPOS"), l("CALPPOS"));
    let arc = ["XENON", "KRYPTON", "ARGON", "NEON"].iter().any(|k| l(k) == "on");
    let flat = l("FLIMAGIN") == "on" || l("FLSPECTR") == "on";
    if arc {
        if calm == "in" && calp == "out" { "arclamp" } else { "undefined" }
    } else if !flat && calm == "in" {
        "flatlampoff"
    } else if flat && calm == "in" && calp == "out" {
        "flatlamp"
    } else if hdr.f64("ITIME").is_some_and(|t| t.trunc() == 0.0) {
        "bias"
    } else if calm == "out" && calp == "out" {
        "object"
    } else {
        "undefined"
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_elaptime(job: &mut Job) -> StepResult {
    common::set_elaptime_coadds(job, &["TRUITIME"], 5)
}

fn set_isao(job: &mut Job) -> StepResult {
    let v = if is_ao(&job.hdr) { "yes" } else { "no" };
    job.hdr.set("ISAO", v, "KOA: Is this NIRSPAO data?");
    Ok(true)
}

fn spec(job: &Job) -> bool {
    prefix_of(&job.hdr) == Some("NS")
}

fn set_dispers(job: &mut Job) -> StepResult {
    let pscale = job.hdr.f64("PSCALE");
    job.hdr.set("SPATSCAL", pscale, "KOA: pixel scale, spatial (arcsec/pixel)");
    let (disp, scale): (Option<&str>, Option<f64>) = if spec(job) {
        let ao = is_ao(&job.hdr);
        match job.hdr.text("SLITNAME").filter(|s| !s.trim().is_empty()) {
            None => (Some("unknown"), None),
            Some(s) if s.contains("x42") => (Some("low"), Some(if ao { 0.012 } else { 0.129 })),
            Some(_) => (Some("high"), Some(if ao { 0.009 } else { 0.096 })),
        }
    } else {
        (None, None)
    };
    job.hdr.set("DISPERS", disp, "KOA: dispersion level");
    job.hdr.set("DISPSCAL", scale, "KOA: pixel scale, dispersion (arcsec/pixel)");
    Ok(true)
}

const LOW_RES: &[(f64, i64)] = &[(0.144, 3540), (0.288, 2850), (0.38, 2500), (0.432, 2330), (0.57, 2000), (0.576, 1990), (0.72, 1820), (0.76, 1800)];
const AO_LOW: &[(f64, f64)] = &[(0.036, 0.38), (0.054, 0.57), (0.072, 0.76)];
const AO_HIGH: &[(f64, f64)] = &[
    (0.0136, 0.144), (0.0271, 0.288), (0.0272, 0.288), (0.0407, 0.432), (0.0543, 0.576), (0.0679, 0.720), (0.0358, 0.380), (0.0538, 0.570), (0.0717, 0.760),
];

fn lookup(t: &[(f64, f64)], k: f64) -> Option<f64> {
    t.iter().find(|(a, _)| (a - k).abs() < 1e-9).map(|(_, b)| *b)
}

/// (SLITLEN, SLITWIDT, SPECRES) of a SPEC frame. With AO the width maps to
/// its seeing-limited equivalent for SPECRES only; SLITWIDT is the width of
/// SLITNAME (as the reference writes it).
pub fn slit_values(slitname: &str, dispers: &str, ao: bool) -> (Option<f64>, Option<f64>, Option<i64>) {
    let Some((a, b)) = slitname.split_once('x') else { return (None, None, None) };
    let (Ok(mut len), Ok(mut wid)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) else { return (None, None, None) };
    if wid > len {
        std::mem::swap(&mut len, &mut wid);
    }
    let mapped = |t: &[(f64, f64)]| if ao { lookup(t, wid).unwrap_or(wid) } else { wid };
    let res = match dispers {
        "low" => {
            let w = mapped(AO_LOW);
            LOW_RES.iter().find(|(lw, _)| (lw - w).abs() < 1e-9).map(|(_, r)| *r)
        }
        "high" => Some(((10800.0 / mapped(AO_HIGH) / 100.0).ceil() * 100.0) as i64),
        _ => None,
    };
    (Some(len), Some(wid), res)
}

fn set_slit_values(job: &mut Job) -> StepResult {
    let (len, wid, res) = if spec(job) {
        let disp = job.hdr.lower("DISPERS");
        slit_values(&job.hdr.text("SLITNAME").unwrap_or_default(), &disp, is_ao(&job.hdr))
    } else {
        (None, None, None)
    };
    job.hdr.set("SLITLEN", len, "KOA: Slit length projected on sky (arcsec)");
    job.hdr.set("SLITWIDT", wid, "KOA: Slit width projected on sky (arcsec)");
    job.hdr.set("SPECRES", res, "KOA: Nominal spectral resolution");
    Ok(true)
}

fn set_filter(job: &mut Job) -> StepResult {
    if job.hdr.text("FILTER").is_some_and(|f| !f.trim().is_empty()) {
        return Ok(true);
    }
    let part = |k: &str| {
        let v = job.hdr.text(k).unwrap_or_default();
        if ["thick", "thin", "open"].contains(&v.trim().to_lowercase().as_str()) { String::new() } else { v.trim().to_string() }
    };
    let f = format!("{}{}", part("SCIFILT1"), part("SCIFILT2"));
    job.hdr.set("FILTER", f, "KOA: set from SCIFILT1 and SCIFILT2");
    Ok(true)
}

/// Filter table (µm), searched in order by substring of the upper-cased FILTER.
const FILTERS: &[(&str, Option<(f64, f64, f64)>)] = &[
    ("UNKNOWN", None), ("BLANK", None),
    ("NIRSPEC-1", Some((0.9470, 1.0340, 1.1210))), ("NIRSPEC-2", Some((1.0890, 1.1910, 1.2930))), ("NIRSPEC-3", Some((1.1430, 1.2590, 1.3750))),
    ("NIRSPEC-4", Some((1.2410, 1.4170, 1.5930))), ("NIRSPEC-5", Some((1.4310, 1.6195, 1.8080))), ("NIRSPEC-6", Some((1.5580, 1.9365, 2.3150))),
    ("NIRSPEC-7", Some((1.8390, 2.2345, 2.6300))), ("BR-GAMMA", Some((2.1550, 2.1650, 2.1750))), ("CO", Some((2.2810, 2.2930, 2.3050))),
    ("K-PRIME", Some((1.9500, 2.1225, 2.2950))), ("KL", Some((2.1340, 3.1810, 4.2280))), ("K", Some((1.9960, 2.1890, 2.3820))),
    ("L-PRIME", Some((3.4200, 3.7700, 4.1200))), ("M-PRIME", Some((4.5700, 4.6900, 4.8100))), ("HEI", Some((1.0776, 1.0830, 1.0884))),
    ("PA-BETA", Some((1.2757, 1.2823, 1.2888))), ("FEII", Some((1.6390, 1.6465, 1.6540))), ("H2", Some((2.1100, 2.1195, 2.1290))),
    ("M-WIDE", Some((4.4200, 4.9750, 5.5300))), ("YBAND-NEW", Some((0.95, 1.035, 1.12))), ("JBAND-NEW", Some((1.14, 1.245, 1.35))),
    ("HBAND-NEW", Some((1.434, 1.5715, 1.709))),
];

/// (blue, centre, red) µm for a FILTER text.
pub fn wavelengths(filter: &str) -> Option<(f64, f64, f64)> {
    let f = filter.to_uppercase();
    // the band names are matched before the single letters they contain
    let hit = FILTERS.iter().filter(|(k, _)| k.ends_with("-NEW")).chain(FILTERS.iter()).find(|(k, _)| f.contains(k))?;
    hit.1
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let w = wavelengths(&job.hdr.text("FILTER").unwrap_or_default());
    job.hdr.set("WAVEBLUE", w.map(|w| w.0), "KOA: Approximate blue end wavelength (u)");
    job.hdr.set("WAVECNTR", w.map(|w| w.1), "KOA: Approximate central wavelength (u)");
    job.hdr.set("WAVERED", w.map(|w| w.2), "KOA: Approximate red end wavelength (u)");
    Ok(true)
}

fn set_gain_and_rn(job: &mut Job) -> StepResult {
    job.hdr.set("DETGAIN", 2.85, "KOA: Detector gain");
    let rn = spec(job).then_some(10.8);
    job.hdr.set("DETRN", rn, "KOA: Detector read noise");
    Ok(true)
}

fn set_npixsat(job: &mut Job) -> StepResult {
    let sat = job.hdr.get("COADDS").and_then(to_f64).map(|c| c * 25000.0);
    common::set_npixsat(job, sat, &[0])
}

impl Instrument for Nirspec {
    const KEYMAP: KeyMap = &[("OFNAME", &["DATAFILE"]), ("FRAMENO", &["FRAMENUM"])];

    fn set_instr(job: &mut Job) -> StepResult {
        let Some(i) = job.hdr.text("INSTRUME") else {
            job.error("SET_INSTR_ERROR", "INSTRUME missing");
            return Ok(false);
        };
        let i = i.trim().replace("NIRSPAO", "NIRSPEC");
        if i == job.ctx.instrument.to_uppercase() {
            Ok(true)
        } else {
            job.error("SET_INSTR_ERROR", format!("INSTRUME {i:?} is not {}", job.ctx.instrument));
            Ok(false)
        }
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        if !["nirspec", "nirspao"].contains(&instr_token(job).as_str()) {
            return Ok(None);
        }
        Ok(prefix_of(&job.hdr).map(str::to_string))
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_elaptime", set_elaptime),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_frameno", common::set_frameno),
            crit("set_ofName", common::set_ofname),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_isao", set_isao),
            opt("set_dispers", set_dispers),
            opt("set_slit_values", set_slit_values),
            opt("set_filter", set_filter),
            opt("set_wavelengths", set_wavelengths),
            opt("set_weather", common::set_weather),
            opt("set_image_stats", common::set_image_stats),
            opt("set_gain_and_rn", set_gain_and_rn),
            opt("set_npixsat", set_npixsat),
            opt("set_oa", common::set_oa),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
        ]
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Nirspec);

#[cfg(test)]
mod tests;
