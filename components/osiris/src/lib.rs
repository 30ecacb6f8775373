//! OSIRIS imager and spectrograph (spec instruments.md §13): key map
//! OFNAME→DATAFILE, FRAMENO→FRAMENUM, prefixes OI/OS from INSTR, filter,
//! KOAIMTYP, wavelength table, imager WCS, saturation and linearity, scale,
//! RA of calibrations.
//!
//! Reference defects fixed (#40): missing PCUX/PCUY/PCUZ no longer classify
//! a frame as `calib` (only a PCU actually in the beam does); a spectrograph
//! file is `calib` by its name only when the DATAFILE stem carries the `c`
//! calibration set letter after the date (`sYYMMDD_c…`), not for any `c`
//! anywhere in the name; a missing FILTER does not fail the critical step.

use koa_sdk::common::{self, is_at_domeflat};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::pyfmt::round_to;
use koa_sdk::value::{to_f64, to_text, usable};
use koa_sdk::{Header, Instrument, KeyMap, program, drp};

/// DRP product files: `<KOAID><suffix>` in the DRP folder.
const DRP_SUFFIXES: &[&str] = &[
    "_drp.fits.gz",
    "_drp.jpg",
    ".lev1.fits.gz",
    ".lev1.jpg",
    ".lev2.fits.gz",
    ".lev2_median.jpg",
    ".lev2_sum_positive_slices.jpg",
];

pub struct Osiris;

fn instr(hdr: &Header) -> String {
    hdr.lower("INSTR")
}

fn set_filter(job: &mut Job) -> StepResult {
    let f = match instr(&job.hdr).as_str() {
        "imag" => job.hdr.text("IFILTER").unwrap_or_default(),
        "spec" => job.hdr.text("SFILTER").unwrap_or_default(),
        _ => String::new(),
    };
    job.hdr.set("FILTER", f, "KOA: Copy of IFILTER/SFILTER");
    Ok(true)
}

/// A PCU position: missing → None; text → float (unparsable → 0).
fn pcu(hdr: &Header, k: &str) -> Option<f64> {
    let v = hdr.get(k)?;
    Some(to_f64(v).unwrap_or_else(|| to_text(v).trim().parse().unwrap_or(0.0)))
}

/// KOAIMTYP (spec §13, defect #40 fixed).
pub fn koaimtyp(job: &Job) -> &'static str {
    let h = &job.hdr;
    let pcus = [pcu(h, "PCUX"), pcu(h, "PCUY"), pcu(h, "PCUZ")];
    if pcus.iter().all(|p| p.is_some_and(|v| v != 0.0 && v != -999.0)) {
        return "calib";
    }
    if h.lower("FILTER").contains("drk") {
        return "dark";
    }
    let moving = |k: &str| matches!(h.text(k).unwrap_or_default().as_str(), "tracking" | "slewing");
    match instr(h).as_str() {
        "imag" => {
            if h.lower("FLAMP1") == "on" || h.lower("FLAMP2") == "on" {
                if is_at_domeflat(job) { "flatlamp" } else { "undefined" }
            } else if moving("DOMESTAT") && moving("AXESTAT") {
                "object"
            } else if is_at_domeflat(job) {
                "flatlampoff"
            } else {
                "object"
            }
        }
        "spec" => {
            let name = h.text("DATAFILE").unwrap_or_default();
            let stem = name.rsplit('/').next().unwrap_or("").to_lowercase();
            if calib_name(&stem) {
                "calib"
            } else if moving("DOMESTAT") && moving("AXESTAT") {
                "object"
            } else {
                "undefined"
            }
        }
        _ => "undefined",
    }
}

