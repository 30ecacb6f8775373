//! KOAID creation and the header repairs it needs: INSTRUME (spec §6.1),
//! UTC (§7.2) and DATE-OBS (§7.1). Reference defects #1 (switchable), #2, #3,
//! #4, #5 and #6 are fixed here.

use crate::job::{Fail, Job, StepResult};
use crate::time::{parse_utc, starts_with_iso_date};
use crate::value::to_text;

/// A KOAID and the prefix it was built with.
#[derive(Clone, Debug, PartialEq)]
pub struct Koaid {
    pub id: String,
    pub prefix: String,
    /// True when the header already carried a KOAID (re-fed lev-0 files).
    pub preexisting: bool,
}

/// `get_instr()`: INSTRUME lower-cased, first space-separated token, `:` removed.
pub fn instr_token(job: &Job) -> String {
    job.hdr
        .text("INSTRUME")
        .unwrap_or_default()
        .to_lowercase()
        .split(' ')
        .next()
        .unwrap_or("")
        .replace(':', "")
}

/// Base `set_instr`: validate INSTRUME against the configured instrument,
/// fixing it from FILNAME/OUTDIR/CURRINST. A `/mira` OUTDIR is rejected for
/// good (reference defect #6: the later checks could re-accept it).
pub fn set_instr(job: &mut Job) -> StepResult {
    let instr = job.ctx.instrument.to_uppercase();
    let instrume = job.hdr.text("INSTRUME");
    let mut ok = instrume.as_deref().is_some_and(|v| v.starts_with(&instr));
    if ok && instrume.as_deref() != Some(instr.as_str()) {
        job.hdr.set("INSTRUME", instr.as_str(), "KOA: Instrument");
    }
    let outdir = job.hdr.text("OUTDIR").unwrap_or_default();
    if outdir.contains("/mira") {
        job.error("SET_INSTR_ERROR", format!("OUTDIR {outdir} is a /mira directory"));
        return Ok(false);
    }
    if !ok {
        let filname = job.hdr.text("FILNAME").unwrap_or_default();
        let currinst = job.hdr.text("CURRINST").unwrap_or_default();
        ok = filname.contains(&instr)
            || outdir.to_uppercase().contains(&instr)
            || (outdir.contains("sdata100") && outdir.ends_with("fcs"))
            || currinst == instr;
        if ok {
            job.hdr.set("INSTRUME", instr.as_str(), "KOA: Fixing INSTRUME keyword");
        }
    }
    if !ok {
        job.error(
            "SET_INSTR_ERROR",
            format!("INSTRUME {:?} does not match {instr}", instrume.unwrap_or_default()),
        );
    }
    Ok(ok)
}

/// `verify_utc` with reference defect #3 fixed: the text must hold
/// `HH:MM:SS[.f]` with valid ranges; anything else is simply invalid.
pub fn verify_utc(text: &str) -> bool {
    parse_utc(text).is_some()
}

/// `set_utc` (§7.2): keep a valid raw UTC untouched; write UTC from the
/// mapped key (UT) or, failing that, from the file's modification time in UTC
/// (reference defect #5 fixed: no local-time + 10 h).
pub fn set_utc(job: &mut Job) {
    let raw = job.hdr.raw("UTC").cloned();
    let mut must_write = raw.is_none();
    let v = raw.or_else(|| job.hdr.get("UTC").cloned());
    let mut text = v.as_ref().map(|v| to_text(v).trim().to_string());
    if !text.as_deref().is_some_and(verify_utc) {
        let mtime = job.ctx.file_mtime_utc.get(11..19).unwrap_or("00:00:00");
        text = Some(format!("{mtime}.00"));
        must_write = true;
    }
    if must_write {
        job.hdr.set("UTC", text.unwrap_or_default(), "KOA: UTC keyword corrected");
    }
}

/// A slash date as `YYYY-MM-DD`: `DD/MM/YY`, `DD/MM/YYYY` or `YYYY/MM/DD`
/// (reference defect #4 fixed: 4-digit years, zero padding, bad splits).
pub fn slash_date(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split('/').map(str::trim).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (y, m, d) = if parts[0].len() == 4 {
        (parts[0].to_string(), parts[1], parts[2])
    } else {
        let year = match parts[2].len() {
            2 => {
                let yy: u32 = parts[2].parse().ok()?;
                if yy < 50 { format!("20{:02}", yy) } else { format!("19{:02}", yy) }
            }
            4 => parts[2].to_string(),
            _ => return None,
        };
        (year, parts[1], parts[0])
    };
    let iso = format!("{y}-{:0>2}-{:0>2}", m, d);
    crate::time::parse_date(&iso).map(|_| iso)
}

