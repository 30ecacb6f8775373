//! SEMESTER (spec §8), program assignment PROGID/PROGPI/PROGINST/PROGTL1-3
//! (§9) and the proprietary period with the zero-propint policy (§10).
//! Reference defects fixed: #7 (ASSIGN_PROGNAME also drives PROGID), #8
//! (no crash on odd progids, ENG detection by token), #9 (undefined
//! KOAIMTYP is not a calibration), #10 (twilight failure is a warning), #11
//! (schedule fallback: missing OUTDIR, SKIP, HST times), #13, #21.

use chrono::{Datelike, Duration, NaiveDate};

use crate::host::service_error_text;
use crate::job::{Fail, Job, StepResult};
use crate::time::{day_before, frame_time, parse_utc};
use crate::types::{Program, ServiceError};

/// `is_progid_valid` (§9.1).
pub fn is_progid_valid(p: &str) -> bool {
    if p.is_empty() || p == "NONE" || p.matches('_').count() > 1 {
        return false;
    }
    let (sem, prog) = match p.split_once('_') {
        Some((s, g)) => (Some(s), g),
        None => (None, p),
    };
    let n = prog.chars().count();
    !(n <= 2 || n >= 6 || prog.contains(' ') || prog.contains("PROGID") || sem.is_some_and(|s| s.chars().count() != 5))
}

/// The PROGNAME chosen by MISC.ASSIGN_PROGNAME for this frame's UTC
/// (`P` or `P1,HH:MM:SS,P2[,HH:MM:SS,P3…]`).
pub fn assigned_progname(job: &Job) -> Result<Option<String>, Fail> {
    let Some(spec) = job.ctx.assign_progname.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    if parts.len() % 2 == 0 {
        return Err(Fail::new(format!("ASSIGN_PROGNAME {spec:?} needs an odd number of parts")));
    }
    if parts.len() == 1 {
        return Ok(Some(parts[0].to_string()));
    }
    let utc = job.hdr.text("UTC").and_then(|u| parse_utc(&u)).ok_or_else(|| Fail::new("UTC unusable for ASSIGN_PROGNAME"))?;
    for pair in (1..parts.len()).step_by(2) {
        let split = parse_utc(parts[pair]).ok_or_else(|| Fail::new(format!("bad split time {:?}", parts[pair])))?;
        if utc.time() <= split.time() {
            return Ok(Some(parts[pair - 1].to_string()));
        }
    }
    Ok(Some(parts[parts.len() - 1].to_string()))
}

/// Semester of a frame time: `YYYYA` from Feb 1 to Aug 1 (HST, with the
/// 10:00 HST day boundary), else `YYYYB` (January belongs to the year before).
pub fn semester_of(date_obs: &str, utc: &str) -> Option<String> {
    let d = frame_time(date_obs, utc)? - Duration::hours(20);
    let y = d.year();
    let feb = NaiveDate::from_ymd_opt(y, 2, 1)?.and_hms_opt(0, 0, 0)?;
    let aug = NaiveDate::from_ymd_opt(y, 8, 1)?.and_hms_opt(0, 0, 0)?;
    let letter = if feb <= d && d < aug { 'A' } else { 'B' };
    let year = if d.month() == 1 { y - 1 } else { y };
    Some(format!("{year}{letter}"))
}

/// `set_semester` (§8).
pub fn set_semester(job: &mut Job) -> StepResult {
    let from_name = |p: &str| -> Option<String> {
        (p.contains('_') && is_progid_valid(p)).then(|| p.split('_').next().unwrap_or("").to_string())
    };
    if let Some(sem) = assigned_progname(job)?.as_deref().and_then(from_name) {
        job.hdr.set("SEMESTER", sem, "Calculated SEMESTER from PROGNAME");
        return Ok(true);
    }
    if let Some(sem) = job.hdr.text("PROGNAME").as_deref().and_then(from_name) {
        job.hdr.set("SEMESTER", sem, "Calculated SEMESTER from PROGNAME");
        return Ok(true);
    }
    let (Some(date), Some(utc)) = (job.hdr.text("DATE-OBS"), job.hdr.text("UTC")) else {
        job.error("SET_SEMESTER_FAIL", "DATE-OBS or UTC missing");
        return Ok(false);
    };
    match semester_of(&date, &utc) {
        Some(sem) => {
            job.hdr.set("SEMESTER", sem, "Calculated SEMESTER from DATE-OBS");
            Ok(true)
        }
        None => {
            job.error("SET_SEMESTER_FAIL", format!("cannot parse DATE-OBS {date:?} UTC {utc:?}"));
            Ok(false)
        }
    }
}

