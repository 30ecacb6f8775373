//! NIRES (spec instruments.md §11): key map, NI/NR prefixes, DQA step list,
//! fixed wavelength/slit/scale values per INSTR mode, KOAIMTYP from OBSTYPE.
//! Reference defect #41 fixed: DISPSCAL/SPATSCAL for an unknown INSTR are
//! left unset instead of crashing.

use koa_sdk::common::{self, set_elaptime_coadds};
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::{Instrument, KeyMap, program, drp};

pub struct Nires;

/// INSTR mode of the frame: `imag` or `spec` (lower-cased INSTR).
fn mode(job: &Job) -> String {
    job.hdr.lower("INSTR")
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let (red, cntr, blue) = match mode(job).as_str() {
        "imag" => (22950, 21225, 19500),
        "spec" => (24500, 16950, 9400),
        _ => return Ok(true),
    };
    job.hdr.set("WAVERED", red as i64, "KOA: Red end wavelength");
    job.hdr.set("WAVECNTR", cntr as i64, "KOA: Center wavelength");
    job.hdr.set("WAVEBLUE", blue as i64, "KOA: Blue end wavelength");
    Ok(true)
}

fn set_specres(job: &mut Job) -> StepResult {
    if mode(job) == "spec" {
        job.hdr.set("SPECRES", 2700.0, "KOA: Nominal spectral resolution");
    }
    Ok(true)
}

fn scale(job: &Job) -> Option<f64> {
    match mode(job).as_str() {
        "imag" => Some(0.12),
        "spec" => Some(0.15),
        _ => None,
    }
}

fn set_dispscal(job: &mut Job) -> StepResult {
    match scale(job) {
        Some(s) => {
            job.hdr.set("DISPSCAL", s, "KOA: CCD pixel scale, dispersion");
            Ok(true)
        }
        None => Ok(false),
    }
}

fn set_spatscal(job: &mut Job) -> StepResult {
    match scale(job) {
        Some(s) => {
            job.hdr.set("SPATSCAL", s, "KOA: CCD pixel scale, spatial");
            Ok(true)
        }
        None => Ok(false),
    }
}

fn set_filter(job: &mut Job) -> StepResult {
    if mode(job) == "imag" {
        job.hdr.set("FILTER", "Kp", "KOA: Filter");
    }
    Ok(true)
}

fn set_slit_dims(job: &mut Job) -> StepResult {
    if mode(job) == "spec" {
        job.hdr.set("SLITLEN", 18.1, "KOA: Slit length projected on sky");
        job.hdr.set("SLITWIDT", 0.5, "KOA: Slit width projected on sky");
    }
    Ok(true)
}

/// KOAIMTYP from OBSTYPE.
pub fn koaimtyp(obstype: &str) -> &'static str {
    match obstype {
        "object" | "standard" | "telluric" | "astro" | "star" => "object",
        "bias" => "bias",
        "dark" => "dark",
        "domeflat" => "domeflat",
        "domearc" => "domearc",
        _ => "undefined",
    }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr.lower("OBSTYPE"));
    let why = format!("OBSTYPE {:?} gives no image type", job.hdr.text("OBSTYPE"));
    common::record_koaimtyp(job, t, why)
}

fn set_elaptime(job: &mut Job) -> StepResult {
    set_elaptime_coadds(job, &["ITIME"], 4)
}

impl Instrument for Nires {
    const KEYMAP: KeyMap = &[("OFNAME", &["DATAFILE"]), ("FRAMENO", &["FRAMENUM"])];
    /// PypeIt level 2 (instruments.md §1.1).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::PypeIt };

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        if instr_token(job) != "nires" {
            return Ok(None);
        }
        Ok(match mode(job).as_str() {
            "imag" => Some("NI".into()),
            "spec" => Some("NR".into()),
            _ => None,
        })
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_elaptime", set_elaptime),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_ut", common::set_ut),
            crit("set_frameno", common::set_frameno),
            crit("set_ofName", common::set_ofname),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_wavelengths", set_wavelengths),
            opt("set_specres", set_specres),
            opt("set_weather", common::set_weather),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_filter", set_filter),
            opt("set_slit_dims", set_slit_dims),
            opt("set_spatscal", set_spatscal),
            opt("set_dispscal", set_dispscal),
            opt("set_image_stats", common::set_image_stats),
            opt("set_npixsat", |j| common::set_npixsat(j, None, &[0])),
            opt("set_oa", common::set_oa),
            opt("set_dqa_date", common::set_dqa_date),
            opt("set_dqa_vers", common::set_dqa_vers),
        ]
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Nires);

#[cfg(test)]
mod tests;
