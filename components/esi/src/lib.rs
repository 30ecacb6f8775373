//! ESI (spec instruments.md §3): key map UTC→UT, OFNAME→OUTFILE, prefix ES,
//! camera, filter, observing mode from the prism/filter stages, wavelengths,
//! slit dimensions, scales, resolution and the hole-mask/lamp/hatch KOAIMTYP tree.
//!
//! As the reference: a header OBSMODE is kept untouched; one that cannot be
//! derived is written as `''` and the (non-critical) step fails.

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::koaid::instr_token;
use koa_sdk::pyfmt::round_tens;
use koa_sdk::value::usable;
use koa_sdk::{Header, Instrument, KeyMap, program, drp};

pub struct Esi;

/// KOAIMTYP (spec §3).
pub fn koaimtyp(hdr: &Header) -> &'static str {
    let l = |k: &str| hdr.lower(k);
    let obstype = l("OBSTYPE");
    if obstype == "bias" || obstype == "dark" {
        return if obstype == "bias" { "bias" } else { "dark" };
    }
    let open = l("HATCHPOS") != "closed";
    let flat = l("LAMPQTZ1") == "on";
    let flat_pos = hdr.f64("EL").is_some_and(|e| (44.0..=46.01).contains(&e));
    let arc = ["LAMPAR1", "LAMPCU1", "LAMPNE1", "LAMPNE2"].iter().any(|k| l(k) == "on");
    let ax_t = l("AXESTAT") == "tracking";
    let dom_t = l("DOMESTAT") == "tracking";
    let dm = obstype == "dmflat";
    let (p, f, ld, w) = (l("PRISMNAM"), l("IMFLTNAM"), l("LDFLTNAM"), l("DWFILNAM"));
    let g = (dm && !dom_t && flat_pos) || (!ax_t && !dom_t && flat_pos) || (dm && !ax_t && flat_pos);
    if l("SLMSKNAM").contains("hole") {
        if !open {
            if flat && !arc && p == "in" && f == "out" {
                return "trace";
            }
            if (flat && !arc && p != "in" && f != "out") || (!flat && arc && p == "in" && f == "out") {
                return "focus";
            }
        } else if p == "in" && f == "out" {
            if g {
                return "trace";
            }
        } else if g {
            return "focus";
        }
        if (p == "out" && f == "in" && ld == "out") || (p == "in" && f == "out" && w == "clear_s") {
            return "focus";
        }
    } else if !open {
        if flat && !arc {
            return "flatlamp";
        }
        if !flat && arc && p == "in" && f == "out" {
            return "arclamp";
        }
    } else {
        if g || (dm && !ax_t && !dom_t) {
            return "flatlamp";
        }
        if !flat && !arc {
            return "object";
        }
    }
    "undefined"
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    common::record_koaimtyp(job, t, "could not determine the image type")
}

fn set_camera(job: &mut Job) -> StepResult {
    job.hdr.set("CAMERA", "ESI", "KOA: Instrument camera");
    Ok(true)
}

fn set_filter(job: &mut Job) -> StepResult {
    if let Some(f) = job.hdr.raw("DWFILNAM").filter(|v| usable(v)).cloned() {
        job.hdr.set("FILTER", f, "KOA: Filter name copied from DWFILNAM.");
    }
    Ok(true)
}

/// OBSMODE from the imaging filter / long-slit filter / prism positions;
/// `""` when they name no mode.
pub fn obsmode(hdr: &Header) -> &'static str {
    let s = (hdr.lower("IMFLTNAM"), hdr.lower("LDFLTNAM"), hdr.lower("PRISMNAM"));
    match (s.0.as_str(), s.1.as_str(), s.2.as_str()) {
        ("out", "in", "in") => "low",
        ("out", "out", "in") => "high",
        ("in", "out", "out") => "image",
        _ => "",
    }
}

/// `get_obsmode(update)`: a header OBSMODE is kept untouched; else the
/// derived mode is written — `''` when there is none, and the step fails.
fn get_obsmode(job: &mut Job) -> StepResult {
    if job.hdr.text("OBSMODE").is_some_and(|m| !m.trim().is_empty()) {
        return Ok(true);
    }
    let m = obsmode(&job.hdr);
    job.hdr.set("OBSMODE", m, "KOA: Observation mode");
    Ok(!m.is_empty())
}

