//! Operators' reports (issue 5 §4): outstanding errors and warnings by
//! instrument and code, a night's summary (files, science vs calibration,
//! exposure time, sizes, stage timings, files missing from disk or from the
//! database, the schedule), and the PI-notification table. Each report is a
//! serialisable value (for `--json`) with a plain-text rendering.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::db::reports::{CodeGroup, KoapiRow};
use crate::db::sources::SourceRow;
use crate::db::{Db, StatusRow};
use crate::services::Services;

/// `koa-dep report errors`.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorReport {
    pub groups: Vec<CodeGroup>,
    /// Jobs queued or running for more than an hour.
    pub stuck: Vec<Stuck>,
    /// Keyword sources that are down or failing (source_status).
    pub sources: Vec<SourceRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stuck {
    pub id: i64,
    pub instrument: String,
    pub status: String,
    pub ofname: String,
    pub creation_time: Option<NaiveDateTime>,
}

pub async fn errors(db: &Db, all: bool, instrument: Option<&str>) -> anyhow::Result<ErrorReport> {
    let instrument = instrument.map(str::to_uppercase);
    let groups = db.code_groups(all, instrument.as_deref()).await?;
    let stuck = db
        .stuck(Utc::now().naive_utc() - Duration::hours(1))
        .await?
        .into_iter()
        .filter(|r| instrument.as_ref().is_none_or(|i| &r.instrument == i))
        .map(|r| Stuck { id: r.id, instrument: r.instrument, status: r.status, ofname: r.ofname, creation_time: r.creation_time })
        .collect();
    let sources = db
        .sources()
        .await?
        .into_iter()
        .filter(|r| r.state != "UP" && instrument.as_ref().is_none_or(|i| r.instrument.eq_ignore_ascii_case(i)))
        .collect();
    Ok(ErrorReport { groups, stuck, sources })
}

impl ErrorReport {
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.groups.is_empty() {
            s.push_str("no outstanding errors or warnings on files\n");
        } else {
            let _ = writeln!(s, "{:<10} {:<13} {:<28} {:>6}  {:>8}", "INSTR", "STATUS", "CODE", "FILES", "NEWEST");
            for g in &self.groups {
                let code = match (&g.status_code, &g.status_code_ipac) {
                    (Some(c), Some(i)) if !i.is_empty() => format!("{c} / ipac {i}"),
                    (Some(c), _) => c.clone(),
                    (None, Some(i)) => format!("ipac {i}"),
                    (None, None) => "-".into(),
                };
                let _ = writeln!(s, "{:<10} {:<13} {:<28} {:>6}  {:>8}", g.instrument, g.status, code, g.count, g.newest_id);
            }
            let _ = writeln!(s, "acknowledge with `koa-dep ack ID…` or `koa-dep ack --code CODE [--instrument I]`");
        }
        for r in &self.stuck {
            let since = r.creation_time.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
            let _ = writeln!(s, "stuck: job {} {} {} since {since}: {}", r.id, r.instrument, r.status, r.ofname);
        }
        for r in &self.sources {
            let _ = writeln!(s, "source: {}", source_line(r));
        }
        s
    }
}

fn source_line(r: &SourceRow) -> String {
    format!(
        "{} ({}) {} {} since {}: {} [{}]",
        r.service,
        r.instrument,
        r.state,
        r.status_code.as_deref().unwrap_or("-"),
        r.since.format("%Y-%m-%d %H:%M:%S"),
        r.message.as_deref().unwrap_or(""),
        r.owner
    )
}

/// `koa-dep report sources`.
pub fn sources_text(rows: &[SourceRow]) -> String {
    if rows.is_empty() {
        return "no source has been recorded (is a daemon running on this database?)\n".into();
    }
    rows.iter().map(|r| format!("{}\n", source_line(r))).collect()
}

/// One instrument's night.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InstrumentNight {
    pub instrument: String,
    /// On the telescope schedule (None: the schedule service did not answer).
    pub scheduled: Option<bool>,
    pub files: usize,
    pub science: usize,
    pub calibration: usize,
    /// KOAIMTYP unknown or undefined.
    pub other: usize,
    pub by_status: BTreeMap<String, usize>,
    /// Sum of exposure times (s).
    pub exposure_s: f64,
    pub input_mb: f64,
    pub archived_mb: f64,
    /// Step name → (median, max) seconds.
    pub stage_s: BTreeMap<String, (f64, f64)>,
    /// Whole job (sum of its steps, else process start to end): median and max seconds.
    pub job_s: Option<(f64, f64)>,
    /// Files the instrument wrote that night that the database does not know.
    pub missing_from_db: Vec<PathBuf>,
    /// Rows whose original file is gone and that have no stage copy.
    pub missing_from_disk: Vec<String>,
}

