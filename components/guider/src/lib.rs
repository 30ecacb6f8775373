//! GUIDER — the acquisition and guide cameras (spec instruments.md §4):
//! KOAID `GR.…_<CAMNAME>`, RTUI off, telescope number from TELESCOP,
//! INSTRUME from CURRINST, frame number from the file name, KOAIMTYP from
//! TTIME, filters and the camera/filter wavelength table, TARGRADV; PROGID
//! from the guided instrument's schedule; the camera's own JPEG copied when
//! it exists (`prefer_sibling`), else the base renderer.
//!
//! Reference defects fixed: #12 (an unknown TELESCOP is a clean
//! TELNR_VALUE_ERROR instead of a crash), #38 (set_frameno's guard is real;
//! a schedule answer that is not a list of entries is "no program").
//! Kept on purpose from #38: KOAIMTYP is the reference's effective rule,
//! TTIME 0 → bias, else object. The type it computes and discards
//! (`get_koaimtyp`, KCWI's CAMERA `fpc` / XPOSURE 0 / IMTYPE rule) reads
//! keywords guider headers do not carry and would make their frames
//! `undefined`.

use koa_sdk::common;
use koa_sdk::job::{Fail, Job, Step, StepResult, crit, opt};
use koa_sdk::pyfmt::round_to;
use koa_sdk::time::{day_before, parse_utc};
use koa_sdk::types::{Context, Preview};
use koa_sdk::value::usable;
use koa_sdk::{Header, Instrument, KeyMap, Koaid, koaid, program};

pub struct Guider;

fn set_telnr(job: &mut Job) -> StepResult {
    let t = job.hdr.text("TELESCOP").unwrap_or_default();
    let n = match t.split_whitespace().last() {
        Some("I") => 1,
        Some("II") => 2,
        _ => {
            job.warn("TELNR_VALUE_ERROR", format!("TELESCOP {t:?} names no Keck telescope"));
            return Ok(false);
        }
    };
    job.telnr = Some(n);
    Ok(true)
}

fn set_ofname(job: &mut Job) -> StepResult {
    if job.hdr.raw("OFNAME").is_some_and(usable) {
        return Ok(true);
    }
    let base = job.ctx.ofname.rsplit('/').next().unwrap_or("").to_string();
    if base.is_empty() {
        return common::no_ofname(job, "SET_OFNAME_ERROR", "no original file name");
    }
    job.hdr.set("OFNAME", base, "KOA: Original file name");
    Ok(true)
}

/// KOAIMTYP: TTIME 0 → bias, else object (CAMERA, XPOSURE and IMTYPE are
/// not read — see the module note on #38).
pub fn koaimtyp(hdr: &Header) -> &'static str {
    if hdr.f64("TTIME") == Some(0.0) { "bias" } else { "object" }
}

fn set_koaimtyp(job: &mut Job) -> StepResult {
    let t = koaimtyp(&job.hdr);
    job.hdr.set("KOAIMTYP", t, "KOA: Image type");
    Ok(true)
}

/// Frame number from a file name `…_<n>.fits`.
pub fn frameno_from_name(path: &str) -> Option<i64> {
    let base = path.rsplit('/').next()?;
    let stem = base.strip_suffix(".fits").unwrap_or(base);
    stem.rsplit('_').next()?.parse().ok()
}

fn set_frameno(job: &mut Job) -> StepResult {
    if job.hdr.raw("FRAMENO").is_some_and(usable) {
        return Ok(true);
    }
    match frameno_from_name(&job.ctx.filepath).or_else(|| frameno_from_name(&job.ctx.ofname)) {
        Some(n) => {
            job.hdr.set("FRAMENO", n, "KOA: Image frame number");
            Ok(true)
        }
        None => {
            job.warn("SET_FRAMENO_ERROR", "no frame number in the file name");
            Ok(false)
        }
    }
}

fn set_elaptime(job: &mut Job) -> StepResult {
    if job.hdr.raw("ELAPTIME").is_some_and(usable) {
        return Ok(true);
    }
    let v = job.hdr.raw_f64("TTIME").map(|t| round_to(t, 2));
    job.hdr.set("ELAPTIME", v, "KOA: Total integration time");
    Ok(true)
}

fn set_filter(job: &mut Job) -> StepResult {
    if job.hdr.raw("FILTER").is_some_and(usable) {
        return Ok(true);
    }
    let parts: Vec<String> = ["FILTER0", "FILTER1"].iter().filter_map(|k| job.hdr.text(k)).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let f = if parts.is_empty() { "blank".to_string() } else { parts.join("+") };
    job.hdr.set("FILTER", f, "KOA: set from FILTER0 and FILTER1");
    Ok(true)
}

const WAVES: &[(&str, f64, f64, f64)] = &[
    ("ACAM", 0.380, 0.640, 0.700), ("ACAMA", 0.380, 0.640, 0.700), ("K1ACAMA", 0.380, 0.640, 0.700), ("K2ACAMA", 0.380, 0.640, 0.700),
    ("DEIMOS", 0.400, 0.650, 0.900), ("ESI", 0.400, 0.650, 0.900), ("HIRESSLIT", 0.360, 0.680, 1.000), ("BG38", 0.335, 0.470, 0.605),
    ("KCWIA", 0.380, 0.640, 0.700), ("KPF", 0.950, 1.075, 1.200), ("LRISOFFSET", 0.380, 0.640, 0.700), ("V", 0.500, 0.600, 0.700),
    ("LRISSLIT", 0.380, 0.640, 0.700), ("MOSFIRE", 0.700, 0.850, 1.000), ("NIRESA", 0.380, 0.640, 0.700), ("NIRESSLIT", 1.950, 2.1225, 2.295),
    ("NIRSPECM", 0.380, 0.640, 0.700), ("RG780", 0.780, 0.890, 1.000), ("NSCAM", 0.950, 3.225, 5.500),
];

