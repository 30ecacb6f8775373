//! Shared DQA steps of the base instrument (spec instruments.md §1, pipeline.md
//! §24 weather): telescope number, UT, FRAMENO, OFNAME, OA, weather, image
//! statistics, NPIXSAT, DATLEVEL, DQA_VERS/DQA_DATE, ELAPTIME helpers and the
//! dome-flat position test. Reference defects #12, #16 and #45 are fixed here.

use chrono::Duration;

use crate::host::service_error_text;
use crate::job::{Fail, Job, StepResult};
use crate::program::is_failure;
use crate::pyfmt::{floor_mod, round_to};
use crate::time::{day_before, frame_time, hms_hundredths, iso_z};
use crate::types::{ServiceError, Value};
use crate::value::{to_f64, to_text};

/// `set_telnr`: telescope number from the context or the schedule service; it
/// must be 1 or 2 (reference defect #12: the error branch crashed). A service
/// failure is a warning; steps that need the number then skip their lookups.
pub fn set_telnr(job: &mut Job) -> StepResult {
    if let Some(t) = job.ctx.telescope {
        return check_telnr(job, t as i64);
    }
    let instr = job.ctx.instrument.to_uppercase();
    match job.host.telescope_number(&instr) {
        Ok(t) => check_telnr(job, t as i64),
        // the reference stops here: without the telescope the program,
        // weather, OA and dome-flat rules would all guess (issue 16 §3);
        // TELNR_API_ERROR is transient, so the daemon runs the file again
        Err(e) => {
            job.error("TELNR_API_ERROR", format!("telescope number of {instr}: {}", service_error_text(&e)));
            Ok(false)
        }
    }
}

/// Accept a telescope number of 1 or 2.
pub fn check_telnr(job: &mut Job, t: i64) -> StepResult {
    if t == 1 || t == 2 {
        job.telnr = Some(t as u8);
        Ok(true)
    } else {
        job.error("TELNR_VALUE_ERROR", format!("telescope number {t} is not 1 or 2"));
        Ok(false)
    }
}

/// `set_ut`: UT from the mapped UTC when the raw UT is not usable.
pub fn set_ut(job: &mut Job) -> StepResult {
    if job.hdr.raw("UT").is_some() {
        return Ok(true);
    }
    match job.hdr.get("UTC").cloned() {
        Some(v) => {
            job.hdr.set("UT", v, "KOA: Observing time");
            Ok(true)
        }
        None => {
            job.warn("SET_UT_ERROR", "no UTC to copy into UT");
            Ok(false)
        }
    }
}

/// `set_frameno`: FRAMENO from FRAMENUM, or from the number after the last
/// `_` of DATAFILE (also written to FRAMENUM).
pub fn set_frameno(job: &mut Job) -> StepResult {
    if job.hdr.raw("FRAMENO").is_some() {
        return Ok(true);
    }
    let mut v = job.hdr.raw("FRAMENUM").cloned();
    if v.is_none() {
        let Some(datafile) = job.hdr.raw_text("DATAFILE") else {
            job.warn("SET_FRAMENO_ERROR", "no FRAMENO, FRAMENUM or DATAFILE");
            return Ok(false);
        };
        let stem = datafile.replace(".fits", "");
        let tail = stem.rsplit('_').next().unwrap_or("");
        let n: i64 = tail
            .trim()
            .parse()
            .map_err(|_| Fail::new(format!("frame number {tail:?} of DATAFILE {datafile:?} is not an integer")))?;
        job.hdr.set("FRAMENUM", n, "KOA: Image frame number (derived from filename)");
        v = Some(Value::Int(n));
    }
    job.hdr.set("FRAMENO", v.unwrap_or(Value::Undefined), "KOA: Image frame number");
    Ok(true)
}

/// Base `set_ofName`: OFNAME from the mapped OFNAME, with `.fits` appended.
pub fn set_ofname(job: &mut Job) -> StepResult {
    let Some(mut v) = job.hdr.text("OFNAME") else {
        return no_ofname(job, "SET_OFNAME_NAME", "no original file name in the header");
    };
    if !v.ends_with(".fits") {
        v.push_str(".fits");
    }
    job.hdr.set("OFNAME", v, "KOA: Original file name");
    Ok(true)
}