fn mode(job: &Job) -> String {
    job.hdr.lower("OBSMODE")
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let w: Option<(i64, i64, i64)> = match mode(job).as_str() {
        "image" => match job.hdr.text("DWFILNAM").unwrap_or_default().as_str() {
            "B" => Some((3700, 4400, 5400)),
            "V" => Some((4900, 5200, 6450)),
            "R" => Some((6000, 6500, 7400)),
            "I" => Some((7000, 8000, 9000)),
            _ => None,
        },
        "low" | "high" => Some((3900, 7400, 10900)),
        _ => None,
    };
    job.hdr.set("WAVERED", w.map(|w| w.2), "KOA: Red end wavelength");
    job.hdr.set("WAVECNTR", w.map(|w| w.1), "KOA: Center wavelength");
    job.hdr.set("WAVEBLUE", w.map(|w| w.0), "KOA: Blue end wavelength");
    Ok(true)
}

/// (width, length) of the slit for a spectroscopic mode.
pub fn slit_dims(mode: &str, slmsknam: &str) -> (Option<f64>, Option<f64>) {
    if mode != "low" && mode != "high" {
        return (None, None);
    }
    let s = slmsknam.to_lowercase();
    if s == "ifu" {
        return (Some(1.13), Some(4.0));
    }
    let len = Some(if mode == "low" { 480.0 } else { 20.0 });
    let width = if s.contains("multiholes") {
        Some(0.5)
    } else if let Some((a, b)) = s.split_once('_') {
        a.parse().ok().or_else(|| b.split('_').next().and_then(|b| b.parse().ok()))
    } else {
        None
    };
    (width, len)
}

fn set_slit_dims(job: &mut Job) -> StepResult {
    let (w, l) = slit_dims(&mode(job), &job.hdr.text("SLMSKNAM").unwrap_or_default());
    job.hdr.set("SLITWIDT", w, "KOA: Slit width projected on sky");
    job.hdr.set("SLITLEN", l, "KOA: Slit length projected on sky");
    Ok(true)
}

fn set_specres(job: &mut Job) -> StepResult {
    let r = match mode(job).as_str() {
        "low" | "high" => job.hdr.f64("SLITWIDT").filter(|w| *w > 0.0).map(|w| round_tens(4125.406 / w, 1)),
        _ => None,
    };
    job.hdr.set("SPECRES", r, "KOA: Nominal spectral resolution");
    Ok(true)
}

impl Instrument for Esi {
    const KEYMAP: KeyMap = &[("UTC", &["UT"]), ("OFNAME", &["OUTFILE"])];
    /// PypeIt level 2 (instruments.md §1.1).
    const DRP: drp::Rules = drp::Rules { level1: drp::Rule::None, level2: drp::Rule::PypeIt };
    const KEYSKIPS: &'static [&'static str] = &["PMFM", "RECNO", "CHECKSUM", "DATASUM"];

    fn prefix(job: &mut Job) -> Result<Option<String>, Fail> {
        Ok((instr_token(job) == "esi").then(|| "ES".to_string()))
    }

    fn has_target_info(_job: &mut Job) -> bool {
        false
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", common::set_telnr),
            crit("set_camera", set_camera),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_ut", common::set_ut),
            crit("set_frameno", common::set_frameno),
            crit("set_ofName", common::set_ofname_outfile),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_filter", set_filter),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_image_stats", common::set_image_stats),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            opt("set_npixsat", |j| common::set_npixsat(j, Some(65535.0), &[0])),
            opt("get_obsmode", get_obsmode),
            opt("set_wavelengths", set_wavelengths),
            opt("set_slit_dims", set_slit_dims),
            opt("set_spatscal", |j| Ok(j.hdr.set("SPATSCAL", 0.1542, "KOA: CCD pixel scale, spatial") || true)),
            opt("set_dispscal", |j| Ok(j.hdr.set("DISPSCAL", 0.1542, "KOA: CCD pixel scale, dispersion") || true)),
            opt("set_specres", set_specres),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
        ]
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Esi);

#[cfg(test)]
mod tests;