/// (blue, centre, red) µm for a camera and filter.
pub fn wavelengths(camname: &str, filter: &str) -> Option<(f64, f64, f64)> {
    let known = |n: &str| WAVES.iter().any(|w| w.0 == n);
    let mut name = String::new();
    if known(&camname.to_uppercase()) {
        name = camname.to_uppercase();
    }
    for tok in filter.to_uppercase().split('+') {
        if known(tok.trim()) {
            name = tok.trim().to_string();
        }
    }
    WAVES.iter().find(|w| !name.is_empty() && name.contains(w.0)).map(|w| (w.1, w.2, w.3))
}

fn set_wavelengths(job: &mut Job) -> StepResult {
    let w = wavelengths(&job.hdr.text("CAMNAME").unwrap_or_default(), &job.hdr.text("FILTER").unwrap_or_default());
    job.hdr.set("WAVEBLUE", w.map(|w| w.0), "KOA: Approximate blue end wavelength (in microns)");
    job.hdr.set("WAVECNTR", w.map(|w| w.1), "KOA: Approximate central wavelength (in microns)");
    job.hdr.set("WAVERED", w.map(|w| w.2), "KOA: Approximate red end wavelength (in microns)");
    Ok(true)
}

fn fix_targradv(job: &mut Job) -> StepResult {
    if !job.hdr.raw("TARGRADV").is_some_and(usable) {
        job.hdr.set("TARGRADV", "", "");
    }
    Ok(true)
}

/// PROGID from the guided instrument's schedule (no telescope filter;
/// edges only for classical nights).
fn progid_from_schedule(job: &mut Job) -> Result<String, Fail> {
    let none = || Ok("NONE".to_string());
    let mut instr = job.hdr.text("CURRINST").unwrap_or_default().trim().to_uppercase();
    if instr == "LRISADC" {
        instr = "LRIS".into();
    }
    if instr.is_empty() || instr == "SSC" || instr == "PCS" {
        return none();
    }
    let Some(utc) = job.hdr.text("UTC").and_then(|u| parse_utc(&u)) else { return none() };
    let Some(hst) = job.hdr.raw_text("DATE-OBS").and_then(|d| day_before(d.get(..10)?)) else { return none() };
    let entries = match job.host.schedule(&hst, None, &instr) {
        Ok(e) => e,
        Err(e) => {
            job.warn("SCHEDULE_API_ERROR", koa_sdk::host::service_error_text(&e));
            return none();
        }
    };
    Ok(program::pick_schedule_entry(&entries, utc.hours(), None, true).unwrap_or_else(|| "NONE".into()))
}

impl Instrument for Guider {
    const KEYMAP: KeyMap = &[];

    fn set_instr(job: &mut Job) -> StepResult {
        if job.hdr.raw("INSTRUME").is_some_and(usable) {
            return Ok(true);
        }
        match job.hdr.raw("CURRINST").filter(|v| usable(v)).cloned() {
            Some(c) => {
                job.hdr.set("INSTRUME", c, "KOA: Instrument Name");
                Ok(true)
            }
            None => {
                job.error("SET_INSTR_ERROR", "INSTRUME and CURRINST missing");
                Ok(false)
            }
        }
    }

    fn prefix(_job: &mut Job) -> Result<Option<String>, Fail> {
        Ok(Some("GR".into()))
    }

    fn make_koaid(job: &mut Job) -> Result<Option<Koaid>, Fail> {
        let Some(mut k) = koaid::make_koaid(job, Self::set_instr, Self::prefix)? else { return Ok(None) };
        if !k.preexisting {
            let Some(cam) = job.hdr.text("CAMNAME").filter(|c| !c.trim().is_empty()) else {
                job.error("KOAID_CREATE_FAIL", "CAMNAME missing");
                return Ok(None);
            };
            k.id = format!("{}_{}", k.id, cam.trim());
        }
        Ok(Some(k))
    }

    fn rtui(_job: &Job, _koaid: &str) -> bool {
        false
    }

    fn progid_from_schedule(job: &mut Job) -> Result<String, Fail> {
        progid_from_schedule(job)
    }

    fn steps() -> Vec<Step> {
        vec![
            crit("set_telnr", set_telnr),
            crit("set_ut", common::set_ut),
            crit("set_ofName", set_ofname),
            crit("set_koaimtyp", set_koaimtyp),
            crit("set_frameno", set_frameno),
            crit("set_semester", program::set_semester),
            crit("set_prog_info", program::set_prog_info),
            crit("set_propint", program::set_propint),
            opt("set_elaptime", set_elaptime),
            opt("set_datlevel", |j| common::set_datlevel(j, 0)),
            opt("set_filter", set_filter),
            opt("set_wavelengths", set_wavelengths),
            opt("set_weather", common::set_weather),
            opt("set_oa", common::set_oa),
            opt("set_dqa_vers", common::set_dqa_vers),
            opt("set_dqa_date", common::set_dqa_date),
            opt("fix_targradv", fix_targradv),
        ]
    }

    /// The camera's own JPEG when one sits next to the file, else the base renderer.
    fn preview_plan(_ctx: &Context, hdr: &Header) -> Vec<Preview> {
        koa_sdk::preview::base(hdr)
            .into_iter()
            .map(|mut p| {
                p.prefer_sibling = true;
                p
            })
            .collect()
    }
}

#[cfg(target_arch = "wasm32")]
koa_sdk::instrument_component!(Guider);

#[cfg(test)]
mod tests;