/// `koa-dep report night --date D`.
#[derive(Clone, Debug, Serialize)]
pub struct NightReport {
    pub utdate: NaiveDate,
    pub instruments: Vec<InstrumentNight>,
}

/// Science frames are KOAIMTYP `object` (and KPF's `solar`); the named calibration types count
/// as calibrations; anything else (undefined, unknown) as other.
pub fn frame_class(koaimtyp: Option<&str>) -> &'static str {
    match koaimtyp.map(|t| t.trim().to_lowercase()).as_deref() {
        Some("object" | "solar") => "science",
        Some(
            "bias" | "dark" | "dark-imaging" | "flatlamp" | "flatlampoff" | "domeflat" | "twiflat" | "twilightflat" | "skyflat" | "dmflat"
            | "flat" | "flats" | "arclamp" | "focus" | "calib" | "polcal" | "fiber" | "etalon" | "lfc" | "thar" | "une",
        ) => "calibration",
        _ => "other",
    }
}

fn median_max(mut v: Vec<f64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some((med, v[n - 1]))
}

/// Summarise the level-0 rows of a UT date. `on_disk` lists, per
/// instrument, the files its services wrote that day (for the
/// missing-from-database check); `scheduled` answers per instrument.
pub fn summarise(
    utdate: NaiveDate,
    rows: &[StatusRow],
    on_disk: &BTreeMap<String, Vec<PathBuf>>,
    known: &BTreeSet<String>,
    scheduled: &BTreeMap<String, Option<bool>>,
) -> NightReport {
    let mut names: BTreeSet<String> = rows.iter().map(|r| r.instrument.to_uppercase()).collect();
    names.extend(on_disk.keys().cloned());
    names.extend(scheduled.iter().filter(|(_, s)| **s != Some(false)).map(|(k, _)| k.clone()));
    let mut out = Vec::new();
    for name in names {
        let mine: Vec<&StatusRow> = rows.iter().filter(|r| r.instrument.eq_ignore_ascii_case(&name)).collect();
        let mut n = InstrumentNight { instrument: name.clone(), scheduled: scheduled.get(&name).copied().flatten(), files: mine.len(), ..Default::default() };
        let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut jobs = Vec::new();
        for r in &mine {
            match frame_class(r.koaimtyp.as_deref()) {
                "science" => n.science += 1,
                "calibration" => n.calibration += 1,
                _ => n.other += 1,
            }
            *n.by_status.entry(r.status.clone()).or_default() += 1;
            n.exposure_s += r.exptime.unwrap_or(0.0);
            n.input_mb += r.filesize_mb.unwrap_or(0.0);
            n.archived_mb += r.archsize_mb.unwrap_or(0.0);
            // the job's time is the sum of its steps (the row's times have whole seconds)
            if let Some(t) = r.timings.as_deref().and_then(|t| serde_json::from_str::<BTreeMap<String, f64>>(t).ok()) {
                jobs.push(t.values().sum());
                for (k, v) in t {
                    stages.entry(k).or_default().push(v);
                }
            } else if let (Some(a), Some(b)) = (r.process_start_time, r.process_end_time) {
                jobs.push((b - a).num_milliseconds() as f64 / 1000.0);
            }
            let gone = |p: &Option<String>| p.as_deref().is_none_or(|p| !std::path::Path::new(p).exists());
            if gone(&Some(r.ofname.clone())) && gone(&r.stage_file) {
                n.missing_from_disk.push(r.ofname.clone());
            }
        }
        n.stage_s = stages.into_iter().filter_map(|(k, v)| median_max(v).map(|m| (k, m))).collect();
        n.job_s = median_max(jobs);
        n.missing_from_db = on_disk.get(&name).map(|v| v.iter().filter(|p| !known.contains(&p.display().to_string())).cloned().collect()).unwrap_or_default();
        out.push(n);
    }
    NightReport { utdate, instruments: out }
}