/// A set_ofName step that finds no original file name: a warning, and the
/// step goes on without OFNAME, so the runtime's validation refuses the
/// file INVALID BAD_OFNAME and keeps it in stage/udf (in the reference the
/// critical step stopped first and BAD_OFNAME was unreachable: issue 16 §4).
pub fn no_ofname(job: &mut Job, code: &str, why: &str) -> StepResult {
    job.warn(code, format!("{why}: the file will be refused as BAD_OFNAME"));
    Ok(true)
}

/// OFNAME := OUTFILE + 4-digit FRAMENO + `.fits` (DEIMOS, ESI, HIRES, LRIS).
pub fn set_ofname_outfile(job: &mut Job) -> StepResult {
    let (Some(outfile), Some(frameno)) = (job.hdr.raw_text("OUTFILE"), job.hdr.raw("FRAMENO").cloned()) else {
        return no_ofname(job, "SET_OFNAME_ERROR", "OUTFILE or FRAMENO missing");
    };
    let n = crate::value::to_i64(&frameno)
        .ok_or_else(|| Fail::new(format!("FRAMENO {} is not an integer", to_text(&frameno))))?;
    job.hdr.set("OFNAME", format!("{}{:04}.fits", outfile.trim(), n), "KOA: Original file name");
    Ok(true)
}

/// KOAIMTYP := `t` `'KOA: Image type'`; `undefined` is reported as
/// KOAIMTYP_UDF with `why` (the header values the decision read).
pub fn record_koaimtyp(job: &mut Job, t: &str, why: impl Into<String>) -> StepResult {
    if t == "undefined" {
        job.warn("KOAIMTYP_UDF", why);
    }
    job.hdr.set("KOAIMTYP", t, "KOA: Image type");
    Ok(true)
}

/// HST date of the frame (UT date minus one day).
pub fn hst_date(job: &Job) -> Option<String> {
    job.hdr.raw_text("DATE-OBS").and_then(|d| day_before(d.get(..10)?))
}

/// `set_oa`: the night's observing assistant (last `oa`/`oar` entry); null
/// when unknown (reference defect #16: the string `None`).
pub fn set_oa(job: &mut Job) -> StepResult {
    let mut oa: Option<String> = None;
    if let (Some(hst), Some(telnr)) = (hst_date(job), job.telnr) {
        match job.host.night_staff(&hst, telnr) {
            Ok(staff) => {
                oa = staff
                    .iter()
                    .filter(|s| matches!(s.kind.to_lowercase().as_str(), "oa" | "oar"))
                    .last()
                    .map(|s| s.alias.clone());
            }
            Err(e) if is_failure(&e) => job.warn("NIGHT_STAFF_API_ERROR", service_error_text(&e)),
            Err(e) => job.log(&service_error_text(&e)),
        }
    }
    job.hdr.set("OA", oa, "KOA: Observing Assistant name");
    Ok(true)
}

const WEATHER_COMMENTS: [(&str, &str); 9] = [
    ("WXDOMHUM", "KOA: Weather dome humidity"),
    ("WXDOMTMP", "KOA: Weather dome temperature"),
    ("WXDWPT", "KOA: Weather dewpoint"),
    ("WXOUTHUM", "KOA: Weather outside humidity"),
    ("WXOUTTMP", "KOA: Weather outside temperature"),
    ("WXPRESS", "KOA: Weather pressure"),
    ("WXWNDIR", "KOA: Weather wind direction"),
    ("WXWNDSP", "KOA: Weather wind speed"),
    ("GUIDFWHM", "KOA: Guide star FWHM value"),
];

