//! MOSFIRE (spec instruments.md §9): key map OFNAME→DATAFILE,
//! FRAMENO→FRAMENUM, prefix MF, KOAIMTYP from dust cover, lamps, dark mode
//! and dome position, filter wavelengths; the slit-configuration tables make
//! `has_target_info` true.
//!
//! Reference defect fixed (#9): KOAIMTYP is set before set_prog_info and
//! set_propint, so daytime calibrations are recognised as calibrations and
//! science frames are not mistaken for them.

use koa_sdk::common::{self, is_at_domeflat};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::pyfmt::round_to;
use koa_sdk::types::HduKind;
use koa_sdk::value::to_f64;
use koa_sdk::{Instrument, KeyMap, program, drp};

pub struct Mosfire;

/// Filter → (centre, FWHM) in µm.
pub fn filter(name: &str) -> Option<(f64, f64)> {
    Some(match name {
        "Y" => (1.048, 0.152),
        "J" => (1.253, 0.200),
        "H" => (1.637, 0.341),
        "K" => (2.162, 0.483),
        "Ks" => (2.147, 0.314),
        "J2" => (1.181, 0.129),
        "J3" => (1.288, 0.122),
        "H1" => (1.556, 0.165),
        "H2" => (1.709, 0.167),
        _ => return None,
    })
}

/// KOAIMTYP (spec §9); `mean` is the primary data mean, asked only at the dome-flat position.
pub fn koaimtyp(job: &Job, mean: &dyn Fn() -> Option<f64>) -> &'static str {
    let h = &job.hdr;
    let one = |k: &str| h.get(k).and_then(to_f64) == Some(1.0);
    let flat_on = one("FLATSPEC") || h.lower("FLIMAGIN") == "on" || h.lower("FLSPECTR") == "on";
    let power = one("PWSTATA7") || one("PWSTATA8");
    let domeflat = is_at_domeflat(job);
    let dust = if h.text("MDCMECH").as_deref() == Some("Dust Cover") && h.text("MDCSTAT").as_deref() == Some("OK") { h.lower("MDCNAME") } else { String::new() };
    let obsmode = h.text("OBSMODE").unwrap_or_default();
    let mut t = "undefined";
    if obsmode.to_lowercase().contains("dark") && !power {
        t = "dark";
    } else if dust == "closed" {
        if obsmode.contains("spectroscopy") && power {
            t = "arclamp";
        }
    } else if dust == "open" {
        t = if flat_on {
            "flatlamp"
        } else if domeflat {
            "flatlampoff"
        } else {
            "object"
        };
    }
    if t == "undefined" && domeflat {
        t = if mean().is_some_and(|m| m > 500.0) { "flatlamp" } else { "flatlampoff" };
    }
    t
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let host = job.host;
    let has = job.hdr.has_array(0);
    let mean = move || if has { host.image_stats(0, None, None).ok().map(|s| s.mean) } else { None };
    let t = koaimtyp(job, &mean);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_elaptime(job: &mut Job) -> StepResult {
    common::set_elaptime_coadds(job, &["TRUITIME"], 4)
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let f = job.hdr.text("FILTER").unwrap_or_default();
    let (b, c, r) = match filter(f.trim()) {
        Some((c, w)) => (Some(round_to(c - w / 2.0, 3)), Some(round_to(c, 3)), Some(round_to(c + w / 2.0, 3))),
        None => (None, None, None),
    };
    job.hdr.set("WAVERED", r, "KOA: Red end wavelength");
    job.hdr.set("WAVECNTR", c, "KOA: Center wavelength");
    job.hdr.set("WAVEBLUE", b, "KOA: Blue end wavelength");
    Ok(true)
}

impl Instrument for Mosfire {
    const KEYMAP: KeyMap = &[("OFNAME", &["DATAFILE"]), ("FRAMENO", &["FRAMENUM"])];
    /// PypeIt level 2 (instruments.md §1.1).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::PypeIt };
    const KEYSKIPS: &'static [&'static str] = &[r"B\d+STAT", r"B\d+POS"];

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok((instr_token(job) == "mosfire").then(|| "MF".to_string()))
    }

    fn has_target_info(job: &mut Job) -> bool {
        (0..job.hdr.len()).any(|i| job.hdr.hdu(i).is_some_and(|h| !matches!(h.kind, HduKind::Primary | HduKind::Image | HduKind::CompressedImage)))
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_frameno", common::set_frameno),
            crit("set_ofName", common::set_ofname),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_elaptime", set_elaptime),
            opt("set_wavelengths", set_wavelengths),
            opt("set_weather", common::set_weather),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_image_stats", common::set_image_stats),
            opt("set_npixsat", |j| common::set_npixsat(j, None, &[0])),
            opt("set_oa", common::set_oa),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
        ]
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Mosfire);

#[cfg(test)]
mod tests;