/// Gather and summarise a night: the database rows, the services' files of
/// that UT day, and the schedule of the HST night that ends on it.
pub async fn night(cfg: &Config, db: &Db, services: Arc<dyn Services>, utdate: NaiveDate) -> anyhow::Result<NightReport> {
    let rows = db.night_rows(utdate).await?;
    let start: SystemTime = DateTime::<Utc>::from_naive_utc_and_offset(utdate.and_hms_opt(0, 0, 0).expect("midnight"), Utc).into();
    let end = start + std::time::Duration::from_secs(86_400);
    let mut on_disk: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut known = BTreeSet::new();
    for (s, p) in crate::daemon::reconcile::service_files(cfg, start, Some(end))? {
        let text = p.display().to_string();
        if db.known_path(&text).await? {
            known.insert(text);
        }
        on_disk.entry(s.instrument.to_uppercase()).or_default().push(p);
    }
    for v in on_disk.values_mut() {
        v.sort();
        v.dedup();
    }
    // the night of UT date D is the HST date D-1
    let hst = (utdate - Duration::days(1)).format("%Y-%m-%d").to_string();
    let mut names: BTreeSet<String> = cfg.service.iter().filter(|s| s.enabled).map(|s| s.instrument.to_uppercase()).collect();
    names.extend(rows.iter().map(|r| r.instrument.to_uppercase()));
    let mut scheduled = BTreeMap::new();
    for name in names {
        let telnr = cfg.telescope(&name);
        let svc = services.clone();
        let (h, n) = (hst.clone(), name.clone());
        let answer = tokio::task::spawn_blocking(move || svc.schedule(&h, telnr, &n).ok().map(|e| !e.is_empty())).await.unwrap_or(None);
        scheduled.insert(name, answer);
    }
    Ok(summarise(utdate, &rows, &on_disk, &known, &scheduled))
}

impl NightReport {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "UT {}", self.utdate);
        if self.instruments.is_empty() {
            s.push_str("no files and nothing scheduled\n");
        }
        for n in &self.instruments {
            let sched = match n.scheduled {
                Some(true) => "scheduled",
                Some(false) => "not scheduled",
                None => "schedule unknown",
            };
            let _ = writeln!(
                s,
                "\n{} ({sched}): {} files — {} science, {} calibration, {} other; exposure {:.1} s; {:.1} MB in, {:.1} MB archived",
                n.instrument, n.files, n.science, n.calibration, n.other, n.exposure_s, n.input_mb, n.archived_mb
            );
            if n.files == 0 && n.scheduled == Some(true) {
                let _ = writeln!(s, "  ALERT: scheduled but no files in the database");
            }
            if !n.by_status.is_empty() {
                let st: Vec<String> = n.by_status.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(s, "  status: {}", st.join(", "));
            }
            if let Some((m, x)) = n.job_s {
                let _ = writeln!(s, "  job time: median {m:.3} s, max {x:.3} s");
            }
            if !n.stage_s.is_empty() {
                let st: Vec<String> = n.stage_s.iter().map(|(k, (m, x))| format!("{k} {m:.3}/{x:.3}")).collect();
                let _ = writeln!(s, "  steps (median/max s): {}", st.join(", "));
            }
            for p in &n.missing_from_db {
                let _ = writeln!(s, "  not in the database: {}", p.display());
            }
            for p in &n.missing_from_disk {
                let _ = writeln!(s, "  gone from disk (no stage copy): {p}");
            }
        }
        s
    }
}