/// `set_weather` (pipeline §24): the archived sample closest to the frame
/// time for each weather channel and the guider FWHM, within ±30 s; `null`
/// when there is none.
pub fn set_weather(job: &mut Job) -> StepResult {
    let (Some(date), Some(utc)) = (job.hdr.text("DATE-OBS"), job.hdr.text("UTC")) else {
        return Err(Fail::new("DATE-OBS or UTC missing"));
    };
    let t = frame_time(&date, &utc).ok_or_else(|| Fail::new(format!("cannot parse {date} {utc}")))?;
    let t_secs = t.and_utc().timestamp() as f64 + t.and_utc().timestamp_subsec_micros() as f64 * 1e-6;
    let mut values: Vec<(String, Option<f64>, Option<(f64, i64, u32)>)> =
        WEATHER_COMMENTS.iter().map(|(k, _)| (k.to_string(), None, None)).collect();
    let mut errors = Vec::new();
    match job.telnr {
        None => job.log("telescope number unknown; no weather lookup"),
        Some(telnr) => {
            let from = iso_z(t - Duration::seconds(30));
            let to = iso_z(t + Duration::seconds(30));
            match job.host.weather(telnr, &from, &to) {
                Ok(channels) => {
                    for ch in channels {
                        if let Some(err) = &ch.error {
                            errors.push(format!("{}: {err}", ch.keyword));
                        }
                        let best = ch
                            .samples
                            .iter()
                            .map(|s| ((s.secs as f64 + s.nanos as f64 * 1e-9 - t_secs).abs(), s))
                            .min_by(|a, b| a.0.total_cmp(&b.0));
                        if let (Some((dt, s)), Some(slot)) = (best, values.iter_mut().find(|v| v.0 == ch.keyword)) {
                            slot.1 = Some(s.val);
                            slot.2 = Some((dt, s.secs, s.nanos));
                        } else if best.is_none() {
                            job.log(&format!("no weather samples for {}", ch.keyword));
                        }
                    }
                }
                Err(e) if is_failure(&e) => job.warn("WEATHER_DATA_FAIL", service_error_text(&e)),
                Err(e) => job.log(&service_error_text(&e)),
            }
        }
    }
    let closest = |keys: &dyn Fn(&str) -> bool| -> Option<String> {
        values
            .iter()
            .filter(|v| keys(&v.0))
            .filter_map(|v| v.2)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, secs, nanos)| hms_hundredths(secs, nanos))
    };
    let wxtime = closest(&|k| k != "GUIDFWHM");
    let guidtime = closest(&|k| k == "GUIDFWHM");
    for ((key, val, _), (_, comment)) in values.iter().zip(WEATHER_COMMENTS.iter()) {
        job.hdr.set(key, *val, comment);
    }
    job.hdr.set("WXTIME", wxtime, "KOA: Weather measurement time");
    job.hdr.set("GUIDTIME", guidtime, "KOA: Guide star FWHM measure time");
    if !errors.is_empty() {
        job.warn("EPICS_ARCHIVER_WARNING", errors.join("; "));
    }
    Ok(true)
}

/// Mean, standard deviation and median rounded to two decimals, as header values.
pub fn stat_values(mean: f64, std: f64, median: f64) -> [Option<f64>; 3] {
    let r = |x: f64| if x.is_finite() { Some(round_to(x, 2)) } else { None };
    [r(mean), r(std), r(median)]
}

/// Base `set_image_stats`: IMAGEMN/IMAGESD/IMAGEMD of the primary data.
pub fn set_image_stats(job: &mut Job) -> StepResult {
    if !job.hdr.has_array(0) {
        job.log("primary HDU has no image data; no statistics");
        return Ok(true);
    }
    set_image_stats_of(job, 0)
}

/// IMAGEMN/IMAGESD/IMAGEMD of the whole image of HDU `hdu`.
pub fn set_image_stats_of(job: &mut Job, hdu: u32) -> StepResult {
    let s = job.host.image_stats(hdu, None, None).map_err(Fail)?;
    let [mn, sd, md] = stat_values(s.mean, s.std, s.median);
    job.hdr.set("IMAGEMN", mn, "KOA: Image data mean");
    job.hdr.set("IMAGESD", sd, "KOA: Image data standard deviation");
    job.hdr.set("IMAGEMD", md, "KOA: Image data median");
    Ok(true)
}