/// Whether PROGNAME names engineering time: a token `eng`, `eng…`,
/// `engineering`, or `<digits>eng` (K1ENG); plus the reference's
/// `calibrations` and `my program`. (Reference defect #8: any `eng`
/// substring, e.g. "Bengal", counted.)
pub fn progname_is_engineering(progname: &str) -> bool {
    let p = progname.to_lowercase();
    if p.contains("calibrations") || p.contains("my program") {
        return true;
    }
    p.split(|c: char| !c.is_ascii_alphanumeric()).any(|tok| {
        tok.starts_with("eng")
            || tok
                .strip_suffix("eng")
                .is_some_and(|head| head.chars().last().is_some_and(|c| c.is_ascii_digit()))
    })
}

/// `is_engineering()` (§9.2).
pub fn is_engineering(job: &mut Job) -> Result<bool, Fail> {
    let lower = |j: &Job, k: &str| j.hdr.text(k).unwrap_or_default().to_lowercase();
    if progname_is_engineering(&lower(job, "PROGNAME")) {
        return Ok(true);
    }
    const OUTDIRS: [&str; 15] = [
        "kpfeng", "kpfdev", "kcwieng", "kcwirun", "hireseng", "nspeceng", "nirc2eng", "dmoseng", "lriseng",
        "esieng", "nireseng", "osiriseng", "moseng", "scaeng", "scadev",
    ];
    let outdir = lower(job, "OUTDIR");
    if OUTDIRS.iter().any(|s| outdir.contains(s)) {
        return Ok(true);
    }
    let observer = lower(job, "OBSERVER");
    if observer.contains("keck ipdm") || observer.contains("nirspec") {
        return Ok(true);
    }
    if lower(job, "CAMERA").contains("fpc") {
        return Ok(true);
    }
    check_zero_propint(job)
}

/// Whether the frame was taken in daylight (UT before sunset or after
/// sunrise). `None` when the twilight service could not say; a failed
/// service is warned about once per file.
pub fn is_daytime(job: &mut Job) -> Option<bool> {
    if let Some(v) = job.vars.get("is_daytime") {
        return match v {
            crate::types::Value::Logical(b) => Some(*b),
            _ => None,
        };
    }
    let result = daytime_lookup(job);
    job.vars.insert(
        "is_daytime",
        match result {
            Some(b) => crate::types::Value::Logical(b),
            None => crate::types::Value::Undefined,
        },
    );
    result
}

fn daytime_lookup(job: &mut Job) -> Option<bool> {
    let utdate = job.hdr.raw_text("DATE-OBS")?;
    let utc = parse_utc(&job.hdr.text("UTC")?)?;
    match job.host.twilight(utdate.get(..10)?) {
        Ok(tw) => {
            let (Some(sunset), Some(sunrise)) = (parse_utc(&tw.sunset), parse_utc(&tw.sunrise)) else {
                job.warn("TWILIGHT_API_ERROR", format!("unparsable twilight {tw:?}"));
                return None;
            };
            let t = utc.time();
            Some(t < sunset.time() || t > sunrise.time())
        }
        Err(ServiceError::Unavailable(why)) => {
            job.log(&format!("twilight service unavailable ({why}); day/night not decided"));
            None
        }
        Err(e) => {
            job.warn("TWILIGHT_API_ERROR", service_error_text(&e));
            None
        }
    }
}

/// `check_zero_propint()` (§10.2): calibration, in daylight, no target info.
/// KOAIMTYP missing/undefined is not a calibration (reference defect #9).
pub fn check_zero_propint(job: &mut Job) -> Result<bool, Fail> {
    let t = job.hdr.text("KOAIMTYP").unwrap_or_default().to_lowercase();
    let is_cal = !t.is_empty() && !matches!(t.as_str(), "object" | "unknown" | "undefined");
    // The twilight call is made for every frame, as in the reference.
    let daytime = is_daytime(job).unwrap_or(false);
    if !is_cal || !daytime {
        return Ok(false);
    }
    let has_target = (job.hooks.has_target_info)(job);
    Ok(!has_target)
}