/// A spectrograph file named as a calibration: `sYYMMDD_c…` (the set letter
/// after the date is `c`).
pub fn calib_name(stem: &str) -> bool {
    stem.split_once('_').is_some_and(|(date, rest)| date.starts_with('s') && rest.starts_with('c'))
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(job);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_elaptime(job: &mut Job) -> StepResult {
    common::set_elaptime_coadds(job, &["TRUITIME"], 5)
}

/// Filter → (blue, red) nm.
pub fn filter_range(f: &str) -> Option<(i64, i64)> {
    const T: &[(&str, i64, i64)] = &[
        ("zbb", 999, 1176), ("jbb", 1180, 1440), ("hbb", 1473, 1803), ("kbb", 1965, 2381), ("kcb", 1965, 2381), ("zn4", 1103, 1158),
        ("jn1", 1174, 1232), ("jn2", 1228, 1289), ("jn3", 1275, 1339), ("jn4", 1323, 1389), ("hn1", 1466, 1541), ("hn2", 1532, 1610),
        ("hn3", 1594, 1676), ("hn4", 1652, 1737), ("hn5", 1721, 1808), ("kn1", 1955, 2055), ("kn2", 2036, 2141), ("kn3", 2121, 2229),
        ("kc3", 2121, 2229), ("kn4", 2208, 2320), ("kc4", 2208, 2320), ("kn5", 2292, 2408), ("kc5", 2292, 2408), ("pagamma", 1087, 1105),
        ("feii", 1634, 1661), ("hcont", 1571, 1596), ("zn3", 1061, 1113), ("y", 977, 1073), ("j", 1168, 1318), ("kp", 1961, 2268),
        ("brgamma", 2155, 2184), ("kcont", 2259, 2281), ("hei_b", 2046, 2075),
    ];
    let f = f.trim().to_lowercase();
    T.iter().find(|(k, _, _)| *k == f).map(|(_, b, r)| (*b, *r))
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let r = filter_range(&job.hdr.text("FILTER").unwrap_or_default());
    job.hdr.set("WAVEBLUE", r.map(|r| r.0), "KOA: Approximate blue end wavelength (nm)");
    job.hdr.set("WAVECNTR", r.map(|r| (r.0 + r.1) / 2), "KOA: Approximate central wavelength (nm)");
    job.hdr.set("WAVERED", r.map(|r| r.1), "KOA: Approximate red end wavelength (nm)");
    Ok(true)
}

fn set_wcs_keywords(job: &mut Job) -> StepResult {
    let h = &job.hdr;
    let imaging = instr(h) == "imag" && h.lower("ROTMODE").contains("position angle");
    let null = || koa_sdk::types::Value::Text("null".into());
    let (mut crval1, mut crval2, mut crota2) = (None, None, None);
    if imaging {
        let po = h.lower("PONAME");
        let (ra, dec, rot) = (h.f64("RA"), h.f64("DEC"), h.f64("ROTPOSN"));
        if let (Some(ra), Some(dec)) = (ra, dec) {
            if po.contains("ospec") {
                if let Some(rot) = rot {
                    let th = (48.0 - (rot + 90.0)) * std::f64::consts::PI / 180.0;
                    let dra = (15.42 * th.cos() + 14.12 * th.sin()) / ((dec * std::f64::consts::PI / 180.0).cos() * 3600.0);
                    let ddec = (15.42 * th.sin() - 14.12 * th.cos()) / 3600.0;
                    crval1 = Some(round_to(ra + dra, 5));
                    crval2 = Some(round_to(dec + ddec, 5));
                }
            } else if po.contains("osimg") {
                crval1 = Some(round_to(ra, 5));
                crval2 = Some(round_to(dec, 5));
            }
        }
        if crval1.is_some() {
            let mut c = rot.unwrap_or(0.0) + 90.0;
            while c < 0.0 {
                c += 360.0;
            }
            crota2 = Some(c);
        }
    }
    let hdr = &mut job.hdr;
    let set_or_null = |hdr: &mut Header, k: &str, v: koa_sdk::types::Value, c: &str| {
        hdr.set(k, if imaging { v } else { null() }, c);
    };
    set_or_null(hdr, "CTYPE1", "RA---TAN".into(), "KOA: WCS Type of the horizontal coordinate");
    set_or_null(hdr, "CTYPE2", "DEC--TAN".into(), "KOA: WCS Type of the vertical coordinate");
    set_or_null(hdr, "WAT0_001", "system=image".into(), "KOA: coordinate system");
    set_or_null(hdr, "WAT1_001", "wtype=tan axtype=ra".into(), "KOA: coordinate system");
    set_or_null(hdr, "WAT2_001", "wtype=tan axtype=dec".into(), "KOA: coordinate system");
    set_or_null(hdr, "WCSDIM", 2i64.into(), "KOA: number of WCS dimensions");
    set_or_null(hdr, "RADECSYS", "FK5".into(), "KOA: the system of the coordinates");
    set_or_null(hdr, "LTM1_1", 1.0.into(), "KOA: ccd to image transformation");
    set_or_null(hdr, "LTM2_2", 1.0.into(), "KOA: ccd to image transformation");
    hdr.set("CRVAL1", crval1, "KOA: WCS value at the reference pixel");
    hdr.set("CRVAL2", crval2, "KOA: WCS value at the reference pixel");
    let has = crval1.is_some();
    hdr.set("CROTA2", crota2, "");
    hdr.set("CDELT1", has.then_some(-0.000002777778), "");
    hdr.set("CDELT2", has.then_some(0.0000027777778), "");
    hdr.set("CRPIX1", has.then_some(512.5), "KOA: Reference pixel on the horizontal axis");
    hdr.set("CRPIX2", has.then_some(512.5), "KOA: Reference pixel on the vertical axis");
    Ok(true)
}

fn set_npixsat(job: &mut Job) -> StepResult {
    let (c, s) = (job.hdr.raw_f64("COADDS"), job.hdr.raw_f64("SATURATE"));
    let (Some(c), Some(s)) = (c, s) else {
        job.warn("SET_NPIXSAT_ERROR", format!("{c:?}, {s:?}"));
        return Ok(false);
    };
    common::set_npixsat(job, Some(c * s), &[0])
}

fn set_nlinear(job: &mut Job) -> StepResult {
    let Some(sat) = job.hdr.raw_f64("SATURATE") else {
        job.warn("SET_NLINEAR_ERROR", "SATURATE missing");
        return Ok(false);
    };
    if !job.hdr.has_array(0) {
        return Ok(true);
    }
    let s = 0.8 * sat * job.hdr.raw_f64("COADDS").unwrap_or(1.0);
    let n = job.host.count_at_least(0, None, s).map_err(Fail)?;
    job.hdr.set("NLINEAR", n, "KOA: Number of pixels above linearity");
    job.hdr.set("NONLIN", s as i64, "KOA: 3% nonlinearity level (80% full well)");
    Ok(true)
}

fn set_scale(job: &mut Job) -> StepResult {
    let v = if instr(&job.hdr).contains("imag") { Some(0.02) } else { job.hdr.f64("SSCALE") };
    job.hdr.set("SCALE", v, "KOA: Scale");
    Ok(true)
}

fn check_nonint_vals(job: &mut Job) -> StepResult {
    for k in ["SHTRANG", "SHTRACT", "IHTRACT"] {
        if job.hdr.raw(k).is_some_and(usable) && job.hdr.f64(k).is_some_and(|v| v < 1.0) {
            job.hdr.set(k, 0i64, "");
        }
    }
    Ok(true)
}

fn check_ra(job: &mut Job) -> StepResult {
    let calib = job.hdr.text("KOAIMTYP").as_deref() == Some("calib");
    if calib && job.hdr.f64("RA").is_some_and(|ra| !(-720.0..=720.0).contains(&ra)) {
        job.hdr.set("RA", koa_sdk::types::Value::Text("null".into()), "");
    }
    Ok(true)
}

impl Instrument for Osiris {
    const KEYMAP: KeyMap = &[("OFNAME", &["DATAFILE"]), ("FRAMENO", &["FRAMENUM"])];
    /// The OSIRIS DRP files of levels 1 and 2 (instruments.md §13).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::Suffixes(DRP_SUFFIXES), level2: drp::Rule::Suffixes(DRP_SUFFIXES) };

    fn set_instr(job: &mut Job) -> StepResult {
        job.hdr.set("INSTRUME", "OSIRIS", "KOA: Instrument");
        Ok(true)
    }

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        let i = instr(&job.hdr);
        Ok(if i.contains("imag") {
            Some("OI".into())
        } else if i.contains("spec") {
            Some("OS".into())
        } else {
            None
        })
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_elaptime", set_elaptime),
            crit("set_filter", set_filter),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_frameno", common::set_frameno),
            crit("set_ofName", common::set_ofname),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_wavelengths", set_wavelengths),
            opt("set_weather", common::set_weather),
            opt("set_wcs_keywords", set_wcs_keywords),
            opt("set_image_stats", common::set_image_stats),
            opt("set_npixsat", set_npixsat),
            opt("set_nlinear", set_nlinear),
            opt("set_scale", set_scale),
            opt("check_nonint_vals", check_nonint_vals),
            opt("set_oa", common::set_oa),
            opt("check_ra", check_ra),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            crit("set_dqa_date", common::set_dqa_date),
            crit("set_dqa_vers", common::set_dqa_vers),
        ]
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Osiris);

#[cfg(test)]
mod tests;