/// `koa-dep report pi`: the PI-notification table (spec §21).
pub fn koapi_text(rows: &[KoapiRow]) -> String {
    let mut s = String::new();
    if rows.is_empty() {
        s.push_str("no programs waiting for a data notification\n");
        return s;
    }
    let _ = writeln!(s, "{:<6} {:<14} {:<10} {:<10} {:<10} {:>4} {:>8} {:>4} {:>7}", "ID", "SEMID", "INSTR", "FROM", "TO", "SEND", "NOTIFIED", "DVD", "DVD-NTF");
    for r in rows {
        let _ = writeln!(
            s,
            "{:<6} {:<14} {:<10} {:<10} {:<10} {:>4} {:>8} {:>4} {:>7}",
            r.id, r.semid, r.instr, r.utdate_beg, r.utdate_end, r.send_data, r.data_notified, r.send_dvd, r.dvd_notified
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, instr: &str, typ: Option<&str>, status: &str, exptime: Option<f64>, timings: Option<&str>) -> StatusRow {
        StatusRow {
            id,
            level: 0,
            koaid: None,
            instrument: instr.into(),
            service: None,
            utdatetime: Some("2024-03-17 10:00:00".into()),
            status: status.into(),
            status_code: None,
            status_message: None,
            ofname: format!("/nonexistent/{id}.fits"),
            stage_file: None,
            process_dir: None,
            creation_time: None,
            process_start_time: NaiveDateTime::parse_from_str("2024-03-17 10:00:00", "%Y-%m-%d %H:%M:%S").ok(),
            process_end_time: NaiveDateTime::parse_from_str("2024-03-17 10:00:02", "%Y-%m-%d %H:%M:%S").ok(),
            xfr_start_time: None,
            xfr_end_time: None,
            filesize_mb: Some(4.0),
            archsize_mb: Some(4.5),
            koaimtyp: typ.map(Into::into),
            semid: None,
            propint: None,
            md5: None,
            acknowledged: 0,
            attempts: 0,
            reprocess: 0,
            transfer: 0,
            lease_owner: None,
            lease_expiry: None,
            archive_dir: None,
            status_code_ipac: None,
            ipac_notify_time: None,
            ipac_response_time: None,
            exptime,
            timings: timings.map(Into::into),
            last_step: None,
        }
    }

    #[test]
    fn night_summary_counts_classes_exposure_timings_and_missing_files() {
        let rows = vec![
            row(1, "NIRES", Some("object"), "COMPLETE", Some(300.0), Some(r#"{"dqa":0.1,"load":0.01}"#)),
            row(2, "NIRES", Some("flatlamp"), "COMPLETE", Some(10.0), Some(r#"{"dqa":0.3,"load":0.03}"#)),
            row(3, "NIRES", Some("undefined"), "ERROR", None, None),
            row(4, "NIRES", Some("object"), "TRANSFERRED", Some(120.5), Some(r#"{"dqa":0.2}"#)),
        ];
        let mut disk = BTreeMap::new();
        disk.insert("NIRES".to_string(), vec![PathBuf::from("/data/a.fits"), PathBuf::from("/data/b.fits")]);
        let known: BTreeSet<String> = ["/data/a.fits".to_string()].into();
        let mut sched = BTreeMap::new();
        sched.insert("NIRES".to_string(), Some(true));
        sched.insert("HIRES".to_string(), Some(true));
        sched.insert("KPF".to_string(), Some(false));
        let d = NaiveDate::from_ymd_opt(2024, 3, 17).unwrap();
        let r = summarise(d, &rows, &disk, &known, &sched);
        let names: Vec<&str> = r.instruments.iter().map(|n| n.instrument.as_str()).collect();
        assert_eq!(names, ["HIRES", "NIRES"], "not-scheduled instruments without files are left out");
        let hires = &r.instruments[0];
        assert_eq!((hires.files, hires.scheduled), (0, Some(true)));
        assert!(r.text().contains("HIRES (scheduled): 0 files"));
        assert!(r.text().contains("ALERT: scheduled but no files"));
        let n = &r.instruments[1];
        assert_eq!((n.files, n.science, n.calibration, n.other), (4, 2, 1, 1));
        assert_eq!(n.by_status.get("COMPLETE"), Some(&2));
        assert!((n.exposure_s - 430.5).abs() < 1e-9);
        assert!((n.input_mb - 16.0).abs() < 1e-9 && (n.archived_mb - 18.0).abs() < 1e-9);
        assert_eq!(n.stage_s.get("dqa"), Some(&(0.2, 0.3)));
        assert_eq!(n.stage_s.get("load"), Some(&(0.02, 0.03)));
        // step sums 0.11, 0.33, 0.2 (timed rows) and 2 s from the row's times
        let (med, max) = n.job_s.unwrap();
        assert!((med - 0.265).abs() < 1e-9 && (max - 2.0).abs() < 1e-9, "{:?}", n.job_s);
        assert_eq!(n.missing_from_db, vec![PathBuf::from("/data/b.fits")]);
        assert_eq!(n.missing_from_disk.len(), 4, "none of the rows' files exist");
    }

    #[test]
    fn frame_classes() {
        assert_eq!(frame_class(Some("object")), "science");
        assert_eq!(frame_class(Some(" OBJECT ")), "science");
        assert_eq!(frame_class(Some("arclamp")), "calibration");
        assert_eq!(frame_class(Some("bias")), "calibration");
        assert_eq!(frame_class(Some("undefined")), "other");
        assert_eq!(frame_class(None), "other");
    }
}