/// Base schedule fallback for PROGID (§9.4), fixed per reference defect #11:
/// a missing OUTDIR means no split night, a trailing `/` is ignored, `SKIP`
/// means "do not use the schedule", and the frame's UT is converted to HST
/// before it is compared with the schedule's HST start/end times.
pub fn progid_from_schedule(job: &mut Job) -> Result<String, Fail> {
    let none = || Ok("NONE".to_string());
    let Some(utc) = job.hdr.text("UTC").and_then(|u| parse_utc(&u)) else { return none() };
    let outdir = job.hdr.text("OUTDIR").unwrap_or_default();
    let outdir = outdir.trim_end_matches('/');
    if outdir.ends_with("SKIP") {
        return none();
    }
    let split = ["_A", "_B", "_C", "_D", "_E"].iter().position(|s| outdir.ends_with(s)).map(|i| i + 1);
    let Some(hst) = job.hdr.raw_text("DATE-OBS").and_then(|d| day_before(d.get(..10)?)) else { return none() };
    let Some(telnr) = job.telnr else { return none() };
    let instr = job.ctx.instrument.to_uppercase();
    let entries = match job.host.schedule(&hst, Some(telnr), &instr) {
        Ok(e) => e,
        Err(e) => {
            job.warn("SCHEDULE_API_ERROR", service_error_text(&e));
            return none();
        }
    };
    Ok(pick_schedule_entry(&entries, utc.hours(), split, false).unwrap_or_else(|| "NONE".into()))
}

/// Hours of an `HH:MM` schedule time on a night axis (afternoon hours keep
/// their value, morning hours are moved past midnight: 05:30 → 29.5).
pub fn night_hours(hhmm: &str) -> Option<f64> {
    let mut it = hhmm.trim().split(':');
    let h: f64 = it.next()?.trim().parse().ok()?;
    let m: f64 = it.next().unwrap_or("0").trim().parse().ok()?;
    let v = h + m / 60.0;
    Some(if v < 12.0 { v + 24.0 } else { v })
}

/// Choose a schedule entry for a frame at `ut_hours` (UT). `classical_only_edges`
/// restricts the before-first/after-last rules to ObsType Classical (GUIDER).
pub fn pick_schedule_entry(
    entries: &[crate::types::ScheduleEntry],
    ut_hours: f64,
    split: Option<usize>,
    classical_only_edges: bool,
) -> Option<String> {
    if entries.len() == 1 {
        return Some(entries[0].proj_code.clone());
    }
    let hst = (ut_hours - 10.0).rem_euclid(24.0);
    let t = if hst < 12.0 { hst + 24.0 } else { hst };
    let last = entries.len().checked_sub(1)?;
    for (n, e) in entries.iter().enumerate() {
        if let Some(idx) = split {
            if idx == n + 1 {
                return Some(e.proj_code.clone());
            }
            continue;
        }
        let (Some(start), Some(end)) = (night_hours(&e.start_time), night_hours(&e.end_time)) else { continue };
        if start <= t && t <= end {
            return Some(e.proj_code.clone());
        }
        let edge_ok = !classical_only_edges || e.obs_type.eq_ignore_ascii_case("Classical");
        if edge_ok && n == 0 && t < start {
            return Some(e.proj_code.clone());
        }
        if edge_ok && n == last && t > end {
            return Some(e.proj_code.clone());
        }
    }
    None
}

/// Replace every non-ASCII character by an XML numeric character reference.
pub fn xml_escape_non_ascii(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii() { c.to_string() } else { format!("&#{};", c as u32) }).collect()
}

fn program_lookup(job: &mut Job, semid: &str) -> Program {
    match job.host.program_info(semid) {
        Ok(p) => p,
        Err(e) => Program {
            pi: None,
            institution: None,
            title: None,
            propint: None,
            failures: vec![format!("program {semid}: {}", service_error_text(&e))],
        },
    }
}