/// `set_npixsat`: pixels at or above the saturation value in the given HDUs
/// (default: SATURATE of the primary header, counted in the primary data).
pub fn set_npixsat(job: &mut Job, sat: Option<f64>, hdus: &[u32]) -> StepResult {
    let Some(sat) = sat.or_else(|| job.hdr.raw_f64("SATURATE")) else {
        job.warn("SET_NPIXSAT_ERROR", "No saturate value.");
        return Ok(false);
    };
    let mut n = 0u64;
    for &h in hdus {
        if job.hdr.has_array(h as usize) {
            n += job.host.count_at_least(h, None, sat).map_err(Fail)?;
        }
    }
    job.hdr.set("NPIXSAT", n, "KOA: Number of saturated pixels");
    Ok(true)
}

/// Indices of all extensions (1…n-1) that hold image arrays.
pub fn image_extensions(job: &Job) -> Vec<u32> {
    (1..job.hdr.len()).filter(|&i| job.hdr.has_array(i)).map(|i| i as u32).collect()
}

/// `set_datlevel(0)`.
pub fn set_datlevel(job: &mut Job, level: i64) -> StepResult {
    job.hdr.set("DATLEVEL", level, "KOA: Data reduction level");
    Ok(true)
}

/// `set_dqa_vers`: the configured DEP version.
pub fn set_dqa_vers(job: &mut Job) -> StepResult {
    let v = job.ctx.dep_version.clone();
    job.hdr.set("DQA_VERS", v, "KOA: Data quality assess code version");
    Ok(true)
}

/// `set_dqa_date`: the job's local start time `YYYY-MM-DDTHH:MM:SS`.
pub fn set_dqa_date(job: &mut Job) -> StepResult {
    let v: String = job.ctx.now_local.chars().take(19).collect();
    job.hdr.set("DQA_DATE", v, "KOA: Data quality assess time");
    Ok(true)
}

/// ELAPTIME := round(time · COADDS, digits) unless a raw ELAPTIME is usable.
/// `time_keys` are tried in order (e.g. TRUITIME then ITIME).
pub fn set_elaptime_coadds(job: &mut Job, time_keys: &[&str], digits: usize) -> StepResult {
    if job.hdr.raw("ELAPTIME").is_some() {
        return Ok(true);
    }
    let itime = time_keys.iter().find_map(|k| job.hdr.raw_f64(k));
    let coadds = job.hdr.raw_f64("COADDS");
    let (Some(itime), Some(coadds)) = (itime, coadds) else {
        job.warn("SET_ELAPTIME_ERROR", format!("{} and COADDS required", time_keys.join("/")));
        return Ok(false);
    };
    job.hdr.set("ELAPTIME", round_to(itime * coadds, digits), "KOA: Total integration time");
    Ok(true)
}

/// `is_at_domeflat`: telescope at the dome-flat elevation and the dome
/// perpendicular to the telescope.
pub fn is_at_domeflat(job: &Job) -> bool {
    let el = job.hdr.f64("EL").unwrap_or(0.0);
    let (lo, hi) = match job.telnr {
        Some(1) => (66.99, 67.03),
        _ => (44.99, 45.03),
    };
    if !(lo < el && el < hi) {
        return false;
    }
    let dome = job.hdr.f64("DOMEPOSN").unwrap_or(0.0);
    let az = job.hdr.f64("AZ").unwrap_or(0.0);
    let d = (dome - floor_mod(az, 360.0)).abs();
    83.0 < d && d < 93.0
}

/// `check_type_str`: numbers from strings, `dflt` when unparsable.
pub fn check_type_str(values: &[Option<Value>], dflt: f64) -> Vec<f64> {
    values.iter().map(|v| v.as_ref().and_then(to_f64).unwrap_or(dflt)).collect()
}

/// A service answer that was "not configured" (logged, no warning).
pub fn is_unavailable(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Unavailable(_))
}