/// `set_dateObs` (§7.1): keep an ISO date, convert a slash date, else use
/// the file's modification date (UTC); trim to the first 10 characters.
pub fn set_dateobs(job: &mut Job) {
    let v = job.hdr.raw("DATE-OBS").or_else(|| job.hdr.get("DATE-OBS")).cloned();
    let original = v.as_ref().map(|v| to_text(v).trim().to_string());
    let mut valid = original.as_deref().is_some_and(starts_with_iso_date);
    if !valid {
        if let Some(orig) = original.as_deref().filter(|o| o.contains('/')) {
            if let Some(iso) = slash_date(orig) {
                job.hdr.set("DATE-OBS", iso.as_str(), &format!("KOA: Value corrected ({orig})"));
                valid = true;
            }
        }
    }
    if !valid {
        let date = job.ctx.file_mtime_utc.get(..10).unwrap_or("1970-01-01").to_string();
        job.hdr.set("DATE-OBS", date.as_str(), "KOA: Observing date");
    }
    let now = job.hdr.raw_text("DATE-OBS").unwrap_or_default();
    if now.chars().count() > 10 {
        let short: String = now.chars().take(10).collect();
        job.hdr.set("DATE-OBS", short.as_str(), &format!("KOA: Value corrected ({now})"));
    }
}

/// The two hundredths digits of a KOAID from a UTC fraction.
/// Reference behaviour (`corrected == false`, [COMPAT] #1): the first two
/// characters of the un-padded microsecond integer (`.07` → `70`).
pub fn hundredths(utc: &crate::time::Utc, corrected: bool) -> String {
    if corrected {
        let mut f = utc.fraction.clone();
        while f.len() < 2 {
            f.push('0');
        }
        f[..2].to_string()
    } else {
        let us = utc.micros().to_string();
        let two: String = us.chars().take(2).collect();
        format!("{two:0>2}")
    }
}

/// The KOAID a header already carries (`set_koaid` keeps it, whatever the
/// instrument's own `make_koaid`).
pub fn existing(job: &Job) -> Option<Koaid> {
    let id = job.hdr.raw_text("KOAID")?.trim().trim_end_matches(".fits").to_string();
    let prefix = id.split('.').next().unwrap_or("").to_string();
    Some(Koaid { id, prefix, preexisting: true })
}

/// Base `make_koaid` (§6): `<PREFIX>.<YYYYMMDD>.<SSSSS>.<HH>`.
pub fn make_koaid(
    job: &mut Job,
    set_instr: fn(&mut Job) -> StepResult,
    prefix: fn(&mut Job) -> Result<Option<String>, Fail>,
) -> Result<Option<Koaid>, Fail> {
    make_koaid_with(job, set_instr, prefix, set_utc)
}

/// [`make_koaid`] with an instrument's own `set_utc` (KPF).
pub fn make_koaid_with(
    job: &mut Job,
    set_instr: fn(&mut Job) -> StepResult,
    prefix: fn(&mut Job) -> Result<Option<String>, Fail>,
    set_utc: fn(&mut Job),
) -> Result<Option<Koaid>, Fail> {
    if let Some(k) = existing(job) {
        return Ok(Some(k));
    }
    if !set_instr(job)? {
        return Ok(None);
    }
    let Some(pfx) = prefix(job)?.filter(|p| !p.is_empty()) else {
        job.error("KOAID_CREATE_FAIL", "no KOAID prefix for this header");
        return Ok(None);
    };
    set_utc(job);
    let Some(utc_text) = job.hdr.raw_text("UTC") else { return Ok(None) };
    set_dateobs(job);
    let Some(date) = job.hdr.raw_text("DATE-OBS") else { return Ok(None) };
    let Some(utc) = parse_utc(&utc_text) else {
        return Err(Fail::new(format!("UTC {utc_text:?} is not HH:MM:SS.f")));
    };
    let hh = hundredths(&utc, job.ctx.corrected_hundredths);
    let day = date.replace(['-', '/'], "");
    let id = format!("{pfx}.{day}.{:05}.{hh}", utc.seconds_of_day());
    Ok(Some(Koaid { id, prefix: pfx, preexisting: false }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_dates() {
        assert_eq!(slash_date("07/08/95").as_deref(), Some("1995-08-07"));
        assert_eq!(slash_date("7/8/19").as_deref(), Some("2019-08-07"));
        assert_eq!(slash_date("15/06/2019").as_deref(), Some("2019-06-15"));
        assert_eq!(slash_date("2019/06/15").as_deref(), Some("2019-06-15"));
        assert_eq!(slash_date("31/02/19"), None);
        assert_eq!(slash_date("1/2"), None);
        assert_eq!(slash_date("a/b/c"), None);
    }

    #[test]
    fn hundredths_compat_and_corrected() {
        let u = |s| parse_utc(s).unwrap();
        assert_eq!(hundredths(&u("03:29:31.36"), false), "36");
        assert_eq!(hundredths(&u("03:29:31.07"), false), "70");
        assert_eq!(hundredths(&u("03:29:31.005"), false), "50");
        assert_eq!(hundredths(&u("03:29:31.5"), false), "50");
        assert_eq!(hundredths(&u("03:29:31.0"), false), "00");
        assert_eq!(hundredths(&u("03:29:31"), false), "00");
        assert_eq!(hundredths(&u("03:29:31.07"), true), "07");
        assert_eq!(hundredths(&u("03:29:31.005"), true), "00");
        assert_eq!(hundredths(&u("03:29:31.5"), true), "50");
    }
}