/// `set_prog_info` (§9.3).
pub fn set_prog_info(job: &mut Job) -> StepResult {
    let instr = job.ctx.instrument.to_uppercase();
    let mut cand = job.ctx.progid_override.clone().filter(|p| !p.trim().is_empty());
    if cand.is_none() {
        cand = assigned_progname(job)?;
    }
    if cand.is_none() {
        cand = job.hdr.text("PROGNAME");
    }
    let outdir = job.hdr.text("OUTDIR").unwrap_or_default();
    let too = outdir.contains("_ToO_");
    if cand.is_none() && too {
        let o = outdir.strip_suffix('/').unwrap_or(&outdir);
        cand = o.rsplit('_').next().map(str::to_string);
    }
    let mut cand = match cand {
        Some(c) => c,
        None => (job.hooks.progid_from_schedule)(job)?,
    };
    let mut valid = is_progid_valid(&cand);
    if is_engineering(job)? && !too {
        cand = "ENG".into();
        valid = true;
    }
    if !valid {
        job.warn("INVALID_PROGID_WARN", cand.clone());
    }
    let cand = cand.trim().to_uppercase();
    let (progid, pi, inst, title) = if !valid {
        ("NONE".to_string(), "NONE".to_string(), "NONE".to_string(), String::new())
    } else if cand == "ENG" {
        ("ENG".into(), format!("{}eng", instr.to_lowercase()), "KECK".into(), format!("{instr} Engineering"))
    } else {
        let (sem, prog) = match cand.split_once('_') {
            Some((s, p)) => (s.to_string(), p.to_string()),
            None => (job.hdr.raw_text("SEMESTER").unwrap_or_default(), cand.clone()),
        };
        let semid = format!("{sem}_{prog}");
        let p = program_lookup(job, &semid);
        for f in &p.failures {
            if !f.starts_with("propint") {
                job.warn("PROP_API_ERROR", f.clone());
            }
        }
        let squash = |s: Option<String>| s.map(|v| v.replace(' ', "")).filter(|v| !v.is_empty());
        (
            prog,
            squash(p.pi).unwrap_or_else(|| "NONE".into()),
            squash(p.institution).unwrap_or_else(|| "NONE".into()),
            p.title.unwrap_or_default(),
        )
    };
    let title = xml_escape_non_ascii(&title);
    let chunk = |i: usize| -> String { title.chars().skip(i * 50).take(50).collect() };
    job.hdr.set("PROGID", progid.as_str(), "KOA: Program ID");
    job.hdr.set("PROGPI", pi.as_str(), "KOA: Program principal investigator");
    job.hdr.set("PROGINST", inst.as_str(), "KOA: Program institution");
    job.hdr.set("PROGTL1", chunk(0), "Program title 1");
    job.hdr.set("PROGTL2", chunk(1), "Program title 2");
    job.hdr.set("PROGTL3", chunk(2), "Program title 3");
    job.set_extra("PROGTITL", title);
    Ok(true)
}

/// `set_propint` (§10.1) including the zero-propint policy (DKOA-82).
pub fn set_propint(job: &mut Job) -> StepResult {
    let Some(progid) = job.hdr.raw_text("PROGID") else {
        return Err(Fail::new("PROGID not set before set_propint"));
    };
    let progid = progid.to_uppercase();
    let mut propint: i64 = 18;
    if progid != "NONE" && progid != "ENG" {
        let semid = format!("{}_{}", job.hdr.raw_text("SEMESTER").unwrap_or_default(), progid);
        let p = program_lookup(job, &semid);
        match p.propint {
            Some(v) => propint = v as i64,
            None => {
                if !progid.starts_with('E') {
                    let why = p.failures.iter().find(|f| f.starts_with("propint") || f.starts_with("program"));
                    job.warn("PROPINT_ERROR", format!("{semid}: {}", why.cloned().unwrap_or_else(|| "no proprietary period".into())));
                }
            }
        }
    }
    match check_zero_propint(job) {
        Ok(true) => propint = 0,
        Ok(false) => {}
        Err(Fail(msg)) => job.warn("CHECK_ZERO_PROPINT_FAIL", msg),
    }
    job.set_extra("PROPINT", propint);
    Ok(true)
}

/// Whether an API answer was a plain failure (not just "not configured").
pub fn is_failure(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Failed(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ScheduleEntry;

    #[test]
    fn progid_validity() {
        assert!(is_progid_valid("C272"));
        assert!(is_progid_valid("2019A_C272"));
        assert!(!is_progid_valid("2019_C272"));
        assert!(!is_progid_valid("a_b_c"));
        assert!(!is_progid_valid("NONE"));
        assert!(!is_progid_valid("AB"));
        assert!(!is_progid_valid("ABCDEF"));
        assert!(!is_progid_valid("A B"));
        assert!(!is_progid_valid(""));
    }

    #[test]
    fn semester_examples_from_spec() {
        assert_eq!(semester_of("2017-08-01", "19:59:59.0").unwrap(), "2017A");
        assert_eq!(semester_of("2017-08-01", "20:00:00.0").unwrap(), "2017B");
        assert_eq!(semester_of("2018-01-15", "12:00:00.0").unwrap(), "2017B");
        assert_eq!(semester_of("2018-02-01", "19:00:00.0").unwrap(), "2017B");
        assert_eq!(semester_of("2018-02-01", "21:00:00.0").unwrap(), "2018A");
        assert_eq!(semester_of("2019-06-15", "03:29:31.36").unwrap(), "2019A");
    }

    #[test]
    fn engineering_by_token_not_substring() {
        assert!(progname_is_engineering("ENG"));
        assert!(progname_is_engineering("2019B_ENG"));
        assert!(progname_is_engineering("engineering"));
        assert!(progname_is_engineering("K1ENG"));
        assert!(progname_is_engineering("Calibrations"));
        assert!(!progname_is_engineering("Bengal"));
        assert!(!progname_is_engineering("C272"));
        assert!(!progname_is_engineering("Strength"));
    }

    fn entry(code: &str, start: &str, end: &str) -> ScheduleEntry {
        ScheduleEntry {
            date: "2019-06-14".into(),
            telnr: 2,
            instrument: "NIRES".into(),
            proj_code: code.into(),
            start_time: start.into(),
            end_time: end.into(),
            obs_type: "Classical".into(),
        }
    }

    #[test]
    fn schedule_pick_uses_hst() {
        let e = vec![entry("C111", "18:00", "00:00"), entry("C222", "00:00", "06:00")];
        // 09:00 UT = 23:00 HST: first half
        assert_eq!(pick_schedule_entry(&e, 9.0, None, false).as_deref(), Some("C111"));
        // 12:00 UT = 02:00 HST: second half
        assert_eq!(pick_schedule_entry(&e, 12.0, None, false).as_deref(), Some("C222"));
        // 03:00 UT = 17:00 HST: before the first entry
        assert_eq!(pick_schedule_entry(&e, 3.0, None, false).as_deref(), Some("C111"));
        // split index B → second entry whatever the time
        assert_eq!(pick_schedule_entry(&e, 9.0, Some(2), false).as_deref(), Some("C222"));
        assert_eq!(pick_schedule_entry(&e[..1], 20.0, None, false).as_deref(), Some("C111"));
    }

    fn run_propint(cards: Vec<crate::types::Card>, host: &crate::testing::FixtureHost) -> (StepResult, Vec<(String, crate::types::Value)>) {
        let ctx = crate::testing::context("NIRES");
        let mut job = Job::new(&ctx, vec![crate::testing::primary(cards, 8, &[])], &[], host, crate::job::Hooks::default());
        let r = set_propint(&mut job);
        (r, job.extra.clone())
    }

    /// Reference defect #13: PROGID was upper-cased before anyone checked
    /// that it was set (a crash on a missing PROGID).
    #[test]
    fn propint_checks_progid_before_using_it() {
        use crate::testing::{FixtureHost, card, program};
        use crate::types::Value;
        let host = FixtureHost::default();
        let (r, extra) = run_propint(vec![card("SEMESTER", "2024A")], &host);
        assert!(matches!(&r, Err(Fail(m)) if m.contains("PROGID")), "{r:?}");
        assert!(extra.is_empty());
        // a lower-case program id is looked up upper-cased
        let mut host = FixtureHost::default();
        host.programs.insert("2024A_C272".into(), program("P", "I", "T", 12));
        let (r, extra) = run_propint(vec![card("SEMESTER", "2024A"), card("PROGID", "c272")], &host);
        assert!(matches!(r, Ok(true)), "{r:?}");
        assert!(extra.contains(&("PROPINT".to_string(), Value::Int(12))), "{extra:?}");
    }

    #[test]
    fn non_ascii_titles_are_escaped() {
        assert_eq!(xml_escape_non_ascii("Él niño"), "&#201;l ni&#241;o");
    }
}
